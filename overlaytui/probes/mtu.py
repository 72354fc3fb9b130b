"""Path MTU between two tasks: a binary search with the DF bit set (`ping -M do -s SIZE`).

A packet of IP size S carries S - 28 bytes of ICMP payload (S - 48 over IPv6). The search finds the largest S in
[low, high] that arrives; high is the overlay's effective MTU (larger packets fail locally with "message too long"
and prove nothing). A path MTU below the effective MTU is a black hole: full-size packets vanish on the way (VXLAN
adds 50 bytes the underlay must carry).

The probes run this search in the agent's shell, every destination at once in one exec (runner.mtu_command);
`find_path_mtu` is its reference: tests/unit/test_mtu_script.py runs the shell's against it step for step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

IP_ICMP_HEADERS = 28  # 20 IPv4 + 8 ICMP: ping -s takes the payload (runner.mtu_command subtracts it)
IP6_ICMP_HEADERS = 48  # 40 IPv6 + 8 ICMPv6: an IPv6 destination's (with 28, every size was 20 bytes too large)
MIN_MTU = 576  # every IPv4 path must carry this much


async def find_path_mtu(passes: Callable[[int], Awaitable[bool]], high: int, low: int = MIN_MTU) -> int | None:
    """The largest packet size in [low, high] for which `passes(size)` is true, or None if even `low` fails
    (the pair is unreachable: not an MTU problem). Probes `high` first: a healthy path costs one step."""
    if await passes(high):
        return high
    if not await passes(low):
        return None
    good, bad = low, high  # invariant: good passes, bad fails
    while bad - good > 1:
        middle = (good + bad) // 2
        if await passes(middle):
            good = middle
        else:
            bad = middle
    return good


