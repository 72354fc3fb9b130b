"""The deep view's parser: one node's raw reading (sources/deepraw.py: section key -> Reading) into a typed,
immutable `NodeKernel` (model.py).

What was not read, or could not be understood, is `unavailable` with the reason — never guessed: a tool the
image lacks, a command that failed (its stderr), output that is not what the command prints. The readings are
untrusted (another host's tools, possibly a hostile image): every list is bounded, every text cut to a length,
numbers must be numbers, and nothing here raises on bad input.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ..model import (
    ConntrackView,
    FdbEntry,
    FirewallRule,
    FirewallView,
    IpsecView,
    KernelFeature,
    NeighEntry,
    NodeKernel,
    SandboxKernel,
    UnderlayLink,
    UnderlayRoute,
    VxlanDevice,
    XfrmPolicy,
    XfrmState,
)
from .deepraw import NodeRaw, Reading

MAX_ITEMS = 20_000  # entries kept per list (links, FDB, neighbours, rules, states): beyond, the rest is cut and said
MAX_TEXT = 300  # characters kept of any one value (a name, a rule's text)
MAX_SANDBOXES = 2_000
MAX_INT = (1 << 63) - 1

# what swarm needs open: the blocks a rule can have
SWARM_PORTS = {("udp", 4789): "4789/udp", ("tcp", 7946): "7946/tcp", ("udp", 7946): "7946/udp",
               ("tcp", 2377): "2377/tcp"}
ALL = "all"  # a rule without a protocol or port match: it blocks everything it matches (by address)
ESP = "esp"
# Docker's own rule (libnetwork drivers/overlay encryption.go programInput): for an encrypted overlay, VXLAN with
# the overlay's VNI that did not come through IPsec is dropped: `-p udp --dport 4789 -m u32 --u32
# "0>>22&0x3C@12&0xFFFFFF00=<VNI << 8>" -j DROP` (iptables-save prints it in hex: `...&0xffffff00=0x100300`)
_U32_VNI = re.compile(r"0x0?>>0x16&0x3c@0xc&0xffffff00=(0x[0-9a-f]+|\d+)", re.IGNORECASE)
_SANDBOX = re.compile(r"^[0-9]+-[0-9a-z]{1,64}$")
_BASE_CHAINS = {"INPUT", "OUTPUT", "PREROUTING", "POSTROUTING"}  # what a host's own traffic passes (not FORWARD)


def text(value: object, limit: int = MAX_TEXT) -> str:
    """A value from a reading as bounded text (never raises)."""
    if not isinstance(value, str):
        value = "" if value is None else str(value)
    return value if len(value) <= limit else value[:limit - 1] + "…"


def integer(value: object) -> int | None:
    """A counter or size: a non-negative int within 64 bits, else None (a bool is not a number)."""
    if type(value) is int and 0 <= value <= MAX_INT:
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
        number = int(value.strip())
        return number if number <= MAX_INT else None
    return None


def why(reading: Reading | None, what: str) -> str:
    """Why a reading cannot be used ("" when it can)."""
    if reading is None:
        return f"{what}: not read"
    if reading.missing:
        return f"{what}: the tool is not in the image"
    if reading.rc != 0:
        detail = text((reading.err or reading.out).strip().splitlines()[-1] if (reading.err or reading.out).strip()
                      else "", 160)
        return f"{what}: exit {reading.rc}" + (f" ({detail})" if detail else "")
    if reading.truncated:
        return f"{what}: output cut at the reader's limit"
    return ""


def json_list(reading: Reading | None, what: str) -> tuple[list[dict], str]:
    """A reading that prints a JSON list of objects (iproute2 -j): (its objects, "") or ([], why not)."""
    reason = why(reading, what)
    if reason:
        return [], reason
    assert reading is not None
    body = reading.out.strip()
    if not body:
        return [], ""  # iproute2 prints nothing for an empty table
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return [], f"{what}: not JSON"
    if not isinstance(data, list):
        return [], f"{what}: not a JSON list"
    return [item for item in data[:MAX_ITEMS] if isinstance(item, dict)], ""


# ------------------------------------------------------------------------------------------------ underlay


def parse_links(reading: Reading | None) -> tuple[dict[str, dict], str]:
    items, reason = json_list(reading, "ip link")
    return {text(i.get("ifname")): i for i in items if i.get("ifname")}, reason


def _stat(link: Mapping[str, Any], way: str, name: str) -> int | None:
    stats = link.get("stats64") or link.get("stats")
    if not isinstance(stats, dict) or not isinstance(stats.get(way), dict):
        return None
    return integer(stats[way].get(name))


def parse_route(peer: str, reading: Reading | None) -> UnderlayRoute:
    items, reason = json_list(reading, f"ip route get {peer}")
    if reason:
        return UnderlayRoute(peer, unavailable=reason)
    if not items:
        return UnderlayRoute(peer, unavailable=f"ip route get {peer}: no route")
    route = items[0]
    return UnderlayRoute(peer, text(route.get("dev")), text(route.get("prefsrc")),
                         "" if route.get("dev") else f"ip route get {peer}: no interface in the answer")


def parse_ethtool_k(reading: Reading | None) -> tuple[str, str]:
    """(tx checksum offload "on"/"off", "") or ("", why not) from `ethtool -k IFNAME`."""
    reason = why(reading, "ethtool -k")
    if reason:
        return "", reason
    assert reading is not None
    for line in reading.out.splitlines()[:2000]:
        key, _, value = line.strip().partition(":")
        if key == "tx-checksumming":
            state = value.split()[0] if value.split() else ""
            return (state, "") if state in ("on", "off") else ("", f"ethtool -k: tx-checksumming is {text(value, 40)}")
    return "", "ethtool -k: no tx-checksumming line"


def parse_ethtool_i(reading: Reading | None) -> tuple[str, str]:
    reason = why(reading, "ethtool -i")
    if reason:
        return "", reason
    assert reading is not None
    for line in reading.out.splitlines()[:200]:
        key, _, value = line.partition(":")
        if key.strip() == "driver":
            return text(value.strip(), 60), ""
    return "", "ethtool -i: no driver line"


def parse_underlay(raw: NodeRaw) -> tuple[tuple[UnderlayRoute, ...], tuple[UnderlayLink, ...], str]:
    peers = sorted(key.split("/", 2)[2] for key in raw if key.startswith("host/route-get/"))[:MAX_ITEMS]
    routes = tuple(parse_route(peer, raw.get(f"host/route-get/{peer}")) for peer in peers)
    links, reason = parse_links(raw.get("host/ip-link"))
    if not peers:
        return (), (), "no route to a peer was read (no peers known, or not attempted)"
    used = sorted({r.interface for r in routes if r.interface})
    found = []
    for name in used:
        offload, offload_why = parse_ethtool_k(raw.get(f"host/ethtool-k/{name}"))
        driver, driver_why = parse_ethtool_i(raw.get(f"host/ethtool-i/{name}"))
        link = links.get(name)
        if link is None:
            found.append(UnderlayLink(name, tx_checksum=offload, driver=driver,
                                      unavailable=reason or f"ip link: no interface {name}",
                                      offload_unavailable=offload_why, driver_unavailable=driver_why))
            continue
        found.append(UnderlayLink(
            name, integer(link.get("mtu")), _stat(link, "rx", "errors"), _stat(link, "rx", "dropped"),
            _stat(link, "tx", "errors"), _stat(link, "tx", "dropped"), offload, driver,
            offload_unavailable=offload_why, driver_unavailable=driver_why))
    return routes, tuple(found), ""


# ----------------------------------------------------------------------------------------------- sandboxes


def parse_vxlan(links: Iterable[Mapping[str, Any]]) -> tuple[VxlanDevice, ...]:
    devices = []
    for link in links:
        info = link.get("linkinfo")
        if not isinstance(info, dict) or info.get("info_kind") != "vxlan":
            continue
        data = info.get("info_data") if isinstance(info.get("info_data"), dict) else {}
        assert isinstance(data, dict)

        def stat(way: str, name: str, link=link) -> int:
            return _stat(link, way, name) or 0
        devices.append(VxlanDevice(
            text(link.get("ifname")), integer(data.get("id")), text(data.get("local") or ""),
            integer(data.get("port")), integer(link.get("mtu")),
            stat("rx", "packets"), stat("rx", "bytes"), stat("rx", "errors"), stat("rx", "dropped"),
            stat("tx", "packets"), stat("tx", "bytes"), stat("tx", "errors"), stat("tx", "dropped")))
    return tuple(devices)


def parse_fdb(items: Iterable[Mapping[str, Any]], vxlan_names: set[str]) -> tuple[FdbEntry, ...]:
    """The vxlan devices' entries (the bridge's own and the veths' are not about remote VTEPs)."""
    return tuple(FdbEntry(text(i.get("mac"), 40).lower(), text(i.get("dst") or "", 64), text(i.get("ifname"), 40),
                          text(i.get("state") or "", 20))
                 for i in items if i.get("ifname") in vxlan_names and i.get("mac"))


def parse_neigh(items: Iterable[Mapping[str, Any]]) -> tuple[NeighEntry, ...]:
    found = []
    for i in items:
        if not i.get("dst") or not i.get("lladdr"):
            continue
        state = i.get("state")
        state_text = ",".join(text(s, 20) for s in state[:4]) if isinstance(state, list) else text(state or "", 20)
        found.append(NeighEntry(text(i.get("dst"), 64), text(i.get("lladdr"), 40).lower(), text(i.get("dev"), 40),
                                state_text))
    return tuple(found)


def parse_sandbox(raw: NodeRaw, name: str) -> SandboxKernel:
    links, link_why = json_list(raw.get(f"sbx/{name}/ip-link"), "ip link")
    vxlan = parse_vxlan(links)
    if not link_why and not vxlan:
        link_why = "no vxlan device in the sandbox"
    names = {d.name for d in vxlan}
    fdb_items, fdb_why = json_list(raw.get(f"sbx/{name}/fdb"), "bridge fdb")
    if link_why and not fdb_why:
        fdb_why = "the vxlan device was not read: its entries cannot be told apart"
    neigh_items, neigh_why = json_list(raw.get(f"sbx/{name}/neigh"), "ip neigh")
    prefix = name.split("-", 1)[1] if "-" in name else ""
    return SandboxKernel(name, prefix, vxlan, parse_fdb(fdb_items, names) if not fdb_why else (),
                         parse_neigh(neigh_items), link_why, fdb_why, neigh_why)


def parse_sandboxes(raw: NodeRaw) -> tuple[tuple[SandboxKernel, ...], str]:
    listing = raw.get("meta/sandboxes")
    reason = why(listing, "the overlay sandboxes")
    if reason:
        return (), reason
    assert listing is not None
    names = [line.strip() for line in listing.out.splitlines()[:MAX_SANDBOXES] if _SANDBOX.match(line.strip())]
    return tuple(parse_sandbox(raw, n) for n in sorted(set(names))), ""


# ------------------------------------------------------------------------------------------------ firewall


def _ports(spec: str) -> list[tuple[int, int]]:
    """`4789`, `4000:5000`, `4789,7946` -> ranges; anything else -> []."""
    found = []
    for part in spec.split(",")[:64]:
        low, _, high = part.partition(":")
        if low.isdigit() and (not high or high.isdigit()) and len(low) <= 5 and len(high) <= 5:
            found.append((int(low), int(high or low)))
    return found


def _blocks(protocols: Iterable[str], ports: list[tuple[int, int]] | None, negated: bool) -> tuple[str, ...]:
    """What a drop rule with these protocols and (destination or source) ports blocks of swarm's traffic."""
    protocols = {p.lower() for p in protocols}
    found = []
    if protocols & {"esp", "50"} and not ports:
        found.append(ESP)
    for (proto, port), name in SWARM_PORTS.items():
        if protocols and proto not in protocols:
            continue
        if ports is None:
            if protocols:  # a protocol without a port: all of it
                found.append(name)
            continue
        inside = any(low <= port <= high for low, high in ports)
        if inside != negated:
            found.append(name)
    if not protocols and ports is None:
        return (ALL,)
    return tuple(found)


def parse_iptables_rule(line: str, source: str, table: str) -> FirewallRule | None:
    """One `iptables-save -c` rule line, when it drops or rejects swarm's traffic (Docker's own marked)."""
    packets = size = None
    match = re.match(r"^\[(\d{1,20}):(\d{1,20})\]\s+", line)
    if match:
        packets, size = integer(match.group(1)), integer(match.group(2))
        line = line[match.end():]
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if len(words) < 2 or words[0] != "-A":
        return None
    chain = words[1]
    target = words[words.index("-j") + 1] if "-j" in words[:-1] else ""
    if target not in ("DROP", "REJECT"):
        return None
    protocols: list[str] = []
    ports: list[tuple[int, int]] | None = None
    negated = False
    for i, word in enumerate(words[:-1]):
        if word in ("-p", "--protocol"):
            protocols.append(words[i + 1])
        elif word in ("--dport", "--dports", "--destination-port", "--destination-ports", "--sport", "--sports",
                      "--source-port", "--source-ports", "--ports"):
            ports = (ports or []) + _ports(words[i + 1])
            negated = negated or (i > 0 and words[i - 1] == "!")
    blocks = _blocks(protocols, ports, negated)
    if not blocks:
        return None
    docker = ""
    u32 = _U32_VNI.search(line)
    if u32 and "4789/udp" in blocks and "--u32" in words:
        vni = int(u32.group(1), 0) >> 8
        docker = (f"Docker's rule for the encrypted overlay with VNI {vni}: VXLAN that did not come through IPsec is "
                  "dropped (by design)")
    addresses = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-s", "-d", "--source", "--destination")]
    body = text(f"-t {table} {line}", 400)
    return FirewallRule(source, table, text(chain, 60), body, blocks, target, packets, size, docker,
                        tuple(text(a, 64) for a in addresses[:8]))


def _reachable(jumps: Mapping[str, set[str]], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots]
    while todo:
        chain = todo.pop()
        if chain in seen:
            continue
        seen.add(chain)
        todo.extend(jumps.get(chain, ()))
    return seen


def parse_iptables_save(reading: Reading | None, source: str) -> tuple[list[FirewallRule], bool, str]:
    """(the blocking rules in chains a host's own traffic passes, whether Docker's chains are there, why not)."""
    reason = why(reading, f"{source}-save")
    if reason:
        return [], False, reason
    assert reading is not None
    table = ""
    rules: list[tuple[str, FirewallRule]] = []
    jumps: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    docker = False
    for line in reading.out.splitlines()[:MAX_ITEMS * 4]:
        line = line.strip()
        if line.startswith("*"):
            table = text(line[1:], 30)
        elif line.startswith(":"):
            docker = docker or line.startswith(":DOCKER")
        elif "-A " in line[:40]:
            words = line.split()
            at = words.index("-A") if "-A" in words else -1
            chain = words[at + 1] if 0 <= at < len(words) - 1 else ""
            if "-j" in words[:-1]:
                jumps[table][chain].add(words[words.index("-j") + 1])
            rule = parse_iptables_rule(line, source, table)
            if rule is not None and len(rules) < MAX_ITEMS:
                rules.append((table, rule))
    kept = [rule for table_name, rule in rules
            if rule.chain in _reachable(jumps[table_name], _BASE_CHAINS)]
    return kept, docker, ""


def _nft_match(expr: Mapping[str, Any]) -> tuple[str, str, Any, str] | None:
    """(what, field, right, op) of an nft JSON match: ("udp", "dport", 4789, "==") or ("meta", "l4proto", ...)."""
    match = expr.get("match")
    if not isinstance(match, dict):
        return None
    left = match.get("left")
    if not isinstance(left, dict):
        return None
    op = str(match.get("op", "=="))
    if isinstance(left.get("payload"), dict):
        payload = left["payload"]
        return str(payload.get("protocol", "")), str(payload.get("field", "")), match.get("right"), op
    if isinstance(left.get("meta"), dict):
        return "meta", str(left["meta"].get("key", "")), match.get("right"), op
    return None


def _nft_values(right: Any) -> tuple[list[str], list[tuple[int, int]]]:
    """An nft match's right side: (words, port ranges)."""
    words: list[str] = []
    ranges: list[tuple[int, int]] = []
    values = right.get("set") if isinstance(right, dict) and "set" in right else [right]
    for value in values if isinstance(values, list) else []:
        if isinstance(value, dict) and isinstance(value.get("range"), list) and len(value["range"]) == 2:
            low, high = (integer(v) for v in value["range"])
            if low is not None and high is not None:
                ranges.append((low, high))
        elif type(value) is int:
            ranges.append((value, value))
            words.append(str(value))
        elif isinstance(value, str):
            words.append(value)
    return words, ranges


def parse_nft_rule(rule: Mapping[str, Any]) -> FirewallRule | None:
    exprs = rule.get("expr")
    if not isinstance(exprs, list):
        return None
    verdict = ""
    protocols: list[str] = []
    ports: list[tuple[int, int]] | None = None
    negated = False
    packets = size = None
    u32 = False
    addresses: list[str] = []
    for expr in exprs[:200]:
        if not isinstance(expr, dict):
            continue
        if "drop" in expr:
            verdict = "DROP"
        elif "reject" in expr:
            verdict = "REJECT"
        elif isinstance(expr.get("counter"), dict):
            packets, size = integer(expr["counter"].get("packets")), integer(expr["counter"].get("bytes"))
        elif isinstance(expr.get("xt"), dict) and expr["xt"].get("name") == "u32":
            u32 = True
        matched = _nft_match(expr)
        if matched is None:
            continue
        what, field, right, op = matched
        words, ranges = _nft_values(right)
        if what in ("udp", "tcp", "th") and field in ("dport", "sport"):
            if what != "th":
                protocols.append(what)
            ports = (ports or []) + ranges
            negated = negated or op == "!="
        elif (what == "meta" and field in ("l4proto", "protocol")) or (what in ("ip", "ip6") and field in (
                "protocol", "nexthdr")):
            protocols += [w for w in words if not w.isdigit() or w == "50"]
        elif what in ("ip", "ip6") and field in ("saddr", "daddr"):
            addresses += [w for w in words][:8]
    if not verdict:
        return None
    blocks = _blocks(protocols, ports, negated)
    if not blocks:
        return None
    docker = ""
    if u32 and "4789/udp" in blocks:
        docker = "Docker's rule for an encrypted overlay: VXLAN that did not come through IPsec is dropped (by design)"
    family, table, chain = (text(rule.get(k), 60) for k in ("family", "table", "chain"))
    body = text(json.dumps(exprs, separators=(",", ":"))[:400], 400)
    return FirewallRule("nft", f"{family} {table}", chain, body, blocks, verdict, packets, size, docker,
                        tuple(text(a, 64) for a in addresses))


def parse_nft(reading: Reading | None, skip_tables: set[tuple[str, str]]) -> tuple[list[FirewallRule], bool, str]:
    """`nft -j list ruleset`: the blocking rules in chains reachable from input/output/prerouting/postrouting
    hooks (whether Docker's nftables tables are there). Tables in `skip_tables` (iptables-nft's own, already read
    from iptables-nft-save) are left out."""
    reason = why(reading, "nft list ruleset")
    if reason:
        return [], False, reason
    assert reading is not None
    try:
        data = json.loads(reading.out or "{}")
    except (ValueError, RecursionError):
        return [], False, "nft list ruleset: not JSON"
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return [], False, "nft list ruleset: no nftables list"
    roots: dict[tuple[str, str], set[str]] = defaultdict(set)
    jumps: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    rules: list[tuple[tuple[str, str], str, FirewallRule]] = []
    docker = False
    for item in items[:MAX_ITEMS * 4]:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("table"), dict):
            docker = docker or str(item["table"].get("name", "")).startswith("docker")
        chain = item.get("chain")
        if isinstance(chain, dict) and chain.get("hook") in ("input", "output", "prerouting", "postrouting"):
            roots[(str(chain.get("family")), str(chain.get("table")))].add(str(chain.get("name")))
        rule = item.get("rule")
        if not isinstance(rule, dict):
            continue
        key = (str(rule.get("family")), str(rule.get("table")))
        if key in skip_tables:
            continue
        for expr in rule.get("expr") or []:
            for verb in ("jump", "goto"):
                if isinstance(expr, dict) and isinstance(expr.get(verb), dict):
                    jumps[key][str(rule.get("chain"))].add(str(expr[verb].get("target")))
        parsed = parse_nft_rule(rule)
        if parsed is not None and len(rules) < MAX_ITEMS:
            rules.append((key, str(rule.get("chain")), parsed))
    kept = [r for key, chain, r in rules if chain in _reachable(jumps[key], roots[key])]
    return kept, docker, ""


IPTABLES_TABLES = {"filter", "nat", "mangle", "raw", "security"}


def parse_firewall(raw: NodeRaw) -> FirewallView:
    legacy, legacy_docker, legacy_why = parse_iptables_save(raw.get("host/iptables-legacy-save"), "iptables-legacy")
    nft_save, nft_docker, nft_save_why = parse_iptables_save(raw.get("host/iptables-nft-save"), "iptables-nft")
    skip = ({(family, t) for family in ("ip", "ip6") for t in IPTABLES_TABLES} if not nft_save_why else set())
    native, native_docker, native_why = parse_nft(raw.get("host/nft-ruleset"), skip)
    read = tuple(name for name, reason in (("iptables-legacy", legacy_why), ("iptables-nft", nft_save_why),
                                           ("nft", native_why)) if not reason)
    reasons = [r for r in (legacy_why, nft_save_why, native_why) if r]
    if not read:
        return FirewallView(unavailable="; ".join(reasons))
    backend = ("iptables-legacy" if legacy_docker else "iptables-nft" if nft_docker
               else "nftables" if native_docker else "")
    return FirewallView(backend, tuple(legacy + nft_save + native), read, "", "; ".join(reasons))


# --------------------------------------------------------------------------------------------- ipsec, kernel


def parse_xfrm_states(reading: Reading | None) -> tuple[tuple[XfrmState, ...], str]:
    """`ip xfrm state` (with or without -s): one state per `src A dst B` line and its `proto P spi S` line."""
    reason = why(reading, "ip xfrm state")
    if reason:
        return (), reason
    assert reading is not None
    states = []
    src = dst = ""
    for line in reading.out.splitlines()[:MAX_ITEMS * 10]:
        words = line.split()
        if len(words) >= 4 and words[0] == "src" and words[2] == "dst" and not line[:1].isspace():
            src, dst = text(words[1], 64), text(words[3], 64)
        elif len(words) >= 4 and words[0] == "proto" and words[2] == "spi" and src:
            reqid = integer(words[words.index("reqid") + 1]) if "reqid" in words[:-1] else None
            states.append(XfrmState(src, dst, text(words[1], 10), text(words[3], 20), reqid))
            src = dst = ""
            if len(states) >= MAX_ITEMS:
                break
    return tuple(states), ""


def parse_xfrm_policies(reading: Reading | None) -> tuple[tuple[XfrmPolicy, ...], str]:
    reason = why(reading, "ip xfrm policy")
    if reason:
        return (), reason
    assert reading is not None
    policies: list[XfrmPolicy] = []
    current: dict[str, str] | None = None

    def close() -> None:
        if current and current.get("direction") and len(policies) < MAX_ITEMS:
            policies.append(XfrmPolicy(current.get("src", ""), current.get("dst", ""), current["direction"],
                                       current.get("proto", ""), current.get("tmpl_src", ""),
                                       current.get("tmpl_dst", "")))
    for line in reading.out.splitlines()[:MAX_ITEMS * 10]:
        words = line.split()
        if len(words) >= 4 and words[0] == "src" and words[2] == "dst" and not line[:1].isspace():
            close()
            current = {"src": text(words[1], 64), "dst": text(words[3], 64)}
            if "proto" in words[:-1]:
                current["proto"] = text(words[words.index("proto") + 1], 10)
        elif current is not None and words[:1] == ["dir"] and len(words) >= 2:
            current["direction"] = text(words[1], 10)
        elif current is not None and words[:1] == ["tmpl"] and "src" in words[:-1] and "dst" in words[:-1]:
            current["tmpl_src"] = text(words[words.index("src") + 1], 64)
            current["tmpl_dst"] = text(words[words.index("dst") + 1], 64)
    close()
    return tuple(policies), ""


def _missing_file(reading: Reading | None) -> bool:
    return reading is not None and not reading.missing and reading.rc != 0 and "No such file" in (
        reading.err + reading.out)


def parse_features(raw: NodeRaw, states: tuple[XfrmState, ...]) -> tuple[KernelFeature, KernelFeature]:
    """esp4 and ip_vs: in the kernel ("yes"), not ("no": no loadable modules at all, and not built in), or a
    loadable module not loaded ("not loaded": it may load on demand). Built in, a feature shows in the kernel's
    symbols (`host/kernel-symbols`, /proc/kallsyms lines naming it), not in /proc/modules; ip_vs shows as
    /proc/net/ip_vs either way."""
    modules = raw.get("host/proc-modules")
    loaded: set[str] | None = None
    if modules is not None and modules.ok:
        loaded = {line.split()[0] for line in modules.out.splitlines()[:MAX_ITEMS] if line.split()}
    no_modules = _missing_file(modules)  # a kernel without loadable module support: everything is built in
    symbols_reading = raw.get("host/kernel-symbols")
    symbols: set[str] | None = None
    if symbols_reading is not None and not symbols_reading.missing and symbols_reading.rc in (0, 1) \
            and not symbols_reading.err.strip():  # grep: 1 is "none found"
        symbols = {words[2] for words in (line.split() for line in symbols_reading.out.splitlines()[:1000])
                   if len(words) >= 3}

    config_reading = raw.get("host/kernel-config")
    config: dict[str, str] = {}
    if config_reading is not None and config_reading.ok:
        for line in config_reading.out.splitlines()[:50_000]:
            key, sep, value = line.partition("=")
            if sep and key.startswith("CONFIG_"):
                config[key] = value.strip()
    sys_reading = raw.get("host/sys-module")
    sys_modules = ({line.strip() for line in sys_reading.out.splitlines()[:MAX_ITEMS]}
                   if sys_reading is not None and sys_reading.ok else set())

    def feature(name: str, module: str, markers: set[str], extra: tuple[str, str] | None) -> KernelFeature:
        option = {"esp4": "CONFIG_INET_ESP", "ip_vs": "CONFIG_IP_VS"}[module]
        if loaded is not None and module in loaded:
            return KernelFeature(name, "yes", f"module {module} loaded (/proc/modules)")
        if config.get(option) == "y":
            return KernelFeature(name, "yes", f"built in ({option}=y in the kernel's config)")
        if module in sys_modules:  # not in /proc/modules (above): built in, with parameters
            return KernelFeature(name, "yes", f"built in (/sys/module/{module})")
        if symbols is not None and symbols & markers:
            return KernelFeature(name, "yes", f"built in ({', '.join(sorted(symbols & markers))} in the kernel's "
                                              "symbols)")
        if extra is not None:
            return KernelFeature(name, "yes", extra[1])
        if config and config.get(option) not in ("y", "m"):
            return KernelFeature(name, "no", f"{option} is not set in the kernel's config")
        if symbols is None and config.get(option) == "m" and loaded is not None:
            return KernelFeature(name, "not loaded", f"module {module} ({option}=m) not loaded (/proc/modules); "
                                                     "it may load on demand")
        if symbols is None:
            return KernelFeature(name, unavailable=why(symbols_reading, "the kernel's symbols") or
                                 "the kernel's symbols: not understood")
        if no_modules:
            return KernelFeature(name, "no", "the kernel has no loadable modules (/proc/modules absent) and "
                                             f"{name} is not built in (not in the kernel's symbols)")
        if loaded is not None:
            return KernelFeature(name, "not loaded", f"module {module} not loaded (/proc/modules) and not built in "
                                                     "(not in the kernel's symbols); it may load on demand")
        return KernelFeature(name, unavailable=why(modules, "/proc/modules") or "/proc/modules: not understood")

    esp_states = [s for s in states if s.proto == "esp"]
    esp = feature("esp4", "esp4", {"esp_output", "esp_input"},
                  ("", f"the kernel holds {len(esp_states)} ESP state(s)") if esp_states else None)
    ipvs_reading = raw.get("host/ip_vs")
    ipvs_extra = ("", "/proc/net/ip_vs is there") if ipvs_reading is not None and ipvs_reading.ok else None
    ipvs = feature("ip_vs", "ip_vs", {"ip_vs_conn_new"}, ipvs_extra)
    if ipvs.state == "" and _missing_file(ipvs_reading) and no_modules:
        ipvs = KernelFeature("ip_vs", "no", "/proc/net/ip_vs absent and the kernel has no loadable modules")
    return esp, ipvs


def parse_number(reading: Reading | None, what: str) -> tuple[int | None, str]:
    reason = why(reading, what)
    if reason:
        return None, reason
    assert reading is not None
    value = integer(reading.out.strip())
    return (value, "") if value is not None else (None, f"{what}: not a number")


def parse_conntrack(raw: NodeRaw) -> ConntrackView:
    count, count_why = parse_number(raw.get("host/conntrack-count"), "nf_conntrack_count")
    most, max_why = parse_number(raw.get("host/conntrack-max"), "nf_conntrack_max")
    return ConntrackView(count, most, "; ".join(r for r in (count_why, max_why) if r))


# ----------------------------------------------------------------------------------------------------- node


def parse_node(raw: NodeRaw, node_id: str = "", hostname: str = "", read_at: float = 0.0) -> NodeKernel:
    """One node's raw reading -> its kernel view. Never raises: what cannot be used is unavailable, with why."""
    raw = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, Reading)}
    failed = raw.get("meta/error")
    said = " ".join((failed.err or failed.out or "the reader failed").split()) if failed else ""  # one line
    reason = text(f"not read: {said}", 300) if failed else ""
    if failed is not None and not any(key.startswith(("host/", "sbx/")) for key in raw):
        # the reader could not read this node at all: every part says why
        return NodeKernel(text(node_id, 64), text(hostname, 256), read_at, underlay_unavailable=reason,
                          sandboxes_unavailable=reason, firewall=FirewallView(unavailable=reason),
                          ipsec=IpsecView(states_unavailable=reason, policies_unavailable=reason),
                          esp=KernelFeature("esp4", unavailable=reason),
                          ipvs=KernelFeature("ip_vs", unavailable=reason),
                          conntrack=ConntrackView(unavailable=reason), problems=(reason,))
    problems = ((reason,) if reason else ()) + tuple(  # read in part: what is there is used, the rest is absent
        text(f"{key}: output cut at the reader's limit", 200) for key, r in sorted(raw.items()) if r.truncated)[:50]
    routes, links, underlay_why = parse_underlay(raw)
    sandboxes, sandboxes_why = parse_sandboxes(raw)
    states, states_why = parse_xfrm_states(raw.get("host/xfrm-state"))
    policies, policies_why = parse_xfrm_policies(raw.get("host/xfrm-policy"))
    esp, ipvs = parse_features(raw, states)
    return NodeKernel(
        text(node_id, 64), text(hostname, 256), read_at, routes, links, sandboxes, parse_firewall(raw),
        IpsecView(states, policies, states_why, policies_why), esp, ipvs, parse_conntrack(raw), underlay_why,
        sandboxes_why, problems)
