"""The recording codec's edges (overlaytui/recording.py `encode` / `decode`): what each type accepts, exactly at its
bounds, and the one-line error that names what did not fit — a recording is untrusted input."""

from __future__ import annotations

import enum
import math

import pytest

from overlaytui.model import Coverage, Health, Network, PairGap, PairWindow, ProbeResult
from overlaytui.recording import MAX_INT, MAX_NUMBER, MAX_TIME, RecordingError, decode, encode


def refused(kind, data) -> str:
    with pytest.raises(RecordingError) as caught:
        decode(kind, data)
    return str(caught.value)


def test_numbers_at_their_bounds():
    assert decode(float, MAX_NUMBER) == MAX_NUMBER and decode(float, -MAX_NUMBER) == -MAX_NUMBER
    assert decode(float, 3) == 3.0 and type(decode(float, 3)) is float
    assert decode(float, int(MAX_NUMBER)) == MAX_NUMBER
    for bad in (MAX_NUMBER * 10, -MAX_NUMBER * 10, math.nan, math.inf, int(MAX_NUMBER) + 1, "1", True, None):
        assert refused(float, bad).startswith("expected a number, got "), bad
    assert refused(float, "x" * 100) == "expected a number, got " + "x" * 40
    assert decode(int, MAX_INT) == MAX_INT and decode(int, -MAX_INT) == -MAX_INT
    for bad in (MAX_INT + 1, -MAX_INT - 1, 1.0, True, "1"):
        assert refused(int, bad).startswith("expected an integer, got "), bad


def test_text_and_booleans():
    assert decode(str, "node1") == "node1" and decode(str, "") == ""
    name = "n" * 64
    assert decode(str, "".join(name)) is decode(str, "".join(name))  # short names interned: one object each
    long = "n" * 65
    assert decode(str, "".join(long)) == long and decode(str, "".join(long)) is not decode(str, "".join(long))
    assert refused(str, 1) == "expected str, got 1"
    assert decode(bool, False) is False and decode(bool, True) is True
    assert refused(bool, 1) == "expected bool, got 1" and refused(bool, None) == "expected bool, got None"


def test_tuples_unions_and_mappings():
    assert decode(tuple[int, ...], [1, 2]) == (1, 2) and decode(tuple[int, ...], []) == ()
    assert refused(tuple[int, ...], (1, 2)).endswith("expected a list for tuple[int, ...], got tuple")
    assert decode(tuple[int, str], [1, "a"]) == (1, "a")
    assert refused(tuple[int, str], [1]).endswith("expected a list of 2 for tuple[int, str]")
    assert refused(tuple[int, str], [1, "a", 2]).endswith("expected a list of 2 for tuple[int, str]")
    assert refused(tuple[int, str], {"a": 1}).endswith("expected a list of 2 for tuple[int, str]")
    assert decode(int | None, None) is None and decode(int | None, 4) == 4
    assert decode(tuple[int, int] | str | None, [1, 2]) == (1, 2)
    assert decode(tuple[int, int] | str | None, "x") == "x" and decode(tuple[int, int] | str | None, None) is None
    assert "no type of tuple[int, int] | str | None fits 1.5" in refused(tuple[int, int] | str | None, 1.5)
    assert decode(dict[str, int], {"a": 1}) == {"a": 1}
    assert refused(dict[str, int], [1]).endswith("expected an object for dict[str, int]")
    assert "expected an integer" in refused(dict[str, int], {"a": "b"})


def test_dataclasses_and_enums():
    gap = decode(PairGap, {"src_node": "a", "dst_node": "b", "reason": "r", "unknown": 1})  # unknown keys ignored
    assert gap == PairGap("a", "b", "r")
    assert refused(PairGap, ["a"]) == "expected an object for PairGap"
    assert refused(PairGap, {"src_node": "a"}).startswith("PairGap: ")  # the missing fields named
    assert "missing 2 required positional arguments" in refused(PairGap, {"src_node": "a"})
    assert decode(Health, "ok") is Health.OK
    assert refused(Health, "fine") == "Health: 'fine' is not a valid Health"  # a ValueError, named
    coverage = Coverage("n", "ping", 2, 1, (PairGap("a", "b", "why"),))
    assert decode(Coverage, encode(coverage)) == coverage


def test_times_are_times_of_a_recording():
    result = ProbeResult("ping", "n", "a", "b", 0.0, sent=1, received=1)
    assert decode(ProbeResult, encode(result)).measured_at == 0.0
    at_end = decode(ProbeResult, encode(result) | {"measured_at": MAX_TIME})
    assert at_end.measured_at == MAX_TIME and type(decode(ProbeResult, encode(result) | {"measured_at": 5})
                                                      .measured_at) is float
    for bad in (-1, MAX_TIME * 2):
        assert refused(ProbeResult, encode(result) | {"measured_at": bad}) == (
            f"the time {float(bad)} is not a time of a recording")


class Colour(enum.Enum):
    RED = "red"


def test_encode_shapes_and_redaction():
    def upper(text: str) -> str:
        return text.upper()
    net = Network("id1", "front", "overlay", "swarm", None, None, 7, None, False, False, False, False,
                  labels=(("team", "web"),))
    data = encode(net, upper)
    assert data["name"] == "FRONT" and data["driver"] == "overlay" and data["scope"] == "swarm"  # words stay
    assert data["labels"] == [["TEAM", "WEB"]] and data["vni"] == 7 and data["encrypted"] is False
    assert encode(net)["name"] == "front"
    assert encode({"a": (1, Colour.RED), 2: [Health.OK]}, upper) == {"A": [1, "red"], "2": ["ok"]}
    assert encode({"a": "b"}) == {"a": "b"} and encode([1.5, None]) == [1.5, None]
    window = PairWindow("n", "a", "b", 1, 1, 2, 2, 3, 3, 300.0)
    assert decode(PairWindow, encode(window)) == window

    class Name(str):
        pass
    assert encode(Name("x"), upper) == "X" and encode(Name("x")) == "x"
    assert encode(frozenset()) == frozenset()  # anything else is left as it is


# ----------------------------------------------------------------------------------- limits and writing


def test_recording_limits_parse_and_bound():
    from overlaytui.recording import Limits

    assert Limits.parse(None) == Limits() == Limits.parse("") == Limits.parse(" , ")
    assert Limits.parse(" line_mb = 512 ,records=20000000") == Limits(line_mb=512, records=20_000_000)
    assert Limits.parse("depth=0").depth == 1 and Limits.parse(f"moments={1 << 50}").moments == 1 << 40
    for bad in ("depth", "depth=x", "width=3", "depth=-1", "depth=1.5"):
        with pytest.raises(ValueError) as caught:
            Limits.parse(f"records=5,{bad}")
        assert str(caught.value) == (f"recording limits: {bad!r} is not NAME=N (line_mb, records, depth, moments)")


def test_the_limits_of_this_run(monkeypatch):
    import argparse

    from overlaytui import recording

    monkeypatch.setattr(recording, "_chosen", None)
    monkeypatch.setenv("OVERLAYTUI_RECORDING_LIMITS", "records=7")
    assert recording.default_limits() == recording.Limits(records=7)
    monkeypatch.setenv("OVERLAYTUI_RECORDING_LIMITS", "records=seven")
    assert recording.default_limits() == recording.Limits()  # a wrong environment is not a reason to fail
    assert recording.limits_flag("depth=9") == recording.Limits(depth=9)
    assert recording.default_limits() == recording.Limits(depth=9)  # the flag wins over the environment
    with pytest.raises(argparse.ArgumentTypeError, match="'depth=x' is not NAME=N"):
        recording.limits_flag("depth=x")


class FullDisk:
    def __init__(self, errno_: int) -> None:
        self.errno, self.closed = errno_, False

    def write(self, text: str) -> int:
        raise OSError(self.errno, "No space left on device")

    def flush(self) -> None:
        raise OSError(self.errno, "No space left on device")

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(("errno_", "why"), [
    (28, "the disk is full"), (122, "the disk quota is used up"),
    (27, "the file reached the largest size allowed (file system or ulimit -f)"), (5, "No space left on device")])
def test_a_write_that_fails_is_one_line_and_closes_the_file(tmp_path, errno_, why):
    from overlaytui.recording import Recorder

    recorder = Recorder(tmp_path / "r.jsonl", source="x")
    recorder._out.close()
    recorder._out = FullDisk(errno_)
    with pytest.raises(RecordingError) as caught:
        recorder.flush()
    said = f"cannot write {tmp_path / 'r.jsonl'}: {why}; the 0 frames written replay"
    assert str(caught.value) == said and recorder.failure == said and recorder._out.closed
    with pytest.raises(RecordingError, match="^cannot write "):
        recorder.flush()  # said again, never written again
    with pytest.raises(RecordingError, match="^cannot write "):
        recorder._write({"type": "x"})


def test_where_a_recording_cannot_be_written(tmp_path):
    from overlaytui.recording import Recorder

    (tmp_path / "there.jsonl").write_text("")
    with pytest.raises(RecordingError, match=r"there\.jsonl exists: overlaytui never writes over a file$"):
        Recorder(tmp_path / "there.jsonl", source="x")
    with pytest.raises(RecordingError, match=r"^cannot write .*/missing/r\.jsonl: No such file or directory$"):
        Recorder(tmp_path / "missing" / "r.jsonl", source="x")
