"""README's command lines as written (issue 22): every `overlaytui ...` line of its ```sh blocks parses with the real
parser; those that need no cluster (--demo, --help, --version, --replay of a recording made here) run and exit as
the README says ("(exit N)" in the line's comment, else 0); the dashboard on a recording is parsed and its --at
placed in that recording."""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from overlaytui.cli import build_parser
from overlaytui.commands.common import parse_at
from overlaytui.frame import FrameBuilder
from overlaytui.recording import RecordedFrame, Recorder, load
from overlaytui.sources.demo import DemoSource

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RECORDING = "incident.jsonl.gz"  # the README's recording: made here, 14:02:30 to 14:08:30 today


def readme_commands() -> list[tuple[str, list[str], int]]:
    """(the line, the words after `overlaytui`, the exit its comment states or 0) for each command line."""
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.S | re.M):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["sudo"]:
                words = words[1:]
            if words and words[0].rsplit("/", 1)[-1] == "overlaytui":
                stated = re.search(r"#.*\(exit (\d)\)", line)
                found.append((line, words[1:], int(stated[1]) if stated else 0))
    return found


COMMANDS = readme_commands()


def needs_no_cluster(words: list[str]) -> bool:
    return any(w in ("--help", "--version") or w.startswith(("--demo", "--replay")) for w in words)


def test_the_readme_has_command_lines_of_every_kind():
    kinds = {(words[0] if words and not words[0].startswith("-") else "dashboard") for _, words, _ in COMMANDS}
    assert {"dashboard", "snapshot", "doctor", "probe", "exporter", "record", "lab"} <= kinds
    assert sum(needs_no_cluster(words) for _, words, _ in COMMANDS) >= 5


@pytest.mark.parametrize("line, words", [(line, words) for line, words, _ in COMMANDS],
                         ids=[" ".join(words) for _, words, _ in COMMANDS])
def test_every_readme_command_line_parses(line, words):
    try:
        args = build_parser().parse_args(words)
    except SystemExit as exc:
        assert exc.code == 0 and ("--help" in words or "--version" in words), line
        return
    assert getattr(args, "handler", None) is not None or args.command is None, line


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """Six minutes of the healthy demo, a frame every 5 s from 14:02:30 today (the README's `--at 14:03:10`)."""
    path = tmp_path_factory.mktemp("readme") / RECORDING
    start = datetime.now().replace(hour=14, minute=2, second=30, microsecond=0).timestamp()
    now = [start]
    source = DemoSource("healthy", seed=7, clock=lambda: now[0])
    asyncio.run(source.start())
    builder = FrameBuilder(underlay=lambda addresses: {})
    with Recorder(path, source=source.name, keyframe_every=60) as recorder:
        for _ in range(73):
            asyncio.run(source.poll())
            frame = builder.build(source.snapshot(), source.probes())
            recorder.write(RecordedFrame(frame.snapshot, frame.probes, frame.underlay_mtus))
            now[0] += 5
    return path


def command_of(words: list[str]) -> str:
    try:
        return build_parser().parse_args(words).command or "dashboard"
    except SystemExit:  # --help, --version
        return "help"


# the dashboard needs a terminal; the exporter, serve and --watch run until stopped: those are parsed only
RUNNABLE = [(line, words, code) for line, words, code in COMMANDS if needs_no_cluster(words)
            and command_of(words) not in ("dashboard", "exporter", "serve", "record") and "--watch" not in words]


@pytest.mark.parametrize("line, words, code", RUNNABLE, ids=[" ".join(words) for _, words, _ in RUNNABLE])
def test_readme_commands_that_need_no_cluster_run_as_written(line, words, code, recording):
    argv = [str(recording) if w == RECORDING else w for w in words]
    run = subprocess.run([sys.executable, "-m", "overlaytui.cli", *argv], capture_output=True, text=True,
                         timeout=120, cwd=recording.parent)
    assert run.returncode == code, (line, run.stderr[-1500:])
    assert "usage:" not in run.stderr and "Traceback" not in run.stderr and run.stdout.strip(), line
    if "--at" in words and words[0] == "snapshot":  # the snapshot at the time of day the line names
        import json

        taken = datetime.fromtimestamp(json.loads(run.stdout)["taken_at"])
        wanted = datetime.combine(taken.date(), datetime.strptime(words[words.index("--at") + 1], "%H:%M:%S").time())
        assert abs((taken - wanted).total_seconds()) <= 5
    if "--version" in words:
        assert run.stdout.startswith("overlaytui ")


def test_the_dashboard_on_the_readme_recording_starts_where_the_line_says(recording):
    """The dashboard itself needs a terminal: its replay line is parsed and its --at placed in the recording."""
    lines = [words for _, words, _ in COMMANDS if words[:1] == ["--replay"]]
    assert lines
    loaded = load(recording)
    for words in lines:
        args = build_parser().parse_args(words)
        assert args.command is None and args.replay == RECORDING
        assert parse_at(args.at, loaded.start, loaded.end) == pytest.approx(loaded.start + 300)  # --at 5m


def test_every_replay_line_of_the_readme_is_run_or_placed():
    replays = [line for line, words, _ in COMMANDS if "--replay" in words]
    run_or_placed = [line for line, words, _ in RUNNABLE if "--replay" in words] + \
        [line for line, words, _ in COMMANDS if words[:1] == ["--replay"]]
    assert sorted(replays) == sorted(run_or_placed) and len(replays) >= 3
