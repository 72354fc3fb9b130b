"""Path-MTU search and iperf3 parsing (on real iperf3 -J output recorded on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from overlaytui.analysis.thresholds import black_hole, remedy
from overlaytui.probes.iperf import iperf_command, parse_iperf
from overlaytui.probes.mtu import find_path_mtu

FIXTURES = Path(__file__).parent.parent / "fixtures" / "iperf3"


def search(path_mtu: int | None, high: int = 1450) -> tuple[int | None, list[int]]:
    tried: list[int] = []

    async def passes(size: int) -> bool:
        tried.append(size)
        return path_mtu is not None and size <= path_mtu

    return asyncio.run(find_path_mtu(passes, high)), tried


@pytest.mark.parametrize("path_mtu", [1450, 1400, 1350, 1000, 577, 576])
def test_search_finds_the_path_mtu(path_mtu):
    found, tried = search(path_mtu)
    assert found == path_mtu
    assert len(tried) <= 13  # binary search over [576, 1450]


def test_healthy_path_costs_one_probe_and_unreachable_is_not_an_mtu():
    assert search(1450) == (1450, [1450])
    assert search(None) == (None, [1450, 576])


def test_black_hole_and_remedy():
    assert black_hole(1350, 1450) and not black_hole(1450, 1450) and not black_hole(None, 1450)
    line = remedy(1350, 1450, None)
    assert "com.docker.network.driver.mtu=1400" in line and "at least 1500" in line


def test_iperf_ok():
    result = parse_iperf((FIXTURES / "tcp-ok.json").read_text())
    assert result.error == "" and 150e6 < result.bits_per_second < 250e6 and result.retransmits == 0


def test_iperf_error_is_read_from_the_json_not_the_exit_code():
    result = parse_iperf((FIXTURES / "refused.json").read_text())
    assert result.bits_per_second is None
    assert result.error == "unable to connect to server: Connection refused"


@pytest.mark.parametrize("text", ["", "OCI runtime exec failed: exec: \"iperf3\": not found", "{}", "[1]"])
def test_iperf_garbage_is_an_error_not_a_crash(text):
    assert parse_iperf(text).error.startswith("no iperf3 result")


def test_iperf_command_is_bounded():
    cmd = iperf_command("10.0.0.5")
    assert cmd[:3] == ["iperf3", "-c", "10.0.0.5"] and "-J" in cmd and "-b" in cmd and "--connect-timeout" in cmd


REPORT_LOG = (Path(__file__).parent.parent / "fixtures" / "service-logs-otprobe.txt").read_text()  # as recorded


def test_reports_from_service_logs_keep_the_latest_round_per_pair():
    from overlaytui.probes.agent import parse_reports
    from overlaytui.probes.runner import ping_result

    reports = parse_reports(REPORT_LOG)
    assert set(reports) == {("tvmsr169soh5n1fggd6l7f9yd", "10.240.2.2"), ("t6lts6a4jbv8phbxa9m7kwei6", "10.240.2.4")}
    round_, text = reports[("tvmsr169soh5n1fggd6l7f9yd", "10.240.2.2")]
    assert round_ == 2
    result = ping_result("net", "node1", "node2", text)
    assert (result.sent, result.received, result.rtt_avg_ms) == (5, 4, 0.115)
    truncated = ping_result("net", "node2", "node3", reports[("t6lts6a4jbv8phbxa9m7kwei6", "10.240.2.4")][1])
    assert truncated.error.startswith("no ping summary")


def test_sweep_command_runs_the_found_ping_and_splits_back():
    from overlaytui.probes.runner import split_sweep, sweep_command

    command = sweep_command(["10.0.0.2", "10.0.0.3"], 100, 0.2, ping="/bin/ping")
    script = command[2]
    assert command[:2] == ["sh", "-c"] and command[3:] == ["sh", "10.0.0.2", "10.0.0.3"]  # the targets: "$@"
    assert script.startswith("P=/bin/ping\n") and '"$P" -q -n -c 100 -i 0.2 -W 1 -w 23 "$t"' in script
    assert "cat " not in script and "which" not in script and "10.0.0.2" not in script  # builtins only besides ping
    busybox = sweep_command(["10.0.0.2"], 5, 0.2, ping="/bin/ping", iputils=False)[2]
    assert '"$P" -q -c 5' in busybox and " -n " not in busybox  # busybox ping rejects -n
    output = "=== 10.0.0.2\nA\nB\n=== 10.0.0.3\nC\n"
    assert split_sweep(output) == {"10.0.0.2": "\nA\nB\n", "10.0.0.3": "\nC\n"}


def test_matrix_shows_black_holes_with_the_remedy_and_encrypted_beside_plain():
    from overlaytui.analysis.thresholds import LossThresholds
    from overlaytui.commands.probe import matrix_text, threshold_crossed
    from overlaytui.model import ClusterSnapshot, Network, ProbeResult

    plain = Network("p", "plain", "overlay", "swarm", "10.1.0.0/24", None, 4097, None, False, False, False, False)
    secure = Network("s", "secure", "overlay", "swarm", "10.2.0.0/24", None, 4098, None, True, False, False, False)
    snap = ClusterSnapshot(taken_at=0.0, engines=(), networks=(plain, secure))
    results = [
        ProbeResult("ping", "plain", "n1", "n2", 0, sent=100, received=100, rtt_avg_ms=0.2),
        ProbeResult("mtu", "plain", "n1", "n2", 0, path_mtu=1350),
        ProbeResult("iperf", "plain", "n1", "n2", 0, bits_per_second=9.4e9, retransmits=3),
        ProbeResult("iperf", "secure", "n1", "n2", 0, error="unable to connect to server"),
    ]
    text = matrix_text(results, snap)
    assert "1350 BLACK HOLE" in text and "com.docker.network.driver.mtu=1400" in text
    assert "plain vs encrypted" in text and "plain       9400" in text and "encrypted      error" in text
    assert threshold_crossed(results, snap, LossThresholds())
    assert not threshold_crossed(results[:1], snap, LossThresholds())
