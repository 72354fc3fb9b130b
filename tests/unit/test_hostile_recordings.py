"""Issue 23: hostile recordings through every reader — `snapshot --replay`, `doctor --replay` and the
dashboard's replay source — each in a subprocess, within a time and a memory bound, ending in one line that
names the file and the record (or, for the dashboard, a damaged record shown while it keeps playing).

Each case is one attack: a 2 GiB line in a small zstd file, 2 GiB of small deltas or of blank lines in a small
gzip file (concatenated gzip members: cheap to make), a FIFO, a link to /dev/zero, a damaged gzip body, JSON
nested 100,000 deep, wrong types in a frame's values, absurd times and numbers, deltas of the wrong shape."""

from __future__ import annotations

import gzip
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_recording import record_demo

TIME_BOUND = 10.0  # seconds per reader
MEMORY_BOUND = 300 << 20  # peak RSS of the process running the three readers, bytes
GIB = 1 << 30


def _zstd_line(path: Path, size: int) -> None:
    import zstandard

    header = b'{"type":"header","format":1}\n{"type":"key","t":1800000000.0,"frame":"'
    with open(path, "wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as out:
        out.write(header)
        block = b"a" * (1 << 20)
        for _ in range(size >> 20):
            out.write(block)
        out.write(b'"}\n')


def _gzip_repeated(path: Path, head: bytes, body: bytes, total: int) -> None:
    """`head`, then `body` repeated to `total` bytes, as concatenated gzip members (each member compressed
    once: a 2 GiB stream costs a few MB and a second to make)."""
    member = gzip.compress(body, compresslevel=6)
    with open(path, "wb") as out:
        out.write(gzip.compress(head))
        for _ in range(total // len(body)):
            out.write(member)


def _lines(path: Path, records: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


def _demo_lines(tmp_path: Path) -> list[str]:
    source = tmp_path / "demo.jsonl"
    record_demo(source, seconds=6, keyframe=3)
    return source.read_text().splitlines()


def _with(lines: list[str], index: int, change) -> list[str]:
    record = json.loads(lines[index])
    change(record)
    return [*lines[:index], json.dumps(record), *lines[index + 1:]]


def _key_index(lines: list[str]) -> int:
    """The last keyframe: `snapshot --replay` reads the last frame, rebuilt from it."""
    return max(i for i, line in enumerate(lines) if json.loads(line)["type"] == "key")


def _delta_index(lines: list[str]) -> int:
    """The last delta (after the last keyframe)."""
    return max(i for i, line in enumerate(lines) if json.loads(line)["type"] == "delta")


def _values(change):
    def apply(record):
        change(record["frame"]["values"])
    return apply


def make(case: str, tmp_path: Path) -> tuple[Path, str]:
    """The hostile file for `case`, and what its one line must say."""
    path = tmp_path / f"{case}.jsonl"
    if case == "zstd-2gib-line":
        path = path.with_suffix(".jsonl.zst")
        _zstd_line(path, 2 * GIB)
        return path, "record 2: longer than"
    if case == "gzip-2gib-small-deltas":
        path = path.with_suffix(".jsonl.gz")
        head = b'{"type":"header","format":1}\n{"type":"key","t":1800000000.0,"frame":{"values":{"taken_at":1.8e9}}}\n'
        body = b"".join(b'{"type":"delta","t":1800000001.0,"set":{},"del":{}}\n' for _ in range(20_000))
        _gzip_repeated(path, head, body, 2 * GIB)
        return path, "more than"
    if case == "gzip-2gib-blank-lines":
        path = path.with_suffix(".jsonl.gz")
        _gzip_repeated(path, b'{"type":"header","format":1}\n', b"\n" * (1 << 20), 2 * GIB)
        return path, "more than"
    if case == "fifo":
        os.mkfifo(path)
        return path, "is a FIFO, not a regular file"
    if case == "dev-zero":
        path.symlink_to("/dev/zero")
        return path, "is a device, not a regular file"
    if case == "directory":
        path.mkdir()
        return path, "is a directory, not a regular file"
    if case == "damaged-gzip":
        path = path.with_suffix(".jsonl.gz")
        record_demo(path, seconds=30, keyframe=10)
        data = bytearray(path.read_bytes())
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0x5A
        path.write_bytes(bytes(data))
        return path, "record "  # garbage lines, or the checksum at the member's end: the first one met
    if case == "invalid-deflate":
        path = path.with_suffix(".jsonl.gz")
        record_demo(path, seconds=5, keyframe=10)
        data = bytearray(path.read_bytes())
        start = data.index(0, 10) + 1 if data[3] & 0x08 else 10  # after the header (and the file name in it)
        data[start:start + 6] = b"\xff" * 6  # the first deflate block: an invalid block type (zlib.error)
        path.write_bytes(bytes(data))
        return path, "damaged gzip data"
    lines = _demo_lines(tmp_path)
    key, delta = _key_index(lines), _delta_index(lines)
    broken = {
        "nested-100k": (lambda: [*lines[:delta], f'{{"type":"delta","t":{json.loads(lines[delta])["t"]},"set":'
                                 '{"nodes":' + "[" * 100_000 + "]" * 100_000 + "}}", *lines[delta + 1:]],
                        "nested deeper than"),
        "taken-at-missing": (lambda: _with(lines, key, _values(lambda v: v.pop("taken_at"))), "no taken_at"),
        "taken-at-nan": (lambda: [*lines[:key], lines[key].replace('"taken_at":', '"taken_at":NaN,"x":', 1),
                                  *lines[key + 1:]], "NaN"),
        "taken-at-1e400": (lambda: _with(lines, key, _values(lambda v: v.update(taken_at=1e400))), "Infinity"),
        "taken-at-10e400": (lambda: _with(lines, key, _values(lambda v: v.update(taken_at=10 ** 400))),
                            "not a time"),
        "probe-totals-shape": (lambda: _with(lines, key, _values(lambda v: v.update(probe_totals=[["a", 1]]))),
                               "record"),
        "underlay-mtus-type": (lambda: _with(lines, key, _values(lambda v: v.update(underlay_mtus={"a": "x"}))),
                               "expected an integer"),
        "problems-shape": (lambda: _with(lines, key, _values(lambda v: v.update(problems={"a": 1}))), "record"),
        "t-10e400": (lambda: _with(lines, delta, lambda r: r.update(t=10 ** 400)), "not a time"),
        "t-1e308": (lambda: _with(lines, delta, lambda r: r.update(t=1e308)), "not a time"),
        "t-minus-1e308": (lambda: _with(lines, delta, lambda r: r.update(t=-1e308)), "not a time"),
        "rtt-1e308": (lambda: _with(lines, key, lambda r: [res.update(rtt_avg_ms=1e308, measured_at=-1e308)
                                                          for res in r["frame"]["results"].values()]),
                      "record"),
        "delta-set-list": (lambda: _with(lines, delta, lambda r: r.update(set=[1, 2])), "set, del or order"),
        "delta-del-number": (lambda: _with(lines, delta, lambda r: r.update({"del": {"nodes": 5}})),
                             "not a list of keys"),
        "delta-order-nested": (lambda: _with(lines, delta, lambda r: r.update(order={"nodes": [[1]]})),
                               "not a list of keys"),
        "delta-item-wrong": (lambda: _with(lines, delta, lambda r: r["set"].update(nodes={"x": [1]})),
                             "expected an object"),
        "kernel-view-wrong": (lambda: _with(lines, key, lambda r: r["frame"].update(kernels={"n": {
            "node_id": "n", "hostname": "h", "sandboxes": [{"sandbox": 5, "network_prefix": "x"}]}})),
                              "expected str"),
        "kernel-view-time": (lambda: _with(lines, key, lambda r: r["frame"].update(kernels={"n": {
            "node_id": "n", "hostname": "h", "read_at": 1e308}})), "expected a number"),
    }
    build, says = broken[case]
    _lines(path, build())
    return path, says


CASES = ["zstd-2gib-line", "gzip-2gib-small-deltas", "gzip-2gib-blank-lines", "fifo", "dev-zero", "directory",
         "damaged-gzip",
         "invalid-deflate",
         "nested-100k", "taken-at-missing", "taken-at-nan", "taken-at-1e400", "taken-at-10e400", "probe-totals-shape",
         "underlay-mtus-type", "problems-shape", "t-10e400", "t-1e308", "t-minus-1e308", "rtt-1e308",
         "delta-set-list", "delta-del-number", "delta-order-nested", "delta-item-wrong", "kernel-view-wrong",
         "kernel-view-time"]


def run_readers(path: str) -> None:
    """In the subprocess: the three readers, one after the other; one JSON line per reader on stdout."""
    from overlaytui.cli import main
    from overlaytui.recording import RecordingError, load
    from overlaytui.sources.replay import ReplaySource

    real_out, real_err = sys.stdout, sys.stderr
    for command in ("snapshot", "doctor"):
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        started = time.perf_counter()
        try:
            code = main([command, "--replay", path, "--no-probe"] if command == "doctor" else
                        [command, "--replay", path])
        finally:
            sys.stdout, sys.stderr = real_out, real_err
        print(json.dumps({"reader": command, "code": code, "stderr": err.getvalue(),
                          "seconds": time.perf_counter() - started}), flush=True)
    started = time.perf_counter()
    said, damaged = "", 0
    try:
        recording = load(path)
    except RecordingError as exc:
        said = str(exc)
    else:  # the dashboard's source: every frame in order, then seeks back and forth
        source = ReplaySource(path)
        source.load(recording)
        for t in [*recording.times, recording.end, recording.start, recording.end]:
            source.seek(t)
            snap = source.snapshot()
            found = [e.message for e in snap.engines if e.hostname == "recording damaged"]
            damaged += bool(found)
            said = said or (found[0] if found else "")
    print(json.dumps({"reader": "dashboard", "code": 0, "stderr": said, "damaged_frames": damaged,
                      "seconds": time.perf_counter() - started,
                      "peak_rss": peak_rss()}), flush=True)


def peak_rss() -> int:
    """This process's peak RSS since it started (VmHWM). Not getrusage's ru_maxrss: Linux carries it across
    exec from the forking parent, so a child of a 2 GB pytest reported 2 GB whatever it did."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_recording_is_one_line_in_bounded_time_and_memory(tmp_path, case):
    path, says = make(case, tmp_path)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import sys; from tests.unit.test_hostile_recordings import "
                           "run_readers; run_readers(sys.argv[1])", str(path)], capture_output=True, text=True,
                          timeout=3 * TIME_BOUND + 15, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["reader"] for r in reports] == ["snapshot", "doctor", "dashboard"]
    for report in reports:
        assert report["seconds"] < TIME_BOUND, report
        line = report["stderr"].strip()
        assert line.count("\n") == 0 and says in line and path.name in line, report
        if report["reader"] != "dashboard":
            assert report["code"] == 2, report
        if "record" in says or report["reader"] == "dashboard" and report.get("damaged_frames"):
            assert "record " in line, report
    assert reports[-1]["peak_rss"] < MEMORY_BOUND, reports[-1]
    print(case, f"{time.perf_counter() - started:.1f} s", f"peak {reports[-1]['peak_rss'] >> 20} MiB",
          [round(r["seconds"], 2) for r in reports])


def test_the_limits_are_raised_with_a_flag_and_a_bad_one_is_one_line(tmp_path):
    path = tmp_path / "small.jsonl"
    record_demo(path, seconds=6, keyframe=3)

    def snapshot(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "overlaytui.cli", "snapshot", "--replay", str(path), *flags],
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    cut = snapshot("--recording-limits", "records=3")
    assert cut.returncode == 2 and "record 4: more than 3 records (--recording-limits records=N" in cut.stderr
    assert snapshot("--recording-limits", "records=30,depth=12").returncode == 0
    bad = snapshot("--recording-limits", "lines=3")
    assert bad.returncode == 2 and "'lines=3' is not NAME=N" in bad.stderr and "Traceback" not in bad.stderr
    shallow = subprocess.run([sys.executable, "-m", "overlaytui.cli", "doctor", "--replay", str(path), "--no-probe"],
                             capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
                             env={**os.environ, "OVERLAYTUI_RECORDING_LIMITS": "depth=3"})
    assert shallow.returncode == 2 and "nested deeper than 3 levels" in shallow.stderr


def test_what_a_hostile_record_holds_never_reaches_the_terminal_raw(tmp_path):
    from overlaytui.recording import RecordingError, load

    path = tmp_path / "esc\x1b]0;owned\x07.jsonl"
    _lines(path, [{"type": "header", "format": 1}, {"type": "key", "t": "\x1b[2J\x9b\udc9b"}])
    with pytest.raises(RecordingError) as said:
        load(path)
    line = str(said.value)
    assert "record 2: t:" in line and "\\x1b[2J" in line and "\\x1b]0;owned\\x07" in line
    assert not any(0x00 <= ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in line)
