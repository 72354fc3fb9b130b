"""Leases on what overlaytui creates in a cluster (the probe agents' services, the deep view's reader
containers): every run labels its objects with its id and a lease-until time in the engine's clock, and any later
run removes the objects whose lease lapsed — never a live run's, never a user's object that merely carries a
label. The probe agents (probes/agent.py) and the deep reader (sources/deep.py) share these rules.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime

import docker

from .errors import ENGINE_ERRORS

RUN_LABEL = "overlaytui.run"  # the run's id (a random token)
LEASE_UNTIL_LABEL = "overlaytui.lease-until"  # unix time (the engine's clock) the run's lease ends
LEASE_LABEL = "overlaytui.lease"  # the lease, seconds
LAPSE_MARGIN = 10.0  # seconds past lease-until before another run removes the object (renewal jitter)


def parse_lease_until(value: object) -> float | None:
    """A lease-until label: unix seconds, else None."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,12}", value.strip()):
        return None
    return float(value.strip())


def lease_labels(lease_until: float) -> dict[str, str]:
    return {LEASE_UNTIL_LABEL: str(int(lease_until + 0.999))}


def lapsed(labels: Mapping[str, object], now: float, own_run: str = "") -> bool | None:
    """Whether a leased object's lease lapsed more than LAPSE_MARGIN s before `now` (the engine's clock): False for
    this run's own objects and for a readable lease still running; None when the labels carry no lease at all
    (the caller judges those by other rules)."""
    if RUN_LABEL not in labels and LEASE_UNTIL_LABEL not in labels:
        return None
    if own_run and labels.get(RUN_LABEL) == own_run:
        return False
    until = parse_lease_until(labels.get(LEASE_UNTIL_LABEL))
    return until is not None and now > until + LAPSE_MARGIN


def engine_time(info: dict) -> float | None:
    """An engine's clock (`docker info` SystemTime, RFC 3339 with nanoseconds) as unix time, else None."""
    raw = info.get("SystemTime") if isinstance(info, dict) else None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", str(raw or ""))
    if not match:
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        whole = datetime.fromisoformat(match.group(1) + zone).timestamp()
    except ValueError:
        return None
    return whole + float(f"0.{match.group(2) or '0'}")


def engine_now(api: docker.APIClient) -> float:
    """An engine's clock (leases are judged by it, so hosts' clocks need not agree); this host's when the engine
    does not say."""
    try:
        found = engine_time(api.info())
    except ENGINE_ERRORS:
        found = None
    return found if found is not None else time.time()
