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

import dataclasses
import enum
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    Moment,
    Network,
    Node,
    PairWindow,
    ProbeData,
    ProbeResult,
    Service,
    Task,
)

FORMAT = 1
KEYFRAME_EVERY = 60.0  # seconds between full frames (a seek replays at most this much of deltas)
KEYFRAME_COST = 20  # ... or 20 times as long as writing the last keyframe took, when that is longer
REDACTABLE = ("nodes", "services", "networks")
BUILTIN_NETWORKS = {"bridge", "host", "none", "ingress", "docker_gwbridge"}  # never redacted: they say what they are
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
GZIP_LEVEL = 1  # bench/record.py: the fastest level; a 200-node keyframe is ~35 MB of JSON before compression
ZSTD_LEVEL = 3


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
                return tuple(item(v) for v in data)
            return many
        items = [_decoder(a) for a in args]

        def fixed(data: Any) -> tuple:
            if type(data) is not list or len(data) != len(items):
                raise RecordingError(f"expected a list of {len(items)} for {kind}")
            return tuple(f(v) for f, v in zip(items, data, strict=True))
        return fixed
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(kind) if f.init}
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
            if type(data) is float:
                return data
            if type(data) is int:
                return float(data)
            raise RecordingError(f"expected a number, got {str(data)[:40]}")
        return number
    if kind in (int, str, bool):
        def exactly(data: Any) -> Any:
            if type(data) is not kind:
                raise RecordingError(f"expected {kind.__name__}, got {str(data)[:40]}")
            return data
        return exactly
    return lambda data: data


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
SECTIONS = {**SNAPSHOT_SECTIONS, **PROBE_SECTIONS}


@dataclass(frozen=True)
class RecordedFrame:
    """What a recording keeps of one frame: the snapshot, the probe data and the underlay MTUs (the findings are
    derived again when it is read: the same inputs, the same checks)."""

    snapshot: ClusterSnapshot
    probes: ProbeData
    underlay_mtus: Mapping[str, int] = field(default_factory=dict)

    @property
    def t(self) -> float:
        return self.snapshot.taken_at


def section_origin(frame: RecordedFrame, name: str) -> object:
    """What a section is made from: the snapshot's tuple, or the probe data (the same object: the same items)."""
    return getattr(frame.snapshot, name) if name in SNAPSHOT_SECTIONS else frame.probes


def section_items(frame: RecordedFrame, name: str) -> Iterable[Any]:
    if name in SNAPSHOT_SECTIONS:
        return getattr(frame.snapshot, name)
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
    return RecordedFrame(snap, probes or probes_from_items(sections), mtus)


# --------------------------------------------------------------------------------------------- redaction


class Redactor:
    """Replaces chosen names (node hostnames, service names, overlay names) with stable pseudonyms wherever they
    occur in a string: `node-3f2a9c`. The salt is random per recording, so a pseudonym cannot be reversed by
    hashing guesses. Longest names first, so `web` never eats into `web-admin`."""

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
        # whole names only: `api` in `api.1.x` or `unix:///lab/api/...`, never inside `rapid`
        self._pattern = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(n) for n in ordered) + r")(?![\w-])")
        return True

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: self._names[m.group(0)], text)


# ------------------------------------------------------------------------------------------------ writer


def _open_write(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "xt", encoding="utf-8", compresslevel=GZIP_LEVEL)
        if path.suffix == ".zst":
            try:
                import zstandard
            except ImportError:
                raise RecordingError("a .zst recording needs the zstandard package (pip install "
                                     "'overlaytui[zstd]'); .gz needs nothing") from None
            raw = open(path, "xb")  # noqa: SIM115 - owned by the text wrapper below
            return io.TextIOWrapper(zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw), encoding="utf-8")
        return open(path, "x", encoding="utf-8")  # noqa: SIM115 - the Recorder owns and closes it
    except FileExistsError:
        raise RecordingError(f"{path} exists: overlaytui never writes over a file") from None
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from None


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
        self._last: dict[str, dict[str, Any]] | None = None  # the last record's encoded sections
        self._origins: dict[str, object] = {}  # what each was encoded from (the same object: nothing to encode)
        self._last_key_t: float | None = None
        self._key_gap = keyframe_every
        self.frames = 0
        self.keyframes = 0
        self.skipped = 0  # frames the caller left out (a writer that could not keep up)

    def _write(self, record: dict) -> None:
        self._out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")

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
        snap = frame.snapshot
        learned = self.redactor.learn(snap) if self.redactor else False
        if not self._header_written:
            self._header(snap)
        redact = self.redactor if self.redactor else None
        sections: dict[str, dict[str, Any]] = {}
        unchanged: set[str] = set()
        for name, (_kind, key) in SECTIONS.items():
            origin = section_origin(frame, name)
            if self._last is not None and not learned and self._origins.get(name) is origin:
                sections[name] = self._last[name]  # the same objects as last time: the same items, not encoded again
                unchanged.add(name)
                continue
            self._origins[name] = origin
            sections[name] = {(redact(k) if redact else k): encode(item, redact)
                              for k, item in ((key(item), item) for item in section_items(frame, name))}
        sections["values"] = encode(frame_items_values(frame), redact)
        t = snap.taken_at
        if self._last is None or self._last_key_t is None or t - self._last_key_t >= self._key_gap:
            started = time.perf_counter()
            self._write({"type": "key", "t": t, "frame": sections})
            self._last_key_t = t
            self.keyframes += 1
            # a keyframe costs at most ~5 % of a core: at 200 nodes with every pair probed one takes ~9 s
            self._key_gap = max(self.keyframe_every, KEYFRAME_COST * (time.perf_counter() - started))
        else:
            changed: dict[str, dict[str, Any]] = {}
            gone: dict[str, list[str]] = {}
            order: dict[str, list[str]] = {}  # a section whose items are in another order (sources sort them)
            for name, items in sections.items():
                if name in unchanged:
                    continue
                before = self._last.get(name, {})
                if name == "values":
                    diff = {k: v for k, v in items.items() if before.get(k) != v}
                    if diff:
                        changed[name] = diff
                    continue
                diff = {k: v for k, v in items.items() if before.get(k) != v}
                if diff:
                    changed[name] = diff
                removed = [k for k in before if k not in items]
                if removed:
                    gone[name] = removed
                kept = [k for k in before if k in items]
                if list(items) != kept + [k for k in items if k not in before]:
                    order[name] = list(items)
            record = {"type": "delta", "t": t, "set": changed, "del": gone}
            if order:
                record["order"] = order
            self._write(record)
        self._last = sections
        self.frames += 1

    def moment(self, moment: Moment) -> None:
        """A timeline moment (a node went down, a task moved, a finding opened...)."""
        if not self._header_written:
            return  # moments come after the first frame
        self._write({"type": "moment", **encode(moment, self.redactor if self.redactor else None)})

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        try:
            self._out.close()
        except OSError:
            pass

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------ reader


class _Cursor:
    """The state at one record: raw JSON items and decoded values per section, the sections' tuples, the probe
    data, and which of them the records applied since the last frame touched."""

    def __init__(self) -> None:
        self.index = -1
        self.raw: dict[str, dict[str, Any]] = {}
        self.decoded: dict[str, dict[str, Any]] = {}
        self.tuples: dict[str, tuple] = {}
        self.probes: ProbeData | None = None
        self.touched: set[str] = set()


@dataclass
class Recording:
    """A recording read into memory: the header, the records' times, the moments. Frames are rebuilt on demand
    from the nearest keyframe, going forward record by record from where the last one was built (playback is
    one delta per frame); what a delta did not touch keeps its identity, so the panes and the frame builder skip
    it as unchanged."""

    path: Path
    header: dict
    times: list[float]
    moments: list[Moment]
    _records: list[dict] = field(repr=False)
    _keys: list[int] = field(repr=False)  # indexes of the keyframes
    _cursor: _Cursor = field(default_factory=_Cursor, repr=False)
    delta_cost: float = 0.001  # seconds applying one delta takes here (a moving average)

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    def __len__(self) -> int:
        return len(self.times)

    def keyframe_at(self, index: int) -> int:
        """The keyframe a frame is rebuilt from."""
        return max(k for k in self._keys if k <= index)

    def index_at(self, t: float) -> int:
        """The last frame at or before `t` (the first frame before the start)."""
        lo, hi = 0, len(self.times)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.times[mid] <= t:
                lo = mid + 1
            else:
                hi = mid
        return max(0, lo - 1)

    def frame(self, index: int) -> RecordedFrame:
        """Frame number `index` (0-based), rebuilt from its keyframe and the deltas after it."""
        index = max(0, min(index, len(self.times) - 1))
        cursor = self._cursor
        key = self.keyframe_at(index)
        if not (key <= cursor.index <= index):  # behind the keyframe, or past the frame: start at the keyframe
            cursor = self._cursor = _Cursor()
            self._apply(key, cursor)
        for i in range(cursor.index + 1, index + 1):
            started = time.perf_counter()
            self._apply(i, cursor)
            if self._records[i].get("type") == "delta":
                self.delta_cost = 0.8 * self.delta_cost + 0.2 * (time.perf_counter() - started)
        for name in SNAPSHOT_SECTIONS:
            if name in cursor.touched or name not in cursor.tuples:
                cursor.tuples[name] = tuple(cursor.decoded[name].values())
        if cursor.probes is None or cursor.touched & {*PROBE_SECTIONS, *PROBE_VALUES}:
            cursor.probes = probes_from_items({**cursor.decoded, "values": cursor.raw["values"]})
        cursor.touched = set()
        return frame_from_items({**cursor.decoded, "values": cursor.raw["values"]}, cursor.tuples, cursor.probes)

    def _apply(self, index: int, cursor: _Cursor) -> None:
        record = self._records[index]
        try:
            if record["type"] == "key":
                sections = record["frame"]
                cursor.tuples, cursor.probes = {}, None
                for name in (*SECTIONS, "values"):
                    raw = dict(sections.get(name) or {})
                    if name != "values":
                        kind = SECTIONS[name][0]
                        old_raw, old = cursor.raw.get(name, {}), cursor.decoded.get(name, {})
                        # an item as it was before this keyframe keeps its decoded object (and its identity)
                        cursor.decoded[name] = {k: old[k] if k in old and old_raw.get(k) == v else decode(kind, v)
                                                for k, v in raw.items()}
                    cursor.raw[name] = raw
                cursor.touched |= {*SECTIONS, *PROBE_VALUES}
            else:
                for name, items in (record.get("set") or {}).items():
                    if name not in cursor.raw:
                        continue
                    cursor.raw[name].update(items)
                    if name == "values":
                        cursor.touched |= set(items)
                        continue
                    kind = SECTIONS[name][0]
                    cursor.touched.add(name)
                    for k, v in items.items():
                        cursor.decoded[name][k] = decode(kind, v)
                for name, keys in (record.get("del") or {}).items():
                    if name in cursor.raw and name != "values":
                        cursor.touched.add(name)
                        for k in keys:
                            cursor.raw[name].pop(k, None)
                            cursor.decoded[name].pop(k, None)
                for name, keys in (record.get("order") or {}).items():
                    if name in cursor.decoded and name != "values":
                        cursor.touched.add(name)
                        items = cursor.decoded[name]
                        cursor.decoded[name] = {k: items[k] for k in keys if k in items} | items
                        cursor.raw[name] = {k: cursor.raw[name][k] for k in cursor.decoded[name]}
        except (KeyError, TypeError, ValueError, AttributeError, RecordingError) as exc:
            raise RecordingError(f"{self.path}: a damaged record at t={record.get('t')}: {exc}") from None
        cursor.index = index


def _open_read(path: Path) -> IO[str]:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic.startswith(GZIP_MAGIC):
            return gzip.open(path, "rt", encoding="utf-8")
        if magic == ZSTD_MAGIC:
            try:
                import zstandard
            except ImportError:
                raise RecordingError(f"{path} is zstd-compressed: reading it needs the zstandard package "
                                     "(pip install 'overlaytui[zstd]')") from None
            return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")),  # noqa: SIM115
                                    encoding="utf-8")
        return open(path, encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_records(path: Path) -> Iterator[dict]:
    with _open_read(path) as fh:
        try:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    if not line.endswith("\n"):  # the last line of a recording cut short (a crash, a full disk)
                        return
                    raise RecordingError(f"{path}: line {number} is not JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise RecordingError(f"{path}: line {number} is not a record")
                yield record
        except (EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
            if isinstance(exc, EOFError):
                return  # a gzip stream cut short: what was written before is read
            raise RecordingError(f"{path}: not a readable recording ({exc})") from None


def load(path: str | os.PathLike) -> Recording:
    """Read a recording (raises RecordingError with the reason: no such file, not a recording, a newer format,
    no frame in it)."""
    path = Path(path)
    records = read_records(path)
    header = next(records, None)
    if header is None or header.get("type") != "header":
        raise RecordingError(f"{path}: not an overlaytui recording (no header line)")
    if not isinstance(header.get("format"), int) or header["format"] > FORMAT:
        raise RecordingError(f"{path}: recording format {header.get('format')!r}; this overlaytui reads up to "
                             f"{FORMAT} (a newer overlaytui wrote it)")
    frames: list[dict] = []
    times: list[float] = []
    keys: list[int] = []
    moments: list[Moment] = []
    for record in records:
        kind = record.get("type")
        t = record.get("t")
        if not isinstance(t, (int, float)):
            continue
        if kind == "key":
            keys.append(len(frames))
        elif kind == "moment":
            try:
                moments.append(decode(Moment, {k: v for k, v in record.items() if k != "type"}))
            except RecordingError:
                pass  # a damaged moment: the frames still replay
            continue
        elif kind != "delta" or not keys:
            continue  # an unknown record type (a newer minor addition), or deltas before any keyframe
        frames.append(record)
        times.append(float(t))
    if not frames:
        raise RecordingError(f"{path}: the recording holds no frame")
    return Recording(path, header, times, moments, frames, keys)
