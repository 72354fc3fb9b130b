"""An engine that accepts connections and never answers: a bounded wait and a clear line, never a hang."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time


def test_snapshot_gives_up_on_a_silent_engine_within_its_timeout(tmp_path):
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_say_nothing() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)  # keep it open, never reply
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_say_nothing, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "overlaytui", "snapshot", "--host", f"unix://{path}",
                               "--timeout", "1"], capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()
    assert proc.returncode == 2
    assert "no answer within the timeout" in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert elapsed < 15, elapsed  # a few timeouts of 1 s, not forever
