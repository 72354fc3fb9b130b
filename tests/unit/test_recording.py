"""Recordings: a demo run recorded and read back equals the demo, frame by frame; replay is deterministic in any
order of access; redaction leaves no name behind; damaged, truncated, foreign and newer files are said so; the
commands read a recording as they read a cluster."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from overlaytui import model
from overlaytui.commands.common import parse_at
from overlaytui.frame import FrameBuilder
from overlaytui.model import NO_PROBES
from overlaytui.recording import (
    BUILTIN_NETWORKS,
    FORMAT,
    HEADER_TYPES,
    SECTIONS,
    VALUE_TYPES,
    WORDS,
    RecordedFrame,
    Recorder,
    RecordingError,
    decode,
    encode,
    load,
)
from overlaytui.sources.demo import NODE_DOWN_AFTER, DemoSource
from overlaytui.sources.replay import ReplaySource

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record_demo(path: Path, scenario: str = "node-down", seconds: int = 90, keyframe: float = 30, scale=None,
                **kwargs):
    """Record `seconds` one-second frames of a demo scenario; returns the frames as built."""
    clock = Clock()
    source = DemoSource(scenario, seed=7, clock=clock, scale=scale)
    asyncio.run(source.start())
    builder = FrameBuilder(underlay=lambda addresses: {"10.0.0.1": 1500})
    frames = []
    with Recorder(path, source=source.name, keyframe_every=keyframe, **kwargs) as recorder:
        for _ in range(seconds):
            clock.now += 1
            asyncio.run(source.poll())
            frame = builder.build(source.snapshot(), source.probes())
            frames.append(frame)
            recorder.write(RecordedFrame(frame.snapshot, frame.probes, frame.underlay_mtus))
            for moment in frame.moments:
                recorder.moment(moment)
    return frames


def assert_same(recorded, frame) -> None:
    assert recorded.snapshot == frame.snapshot
    assert dict(recorded.probes.recent) == dict(frame.probes.recent)
    assert {k: dict(v) for k, v in recorded.probes.windows.items()} == \
        {k: dict(v) for k, v in frame.probes.windows.items()}
    assert recorded.probes.coverage == frame.probes.coverage and recorded.probes.rounds == frame.probes.rounds
    assert dict(recorded.underlay_mtus) == dict(frame.underlay_mtus)


@pytest.mark.parametrize("scenario", ["node-down", "rolling-update", "mtu"])
def test_a_demo_recording_replays_equal_to_the_demo(tmp_path, scenario):
    path = tmp_path / "demo.jsonl.gz"
    frames = record_demo(path, scenario)
    recording = load(path)
    assert len(recording) == len(frames) and recording.header["format"] == FORMAT
    assert recording.header["cluster_id"] == frames[0].snapshot.swarm_id
    for i, frame in enumerate(frames):
        assert_same(recording.frame(i), frame)
    # findings derived again from the recorded frame are the ones the demo had
    rebuilt = FrameBuilder(underlay=lambda a: recording.frame(40).underlay_mtus).build(
        recording.frame(40).snapshot, recording.frame(40).probes)
    assert rebuilt.findings == frames[40].findings


def test_the_timeline_is_recorded_with_the_frames(tmp_path):
    path = tmp_path / "down.jsonl"
    frames = record_demo(path, "node-down")
    moments = load(path).moments
    assert moments == [m for f in frames for m in f.moments]
    texts = [m.text for m in moments]
    assert "node5 ready → down" in texts and any(t.startswith("engine node5 down") for t in texts)
    assert all(m.t == T0 + NODE_DOWN_AFTER for m in moments if "node5" in m.text)


def test_replay_is_deterministic_in_any_order_of_access(tmp_path):
    path = tmp_path / "r.jsonl.gz"
    frames = record_demo(path, "rolling-update", seconds=75, keyframe=20)
    first, second = load(path), load(path)
    order = [74, 3, 40, 41, 39, 0, 60, 21, 19, 20, 74]
    for i in order:
        assert first.frame(i) == second.frame(i) == second.frame(i)
        assert_same(first.frame(i), frames[i])
    # playing forward keeps unchanged items as the same objects (the panes skip them)
    a, b = first.frame(30), first.frame(31)
    assert a.snapshot.nodes is b.snapshot.nodes and a.snapshot.services is b.snapshot.services


def test_redaction_leaves_no_name_behind_and_keeps_labels_and_ids(tmp_path):
    path = tmp_path / "red.jsonl"
    frames = record_demo(path, "node-down", seconds=25, redact=["nodes", "services", "networks"], salt="s")
    text = path.read_text()
    for name in ("node1", "node5", "frontend", "backend", "payments-secure", '"web', "api."):
        assert name not in text, name
    snap = load(path).frame(24).snapshot
    original = frames[24].snapshot
    assert [n.id for n in snap.nodes] == [n.id for n in original.nodes]  # ids stay
    assert all(n.hostname.startswith("node-") for n in snap.nodes)
    assert len({n.hostname for n in snap.nodes}) == len(snap.nodes)  # stable, distinct pseudonyms
    assert [n.labels for n in snap.nodes] == [n.labels for n in original.nodes]  # labels kept
    assert {s.name.split("-")[0] for s in snap.services} == {"svc"}
    # the same name has the same pseudonym everywhere: tasks name their service's pseudonym
    assert {t.service_name for t in snap.tasks} <= {s.name for s in snap.services}
    assert load(path).header["redacted"] == ["nodes", "services", "networks"]


def test_a_recording_cut_short_reads_up_to_the_cut(tmp_path):
    path = tmp_path / "cut.jsonl"
    record_demo(path, seconds=30)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])  # a crash mid-line
    assert len(load(path)) == 29
    gz = tmp_path / "cut.jsonl.gz"
    record_demo(gz, seconds=30)
    gz.write_bytes(gz.read_bytes()[:-40])  # a gzip stream without its end
    assert 0 < len(load(gz)) <= 30


@pytest.mark.parametrize(("content", "says"), [
    (b"", "no header"),
    (b'{"type": "key", "t": 1}\n', "no header"),
    (b'{"type": "header", "format": 99}\n', "format 99"),
    (b'{"type": "header", "format": 1}\n', "holds no frame"),
    (b'{"type": "header", "format": 1}\nnot json\n{"type": "key"}\n', "record 2: not JSON"),
    (b"\x1f\x8bnot really gzip", "not a readable recording"),
])
def test_what_is_not_a_recording_is_said_so(tmp_path, content, says):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=says):
        load(path)


def test_a_damaged_record_is_said_so_when_its_frame_is_read(tmp_path):
    path = tmp_path / "d.jsonl"
    record_demo(path, seconds=5)
    lines = path.read_text().splitlines()
    record = json.loads(lines[3])
    record["set"]["nodes"] = {"x": {"id": "x", "hostname": 5}}
    lines[3] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    recording = load(path)
    assert recording.frame(0)
    with pytest.raises(RecordingError, match="damaged"):
        recording.frame(4)


def test_never_over_an_existing_file(tmp_path):
    path = tmp_path / "exists.jsonl"
    path.write_text("mine")
    with pytest.raises(RecordingError, match="exists"):
        Recorder(path, source="x")
    assert path.read_text() == "mine"


def test_zstd_recordings_round_trip(tmp_path):
    import zstandard  # noqa: F401 - optional for users (overlaytui[zstd]), in the test extra: never skipped

    path = tmp_path / "z.jsonl.zst"
    frames = record_demo(path, seconds=10)
    assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert_same(load(path).frame(9), frames[9])


def test_gzip_is_much_smaller(tmp_path):
    plain, packed = tmp_path / "p.jsonl", tmp_path / "p.jsonl.gz"
    record_demo(plain, seconds=30)
    record_demo(packed, seconds=30)
    assert packed.stat().st_size * 4 < plain.stat().st_size
    assert gzip.decompress(packed.read_bytes()).count(b"\n") == plain.read_bytes().count(b"\n")


def test_the_codec_round_trips_a_large_cluster():
    clock = Clock()
    source = DemoSource("bad-node", seed=3, clock=clock, scale=(40, 60, 800))
    asyncio.run(source.start())
    snap = source.snapshot()
    from overlaytui.model import ClusterSnapshot

    assert decode(ClusterSnapshot, json.loads(json.dumps(encode(snap)))) == snap


def test_parse_at():
    start, end = T0, T0 + 600
    assert parse_at("90", start, end) == T0 + 90
    assert parse_at("1m30s", start, end) == T0 + 90
    assert parse_at("-30s", start, end) == T0 + 570
    assert parse_at("+0", start, end) == T0
    from datetime import datetime

    clock = datetime.fromtimestamp(T0 + 125).strftime("%H:%M:%S")
    assert parse_at(clock, start, end) == T0 + 125
    assert parse_at(datetime.fromtimestamp(T0 + 5).isoformat(), start, end) == T0 + 5
    with pytest.raises(ValueError, match="outside the recording"):
        parse_at("2h", start, end)
    with pytest.raises(ValueError, match="not an offset"):
        parse_at("yesterday", start, end)


def test_the_replay_source_plays_pauses_steps_and_seeks(tmp_path):
    path = tmp_path / "play.jsonl.gz"
    frames = record_demo(path, "node-down", seconds=60)
    clock = Clock(100.0)
    source = ReplaySource(path, speed=2.0, clock=clock)
    asyncio.run(source.start())
    assert source.endpoints == () and source.name == "replay: play.jsonl.gz"
    assert source.snapshot() == frames[0].snapshot
    clock.now += 10  # 20 s of recording at 2x
    assert source.position == T0 + 21 and source.snapshot() == frames[20].snapshot
    source.pause()
    clock.now += 100
    assert source.snapshot() == frames[20].snapshot
    source.step(1)
    assert source.snapshot() == frames[21].snapshot
    source.step(-5)
    assert source.snapshot() == frames[16].snapshot
    source.seek(T0 + 50)
    assert source.snapshot() == frames[49].snapshot and not source.playing
    source.play()
    clock.now += 1000
    assert source.position == source.recording.end and not source.playing  # stops at the end
    source.play()  # from the start again
    assert source.snapshot() == frames[0].snapshot
    at = ReplaySource(path, at=T0 + 30, clock=clock)
    asyncio.run(at.start())
    assert at.snapshot() == frames[29].snapshot


def test_wait_for_change_is_the_next_recorded_frame(tmp_path):
    path = tmp_path / "w.jsonl"
    record_demo(path, seconds=5)
    source = ReplaySource(path, speed=100.0)

    async def run() -> tuple[bool, bool]:
        await source.start()
        playing = await source.wait_for_change(5.0)  # the next frame is 10 ms away at 100x
        source.pause()
        return playing, await source.wait_for_change(0.01)

    assert asyncio.run(run()) == (True, False)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overlaytui.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_record_a_demo_then_snapshot_and_doctor_read_it_at_a_time(tmp_path):
    path = tmp_path / "cli.jsonl.gz"
    run = _cli("record", str(path), "--demo", "loss", "--duration", "3", "--every", "0.5")
    assert run.returncode == 0, run.stderr
    assert "frames" in run.stderr and path.exists()
    recording = load(path)
    assert recording.header["source"] == "demo: loss" and len(recording) >= 5
    snap = _cli("snapshot", "--json", "--replay", str(path), "--at", "1s")
    assert snap.returncode == 0, snap.stderr
    data = json.loads(snap.stdout)
    at = recording.index_at(recording.start + 1)
    assert data["taken_at"] == recording.times[at] and len(data["nodes"]) == 5
    doctor = _cli("doctor", "--replay", str(path), "--json")
    assert doctor.returncode == 2, doctor.stderr  # node4 loses 2 %: loss.bad is an error
    found = json.loads(doctor.stdout)
    assert any(f["check"] == "loss.node" or f["check"] == "loss.bad" for f in found["findings"])
    assert found["not_measured"] is None
    bad = _cli("snapshot", "--replay", str(path), "--at", "3h")
    assert bad.returncode == 2 and "outside the recording" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("doctor", "--replay", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_redaction_takes_whole_names_and_never_a_state_or_a_kind():
    from dataclasses import replace

    from overlaytui.recording import Redactor

    clock = Clock()
    source = DemoSource("healthy", seed=7, clock=clock)
    asyncio.run(source.start())
    snap = source.snapshot()
    snap = replace(snap, services=(*snap.services, replace(snap.services[0], name="running", id="x")))
    redact = Redactor(["services"], salt="s")
    assert redact.learn(snap) and not redact.learn(snap)  # the second time nothing is new
    assert redact("api").startswith("svc-") and redact("api.1.abc").startswith("svc-")
    assert redact("unix:///x/api/sock") != "unix:///x/api/sock"
    assert redact("rapid") == "rapid" and redact("apis") == "apis"  # never inside another word
    for inside in ("api-gateway", "lb-api", "api-endpoint", "tasks.api", "stack_api"):  # but next to - . _
        assert "api" not in redact(inside).replace("svc-", ""), inside
    # a state, role or kind is a word of the model, never a name: with a service named `running` and one named
    # `worker`, the tasks' states and the nodes' roles stay
    from overlaytui.recording import encode

    task = next(t for t in snap.tasks if t.state == "running")
    node = next(n for n in snap.nodes if n.role == "worker")
    assert encode(task, redact)["state"] == "running" and encode(node, redact)["role"] == "worker"
    assert encode(task, redact)["service_name"].startswith("svc-")


def strings_of_recording(content: str) -> str:
    """Every string of a recording's records, one a line, but the format's field names and the model's own words
    (states, roles, kinds: never redacted): where a redacted name must not occur."""
    strings: list[str] = []
    structure = {f.name for cls in vars(model).values() if dataclasses.is_dataclass(cls)
                 for f in dataclasses.fields(cls)} | set(SECTIONS) | set(VALUE_TYPES) | set(HEADER_TYPES) | {
        "type", "t", "frame", "set", "del", "order", "values", "format"}

    def walk(value, field=""):
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in structure:
                    strings.append(key)
                walk(item, key)
        elif isinstance(value, list):
            for item in value:
                walk(item, field)
        elif isinstance(value, str) and field not in WORDS:
            strings.append(value)
    for line in content.splitlines():
        walk(json.loads(line))
    return "\n".join(strings)


def test_redaction_of_a_real_engine_payload_leaves_no_name_inside_other_names(tmp_path):
    """The lab's recorded Engine API answers (tests/fixtures/lab) joined into a snapshot: the engine names the
    overlays inside its load-balancer endpoints (`lb-frontend`, `frontend-endpoint`), the tasks inside
    `tasks.NAME`-style names and aliases; `--redact nodes,services,networks` replaces every one."""
    from tests.unit.test_assemble import assemble, engine_polls, parse_identity, swarm_poll_from_payloads
    from tests.unit.test_assemble import load as payload

    swarm = swarm_poll_from_payloads(parse_identity(payload("node1-info.json")), payload("nodes.json"),
                                     payload("services.json"), payload("tasks.json"), payload("networks.json"))
    polls, engines, samples = engine_polls()
    snap = assemble(taken_at=T0, engines=engines, swarm=swarm, polls=polls, samples=samples)
    raw = json.dumps(encode(snap))
    assert "lb-frontend" in raw and "frontend-endpoint" in raw  # the payload holds them
    path = tmp_path / "lab.jsonl"
    with Recorder(path, source="unix:///lab/node1.sock", redact=["nodes", "services", "networks"]) as recorder:
        recorder.write(RecordedFrame(snap, NO_PROBES))
    text = strings_of_recording(path.read_text())
    names = {n.hostname for n in snap.nodes} | {s.name for s in snap.services} | \
        {n.name for n in snap.networks if n.name not in BUILTIN_NETWORKS}
    assert len(names) >= 8
    for name in names:
        assert re.search(rf"(?<![^\W_]){re.escape(name)}(?![^\W_])", text) is None, name
    assert load(path).frame(0).snapshot.nodes  # and it replays


def test_a_full_disk_stops_the_writer_in_one_line_and_what_was_written_replays(tmp_path):
    """The file-size limit (ulimit -f: EFBIG, as a full disk's ENOSPC) reached while recording: one
    RecordingError line, later writes refused the same way, the file closed — and the frames written replay."""
    path = tmp_path / "full.jsonl.gz"
    code = ("import resource, sys\n"
            "from tests.unit.test_recording import record_demo\n"
            "from overlaytui.recording import RecordingError\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))\n"
            "try:\n"
            "    record_demo(__import__('pathlib').Path(sys.argv[1]), seconds=400, keyframe=5)\n"
            "except RecordingError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    line = done.stdout.strip()
    assert line.count("\n") == 0 and "the largest size allowed" in line and "frames written replay" in line
    frames = int(line.split("; the ")[1].split()[0])
    recording = load(path)
    assert 0 < len(recording) <= frames and recording.frame(len(recording) - 1).snapshot.nodes


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_a_name_with_a_lone_surrogate_is_recorded_and_reads_back_the_same(tmp_path, suffix):
    from dataclasses import replace

    clock = Clock()
    source = DemoSource("healthy", seed=7, clock=clock)
    asyncio.run(source.start())
    snap = source.snapshot()
    odd = "node\udc9b\x1b[2J"
    snap = replace(snap, nodes=(replace(snap.nodes[0], hostname=odd), *snap.nodes[1:]))
    path = tmp_path / f"odd{suffix}"
    with Recorder(path, source="demo") as recorder:
        recorder.write(RecordedFrame(snap, NO_PROBES))
    assert load(path).frame(0).snapshot.nodes[0].hostname == odd


def test_gzip_seeks_start_from_the_nearest_checkpoint(tmp_path, monkeypatch):
    from overlaytui.recording import _Stream

    monkeypatch.setattr(_Stream, "CHECKPOINT_EVERY", 64 << 10)
    path = tmp_path / "r.jsonl.gz"
    frames = record_demo(path, "rolling-update", seconds=75, keyframe=20)
    recording = load(path)
    stream = recording._stream
    assert len(stream._checkpoints) >= 3  # made while indexing (one per read of 1 MiB at most)
    restored = []
    real = stream._stream.restore
    monkeypatch.setattr(stream._stream, "restore", lambda state: (restored.append(state), real(state)))
    for i in [74, 3, 40, 41, 39, 0, 60, 21, 19, 20, 74, 55]:
        assert_same(recording.frame(i), frames[i])
    assert restored and any(state[0] > 0 for state in restored)  # not from the file's start
