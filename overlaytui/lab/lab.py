"""A real multi-node Docker Swarm on one Linux machine: one dockerd per network namespace, joined by a bridge.

`up` builds it, `down` removes everything it (or a crashed earlier run) created, `status` reads the live state
(faults included) from the system itself, `fault` injects and clears faults.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from docker.errors import APIError

from ..model import natural_key
from ..sources.endpoints import EndpointError, EndpointSpec
from ..sources.errors import ENGINE_ERRORS
from . import engines, hostfaults, sshd
from .host import LabError, in_netns, link_exists, netns_list, run
from .image import DEEP_IMAGE, DEEP_IMAGE_CHANGES, IMAGE_CHANGES, build_rootfs_tar
from .layout import (
    BRIDGE,
    FAULT_CHAIN,
    IPTABLES_COMMENT,
    MAX_NODES,
    MINIMAL_PROBE_IMAGE,
    OVERLAY_POOL,
    PREFIX,
    PROBE_IMAGE,
    UNDERLAY_PREFIXLEN,
    NodeLayout,
    available_memory_mb,
    cache_dir,
    data_dir,
    memory_problem,
    node,
    run_dir,
)

STATE_FILE = "lab.json"
PARALLEL = 8  # engines waited for, images imported and workers joined at once (2 cores: more only queue)
HEARTBEAT_NS = 1_000_000_000  # 1 s dispatcher heartbeat: a cut-off node turns Down in ~3 s instead of ~15 s
DEFAULT_MTU = 1500
FAULT_KINDS = ("loss", "mtu", "partition", "engine-stop", "engine-start", "hostname", "ssh-stop", "ssh-start",
               *hostfaults.KINDS, "clear")


@dataclass(frozen=True)
class LabState:
    nodes: int
    managers: int
    created_at: float

    @property
    def layouts(self) -> list[NodeLayout]:
        return [node(i) for i in range(1, self.nodes + 1)]


@dataclass(frozen=True)
class NodeStatus:
    name: str
    role: str  # manager / worker / "-" when the swarm cannot be asked
    address: str
    socket: str
    engine: str  # running / stopped / not answering
    swarm_state: str  # ready / down / unknown ...
    faults: list[str] = field(default_factory=list)


def read_state() -> LabState | None:
    try:
        raw = json.loads((run_dir() / STATE_FILE).read_text())
        return LabState(nodes=int(raw["nodes"]), managers=int(raw["managers"]), created_at=float(raw["created_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(state: LabState) -> None:
    (run_dir() / STATE_FILE).write_text(json.dumps(asdict(state)) + "\n")


# --------------------------------------------------------------------------------------------------- up


def up(nodes: int = 3, managers: int = 1, log=print, ssh: bool = False) -> tuple[LabState, bool]:
    """Build the lab, or return the running one (with `ssh`, its sshds started if they are not). Returns
    (state, created)."""
    if not 1 <= nodes <= MAX_NODES:
        raise LabError(f"--nodes must be between 1 and {MAX_NODES}")
    if not 1 <= managers <= nodes:
        raise LabError("--managers must be between 1 and --nodes")
    existing = read_state()
    if existing is not None and all(engines.engine_answers(n) for n in existing.layouts):
        if ssh:
            sshd.enable(existing.layouts)
        return existing, False
    # the remains of an earlier lab hold memory that their removal frees
    remains = sum(1 for i in range(1, MAX_NODES + 1) if engines.dockerd_pid(node(i)) is not None)
    problem = memory_problem(nodes - remains, available_memory_mb())
    if problem:
        raise LabError(problem)
    if existing is not None or netns_list_lab() or link_exists(BRIDGE):
        log("removing the remains of an earlier lab first")
        down(log=lambda _msg: None)

    started = time.monotonic()
    layouts = [node(i) for i in range(1, nodes + 1)]
    run_dir().mkdir(parents=True, exist_ok=True)
    try:
        _create_bridge()
        for layout in layouts:
            _create_node_network(layout)
        procs = {layout.name: engines.start_engine(layout) for layout in layouts}
        tars = {image: build_rootfs_tar(cache_dir() / "probe-rootfs.tar", flavour)
                for image, flavour in ((PROBE_IMAGE, "lab"), (MINIMAL_PROBE_IMAGE, "minimal"),
                                                  (DEEP_IMAGE, "deep"))}
        deadline = time.monotonic() + scaled_timeout(90, nodes)
        with ThreadPoolExecutor(max_workers=min(nodes, PARALLEL)) as pool:
            for future in [pool.submit(engines.wait_for_engine, n, procs[n.name], deadline) for n in layouts]:
                future.result()
            log(f"{nodes} engines answer after {time.monotonic() - started:.1f} s")
            for future in [pool.submit(_import_probe_image, n, tar, image) for n in layouts
                           for image, tar in tars.items()]:
                future.result()
            log(f"probe images imported after {time.monotonic() - started:.1f} s")
        _form_swarm(layouts, managers)
        _wait_nodes_ready(layouts[0], nodes, deadline=time.monotonic() + scaled_timeout(60, nodes))
        if ssh:
            sshd.enable(layouts)
    except BaseException:
        log("lab up failed; removing what it created")
        down(log=lambda _msg: None)
        raise
    state = LabState(nodes=nodes, managers=managers, created_at=time.time())
    _write_state(state)
    plural = "s" if managers > 1 else ""
    log(f"lab up: {nodes} nodes ({managers} manager{plural}) in {time.monotonic() - started:.1f} s")
    return state, True


def scaled_timeout(base: float, nodes: int) -> float:
    """A step's bound for `nodes` engines: `base` up to the default 3 nodes, plus 4 s per node beyond (24 nodes
    on 2 cores take ~1 s per node to start, import and join; the bound leaves room for a loaded machine)."""
    return base + 4.0 * max(0, nodes - 3)


def netns_list_lab() -> list[str]:
    return [ns for ns in netns_list() if ns.startswith(f"{PREFIX}-")]


def _create_bridge() -> None:
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "link", "set", BRIDGE, "up"])
    # Bridged frames pass the host's FORWARD chain when br_netfilter is loaded (a host dockerd loads it and
    # sets the policy to DROP): without this rule the nodes cannot reach each other.
    run(["iptables", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment",
         IPTABLES_COMMENT, "-j", "ACCEPT"])


def _create_node_network(layout: NodeLayout) -> None:
    run(["ip", "netns", "add", layout.netns])
    peer = f"{layout.veth_host}p"
    run(["ip", "link", "add", layout.veth_host, "type", "veth", "peer", "name", peer])
    run(["ip", "link", "set", peer, "netns", layout.netns])
    run(["ip", "link", "set", layout.veth_host, "master", BRIDGE, "up"])
    in_netns(layout, ["ip", "link", "set", peer, "name", "eth0"])
    in_netns(layout, ["ip", "addr", "add", f"{layout.address}/{UNDERLAY_PREFIXLEN}", "dev", "eth0"])
    in_netns(layout, ["ip", "link", "set", "eth0", "up"])
    in_netns(layout, ["ip", "link", "set", "lo", "up"])


def _import_probe_image(layout: NodeLayout, tar: Path, image: str = PROBE_IMAGE) -> None:
    repository, tag = image.split(":")
    with engines.client(layout, timeout=120) as api:
        changes = DEEP_IMAGE_CHANGES if image == DEEP_IMAGE else IMAGE_CHANGES
        api.import_image_from_file(str(tar), repository=repository, tag=tag, changes=list(changes))
        api.inspect_image(image)  # raises if the import did not produce the tag


def _form_swarm(layouts: list[NodeLayout], managers: int) -> None:
    first = layouts[0]
    with engines.client(first) as api:
        api.init_swarm(
            advertise_addr=first.address,
            listen_addr=f"{first.address}:2377",
            default_addr_pool=[OVERLAY_POOL],
            subnet_size=24,
            swarm_spec=api.create_swarm_spec(dispatcher_heartbeat_period=HEARTBEAT_NS),
        )
        tokens = api.inspect_swarm()["JoinTokens"]

    def join(layout: NodeLayout, token: str) -> None:
        with engines.client(layout, timeout=60) as api:
            try:
                api.join_swarm(
                    remote_addrs=[f"{first.address}:2377"],
                    join_token=token,
                    listen_addr=f"{layout.address}:2377",
                    advertise_addr=layout.address,
                )
            except APIError as exc:
                if not joining_in_background(exc):
                    raise  # else _wait_nodes_ready waits for it, bounded
    # managers one at a time (each joins the raft group the ones before formed), workers PARALLEL at once
    for layout in layouts[1:managers]:
        join(layout, tokens["Manager"])
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for future in [pool.submit(join, layout, tokens["Worker"]) for layout in layouts[managers:]]:
            future.result()


def joining_in_background(exc: APIError) -> bool:
    """A join the engine gave up waiting for but goes on with (503 "Timeout was reached before node joined. The
    attempt to join the swarm will continue in the background"): seen at 48 nodes, 8 joining at once on 2 cores."""
    return exc.status_code == 503 and "continue in the background" in str(exc.explanation or "")


def _wait_nodes_ready(manager: NodeLayout, count: int, deadline: float) -> None:
    listed: list[dict] = []
    while time.monotonic() < deadline:
        try:
            with engines.client(manager) as api:
                listed = api.nodes()
        except ENGINE_ERRORS:
            listed = []
        if sum(1 for n in listed if n.get("Status", {}).get("State") == "ready") >= count:
            return
        time.sleep(0.2)
    raise LabError(not_ready(listed, count))


def not_ready(listed: list[dict], count: int) -> str:
    """'only 42 of 48 swarm nodes became Ready (node7 down, node9 unknown, 1 never joined)' from the manager's
    node list."""
    ready = [n for n in listed if n.get("Status", {}).get("State") == "ready"]
    others = sorted(((str(n.get("Description", {}).get("Hostname") or n.get("ID", "?")[:12]),
                      str(n.get("Status", {}).get("State") or "?")) for n in listed if n not in ready),
                    key=lambda hs: natural_key(hs[0]))
    parts = [f"{host} {state}" for host, state in others[:10]] + ([f"{len(others) - 10} more"] if len(others) > 10
                                                                 else [])
    if count > len(listed):
        parts.append(f"{count - len(listed)} never joined")
    return f"only {len(ready)} of {count} swarm nodes became Ready" + (f" ({', '.join(parts)})" if parts else "")


# ------------------------------------------------------------------------------------------------- down


def down(log=print) -> list[str]:
    """Remove everything the lab creates. Safe to run twice, after a crash or after a half-finished up."""
    removed: list[str] = []
    layouts = [node(i) for i in range(1, MAX_NODES + 1)]  # every slot: the state file may be gone

    # 1. Engines: stop containers fast, then dockerd gracefully (it unmounts what it mounted).
    running = [layout for layout in layouts if engines.dockerd_pid(layout) is not None]
    with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        list(pool.map(_kill_containers, running))
        stopped = list(pool.map(lambda n: engines.stop_engine(n, timeout=15), running))
    removed += [f"engine {n.name}" for n, ok in zip(running, stopped, strict=False) if ok]

    # 2. Anything left over (containerd, shims, container processes, a crashed run's orphans).
    leftovers = engines.lab_processes([Path("/run/netns") / ns for ns in netns_list_lab()])
    engines.kill_all(leftovers)
    removed += [f"process {pid}" for pid in leftovers]

    # 3. Mounts below the lab's directories, deepest first.
    for mountpoint in sorted(_lab_mounts(), key=len, reverse=True):
        run(["umount", "-l", mountpoint], check=False)
        removed.append(f"mount {mountpoint}")

    # 4. Network: namespaces (their veth ends go with them), host veths, bridge, iptables rules.
    for ns in netns_list_lab():
        run(["ip", "netns", "delete", ns], check=False)
        removed.append(f"netns {ns}")
    for iface in sorted(os.listdir("/sys/class/net")):
        if iface.startswith(f"{PREFIX}-n"):
            run(["ip", "link", "delete", iface], check=False)
            removed.append(f"link {iface}")
    if link_exists(BRIDGE):
        run(["ip", "link", "delete", BRIDGE], check=False)
        removed.append(f"bridge {BRIDGE}")
    removed += _remove_host_iptables_rules()

    # 5. cgroups the engines created for their containers, then the state directories.
    removed += _remove_lab_cgroups()
    for directory in (run_dir(), data_dir()):
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(f"dir {directory}")
    log("lab down: " + (_summary(removed) if removed else "nothing to remove"))
    return removed


def _summary(removed: list[str]) -> str:
    """['engine node1', 'mount /x', 'mount /y'] -> 'removed 1 engine, 2 mounts'."""
    plural = {"process": "processes", "netns": "netns"}
    counts = Counter(item.split()[0] for item in removed)
    return "removed " + ", ".join(
        f"{n} {plural.get(kind, kind + 's') if n > 1 else kind}" for kind, n in counts.items()
    )


def _kill_containers(layout: NodeLayout) -> None:
    try:
        with engines.client(layout, timeout=5) as api:
            for container in api.containers():
                try:
                    api.kill(container["Id"])
                except APIError:
                    pass
    except ENGINE_ERRORS:
        pass  # the engine does not answer: step 2 kills its processes


def _lab_mounts() -> list[str]:
    roots = (str(run_dir()) + "/", str(data_dir()) + "/")
    mounts = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mountpoint = line.split()[4].replace("\\040", " ")
            if mountpoint.startswith(roots):
                mounts.append(mountpoint)
    return mounts


def _remove_host_iptables_rules() -> list[str]:
    removed = []
    for table in ("filter", "nat"):
        rules = run(["iptables", "-t", table, "-S"], check=False).stdout.splitlines()
        for rule in rules:
            if IPTABLES_COMMENT in rule and rule.startswith("-A "):
                args = rule.split()
                args[0] = "-D"
                run(["iptables", "-t", table, *[a.strip('"') for a in args]], check=False)
                removed.append(f"iptables-rule {table} {rule}")
    return removed


def _remove_lab_cgroups() -> list[str]:
    removed = []
    root = Path("/sys/fs/cgroup")
    candidates = list(root.glob(f"{PREFIX}-node*")) + list(root.glob(f"*/{PREFIX}-node*"))
    for top in candidates:
        # children first: container cgroups, then the node's parent cgroup
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(directory)
        if _rmdir(top):
            removed.append(f"cgroup {top.relative_to(root)}")
    return removed


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------- status


def status() -> tuple[LabState | None, list[NodeStatus]]:
    state = read_state()
    if state is None:
        return None, []
    swarm_nodes = _swarm_view(state)
    result = []
    for layout in state.layouts:
        answering = engines.engine_answers(layout)
        if answering:
            engine = "running"
        elif engines.dockerd_pid(layout) is not None:
            engine = "not answering"
        else:
            engine = "stopped"
        role, swarm_state = swarm_nodes.get(layout.address, ("-", "unknown"))
        result.append(
            NodeStatus(layout.name, role, layout.address, str(layout.socket), engine, swarm_state, faults_of(layout))
        )
    return state, result


def _swarm_view(state: LabState) -> dict[str, tuple[str, str]]:
    """address -> (role, state) as the first answering manager sees it."""
    for layout in state.layouts[: state.managers]:
        if not engines.engine_answers(layout):
            continue
        try:
            with engines.client(layout, timeout=5) as api:
                return {n["Status"]["Addr"]: (n["Spec"]["Role"], n["Status"]["State"]) for n in api.nodes()}
        except ENGINE_ERRORS:
            continue
    return {}


_LOSS_RULE = re.compile(r"--probability ([0-9.]+)")
_LINK_MTU = re.compile(r"\bmtu (\d+)")


def faults_of(layout: NodeLayout) -> list[str]:
    """The faults in force on a node, read from the system (not from a record that could be stale)."""
    faults = []
    if not layout.netns_path.exists():
        return ["network namespace missing"]
    rules = in_netns(layout, ["iptables", "-S", FAULT_CHAIN], check=False).stdout
    match = _LOSS_RULE.search(rules)
    if match:
        faults.append(f"loss {float(match.group(1)) * 100:g}%")
    # /sys is the host's under nsenter --net: ask ip inside the namespace
    link = in_netns(layout, ["ip", "-o", "link", "show", "eth0"], check=False).stdout
    match = _LINK_MTU.search(link)
    mtu = int(match.group(1)) if match else None
    if mtu is not None and mtu != DEFAULT_MTU:
        faults.append(f"mtu {mtu}")
    if not Path(f"/sys/class/net/{layout.veth_host}/master").exists():
        faults.append("partition")
    if engines.dockerd_pid(layout) is None:
        faults.append("engine-stop")
    return faults + hostfaults.faults_of(layout)


def endpoints() -> list[EndpointSpec]:
    """Every engine of the running lab (`--lab`); EndpointError when none runs."""
    state = read_state()
    if state is None:
        raise EndpointError("no lab is running: start one with `overlaytui lab up` (as root)")
    return [EndpointSpec(n.docker_host, f"lab {n.name}") for n in state.layouts]


def underlay_mtus(node_addresses) -> dict[str, int]:
    """What can be known of the nodes' underlay MTUs with the lab: this host's NICs and the lab's node links
    (the frame builder's reader with --lab)."""
    from ..sources.underlay import local_underlay_mtus

    mtus = local_underlay_mtus(node_addresses)
    try:
        mtus.update(link_mtus())
    except Exception:  # noqa: BLE001 - not root, or the lab is gone: the check works with what is known
        pass
    return mtus


def link_mtus() -> dict[str, int]:
    """Each running lab node's underlay address -> its link MTU (read in its namespace)."""
    state = read_state()
    result = {}
    for layout in state.layouts if state else ():
        if not layout.netns_path.exists():
            continue
        match = _LINK_MTU.search(in_netns(layout, ["ip", "-o", "link", "show", "eth0"], check=False).stdout)
        if match:
            result[layout.address] = int(match.group(1))
    return result


# ------------------------------------------------------------------------------------------------ faults


def fault(node_name: str, kind: str, value: str | None = None) -> str:
    """Apply a fault to one node; returns a one-line description of what was done."""
    state = read_state()
    if state is None:
        raise LabError("no lab is running: start one with `overlaytui lab up`")
    layout = _lab_node(state, node_name)
    if kind == "loss":
        pct = _number(value, "loss PCT", 0, 100)
        _set_loss(layout, pct)
        return f"{layout.name}: dropping {pct:g}% of incoming VXLAN (udp/4789) packets"
    if kind == "mtu":
        mtu = int(_number(value, "mtu BYTES", 576, 9000))
        in_netns(layout, ["ip", "link", "set", "eth0", "mtu", str(mtu)])
        return f"{layout.name}: underlay link MTU set to {mtu}"
    if kind == "partition":
        run(["ip", "link", "set", layout.veth_host, "nomaster"])
        return f"{layout.name}: cut off the lab bridge"
    if kind == "engine-stop":
        engines.stop_engine(layout)
        return f"{layout.name}: engine stopped"
    if kind == "engine-start":
        return _engine_start(layout)
    if kind == "hostname":
        if not value or len(value.encode()) > 64 or "\x00" in value:
            raise LabError("hostname NAME: 1 to 64 bytes, no NUL (a kernel hostname)")
        if value == layout.name:
            layout.hostname_path.unlink(missing_ok=True)
        else:
            layout.hostname_path.write_text(value)
        engines.stop_engine(layout)
        _engine_start(layout)
        return f"{layout.name}: engine restarted with hostname {value!r}"
    if kind == "ssh-stop":
        sshd.stop(layout)
        return f"{layout.name}: sshd stopped"
    if kind == "ssh-start":
        sshd.start(layout)
        return f"{layout.name}: sshd started"
    if kind in hostfaults.KINDS:
        return hostfaults.apply(layout, kind, value, [n.address for n in state.layouts if n != layout])
    if kind == "clear":
        hostfaults.clear(layout)
        _set_loss(layout, 0)
        in_netns(layout, ["ip", "link", "set", "eth0", "mtu", str(DEFAULT_MTU)])
        run(["ip", "link", "set", layout.veth_host, "master", BRIDGE])
        _engine_start(layout)
        if sshd.enabled():
            sshd.start(layout)
        return f"{layout.name}: all faults cleared"
    raise LabError(f"unknown fault {kind!r}: use one of {', '.join(FAULT_KINDS)}")


def _lab_node(state: LabState, node_name: str) -> NodeLayout:
    from .layout import node_by_name

    try:
        layout = node_by_name(node_name)
    except ValueError as exc:
        raise LabError(str(exc)) from None
    if layout.index > state.nodes:
        raise LabError(f"the lab has node1..node{state.nodes}, not {node_name}")
    return layout


def _number(value: str | None, what: str, low: float, high: float) -> float:
    try:
        number = float(value if value is not None else "")
    except ValueError:
        raise LabError(f"{what}: expected a number between {low:g} and {high:g}, got {value!r}") from None
    if not low <= number <= high:
        raise LabError(f"{what}: expected a number between {low:g} and {high:g}, got {value}")
    return number


def _set_loss(layout: NodeLayout, pct: float) -> None:
    """Incoming VXLAN only: a ping across the node then loses PCT % whichever way it goes."""
    chain_exists = in_netns(layout, ["iptables", "-S", FAULT_CHAIN], check=False).returncode == 0
    if not chain_exists:
        if pct == 0:
            return
        in_netns(layout, ["iptables", "-N", FAULT_CHAIN])
        in_netns(layout, ["iptables", "-I", "INPUT", "-j", FAULT_CHAIN])
    in_netns(layout, ["iptables", "-F", FAULT_CHAIN])
    if pct > 0:
        in_netns(layout, ["iptables", "-A", FAULT_CHAIN, "-p", "udp", "--dport", "4789", "-m", "statistic",
                          "--mode", "random", "--probability", f"{pct / 100:.6f}", "-j", "DROP"])


def _engine_start(layout: NodeLayout) -> str:
    if engines.engine_answers(layout):
        return f"{layout.name}: engine already running"
    if engines.dockerd_pid(layout) is not None:
        engines.stop_engine(layout)
    proc = engines.start_engine(layout)
    engines.wait_for_engine(layout, proc, deadline=time.monotonic() + 60)
    return f"{layout.name}: engine started"
