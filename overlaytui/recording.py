"""Recordings: frames written as JSON Lines, read back for replay.

A file is a header line, then records in time order:

    {"type": "header", "format": 1, "overlaytui": "0.1.0", "engine_api": ["1.41"], "cluster_id": "...", ...}
    {"type": "key", "t": 1800000000.0, "frame": {...}}          every --keyframe seconds: the whole frame
    {"type": "delta", "t": 1800000001.0, "set": {...}, "del": {...}}   between: what changed since the last record
    {"type": "moment", "t": ..., "kind": "node", "subject": "node3", "text": "node3 down"}   the timeline

A frame is sections of items by key (nodes by id, tasks by id, containers by id, probe results by kind, overlay
and pair...) plus a few plain values; a delta sets the items that changed (whole items) and deletes the ones that
went. Items are the model's dataclasses as JSON objects (field names as in `model.py`) and are decoded against the
model's type hints, so a recording reads back into the very values that were recorded.

What is never written: environment values and secrets (the model has none: the sources never read a container's
or service's env, and endpoint TLS material stays in the endpoint spec, which is not part of a frame). Labels are
kept. `--redact nodes,services,networks` replaces those names everywhere they occur (ids, addresses and labels
stay) with stable pseudonyms made with a per-recording random salt.

Compression follows the file name: `.gz` (gzip, always available), `.zst` (zstd, with the optional `zstandard`
package), anything else plain text. Reading detects the compression from the file's first bytes.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import enum
import errno
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import stat
import sys
import threading
import time
import types
import typing
import zlib
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

from . import __version__
from .model import (
    ClusterSnapshot,
    ContainerStats,
    Coverage,
    Engine,
    Health,
    Moment,
    Network,
    Node,
    NodeKernel,
    PairWindow,
    ProbeData,
    ProbeResult,
    Service,
    Task,
)
from .safe import one_line

FORMAT = 1
KEYFRAME_EVERY = 60.0  # seconds between full frames (a seek replays at most this much of deltas)
KEYFRAME_COST = 20  # ... or 20 times as long as writing the last keyframe took, when that is longer
REDACTABLE = ("nodes", "services", "networks")
BUILTIN_NETWORKS = {"bridge", "host", "none", "ingress", "docker_gwbridge"}  # never redacted: they say what they are
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
GZIP_LEVEL = 1  # bench/record.py: the fastest level; a 200-node keyframe is ~35 MB of JSON before compression
ZSTD_LEVEL = 3


INTERN_MAX = 64  # strings up to this long are interned when decoded (names, states, addresses)
MAX_NUMBER = 1e18  # beyond, a recorded number is not a measurement (and sums of two would overflow to inf)
MAX_INT = (1 << 63) - 1


class RecordingError(Exception):
    """A recording that cannot be written or read: the message says which and why, in one line."""


# ------------------------------------------------------------------------------------------------- codec


_PLAIN = frozenset({int, float, bool, type(None)})
# fields whose values are the model's own words (states, roles, kinds), never names: never redacted, even when a
# service is called `worker` or `running`
WORDS = frozenset({"role", "state", "availability", "health", "desired_state", "kind", "mode", "endpoint_mode",
                   "driver", "scope", "reachability", "severity", "update_state", "firewall"})


@cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    return tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None


def encode(value: Any, redact: Callable[[str], str] | None = None) -> Any:
    """A model value as JSON: dataclasses as objects (their fields only), tuples as lists, enums as their value.
    With `redact`, every string (and every mapping key) goes through it; field names never do. (Type checks by
    exact type first: at 200 nodes a frame holds ~240,000 probe results, each a dozen plain fields.)"""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is str:
        return redact(value) if redact else value
    names = _field_names(kind)
    if names is not None:
        return {name: encode(getattr(value, name), None if name in WORDS else redact) for name in names}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return redact(value) if redact else value
    if isinstance(value, (tuple, list)):
        return [encode(v, redact) for v in value]
    if isinstance(value, Mapping):
        return {(redact(str(k)) if redact else str(k)): encode(v, redact) for k, v in value.items()}
    return value


def decode(kind: Any, data: Any) -> Any:
    """JSON back into a value of type `kind` (a model dataclass, a tuple type, a union with None, a primitive).
    Raises RecordingError on data that does not fit."""
    try:
        return _decoder(kind)(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise RecordingError(f"{getattr(kind, '__name__', kind)}: {exc}") from None


@cache
def _decoder(kind: Any) -> Callable[[Any], Any]:
    """A decoder for one type, made once from its type hints (a keyframe at 200 nodes holds ~240,000 probe
    results: decoding them through typing's introspection each time took 20 s)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [_decoder(a) for a in typing.get_args(kind) if a is not type(None)]
        if len(options) == 1:
            only = options[0]
            return lambda data: None if data is None else only(data)

        def first_that_fits(data: Any) -> Any:
            if data is None:
                return None
            for option in options:  # e.g. tuple[int, int] | None, str | int
                try:
                    return option(data)
                except (RecordingError, TypeError, ValueError):
                    continue
            raise RecordingError(f"no type of {kind} fits {str(data)[:60]}")
        return first_that_fits
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])

            def many(data: Any) -> tuple:
                if type(data) is not list:
                    raise RecordingError(f"expected a list for {kind}, got {type(data).__name__}")
                decoded = tuple(item(v) for v in data)
                table = getattr(_sharing, "table", None)
                if table is None or not decoded:
                    return decoded
                try:  # by type too: (1, 0) == (True, False), and a tuple of bools must stay one
                    return table.setdefault((kind, decoded), decoded)
                except TypeError:  # an unhashable item
                    return decoded
            return many
        items = [_decoder(a) for a in args]

        def fixed(data: Any) -> tuple:
            if type(data) is not list or len(data) != len(items):
                raise RecordingError(f"expected a list of {len(items)} for {kind}")
            return tuple(f(v) for f, v in zip(items, data, strict=True))
        return fixed
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = {f.name: _timed(_decoder(hints[f.name])) if f.name in TIME_FIELDS else _decoder(hints[f.name])
                  for f in dataclasses.fields(kind) if f.init}
        name = kind.__name__

        def instance(data: Any) -> Any:
            if type(data) is not dict:
                raise RecordingError(f"expected an object for {name}")
            try:
                return kind(**{k: fields[k](v) for k, v in data.items() if k in fields})
            except TypeError as exc:  # a required field missing
                raise RecordingError(f"{name}: {exc}") from None
        return instance
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind
    if kind is float:
        def number(data: Any) -> float:
            if type(data) is float and -MAX_NUMBER <= data <= MAX_NUMBER:  # NaN and infinities fail this
                return data
            if type(data) is int and -MAX_NUMBER <= data <= MAX_NUMBER:
                return float(data)
            raise RecordingError(f"expected a number, got {str(data)[:40]}")
        return number
    if kind is int:
        def integer(data: Any) -> int:
            if type(data) is not int or not -MAX_INT <= data <= MAX_INT:
                raise RecordingError(f"expected an integer, got {str(data)[:40]}")
            return data
        return integer
    if origin is dict:
        keys, values = (_decoder(a) for a in typing.get_args(kind))

        def mapping(data: Any) -> dict:
            if type(data) is not dict:
                raise RecordingError(f"expected an object for {kind}")
            return {keys(k): values(v) for k, v in data.items()}
        return mapping
    if kind is str:
        def text(data: Any) -> str:
            if type(data) is not str:
                raise RecordingError(f"expected str, got {str(data)[:40]}")
            # one object per distinct name: a 200-node frame repeats each node, overlay and state name ~10^5 times
            # (decoded apart they took 4/5 of a decoded frame's memory)
            return sys.intern(data) if len(data) <= INTERN_MAX else data
        return text
    if kind is bool:
        def exactly(data: Any) -> Any:
            if type(data) is not kind:
                raise RecordingError(f"expected {kind.__name__}, got {str(data)[:40]}")
            return data
        return exactly
    return lambda data: data


_sharing = threading.local()  # .table while a record is applied: equal tuples decoded once (see _Cursor.apply)


def _timed(decoder: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A time field's decoder: the value also a time a recording can hold (None passes where it may)."""
    def checked(data: Any) -> Any:
        value = decoder(data)
        return value if value is None else _time(value)
    return checked


# ------------------------------------------------------------------------------------------- sections

# the keyed sections of a frame: name -> (the item's type, its key)
SNAPSHOT_SECTIONS: dict[str, tuple[type, Callable[[Any], str]]] = {
    "engines": (Engine, lambda e: e.endpoint),
    "nodes": (Node, lambda n: n.id),
    "services": (Service, lambda s: s.id),
    "tasks": (Task, lambda t: t.id),
    "networks": (Network, lambda n: n.id if n.scope != "local" else f"{n.id}@{n.engine}"),
    "containers": (ContainerStats, lambda c: f"{c.container_id}@{c.engine}"),
}
PROBE_SECTIONS: dict[str, tuple[type, Callable[[Any], str]]] = {
    "results": (ProbeResult, lambda r: f"{r.kind}|{r.network}|{r.src_node}|{r.dst_node}"),
    "windows": (PairWindow, lambda w: f"{w.network}|{w.src_node}|{w.dst_node}"),
    "coverage": (Coverage, lambda c: f"{c.network}|{c.kind}"),
}
KERNEL_SECTIONS: dict[str, tuple[type, Callable[[Any], str]]] = {
    "kernels": (NodeKernel, lambda k: k.node_id or k.hostname),  # the nodes' kernel views (`--deep`)
}
SECTIONS = {**SNAPSHOT_SECTIONS, **PROBE_SECTIONS, **KERNEL_SECTIONS}


@dataclass(frozen=True)
class RecordedFrame:
    """What a recording keeps of one frame: the snapshot, the probe data, the underlay MTUs and the nodes' kernel
    views (the findings are derived again when it is read: the same inputs, the same checks)."""

    snapshot: ClusterSnapshot
    probes: ProbeData
    underlay_mtus: Mapping[str, int] = field(default_factory=dict)
    kernels: tuple[NodeKernel, ...] = ()

    @property
    def t(self) -> float:
        return self.snapshot.taken_at


def section_origin(frame: RecordedFrame, name: str) -> object:
    """What a section is made from: the snapshot's tuple, the probe data or the kernel views (the same object: the
    same items)."""
    if name in KERNEL_SECTIONS:
        return frame.kernels
    return getattr(frame.snapshot, name) if name in SNAPSHOT_SECTIONS else frame.probes


def section_items(frame: RecordedFrame, name: str) -> Iterable[Any]:
    if name in SNAPSHOT_SECTIONS:
        return getattr(frame.snapshot, name)
    if name in KERNEL_SECTIONS:
        return frame.kernels
    probes = frame.probes
    if name == "results":
        return probes.results()
    if name == "windows":
        return (w for ws in probes.windows.values() for w in ws.values())
    return probes.coverage


def frame_items_values(frame: RecordedFrame) -> dict[str, Any]:
    """The frame's plain values (not keyed items)."""
    snap, probes = frame.snapshot, frame.probes
    return {
        "taken_at": snap.taken_at, "swarm_id": snap.swarm_id, "problems": list(snap.problems),
        "probe_totals": [[*k, *v] for k, v in probes.totals.items()], "probe_rounds": probes.rounds,
        "probe_problem": probes.problem, "underlay_mtus": dict(frame.underlay_mtus),
        "networks_probed": list(probes.recent)}


PROBE_VALUES = ("probe_totals", "probe_rounds", "probe_problem", "networks_probed")


def probes_from_items(sections: Mapping[str, Mapping[str, Any]]) -> ProbeData:
    values = sections["values"]
    recent: dict[str, list[ProbeResult]] = {net: [] for net in values.get("networks_probed") or ()}
    for result in sections["results"].values():
        recent.setdefault(result.network, []).append(result)
    windows: dict[str, dict[tuple[str, str], PairWindow]] = {net: {} for net in recent}
    for window in sections["windows"].values():
        windows.setdefault(window.network, {})[(window.src_node, window.dst_node)] = window
    totals = {(str(r[0]), str(r[1]), str(r[2])): (int(r[3]), int(r[4])) for r in values.get("probe_totals") or ()}
    return ProbeData(recent={net: tuple(rs) for net, rs in recent.items()}, windows=windows,
                     coverage=tuple(sections["coverage"].values()), totals=totals,
                     rounds=int(values.get("probe_rounds") or 0), problem=str(values.get("probe_problem") or ""))


def frame_from_items(sections: Mapping[str, Mapping[str, Any]], tuples: Mapping[str, tuple] | None = None,
                     probes: ProbeData | None = None) -> RecordedFrame:
    """Decoded sections (items already model values) back into a frame; `tuples` and `probes` are reused when
    given (unchanged since the last frame: the same objects)."""
    values = sections["values"]
    tuples = tuples or {name: tuple(sections[name].values()) for name in SNAPSHOT_SECTIONS}
    snap = ClusterSnapshot(
        taken_at=float(values["taken_at"]), engines=tuples["engines"], swarm_id=values.get("swarm_id"),
        nodes=tuples["nodes"], services=tuples["services"], tasks=tuples["tasks"], networks=tuples["networks"],
        containers=tuples["containers"], problems=tuple(values.get("problems") or ()))
    mtus = {str(k): int(v) for k, v in (values.get("underlay_mtus") or {}).items()}
    kernels = tuple((sections.get("kernels") or {}).values())  # a recording made before them has none
    return RecordedFrame(snap, probes or probes_from_items(sections), mtus, kernels)


# --------------------------------------------------------------------------------------------- redaction


class Redactor:
    """Replaces chosen names (node hostnames, service names, overlay names) with stable pseudonyms wherever they
    occur in a string, inside other names too (`lb-frontend`, `frontend-endpoint`, `tasks.web`, aliases, labels,
    task names): `node-3f2a9c`. The salt is random per recording, so a pseudonym cannot be reversed by hashing
    guesses. Longest names first, so a name `web-admin` is replaced whole, not as `web` and `-admin`."""

    def __init__(self, kinds: Iterable[str], salt: str | None = None) -> None:
        self.kinds = tuple(k for k in REDACTABLE if k in set(kinds))
        self._salt = salt or secrets.token_hex(8)
        self._names: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def learn(self, snapshot: ClusterSnapshot) -> bool:
        """Add the snapshot's names of the chosen kinds (call before encoding it); True when some were new."""
        found: dict[str, str] = {}
        if "nodes" in self.kinds:
            found |= {n.hostname: "node" for n in snapshot.nodes} | {e.hostname: "node" for e in snapshot.engines
                                                                     if e.hostname}
        if "services" in self.kinds:
            found |= {s.name: "svc" for s in snapshot.services}
        if "networks" in self.kinds:
            found |= {n.name: "net" for n in snapshot.networks if n.name not in BUILTIN_NETWORKS}
        new = {name: prefix for name, prefix in found.items() if name and name not in self._names}
        if not new:
            return False
        for name, prefix in new.items():
            digest = hashlib.blake2b(f"{self._salt}:{name}".encode(), digest_size=3).hexdigest()
            self._names[name] = f"{prefix}-{digest}"
        ordered = sorted(self._names, key=len, reverse=True)
        # a name wherever no letter or digit touches it: `api` in `api.1.x`, `tasks.api`, `unix:///lab/api/...`,
        # `frontend` in the engine's `lb-frontend` and `frontend-endpoint`, `web` in `shop_web` — never inside
        # `rapid` (a real payload names overlays inside endpoint names: a match that refused `-` kept them)
        self._pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(n) for n in ordered) + r")(?![^\W_])")
        return True

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: self._names[m.group(0)], text)


# ------------------------------------------------------------------------------------------------ writer


# A name holding a lone surrogate (bytes that are not UTF-8, as Python decodes them) cannot be encoded: written as
# its escape `\udc9b`, which inside a JSON string (the only place text goes) reads back as the same character.
SURROGATES = "backslashreplace"


def _open_write(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "xt", encoding="utf-8", errors=SURROGATES, compresslevel=GZIP_LEVEL)
        if path.suffix == ".zst":
            try:
                import zstandard
            except ImportError:
                raise RecordingError("a .zst recording needs the zstandard package (pip install "
                                     "'overlaytui[zstd]'); .gz needs nothing") from None
            raw = open(path, "xb")  # noqa: SIM115 - owned by the text wrapper below
            return io.TextIOWrapper(zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw), encoding="utf-8",
                                    errors=SURROGATES)
        return open(path, "x", encoding="utf-8", errors=SURROGATES)  # noqa: SIM115 - the Recorder closes it
    except FileExistsError:
        raise RecordingError(f"{one_line(path)} exists: overlaytui never writes over a file") from None
    except OSError as exc:
        raise RecordingError(f"cannot write {one_line(path)}: {one_line(exc.strerror or exc)}") from None


class FrameEncoder:
    """Frames as records of the format: `encode(frame)` encodes its sections (a section made from the same
    objects as the previous frame's is not encoded again), then `key()` is the frame whole and `delta()` what
    changed since the previous frame encoded. A recording writes them to a file."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor
        self.sections: dict[str, dict[str, Any]] | None = None  # the last frame's encoded sections
        self.t = 0.0
        self._previous: dict[str, dict[str, Any]] | None = None
        self._origins: dict[str, object] = {}  # what each was encoded from (the same object: nothing to encode)
        self._unchanged: set[str] = set()

    def encode(self, frame: RecordedFrame) -> None:
        snap = frame.snapshot
        learned = self.redactor.learn(snap) if self.redactor else False
        redact = self.redactor if self.redactor else None
        last = self.sections
        sections: dict[str, dict[str, Any]] = {}
        unchanged: set[str] = set()
        for name, (_kind, key) in SECTIONS.items():
            origin = section_origin(frame, name)
            if last is not None and not learned and self._origins.get(name) is origin:
                sections[name] = last[name]  # the same objects as last time: the same items, not encoded again
                unchanged.add(name)
                continue
            self._origins[name] = origin
            sections[name] = {(redact(k) if redact else k): encode(item, redact)
                              for k, item in ((key(item), item) for item in section_items(frame, name))}
        sections["values"] = encode(frame_items_values(frame), redact)
        self._previous, self.sections, self._unchanged, self.t = last, sections, unchanged, snap.taken_at

    def key(self) -> dict:
        """The last frame encoded, whole."""
        assert self.sections is not None, "encode a frame first"
        return {"type": "key", "t": self.t, "frame": self.sections}

    def delta(self) -> dict:
        """What changed from the frame encoded before the last one to the last one (whole when there was none)."""
        if self._previous is None:
            return self.key()
        assert self.sections is not None
        changed: dict[str, dict[str, Any]] = {}
        gone: dict[str, list[str]] = {}
        order: dict[str, list[str]] = {}  # a section whose items are in another order (sources sort them)
        for name, items in self.sections.items():
            if name in self._unchanged:
                continue
            before = self._previous.get(name, {})
            diff = {k: v for k, v in items.items() if before.get(k) != v}
            if diff:
                changed[name] = diff
            if name == "values":
                continue
            removed = [k for k in before if k not in items]
            if removed:
                gone[name] = removed
            kept = [k for k in before if k in items]
            if list(items) != kept + [k for k in items if k not in before]:
                order[name] = list(items)
        record = {"type": "delta", "t": self.t, "set": changed, "del": gone}
        if order:
            record["order"] = order
        return record


class Recorder:
    """Writes frames to a recording: a keyframe every `keyframe_every` seconds, deltas between, moments as they
    come. Blocking (call it off the UI loop); `close()` flushes. The file is created exclusively (never over an
    existing file, nor through a symlink planted under the name)."""

    def __init__(self, path: str | os.PathLike, *, source: str, keyframe_every: float = KEYFRAME_EVERY,
                 redact: Iterable[str] = (), salt: str | None = None) -> None:
        self.path = Path(path)
        self.source = source
        self.keyframe_every = keyframe_every
        self.redactor = Redactor(redact, salt)
        self._out = _open_write(self.path)
        self._header_written = False
        self._encoder = FrameEncoder(self.redactor)
        self._last_key_t: float | None = None
        self._key_gap = keyframe_every
        self.frames = 0
        self.keyframes = 0
        self.skipped = 0  # frames the caller left out (a writer that could not keep up)
        self.failure = ""  # why writing stopped (one line), once a write failed

    def _write(self, record: dict) -> None:
        if self.failure:
            raise RecordingError(self.failure)
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        try:
            self._out.write(text)
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        """A write that failed (a full disk, a file-size limit): one line, the file closed as it is — what was
        written replays (the reader stops at a last line cut short, or a compressed stream without its end)."""
        why = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
               errno.EFBIG: "the file reached the largest size allowed (file system or ulimit -f)"}.get(
            exc.errno or 0, one_line(exc.strerror or exc))
        self.failure = f"cannot write {one_line(self.path)}: {why}; the {self.frames} frames written replay"
        self.close()
        raise RecordingError(self.failure) from None

    def _header(self, snapshot: ClusterSnapshot) -> None:
        redact = self.redactor if self.redactor else None
        self._write({
            "type": "header", "format": FORMAT, "overlaytui": __version__,
            "engine_api": sorted({e.api_version for e in snapshot.engines if e.api_version}),
            "engines": sorted({e.version for e in snapshot.engines if e.version}),
            "cluster_id": snapshot.swarm_id, "source": redact(self.source) if redact else self.source,
            "started_at": snapshot.taken_at, "keyframe_every": self.keyframe_every,
            "redacted": list(self.redactor.kinds)})
        self._header_written = True

    def write(self, frame: RecordedFrame) -> None:
        if not self._header_written:
            if self.redactor:
                self.redactor.learn(frame.snapshot)  # the source's name in the header is redacted too
            self._header(frame.snapshot)
        self._encoder.encode(frame)
        t = frame.snapshot.taken_at
        if self._last_key_t is None or t - self._last_key_t >= self._key_gap:
            started = time.perf_counter()
            self._write(self._encoder.key())
            self._last_key_t = t
            self.keyframes += 1
            # a keyframe costs at most ~5 % of a core: at 200 nodes with every pair probed one takes ~9 s
            self._key_gap = max(self.keyframe_every, KEYFRAME_COST * (time.perf_counter() - started))
        else:
            self._write(self._encoder.delta())
        self.frames += 1

    def moment(self, moment: Moment) -> None:
        """A timeline moment (a node went down, a task moved, a finding opened...)."""
        if not self._header_written:
            return  # moments come after the first frame
        self._write({"type": "moment", **encode(moment, self.redactor if self.redactor else None)})

    def flush(self) -> None:
        if self.failure:
            raise RecordingError(self.failure)
        try:
            self._out.flush()
        except OSError as exc:
            self._failed(exc)

    def close(self) -> None:
        """Flush and close; after a failed write, close what can be closed (the same error again is not news)."""
        with contextlib.suppress(OSError, ValueError):  # the layers below close in their `finally`
            self._out.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------ reader


@dataclass(frozen=True)
class Limits:
    """What one recording may hold; beyond, reading stops with one line naming the file and the record. The
    defaults fit a 200-node cluster recorded for days; `--recording-limits` (snapshot, doctor, the dashboard) or
    OVERLAYTUI_RECORDING_LIMITS raises them (`line_mb=512,records=20000000`)."""

    line_mb: int = 128  # one record (one line) once decompressed: a 200-node keyframe is ~35 MB of JSON
    records: int = 1_000_000  # lines in the file, blank ones included (a frame a second for 11 days)
    depth: int = 32  # nesting of a record's JSON (the format needs 8)
    moments: int = 200_000  # timeline moments (each is kept in memory)

    @classmethod
    def parse(cls, text: str | None) -> Limits:
        """`line_mb=256,records=5000000,depth=64,moments=500000` (any of them); ValueError says what is wrong."""
        limits = cls()
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in {f.name for f in dataclasses.fields(cls)} or not value.strip().isdigit():
                raise ValueError(f"recording limits: {part!r} is not NAME=N (line_mb, records, depth, moments)")
            limits = dataclasses.replace(limits, **{name: max(1, min(int(value), 1 << 40))})
        return limits


_chosen: Limits | None = None  # --recording-limits, when given


def default_limits() -> Limits:
    """--recording-limits, else OVERLAYTUI_RECORDING_LIMITS, else the defaults."""
    if _chosen is not None:
        return _chosen
    try:
        return Limits.parse(os.environ.get("OVERLAYTUI_RECORDING_LIMITS"))
    except ValueError:
        return Limits()


def limits_flag(text: str) -> Limits:
    """The argparse type of `--recording-limits NAME=N,...`: the limits every recording of this run is read
    with (an unknown name or a value that is not a number is refused in one line)."""
    global _chosen
    import argparse

    try:
        _chosen = Limits.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return _chosen


MAX_TIME = 1e11  # a time beyond year 5000 is not one a recording was made at (time_t and datetime end near it)
TIME_FIELDS = frozenset({"t", "taken_at", "updated_at", "timestamp", "read_at", "measured_at", "started_at"})
_SMALL = 1 << 20  # a record that is not a frame (header, moment) is at most this long
_CHUNK = 1 << 20
_FAST = re.compile(rb'\{\s*"type"\s*:\s*"(key|delta)"\s*,\s*"t"\s*:\s*(-?[0-9][0-9.eE+-]{0,30})\s*[,}]')
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _time(value: Any) -> float:
    """A recorded time: a finite number of seconds since 1970, before MAX_TIME."""
    if type(value) not in (int, float) or not 0 <= value <= MAX_TIME:
        raise RecordingError(f"the time {str(value)[:40]} is not a time of a recording")
    return float(value)


def _nested_deeper(data: bytes, limit: int) -> bool:
    """Whether JSON text nests deeper than `limit` (checked before parsing it, in C-speed passes: strings
    removed, then innermost bracket pairs removed once per level)."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not brackets or not removed:
            return False  # done, or unbalanced (the parser says so)
    return bool(brackets)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a recording holds")


class _Gzip:
    """gzip decompressed with zlib directly (members one after another, as gzip reads them), so that its state
    can be copied: `state()` is a checkpoint to go back to without decompressing from the start."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._raw.seek(0)
        self._d = zlib.decompressobj(31)
        self._input = b""  # compressed bytes read from the file, not given to the decompressor yet

    def read1(self, size: int) -> bytes:
        while True:
            if self._d.eof:  # the end of a member: another may follow
                rest = self._d.unused_data + self._input
                if not rest:
                    rest = self._raw.read(_CHUNK // 4)
                    if not rest:
                        return b""
                self._d, self._input = zlib.decompressobj(31), rest
            if not self._input:
                self._input = self._raw.read(_CHUNK // 4)
                if not self._input:
                    raise EOFError("the gzip stream ends before its end")  # cut short
            data = self._d.decompress(self._input, size)
            self._input = self._d.unconsumed_tail
            if data:
                return data

    def state(self) -> tuple:
        return self._raw.tell(), self._input, self._d.copy()

    def restore(self, state: tuple) -> None:
        offset, self._input, d = state
        self._d = d.copy()  # the checkpoint stays usable
        self._raw.seek(offset)

    def close(self) -> None:
        pass


class _Stream:
    """A recording's decompressed bytes, read forward. A plain file seeks; gzip keeps a checkpoint of its
    decompressor every CHECKPOINT_EVERY bytes (~50 KB each), so going back, or far forward, starts from the
    nearest one; zstd starts over from the file's start. The file is opened once, a regular file only (a FIFO
    would block, a device never ends), and kept open: the file read is the file indexed."""

    CHECKPOINT_EVERY = 64 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        where = one_line(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        except FileNotFoundError:
            raise RecordingError(f"{where}: no such file") from None
        except OSError as exc:
            raise RecordingError(f"cannot read {where}: {one_line(exc.strerror or exc)}") from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            what = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) \
                else "a directory" if stat.S_ISDIR(mode) else "a socket or other special file"
            raise RecordingError(f"{where} is {what}, not a regular file: a recording is read from a file")
        os.set_blocking(fd, True)
        self._raw = os.fdopen(fd, "rb")
        magic = self._raw.read(4)
        self.kind = "gzip" if magic.startswith(GZIP_MAGIC) else "zstd" if magic == ZSTD_MAGIC else "plain"
        if self.kind == "zstd":
            try:
                import zstandard  # noqa: F401
            except ImportError:
                self.close()
                raise RecordingError(f"{where} is zstd-compressed: reading it needs the zstandard package "
                                     "(pip install 'overlaytui[zstd]')") from None
        self._stream: Any = None
        self._checkpoints: list[tuple[int, tuple]] = []  # (decompressed position, gzip state), in order
        self.pos = 0
        self._restart()

    def _restart(self) -> None:
        self._raw.seek(0)
        if self.kind == "gzip":
            self._stream = _Gzip(self._raw)
            if not self._checkpoints:
                self._checkpoints.append((0, self._stream.state()))
        elif self.kind == "zstd":
            import zstandard

            self._stream = zstandard.ZstdDecompressor().stream_reader(self._raw, closefd=False,
                                                                      read_across_frames=True)
        else:
            self._stream = self._raw
        self.pos = 0

    def read(self, size: int) -> bytes:
        """Up to `size` bytes (b"" at the end, or where a compressed stream was cut short: what came before it
        is read). Damaged compression raises RecordingError."""
        try:  # read1: one step of the decompressor, so a stream cut short keeps what that step decoded
            data = self._stream.read1(size)
        except EOFError:
            return b""  # a compressed stream cut short (a crash, a full disk)
        except Exception as exc:  # noqa: BLE001 - zlib.error, ZstdError, OSError: damaged
            raise RecordingError(f"not a readable recording: damaged {self.kind} data after {self.pos} bytes "
                                 f"({one_line(exc)})") from None
        self.pos += len(data)
        if self.kind == "gzip" and data and self.pos - self._checkpoints[-1][0] >= self.CHECKPOINT_EVERY:
            self._checkpoints.append((self.pos, self._stream.state()))
        return data

    def read_at(self, offset: int, length: int) -> bytes:
        if self.kind == "plain":
            self._raw.seek(offset)
            self.pos = offset
        else:
            if self.kind == "gzip":
                at, state = self._checkpoints[bisect.bisect_right(self._checkpoints, offset,
                                                                  key=lambda c: c[0]) - 1]
                if offset < self.pos or at > self.pos:  # back, or a checkpoint nearer than here
                    self._stream.restore(state)
                    self.pos = at
            elif offset < self.pos:
                self._restart()
            while self.pos < offset:
                if not self.read(min(_CHUNK, offset - self.pos)):
                    break
        parts = []
        left = length
        while left > 0:
            data = self.read(min(left, 16 * _CHUNK))
            if not data:
                break
            parts.append(data)
            left -= len(data)
        if left:
            raise RecordingError("the file changed since it was read (a record is gone)")
        return b"".join(parts)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._stream is not None and self._stream is not self._raw:
                self._stream.close()
        with contextlib.suppress(OSError):
            self._raw.close()


class _Cursor:
    """The state at one record: raw JSON items and decoded values per section, the sections' tuples, the probe
    data, and which of them the records applied since the last frame touched."""

    def __init__(self, keep_raw: bool = True) -> None:
        self.index = -1
        # the raw JSON items as last set: a keyframe keeps the decoded objects of items it did not change. Without
        # them (a stream: `FrameDecoder`, whose keyframes are rare) a frame's memory is its decoded objects only
        self.keep_raw = keep_raw
        self.raw: dict[str, dict[str, Any]] = {}
        self.decoded: dict[str, dict[str, Any]] = {}
        self.tuples: dict[str, tuple] = {}
        self.probes: ProbeData | None = None
        self.touched: set[str] = set()

    def apply(self, record: dict) -> None:
        """One key or delta record applied (RecordingError, or what the data raised, when it cannot be). Equal
        tuples within the record are decoded into one object (a 200-node frame's overlays repeat each node's
        peers and services in every node's view: decoded apart they took 147 MB, shared as the sources share
        them a few)."""
        _sharing.table = {}
        try:
            self._apply(record)
        finally:
            _sharing.table = None

    def _apply(self, record: dict) -> None:
        try:
            if record.get("type") == "key":
                sections = record.get("frame")
                if type(sections) is not dict:
                    raise RecordingError("a keyframe without a frame object")
                self.tuples, self.probes = {}, None
                for name in (*SECTIONS, "values"):
                    raw = sections.get(name) or {}
                    if type(raw) is not dict:
                        raise RecordingError(f"section {name} is not an object")
                    raw = dict(raw)
                    if name == "values":
                        if "taken_at" not in raw:
                            raise RecordingError("the frame has no taken_at")
                        _check_values(raw, raw)
                    else:
                        kind = SECTIONS[name][0]
                        old_raw, old = self.raw.get(name, {}), self.decoded.get(name, {})
                        # an item as it was before this keyframe keeps its decoded object (and its identity)
                        self.decoded[name] = {k: old[k] if k in old and old_raw.get(k) == v else decode(kind, v)
                                              for k, v in raw.items()}
                    self.raw[name] = raw if self.keep_raw or name == "values" else {}
                self.touched |= {*SECTIONS, *PROBE_VALUES}
            else:
                changes, gone, order = record.get("set") or {}, record.get("del") or {}, record.get("order") or {}
                if not all(type(part) is dict for part in (changes, gone, order)):
                    raise RecordingError("a delta whose set, del or order is not an object")
                for name, items in changes.items():
                    if name not in self.raw:
                        continue
                    if type(items) is not dict:
                        raise RecordingError(f"set {name} is not an object")
                    if name == "values":
                        _check_values(items, items)
                        self.raw[name].update(items)
                        self.touched |= set(items)
                        continue
                    kind = SECTIONS[name][0]
                    decoded = {k: decode(kind, v) for k, v in items.items()}
                    if self.keep_raw:
                        self.raw[name].update(items)
                    self.decoded[name].update(decoded)
                    self.touched.add(name)
                for name, keys in gone.items():
                    if name in self.raw and name != "values":
                        self.touched.add(name)
                        for k in _strings(keys, f"del {name}"):
                            self.raw[name].pop(k, None)
                            self.decoded[name].pop(k, None)
                for name, keys in order.items():
                    if name in self.decoded and name != "values":
                        self.touched.add(name)
                        items = self.decoded[name]
                        self.decoded[name] = {k: items[k] for k in _strings(keys, f"order {name}")
                                              if k in items} | items
                        if self.keep_raw:
                            self.raw[name] = {k: self.raw[name][k] for k in self.decoded[name]}
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
            raise RecordingError(str(exc)) from None

    def frame(self) -> RecordedFrame:
        """The frame the records applied so far make (what they did not touch keeps its objects)."""
        try:
            for name in SNAPSHOT_SECTIONS:
                if name in self.touched or name not in self.tuples:
                    self.tuples[name] = tuple(self.decoded[name].values())
            if self.probes is None or self.touched & {*PROBE_SECTIONS, *PROBE_VALUES}:
                self.probes = probes_from_items({**self.decoded, "values": self.raw["values"]})
            self.touched = set()
            return frame_from_items({**self.decoded, "values": self.raw["values"]}, self.tuples, self.probes)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise RecordingError(f"a frame that cannot be rebuilt ({type(exc).__name__}: {exc})") from None


class FrameDecoder:
    """Records as they come (a stream, not a file): a keyframe, then deltas; each gives the frame it makes. The
    same decoding as a recording's reader (`overlaytui serve` streamed frames to viewer processes with it; its
    viewers now share the producer's frames in one process: tests/unit/test_recording_stream.py keeps it)."""

    def __init__(self) -> None:
        self._cursor = _Cursor(keep_raw=False)
        self.keyed = False  # a keyframe came: deltas can be applied

    def feed(self, record: dict) -> RecordedFrame | None:
        """The frame after this record (None for a delta before any keyframe); RecordingError when it cannot
        be applied (then the next keyframe starts again)."""
        kind = record.get("type")
        if kind not in ("key", "delta") or (kind == "delta" and not self.keyed):
            return None
        try:
            self._cursor.apply(record)
            frame = self._cursor.frame()
        except RecordingError:
            self._cursor, self.keyed = _Cursor(keep_raw=False), False
            raise
        self.keyed = True
        return frame


# the frame's plain values and their types (checked as every record sets them)
VALUE_TYPES: dict[str, Any] = {
    "taken_at": float, "swarm_id": str | None, "problems": tuple[str, ...],
    "probe_totals": tuple[tuple[str, str, str, int, int], ...], "probe_rounds": int | None,
    "probe_problem": str | None, "underlay_mtus": dict[str, int], "networks_probed": tuple[str, ...]}


def _check_values(values: Mapping[str, Any], names: Iterable[str]) -> None:
    for name in names:
        if name in VALUE_TYPES:
            value = values[name]
            if name == "taken_at":
                _time(value)
            else:
                decode(VALUE_TYPES[name], value)


def _strings(data: Any, what: str) -> list[str]:
    if type(data) is not list or any(type(k) is not str for k in data):
        raise RecordingError(f"{what} is not a list of keys")
    return data


class Recording:
    """A recording indexed: the header, each frame's time and where its record is in the (decompressed) file,
    the moments. Frames are read and rebuilt on demand from the nearest keyframe, going forward record by
    record from where the last one was built (playback is one delta per frame); what a delta did not touch
    keeps its identity, so the panes and the frame builder skip it as unchanged. Memory grows with the index
    (~30 bytes a record) and the frames being rebuilt, not with the file.

    A damaged record raises RecordingError (one line: the file, the record's number, why); with `lenient`
    (the dashboard) the last frame that could be built is shown again instead, with an engine in error whose
    message is that line, until a later keyframe is reached."""

    def __init__(self, path: Path, stream: _Stream, header: dict, limits: Limits) -> None:
        self.path = path
        self.header = header
        self.limits = limits
        self.times = array("d")
        self.moments: list[Moment] = []
        self.lenient = False
        self.delta_cost = 0.001  # seconds applying one delta takes here (a moving average)
        self._stream = stream
        self._offsets = array("q")
        self._lengths = array("q")
        self._numbers = array("q")  # the record's number in the file (its line)
        self._keys = array("q")  # indexes of the keyframes
        self._cursor = _Cursor()
        self._damaged: dict[int, str] = {}  # index -> why its record cannot be applied
        self._at = 0  # the record being applied
        self._last_good: RecordedFrame | None = None
        self._lock = threading.RLock()

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    def __len__(self) -> int:
        return len(self.times)

    def close(self) -> None:
        self._stream.close()

    def keyframe_at(self, index: int) -> int:
        """The keyframe a frame is rebuilt from."""
        return self._keys[max(0, bisect.bisect_right(self._keys, index) - 1)]

    def index_at(self, t: float) -> int:
        """The last frame at or before `t` (the first frame before the start)."""
        return max(0, bisect.bisect_right(self.times, t) - 1)

    def frame(self, index: int) -> RecordedFrame:
        """Frame number `index` (0-based), rebuilt from its keyframe and the deltas after it."""
        with self._lock:
            index = max(0, min(index, len(self.times) - 1))
            key = self.keyframe_at(index)
            damaged = [i for i in self._damaged if key <= i <= index]
            if damaged:
                return self._fallback(self._damaged[min(damaged)])
            try:
                frame = self._build(index, key)
            except RecordingError as exc:
                self._damaged[self._at] = str(exc)
                self._cursor = _Cursor()  # half applied: start again from a keyframe
                return self._fallback(str(exc))
            self._last_good = frame
            return frame

    def _fallback(self, why: str) -> RecordedFrame:
        last = self._last_good
        if not self.lenient or last is None:
            raise RecordingError(why)
        damage = Engine(endpoint=f"recording {self.path.name}", health=Health.ERROR, message=why,
                        hostname="recording damaged", updated_at=last.snapshot.taken_at)
        snapshot = dataclasses.replace(last.snapshot, engines=(*last.snapshot.engines, damage),
                                       problems=(*last.snapshot.problems, why))
        return RecordedFrame(snapshot, last.probes, last.underlay_mtus, last.kernels)

    def _build(self, index: int, key: int) -> RecordedFrame:
        cursor = self._cursor
        if not (key <= cursor.index <= index):  # behind the keyframe, or past the frame: start at the keyframe
            cursor = self._cursor = _Cursor()
            self._at = key
            self._apply(key, cursor)
        for i in range(cursor.index + 1, index + 1):
            started = time.perf_counter()
            self._at = i
            self._apply(i, cursor)
            self.delta_cost = 0.8 * self.delta_cost + 0.2 * (time.perf_counter() - started)
        self._at = index
        try:
            return cursor.frame()
        except RecordingError as exc:
            raise self._error(index, exc) from None

    def _error(self, index: int, why: object) -> RecordingError:
        return RecordingError(f"{one_line(self.path)}: record {self._numbers[index]}: {one_line(why)[:300]}")

    def _record(self, index: int) -> dict:
        try:
            data = self._stream.read_at(self._offsets[index], self._lengths[index])
        except RecordingError as exc:
            raise self._error(index, exc) from None
        record = _parse(data, self.limits)
        if isinstance(record, str):
            raise self._error(index, record)
        return record

    def _apply(self, index: int, cursor: _Cursor) -> None:
        record = self._record(index)
        try:
            cursor.apply(record)
        except RecordingError as exc:
            raise self._error(index, f"a damaged record at t={self.times[index]:.3f}: {exc}") from None
        cursor.index = index


def _parse(data: bytes, limits: Limits) -> dict | str:
    """One record's JSON: the object, or why it is not one (nesting beyond the limit is refused before
    parsing; NaN and Infinity are not numbers a recording holds)."""
    if _nested_deeper(data, limits.depth):
        return f"nested deeper than {limits.depth} levels (--recording-limits depth=N raises it)"
    try:
        record = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        return "nested too deeply"
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})"
    except ValueError as exc:  # a number of more than 4300 digits, NaN, Infinity
        return f"not JSON ({exc})"
    if type(record) is not dict:
        return "not a record (a JSON object)"
    return record


HEADER_TYPES: dict[str, Any] = {"overlaytui": str, "engine_api": tuple[str, ...], "engines": tuple[str, ...],
                                "cluster_id": str | None, "source": str, "started_at": float,
                                "keyframe_every": float, "redacted": tuple[str, ...]}


def _header(record: dict | str, where: str) -> dict:
    if isinstance(record, str) or record.get("type") != "header":
        raise RecordingError(f"{where}: not an overlaytui recording (no header line)")
    version = record.get("format")
    if type(version) is not int or version > FORMAT:
        raise RecordingError(f"{where}: recording format {one_line(repr(version))[:40]}; this overlaytui reads "
                             f"up to {FORMAT} (a newer overlaytui wrote it)")
    for name, kind in HEADER_TYPES.items():
        if name in record:
            try:
                decode(kind, record[name])
                if name in ("started_at", "keyframe_every") and not 0 <= record[name] <= MAX_TIME:
                    raise RecordingError(f"{record[name]} is out of range")
            except RecordingError as exc:
                raise RecordingError(f"{where}: record 1 (the header): {name}: {one_line(exc)[:200]}") from None
    return record


def load(path: str | os.PathLike, limits: Limits | None = None) -> Recording:
    """Index a recording (raises RecordingError with one line: no such file, not a regular file, not a
    recording, a newer format, damaged compression, a record beyond the limits or that cannot be read, no
    frame in it). One pass over the file: frames are located, not parsed (their records start with their type
    and time), moments and the header are read; the first frame is rebuilt to check the recording."""
    path = Path(path)
    limits = limits or default_limits()
    stream = _Stream(path)
    try:
        recording = _index(path, stream, limits)
        recording.frame(0)
    except BaseException:
        stream.close()
        raise
    return recording


def _index(path: Path, stream: _Stream, limits: Limits) -> Recording:
    where = one_line(path)
    recording: Recording | None = None
    number = 0  # lines so far
    carry = b""  # the first _SMALL bytes of a line that goes on in the next chunk
    carried = 0  # that line's length so far
    line_at = 0  # the offset of the next line in the decompressed stream
    line_limit = limits.line_mb << 20

    def fail(why: str) -> RecordingError:
        return RecordingError(f"{where}: record {number}: {one_line(why)[:300]}")

    while True:
        try:
            chunk = stream.read(_CHUNK)
        except RecordingError as exc:
            number += 1
            raise fail(str(exc)) from None
        if not chunk:
            break  # a last line without its newline was cut short (a crash, a full disk): left out
        pieces = chunk.split(b"\n")
        last = pieces.pop()
        for i, piece in enumerate(pieces):
            number += 1
            if i == 0 and carried:
                head, length = carry + piece[:_SMALL - len(carry)], carried + len(piece)
                carry, carried = b"", 0
            else:
                head, length = piece, len(piece)
            if length > line_limit:
                raise fail(f"longer than {limits.line_mb} MiB (--recording-limits line_mb=N raises it)")
            if number > limits.records:
                raise fail(f"more than {limits.records} records (--recording-limits records=N raises it)")
            if length and (length > _SMALL or head.strip()):
                if recording is None:
                    record = _parse(head, limits) if length <= _SMALL else "too long"
                    recording = Recording(path, stream, _header(record, where), limits)
                else:
                    _line(recording, head[:_SMALL], line_at, length, number, limits, fail)
            line_at += length + 1
        if not pieces and carried:  # the chunk holds no line end: a line goes on
            carry, carried = carry + last[:_SMALL - len(carry)], carried + len(last)
        else:
            carry, carried = last[:_SMALL], len(last)
        if carried > line_limit:
            number += 1
            raise fail(f"longer than {limits.line_mb} MiB (--recording-limits line_mb=N raises it)")
    if recording is None:
        raise RecordingError(f"{where}: not an overlaytui recording (no header line)")
    if not recording.times:
        raise RecordingError(f"{where}: the recording holds no frame")
    return recording


def _line(recording: Recording, head: bytes, offset: int, length: int, number: int, limits: Limits,
          fail: Callable[[str], RecordingError]) -> None:
    """Index one record: a frame by its type and time (from its first bytes), a moment read whole."""
    fast = _FAST.match(head)
    if fast is not None:
        kind = fast.group(1).decode()
        try:
            t = _time(float(fast.group(2)))
        except (ValueError, RecordingError) as exc:
            raise fail(f"t: {exc}") from None
    else:
        record = _parse(head, limits) if length <= _SMALL else "not a record of an overlaytui recording"
        if isinstance(record, str):
            raise fail(record)
        kind = record.get("type")
        if kind == "moment":
            if len(recording.moments) >= limits.moments:
                raise fail(f"more than {limits.moments} moments (--recording-limits moments=N raises it)")
            try:
                recording.moments.append(decode(Moment, {k: v for k, v in record.items() if k != "type"}))
            except RecordingError as exc:
                raise fail(f"a damaged moment: {exc}") from None
            return
        if kind not in ("key", "delta"):
            return  # an unknown record type (a newer minor addition): skipped
        try:
            t = _time(record.get("t"))
        except RecordingError as exc:
            raise fail(f"t: {exc}") from None
    if kind == "delta" and not recording._keys:
        return  # deltas before any keyframe: nothing to apply them to
    if kind == "key":
        recording._keys.append(len(recording.times))
    if recording.times and t < recording.times[-1]:
        t = recording.times[-1]  # a clock stepped back while recording: times stay in order (seeking bisects them)
    recording.times.append(t)
    recording._offsets.append(offset)
    recording._lengths.append(length)
    recording._numbers.append(number)
