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


def test_snapshot_exits_although_an_engine_trickles_one_byte_at_a_time(tmp_path):
    """docker-py's timeout is per read: an engine that sends a byte every half second holds a worker thread for
    as long as it likes. The command still ends within its bounds, with exit 2 and one line."""
    path = tmp_path / "trickle.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    stop = threading.Event()

    def trickle(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            while not stop.is_set():
                conn.sendall(b"1\r\n \r\n")
                time.sleep(0.5)
        except OSError:
            pass
        finally:
            conn.close()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed at the end of the test
                return
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "overlaytui", "snapshot", "--host", f"unix://{path}",
                               "--timeout", "1"], capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        server.close()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert elapsed < 20, elapsed
