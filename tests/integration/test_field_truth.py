"""On a cluster unlike the lab's defaults, overlaytui says only what it measured: a probe image of the user's
own with just a shell, ping and sleep; an image that does not exist; only the manager's endpoint; --probe at
launch on a list of hosts."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from textual.widgets import Tab, Tabs

from overlaytui.app import OverlayApp
from overlaytui.lab.layout import MINIMAL_PROBE_IMAGE
from overlaytui.probes.session import ProbeSettings
from overlaytui.sources.endpoints import EndpointSpec
from overlaytui.sources.swarm import DockerSwarmSource
from tests.helpers import Lab, wait_for
from tests.integration.test_app_lab import until
from tests.integration.test_probes import clear_probe_leftovers

NET = "f-plain"
MISSING_IMAGE = "overlaytui/no-such-image:1"


@pytest.fixture(scope="module")
def overlay(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", "--attachable", NET)
    yield lab
    clear_probe_leftovers(lab, 30)
    lab.docker("node1", "network", "rm", NET, check=False)


def probe_services(lab: Lab) -> str:
    return lab.docker("node1", "service", "ls", "-q", "--filter", "label=overlaytui.probe").stdout.strip()


def cli(*args: str, timeout: float = 240) -> tuple[int, str, str, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "overlaytui", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


def test_an_image_with_only_a_shell_ping_and_sleep_measures_ping_and_mtu(overlay: Lab):
    code, out, err, _ = cli("probe", "--lab", "--network", NET, "--probe-image", MINIMAL_PROBE_IMAGE, "--count", "20",
                            "--interval", "0.01", "--kind", "ping,mtu,iperf,discovery", "--json")
    data = json.loads(out)
    coverage = {c["kind"]: c for c in data["coverage"]}
    assert coverage["ping"]["measured"] == coverage["ping"]["expected"] == 6, coverage
    assert coverage["mtu"]["measured"] == coverage["mtu"]["expected"] == 6, coverage
    assert coverage["iperf"]["measured"] == 0 and coverage["discovery"]["measured"] == 0
    assert {g["reason"] for g in coverage["iperf"]["missing"]} == {
        f"not available in {MINIMAL_PROBE_IMAGE}: missing iperf3"}
    assert {g["reason"] for g in coverage["discovery"]["missing"]} == {
        f"not available in {MINIMAL_PROBE_IMAGE}: missing nslookup, nc"}
    assert [r for r in data["results"] if r["kind"] in ("iperf", "discovery")] == []  # no results, not errors
    pings = [r for r in data["results"] if r["kind"] == "ping"]
    assert len(pings) == 6 and all(r["error"] == "" and r["received"] == 20 for r in pings), pings
    assert all(r["path_mtu"] == 1450 for r in data["results"] if r["kind"] == "mtu")
    assert code == 3 and not data["within_thresholds"], err  # partial: said so, not "within thresholds"
    assert probe_services(overlay) == ""
    assert err.count("missing iperf3") == 1  # said once, not once per agent


def test_the_doctor_with_that_image_finds_no_dns_problem_it_did_not_measure(overlay: Lab):
    code, out, err, _ = cli("doctor", "--lab", "--network", NET, "--probe-image", MINIMAL_PROBE_IMAGE, "--count",
                            "20", "--interval", "0.01", "--json")
    data = json.loads(out)
    checks = [f["check"] for f in data["findings"]]
    assert not [c for c in checks if c.startswith("discovery.") or c == "probe.failed"], data["findings"]
    coverage = {c["kind"]: c for c in data["coverage"]}
    assert coverage["ping"]["measured"] == 6 and coverage["discovery"]["measured"] == 0
    assert "missing nslookup, nc" in err
    assert code == 0, (checks, err)  # nothing wrong was measured; discovery is said to be unmeasured


@pytest.mark.parametrize("command", ["probe", "doctor"])
def test_an_image_that_does_not_exist_is_exit_2_fast_naming_it(overlay: Lab, command: str):
    code, out, err, took = cli(command, "--lab", "--network", NET, "--probe-image", MISSING_IMAGE, timeout=120)
    assert code == 2, (out, err)
    assert took < 30, took
    assert MISSING_IMAGE in err and "No such image" in err and "--probe-image" in err
    assert probe_services(overlay) == ""


def test_a_manager_only_snapshot_says_whose_stats_are_missing(overlay: Lab):
    lab = overlay
    lab.docker("node1", "service", "create", "-q", "--detach", "--name", "f-svc", "--mode", "global", "--network",
               NET, MINIMAL_PROBE_IMAGE)
    try:
        wait_for(lambda: "3/3" in lab.docker("node1", "service", "ls", "--filter", "name=f-svc", "--format",
                                             "{{.Replicas}}").stdout, 60, "f-svc on every node")
        code, out, err, _ = cli("snapshot", "--json", "-H", lab.layout("node1").docker_host)
        assert code == 0, err
        data = json.loads(out)
        coverage = data["coverage"]
        assert coverage["stats_nodes_measured"] == ["node1"] and not coverage["complete"]
        assert [(m["node"], m["reason"]) for m in coverage["stats_nodes_missing"]] == [
            ("node2", "no engine connection"), ("node3", "no engine connection")]
        assert coverage["summary"].startswith("stats from 1 of 3 nodes")
        # f-svc runs on node2 and node3 too: its total (and its network's) is partial, not the cluster's
        assert data["netio"]["by_service"].get("f-svc", {"partial": True})["partial"] is True
        text = cli("snapshot", "-H", lab.layout("node1").docker_host)[1]
        assert "no engine connection to: node2, node3" in text
    finally:
        lab.docker("node1", "service", "rm", "f-svc", check=False)


async def test_probe_at_launch_on_a_host_list_works_like_pressing_p(overlay: Lab):
    hosts = [EndpointSpec(overlay.layout(f"node{i}").docker_host, "-H") for i in (1, 2, 3)]
    settings = ProbeSettings(image=MINIMAL_PROBE_IMAGE, networks=(NET,), count=20, interval=0.01, start=True)
    app = OverlayApp(DockerSwarmSource(hosts), source_label="hosts", interval=0.5, persist_config=False,
                     probe_settings=settings, probe_every=600)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: app.probe_session is not None and len(
            [r for r in app.probe_session.probe_results(NET) if r.kind == "ping" and r.measured]) == 6, 90,
            "ping results for all 6 pairs without pressing P")
        assert app.probe_problem == ""
        await pilot.press("4")
        tabs = app.query_one("#pane-loss").query(Tabs).last()  # new overlays give the tabs a new id
        tabs.active = next(t.id for t in tabs.query(Tab) if str(t.label.plain) == NET)
        await until(pilot, lambda: "ping 6 of 6 pairs" in str(app.query_one("#loss-legend").render()), 10,
                    "the coverage line in the Loss pane")
        await pilot.press("right", "right")  # from the row header to the node1 -> node2 cell
        await until(pilot, lambda: "node1 → node2" in str(app.query_one("#loss-detail").render()), 5,
                    "the cursor cell's numbers under the matrix")
        await pilot.press("q")
    wait_for(lambda: probe_services(overlay) == "", 30, "the agents removed on quit")


async def test_a_failure_to_start_probing_stays_on_screen(overlay: Lab):
    hosts = [EndpointSpec(overlay.layout("node1").docker_host, "-H")]
    settings = ProbeSettings(image=MISSING_IMAGE, networks=(NET,), count=5, interval=0.01, start=True)
    app = OverlayApp(DockerSwarmSource(hosts), source_label="manager", interval=0.5, persist_config=False,
                     probe_settings=settings, probe_every=600)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: app.probe_problem != "", 60, "the probe failure")
        assert MISSING_IMAGE in app.probe_problem
        await pilot.press("4")
        await pilot.pause(0.3)
        assert "cannot probe" in str(app.query_one("#loss-legend").render())
        assert "probes failed" in str(app.query_one("#status").render())
        await pilot.press("q")
    assert probe_services(overlay) == ""  # the agents that could not start were removed at once
