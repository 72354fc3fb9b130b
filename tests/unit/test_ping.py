"""The ping parser on real iputils and busybox output (captured in the lab)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from overlaytui.probes.ping import PingParseError, parse_ping, ping_command

IPUTILS_LOSSY = """PING 10.240.1.3 (10.240.1.3) 56(84) bytes of data.

--- 10.240.1.3 ping statistics ---
200 packets transmitted, 162 received, 19% packet loss, time 3189ms
rtt min/avg/max/mdev = 0.091/0.157/0.689/0.046 ms
"""
IPUTILS_ALL_LOST = """PING 10.240.1.4 (10.240.1.4) 1422(1450) bytes of data.

--- 10.240.1.4 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 2036ms

"""
IPUTILS_ERRORS = """--- 10.0.0.9 ping statistics ---
3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2051ms
"""
IPUTILS_FRACTION = """3 packets transmitted, 2 received, 33.3333% packet loss, time 2032ms
rtt min/avg/max/mdev = 0.197/0.229/0.261/0.032 ms
"""
BUSYBOX = """PING 10.240.0.7 (10.240.0.7): 56 data bytes

--- 10.240.0.7 ping statistics ---
3 packets transmitted, 3 packets received, 0% packet loss
round-trip min/avg/max = 0.147/0.159/0.182 ms
"""
BUSYBOX_DUPLICATES = """4 packets transmitted, 4 packets received, +1 duplicates, 0% packet loss
round-trip min/avg/max = 0.1/0.2/0.3 ms
"""


def test_iputils_with_loss_and_rtt():
    stats = parse_ping(IPUTILS_LOSSY)
    assert (stats.transmitted, stats.received, stats.lost) == (200, 162, 38)
    assert stats.loss_pct == pytest.approx(19.0)
    assert (stats.rtt_min_ms, stats.rtt_avg_ms, stats.rtt_max_ms, stats.rtt_mdev_ms) == (0.091, 0.157, 0.689, 0.046)


def test_all_lost_has_no_rtt():
    stats = parse_ping(IPUTILS_ALL_LOST)
    assert stats.received == 0 and stats.loss_pct == 100.0
    assert stats.rtt_avg_ms is None


def test_errors_are_counted():
    stats = parse_ping(IPUTILS_ERRORS)
    assert stats.errors == 3 and stats.loss_pct == 100.0


def test_loss_comes_from_the_counts_not_the_rounded_figure():
    assert parse_ping(IPUTILS_FRACTION).loss_pct == pytest.approx(100 / 3)


def test_busybox_has_no_mdev():
    stats = parse_ping(BUSYBOX)
    assert (stats.transmitted, stats.received) == (3, 3)
    assert stats.rtt_avg_ms == 0.159 and stats.rtt_mdev_ms is None


def test_busybox_duplicates():
    stats = parse_ping(BUSYBOX_DUPLICATES)
    assert stats.received == 4 and stats.loss_pct == 0


@pytest.mark.parametrize("text", ["", "ping: unknown host nowhere", "OCI runtime exec failed: no such file"])
def test_no_summary_is_a_clear_error(text):
    with pytest.raises(PingParseError, match="no ping summary"):
        parse_ping(text)


@given(st.text(max_size=400))
def test_arbitrary_text_parses_or_raises_the_documented_error(text):
    try:
        stats = parse_ping(text)
    except PingParseError:
        return
    assert 0 <= stats.loss_pct <= 100 or stats.received > stats.transmitted


def test_command_builder():
    assert ping_command("10.0.0.2", 100, 0.2) == ["ping", "-q", "-n", "-c", "100", "-i", "0.2", "-W", "1", "10.0.0.2"]
    df = ping_command("10.0.0.2", 3, 0.01, payload=1422, dont_fragment=True)
    assert df[-5:] == ["-s", "1422", "-M", "do", "10.0.0.2"]
