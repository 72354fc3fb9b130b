"""snapshot (which creates readers on the nodes with --deep) ends on SIGTERM as on Ctrl-C: its producer closed,
exit 130 — SIGTERM's default action killed it outright (exit -15), nothing closed."""

from __future__ import annotations

import signal
import subprocess
import sys


def test_snapshot_watch_ends_on_sigterm_as_on_ctrl_c():
    proc = subprocess.Popen([sys.executable, "-m", "overlaytui", "snapshot", "--demo", "--watch", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline()  # the first snapshot is out: the command runs (a deadline: the read's own)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
