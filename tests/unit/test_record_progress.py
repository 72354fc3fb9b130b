"""`record` on a terminal: one progress line on stderr (frames, size, elapsed), rewritten in place and erased
before the closing report; nothing of it when stderr is captured."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from overlaytui.commands.record import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_is_rewritten_in_place_once_a_second(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"x" * 3000)
    stream = Terminal()
    progress = Progress(stream)
    progress.show(1, path, 0.2)
    progress.show(2, path, 0.9)  # within the second: not shown
    progress.show(3, path, 61.5)
    progress.clear()
    assert stream.getvalue() == (f"\r\x1b[Krecording {path}: 1 frame, 2.9 KiB, 0m00s (Ctrl-C stops)"
                                 f"\r\x1b[Krecording {path}: 3 frames, 2.9 KiB, 1m01s (Ctrl-C stops)\r\x1b[K")


def test_a_name_with_escapes_is_shown_escaped(tmp_path):
    path = tmp_path / "a\x1b[2Jb.jsonl"
    stream = Terminal()
    Progress(stream).show(1, path, 5.0)
    assert "\x1b[2J" not in stream.getvalue() and "0 B" in stream.getvalue()  # not written yet: 0 bytes


def test_nothing_when_stderr_is_not_a_terminal(tmp_path):
    stream = io.StringIO()
    progress = Progress(stream)
    progress.show(5, tmp_path / "r.jsonl", 3.0)
    progress.clear()
    assert stream.getvalue() == "" and not progress.on


def test_record_on_a_terminal_shows_progress_then_its_report(tmp_path):
    path = tmp_path / "demo.jsonl"
    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "overlaytui.cli", "record", str(path), "--demo", "loss",
                           "--duration", "2.5", "--every", "0.5"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=follower) as run:
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        assert run.wait(timeout=60) == 0
    os.close(leader)
    text = seen.decode()
    assert "\r\x1b[Krecording " in text and " frames, " in text and "(Ctrl-C stops)" in text
    assert text.rstrip().splitlines()[-1].lstrip("\r\x1b[K").startswith("overlaytui record: ")
