"""Path-MTU search and iperf3 parsing (on real iperf3 -J output recorded on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from overlaytui.probes.iperf import iperf_command, parse_iperf
from overlaytui.probes.mtu import black_hole, find_path_mtu, payload_for, remedy

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
    assert payload_for(1450) == 1422


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
