"""Underlay link MTUs where they can be known: this host's NICs (psutil), matched to swarm node addresses."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import psutil


def local_underlay_mtus(node_addresses: Iterable[str]) -> dict[str, int]:
    """node address -> MTU of this host's interface that carries that address (when this host is a node)."""
    wanted = set(node_addresses)
    stats = psutil.net_if_stats()
    found = {}
    for iface, addresses in psutil.net_if_addrs().items():
        for address in addresses:
            if address.family == socket.AF_INET and address.address in wanted and iface in stats:
                found[address.address] = stats[iface].mtu
    return found
