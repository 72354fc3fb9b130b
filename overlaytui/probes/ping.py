"""Ping: command builder and parser for iputils and busybox output."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Both regexes are tested on iputils and busybox output (tests/unit/test_ping.py).
_NUMBER = r"(\d+(?:\.\d+)?)"  # not [\d.]+, which takes "." or "1.2.3" and fails in float()
_SUMMARY = re.compile(
    r"(\d+) packets transmitted, (\d+) (?:packets )?received"
    rf"(?:, \+?(\d+) duplicates)?(?:, \+(\d+) errors)?, {_NUMBER}% packet loss"
)
_RTT = re.compile(rf"(?:rtt|round-trip) min/avg/max(?:/mdev)? = {_NUMBER}/{_NUMBER}/{_NUMBER}(?:/{_NUMBER})? ms")


class PingParseError(ValueError):
    """The text has no ping summary line (the command failed before sending, or is not ping)."""


@dataclass(frozen=True)
class PingStats:
    transmitted: int
    received: int
    errors: int = 0
    rtt_min_ms: float | None = None  # None at 100 % loss: ping prints no RTT line then
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    rtt_mdev_ms: float | None = None  # busybox prints no mdev

    @property
    def lost(self) -> int:
        return max(self.transmitted - self.received, 0)

    @property
    def loss_pct(self) -> float:
        """Loss computed from the counts (ping's own figure is rounded and, in busybox, an integer)."""
        return 100.0 * self.lost / self.transmitted if self.transmitted else 100.0


def parse_ping(output: str) -> PingStats:
    summary = _SUMMARY.search(output)
    if summary is None:
        first = output.strip().splitlines()[:1]
        raise PingParseError(f"no ping summary in output: {first[0][:200] if first else '(empty)'}")
    transmitted, received = int(summary.group(1)), int(summary.group(2))
    errors = int(summary.group(4) or 0)
    rtt = _RTT.search(output)
    if rtt is None:
        return PingStats(transmitted, received, errors)
    mdev = float(rtt.group(4)) if rtt.group(4) is not None else None
    return PingStats(transmitted, received, errors, float(rtt.group(1)), float(rtt.group(2)),
                     float(rtt.group(3)), mdev)


def ping_command(
    target: str, count: int, interval: float, *, payload: int | None = None, dont_fragment: bool = False,
    wait_s: float = 1.0, deadline_s: float | None = None, binary: str = "ping", iputils: bool = True,
) -> list[str]:
    """An iputils ping command line. `-q` prints only the summary; `-W` bounds the wait for the last reply and
    `-w` (`deadline_s`) the whole run, so the command ends by itself.

    Intervals below 0.2 s need root inside the container (true for probe containers).
    `dont_fragment` sets the DF bit (`-M do`, iputils only), which is what MTU probing needs. Other pings
    (busybox) get no `-n`, which they reject (they print numeric addresses anyway).
    """
    cmd = [binary, "-q", *(["-n"] if iputils else []), "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait_s:g}"]
    if deadline_s is not None:
        cmd += ["-w", str(max(1, math.ceil(deadline_s)))]
    if payload is not None:
        cmd += ["-s", str(payload)]
    if dont_fragment:
        cmd += ["-M", "do"]
    return [*cmd, target]
