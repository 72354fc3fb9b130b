"""Record and replay on the real lab: `overlaytui record --lab` while a service is scaled and a node's engine is
stopped and started again; the recording's frames and timeline at those moments show each change, and
`snapshot --replay --at` and the replaying dashboard give the cluster as it was then."""

from __future__ import annotations

import gzip
import json
import re
import signal
import subprocess
import sys
import time

import pytest

from overlaytui.app import OverlayApp
from overlaytui.lab.layout import MINIMAL_PROBE_IMAGE, PROBE_IMAGE
from overlaytui.model import Health
from overlaytui.recording import RecordingError, load
from overlaytui.sources.replay import ReplaySource
from tests.helpers import Lab, wait_for

SECRET = "hunter2-in-the-env"
LABEL = "label-value-kept"


def running(lab: Lab, service: str) -> str:
    return lab.docker("node1", "service", "ls", "--filter", f"name={service}", "--format", "{{.Replicas}}",
                      check=False).stdout.strip()


@pytest.fixture
def scaled(lab: Lab):
    lab.docker("node1", "network", "create", "-d", "overlay", "r-net")
    lab.docker("node1", "service", "create", "-q", "--detach", "--name", "r-svc", "--replicas", "1",
               "--network", "r-net", "--constraint", "node.hostname!=node2", "--env", f"OT_PASSWORD={SECRET}",
               "--container-label", f"kept={LABEL}", "--label", f"kept={LABEL}", PROBE_IMAGE)
    wait_for(lambda: running(lab, "r-svc") == "1/1", 60, "r-svc 1/1")
    yield lab
    lab.fault("node2", "engine-start")
    lab.docker("node1", "service", "rm", "r-svc", check=False)
    wait_for(lambda: lab.docker("node1", "network", "rm", "r-net", check=False).returncode == 0, 60, "r-net gone")
    wait_for(lambda: lab.node_states().get("node2") == "Ready", 90, "node2 Ready again")


def _r_up(snap) -> int:
    service = next((s for s in snap.services if s.name == "r-svc"), None)
    return 0 if service is None else sum(1 for t in snap.tasks if t.service_id == service.id and t.up)


def _node2_engine(snap) -> Health:
    return next(e.health for e in snap.engines if e.endpoint.endswith("/node2/docker.sock"))


def _recorded(path, check) -> bool:
    """`check` holds for the last frame written so far (the file is read up to where the writer is)."""
    try:
        recording = load(path)
    except (RecordingError, OSError):
        return False
    return bool(len(recording)) and check(recording.frame(len(recording) - 1).snapshot)


async def test_a_recording_of_the_lab_replays_the_scale_and_the_engine_stop(scaled: Lab, tmp_path):
    lab = scaled
    path = tmp_path / "lab.jsonl.gz"
    recorder = subprocess.Popen([sys.executable, "-m", "overlaytui.cli", "record", str(path), "--lab", "--every",
                                 "0.5", "--keyframe", "10", "--duration", "180"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    # each step waits until the recording itself shows it (the manager reports a task running a moment after
    # the CLI's REPLICAS does, and the recorder polls on its own events)
    try:
        wait_for(lambda: _recorded(path, lambda s: _r_up(s) == 1), 30, "a frame with r-svc 1 up")
        scaled_at = time.time()
        lab.docker("node1", "service", "scale", "--detach", "r-svc=3")
        wait_for(lambda: _recorded(path, lambda s: _r_up(s) == 3), 60, "a frame with r-svc 3 up")
        stopped_at = time.time()
        lab.fault("node2", "engine-stop")
        wait_for(lambda: _recorded(path, lambda s: _node2_engine(s) is Health.ERROR), 30, "a frame with node2 down")
        wait_for(lambda: lab.node_states().get("node2") == "Down", 30, "node2 Down")  # an outage, not a blink
        started_at = time.time()
        lab.fault("node2", "engine-start")
        wait_for(lambda: _recorded(path, lambda s: _node2_engine(s) is Health.OK), 60, "a frame with node2 up")
    finally:
        recorder.send_signal(signal.SIGTERM)
        _out, err = recorder.communicate(timeout=60)
    assert recorder.returncode == 0, err
    assert "frames" in err and "Traceback" not in err

    recording = load(path)
    assert recording.header["cluster_id"] and recording.header["engine_api"], recording.header
    text = gzip.decompress(path.read_bytes()).decode()
    assert SECRET not in text and LABEL in text  # env values are never written; labels are
    assert recording.start < scaled_at < stopped_at < started_at <= recording.end + 1

    def at(t: float):
        return recording.frame(recording.index_at(t)).snapshot

    # the last frame before each step is the one the test saw
    assert _r_up(at(scaled_at)) == 1
    assert _r_up(at(stopped_at)) == 3 and _node2_engine(at(stopped_at)) is Health.OK
    assert _node2_engine(at(started_at)) is Health.ERROR
    assert _node2_engine(at(recording.end)) is Health.OK

    moments = recording.moments
    scale = [m for m in moments if m.kind == "placement" and m.subject == "r-svc" and m.t < stopped_at]
    # the tasks start one frame apart or together: from 1 running to 3, in one moment or several
    assert scale and scaled_at <= scale[0].t, scale
    assert "(1 → " in scale[0].text and scale[-1].text.endswith("→ 3 running)"), scale
    down = [m for m in moments if m.kind == "engine" and "down" in m.text and m.subject == "node2"]
    up = [m for m in moments if m.kind == "engine" and "up again" in m.text and m.subject == "node2"]
    assert down and up and stopped_at <= down[0].t < started_at <= up[-1].t

    # `snapshot --replay --at` prints what it would have printed then
    # (an offset from the start, 1 ms past the frame: an ISO time with microseconds can come back 1 us early)
    offset = f"{down[0].t - recording.start + 0.001:.3f}s"
    run = subprocess.run([sys.executable, "-m", "overlaytui.cli", "snapshot", "--json", "--replay", str(path),
                          "--at", offset], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    engines = {e["endpoint"].split("/")[-2]: e["health"] for e in json.loads(run.stdout)["engines"]}
    assert engines["node2"] == "error" and engines["node1"] == "ok"

    # the dashboard on the recording, seeking to the moment the engine went down
    source = ReplaySource(path)
    app = OverlayApp(source, interval=None, persist_config=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        app.seek_to(down[0].t)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.frame.taken_at == recording.times[recording.index_at(down[0].t)]
        status = str(app.query_one("#status").render())
        assert "✖ node2" in status and "⏸" in status


def _measured_pings(path, network: str) -> int:
    """Pairs with a measured ping in the recording's last frame (0 while there is none yet)."""
    try:
        recording = load(path)
    except RecordingError:
        return 0
    probes = recording.frame(len(recording) - 1).probes
    return sum(1 for r in probes.results(network) if r.kind == "ping" and r.measured)


def test_record_with_probes_on_the_minimal_image_keeps_the_results_and_removes_the_agents(lab: Lab, tmp_path):
    """Off the lab's defaults: the minimal probe image (a shell, iputils ping and sleep). The recording holds
    the measured pairs and the coverage; SIGTERM ends it with exit 0 and no agent left."""
    from tests.integration.test_probes import probe_remains

    lab.docker("node1", "network", "create", "-d", "overlay", "rp-net")
    path = tmp_path / "probed.jsonl"
    recorder = subprocess.Popen([sys.executable, "-m", "overlaytui.cli", "record", str(path), "--lab", "--probe",
                                 "--probe-image", MINIMAL_PROBE_IMAGE, "--network", "rp-net", "--count", "20",
                                 "--interval", "0.01", "--probe-every", "2", "--duration", "240"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _measured_pings(path, "rp-net") == 6, 120, "6 measured pairs on rp-net in the recording")
    finally:
        recorder.send_signal(signal.SIGTERM)
        _out, err = recorder.communicate(timeout=90)
    try:
        assert recorder.returncode == 0, err
        recording = load(path)
        probes = recording.frame(len(recording) - 1).probes
        [ping] = [c for c in probes.coverage if c.network == "rp-net" and c.kind == "ping"]
        assert ping.expected == ping.measured == 6
        assert all(r.loss_pct == 0 for r in probes.results("rp-net") if r.kind == "ping")
        assert probes.rounds >= 1 and probes.totals
        wait_for(lambda: not probe_remains(lab), 60, "the probe agents removed")
    finally:
        wait_for(lambda: lab.docker("node1", "network", "rm", "rp-net", check=False).returncode == 0, 60,
                 "rp-net removed")


def test_a_redacted_lab_recording_holds_no_real_name(scaled: Lab, tmp_path):
    """`record --lab --redact nodes,services,networks` on the real engines: no hostname, service name or overlay
    name of the lab is left in any string of the file — the engine writes them inside other names too
    (`lb-frontend`, `frontend-endpoint`, task names, `tasks.NAME` aliases) — but the model's own words (states,
    roles, kinds) and the format's field names."""
    from tests.unit.test_recording import strings_of_recording

    live = json.loads(subprocess.run([sys.executable, "-m", "overlaytui.cli", "snapshot", "--lab", "--json"],
                                     capture_output=True, text=True, timeout=120, check=True).stdout)
    names = {n["hostname"] for n in live["nodes"]} | {s["name"] for s in live["services"]} | \
        {n["name"] for n in live["networks"] if n["name"] not in ("bridge", "host", "none", "ingress",
                                                                   "docker_gwbridge")}
    path = tmp_path / "redacted.jsonl.gz"
    done = subprocess.run([sys.executable, "-m", "overlaytui.cli", "record", str(path), "--lab", "--every", "1",
                           "--keyframe", "5", "--duration", "12", "--redact", "nodes,services,networks"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    text = strings_of_recording(gzip.decompress(path.read_bytes()).decode())
    raw = gzip.decompress(path.read_bytes()).decode()
    assert '"lb-' in raw  # the engine's load-balancer endpoints (lb-r-net) are there, redacted
    assert {"node1", "node2", "node3", "r-svc", "r-net"} <= names
    left = [name for name in names if re.search(rf"(?<![^\W_]){re.escape(name)}(?![^\W_])", text)]
    assert left == []
    assert len(load(path)) >= 5
