"""Probing runs that coexist, on the lab: the exporter probes permanently while a dashboard with probes on runs
beside it and `doctor` runs from the same host and from a second "host" (a process in its own UTS namespace with
another hostname); the dashboard measures every pair in every frame all the while, both doctors measure every
pair, the exporter's counters never go back and no scrape misses a pair, its agents are never restarted (their
lease label is renewed meanwhile); an agent of the exporter's that ends by itself is deployed again by the
exporter, under its own name; nothing is left once they all stop. Runs killed with SIGKILL on the other host
(one renewing its agents with `docker exec`, one whose agents report through the service logs): their agents
stop by themselves (exit 0, not restarted by swarm), and a later run removes the lapsed services."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from overlaytui.probes.agent import LAPSE_MARGIN, LEASE_ENV, LEASE_UNTIL_LABEL, PROBE_LABEL, parse_lease_until
from tests.helpers import Lab, required_binary, wait_for
from tests.integration.test_exporter_lab import free_port, get

NETWORK = "co-plain"
LEASE = 20  # seconds: the runs' agents' lease here (the default is 5 minutes)
NODES = ("node1", "node2", "node3")
PAIRS = {(a, b) for a in NODES for b in NODES if a != b}
OTHER_HOST = "otherhost"


def command(*args: str, host: str | None = None) -> list[str]:
    """overlaytui with these arguments; on `host`: in its own UTS namespace, under that hostname."""
    argv = [sys.executable, "-m", "overlaytui", *args]
    if host is None:
        return argv
    return [required_binary("unshare", "util-linux"), "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh",
            *argv]


def environment() -> dict[str, str]:
    return {**os.environ, LEASE_ENV: str(LEASE)}


def services(lab: Lab) -> dict[str, dict]:
    """Probe service name -> its labels."""
    ids = lab.docker("node1", "service", "ls", "-q", "--filter", f"label={PROBE_LABEL}").stdout.split()
    if not ids:
        return {}
    found = json.loads(lab.docker("node1", "service", "inspect", *ids, check=False).stdout or "[]")
    return {s["Spec"]["Name"]: s["Spec"].get("Labels") or {} for s in found}


def service_tasks(lab: Lab, name: str) -> list[tuple[str, str, str]]:
    """(task id, node, current state) of every task the service ever had."""
    out = lab.docker("node1", "service", "ps", "--no-trunc", "--format", "{{.ID}} {{.Node}} {{.CurrentState}}",
                     name, check=False).stdout
    return [tuple(line.split(maxsplit=2)) for line in out.splitlines() if line.strip()]


def running_agents(lab: Lab, name: str | None = None) -> list[str]:
    """Running agent containers (of one service, or of any run) on every node."""
    found = []
    for node in NODES:
        args = ["ps", "-q", "--filter", f"label={PROBE_LABEL}"]
        if name:
            args += ["--filter", f"label=com.docker.swarm.service.name={name}"]
        found += [f"{node}:{c}" for c in lab.docker(node, *args).stdout.split()]
    return found


def remains(lab: Lab) -> list[str]:
    """Probe services and agent containers in any state."""
    return list(services(lab)) + [f"{node}:{c}" for node in NODES for c in lab.docker(
        node, "ps", "-aq", "--filter", f"label={PROBE_LABEL}").stdout.split()]


def owned_by(lab: Lab, host: str, exclude: set[str]) -> list[str]:
    return sorted(name for name, labels in services(lab).items()
                  if labels.get(PROBE_LABEL, "").startswith(f"{host}:") and name not in exclude)


_SENT = re.compile(r'^overlaytui_pair_packets_sent_total\{([^}]*)\} (\S+)$', re.MULTILINE)


def pair_counters(text: str) -> dict[tuple[str, str], float]:
    found = {}
    for labels, value in _SENT.findall(text):
        tags = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if tags.get("network") == NETWORK:
            found[(tags["src_node"], tags["dst_node"])] = float(value)
    return found


class Scraper(threading.Thread):
    """Scrapes the exporter every half second, keeping every scrape's per-pair packet counters."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url, self.scrapes, self.errors = f"http://127.0.0.1:{port}/metrics", [], []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            try:
                self.scrapes.append(pair_counters(get(self.url)))
            except OSError as exc:
                self.errors.append(str(exc))


class Dashboard(threading.Thread):
    """The dashboard with probes on (P at launch), headless in a thread of its own beside the other runs: its
    probe coverage of the overlay as each frame shows it, and whether probing ever failed."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.measured: list[tuple[int, int, int]] = []  # (pairs measured, expected, rounds) of each frame since
        # probing began
        self.problems: set[str] = set()
        self.failure: BaseException | None = None

    def run(self) -> None:
        import asyncio

        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            self.failure = exc

    async def _run(self) -> None:
        from overlaytui.app import OverlayApp
        from overlaytui.lab.lab import endpoints
        from overlaytui.probes.agent import LAB_IMAGE
        from overlaytui.probes.session import ProbeSettings
        from overlaytui.sources.swarm import DockerSwarmSource

        settings = ProbeSettings(image=LAB_IMAGE, networks=(NETWORK,), kinds=("ping",), count=50, interval=0.01,
                                 start=True)
        app = OverlayApp(DockerSwarmSource(endpoints()), source_label="lab", interval=0.5, persist_config=False,
                         probe_settings=settings, probe_every=1)
        async with app.run_test(size=(120, 40)) as pilot:
            while not self.stop.is_set():
                await pilot.pause(0.5)
                frame = app.frame
                if frame is not None and frame.probes.rounds:
                    ping = [c for c in frame.probes.coverage if c.kind == "ping" and c.network == NETWORK]
                    self.measured.append((sum(c.measured for c in ping), sum(c.expected for c in ping),
                                          frame.probes.rounds))
                if app.probe_problem:
                    self.problems.add(app.probe_problem)
            await pilot.press("q")  # quitting removes its agents
            await pilot.pause(1)


def doctor(host: str | None) -> subprocess.Popen:
    return subprocess.Popen(command("doctor", "--lab", "--json", "--network", NETWORK, "--kind", "ping", "--count",
                                    "50", "--interval", "0.01", host=host),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())


def stop(proc: subprocess.Popen, timeout: float = 90) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def overlay(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", NETWORK)
    yield lab
    from tests.integration.test_probes import clear_probe_leftovers

    clear_probe_leftovers(lab, 60)
    lab.docker("node1", "network", "rm", NETWORK, check=False)


def test_the_exporter_a_dashboard_and_two_doctors_from_two_hosts_coexist(overlay: Lab, tmp_path):
    lab = overlay
    port = free_port()
    log_path = tmp_path / "exporter.log"
    log = log_path.open("w")
    exporter = subprocess.Popen(command("exporter", "--lab", "--listen", f"127.0.0.1:{port}", "--network", NETWORK,
                                        "--probe-every", "1", "--count", "50", "--interval", "0.02",
                                        "--collect-every", "1"),
                                stdout=log, stderr=subprocess.STDOUT, env=environment())
    scraper = Scraper(port)
    dashboard = Dashboard()
    try:
        wait_for(lambda: set(pair_counters(get_or_empty(port))) == PAIRS
                 and min(pair_counters(get_or_empty(port)).values()) > 0, 120,
                 "the exporter to count packets on all 6 pairs", interval=0.5)
        (ours,) = services(lab)
        before = service_tasks(lab, ours)
        until = parse_lease_until(services(lab)[ours][LEASE_UNTIL_LABEL])
        scraper.start()

        dashboard.start()  # a dashboard with probes on, from this host too
        wait_for(lambda: dashboard.failure or (dashboard.measured and dashboard.measured[-1][:2] == (6, 6)), 120,
                 "the dashboard to measure every pair beside the exporter", interval=0.5)
        assert dashboard.failure is None, dashboard.failure
        seen = len(dashboard.measured)

        started = time.monotonic()
        here, there = doctor(None), doctor(OTHER_HOST)
        outputs = {}
        for name, proc in (("same host", here), ("other host", there)):
            out, err = proc.communicate(timeout=240)
            outputs[name] = (proc.returncode, out, err)
        print(f"both doctors done in {time.monotonic() - started:.1f} s beside the exporter")
        for name, (code, out, err) in outputs.items():
            # the exit code is the cluster's worst finding (loss, on a machine this loaded, can be one): what matters
            # is that probing measured every pair, and that nothing was found about the other runs' agents
            report = json.loads(out) if out.strip() else {}
            print(f"{name}: exit {code}, worst {report.get('worst')}: "
                  f"{[(f['check'], f['subject']) for f in report.get('findings', []) if f['severity'] == 'error']}")
            assert report and not report["not_measured"], f"{name}: exit {code}: {err[-2000:]}"
            coverage = [c for c in report["coverage"] if c["kind"] == "ping"]
            assert coverage and all(c["complete"] and c["expected"] == 6 for c in coverage), (name, coverage, err)
            about_agents = [f for f in report["findings"] if "overlaytui-probe" in json.dumps(f)]
            assert not about_agents, (name, about_agents)
        # the dashboard was never disturbed: its agents stayed expected on every node in every frame, its rounds
        # went on, every pair measured at the end, and probing never failed
        wait_for(lambda: len(dashboard.measured) >= seen + 4 and dashboard.measured[-1][:2] == (6, 6), 60,
                 "the dashboard measuring every pair after the doctors")
        since = dashboard.measured[seen:]
        assert all(expected == 6 for _m, expected, _r in since), since
        assert since[-1][2] > since[0][2], since
        assert not dashboard.problems and dashboard.failure is None, (dashboard.problems, dashboard.failure)
        dashboard.stop.set()
        dashboard.join(60)
        assert not dashboard.is_alive() and dashboard.failure is None, dashboard.failure
        # a few more scrapes after the doctors' and the dashboard's agents went
        count = len(scraper.scrapes)
        wait_for(lambda: len(scraper.scrapes) >= count + 4, 30, "scrapes after the doctors")
        scraper.done.set()
        scraper.join(10)

        # the exporter was never disturbed: its agents are the same tasks (no restart, no re-deploy) ...
        after = service_tasks(lab, ours)
        assert {t[0] for t in after} == {t[0] for t in before} and len(after) == 3, (before, after)
        assert all(state.startswith("Running") for _id, _node, state in after), after
        # ... whose lease was renewed meanwhile (by a label update, which restarted nothing)
        assert parse_lease_until(services(lab)[ours][LEASE_UNTIL_LABEL]) > until
        assert "deployed again" not in log_path.read_text()
        # ... and every scrape had every pair, counters never going back
        assert not scraper.errors, scraper.errors
        assert len(scraper.scrapes) >= 10
        for previous, scrape in zip(scraper.scrapes, scraper.scrapes[1:], strict=False):
            assert set(scrape) == PAIRS, scrape
            assert all(scrape[p] >= previous[p] for p in PAIRS), (previous, scrape)
        assert all(scraper.scrapes[-1][p] > scraper.scrapes[0][p] for p in PAIRS)  # and it kept probing

        # an agent that ends by itself (exit 0, as when its lease lapses) is not started again by swarm; once it
        # was not renewed for a lease, its run deploys its own service again, under its own name
        (agent_on_node2,) = [c.split(":")[1] for c in running_agents(lab, ours) if c.startswith("node2:")]
        # (the exec ends with its container: its exit status says nothing)
        lab.docker("node2", "exec", agent_on_node2, "sh", "-c", "kill -TERM 1", check=False)
        stopped = time.monotonic()
        wait_for(lambda: not any(c.endswith(agent_on_node2[:12]) for c in running_agents(lab, ours)), 30,
                 "node2's agent to end")
        wait_for(lambda: "deployed again" in log_path.read_text(), LEASE + 60, "the exporter to deploy again", 0.5)
        print(f"the exporter deployed its agents again {time.monotonic() - stopped:.1f} s after one stopped")
        assert list(services(lab)) == [ours]
        counters = pair_counters(get(f"http://127.0.0.1:{port}/metrics"))
        wait_for(lambda: (now := pair_counters(get_or_empty(port))).keys() == PAIRS
                 and all(now[p] > counters[p] for p in PAIRS) and len(running_agents(lab, ours)) == 3, 90,
                 "every pair probed again")
    finally:
        scraper.done.set()
        dashboard.stop.set()
        if dashboard.is_alive():
            dashboard.join(60)
        stop(exporter)
        log.close()
    assert exporter.returncode == 0, log_path.read_text()[-2000:]
    wait_for(lambda: not remains(lab), 60, "nothing left once every run stopped")


def get_or_empty(port: int) -> str:
    try:
        return get(f"http://127.0.0.1:{port}/metrics")
    except OSError:
        return ""


def start_run(lab: Lab, mode: str, log, earlier: set[str]) -> tuple[subprocess.Popen, list[str]]:
    """`probe --watch` on the other host (`mode` logs: through the service logs); once its agents run on every
    node: the process and its services (the agents', and the anchor's when reporting through the logs)."""
    proc = subprocess.Popen(
        command("probe", "--lab", "--network", NETWORK, "--kind", "ping", "--count", "20", "--interval", "0.05",
                "--watch", "2", *(["--via-logs"] if mode == "logs" else []), host=OTHER_HOST),
        stdout=log, stderr=subprocess.STDOUT, env=environment())
    count, agents = (2, 4) if mode == "logs" else (1, 3)
    try:
        names = wait_for(lambda: (found := owned_by(lab, OTHER_HOST, earlier)) and len(found) == count and found,
                         90, f"the {mode} run's services on {OTHER_HOST}")
        wait_for(lambda: sum(len(running_agents(lab, n)) for n in names) == agents, 90,
                 f"the {mode} run's agents on every node")
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc, names


def wait_stopped(lab: Lab, names: list[str], timeout: float, what: str) -> None:
    wait_for(lambda: not any(running_agents(lab, n) for n in names), timeout, what, 0.5)


def test_killed_runs_on_another_host_stop_by_themselves_within_their_lease(overlay: Lab, tmp_path):
    """Two runs on the other host, killed with SIGKILL at once: one whose agents are renewed with `docker exec`,
    one whose agents report through the service logs (renewed through their anchor's name). With no overlaytui
    running, every agent stops by itself (exit 0, which swarm does not restart); a later run removes the lapsed
    services."""
    lab = overlay
    runs: dict[str, subprocess.Popen] = {}
    runs_by_name: dict[str, list[str]] = {}
    log = (tmp_path / "runs.log").open("w")
    try:
        for mode in ("exec", "logs"):
            runs[mode], runs_by_name[mode] = start_run(lab, mode, log, {n for ns in runs_by_name.values() for n in ns})
        assert all(proc.poll() is None for proc in runs.values())
        for proc in runs.values():
            proc.send_signal(signal.SIGKILL)  # no cleanup at all
        killed = time.monotonic()
        for proc in runs.values():
            assert proc.wait(10) == -signal.SIGKILL
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
        log.close()

    # no overlaytui runs now: the agents stop by themselves. Renewed through exec: within the lease (plus the
    # agents' check step); through the logs: the anchor within the lease, the reporting agents a lease later
    stopped = {}
    for mode, bound in (("exec", LEASE + 15), ("logs", 2 * LEASE + 30)):
        wait_stopped(lab, runs_by_name[mode], bound - (time.monotonic() - killed),
                     f"the killed {mode} run's agents to stop by themselves")
        stopped[mode] = time.monotonic() - killed
    print(f"killed runs' agents stopped after SIGKILL: {stopped['exec']:.1f} s (exec renewal), "
          f"{stopped['logs']:.1f} s (reporting through the logs) (lease {LEASE} s)")
    names = [n for mode in ("exec", "logs") for n in runs_by_name[mode]]
    tasks = {n: service_tasks(lab, n) for n in names}
    for name, found in tasks.items():
        assert found and all(state.startswith("Complete") for _id, _node, state in found), (name, found)

    # their services stay (nobody removed them) until their lease lapsed; then any later run removes them
    until = max(parse_lease_until(services(lab)[n][LEASE_UNTIL_LABEL]) for n in names)
    wait_for(lambda: time.time() > until + LAPSE_MARGIN + 1, LEASE + LAPSE_MARGIN + 15, "the leases to lapse", 0.5)
    for name, found in tasks.items():  # exit 0 was final: swarm started nothing again meanwhile
        assert {t[0] for t in service_tasks(lab, name)} == {t[0] for t in found}, name
    later = subprocess.run(command("probe", "--lab", "--network", NETWORK, "--kind", "ping", "--count", "5",
                                   "--interval", "0.01"),
                           capture_output=True, text=True, timeout=240, env=environment())
    assert later.returncode == 0, later.stderr[-2000:]
    removed = re.search(r"removed probe agents[^:]*: (.*)", later.stderr)
    assert removed and set(removed.group(1).split(", ")) == set(names), later.stderr
    assert not set(names) & set(services(lab)), services(lab)
    wait_for(lambda: not remains(lab), 60, "nothing left after the later run")
