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
import os
import shutil
import stat
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

WRAPPER = """#!/bin/sh
# overlaytui's ssh for docker-py (overlaytui/sources/ssh.py): multiplexed, never prompting, errors logged per host
host=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "--" ]; then host="$arg"; fi
  prev="$arg"
done
log="{dir}/$(printf '%s' "$host" | tr -c 'A-Za-z0-9.@_-' '_').log"
set -- -o ControlMaster=auto -o "ControlPath={dir}/cm-%C" -o ControlPersist=60 -o BatchMode=yes \\
  -o ConnectTimeout=10 -o ServerAliveInterval=15 "$@"
if [ -n "${{OVERLAYTUI_SSH_CONFIG:-}}" ]; then set -- -F "$OVERLAYTUI_SSH_CONFIG" "$@"; fi
exec {ssh} "$@" 2>>"$log"
"""

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


def prepare() -> Path | None:
    """Put our `ssh` first on PATH (once per process); None when there is no ssh client (then docker-py fails with
    its own message, which says to install one)."""
    global _dir
    _tolerate_closed_pipes()
    if _dir is not None:
        return _dir
    real = shutil.which("ssh")
    if real is None:
        return None
    base = os.environ.get("XDG_RUNTIME_DIR") or None
    _dir = Path(tempfile.mkdtemp(prefix="overlaytui-ssh-", dir=base))  # 0700; control sockets need a short path
    wrapper = _dir / "ssh"
    wrapper.write_text(WRAPPER.format(dir=_dir, ssh=real))
    wrapper.chmod(stat.S_IRWXU)
    os.environ["PATH"] = f"{_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    atexit.register(shutil.rmtree, _dir, True)
    return _dir


def host_of(url: str) -> str:
    """The host docker-py passes to ssh (it splits `ssh://user@host:port` at ':' and '@' itself): what the log
    is named after."""
    rest = url[len("ssh://"):] if url.startswith("ssh://") else url
    return rest.split("/")[0].split(":")[0].split("@")[-1]


def last_error(url: str) -> str:
    """ssh's last message about this endpoint's host, if any."""
    if _dir is None:
        return ""
    name = "".join(c if c.isalnum() or c in ".@_-" else "_" for c in host_of(url))
    try:
        lines = (_dir / f"{name}.log").read_text(errors="replace").splitlines()
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
    """An ssh engine's error in words: the reason from ssh's own message when there is one, else docker-py's."""
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
