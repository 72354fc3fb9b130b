"""The path-MTU search run in the agent's shell (runner.mtu_command): run here by real shells (dash, busybox) with a
scripted `ping` on each destination's path, it finds what mtu.find_path_mtu finds, step for step, tells a path
where nothing arrives and a ping that does not run apart from a smaller MTU, and parses into ProbeResults."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from overlaytui.probes import runner
from overlaytui.probes.capabilities import Capabilities
from overlaytui.probes.mtu import MIN_MTU, find_path_mtu
from overlaytui.probes.runner import mtu_command, mtu_result, split_sweep
from tests.unit.test_probe_runner import FakeExecAPI

SHELLS = [["/bin/sh"]] + ([["busybox", "sh"]] if shutil.which("busybox") else [])

# A ping as iputils prints it. Each destination's path is a file: its MTU, "none" (nothing arrives), "notrun" (ping
# fails before sending), "flaky N" (the first N packets of the smallest size are lost, then 1450). Sizes above the
# local interface's 1450 fail locally ("message too long"). Every call's packet size is logged per destination.
FAKE_PING = r"""#!/bin/sh
size=0; payload=""; target=""
while [ $# -gt 0 ]; do case "$1" in -s) payload=$2; shift 2;; -c|-i|-W|-w|-M) shift 2;; -*) shift;;
  *) target=$1; shift;; esac; done
case "$target" in *:*) headers=48;; *) headers=28;; esac
[ -n "$payload" ] && size=$((payload + headers))
dir=$(dirname "$0")
echo "$size" >> "$dir/calls.$target"
read -r path arg < "$dir/path.$target"
if [ "$path" = notrun ]; then echo "ping: socket: Operation not permitted"; exit 2; fi
if [ "$size" -gt 1450 ]; then echo "ping: local error: message too long, mtu=1450"; exit 1; fi
if [ "$path" = flaky ]; then
  n=$(wc -l < "$dir/calls.$target"); if [ "$n" -le "$arg" ]; then path=0; else path=1450; fi
fi
if [ "$path" = none ]; then path=0; fi
echo "PING $target ($target) $((size - 28))(${size}) bytes of data."
if [ "$size" -le "$path" ]; then
  echo "3 packets transmitted, 3 received, 0% packet loss, time 400ms"
  echo "rtt min/avg/max/mdev = 0.100/0.200/0.300/0.050 ms"
else
  echo "3 packets transmitted, 0 received, 100% packet loss, time 2000ms"; exit 1
fi
"""
# the warm-up's pauses are logged, not slept; the batch watchdog's (its bound) really sleeps
FAKE_SLEEP = '#!/bin/sh\nif [ "$1" -gt 2 ]; then exec /bin/sleep "$1"; fi\necho "$1" >> "$(dirname "$0")/slept"\n'


def in_shell(shell: list[str], command: list[str], tmp_path: Path) -> list[str]:
    """A probe's `sh -c SCRIPT sh TARGETS...` run by this shell, its files under tmp_path instead of /tmp."""
    assert command[:2] == ["sh", "-c"]
    return [*shell, "-c", command[2].replace("/tmp/ot", f"{tmp_path}/ot"), *command[3:]]


def run(tmp_path: Path, shell: list[str], paths: dict[str, str], high: int = 1450) -> tuple[dict[str, str], str]:
    """Run the search to each address (its path as given); (address -> its section, the whole output)."""
    for name, text in (("ping", FAKE_PING), ("sleep", FAKE_SLEEP)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    for address, path in paths.items():
        (tmp_path / f"path.{address}").write_text(path + "\n")
    done = subprocess.run(in_shell(shell, mtu_command(list(paths), high, str(tmp_path / "ping")), tmp_path),
                          capture_output=True, text=True, timeout=60, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    return split_sweep(done.stdout), done.stdout


def calls(tmp_path: Path, address: str) -> list[int]:
    return [int(line) for line in (tmp_path / f"calls.{address}").read_text().split()]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_the_shells_search_finds_what_find_path_mtu_finds_step_for_step(tmp_path, shell):
    rng = random.Random(26)
    mtus = {(f"10.0.1.{i}" if i % 4 else f"fd00::1:{i:x}"):  # IPv6 too: 48 bytes of headers, not 28
            rng.choice([1450, 1449, MIN_MTU, MIN_MTU + 1, rng.randint(MIN_MTU, 1450)]) for i in range(2, 30)}
    sections, _ = run(tmp_path, shell, {a: str(m) for a, m in mtus.items()})
    for address, mtu in mtus.items():
        tried: list[int] = []

        async def passes(size: int, mtu: int = mtu, tried: list[int] = tried) -> bool:
            tried.append(size)
            return size <= mtu
        expected = asyncio.run(find_path_mtu(passes, 1450))
        assert sections[address].strip() == f"MTU {expected}" and expected == mtu
        assert calls(tmp_path, address) == [MIN_MTU, *tried]  # the warm-up's one step, then the same steps


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_nothing_arriving_a_ping_that_does_not_run_and_a_slow_start_are_told_apart(tmp_path, shell):
    paths = {"10.0.2.2": "none", "10.0.2.3": "notrun", "10.0.2.4": "flaky 2", "10.0.2.5": "1400"}
    sections, _ = run(tmp_path, shell, paths)
    assert sections["10.0.2.2"].strip() == "NONE"
    assert calls(tmp_path, "10.0.2.2") == [MIN_MTU, MIN_MTU, MIN_MTU, 1450, MIN_MTU]  # tried 3 times, then said
    assert sections["10.0.2.3"].strip().startswith("ERR ping: socket: Operation not permitted")
    assert calls(tmp_path, "10.0.2.3") == [MIN_MTU]  # ping did not run: no search, never a smaller MTU
    assert sections["10.0.2.4"].strip() == "MTU 1450"  # two lost warm-up packets, then a healthy path
    assert calls(tmp_path, "10.0.2.4") == [MIN_MTU, MIN_MTU, MIN_MTU, 1450]
    assert sections["10.0.2.5"].strip() == "MTU 1400"
    if shell == ["/bin/sh"]:  # busybox's sh runs its own sleep applet
        assert sorted((tmp_path / "slept").read_text().split()) == ["1", "1", "2", "2"]


def test_a_size_above_the_local_interface_does_not_pass(tmp_path):
    sections, _ = run(tmp_path, ["/bin/sh"], {"10.0.3.2": "9000"}, high=1500)  # the overlay says 1500, the
    assert sections["10.0.3.2"].strip() == "MTU 1450"  # interface 1450: "message too long" above it


def test_sections_parse_into_results_and_anything_else_is_an_error():
    at = 1.0
    assert mtu_result("net", "n1", "n2", "MTU 1400\n", 1450, at).path_mtu == 1400
    assert mtu_result("net", "n1", "n2", "NONE\n", 1450, at).error == "no packet of any size arrives"
    assert mtu_result("net", "n1", "n2", "ERR ping: socket: Operation not permitted\nmore", 1450, at).error == (
        "on n1: the DF ping did not run: ping: socket: Operation not permitted")
    stray = "/bin/sh: 17: sleep: not found\nMTU 1400\n"  # a shell's complaint before the search's own line
    assert mtu_result("net", "n1", "n2", stray, 1450, at).path_mtu == 1400
    for text in ("MTU 1500", "MTU 12", "MTU x", "Killed", "MTU -1"):
        result = mtu_result("net", "n1", "n2", text, 1450, at)
        assert not result.measured and result.path_mtu is None, text
        assert result.error.startswith("on n1: the path-MTU search gave no result")
    assert mtu_result("net", "n1", "n2", "", 1450, at, 50).error == (
        "on n1: the path-MTU search did not finish within 50 s")


def test_searches_stopped_at_the_bound_say_so_and_the_others_keep_theirs(tmp_path, monkeypatch):
    """The watchdog stops the workers still running at the bound (here 3 s: a destination whose every packet is
    late holds its worker); the other workers' searches have their results, the stopped worker's later searches say
    they did not finish (their files are emptied first: never the last round's), and the output is read whole."""
    monkeypatch.setattr(runner, "mtu_seconds", lambda destinations, high=1450: 3)
    monkeypatch.setattr(runner, "MTU_WORKERS", 2)
    slow = FAKE_PING.replace('echo "$size" >> "$dir/calls.$target"',
                             'echo "$size" >> "$dir/calls.$target"; [ "$target" = 10.0.4.9 ] && exec /bin/sleep 30')
    (tmp_path / "ping").write_text(slow)
    (tmp_path / "ping").chmod(0o755)
    addresses = ["10.0.4.9", "10.0.4.2", "10.0.4.3", "10.0.4.4"]  # worker 1: .9 then .3; worker 2: .2 then .4
    for address in addresses:
        (tmp_path / f"path.{address}").write_text("1400\n")
        (tmp_path / f"otm.{addresses.index(address)}").write_text("MTU 1450\n")  # a round before
    done = subprocess.run(in_shell(["/bin/sh"], mtu_command(addresses, 1450, str(tmp_path / "ping")), tmp_path),
                          capture_output=True, text=True, timeout=20, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    sections = split_sweep(done.stdout)
    assert sections["10.0.4.2"].strip() == sections["10.0.4.4"].strip() == "MTU 1400"
    assert sections["10.0.4.9"].strip() == sections["10.0.4.3"].strip() == ""
    assert mtu_result("net", "n1", "n9", sections["10.0.4.3"], 1450, 1.0, 3).error == (
        "on n1: the path-MTU search did not finish within 3 s")


def test_only_addresses_go_into_the_script():
    with pytest.raises(ValueError):
        mtu_command(["10.0.0.2; reboot"], 1450)
    script = mtu_command(["10.0.0.2"], 1450, "/usr/bin/ping'; reboot; '")[2]
    assert "P='/usr/bin/ping'\"'\"'; reboot; '\"'\"''" in script


def test_one_exec_per_source_and_an_exec_that_did_not_run_is_every_pairs_error():
    targets = {"node2": "10.0.0.2", "node3": "10.0.0.3"}
    api = FakeExecAPI(0, "=== 10.0.0.2\nMTU 1450\n=== 10.0.0.3\nMTU 1350\n")
    results = runner.mtu_sweep(api, "c1", "net", "node1", targets, 1450, Capabilities("/bin/ping", True, True))
    assert [(r.dst_node, r.path_mtu) for r in results] == [("node2", 1450), ("node3", 1350)]
    assert len(api.commands) == 1 and any("P=/bin/ping" in part for part in api.commands[0])
    for code, output in ((127, "sh: not found"), (0, "garbage")):
        results = runner.mtu_sweep(FakeExecAPI(code, output), "c1", "net", "node1", targets, 1450)
        assert [r.error for r in results] == [
            f"the path-MTU search did not run on node1 (exit {code}): {output}"] * 2


def test_the_bound_grows_with_each_workers_share_and_the_overlays_mtu():
    one = runner.mtu_search_seconds(1450)
    assert one == 3 * (5 + 10) + 3 + 2  # 3 warm-up steps, 1450, 576, 10 halvings of 874 bytes; pauses; margin
    assert runner.mtu_seconds(1) == runner.mtu_seconds(runner.MTU_WORKERS) == one
    assert runner.mtu_seconds(199) == 13 * one  # 16 workers: 13 searches each at most
    assert runner.mtu_search_seconds(8950) == 3 * (5 + 14) + 5  # a jumbo overlay: 14 halvings


# A ping that answers every size at once (the sweep's summary, or a search's pass), its target logged
QUICK_PING = r"""#!/bin/sh
for a in "$@"; do t=$a; done
echo "PING $t ($t) 56(84) bytes of data."
echo "--- $t ping statistics ---"
echo "3 packets transmitted, 3 received, 0% packet loss, time 400ms"
echo "rtt min/avg/max/mdev = 0.100/0.200/0.300/0.050 ms"
"""


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("kind", ["ping", "mtu"])
def test_a_source_with_1200_destinations_runs_in_one_exec(tmp_path, kind, shell):
    """The targets are the script's arguments: one argument holds 128 KiB at most (MAX_ARG_STRLEN), which a script
    with a line per destination outgrew at ~900 destinations (the sweep) and ~1,050 (the search)."""
    (tmp_path / "ping").write_text(QUICK_PING)
    (tmp_path / "ping").chmod(0o755)
    addresses = [f"fd00::{i:x}" if i % 100 == 7 else f"10.{i // 250}.{i % 250}.{2 + i % 3}" for i in range(1200)]
    ping = str(tmp_path / "ping")
    command = (runner.sweep_command(addresses, 3, 0.2, ping) if kind == "ping" else mtu_command(addresses, 1450, ping))
    assert max(len(part) for part in command) < 4096 and command[4:] == addresses
    done = subprocess.run(in_shell(shell, command, tmp_path), capture_output=True, text=True, timeout=120,
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    sections = split_sweep(done.stdout)
    assert list(sections) == addresses  # every destination's section, in order
    if kind == "ping":
        assert all(runner.ping_result("n", "a", "b", text).received == 3 for text in sections.values())
    else:
        assert all(mtu_result("n", "a", "b", text, 1450, 1.0).path_mtu == 1450 for text in sections.values())


@pytest.mark.parametrize("value", ["fe80::1%a b", "fe80::2%*", "fe80::1%$(reboot)", "fe80::1%eth0", "fe80::1%\n"])
def test_no_ipv6_scope_reaches_a_probe(value):
    """Python's ipaddress takes any text after an IPv6 `%` (spaces, globs, `$(...)`): an address with a scope was
    split into words by the search's shell, its result written into another destination's file."""
    with pytest.raises(ValueError):
        mtu_command(["10.0.0.2", value], 1450)
    with pytest.raises(ValueError):
        runner.sweep_command([value], 3, 0.2)
