"""What may go into an agent's command line: the one place that checks it.

Probe targets come from the cluster (task addresses, names) and run as root inside the agents, so every address
is parsed as an IP address and written back in canonical form — nothing else (no option starting with `-`, no
shell syntax) can reach a command line. Names are shell-quoted where they are used (`shlex.quote`).
"""

from __future__ import annotations

import ipaddress


def ip_address(value: str) -> str:
    """The canonical text of an IPv4/IPv6 address; ValueError for anything else (a prefix length is dropped). No
    IPv6 scope (`fe80::1%eth0`): Python takes any text after the `%`, spaces and shell syntax included, and an
    overlay's task address never has one."""
    text = str(value).strip().split("/", 1)[0]
    try:
        if "%" in text:
            raise ValueError
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"not an IP address: {str(value)[:60]!r}") from None
