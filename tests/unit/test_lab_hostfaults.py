"""The lab's kernel faults (lab/hostfaults.py: firewall, stale-fdb) and the deep image's contents (lab/image.py):
the commands they build and the entries they pick, without a lab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from overlaytui.lab import hostfaults
from overlaytui.lab.host import LabUnavailable
from overlaytui.lab.image import DEEP_OPTIONAL, deep_files, xtables_extensions
from overlaytui.lab.lab import FAULT_KINDS

FDB = [  # `bridge -j fdb show` in an overlay sandbox, as the lab's engines leave it (trimmed)
    {"mac": "33:33:00:00:00:01", "ifname": "br0", "flags": ["self"], "state": "permanent"},
    {"mac": "ee:aa:b6:a4:11:58", "ifname": "vxlan0", "flags": [], "master": "br0", "state": "permanent"},
    {"mac": "02:42:0a:f0:01:08", "ifname": "vxlan0", "dst": "10.231.0.3", "flags": ["self"], "state": "permanent"},
    {"mac": "02:42:0a:f0:01:03", "ifname": "vxlan0", "dst": "10.231.0.2", "flags": ["self"], "state": "permanent"},
    {"mac": "01:00:5e:00:00:01", "ifname": "vxlan0", "dst": "10.231.0.2", "flags": ["self"]},  # multicast
    {"mac": "02:42:0a:f0:01:09", "ifname": "vxlan0", "dst": "10.9.9.9", "flags": ["self"]},  # no peer's
]


def test_the_firewall_rule_is_ours_and_the_same_for_add_check_and_delete():
    add, check, delete = (hostfaults.firewall_rule(a) for a in ("-I", "-C", "-D"))
    assert add[:4] == ["iptables", "-w", "5", "-I"] and check[3] == "-C" and delete[3] == "-D"
    assert add[4:] == check[4:] == delete[4:]
    rule = " ".join(add)
    assert "INPUT -p udp --dport 4789" in rule and rule.endswith("-j DROP")
    assert f"--comment {hostfaults.FIREWALL_COMMENT}" in rule
    with pytest.raises(ValueError):
        hostfaults.firewall_rule("-F")


def test_the_stale_entry_is_a_peer_tasks_mac_on_the_vxlan_device():
    assert hostfaults.peer_entry(FDB, ["10.231.0.2", "10.231.0.3"]) == ("02:42:0a:f0:01:03", "vxlan0", "10.231.0.2")
    assert hostfaults.peer_entry(FDB, ["10.231.0.3"]) == ("02:42:0a:f0:01:08", "vxlan0", "10.231.0.3")
    assert hostfaults.peer_entry(FDB, ["10.231.0.7"]) is None
    assert hostfaults.peer_entry([{"mac": 3}, "x", None, {"mac": "zz", "ifname": "v", "dst": "1.1.1.1"}],
                                 ["1.1.1.1"]) is None
    assert hostfaults.peer_entry({"not": "a list"}, ["10.231.0.2"]) is None


def test_the_stale_entry_is_replaced_in_the_sandbox_only(tmp_path):
    sandbox = tmp_path / "1-abcdef1234"
    command = hostfaults.fdb_replace(sandbox, "02:42:0a:f0:01:03", "vxlan0", hostfaults.STALE_VTEP)
    assert command == ["nsenter", f"--net={sandbox}", "bridge", "fdb", "replace", "02:42:0a:f0:01:03", "dev",
                       "vxlan0", "dst", "192.0.2.1", "self", "permanent"]
    for mac, dev in (("02:42:0a:f0:01:03; reboot", "vxlan0"), ("02:42:0a:f0:01:03", "vx lan"), ("", "vxlan0")):
        with pytest.raises(ValueError):
            hostfaults.fdb_replace(sandbox, mac, dev, "192.0.2.1")


def test_an_overlays_sandbox_is_named_after_its_id():
    assert hostfaults.sandbox_name("1o4xbdljkjabcdefghijklmno") == "1-1o4xbdljkj"
    for bad in ("short", "../../etc/x", "1o4xbdljkj/x"):
        with pytest.raises(ValueError):
            hostfaults.sandbox_name(bad)


def test_the_faults_are_offered_before_clear():
    assert FAULT_KINDS[-1] == "clear" and {"firewall", "stale-fdb"} <= set(FAULT_KINDS)


def test_the_deep_image_needs_its_tools_and_takes_the_optional_ones_it_finds():
    everything = deep_files(lambda tool: "/bin/true")
    assert {"bin/sh", "bin/busybox", "bin/ip", "bin/bridge", "bin/nsenter", "bin/xtables-legacy-multi",
            "bin/xtables-nft-multi"} <= set(everything)
    assert {f"bin/{tool}" for tool in DEEP_OPTIONAL} <= set(everything)
    without_optional = deep_files(lambda tool: None if tool in DEEP_OPTIONAL else "/bin/true")
    assert not {f"bin/{tool}" for tool in DEEP_OPTIONAL} & set(without_optional)
    with pytest.raises(LabUnavailable, match="nsenter.*util-linux"):
        deep_files(lambda tool: None if tool == "nsenter" else "/bin/true")


def test_xtables_extensions_keep_their_own_names(tmp_path, monkeypatch):
    """iptables opens an extension by its name: a link (libxt_MASQUERADE.so) must be in the image as itself."""
    lib = tmp_path / "lib"
    (lib / "xtables").mkdir(parents=True)
    (lib / "libxtables.so.12").write_text("")
    (lib / "xtables" / "libxt_NAT.so").write_text("")
    (lib / "xtables" / "libxt_MASQUERADE.so").symlink_to("libxt_NAT.so")
    monkeypatch.setattr("overlaytui.lab.image.shared_libraries", lambda binary: [lib / "libxtables.so.12"])
    found = xtables_extensions(Path("/usr/sbin/xtables-nft-multi"))
    assert [p.name for p in found] == ["libxt_MASQUERADE.so", "libxt_NAT.so"]


def test_the_fault_state_file_round_trips(tmp_path, monkeypatch):
    from overlaytui.lab.layout import node

    monkeypatch.setenv("OVERLAYTUI_LAB_RUN", str(tmp_path))
    layout = node(2)
    layout.socket.parent.mkdir(parents=True)
    assert hostfaults._saved(layout) == []
    hostfaults._state_path(layout).write_text(json.dumps([{"sandbox": "1-x", "mac": "m"}, "junk"]))
    assert hostfaults._saved(layout) == [{"sandbox": "1-x", "mac": "m"}]
    hostfaults._state_path(layout).write_text("not json")
    assert hostfaults._saved(layout) == []
