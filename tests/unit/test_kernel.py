"""The deep view's parser (sources/kernel.py) on real readings of the lab's nodes and hand-made variants: what
each part says, and that what was not read or not understood is unavailable with its reason, never guessed."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from overlaytui.sources.deepraw import Reading
from overlaytui.sources.kernel import parse_iptables_rule, parse_node
from tests.fixtures.deep_fixtures import raw, snapshot

FRONTEND = "1-e3bphbaj1g"
SECURE = "1-fg2enahkgi"


def test_the_lab_nodes_underlay_routes_and_link():
    view = parse_node(raw("node1"), "id1", "node1")
    assert [(r.peer, r.interface, r.source, r.unavailable) for r in view.routes] == [
        ("10.231.0.2", "eth0", "10.231.0.1", ""), ("10.231.0.3", "eth0", "10.231.0.1", "")]
    [link] = view.links
    assert (link.name, link.mtu, link.tx_checksum, link.driver) == ("eth0", 1500, "on", "veth")
    assert (link.rx_errors, link.rx_dropped, link.tx_errors, link.tx_dropped) == (0, 0, 0, 0)
    assert view.underlay_unavailable == "" and view.problems == ()


def test_every_overlay_sandbox_with_its_vxlan_device_fdb_and_neighbours():
    view = parse_node(raw("node1"))
    vnis = {n.id[:10]: n.vni for n in snapshot().networks if n.driver == "overlay"}
    assert {s.network_prefix: s.vxlan[0].vni for s in view.sandboxes} == vnis
    frontend = next(s for s in view.sandboxes if s.sandbox == FRONTEND)
    [vxlan] = frontend.vxlan
    assert (vxlan.name, vxlan.dstport, vxlan.mtu, vxlan.local) == ("vxlan0", 4789, 1450, "")
    # the vxlan device's remote entries only (the bridge's and veths' own are not about VTEPs)
    remote = {(e.mac, e.dst) for e in frontend.fdb if e.dst}
    assert remote == {("02:42:0a:f0:02:04", "10.231.0.2"), ("02:42:0a:f0:02:07", "10.231.0.2"),
                      ("02:42:0a:f0:02:05", "10.231.0.3"), ("02:42:0a:f0:02:08", "10.231.0.3")}
    assert all(e.device == "vxlan0" for e in frontend.fdb)
    assert {(n.ip, n.mac) for n in frontend.neighbours} == {
        ("10.240.2.4", "02:42:0a:f0:02:04"), ("10.240.2.5", "02:42:0a:f0:02:05"),
        ("10.240.2.7", "02:42:0a:f0:02:07"), ("10.240.2.8", "02:42:0a:f0:02:08")}
    assert frontend.vxlan_unavailable == frontend.fdb_unavailable == frontend.neigh_unavailable == ""
    assert view.sandbox_of(next(n.id for n in snapshot().networks if n.name == "frontend")) is frontend


def test_dockers_own_u32_rule_for_the_encrypted_overlay_is_told_apart():
    view = parse_node(raw("node1"))
    assert view.firewall.backend == "iptables-nft"
    assert view.firewall.read == ("iptables-legacy", "iptables-nft", "nft")
    [rule] = view.firewall.rules
    secure = next(n for n in snapshot().networks if n.name == "secure")
    assert rule.blocks == ("4789/udp",) and rule.verdict == "DROP" and rule.chain == "INPUT"
    assert f"VNI {secure.vni}" in rule.docker and "by design" in rule.docker
    assert '--u32 "0x0>>0x16&0x3c@0xc&0xffffff00=0x100300"' in rule.text and (rule.packets, rule.bytes) == (0, 0)


def test_the_same_rule_read_from_nft_json_is_dockers_too():
    """Without iptables-nft-save, the iptables-nft tables are read from `nft -j` (the u32 match is an xt)."""
    readings = raw("node1")
    readings["host/iptables-nft-save"] = Reading(127, "", "not found", missing=True)
    rules = parse_node(readings).firewall.rules
    [drop] = [r for r in rules if r.chain == "INPUT"]
    assert drop.source == "nft" and drop.table == "ip filter" and drop.docker and drop.blocks == ("4789/udp",)


def test_the_lab_kernel_has_no_esp4_nor_ip_vs_and_holds_policies_without_states():
    view = parse_node(raw("node1"))
    assert (view.esp.state, view.ipvs.state) == ("no", "no")
    assert "no loadable modules" in view.esp.how
    assert view.ipsec.states == () and view.ipsec.states_unavailable == ""
    assert [(p.direction, p.proto, p.tmpl_src, p.tmpl_dst) for p in view.ipsec.policies] == [
        ("out", "udp", "10.231.0.1", "10.231.0.2"), ("out", "udp", "10.231.0.1", "10.231.0.3")]
    assert (view.conntrack.count, view.conntrack.max) == (19, 262144)


def test_a_user_firewall_in_iptables_legacy():
    view = parse_node(raw("node1", "firewall-legacy"))
    ours = [r for r in view.firewall.rules if not r.docker]
    by_blocks = {r.blocks: r for r in ours}
    assert by_blocks[("4789/udp",)].packets == 1432 and by_blocks[("4789/udp",)].chain == "OTLAB-FIREWALL"
    assert 'ops: \\"block\\" vxlan' in by_blocks[("4789/udp",)].text
    assert set(by_blocks) >= {("4789/udp",), ("7946/tcp", "2377/tcp"), ("esp",), ("all",)}
    assert by_blocks[("all",)].addresses == ("10.231.0.3/32",) and by_blocks[("all",)].verdict == "REJECT"
    # `! --dport 53` drops 4789/udp and 7946/udp too
    assert ("4789/udp", "7946/udp") in by_blocks
    # FORWARD (containers' traffic) and 22/tcp are not swarm's
    assert all(r.chain != "FORWARD" for r in view.firewall.rules)
    assert len(ours) == 5


def test_docker_on_the_nftables_backend_and_a_native_nft_firewall():
    view = parse_node(raw("node1", "nft-backend"))
    assert view.firewall.backend == "nftables"
    assert "iptables-legacy-save: the tool is not in the image" in view.firewall.partial
    rules = {r.blocks: r for r in view.firewall.rules}
    assert rules[("4789/udp",)].packets == 2210 and rules[("4789/udp",)].table == "inet filter"
    assert rules[("7946/tcp", "2377/tcp")].verdict == "REJECT"
    assert ("esp",) in rules and ("7946/udp",) in rules  # 7000-8000/udp
    assert all(not r.docker for r in view.firewall.rules)


def test_fdb_variant_keeps_the_entries_as_read():
    frontend = next(s for s in parse_node(raw("node1", "stale-fdb")).sandboxes if s.sandbox == FRONTEND)
    remote = {e.mac: e.dst for e in frontend.fdb if e.dst}
    assert remote["02:42:0a:f0:02:04"] == "10.231.0.3" and remote["02:42:0a:f0:02:08"] == "10.231.0.9"


def test_offload_driver_and_conntrack_variants():
    view = parse_node(raw("node1", "offload-off", "conntrack-full"))
    assert (view.links[0].tx_checksum, view.links[0].driver) == ("off", "vmxnet3")
    assert view.conntrack.used == 1.0


def test_esp4_and_ip_vs_as_modules_as_built_ins_and_from_the_states():
    modules = parse_node(raw("node1", "healthy-kernel", "esp-states-node1"))
    assert (modules.esp.state, modules.ipvs.state) == ("yes", "yes") and "module esp4" in modules.esp.how
    assert len(modules.ipsec.states) == 4 and {s.proto for s in modules.ipsec.states} == {"esp"}
    first = modules.ipsec.states[0]
    assert (first.src, first.dst, first.proto, first.reqid) == ("10.231.0.1", "10.231.0.2", "esp", 0xd0c4e3)
    builtin = parse_node(raw("node1", "builtin-kernel"))
    assert builtin.esp.state == "yes" and "built in" in builtin.esp.how and builtin.ipvs.state == "yes"
    loadable = raw("node1")
    loadable["host/proc-modules"] = Reading(0, "vxlan 163840 0 - Live 0x0\n")
    view = parse_node(loadable)
    assert view.esp.state == "not loaded" and "may load on demand" in view.esp.how


def test_what_was_not_read_is_unavailable_with_its_reason():
    readings = raw("node1")
    readings["host/ethtool-k/eth0"] = Reading(127, "", "sh: ethtool: not found", missing=True)
    readings["host/nft-ruleset"] = Reading(1, "", "Error: Could not process rule: Operation not permitted\n")
    readings["host/conntrack-max"] = Reading(0, "lots\n")
    del readings["host/kernel-symbols"]
    readings[f"sbx/{FRONTEND}/fdb"] = Reading(0, "{not json")
    view = parse_node(readings)
    assert view.links[0].tx_checksum == "" and "not in the image" in view.links[0].offload_unavailable
    assert "nft list ruleset: exit 1 (Error: Could not process rule: Operation not permitted)" in \
        view.firewall.partial
    assert view.conntrack.max is None and view.conntrack.unavailable == "nf_conntrack_max: not a number"
    assert view.conntrack.used is None
    assert view.esp.state == "" and view.esp.unavailable == "the kernel's symbols: not read"
    frontend = next(s for s in view.sandboxes if s.sandbox == FRONTEND)
    assert frontend.fdb == () and frontend.fdb_unavailable == "bridge fdb: not JSON"


def test_nothing_read_at_all():
    view = parse_node({})
    assert view.routes == () and view.underlay_unavailable.startswith("no route to a peer was read")
    assert view.sandboxes_unavailable == "the overlay sandboxes: not read"
    assert view.firewall.unavailable.count("not read") == 3
    assert view.ipsec.states_unavailable == "ip xfrm state: not read"
    assert view.esp.state == view.ipvs.state == "" and view.esp.unavailable
    assert view.conntrack.unavailable == "nf_conntrack_count: not read; nf_conntrack_max: not read"


def test_a_truncated_reading_is_said_and_not_used():
    readings = raw("node1")
    readings["host/iptables-nft-save"] = Reading(0, readings["host/iptables-nft-save"].out[:300], truncated=True)
    view = parse_node(readings)
    assert view.problems == ("host/iptables-nft-save: output cut at the reader's limit",)
    assert "iptables-nft-save: output cut" in view.firewall.partial


def test_hostile_values_are_bounded_and_typed():
    readings = raw("node1")
    link = [{"ifname": "eth0", "mtu": True, "stats64": {"rx": {"errors": -4, "dropped": 10 ** 30}, "tx": "x"}}]
    readings["host/ip-link"] = Reading(0, json.dumps(link))
    readings["host/route-get/10.231.0.2"] = Reading(0, json.dumps([{"dev": "eth0", "prefsrc": "\x1b]0;x\x07" * 200}]))
    readings[f"sbx/{SECURE}/neigh"] = Reading(0, "[" * 100_000 + "]" * 100_000)
    readings["meta/sandboxes"] = Reading(0, "1-ok\n../../etc\n1-\x1bbad\n" + "1-x\n" * 10)
    view = parse_node(readings, "\ud800" * 10, "[b]n[/b]")
    link_view = view.links[0]
    assert (link_view.mtu, link_view.rx_errors, link_view.rx_dropped, link_view.tx_errors) == (None, None, None, None)
    assert len(view.routes[0].source) <= 300
    assert [s.sandbox for s in view.sandboxes] == ["1-ok", "1-x"]
    assert all(s.neigh_unavailable == "ip neigh: not read" for s in view.sandboxes)
    deep = raw("node1")
    deep[f"sbx/{SECURE}/neigh"] = Reading(0, "[" * 100_000 + "]" * 100_000)
    secure = next(s for s in parse_node(deep).sandboxes if s.sandbox == SECURE)
    assert secure.neigh_unavailable == "ip neigh: not JSON"


def test_an_iptables_line_that_is_not_a_rule():
    assert parse_iptables_rule('-A INPUT -p udp --dport 4789 -m comment --comment "unclosed -j DROP', "x", "f") is None
    assert parse_iptables_rule("-A INPUT -p udp --dport 4789 -j ACCEPT", "x", "filter") is None
    assert parse_iptables_rule("-A INPUT -p udp --dport 99999999 -j DROP", "x", "filter") is None
    assert parse_iptables_rule("[1:2] -A INPUT -p udp --dport 4789 -j", "x", "filter") is None


KEYS = ["host/ip-link", "host/route-get/10.0.0.2", "host/ethtool-k/eth0", "host/ethtool-i/eth0",
        "host/iptables-legacy-save", "host/iptables-nft-save", "host/nft-ruleset", "host/xfrm-state",
        "host/xfrm-policy", "host/proc-modules", "host/kernel-symbols", "host/ip_vs", "host/conntrack-count",
        "host/conntrack-max", "meta/sandboxes", "sbx/1-a/ip-link", "sbx/1-a/fdb", "sbx/1-a/neigh"]
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                           st.sampled_from(["ifname", "dev", "mac", "dst", "lladdr", "linkinfo", "info_kind",
                                            "info_data", "stats64", "rx", "tx", "nftables", "rule", "expr", "match",
                                            "left", "right", "payload", "drop", "counter", "chain", "hook"]),
                           inner, max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), st.tuples(
    st.integers(-1, 130), st.one_of(st.text(max_size=200), JSONISH.map(json.dumps)), st.text(max_size=30),
    st.booleans()), max_size=len(KEYS)))
def test_any_reading_parses_without_raising(sections):
    sections.setdefault("meta/sandboxes", (0, "1-a\n", "", False))
    view = parse_node({k: Reading(rc, out, err, missing) for k, (rc, out, err, missing) in sections.items()})
    assert view.firewall is not None and isinstance(view.sandboxes, tuple)


def test_the_kernel_config_and_sys_module_tell_built_ins():
    readings = raw("node1")
    del readings["host/kernel-symbols"]
    readings["host/kernel-config"] = Reading(0, "CONFIG_XFRM=y\nCONFIG_INET_ESP=y\n# CONFIG_IP_VS is not set\n")
    view = parse_node(readings)
    assert view.esp.state == "yes" and "CONFIG_INET_ESP=y" in view.esp.how
    assert view.ipvs.state == "no" and "CONFIG_IP_VS is not set" in view.ipvs.how
    readings = raw("node1")
    del readings["host/kernel-symbols"]
    readings["host/sys-module"] = Reading(0, "ip_vs\nnf_conntrack\nvxlan\n")
    view = parse_node(readings)
    assert view.ipvs.state == "yes" and "/sys/module/ip_vs" in view.ipvs.how
    assert view.esp.state == "" and view.esp.unavailable == "the kernel's symbols: not read"


def test_a_node_the_reader_could_not_read():
    view = parse_node({"meta/error": Reading(1, "", "unix:///x.sock: no reading within 40 s")}, "id", "node9")
    assert view.problems == ("not read: unix:///x.sock: no reading within 40 s",)
    assert view.firewall.unavailable == view.esp.unavailable == view.conntrack.unavailable == view.problems[0]
    assert view.routes == () and view.sandboxes == ()


def test_a_node_read_in_part_keeps_what_was_read():
    readings = {k: v for k, v in raw("node1").items() if not k.startswith(("sbx/", "meta/sandboxes"))}
    readings["meta/error"] = Reading(1, "", "the reading stopped at 40 s")
    view = parse_node(readings)
    assert view.problems == ("not read: the reading stopped at 40 s",)
    assert view.links[0].mtu == 1500 and view.conntrack.count == 19
    assert view.sandboxes == () and view.sandboxes_unavailable == "the overlay sandboxes: not read"


def test_the_readers_reason_is_one_line():
    view = parse_node({"meta/error": Reading(1, "", "engine said:\nline two\r\n\x1b[2J")})
    assert view.problems == ("not read: engine said: line two \x1b[2J",)
