"""The typed core passes mypy: the sources implement the ClusterSource protocol (a missing or mistyped method is
an error here, not an AttributeError in front of a user), and the app and the frame producer use it as typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_passes_on_the_sources_the_frame_and_the_app():
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_catches_a_source_that_breaks_the_protocol(tmp_path):
    """The check has teeth: a source whose snapshot() is missing is refused."""
    bad = tmp_path / "bad_source.py"
    bad.write_text(
        "from overlaytui.sources.base import ClusterSource\n"
        "class Half:\n"
        "    name = 'half'\n"
        "    endpoints = ()\n"
        "    async def start(self) -> None: ...\n"
        "    async def poll(self) -> None: ...\n"
        "    async def wait_for_change(self, timeout: float) -> bool: return False\n"
        "    def probes(self) -> None: return None\n"
        "    async def close(self) -> None: ...\n"
        "def use(s: Half) -> ClusterSource:\n"
        "    return s\n")
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
                          "--ignore-missing-imports", str(bad)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 1 and "snapshot" in run.stdout, run.stdout
