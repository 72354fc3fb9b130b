"""Throughput with iperf3: the command, and its JSON read with the iperf3 package's TestResult.

`iperf3 -J` exits 0 even when the test failed (checked: "unable to connect to server: Connection refused" with
exit 0), so the result's `error` is what says whether it worked. The package's Client.run() is never used in
the dashboard: it redirects the process's stdout for the whole test, which would take over the terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import iperf3

DEFAULT_SECONDS = 3
DEFAULT_BITRATE = "200M"  # bounded: a probe measures, it does not saturate a production link


@dataclass(frozen=True)
class IperfResult:
    """One iperf3 run: bits per second received, retransmits, or why it measured nothing."""

    bits_per_second: float | None
    retransmits: int | None
    error: str = ""


def iperf_command(server: str, seconds: int = DEFAULT_SECONDS, bitrate: str = DEFAULT_BITRATE,
                  port: int = 5201) -> list[str]:
    return ["iperf3", "-c", server, "-p", str(port), "-J", "-t", str(seconds), "-b", bitrate,
            "--connect-timeout", "2000"]


def parse_iperf(text: str) -> IperfResult:
    """Throughput from `iperf3 -J` output; errors (including output that is not iperf3 JSON) in `error`."""
    try:
        result = iperf3.TestResult(text)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        first = text.strip().splitlines()[:1]
        detail = f": {first[0][:160]}" if first else ""
        return IperfResult(None, None, f"no iperf3 result ({type(exc).__name__}){detail}")
    if result.error:
        return IperfResult(None, None, str(result.error))
    try:
        received = float(result.received_bps)
        retransmits = result.retransmits if isinstance(result.retransmits, int) else None
    except AttributeError:  # UDP results carry no received_bps
        data = json.loads(text)["end"].get("sum", {})
        return IperfResult(float(data.get("bits_per_second", 0.0)), None)
    return IperfResult(received, retransmits)
