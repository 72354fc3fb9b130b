"""Shared fixtures. The lab fixture brings up ONE real 3-node swarm for the whole session and always removes it.

Where the lab cannot run (not root, no dockerd) its tests are skipped with the reason, unless the lab is
required (OVERLAYTUI_REQUIRE_LAB=1, set by .ci/run, or CI=true): then they fail.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from hypothesis import settings

from overlaytui.lab.host import missing_requirements
from tests.helpers import LAB_NODES, Lab, lab_required

# the probe agents' lease in the whole session (the default is 5 minutes): a test that fails before it cleans up
# leaves agents that another run must leave alone while their lease runs; a short one lets them lapse before the
# next module looks for leftovers (each run renews every fifth of it)
os.environ.setdefault("OVERLAYTUI_AGENT_LEASE", "45")

# `make mutants` runs the unit tests once per mutant: fewer generated examples there (the suite keeps the default)
settings.register_profile("mutation", max_examples=10, deadline=None)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt  # pytest then tears fixtures down, the lab included


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    problem = missing_requirements()
    if problem:
        message = f"lab unavailable: {problem}"
        if lab_required():
            pytest.fail(f"{message} (the lab is required here: OVERLAYTUI_REQUIRE_LAB=1 or CI=true)")
        pytest.skip(message)
    from overlaytui.lab import lab as lab_module

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    lab_module.down(log=lambda _m: None)  # whatever an interrupted earlier run left
    try:
        lab_module.up(LAB_NODES, 1, log=lambda _m: None)
        yield Lab(LAB_NODES)
    finally:
        lab_module.down(log=lambda _m: None)
        signal.signal(signal.SIGTERM, previous)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)
