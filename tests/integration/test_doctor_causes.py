"""`overlaytui doctor` says each cause once (issue 22): on the lab with loss on node2, a 1400-byte underlay on
node3, no IPVS in the kernel (the lab's kernel has none) and an encrypted overlay without ESP (the lab has none
either), the doctor prints at most one error or warning per cause and at most 4 info lines. Before the grouping,
the VIP alone was one error per node and overlay and too-few-samples one info line per pair."""

from __future__ import annotations

import subprocess
import sys

import pytest

from overlaytui.lab.layout import PROBE_IMAGE
from tests.helpers import Lab

PLAIN, SECURE = "c-plain", "c-secure"
SEVERITIES = ("ERROR", "WARNING", "INFO")


@pytest.fixture(scope="module")
def overlays(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", PLAIN)
    lab.docker("node1", "network", "create", "-d", "overlay", "--opt", "encrypted", SECURE)
    yield lab
    from tests.integration.test_probes import clear_probe_leftovers

    clear_probe_leftovers(lab, 30)
    lab.docker("node1", "network", "rm", PLAIN, SECURE, check=False)


def finding_lines(text: str) -> list[tuple[str, str, str]]:
    """(severity, check, subject) of each finding line of the doctor's text (`SEVERITY check subject: summary`)."""
    found = []
    for line in text.splitlines():
        severity, _, rest = line.partition(" ")
        if severity in SEVERITIES:
            check, _, rest = rest.strip().partition(" ")
            found.append((severity, check, rest.strip().split(": ", 1)[0]))
    return found


def test_four_faults_each_said_once(overlays: Lab):
    overlays.fault("node2", "loss", "10")
    overlays.fault("node3", "mtu", "1400")
    try:
        proc = subprocess.run([sys.executable, "-m", "overlaytui", "doctor", "--lab", "--probe-image", PROBE_IMAGE],
                              capture_output=True, text=True, timeout=600)
    finally:
        overlays.fault("node2", "clear")
        overlays.fault("node3", "clear")
    print(proc.stdout, proc.stderr)  # shown when the test fails: the whole report
    assert proc.returncode == 2, proc.stderr
    lines = finding_lines(proc.stdout)
    problems = [(check, subject) for severity, check, subject in lines if severity != "INFO"]
    infos = [(check, subject) for severity, check, subject in lines if severity == "INFO"]
    assert len(problems) <= 5 and len(infos) <= 4, lines
    # the four causes, each named once by what explains it
    for cause in [("loss.bad", "node2"), ("mtu.black_hole", "node3"), ("discovery.vip", "every node"),
                  ("encryption.esp", SECURE)]:
        assert problems.count(cause) == 1, (cause, lines)
    assert len({check for check, _ in problems}) == len(problems), lines  # no check twice
    assert sum(1 for check, _ in infos if check == "loss.samples") <= 1, lines
    assert proc.stdout.rstrip().splitlines()[-1].endswith(f"{len(infos)} info")
