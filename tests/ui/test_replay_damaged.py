"""Issue 23: the dashboard on a recording with a damaged record met while playing: it shows the damage (an
engine in error, its line in the Findings pane) and stays up; the next keyframe plays on."""

from __future__ import annotations

import json

import pytest

from overlaytui.sources.replay import ReplaySource
from tests.ui.helpers import Clock, make_app
from tests.ui.test_replay import SIZE, settle, status
from tests.unit.test_recording import record_demo


@pytest.fixture
def damaged(tmp_path):
    """A recording whose 13th delta (between the first two keyframes) has the wrong shape; its line number."""
    path = tmp_path / "damaged.jsonl"
    record_demo(path, "node-down", seconds=50, keyframe=30)
    lines = path.read_text().splitlines()
    deltas = [i for i, line in enumerate(lines) if json.loads(line)["type"] == "delta"]
    bad = deltas[12]
    record = json.loads(lines[bad])
    record["del"] = {"nodes": 5}
    lines[bad] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    return path, bad


async def test_a_damaged_record_is_shown_and_the_dashboard_plays_on(damaged):
    path, bad = damaged
    clock = Clock(500.0)
    source = ReplaySource(path, clock=clock)
    app = make_app(source=source, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("space")  # pause, then seek by hand
        await pilot.press("right_square_bracket", "right_square_bracket")  # +20 s: past the damaged record
        await settle(app, pilot)
        engines = [e for e in app.frame.snapshot.engines if e.hostname == "recording damaged"]
        assert engines and f"record {bad + 1}: " in engines[0].message and "not a list of keys" in engines[0].message
        assert "recording damaged" in status(app)
        assert any(f.check == "engine.unreachable" and "not a list of keys" in f.evidence
                   for f in app.frame.findings)
        await pilot.press("right_square_bracket", "right_square_bracket")  # +20 s: past the next keyframe
        await settle(app, pilot)
        assert not [e for e in app.frame.snapshot.engines if e.hostname == "recording damaged"]
        assert app.return_code is None and app.is_running
