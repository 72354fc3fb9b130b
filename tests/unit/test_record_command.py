"""`overlaytui record` end to end on the demo: a writer that cannot write (the file-size limit, as a full disk)
ends the command with one line and exit 2, and what was written replays."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from overlaytui.recording import load


def test_a_full_disk_ends_record_with_one_line_and_exit_2(tmp_path):
    path = tmp_path / "full.jsonl"

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    done = subprocess.run([sys.executable, "-m", "overlaytui.cli", "record", str(path), "--demo", "loss",
                           "--every", "0.2", "--keyframe", "1", "--duration", "60"],
                          capture_output=True, text=True, timeout=120, preexec_fn=small_files,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "recording stopped" in lines[0] and "frames" in lines[0], lines
    recording = load(path)
    assert len(recording) >= 1 and recording.frame(len(recording) - 1).snapshot.nodes
