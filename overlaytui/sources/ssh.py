"""ssh:// engines, reached the way the docker CLI reaches them (the `ssh` client, so ~/.ssh/config applies:
ProxyJump, IdentityFile...), with three things a dashboard needs that docker-py's ssh transport does not do:

- **one ssh session per node**: docker-py starts `ssh HOST docker system dial-stdio` for every HTTP connection,
  and every stats stream is one; our `ssh` (a wrapper first on PATH) multiplexes them all over one master
  connection per host (ControlMaster, ControlPersist 60 s), so 60 containers on a node are one ssh login;
- **never a prompt, never a word on the terminal**: BatchMode (a password or an unknown host key is an error, not a
  question in the middle of the dashboard) and ssh's own messages go to a log per host instead of the terminal;
- **the reason**: from that log, what failed in words (authentication, host key, no docker CLI on the node,
  permission denied on its socket, no route), instead of docker-py's "Connection aborted, broken pipe".

`OVERLAYTUI_SSH_CONFIG`, when set, is passed as `ssh -F` (the lab's generated config uses it).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..safe import one_line

WRAPPER = """#!/bin/sh
# overlaytui's ssh for docker-py (overlaytui/sources/ssh.py): multiplexed, never prompting, errors logged per host
dir={dir}
control={control}
host=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "--" ]; then host="$arg"; fi
  prev="$arg"
done
case "$host" in
  ""|*[!A-Za-z0-9._-]*) name="=$(printf '%s' "$host" | od -An -tx1 | tr -d ' \\n')" ;;
  *) name="$host" ;;
esac
set -- -o ControlMaster=auto -o "ControlPath=$control/cm-%C" -o ControlPersist=60 -o BatchMode=yes \\
  -o ConnectTimeout=10 -o ServerAliveInterval=15 "$@"
if [ -n "${{OVERLAYTUI_SSH_CONFIG:-}}" ]; then set -- -F "$OVERLAYTUI_SSH_CONFIG" "$@"; fi
exec {ssh} "$@" 2>>"$dir/$name.log"
"""


def wrapper_script(directory: Path, real_ssh: str) -> str:
    """The wrapper for `directory`: every path single-quoted for the shell (a directory under an
    XDG_RUNTIME_DIR holding `$(...)` or a quote is a path, never a command), `%` doubled where ssh expands its
    %-tokens (ControlPath)."""
    return WRAPPER.format(dir=shlex.quote(str(directory)), ssh=shlex.quote(real_ssh),
                          control=shlex.quote(str(directory).replace("%", "%%")))


def log_name(host: str) -> str:
    """The log file of a host, as the wrapper names it: the host itself when it is plain (letters, digits, `._-`),
    else `=` and its bytes in hex (never two hosts in one log, whatever their names hold)."""
    if host and all(c.isascii() and (c.isalnum() or c in "._-") for c in host):
        return host
    return "=" + host.encode("utf-8", "surrogateescape").hex()


_dir: Path | None = None


def _tolerate_closed_pipes() -> None:
    """docker-py's ssh socket writes to ssh's stdin when it closes; after a hijacked stream (`docker exec`) ssh
    has already gone and the write raises BrokenPipeError out of a call that succeeded (docker/docker-py#3218,
    open): the probes' every exec failed over ssh. Closing a socket whose process is gone is done, not an error."""
    from docker.transport import sshconn

    original = sshconn.SSHSocket.close
    if getattr(original, "overlaytui", False):
        return

    def close(self) -> None:
        try:
            original(self)
        except BrokenPipeError:
            if self.proc is not None:
                self.proc.terminate()
    close.overlaytui = True  # type: ignore[attr-defined]
    sshconn.SSHSocket.close = close


PREFIX = "overlaytui-ssh-"


def _base() -> str | None:
    """Where the directory goes: XDG_RUNTIME_DIR when it is a directory of ours (control sockets need a short
    path), else the system's temporary directory."""
    base = os.environ.get("XDG_RUNTIME_DIR") or ""
    try:
        info = os.stat(base) if base else None
    except OSError:
        return None
    return base if info is not None and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() else None


def _remove_leftovers(base: str | None) -> None:
    """Directories of earlier runs that could not remove their own (killed): `overlaytui-ssh-PID-*` of ours
    whose process is gone."""
    parent = Path(base or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            pid = entry.name[len(PREFIX):].split("-")[0] if entry.name.startswith(PREFIX) else ""
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                if entry.lstat().st_uid != os.getuid() or not entry.is_dir() or entry.is_symlink():
                    continue
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                continue


def remove() -> None:
    """Remove the wrapper's directory (at exit, and on the forced exit that skips atexit: cli.exit_now)."""
    if _dir is not None:
        shutil.rmtree(_dir, ignore_errors=True)


def prepare() -> Path | None:
    """Put our `ssh` first on PATH (once per process); None when there is no ssh client (then docker-py fails with
    its own message, which says to install one). The directory goes at exit, whichever way (atexit, cli's forced
    exit; a killed run's is removed by the next one)."""
    global _dir
    _tolerate_closed_pipes()
    if _dir is not None:
        return _dir
    real = shutil.which("ssh")
    if real is None:
        return None
    base = _base()
    _remove_leftovers(base)
    _dir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))  # 0700
    atexit.register(remove)
    wrapper = _dir / "ssh"
    wrapper.write_text(wrapper_script(_dir, real))
    wrapper.chmod(stat.S_IRWXU)
    os.environ["PATH"] = f"{_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return _dir


def host_of(url: str) -> str:
    """The host docker-py passes to ssh (it splits `ssh://user@host:port` at ':' and '@' itself): what the log
    is named after."""
    rest = url[len("ssh://"):] if url.startswith("ssh://") else url
    return rest.split("/")[0].split(":")[0].split("@")[-1]


def unusable(url: str) -> str:
    """Why docker-py's ssh transport cannot use this endpoint ("" when it can): it splits the address at ':'
    and '@' itself, so a host must be a name or an IPv4 address, the port a number."""
    rest = url[len("ssh://"):] if url.startswith("ssh://") else ""
    if not rest or "[" in rest or rest.split("/")[0].count(":") > 1:
        return (f"cannot use the ssh endpoint {one_line(url)}: ssh://[USER@]HOST[:PORT] with a hostname or an IPv4 "
                "address (docker's ssh transport takes no IPv6 address)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"cannot use the ssh endpoint {one_line(url)}: {one_line(exc)}"
    if not parts.hostname:
        return f"cannot use the ssh endpoint {one_line(url)}: no host"
    if port == 0:
        return f"cannot use the ssh endpoint {one_line(url)}: port 0"
    return ""


def last_error(url: str) -> str:
    """ssh's last message about this endpoint's host, if any."""
    if _dir is None:
        return ""
    try:
        lines = (_dir / f"{log_name(host_of(url))}.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


REASONS = (
    ("permission denied (publickey", "ssh authentication failed"),
    ("permission denied (password", "ssh authentication failed"),
    ("host key verification failed", "ssh host key not trusted (not in known_hosts)"),
    ("remote host identification has changed", "ssh host key changed"),
    ("docker: not found", "no docker CLI on the node (ssh works; `docker system dial-stdio` does not)"),
    ("docker: command not found", "no docker CLI on the node (ssh works; `docker system dial-stdio` does not)"),
    ("permission denied while trying to connect to the docker", "permission denied on the node's Docker socket "
     "(the ssh user is not in the docker group)"),
    ("connection refused", "ssh connection refused (no sshd listening)"),
    ("connection timed out", "ssh connection timed out"),
    ("no route to host", "no route to the node's address"),
    ("could not resolve hostname", "the node's name does not resolve"),
)


def describe(url: str, message: str) -> str:
    """An ssh engine's error in words: an endpoint that cannot be used says so itself (never another host's log);
    else the reason from ssh's own message when there is one, else docker-py's."""
    why = unusable(url)
    if why:
        return why
    said = last_error(url)
    lowered = said.lower()
    for needle, reason in REASONS:
        if needle in lowered:
            return f"{reason}: {said}"
    return f"{message} (ssh: {said})" if said else message


def node_url(manager_url: str, address: str) -> str:
    """The endpoint of a node at `address`, with the manager's ssh user and port."""
    parts = urlsplit(manager_url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"ssh://{user}{address}{port}"  # docker-py's ssh transport knows no IPv6 brackets either


# ------------------------------------------------------------------ the node's Docker socket over the one master
#
# docker-py's ssh transport starts `ssh HOST docker system dial-stdio` for every HTTP connection: two processes
# (ssh here, the docker CLI there, ~0.15 s each even over a multiplexed master), and a snapshot opens dozens at
# once. Forwarding the node's Docker socket to a local unix socket over the host's one master (OpenSSH
# stream-local forwarding, `ssh -O forward -L LOCAL:REMOTE`) makes a connection a channel of that master instead.
# Where the node's docker CLI names no unix socket, its sshd refuses forwarding, or the forwarded socket does not
# answer a ping, dial-stdio stays. OVERLAYTUI_SSH_FORWARD=0 keeps dial-stdio everywhere.

# where the node's docker CLI would connect: DOCKER_HOST, else its context's endpoint (asked of the CLI only when a
# context is chosen: starting it costs ~0.1 s), else the default socket
SOCKET_QUERY = ('if [ -n "$DOCKER_HOST" ]; then echo "$DOCKER_HOST"; '
                'elif [ -n "$DOCKER_CONTEXT" ] || '
                'grep -qs currentContext "${DOCKER_CONFIG:-$HOME/.docker}/config.json"; '
                "then docker context inspect --format '{{.Endpoints.docker.Host}}'; "
                "else echo unix:///var/run/docker.sock; fi")
_forwards: dict[str, str] = {}  # ssh URL -> the local socket its engine is forwarded to; "" when it cannot be
_answered: dict[str, float] = {}  # ssh URL -> time.monotonic() its forward last answered a ping
RECHECK = 2.0  # seconds a forward that answered is trusted without a ping (60 streams start at once: one ping)
_forward_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def engine_url(url: str, timeout: float = 10.0) -> str:
    """Where to reach an ssh:// engine: `unix://LOCAL` when its Docker socket is forwarded over the host's one ssh
    master, else the ssh URL itself (dial-stdio). Blocking (the first call per host logs in, asks the node's
    docker CLI for its socket and forwards it): call it where the engine's client is made, in a worker thread."""
    if not url.startswith("ssh://") or os.environ.get("OVERLAYTUI_SSH_FORWARD") == "0" or unusable(url):
        return url
    if prepare() is None:
        return url
    local = _forwards.get(url)
    if local == "":
        return url
    if local and time.monotonic() - _answered.get(url, 0.0) < RECHECK:
        return f"unix://{local}"
    with _locks_lock:
        lock = _forward_locks.setdefault(url, threading.Lock())
    with lock:
        local = _forwards.get(url)
        if local == "":
            return url
        if local and (time.monotonic() - _answered.get(url, 0.0) < RECHECK or _pings(local, timeout)):
            _answered[url] = time.monotonic()
            return f"unix://{local}"
        local = _forward(url, timeout)
        if local is None:  # no login: dial-stdio says why (and the next client tries again)
            return url
        _forwards[url] = local
        if local:
            _answered[url] = time.monotonic()
        return f"unix://{local}" if local else url


def lost(url: str, timeout: float = 10.0) -> None:
    """An engine call failed: when it went through a forward that no longer answers (its master went with the
    node's sshd), set the forward up again now, in the caller's worker thread — a login that fails leaves ssh's
    own reason in the log (connection refused, authentication...) before the error is described."""
    local = _forwards.get(url)
    if not local or _pings(local, timeout):
        return
    _answered.pop(url, None)
    engine_url(url, timeout)


def forget() -> None:
    """Forget every forward (they are set up again, or found again, by the next client)."""
    _forwards.clear()
    _answered.clear()


def forwarded(url: str) -> str | None:
    """The local socket an ssh engine is forwarded to, if it is (for benchmarks and tests)."""
    return _forwards.get(url) or None


def ssh_args(url: str) -> list[str]:
    """The destination as docker-py's ssh transport gives it to ssh: [-l USER] [-p PORT] -- HOST."""
    parts = urlsplit(url)
    args = ["-l", parts.username] if parts.username else []
    if parts.port:
        args += ["-p", str(parts.port)]
    return [*args, "--", parts.hostname or host_of(url)]


def _ssh(*args: str, timeout: float) -> subprocess.CompletedProcess | None:
    """Our ssh (the wrapper: its options, its log), its output read."""
    assert _dir is not None
    try:
        return subprocess.run([str(_dir / "ssh"), *args], timeout=timeout, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _forward(url: str, timeout: float) -> str | None:
    """Forward the engine's socket over the host's master (started when there is none); the local socket, ""
    when forwarding cannot be used here, None when the host could not be logged in to."""
    assert _dir is not None
    destination = ssh_args(url)
    # one ssh: logs in when there is no master (the wrapper's ControlMaster=auto, ControlPersist 60 s: it stays
    # in the background, holding none of our pipes) and asks the node's docker CLI where its engine listens
    asked = _ssh("-o", "StreamLocalBindUnlink=yes", *destination, SOCKET_QUERY, timeout=timeout)
    if asked is None or asked.returncode == 255:  # ssh's own failure: no login
        return None
    remote = asked.stdout.strip() if asked.returncode == 0 else ""
    if not remote.startswith("unix:///"):
        return ""  # another kind of endpoint (tcp, ssh) or no answer: dial-stdio (it says why, if it fails)
    local = str(_dir / f"docker-{hashlib.sha1(url.encode()).hexdigest()[:12]}.sock")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(local)
    spec = f"{local}:{remote[len('unix://'):]}"
    done = _ssh("-q", "-O", "forward", "-L", spec, *destination, timeout=timeout)
    if done is None or done.returncode != 0:
        return ""
    if not _pings(local, timeout):  # refused by the node's sshd, or a socket nobody listens on
        _ssh("-q", "-O", "cancel", "-L", spec, *destination, timeout=timeout)
        return ""
    return local


def _pings(local: str, timeout: float) -> bool:
    """The engine behind a local socket answers its ping."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(local)
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return conn.recv(64).startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))
    except OSError:
        return False
