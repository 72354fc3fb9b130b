"""The deep view's reader (sources/deep.py): its framing parsed from hostile output, its real script run by a real
shell with stand-in tools (a body holding the framing, binary, output past the bound, a missing tool, names of
sandboxes), its bounds on an engine that never answers, and the lease rules its containers share with the probe
agents."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from overlaytui.model import ClusterSnapshot, Engine, Health, Node
from overlaytui.sources import deep
from overlaytui.sources.deep import DeepReader, DeepRun, error_reading, netns_dir, parse_output, peers_of
from overlaytui.sources.deepraw import MAX_OUTPUT, Reading
from overlaytui.sources.lease import LEASE_UNTIL_LABEL, RUN_LABEL, lapsed
from tests.unit.test_hung_engine import SilentEngine, TrickleEngine

NONCE = "0123456789abcdef"


def section(key: str, out: bytes, err: bytes = b"", rc: int = 0, missing: int = 0, truncated: int = 0) -> bytes:
    return f"S {rc} {missing} {truncated} {len(out)} {len(err)} {key}\n".encode() + out + err + b"\n"


def framed(*sections: bytes, end: bool = True) -> bytes:
    return f"OTDEEP1 {NONCE}\n".encode() + b"".join(sections) + (f"E {NONCE}\n".encode() if end else b"")


def test_sections_are_read_whole_whatever_their_bodies_hold():
    hostile = (b"S 0 0 0 3 0 host/forged\nabc\n" + f"E {NONCE}\n".encode() + b"OTDEEP1 x\n\x00\xff\xfe"
               + b"[red]markup[/] \x1b[31m")
    data = framed(section("host/ip-link", hostile, b"warn\n"), section("sbx/1-abc/fdb", b"[]", rc=2),
                  section("host/nft-ruleset", b"", b"not in the image: nft\n", rc=127, missing=1))
    readings, problem = parse_output(data, NONCE)
    assert problem == ""
    assert list(readings) == ["host/ip-link", "sbx/1-abc/fdb", "host/nft-ruleset"]  # nothing forged from a body
    link = readings["host/ip-link"]
    assert link.out.startswith("S 0 0 0 3 0 host/forged\nabc\nE ") and "\ufffd" in link.out and link.err == "warn\n"
    assert "[red]markup[/]" in link.out and link.ok
    assert readings["sbx/1-abc/fdb"] == Reading(2, "[]", "")
    nft = readings["host/nft-ruleset"]
    assert nft.missing and not nft.ok and nft.rc == 127


def test_a_cut_output_keeps_what_came_before_and_says_it_is_partial():
    whole = framed(section("host/ip-link", b"x" * 100), section("host/ip-addr", b"y" * 100))
    cut = whole[: whole.index(b"y" * 10) + 10]
    readings, problem = parse_output(cut, NONCE)
    assert list(readings) == ["host/ip-link"] and "cut" in problem
    readings, problem = parse_output(whole[: -len(f"E {NONCE}\n")], NONCE)
    assert list(readings) == ["host/ip-link", "host/ip-addr"] and "partial" in problem


@pytest.mark.parametrize("data, words", [
    (b"", "does not start"),
    (f"OTDEEP1 {'f' * 16}\n".encode(), "does not start"),  # another run's reader
    (framed(b"S 0 0 0 zz 0 host/x\n"), "unreadable section header"),
    (framed(b"S 0 0 0 3 0 host/x\nab"), "cut"),  # says 3, has 2 and no end
    (framed(b"S 0 0 0 1 0 host/\x1bx\nz\n"), "unreadable section header"),  # a control in a key
    (framed(f"S 0 0 0 {MAX_OUTPUT + 1} 0 host/x\n".encode()), "longer"),
    (framed(b"S 0 0 0 1 0 host/x\n" + b"a" * 600), "cut"),  # no newline where the count ends
    (framed(section("host/x", b"1")) + b"junk", "after the reader's end marker"),
    (f"OTDEEP1 {NONCE}\n".encode() + b"S" * 1000, "cut or unreadable"),
])
def test_malformed_output_is_a_problem_never_an_exception(data, words):
    readings, problem = parse_output(data, NONCE)
    assert words in problem


def test_an_error_reading_keeps_what_was_read():
    raw = error_reading("engine gone", {"host/ip-link": Reading(0, "[]")})
    assert raw["meta/error"] == Reading(1, "", "engine gone") and raw["host/ip-link"].ok


# ----------------------------------------------------------------------------------- the script, for real


def _tool(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture
def script_env(tmp_path):
    """A PATH of the host's basic tools (no iproute2, no iptables) and stand-ins for the tools under test."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("cat", "wc", "head", "tr", "sed", "sleep", "kill", "ls", "grep", "zcat", "timeout", "uname",
                 "printf"):
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    netns = tmp_path / "netns"
    netns.mkdir()
    for name in ("1-abcdef1234", "default", "lb_abcdef123", "ingress_sbox", "2-Zz9", "1-bad name", "0a1b2c3d4e5f"):
        (netns / name).write_text("")
    return bin_dir, netns, tmp_path


def run_script(bin_dir: Path, netns: Path, tmp: Path, peers: str = "10.0.0.2", maximum: int = 4096,
               bound: int = 20) -> tuple[dict[str, Reading], str, float]:
    out = tmp / "out"
    env = {"PATH": str(bin_dir), "OT_OUT": str(out), "OT_NONCE": NONCE, "OT_BOUND": str(bound), "OT_STEP": "5",
           "OT_MAX": str(maximum), "OT_MAXERR": "1000", "OT_NETNS": str(netns), "OT_NETNS_DIR": "/var/run/x/netns",
           "OT_PEERS": peers, "OT_TOOLS": " ".join(deep.TOOLS)}
    started = time.monotonic()
    # its own session, so what the script leaves running when its watchdog stops it (a container's runtime kills
    # those with the container) is killed here at the end
    with open(tmp / "stderr", "wb") as errors:
        proc = subprocess.Popen([shutil.which("dash") or "/bin/sh", "-c", deep.SCRIPT], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=bound + 10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    took = time.monotonic() - started
    assert code == 0 or bound < 20, (tmp / "stderr").read_text()
    readings, problem = parse_output(out.read_bytes(), NONCE)
    return readings, problem, took


def test_the_script_frames_hostile_output_and_names_missing_tools(script_env):
    bin_dir, netns, tmp = script_env
    # `ip`: the framing, the end marker, binary and 100 KB (past the bound) on link; a route via eth0 for -o
    _tool(bin_dir, "ip", f"""case "$*" in
  *"-o route get"*) echo "10.0.0.2 dev eth0 src 10.0.0.1 uid 0" ;;
  *"route get"*) echo '[{{"dst":"10.0.0.2","dev":"eth0"}}]' ;;
  *"link show"*) printf 'S 0 0 0 2 0 host/forged\\nab\\nE {NONCE}\\n\\377\\000\\376'; head -c 100000 /dev/zero ;;
  *) echo "ip $*"; echo "some error" >&2; exit 3 ;;
esac
""")
    _tool(bin_dir, "nsenter", 'echo "nsenter $1 $2" >&2; shift; exec "$@"\n')
    _tool(bin_dir, "bridge", 'echo "[]"\n')
    _tool(bin_dir, "ethtool", 'echo "ethtool $*"\n')
    readings, problem, _took = run_script(bin_dir, netns, tmp)
    assert problem == ""
    link = readings["host/ip-link"]
    assert link.truncated and len(link.out.encode("utf-8", "surrogateescape")) >= 4096 and link.rc == 0
    assert link.out.startswith("S 0 0 0 2 0 host/forged\nab\nE ") and "host/forged" not in readings
    assert readings["host/ip-addr"].rc == 3 and readings["host/ip-addr"].err == "some error\n"
    assert readings["host/route-get/10.0.0.2"].out.strip() == '[{"dst":"10.0.0.2","dev":"eth0"}]'
    assert readings["host/ethtool-k/eth0"].out == "ethtool -k eth0\n"
    for key in ("host/iptables-legacy-save", "host/iptables-nft-save", "host/nft-ruleset"):
        assert readings[key].missing and readings[key].rc == 127 and "not in the image" in readings[key].err
    assert readings["meta/sandboxes"].out.split() == ["1-abcdef1234", "2-Zz9"]  # overlay sandboxes only
    assert readings["meta/netns-dir"].out == "/var/run/x/netns\n"
    # nsenter into the sandbox's file, with the tool by its path (a shell's own applets never stand in)
    fdb = readings["sbx/1-abcdef1234/fdb"]
    assert fdb.ok and fdb.out == "[]\n" and fdb.err == f"nsenter --net={netns}/1-abcdef1234 {bin_dir}/bridge\n"
    assert readings["sbx/2-Zz9/neigh"].out == "ip -j neigh show\n" and readings["sbx/2-Zz9/neigh"].rc == 3
    assert "ip" in readings["meta/tools"].out.split() and "nft" not in readings["meta/tools"].out.split()
    assert not any(key.startswith("sbx/default") or "bad" in key for key in readings)


def test_the_script_stops_itself_at_its_bound(script_env):
    bin_dir, netns, tmp = script_env
    (bin_dir / "timeout").unlink(missing_ok=True)  # an image without `timeout`: the watchdog alone bounds it
    _tool(bin_dir, "ip", "exec sleep 30\n")
    readings, problem, took = run_script(bin_dir, netns, tmp, bound=2)
    assert took < 8
    assert "partial" in problem or "cut" in problem
    assert "meta/tools" in readings


def test_a_sandbox_reading_without_nsenter_is_missing(script_env):
    bin_dir, netns, tmp = script_env
    _tool(bin_dir, "ip", "echo '[]'\n")
    readings, problem, _took = run_script(bin_dir, netns, tmp, peers="")
    assert problem == ""
    reading = readings["sbx/1-abcdef1234/ip-link"]
    assert reading.missing and "nsenter ip" in reading.err
    assert readings["host/ip-link"].ok


# ------------------------------------------------------------------------------------------- the reader


def snapshot(engines: list[Engine], addresses=("10.0.0.1", "10.0.0.2", "not an address")) -> ClusterSnapshot:
    nodes = tuple(Node(id=f"n{i}", hostname=f"node{i}", role="worker", state="ready", availability="active",
                       address=a) for i, a in enumerate(addresses))
    return ClusterSnapshot(taken_at=0.0, engines=tuple(engines), nodes=nodes)


def test_peers_are_the_nodes_valid_addresses():
    assert peers_of(snapshot([])) == ("10.0.0.1", "10.0.0.2")


@pytest.mark.parametrize("key, expected", [
    ("/var/run/docker/netns/abc", "/var/run/docker/netns"),
    ("/run/overlaytui-lab/node1/exec/netns/default", "/run/overlaytui-lab/node1/exec/netns"),
    ("", None), (None, None), ("relative/x", None), ("/x", None), ("/a/\x00b", None), (42, None),
])
def test_the_netns_directory_comes_from_a_sandbox_key(key, expected):
    assert netns_dir(key) == expected


@pytest.mark.parametrize("kind", ["silent", "trickle"])
def test_a_stalled_engine_gives_an_error_reading_within_the_bound(tmp_path, kind):
    """An engine that never answers, and one that answers a byte every half second (docker-py's timeout is per
    read: that call never ends by itself): the round ends within its bound, the node's reading says why."""
    engine = (SilentEngine if kind == "silent" else TrickleEngine)(tmp_path / "stalled.sock")
    try:
        engines = [Engine(endpoint=f"unix://{engine.path}", health=Health.OK, node_id="n1", hostname="node1"),
                   Engine(endpoint=f"unix://{tmp_path}/absent.sock", health=Health.ERROR, hostname="node2")]
        reader = DeepReader(image="x", call_timeout=1.0, bound=1)
        started = time.monotonic()
        result = reader.read_nodes(snapshot(engines))
        took = time.monotonic() - started
    finally:
        engine.close()
    assert took < reader.bound + 6 * reader.call_timeout + 6
    assert set(result) == {"n1", "node2"}  # the node id, else the hostname
    assert result["n1"]["meta/error"].err  # why, in words
    assert "no Docker socket there" in result["node2"]["meta/error"].err
    assert all(not r["meta/error"].ok and len(r) == 1 for r in result.values())


def test_runs_are_told_apart_and_their_leases_judged():
    run = DeepRun.new()
    labels = run.labels(1000.2)
    assert labels[deep.DEEP_LABEL] == run.owner and labels[RUN_LABEL] == run.token
    assert labels[LEASE_UNTIL_LABEL] == "1001"
    assert lapsed(labels, 2000.0, own_run=run.token) is False  # never our own
    assert lapsed(labels, 1005.0) is False  # within the lease and its margin
    assert lapsed(labels, 1012.0) is True
    assert lapsed({RUN_LABEL: "x", LEASE_UNTIL_LABEL: "soon"}, 1e12) is False  # unreadable: left alone
    assert lapsed({deep.DEEP_LABEL: "h:1"}, 1e12) is None  # no lease at all: not judged here


def test_no_engines_no_reading():
    assert DeepReader(image="x").read_nodes(snapshot([])) == {}


def test_the_reader_asks_only_for_what_it_needs():
    assert set(deep.CAPABILITIES) == {"NET_ADMIN", "NET_RAW", "SYS_ADMIN"}
    assert "privileged" not in deep.SCRIPT
    # reading commands only: nothing in the script adds, deletes, flushes or sets
    for word in (" add ", " del ", " delete ", " flush", "link set", " change ", "-F ", "-I ", "-A ", "-D ",
                 " replace", "ethtool -K", "ethtool -s", "sysctl", "modprobe", "rmmod", "> /proc", "> /sys"):
        assert word not in deep.SCRIPT, word
    assert os.path.basename(deep.OUTPUT).startswith("overlaytui-deep")
