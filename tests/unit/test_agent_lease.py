"""Runs that coexist: which probe services a run may remove (only lapsed leases, never a live run's, whatever its
host), the lease setting, per-run service names, and the agent's own lease watch run by a real shell."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from overlaytui.probes import agent
from overlaytui.probes.agent import (
    LAPSE_MARGIN,
    LEASE_UNTIL_LABEL,
    PROBE_LABEL,
    RUN_LABEL,
    Run,
    completed_nodes,
    engine_time,
    is_leftover,
    lease_seconds,
    parse_lease_until,
    service_name,
)

NOW = 1_800_000_000.0


def service(name: str, labels: dict) -> dict:
    return {"ID": "s1", "Spec": {"Name": name, "Labels": labels}}


def run_service(run: Run, lease_until: float) -> dict:
    return service(service_name("net", run.token), run.labels(lease_until))


def test_a_live_run_is_never_removed_whatever_its_host():
    for host in ("host-a", "host-b", "localhost"):
        other = Run("0a1b2c3d", host, 4242)
        assert not is_leftover(run_service(other, NOW + 200), NOW, own_run="ffffffff", host="host-a",
                               alive=lambda pid: False)
        # lapsed, but within the margin a late renewal may still land in
        assert not is_leftover(run_service(other, NOW - LAPSE_MARGIN + 1), NOW, own_run="ffffffff")


def test_a_lapsed_lease_is_removed_whatever_its_host():
    for host in ("host-a", "host-b"):
        other = Run("0a1b2c3d", host, 4242)
        assert is_leftover(run_service(other, NOW - LAPSE_MARGIN - 1), NOW, own_run="ffffffff", host="host-a",
                           alive=lambda pid: True)


def test_a_run_never_removes_its_own_services():
    own = Run("0a1b2c3d", "host-a", 4242)
    assert not is_leftover(run_service(own, NOW - 3600), NOW, own_run=own.token)


def test_user_services_and_unreadable_leases_are_never_removed():
    lapsed = Run("0a1b2c3d", "host-b", 1).labels(NOW - 3600)
    assert not is_leftover(service("my-app", lapsed), NOW)  # not our name
    assert not is_leftover(service(service_name("net", "0a1b2c3d"), {}), NOW)  # no label at all
    assert not is_leftover(service(service_name("net", "0a1b2c3d"), {RUN_LABEL: "x"}), NOW)  # no owner
    for until in ("", "soon", "-5", "1e9", "12345678901234"):
        labels = {**lapsed, LEASE_UNTIL_LABEL: until}
        assert not is_leftover(service(service_name("net", "0a1b2c3d"), labels), NOW), until
    assert not is_leftover({}, NOW) and not is_leftover({"Spec": None}, NOW)


def test_services_from_before_leases_only_when_their_process_here_is_gone():
    legacy = "overlaytui-probe-net"
    assert is_leftover(service(legacy, {PROBE_LABEL: "host-a:123"}), NOW, host="host-a", alive=lambda pid: False)
    assert not is_leftover(service(legacy, {PROBE_LABEL: "host-a:123"}), NOW, host="host-a",
                           alive=lambda pid: True)
    # another host's run cannot be judged: it may be alive (the bug this replaced removed it)
    assert not is_leftover(service(legacy, {PROBE_LABEL: "host-b:123"}), NOW, host="host-a",
                           alive=lambda pid: False)
    assert not is_leftover(service(legacy, {PROBE_LABEL: "yes"}), NOW, host="host-a", alive=lambda pid: False)


def test_lease_until_parsing():
    assert parse_lease_until("1800000000") == 1_800_000_000.0
    assert parse_lease_until(" 42 ") == 42.0
    for bad in (None, 42, "", "abc", "-1", "1.5", "1e9", "9" * 13):
        assert parse_lease_until(bad) is None, bad


def test_labels_carry_the_run_the_owner_and_the_lease_rounded_up():
    run = Run("0a1b2c3d", "host-a", 4242, 20.0)
    labels = run.labels(NOW + 0.2)
    assert labels == {PROBE_LABEL: "host-a:4242", RUN_LABEL: "0a1b2c3d", LEASE_UNTIL_LABEL: str(int(NOW) + 1),
                      agent.LEASE_LABEL: "20"}
    assert parse_lease_until(labels[LEASE_UNTIL_LABEL]) >= NOW + 0.2


@pytest.mark.parametrize("raw, lease, problem", [
    (None, 300.0, ""), ("", 300.0, ""), ("20", 20.0, ""), (" 600 ", 600.0, ""),
    ("abc", 300.0, "not a number"), ("5", 10.0, "out of range"), ("-3", 10.0, "out of range"),
    ("nan", 300.0, "out of range"), ("inf", 86400.0, "out of range"), ("1e9", 86400.0, "out of range"),
])
def test_the_lease_setting(raw, lease, problem):
    env = {} if raw is None else {agent.LEASE_ENV: raw}
    found, said = lease_seconds(env)
    assert found == lease
    assert (problem in said) if problem else said == ""
    if said:
        assert agent.LEASE_ENV in said


def test_the_lease_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(agent.LEASE_ENV, "20")
    assert lease_seconds() == (20.0, "")
    assert Run.new(lease_seconds()[0]).lease == 20.0


DNS_LABEL = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$")


@pytest.mark.parametrize("network", ["net", "e-plain", "stack_default", "a.b", "x" * 200, "_-_", "n" * 40 + "_"])
def test_service_names_are_per_run_prefixed_and_dns_labels(network):
    names = {service_name(network, Run.new().token) for _ in range(50)}
    assert len(names) == 50  # every run its own name
    for name in names:
        assert name.startswith(agent.SERVICE_PREFIX) and len(name) <= 63 and DNS_LABEL.match(name), name


@pytest.mark.parametrize("network", ["net", "x" * 200, "stack_default"])
def test_the_anchor_has_its_own_name_within_the_limit(network):
    agents, anchor = service_name(network, "0a1b2c3d"), service_name(network, "0a1b2c3d", agent.ANCHOR_SUFFIX)
    assert anchor != agents and anchor.endswith("-0a1b2c3d-lease") and len(anchor) <= 63 and DNS_LABEL.match(anchor)


def test_two_long_overlays_of_one_run_keep_apart():
    a, b = "o" * 70 + "-front", "o" * 70 + "-back"
    assert service_name(a, "0a1b2c3d") != service_name(b, "0a1b2c3d")
    assert service_name("net", "0a1b2c3d") == "overlaytui-probe-net-0a1b2c3d"  # readable when it fits


def test_run_ids_are_unique_and_name_their_host_and_pid():
    runs = [Run.new() for _ in range(200)]
    assert len({r.token for r in runs}) == 200
    assert all(re.fullmatch(r"[0-9a-f]{8}", r.token) and r.owner.endswith(f":{r.pid}") for r in runs)


def test_engine_time():
    stamp = engine_time({"SystemTime": "2026-12-06T23:03:02.584737675Z"})
    assert stamp == pytest.approx(datetime(2026, 12, 6, 23, 3, 2, 584737, tzinfo=UTC).timestamp(), abs=1e-5)
    assert engine_time({"SystemTime": "2026-12-06T23:03:02+01:00"}) == datetime(
        2026, 12, 6, 22, 3, 2, tzinfo=UTC).timestamp()
    for bad in ({}, {"SystemTime": "yesterday"}, {"SystemTime": None}, None, {"SystemTime": "2026-13-45T99:00:00Z"}):
        assert engine_time(bad) is None, bad


def test_completed_agents_are_those_swarm_will_not_start_again():
    def task(node, state):
        return {"NodeID": node, "Status": {"State": state, "ContainerStatus": {"ContainerID": f"c-{node}"}}}
    tasks = [task("n1", "complete"), task("n2", "complete"), task("n2", "running"), task("n3", "failed"),
             task("n4", "complete"), task("n4", "starting"), "junk", {"Status": None}]
    assert completed_nodes(tasks) == {"n1": "c-n1"}


def test_keep_agents_deploys_again_only_agents_whose_lease_lapsed(monkeypatch):
    """An agent that ended by itself is the run's to deploy again only when it was not renewed for a lease (one
    stopped with its engine is swarm's to start again)."""
    from overlaytui.probes.session import ProbeSession, ProbeSettings

    monkeypatch.setenv(agent.LEASE_ENV, "20")
    session = ProbeSession(lambda: None, ProbeSettings())
    try:
        now = time.monotonic()
        session._deployed_at["net"] = now - 100
        session._renewed.update({"old": now - 25, "fresh": now - 5})
        completed = {"n1": "old", "n2": "fresh", "n3": "never", "n4": "old"}
        assert session._lapsed("net", completed, {"n1", "n2", "n3"}) == {"n1", "n3"}
        session._deployed_at["net"] = now - 5  # just deployed: never renewed yet, not lapsed
        assert session._lapsed("net", {"n3": "never"}, {"n3"}) == set()
    finally:
        session._executor.shutdown()


# ---------------------------------------------------------------- the agent's lease watch, run by a real shell

@contextmanager
def running_agent(tmp_path, script: str, lease: int, step: int, path: str = "", **env: str
                  ) -> Iterator[tuple[subprocess.Popen, Path]]:
    """The agent's script run by this machine's `sh`, its lease file in tmp_path; killed at the end if still
    running."""
    lease_file = tmp_path / "lease"
    local = script.replace(agent.LEASE_FILE, str(lease_file)).replace("iperf3 -s -D", "true")
    proc = subprocess.Popen(["sh", "-c", local], env={"PATH": f"{path}/usr/bin:/bin", "OT_LEASE": str(lease),
                                                      "OT_STEP": str(step), "OT_SERVICE": "none", "OT_COUNT": "1",
                                                      "OT_INTERVAL": "1", "OT_DEADLINE": "1", "OT_EVERY": "1", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        yield proc, lease_file
    finally:
        # the whole group: the script's background loops (the lease watch, the anchor's) outlive its shell, as
        # they never do in a container, where they end with PID 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_an_agent_stays_while_renewed_and_exits_0_a_lease_after_the_last_renewal(tmp_path):
    with running_agent(tmp_path, agent.AGENT_SCRIPT, lease=2, step=1) as (proc, lease_file):
        renewed_until = time.monotonic() + 4.5
        n = 0
        while time.monotonic() < renewed_until:  # renewed (like `docker exec sh -c 'echo N > file'`) 4.5 s long
            n += 1
            lease_file.write_text(f"run.{n}\n")
            time.sleep(0.5)
            assert proc.poll() is None, proc.stderr.read()
        stopped = proc.wait(10)
        lasted = time.monotonic() - renewed_until
        assert stopped == 0 and 1.5 <= lasted <= 5.0, (stopped, lasted)  # a lease (2 s), a step of slack


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_an_agent_never_renewed_stops_after_one_lease_and_term_exits_0(tmp_path):
    started = time.monotonic()
    with running_agent(tmp_path, agent.AGENT_SCRIPT, lease=2, step=1) as (proc, _file):
        assert proc.wait(10) == 0 and 1.5 <= time.monotonic() - started <= 5.0
    with running_agent(tmp_path, agent.AGENT_SCRIPT, lease=0, step=1) as (proc, _file):  # no lease: until stopped
        time.sleep(1.5)
        assert proc.poll() is None
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_the_reporting_agent_also_stops_when_its_lease_lapses(tmp_path):
    started = time.monotonic()
    with running_agent(tmp_path, agent.REPORT_SCRIPT, lease=2, step=1) as (proc, _file):
        assert proc.wait(15) == 0 and time.monotonic() - started >= 1.5


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("awk") is None, reason="needs a POSIX shell, awk")
def test_a_reporting_agent_lives_while_its_anchor_resolves_then_one_lease(tmp_path):
    """The reporting agents' lease is the anchor's name resolving (busybox nslookup's output, its server's
    own address excluded): here an nslookup that answers while a file exists."""
    bin_dir, resolves = tmp_path / "bin", tmp_path / "anchor-runs"
    bin_dir.mkdir()
    (bin_dir / "nslookup").write_text(
        "#!/bin/sh\nprintf 'Server:\\t127.0.0.11\\nAddress:\\t127.0.0.11:53\\n\\n'\n"
        f"if [ -e {resolves} ] && [ \"$1\" = tasks.the-anchor ]; then printf 'Name:\\t%s\\nAddress: 10.0.9.4\\n' "
        "\"$1\"; else echo \"** server can't find $1: NXDOMAIN\"; fi\n")
    (bin_dir / "nslookup").chmod(0o755)
    resolves.touch()
    with running_agent(tmp_path, agent.REPORT_SCRIPT, lease=2, step=1, path=f"{bin_dir}:",
                       OT_ANCHOR="the-anchor") as (proc, _file):
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(5)  # 2.5 leases: renewed by the anchor resolving
        resolves.unlink()  # the anchor stopped: its name no longer resolves
        gone = time.monotonic()
        # a lease after the last check that resolved (a step at most before the change)
        assert proc.wait(10) == 0 and 0.9 <= time.monotonic() - gone <= 6.0
