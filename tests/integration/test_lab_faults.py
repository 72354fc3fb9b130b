"""The presenter's controls on the lab (`f` and the palette with --lab as root): `LabFaults`, the seam the command
layer hands the app, injects a real loss fault on a node and clears it — read back from the node's iptables."""

from __future__ import annotations

import asyncio
import re

import pytest

from overlaytui.lab.faults import LabFaults
from overlaytui.lab.host import in_netns
from overlaytui.lab.layout import FAULT_CHAIN, node_by_name
from overlaytui.model import Fault
from overlaytui.sources.base import FaultError
from tests.helpers import Lab

pytestmark = pytest.mark.lab


def drop_rules(node: str) -> list[str]:
    rules = in_netns(node_by_name(node), ["iptables", "-S", FAULT_CHAIN], check=False).stdout
    return [line for line in rules.splitlines() if "-j DROP" in line]


def test_the_lab_controls_inject_and_clear_a_real_loss_fault(lab: Lab):
    faults = LabFaults()
    assert set(faults.offers) == {"loss", "mtu", "partition", "engine-down"}  # what the lab can do on a node
    said = asyncio.run(faults.inject(Fault("loss", node="node2", value=30)))
    assert said.startswith("node2: dropping 30%")
    rules = drop_rules("node2")
    probability = re.search(r"--probability ([0-9.]+)", rules[0]) if len(rules) == 1 else None
    assert probability and "--dport 4789" in rules[0] and abs(float(probability[1]) - 0.3) < 1e-6, rules
    assert drop_rules("node1") == []
    with pytest.raises(FaultError, match="the lab cannot make"):
        asyncio.run(faults.inject(Fault("loss", network="labnet", value=5)))
    assert "cleared" in asyncio.run(faults.clear(Fault("", node="node2")))
    assert drop_rules("node2") == []
