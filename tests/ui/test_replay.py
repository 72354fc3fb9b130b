"""The dashboard on a recording (--replay): the recording's time in the status bar, play/pause, step and seek
keys, the Timeline pane and selecting a moment; live: the timeline, a picked moment shown paused, R records."""

from __future__ import annotations

import pytest

from overlaytui.recording import load
from overlaytui.sources.demo import NODE_DOWN_AFTER
from overlaytui.sources.replay import ReplaySource
from tests.ui.helpers import Clock, feed, make_app
from tests.unit.test_recording import T0, record_demo

SIZE = (160, 45)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "node-down.jsonl.gz"
    return path, record_demo(path, "node-down", seconds=60)


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def replay_app(path, **kwargs):
    clock = Clock(500.0)
    source = ReplaySource(path, clock=clock, **kwargs)
    return make_app(source=source, clock=clock), source, clock


async def timeline_rows(app, pilot):
    """Pane 7's table and each row's cells as text."""
    await pilot.press("7")
    await settle(app, pilot)
    table = app.query_one("#timeline-table")
    return table, [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def status(app) -> str:
    return str(app.query_one("#status").render())


async def test_replay_shows_the_recording_and_steps_and_seeks(recorded):
    path, frames = recorded
    app, source, clock = replay_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.frame.snapshot == frames[0].snapshot
        assert "replay: node-down.jsonl.gz" in status(app) and "▶" in status(app) and "+0m00s/0m59s" in status(app)
        await pilot.press("space")  # pause
        await settle(app, pilot)
        assert not source.playing and "⏸" in status(app)
        await pilot.press("full_stop")
        await settle(app, pilot)
        assert app.frame.snapshot == frames[1].snapshot
        await pilot.press("right_square_bracket")  # +10 s
        await settle(app, pilot)
        assert app.frame.snapshot == frames[11].snapshot and "+0m11s" in status(app)
        await pilot.press("comma")
        await settle(app, pilot)
        assert app.frame.snapshot == frames[10].snapshot
        # the chart's history was rebuilt up to the frame: 11 points, the last at the frame's time
        points = app.history.series("service", "web")
        assert len(points) == 11 and points[-1].t == frames[10].taken_at
        await pilot.press("right_curly_bracket")  # +60 s: clamped to the end
        await settle(app, pilot)
        assert app.frame.snapshot == frames[-1].snapshot
        down = [n.hostname for n in app.frame.snapshot.nodes if n.state == "down"]
        assert down == ["node5"]


async def test_replay_plays_with_the_clock_at_its_speed(recorded):
    path, frames = recorded
    app, source, clock = replay_app(path, speed=4.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        clock.now += 5  # 20 s of recording
        app.refresh_once()
        await settle(app, pilot)
        assert app.frame.snapshot == frames[20].snapshot and "4×" in status(app)


async def test_the_timeline_pane_lists_the_recorded_moments_and_enter_seeks_there(recorded):
    path, frames = recorded
    app, source, clock = replay_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table, rows = await timeline_rows(app, pilot)
        texts = [row[3] for row in rows]
        assert "node5 ready → down" in texts
        assert len(texts) == len(load(path).moments)
        table.move_cursor(row=texts.index("node5 ready → down"))
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.frame.taken_at == T0 + NODE_DOWN_AFTER and not source.playing
        assert [n.hostname for n in app.frame.snapshot.nodes if n.state == "down"] == ["node5"]


async def test_replay_keys_only_in_a_replay_and_r_only_live(recorded):
    """In a replay the footer has the replay's keys and not what does not apply (P probes, r polls engines); R
    says why it does nothing there. Live, the other way round."""
    path, _frames = recorded
    app, _source, _clock = replay_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.check_action("replay_seek", (10,))
        assert not app.check_action("start_probes", ()) and not app.check_action("refresh", ())
        footer = " ".join(str(k.render()) for k in app.query("FooterKey"))
        assert "Play/pause" in footer and "Probe" not in footer and "Refresh" not in footer
        await pilot.press("R")
        await pilot.pause()
        assert app.recorder is None
        said = [n.message for n in app._notifications]
        assert any("a replay is a recording already" in m for m in said), said
    live = make_app()
    async with live.run_test(size=SIZE) as pilot:
        await settle(live, pilot)
        assert not live.check_action("replay_toggle", ()) and live.check_action("record", ())
        assert live.check_action("start_probes", ())
        footer = " ".join(str(k.render()) for k in live.query("FooterKey"))
        assert "Record" in footer and "Probe" in footer and "Play/pause" not in footer


async def test_live_timeline_a_picked_moment_is_shown_paused_and_esc_goes_live(tmp_path):
    clock = Clock()
    app = make_app("node-down", clock=clock, screenshot_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, clock, seconds=25, poll=True)  # node5 goes down at NODE_DOWN_AFTER (8 s)
        texts = [m.text for m in app.timeline]
        assert "node5 ready → down" in texts
        table, rows = await timeline_rows(app, pilot)
        table.move_cursor(row=[row[3] for row in rows].index("node5 ready → down"))
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.paused and app.shown_at == T0 + NODE_DOWN_AFTER and app.frame.taken_at == T0 + NODE_DOWN_AFTER
        assert "showing" in status(app)
        await feed(app, pilot, clock, seconds=2, poll=True)
        assert app.frame.taken_at == T0 + NODE_DOWN_AFTER  # it stays on the moment
        await pilot.press("escape")
        await settle(app, pilot)
        assert not app.paused and app.shown_at is None and app.frame.taken_at == clock.now


async def test_r_records_what_the_dashboard_shows(tmp_path):
    clock = Clock()
    app = make_app("node-down", clock=clock, screenshot_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("R")
        assert app.recorder is not None and "● REC" in status(app)
        await feed(app, pilot, clock, seconds=25, poll=True)
        await pilot.press("R")
        await settle(app, pilot)
        assert app.recorder is None
    [path] = tmp_path.glob("overlaytui-*.jsonl.gz")
    recording = load(path)
    assert len(recording) == 25 and recording.end == T0 + 25
    assert "node5 ready → down" in [m.text for m in recording.moments]


async def test_a_writer_that_cannot_keep_up_never_delays_frames(tmp_path, monkeypatch):
    """A stalled disk: frames go on; beyond RECORD_BEHIND waiting frames, those without a moment are left out
    of the recording, counted, and said when recording stops."""
    import threading

    from overlaytui.producer import RECORD_BEHIND
    from overlaytui.recording import Recorder

    gate = threading.Event()
    real_write = Recorder.write

    def stalled(self, frame):
        gate.wait(30)
        real_write(self, frame)

    monkeypatch.setattr(Recorder, "write", stalled)
    clock = Clock()
    app = make_app("healthy", clock=clock, screenshot_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("R")
        recorder = app.recorder
        await feed(app, pilot, clock, seconds=RECORD_BEHIND + 10)
        assert app.frame.taken_at == clock.now  # every frame shown
        assert recorder.skipped == 10
        gate.set()
        await pilot.press("R")
        await settle(app, pilot)
    recorder._writer.shutdown(wait=True)  # the writes in flight, then the close
    assert len(load(recorder.path)) == RECORD_BEHIND


async def test_a_recording_of_hostile_names_replays_them_as_text(tmp_path):
    """Node hostnames with markup and terminal escapes: recorded as they are, replayed equal, and shown in the
    Timeline pane and the status bar as visible text, never interpreted."""
    from overlaytui.frame import FrameBuilder
    from overlaytui.recording import RecordedFrame, Recorder
    from tests.ui.helpers import HOSTILE, HostileSource

    clock = Clock()
    source = HostileSource("node-down", seed=7, clock=clock)
    await source.start()
    builder = FrameBuilder(underlay=lambda addresses: {})
    path = tmp_path / "hostile.jsonl"
    frames = []
    with Recorder(path, source=source.name) as recorder:
        for _ in range(25):
            clock.now += 1
            await source.poll()
            frame = builder.build(source.snapshot(), source.probes())
            frames.append(frame)
            recorder.write(RecordedFrame(frame.snapshot, frame.probes, frame.underlay_mtus))
            for moment in frame.moments:
                recorder.moment(moment)
    recording = load(path)
    assert recording.frame(24).snapshot == frames[24].snapshot
    assert any(HOSTILE["node1"] == n.hostname for n in recording.frame(0).snapshot.nodes)
    app, _source, _clock = replay_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        _table, rows = await timeline_rows(app, pilot)
        shown = " ".join(" ".join(row) for row in rows)
        assert "[/]n1" in shown and "\\x1b]0;pwned" in shown  # node1's tasks moved: its name, made visible
        assert "\x1b" not in shown and "\x07" not in shown
        assert "\x1b" not in app.export_screenshot()
