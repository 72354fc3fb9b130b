"""Faults in a node's kernel that the probes see only as symptoms and the deep view (`--deep`) names by cause:

- `firewall`: a rule in the node's INPUT chain dropping VXLAN (udp/4789), commented `overlaytui-lab-firewall` so it
  is told apart from Docker's rules and removed exactly — what an operator's host firewall does (moby#33416);
- `stale-fdb [NETWORK]`: in one overlay's sandbox on the node, the forwarding entry of a peer task's MAC pointed at
  a VTEP that is no node (192.0.2.1, TEST-NET-1) with `bridge fdb replace` — the stale entry left by churn
  (moby#52661). The right VTEP is kept in the node's run directory and put back by `clear`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..sources.errors import ENGINE_ERRORS
from . import engines
from .host import LabError, in_netns, run
from .layout import NodeLayout

KINDS = ("firewall", "stale-fdb")
FIREWALL_COMMENT = "overlaytui-lab-firewall"
STALE_VTEP = "192.0.2.1"  # TEST-NET-1 (RFC 5737): no node's address, plainly not a real VTEP
STATE_FILE = "stale-fdb.json"
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def firewall_rule(action: str) -> list[str]:
    """The firewall fault's rule for `iptables ACTION` (-I to add, -C to check, -D to delete)."""
    if action not in ("-I", "-C", "-D"):
        raise ValueError(f"unknown iptables action {action!r}")
    return ["iptables", "-w", "5", action, "INPUT", "-p", "udp", "--dport", "4789", "-m", "comment", "--comment",
            FIREWALL_COMMENT, "-j", "DROP"]


def netns_dir(layout: NodeLayout) -> Path:
    return layout.exec_root / "netns"


def sandbox_name(network_id: str) -> str:
    """libnetwork's name of an overlay's sandbox: `1-` and the first 10 characters of the network id."""
    if not re.fullmatch(r"[A-Za-z0-9]{10,64}", network_id):
        raise ValueError(f"not a network id: {network_id!r}")
    return f"1-{network_id[:10]}"


def peer_entry(fdb: object, peers: Iterable[str]) -> tuple[str, str, str] | None:
    """(MAC, device, VTEP) of the first remote entry (`bridge -j fdb show`) whose VTEP is one of the peers': a
    unicast MAC on the vxlan device with a `dst`, in the order of (device, MAC)."""
    wanted = set(peers)
    found = []
    for entry in fdb if isinstance(fdb, list) else ():
        if not isinstance(entry, dict):
            continue
        mac, dev, dst = entry.get("mac"), entry.get("ifname"), entry.get("dst")
        if not (isinstance(mac, str) and isinstance(dev, str) and isinstance(dst, str)):
            continue
        if _MAC.fullmatch(mac) and not int(mac[:2], 16) & 1 and dst in wanted:
            found.append((dev, mac, dst))
    if not found:
        return None
    dev, mac, dst = min(found)
    return mac, dev, dst


def fdb_replace(netns: Path, mac: str, dev: str, vtep: str) -> list[str]:
    """The command that points MAC's entry on `dev` at `vtep`, inside the sandbox `netns`."""
    if not _MAC.fullmatch(mac) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", dev):
        raise ValueError(f"bad fdb entry {mac!r} on {dev!r}")
    return ["nsenter", f"--net={netns}", "bridge", "fdb", "replace", mac, "dev", dev, "dst", vtep, "self",
            "permanent"]


def apply(layout: NodeLayout, kind: str, value: str | None, peers: Sequence[str]) -> str:
    """Inject a fault; returns what was done in one line. `peers`: the other nodes' underlay addresses."""
    if kind == "firewall":
        if in_netns(layout, firewall_rule("-C"), check=False).returncode != 0:
            in_netns(layout, firewall_rule("-I"))
        return f"{layout.name}: INPUT drops udp/4789 (VXLAN), rule commented {FIREWALL_COMMENT}"
    if kind == "stale-fdb":
        return _stale_fdb(layout, value, peers)
    raise LabError(f"unknown fault {kind!r}")


def _overlay_sandboxes(layout: NodeLayout, network: str | None) -> list[tuple[str, Path]]:
    """(overlay name, its sandbox on the node): the one named (id or name), else every overlay but the ingress
    that has a sandbox on the node, by name."""
    try:
        with engines.client(layout) as api:
            if network:
                found = [api.inspect_network(network)]
            else:
                found = [n for n in api.networks(filters={"driver": "overlay"}) if not n.get("Ingress")]
    except ENGINE_ERRORS as exc:
        raise LabError(f"{layout.name}: cannot read its overlays: {exc}") from None
    result = []
    for net in sorted(found, key=lambda n: str(n.get("Name"))):
        if net.get("Driver") != "overlay":
            raise LabError(f"{network!r} is not an overlay network")
        path = netns_dir(layout) / sandbox_name(str(net.get("Id")))
        if path.exists():
            result.append((str(net.get("Name")), path))
    return result


def _stale_fdb(layout: NodeLayout, network: str | None, peers: Sequence[str]) -> str:
    for name, sandbox in _overlay_sandboxes(layout, network):
        shown = run(["nsenter", f"--net={sandbox}", "bridge", "-j", "fdb", "show"]).stdout
        try:
            entry = peer_entry(json.loads(shown or "[]"), peers)
        except ValueError:
            continue
        if entry is None:
            continue
        mac, dev, vtep = entry
        state = _state_path(layout)
        saved = _saved(layout)
        saved.append({"sandbox": sandbox.name, "mac": mac, "dev": dev, "dst": vtep})
        state.write_text(json.dumps(saved) + "\n")
        run(fdb_replace(sandbox, mac, dev, STALE_VTEP))
        return (f"{layout.name}: on {name} ({sandbox.name}), {mac} now points at VTEP {STALE_VTEP} (was {vtep}, "
                "a peer)")
    where = f"overlay {network!r}" if network else "any overlay"
    raise LabError(f"{layout.name}: {where} has no remote FDB entry here (a task on another node of it is "
                   "needed)")


def _state_path(layout: NodeLayout) -> Path:
    return layout.socket.parent / STATE_FILE


def _saved(layout: NodeLayout) -> list[dict]:
    try:
        saved = json.loads(_state_path(layout).read_text())
    except (OSError, ValueError):
        return []
    return [e for e in saved if isinstance(e, dict)] if isinstance(saved, list) else []


def clear(layout: NodeLayout) -> None:
    """Remove both faults: every rule of ours, and the stale entries (back to their saved VTEP; one without a
    saved VTEP is deleted — libnetwork adds it again with the next peer update)."""
    for _ in range(10):  # one rule per injection; a few at most
        if in_netns(layout, firewall_rule("-D"), check=False).returncode != 0:
            break
    for entry in _saved(layout):
        sandbox = netns_dir(layout) / str(entry.get("sandbox", ""))
        try:
            if sandbox.exists():
                run(fdb_replace(sandbox, str(entry.get("mac")), str(entry.get("dev")), str(entry.get("dst"))),
                    check=False)
        except ValueError:
            continue
    _state_path(layout).unlink(missing_ok=True)
    for sandbox, mac, dev in _stale_entries(layout):
        run(["nsenter", f"--net={sandbox}", "bridge", "fdb", "del", mac, "dev", dev, "dst", STALE_VTEP, "self"],
            check=False)


def _stale_entries(layout: NodeLayout) -> list[tuple[Path, str, str]]:
    """(sandbox, MAC, device) of every entry pointing at STALE_VTEP in the node's overlay sandboxes."""
    found = []
    directory = netns_dir(layout)
    for sandbox in sorted(directory.glob("1-*")) if directory.is_dir() else ():
        shown = run(["nsenter", f"--net={sandbox}", "bridge", "-j", "fdb", "show"], check=False).stdout
        try:
            entries = json.loads(shown or "[]")
        except ValueError:
            continue
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and entry.get("dst") == STALE_VTEP and _MAC.fullmatch(str(entry.get("mac"))):
                found.append((sandbox, str(entry["mac"]), str(entry.get("ifname"))))
    return found


def faults_of(layout: NodeLayout) -> list[str]:
    """The faults of this module in force on a node, read from the system."""
    faults = []
    if in_netns(layout, firewall_rule("-C"), check=False).returncode == 0:
        faults.append("firewall")
    if _stale_entries(layout):
        faults.append("stale-fdb")
    return faults
