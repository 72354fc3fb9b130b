"""The exporter's HTTP server: `--listen` parsed and checked, and a small asyncio server in a thread of its own
that holds under abuse.

Anyone who can reach the port (any local user; anyone on the network with `--listen 0.0.0.0:P`) can open
connections and never send a request, or send it a byte a second. So:

- **One event loop, no thread per connection**: idle connections cost a descriptor and a few KB, no thread.
- **A cap on open connections** (`MAX_CONNECTIONS`, and at most a quarter of the descriptor limit): the
  collector and the engines' connections keep the rest. A connection beyond the cap evicts the oldest one still
  waiting for its request (a scraper sends its request at once; an idle or slow client is the oldest waiter);
  when every connection is being answered, the new one is closed.
- **Deadlines**: the request line and headers must arrive within `HEADER_TIMEOUT` seconds of the connect (a
  trickle of bytes does not extend it) and fit in `MAX_HEADER_BYTES`; a client that does not read its answer is
  dropped after `WRITE_TIMEOUT`. One request per connection (`Connection: close`).
- **Formatting in a bounded pool** (`WORKERS` threads) off the loop, so the loop keeps accepting and evicting
  while a large scrape is formatted. A scrape that cannot be formatted answers 500 and says why on stderr (once a
  minute at most); nothing a client does ends the process.

Routes: `/` (a landing page), `/metrics` (Prometheus text, or OpenMetrics when the scraper asks for it; gzip
when accepted), `/-/healthy` and `/healthz` (200 `ok`); anything else 404. GET and HEAD; other methods 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import html
import ipaddress
import re
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from . import __version__
from .safe import one_line

MAX_CONNECTIONS = 256
HEADER_TIMEOUT = 5.0  # seconds from the connect to the end of the request's headers
WRITE_TIMEOUT = 10.0  # seconds to take the answer
MAX_HEADER_BYTES = 16384
WORKERS = 2  # threads formatting scrapes (the state is immutable: they only read it)
BACKLOG = 1024  # the kernel's queue of connections not accepted yet: a burst of connects is not refused (a
# connect that finds it full is retried by the client's kernel a second later: a scrape would wait that second)
ACCEPT_BATCH = 200  # accepted per turn of the loop before their handlers run and evict (cap + batch < limit)
HEALTH_PATHS = ("/-/healthy", "/healthz")

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def parse_listen(value: str) -> tuple[str, int]:
    """`--listen`: HOST:PORT or [IPV6]:PORT (HOST an address or a hostname). ValueError says what is wrong, in
    one line: an empty host is refused (say 0.0.0.0:P to listen on every interface: it is never implied)."""
    text = value.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"--listen {one_line(value)!r}: an IPv6 address is written [ADDRESS]:PORT")
        port = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"--listen {one_line(value)!r}: {one_line(host)!r} is not an IPv6 address") from None
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            raise ValueError(f"--listen {one_line(value)!r}: give HOST:PORT (127.0.0.1:9476 for this host only, "
                             "0.0.0.0:9476 for every interface)")
        if not host:
            raise ValueError(f"--listen {one_line(value)!r}: the host is empty; say which: 127.0.0.1:{port} for "
                             f"this host only, 0.0.0.0:{port} for every interface")
        if ":" in host:
            raise ValueError(f"--listen {one_line(value)!r}: an IPv6 address is written [ADDRESS]:PORT")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if not _HOSTNAME.match(host) or host.replace(".", "").isdigit():
                raise ValueError(f"--listen {one_line(value)!r}: {one_line(host)!r} is not an address or a "
                                 "hostname") from None
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {one_line(value)!r}: the port must be 1-65535")
    return host, int(port)


def landing_page(state_of: Callable[[], Any]) -> bytes:
    state = state_of()
    snap = state.snapshot
    what = (f"{len(snap.nodes)} nodes, {sum(1 for n in snap.networks if n.driver == 'overlay')} overlays"
            if snap is not None else "not collected yet")
    probing = html.escape(one_line(state.probe_problem)) if state.probe_problem else f"{state.rounds} probe rounds"
    return (f"<!doctype html><html><head><title>overlaytui exporter</title></head><body><h1>overlaytui exporter "
            f"{__version__}</h1><p>{html.escape(what)}; {probing}.</p><p><a href='/metrics'>/metrics</a></p>"
            "</body></html>").encode("utf-8", "backslashreplace")


def route(method: str, path: str, headers: dict[str, str], registry: CollectorRegistry,
          state_of: Callable[[], Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """One request's answer: status, headers, body (the body of a HEAD is dropped by the caller). Blocking
    (formats a scrape): the server calls it in its pool."""
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")], \
            b"GET or HEAD\n"
    path = path.split("?", 1)[0]
    if path == "/":
        return "200 OK", [("Content-Type", "text/html; charset=utf-8")], landing_page(state_of)
    if path in HEALTH_PATHS:
        return "200 OK", [("Content-Type", "text/plain")], b"ok\n"
    if path != "/metrics":
        return "404 Not Found", [("Content-Type", "text/plain")], b"not found: try /metrics\n"
    encoder, content_type = choose_encoder(headers.get("accept", ""))
    body = encoder(registry)
    extra = [("Content-Type", content_type)]
    if "gzip" in headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1)
        extra.append(("Content-Encoding", "gzip"))
    return "200 OK", extra, body


def connection_cap(limit: int = MAX_CONNECTIONS) -> int:
    """At most `limit` open connections, and at most a quarter of this process's descriptors."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(8, min(limit, soft // 4)) if soft != resource.RLIM_INFINITY else limit


class _Connection:
    __slots__ = ("busy", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.busy = False  # its request arrived: it is being answered, never evicted


class Server:
    """The HTTP server: bound at once (OSError when the address cannot be used), serving in its own thread
    after `start()`; `close()` stops it (bounded)."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, state_of: Callable[[], Any], *,
                 max_connections: int | None = None, header_timeout: float = HEADER_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT, workers: int = WORKERS) -> None:
        self.registry = registry
        self.state_of = state_of
        self.max_connections = max_connections or connection_cap()
        self.header_timeout = header_timeout
        self.write_timeout = write_timeout
        self.evicted = 0  # connections closed to make room (idle or slow clients)
        self.refused = 0  # connections closed because every one was being answered
        self.answered = 0
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        self._socket = socket.socket(info[0], socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(info[4])
            self._socket.listen(BACKLOG)
        except OSError:
            self._socket.close()
            raise
        self.address = self._socket.getsockname()[:2]
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="overlaytui-scrape")
        self._open: dict[asyncio.StreamWriter, _Connection] = {}  # in connect order: the oldest first
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._said_at = float("-inf")
        self._ready = threading.Event()

    def start(self) -> Server:
        self._thread = threading.Thread(target=self._run, name="overlaytui-metrics", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # this thread's own
        loop.set_exception_handler(self._loop_error)
        try:
            server = loop.run_until_complete(asyncio.start_server(self._serve, sock=self._socket,
                                                                  limit=MAX_HEADER_BYTES, backlog=ACCEPT_BATCH))
            self._ready.set()
            loop.run_forever()
            server.close()
            tasks = asyncio.all_tasks(loop)  # the connections' handlers: cancelled, each closes its own
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        finally:
            self._ready.set()
            loop.close()

    def close(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(OSError):
            self._socket.close()

    def _say(self, line: str) -> None:
        """A problem of the server, on stderr once a minute at most (a client can cause it at will)."""
        now = time.monotonic()
        if now - self._said_at >= 60:
            self._said_at = now
            print(f"overlaytui exporter: {one_line(line)[:300]}", file=sys.stderr)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        self._say(f"the HTTP server: {context.get('message')}" + (f" ({type(exc).__name__}: {exc})" if exc else ""))

    def _make_room(self, newcomer: asyncio.StreamWriter) -> bool:
        """Under the cap again by evicting the oldest connection still waiting for its request; False when the
        newcomer itself has to go (every other connection is being answered)."""
        while len(self._open) > self.max_connections:
            oldest = next((w for w, c in self._open.items() if not c.busy and w is not newcomer), None)
            if oldest is None:
                self.refused += 1
                return False
            self._open.pop(oldest)
            oldest.transport.abort()
            self.evicted += 1
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = self._open[writer] = _Connection(writer)
        try:
            if not self._make_room(writer):
                return
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.header_timeout)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                    ValueError):
                return  # idle, slow, too long or gone: closed without an answer
            if writer not in self._open:
                return  # evicted meanwhile
            connection.busy = True
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                await self._send(writer, "400 Bad Request", [("Content-Type", "text/plain")], b"bad request\n")
                return
            method, path = parts[0], parts[1]
            headers = {}
            for line in lines[1:]:
                name, colon, text = line.partition(":")
                if colon:
                    headers[name.strip().lower()] = text.strip()
            loop = asyncio.get_running_loop()
            try:
                status, extra, body = await loop.run_in_executor(self._pool, route, method, path, headers,
                                                                 self.registry, self.state_of)
            except Exception as exc:  # noqa: BLE001 - a scrape that cannot be formatted: 500, said, served on
                self._say(f"a scrape failed: {type(exc).__name__}: {exc}")
                status, extra, body = "500 Internal Server Error", [("Content-Type", "text/plain")], \
                    b"the metrics could not be formatted (see the exporter's stderr)\n"
            await self._send(writer, status, extra, b"" if method == "HEAD" else body, len(body))
            self.answered += 1
        except (ConnectionError, TimeoutError, OSError):
            pass  # the client left, or does not read
        except Exception as exc:  # noqa: BLE001 - nothing a client does ends the server
            self._say(f"a connection failed: {type(exc).__name__}: {exc}")
        finally:
            self._open.pop(writer, None)
            writer.transport.abort()

    async def _send(self, writer: asyncio.StreamWriter, status: str, headers: list[tuple[str, str]], body: bytes,
                    length: int | None = None) -> None:
        lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers),
                 f"Content-Length: {len(body) if length is None else length}", "Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode("latin-1") + body)
        await asyncio.wait_for(writer.drain(), self.write_timeout)


def make_server(host: str, port: int, registry: CollectorRegistry, state_of: Callable[[], Any]) -> Server:
    """Bound and serving (OSError when the address cannot be used)."""
    return Server(host, port, registry, state_of).start()
