"""The deep view's reader (`--deep`): what each node's kernel says below the overlay, read through the node's own
engine by one short-lived container per node and round.

The container (image `--deep-image`, default nicolaka/netshoot; any image with a POSIX shell, iproute2, iptables
and nsenter) runs in the host's network namespace (not its PID namespace: nothing read needs it), capabilities
dropped but for NET_ADMIN (netlink reads of xfrm, iptables' tables), NET_RAW (iptables-legacy's socket) and
SYS_ADMIN (nsenter into a sandbox's network namespace) — never `--privileged`, which fails where the host's
bounding set lacks a capability — and the engine's network-namespace directory bind-mounted read-only. That
directory is found, never assumed: it is where a container's `NetworkSettings.SandboxKey` lives (any running
container's on the engine, else a first reader's own, host network, which the engine keys in that same
directory).

Only reading commands run (`ip ... show`, `bridge fdb show`, `iptables-*-save -c`, `nft list`, `ethtool -k/-i`,
/proc files), each bounded by `timeout` where the image has it, the whole script by a watchdog. The script writes
every section (deepraw.py's keys) to a file in the container, length-prefixed so no output can pass for framing;
the reader copies it out (the archive API: no log driver in the way, binary-safe) and removes the container.

Containers are labelled like the probe agents (sources/lease.py): the run's owner, id and a lease-until in the
engine's clock. Each round first removes the reader containers whose lease lapsed (a crashed run's), never a live
run's. Every engine call has a timeout: an engine that stalls gives that node an error reading (`meta/error`),
never a hang.
"""

from __future__ import annotations

import io
import ipaddress
import os
import posixpath
import re
import secrets
import socket
import tarfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import docker
from docker.errors import ImageNotFound, NotFound

from ..model import ClusterSnapshot, Engine
from . import ssh
from .deepraw import MAX_OUTPUT, NodeRaw, Reading
from .errors import ENGINE_ERRORS, describe_error
from .lease import RUN_LABEL, engine_now, lapsed, lease_labels

DEFAULT_IMAGE = "nicolaka/netshoot"
LAB_IMAGE = "overlaytui/deep:lab"
DEEP_LABEL = "overlaytui.deep"  # <host>:<pid> of the run that started the reader
CAPABILITIES = ("NET_ADMIN", "NET_RAW", "SYS_ADMIN")
NETNS_MOUNT = "/run/overlaytui-netns"  # where the engine's netns directory appears in the reader (read-only)
OUTPUT = "/tmp/overlaytui-deep.out"  # the script's output, in the container's own filesystem
COMMAND_TIMEOUT = 10  # seconds per command inside the reader (where the image has `timeout`)
SCRIPT_BOUND = 60  # seconds the whole script may take: its watchdog stops it
MAX_ERR = 64 * 1024  # bytes of a command's stderr kept
MAX_TOTAL = 256 * 1024 * 1024  # bytes of one node's output read at most
MAX_KEY = 300
FRAME_MAGIC = b"OTDEEP1"
TOOLS = ("ip", "bridge", "nsenter", "iptables-legacy-save", "iptables-nft-save", "nft", "ethtool", "conntrack",
         "timeout", "head", "wc", "sed", "cat", "zcat", "grep")

# The reader's script (POSIX sh). `sec KEY TOOL ARGS...` runs a command and appends one section:
#   S <rc> <missing 0|1> <truncated 0|1> <out bytes> <err bytes> <key>\n<out><err>\n
# The byte counts are what follows, so a body can hold anything, the framing included. Nothing in it writes to
# the host: the output file is in the container's own layer.
SCRIPT = r"""
OUT=$OT_OUT; T=/tmp/overlaytui-deep.$$; : > "$OUT"
(sleep "$OT_BOUND"; kill -TERM $$ 2>/dev/null) & WATCHDOG=$!
TO=; command -v timeout >/dev/null 2>&1 && TO="timeout $OT_STEP"
printf 'OTDEEP1 %s\n' "$OT_NONCE" >> "$OUT"
emit() { # KEY RC MISSING
  n=$(wc -c < "$T.o" | tr -d ' '); t=0
  if [ "$n" -gt "$OT_MAX" ]; then t=1; n=$OT_MAX; fi
  e=$(wc -c < "$T.e" | tr -d ' '); [ "$e" -gt "$OT_MAXERR" ] && e=$OT_MAXERR
  { printf 'S %s %s %s %s %s %s\n' "$2" "$3" "$t" "$n" "$e" "$1"; head -c "$n" "$T.o"; head -c "$e" "$T.e"
    printf '\n'; } >> "$OUT"
}
has() { for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || return 1; done; }
missing() { printf 'not in the image: %s\n' "$2" > "$T.e"; emit "$1" 127 1; }
# KEY TOOL ARGS...: the tool (and nsenter's program) by its path, so a shell that prefers its own applets (busybox)
# still runs the image's iproute2
sec() {
  key=$1; shift; : > "$T.o"; : > "$T.e"
  tool=$(command -v "$1" 2>/dev/null) || tool=
  if [ "$1" = nsenter ]; then
    prog=$(command -v "$3" 2>/dev/null) || prog=
    if [ -z "$tool" ] || [ -z "$prog" ]; then missing "$key" "nsenter $3"; return; fi
    ns=$2; shift 3; set -- "$tool" "$ns" "$prog" "$@"
  else
    if [ -z "$tool" ]; then missing "$key" "$1"; return; fi
    shift; set -- "$tool" "$@"
  fi
  { $TO "$@" 2> "$T.e"; echo $? > "$T.rc"; } | { head -c $((OT_MAX + 1)) > "$T.o"; cat > /dev/null; }
  emit "$key" "$(cat "$T.rc")" 0
}
file() { sec "$1" cat "$2"; }
: > "$T.o"; : > "$T.e"
for tool in $OT_TOOLS; do has "$tool" && echo "$tool"; done > "$T.o"; emit meta/tools 0 0
: > "$T.e"; printf '%s\n' "$OT_NETNS_DIR" > "$T.o"; emit meta/netns-dir 0 0
sec host/uname uname -r
sec host/ip-link ip -d -s -j link show
sec host/ip-addr ip -j addr show
devs=; IP=$(command -v ip) || IP=ip
for peer in $OT_PEERS; do
  sec "host/route-get/$peer" ip -j route get "$peer"
  dev=$("$IP" -o route get "$peer" 2>/dev/null | sed -n 's/.* dev \([A-Za-z0-9_.@:-]*\).*/\1/p' | head -n 1)
  [ "$dev" = lo ] && continue  # this node's own address
  case " $devs " in *" $dev "*) ;; *) [ -n "$dev" ] && devs="$devs $dev" ;; esac
done
for dev in $devs; do
  sec "host/ethtool-k/$dev" ethtool -k "$dev"
  sec "host/ethtool-i/$dev" ethtool -i "$dev"
done
sec host/iptables-legacy-save iptables-legacy-save -c
sec host/iptables-nft-save iptables-nft-save -c
sec host/nft-ruleset nft -j list ruleset
sec host/xfrm-state ip xfrm state
sec host/xfrm-policy ip xfrm policy
file host/proc-modules /proc/modules
sec host/kernel-config zcat /proc/config.gz
sec host/kernel-symbols grep -wE 'esp_output|esp_input|esp6_output|ip_vs_conn_new' /proc/kallsyms
sec host/sys-module ls /sys/module
file host/ip_vs /proc/net/ip_vs
file host/conntrack-count /proc/sys/net/netfilter/nf_conntrack_count
file host/conntrack-max /proc/sys/net/netfilter/nf_conntrack_max
sandboxes=
for path in "$OT_NETNS"/*; do
  name=${path##*/}
  case "$name" in [0-9]*-*) ;; *) continue ;; esac
  case "$name" in *[!A-Za-z0-9-]*) continue ;; esac
  sandboxes="$sandboxes $name"
done
: > "$T.e"; for name in $sandboxes; do echo "$name"; done > "$T.o"; emit meta/sandboxes 0 0
for name in $sandboxes; do
  sec "sbx/$name/ip-link" nsenter "--net=$OT_NETNS/$name" ip -d -s -j link show
  sec "sbx/$name/fdb" nsenter "--net=$OT_NETNS/$name" bridge -j fdb show
  sec "sbx/$name/neigh" nsenter "--net=$OT_NETNS/$name" ip -j neigh show
done
printf 'E %s\n' "$OT_NONCE" >> "$OUT"
rm -f "$T.o" "$T.e" "$T.rc"
kill "$WATCHDOG" 2>/dev/null
exit 0
"""


# a section's header: rc, missing, truncated, the out and err byte counts, the key (printable, no newline, at
# most MAX_KEY characters)
_HEADER = re.compile(r"S (-?\d{1,4}) ([01]) ([01]) (\d{1,12}) (\d{1,12}) (\S[^\x00-\x1f\x7f]{0,299})")


def parse_output(data: bytes, nonce: str) -> tuple[dict[str, Reading], str]:
    """The sections of a reader's output, and what is wrong with it ("" when complete): a missing end marker (the
    script was stopped: what came before is kept, the reading is partial), a header that cannot be read (the
    rest is dropped). Pure: any bytes give an answer, never an exception."""
    readings: dict[str, Reading] = {}
    start = f"{FRAME_MAGIC.decode()} {nonce}\n".encode()
    if not data.startswith(start):
        return readings, "the reader's output does not start with its header (not this run's reader?)"
    pos = len(start)
    end = f"E {nonce}\n".encode()
    while pos < len(data):
        if data.startswith(end, pos):
            return readings, "" if pos + len(end) == len(data) else "bytes after the reader's end marker"
        newline = data.find(b"\n", pos, pos + 400)
        if newline < 0:
            return readings, f"a section header cut or unreadable after {len(readings)} sections"
        header = data[pos:newline].decode("ascii", errors="replace")
        match = _HEADER.fullmatch(header)
        if not match:
            return readings, f"an unreadable section header after {len(readings)} sections: {header[:80]!r}"
        rc, missing, truncated = int(match.group(1)), match.group(2) == "1", match.group(3) == "1"
        out_n, err_n, key = int(match.group(4)), int(match.group(5)), match.group(6)
        body = newline + 1
        if out_n > MAX_OUTPUT or err_n > MAX_ERR or body + out_n + err_n + 1 > len(data) or \
                data[body + out_n + err_n:body + out_n + err_n + 1] != b"\n":
            return readings, f"section {key!r} is cut or longer than it says (the reader was stopped?)"
        out = data[body:body + out_n].decode(errors="replace")
        err = data[body + out_n:body + out_n + err_n].decode(errors="replace")
        readings[key] = Reading(rc, out, err, missing, truncated)
        pos = body + out_n + err_n + 1
    return readings, f"no end marker after {len(readings)} sections: the reader stopped early (partial reading)"


def error_reading(reason: str, readings: Mapping[str, Reading] | None = None) -> dict[str, Reading]:
    """A node's reading that failed (`meta/error`, rc 1, the reason as its err), with what was read before."""
    return {**(readings or {}), "meta/error": Reading(1, "", reason)}


def peers_of(snapshot: ClusterSnapshot) -> tuple[str, ...]:
    """The nodes' underlay addresses (the VTEPs), valid IP addresses only."""
    found = []
    for node in snapshot.nodes:
        try:
            found.append(str(ipaddress.ip_address(node.address)))
        except ValueError:
            continue
    return tuple(sorted(set(found)))


@dataclass(frozen=True)
class DeepSettings:
    """`--deep`: read every node's kernel through its engine, with this image, a round every `every` seconds (the
    dashboard, the exporter, record; a one-shot command reads once)."""

    image: str = DEFAULT_IMAGE
    every: float = 30.0


@dataclass(frozen=True)
class DeepRun:
    """One reading process's identity (like a probe run's): its containers carry its owner and token."""

    token: str
    owner: str

    @classmethod
    def new(cls) -> DeepRun:
        return cls(secrets.token_hex(4), f"{socket.gethostname()}:{os.getpid()}")

    def labels(self, lease_until: float) -> dict[str, str]:
        return {DEEP_LABEL: self.owner, RUN_LABEL: self.token, **lease_labels(lease_until)}


class DeepPullError(Exception):
    """The deep image is not on a node and pulling it failed (no registry, no such image)."""


class DeepClosing(Exception):
    """The reader began closing while a round created its container (removed at once)."""


def netns_dir(sandbox_key: object) -> str | None:
    """The directory of a SandboxKey (`/var/run/docker/netns/<id>` -> `/var/run/docker/netns`), when it is one."""
    if not isinstance(sandbox_key, str) or not sandbox_key.startswith("/") or "\x00" in sandbox_key:
        return None
    directory = posixpath.dirname(posixpath.normpath(sandbox_key))
    return directory if directory not in ("/", "") else None


def remove_lapsed(api: docker.APIClient, run: DeepRun, now: float | None = None) -> list[str]:
    """Remove the reader containers of runs whose lease lapsed (a crashed run's); never a live run's, never a
    container without a readable lease. Returns their names."""
    removed = []
    now = engine_now(api) if now is None else now
    for container in api.containers(all=True, filters={"label": DEEP_LABEL}):
        labels = container.get("Labels") or {}
        if lapsed(labels, now, run.token) is not True:
            continue
        try:
            api.remove_container(container["Id"], force=True)
            removed.append(str((container.get("Names") or [container["Id"][:12]])[0]).lstrip("/"))
        except ENGINE_ERRORS:
            continue
    return removed


@dataclass
class DeepReader:
    """Reads every node's kernel view through its engine, one container per node and round, concurrently."""

    image: str = DEFAULT_IMAGE
    tls: Mapping[str, object] | None = None  # engine url -> docker.tls.TLSConfig (tcp engines)
    call_timeout: float = 10.0  # every engine call
    bound: float = SCRIPT_BOUND  # the script's own watchdog
    pull_timeout: float = 180.0
    run: DeepRun | None = None

    def __post_init__(self) -> None:
        self.run = self.run or DeepRun.new()
        self._netns: dict[str, str] = {}  # engine url -> its netns directory (found once)
        self._versions: dict[str, str] = {}
        self.removed: list[str] = []  # leftovers removed (said by the caller)
        self._lock = threading.Lock()
        self._live: dict[str, str] = {}  # this reader's containers that exist now: id -> engine url
        self.closing = False  # close() began: no new container is created

    def close(self, timeout: float = 10.0) -> list[str]:
        """Remove every container of this reader that still exists (a round in flight when the command is stopped:
        ctrl+c, SIGTERM), each engine at once, bounded by `timeout` in all; no round creates one afterwards.
        Returns the ids it could not remove (their lease ends them: a later run removes them)."""
        with self._lock:
            self.closing = True
            live = dict(self._live)
        if not live:
            return []
        pool = ThreadPoolExecutor(max_workers=min(16, len(live)), thread_name_prefix="overlaytui-deep-close")
        try:
            futures = {pool.submit(self._remove, url, container): container for container, url in live.items()}
            done, _pending = wait(futures, timeout=timeout)
            return [container for future, container in futures.items()
                    if future not in done or future.exception() is not None or not future.result()]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _remove(self, url: str, container: str) -> bool:
        try:
            api = self._client(url)
        except ENGINE_ERRORS:
            return False
        try:
            api.remove_container(container, force=True)
        except NotFound:
            pass
        except ENGINE_ERRORS:
            return False
        finally:
            api.close()
        with self._lock:
            self._live.pop(container, None)
        return True

    def _created(self, api: docker.APIClient, url: str, container: str) -> None:
        """Keep track of a container just created; when closing began meanwhile, remove it at once."""
        with self._lock:
            self._live[container] = url
            closing = self.closing
        if closing:
            self._gone(api, container)
            raise DeepClosing("the deep view is closing")

    def _gone(self, api: docker.APIClient, container: str) -> None:
        try:
            api.remove_container(container, force=True)
        except NotFound:
            pass
        except ENGINE_ERRORS:
            return  # its lease ends it: the next round on this engine, or a later run, removes it
        with self._lock:
            self._live.pop(container, None)

    def read_nodes(self, snapshot: ClusterSnapshot) -> dict[str, NodeRaw]:
        """Swarm node id -> its raw reading (an engine that never said its node id: its hostname, else its
        endpoint). Blocking, bounded: every engine call has a timeout, the whole round at most the script's bound
        plus a few calls."""
        peers = peers_of(snapshot)
        engines = _keyed(snapshot.engines)
        if not engines:
            return {}
        results: dict[str, NodeRaw] = {}
        deadline = self.bound + 6 * self.call_timeout + 5
        pool = ThreadPoolExecutor(max_workers=min(16, len(engines)), thread_name_prefix="overlaytui-deep")
        try:
            futures = {pool.submit(self.read_node, engine, peers): key for key, engine in engines.items()}
            done, _pending = wait(futures, timeout=deadline)
            for future, key in futures.items():
                failure = future.exception() if future in done else None
                if future not in done:
                    results[key] = error_reading(f"no reading within {deadline:g} s")
                elif failure is not None:
                    results[key] = error_reading(f"the reader failed: {describe_error(failure)}")
                else:
                    results[key] = future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return results

    def _client(self, url: str) -> docker.APIClient:
        target = ssh.engine_url(url, self.call_timeout) if url.startswith("ssh://") else url
        api = docker.APIClient(base_url=target, timeout=self.call_timeout, version=self._versions.get(url, "auto"),
                               use_ssh_client=target.startswith("ssh://"), tls=(self.tls or {}).get(url))
        self._versions.setdefault(url, api.api_version)
        return api

    def read_node(self, engine: Engine, peers: Sequence[str]) -> NodeRaw:
        """One node's reading (blocking; every failure is an error reading with its reason)."""
        url = engine.endpoint
        try:
            api = self._client(url)
        except ENGINE_ERRORS as exc:
            return error_reading(f"{_where(engine)}: {describe_error(exc)}")
        try:
            return self._read(api, url, peers)
        except DeepPullError as exc:
            return error_reading(f"{_where(engine)}: {exc}")
        except ENGINE_ERRORS as exc:
            return error_reading(f"{_where(engine)}: {describe_error(exc)}")
        finally:
            api.close()

    def _read(self, api: docker.APIClient, url: str, peers: Sequence[str]) -> NodeRaw:
        assert self.run is not None
        now = engine_now(api)
        self.removed += remove_lapsed(api, self.run, now)
        directory = self._netns.get(url) or self._find_netns_dir(api, url, now)
        if directory is None:
            return error_reading("the engine's network namespace directory was not found (no container's "
                                 "SandboxKey names it)")
        self._netns[url] = directory
        nonce = secrets.token_hex(8)
        if self.closing:
            return error_reading("not read: the deep view is closing")
        container = self._create(api, directory, peers, nonce, now)
        try:
            self._created(api, url, container)
            api.start(container)
            try:
                status = api.wait(container, timeout=self.bound + self.call_timeout)
            except ENGINE_ERRORS as exc:
                return error_reading(f"the reader did not finish within {self.bound + self.call_timeout:g} s "
                                     f"({describe_error(exc)})")
            data = _archive_file(api, container, OUTPUT)
            readings, problem = parse_output(data, nonce)
            code = status.get("StatusCode") if isinstance(status, dict) else None
            if problem:
                return error_reading(f"{problem} (the reader's exit code {code})", readings)
            return readings
        except DeepClosing:
            return error_reading("not read: the deep view is closing")
        finally:
            self._gone(api, container)

    def _create(self, api: docker.APIClient, directory: str, peers: Sequence[str], nonce: str, now: float,
                command: Sequence[str] | None = None, bind: bool = True) -> str:
        assert self.run is not None
        lease_until = now + self.bound + 4 * self.call_timeout + 30
        host_config = api.create_host_config(
            network_mode="host", cap_drop=["ALL"], cap_add=list(CAPABILITIES),
            binds={directory: {"bind": NETNS_MOUNT, "mode": "ro"}} if bind else None)
        env = {"OT_OUT": OUTPUT, "OT_NONCE": nonce, "OT_BOUND": str(int(self.bound)), "OT_STEP": str(COMMAND_TIMEOUT),
               "OT_MAX": str(MAX_OUTPUT), "OT_MAXERR": str(MAX_ERR), "OT_NETNS": NETNS_MOUNT,
               "OT_NETNS_DIR": directory, "OT_PEERS": " ".join(peers), "OT_TOOLS": " ".join(TOOLS)}
        kwargs = {"image": self.image, "command": list(command or ["/bin/sh", "-c", SCRIPT]), "environment": env,
                  "host_config": host_config, "labels": self.run.labels(lease_until),
                  "name": f"overlaytui-deep-{self.run.token}-{secrets.token_hex(3)}"}
        try:
            return api.create_container(**kwargs)["Id"]
        except ImageNotFound:
            try:
                self._pull(api)
            except DeepPullError as exc:
                raise DeepPullError(self._unpulled(str(exc))) from None
            except ENGINE_ERRORS as exc:
                raise DeepPullError(self._unpulled(describe_error(exc))) from None
            return api.create_container(**kwargs)["Id"]

    def _unpulled(self, reason: str) -> str:
        return (f"the deep image {self.image} is not on this node and could not be pulled: {reason} (load it there, "
                f"e.g. docker load, or choose another with --deep-image)")

    def _pull(self, api: docker.APIClient) -> None:
        """The image, pulled as `docker run` would (bounded by pull_timeout)."""
        name, _, tag = self.image.rpartition(":")
        if not name or "/" in tag:  # no tag (a registry's port is not one)
            name, tag = self.image, "latest"
        before, api.timeout = api.timeout, self.pull_timeout
        try:
            for item in api.pull(name, tag=tag, stream=True, decode=True):
                if isinstance(item, dict) and item.get("error"):  # the engine says a failed pull in the stream
                    raise DeepPullError(str(item.get("error"))[:300])
        finally:
            api.timeout = before

    def _find_netns_dir(self, api: docker.APIClient, url: str, now: float) -> str | None:
        """The directory of the engine's sandboxes, from a running container's SandboxKey; where none runs, a
        first reader's own (host network: the engine keys it in the same directory), removed at once."""
        for container in api.containers()[:20]:
            try:
                key = (api.inspect_container(container["Id"]).get("NetworkSettings") or {}).get("SandboxKey")
            except (NotFound, *ENGINE_ERRORS):
                continue
            found = netns_dir(key)
            if found:
                return found
        if self.closing:
            return None
        probe = self._create(api, "", (), "", now, ["/bin/sh", "-c", "sleep 30"], bind=False)
        try:
            self._created(api, url, probe)
            api.start(probe)
            key = (api.inspect_container(probe).get("NetworkSettings") or {}).get("SandboxKey")
            return netns_dir(key)
        except DeepClosing:
            return None
        finally:
            self._gone(api, probe)


def _archive_file(api: docker.APIClient, container: str, path: str) -> bytes:
    """One file out of a (stopped) container, through the archive API: at most MAX_TOTAL bytes of it."""
    stream, _stat = api.get_archive(container, path)
    buffer = io.BytesIO()
    for chunk in stream:
        buffer.write(chunk)
        if buffer.tell() > MAX_TOTAL + 1024 * 1024:
            break
    buffer.seek(0)
    try:
        with tarfile.open(fileobj=buffer, mode="r:") as tar:
            member = next((m for m in tar if m.isfile()), None)
            if member is None:
                return b""
            handle = tar.extractfile(member)
            return handle.read(MAX_TOTAL) if handle is not None else b""
    except (tarfile.TarError, EOFError) as exc:
        raise ValueError(f"the reader's output could not be unpacked: {exc}") from None


def _keyed(engines: Iterable[Engine]) -> dict[str, Engine]:
    """The swarm node id -> its engine (deepraw's key); an engine that never said its node id: its hostname, else
    its endpoint. Two engines of one node (given twice): the first."""
    keyed: dict[str, Engine] = {}
    for engine in engines:
        keyed.setdefault(engine.node_id or engine.hostname or engine.endpoint, engine)
    return keyed


def _where(engine: Engine) -> str:
    return engine.endpoint


def read_nodes(snapshot: ClusterSnapshot, *, image: str = DEFAULT_IMAGE, tls: Mapping[str, object] | None = None,
               call_timeout: float = 10.0) -> dict[str, NodeRaw]:
    """One round over every engine of `snapshot` (a one-shot command's): node id -> raw reading."""
    return DeepReader(image=image, tls=tls, call_timeout=call_timeout).read_nodes(snapshot)
