"""The dashboard on the real lab: the lab's nodes, services and overlays appear in the panes."""

from __future__ import annotations

from textual.widgets import DataTable, Tab, Tabs

from overlaytui.app import OverlayApp
from overlaytui.lab.lab import endpoints as lab_endpoints
from overlaytui.lab.layout import PROBE_IMAGE
from overlaytui.panes.details import NodeDetail
from overlaytui.sources.swarm import DockerSwarmSource
from tests.helpers import Lab, eventually, wait_for

MARKUP_LABEL = "[bold]not-bold[/"


async def until(pilot, predicate, timeout: float, what: str):
    """Until `predicate()` holds, the app running meanwhile (tests.helpers.eventually with the Pilot's pause)."""
    await eventually(predicate, timeout, what, interval=0.1, pause=pilot.pause)


async def test_dashboard_shows_the_lab(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", "app-net")
    lab.docker("node1", "service", "create", "-q", "--detach", "--name", "app-svc", "--replicas", "3",
               "--network", "app-net", PROBE_IMAGE)
    node2_id = lab.docker("node2", "info", "-f", "{{.Swarm.NodeID}}").stdout.strip()
    # swarm versions every object: an update racing another one is refused "out of sequence"; retry
    wait_for(lambda: lab.docker("node1", "node", "update", "--label-add", f"note={MARKUP_LABEL}", node2_id,
                                check=False).returncode == 0, 20, "the node label update")
    wait_for(lambda: "3/3" in lab.docker("node1", "service", "ls", "--filter", "name=app-svc",
                                         "--format", "{{.Replicas}}").stdout, 60, "app-svc to run")
    app = OverlayApp(DockerSwarmSource(lab_endpoints()), source_label="lab", interval=0.5,
                     persist_config=False)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await until(pilot, lambda: app.snapshot is not None and any(
                s.name == "app-svc" and s.running_tasks == 3 for s in app.snapshot.services), 30, "app-svc")
            topology = app.query_one("#topology-table", DataTable)
            headers = " ".join(str(c.label) for c in topology.ordered_columns)
            assert all(f"node{i}" in headers for i in (1, 2, 3))
            net_id = app.snapshot.network("app-net").id
            await until(pilot, lambda: net_id in {str(k.value) for k in topology.rows}, 10, "app-net row")

            await pilot.press("2")
            await pilot.pause()
            placement = app.query_one("#placement-table", DataTable)
            assert "app-svc" in {str(k.value) for k in placement.rows}
            cells = [str(c) for c in placement.get_row("app-svc")[3:6]]
            assert sum(int(c.replace("●", "") or 0) for c in cells if c.startswith("●")) == 3

            await pilot.press("5")
            await pilot.pause()
            networks = {str(placement_row.value) for placement_row in app.query_one("#networks-table",
                                                                                    DataTable).rows}
            assert net_id in networks
            assert any("@unix://" in key for key in networks)  # each node's local networks

            status = str(app.query_one("#status").render())
            assert all(f"● node{i}" in status for i in (1, 2, 3))

            app.open_detail("node", node2_id)
            await pilot.pause()
            assert isinstance(app.screen, NodeDetail)
            assert MARKUP_LABEL in app.export_screenshot().replace("&#160;", " ")
            await pilot.press("q")
    finally:
        lab.docker("node1", "service", "rm", "app-svc", check=False)
        lab.docker("node1", "node", "update", "--label-rm", "note", node2_id, check=False)
        wait_for(lambda: lab.docker("node1", "network", "rm", "app-net", check=False).returncode == 0, 30,
                 "app-net to be removable")


async def test_probing_from_the_dashboard_fills_the_loss_pane_and_cleans_up(lab: Lab):
    from overlaytui.probes.agent import LAB_IMAGE, PROBE_LABEL
    from overlaytui.probes.session import ProbeSettings

    lab.docker("node1", "network", "create", "-d", "overlay", "app-probe-net")
    settings = ProbeSettings(image=LAB_IMAGE, networks=("app-probe-net",), count=20, interval=0.01)
    app = OverlayApp(DockerSwarmSource(lab_endpoints()), source_label="lab", interval=0.5,
                     persist_config=False, probe_settings=settings, probe_every=600)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await until(pilot, lambda: app.snapshot is not None, 30, "the first snapshot")
            await pilot.press("4")
            await pilot.press("P")
            await until(pilot, lambda: app.probe_session is not None and len(
                [r for r in app.probe_session.probe_results("app-probe-net") if r.kind == "ping"]) == 6, 90,
                "ping results for all 6 pairs")
            tabs = app.query_one("#pane-loss").query(Tabs).last()  # new overlays give the tabs a new id
            tabs.active = next(t.id for t in tabs.query(Tab) if str(t.label.plain) == "app-probe-net")
            await pilot.pause(0.5)
            table = app.query_one("#loss-table", DataTable)
            cells = [str(c) for row in ("node1", "node2", "node3") for c in table.get_row(row)[1:]]
            assert sum(1 for c in cells if c.startswith("0.00%")) == 6, cells
            await pilot.press("q")
        remaining = lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.strip()
        assert remaining == ""  # quitting removed the agents
    finally:
        lab.docker("node1", "network", "rm", "app-probe-net", check=False)
