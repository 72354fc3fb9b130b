"""An engine that accepts connections and never answers: a bounded wait and a clear line, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest


class SilentEngine:
    """A unix socket that accepts connections and never answers."""

    def __init__(self, path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(16)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn = self.server.accept()[0]
            except TimeoutError:
                continue
            except OSError:  # closed at the end of the test
                return
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        self.held.append(conn)  # keep it open, never reply

    def close(self) -> None:
        self.stop.set()
        for conn in self.held:
            conn.close()
        self.server.close()


@pytest.mark.parametrize("kind", ["silent", "trickle"])
def test_snapshot_ends_within_its_bounds_with_one_line(tmp_path, kind):
    """An engine that never answers, and one that sends a byte every half second (docker-py's timeout is per
    read: it holds a worker thread for as long as it likes): the command ends, exit 2, one line."""
    engine = (SilentEngine if kind == "silent" else TrickleEngine)(tmp_path / f"{kind}.sock")
    try:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "overlaytui", "snapshot", "--host", f"unix://{engine.path}",
                               "--timeout", "1"], capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - start
    finally:
        engine.close()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    if kind == "silent":
        assert "no answer within the timeout" in proc.stderr
    assert elapsed < 15, elapsed  # a few timeouts of 1 s, not forever


class TrickleEngine(SilentEngine):
    """A unix socket that answers every request with headers, then one body byte every half second, forever."""

    def _handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            while not self.stop.is_set():
                conn.sendall(b"1\r\n \r\n")
                time.sleep(0.5)
        except OSError:
            pass
        finally:
            conn.close()


@pytest.mark.parametrize("how", ["q", "SIGTERM"])
def test_the_dashboard_quits_within_seconds_although_an_engine_trickles(tmp_path, how):
    """In a real terminal (a pty): q or SIGTERM ends the process within 5 s, whatever the engine does, with a
    non-zero exit (nothing could be collected)."""
    engine = TrickleEngine(tmp_path / "trickle.sock")
    primary, secondary = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "OVERLAYTUI_CONFIG": str(tmp_path / "config.toml")}
    proc = subprocess.Popen([sys.executable, "-m", "overlaytui", "--host", f"unix://{engine.path}", "--timeout", "1"],
                            stdin=secondary, stdout=secondary, stderr=secondary, env=env, start_new_session=True)
    os.close(secondary)
    output = bytearray()

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([primary], [], [], 0.1)
            if ready:
                try:
                    output.extend(os.read(primary, 65536))
                except OSError:
                    return
    try:
        drain(4)  # the dashboard is up, its first poll stuck on the trickling engine
        assert proc.poll() is None, bytes(output)[-500:]
        started = time.monotonic()
        if how == "q":
            os.write(primary, b"q")
        else:
            proc.send_signal(signal.SIGTERM)
        while proc.poll() is None and time.monotonic() - started < 15:
            drain(0.2)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        os.close(primary)
        engine.close()
    assert took < 5, took
    assert proc.returncode not in (0, None) and b"Traceback" not in output, bytes(output)[-800:]


async def test_follow_up_polls_stay_one_per_step_while_the_manager_never_answers(tmp_path, monkeypatch):
    """Tasks were settling when the manager stalled: its poll stays busy, so no swarm view comes back to reset the
    follow-up clock. The consumer must still be woken once per step, not spin on polls that start nothing."""
    from overlaytui.sources import swarm
    from overlaytui.sources.endpoints import EndpointSpec

    monkeypatch.setattr(swarm, "SETTLE_STEP", 0.25)
    engine = SilentEngine(tmp_path / "docker.sock")
    source = swarm.DockerSwarmSource([EndpointSpec(f"unix://{engine.path}", "--host")], call_timeout=30, stats=False,
                                     events=False)
    try:
        source._settling, source._settle_until = True, time.monotonic() + 60  # as after a swarm poll mid-scale
        wakes, end = 0, time.monotonic() + 1.0
        while time.monotonic() < end:
            if await source.wait_for_change(end - time.monotonic()):
                wakes += 1
                with contextlib.suppress(TimeoutError):  # the first starts the poll that never ends; the rest
                    await asyncio.wait_for(source.poll(), 0.2)  # find it busy and start nothing
        assert 3 <= wakes <= 5, wakes  # one per 0.25 s step
    finally:
        engine.stop.set()
        engine.server.close()
        await source.close()


def test_an_engine_that_drops_the_connection_or_is_gone_gets_one_readable_line(tmp_path):
    """An engine dying under a pooled connection resets it; a socket nobody listens on refuses; no socket at all
    is said so. Each is one line, never docker-py's `('Connection aborted.', ConnectionResetError(104, ...))`."""
    import docker

    from overlaytui.sources.errors import ENGINE_ERRORS, describe_error

    def error_of(path) -> str:
        try:
            docker.APIClient(base_url=f"unix://{path}", version="1.41", timeout=3).ping()
        except ENGINE_ERRORS as exc:
            return describe_error(exc)
        return "answered"

    dropping = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dropping.bind(str(tmp_path / "drops.sock"))
    dropping.listen(4)

    def drop() -> None:
        conn = dropping.accept()[0]
        conn.recv(64)
        conn.close()

    threading.Thread(target=drop, daemon=True).start()
    try:
        assert error_of(tmp_path / "drops.sock") == "the engine dropped the connection (stopping or restarting?)"
    finally:
        dropping.close()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "stale.sock"))  # the file stays, nobody listens: a stopped engine's socket
    stale.close()
    assert error_of(tmp_path / "stale.sock") == "connection refused (engine not running?)"
    assert error_of(tmp_path / "none.sock") == "no Docker socket there (is the engine running?)"
