"""Issue 23: text from the cluster, a recording or the config never reaches the terminal raw — one sanitiser
(`overlaytui.safe`), checked for any string; config files bounded and every wrong type said in one line."""

from __future__ import annotations

import os
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overlaytui.config import MAX_CONFIG_BYTES, load_config
from overlaytui.export import summary_text
from overlaytui.model import ClusterSnapshot, Engine, Health, Node
from overlaytui.safe import PrintableStream, display, one_line, printable

FORBIDDEN = {*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)}


C1_IN_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")  # U+0080-U+009F as UTF-8 (other bytes 0x80-0x9f continue a character)


def _clean(text: str, newline_ok: bool) -> bool:
    data = text.encode("utf-8", errors="strict")  # raises on a lone surrogate
    controls = bytes(b for b in range(0x20) if not (newline_ok and b == 0x0A)) + b"\x7f"
    return (all(ord(c) not in FORBIDDEN or (newline_ok and c == "\n") for c in text)
            and not any(b in controls for b in data) and not C1_IN_UTF8.search(data))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=80)
       | st.lists(st.sampled_from(["\udc9b", "\ud800", "\x1b", "\x9b", "\n", "\r", "\x00", "\x7f", "\u202e", "a",
                                   "é", "\ufeff"]), max_size=30).map("".join))
def test_the_displayed_form_of_any_string_has_no_control_and_encodes_strictly(text):
    # characters, not UTF-8 bytes: UTF-8 encodes every non-ASCII character with bytes 0x80-0xbf
    assert _clean(display(text), newline_ok=False)
    assert _clean(one_line(text), newline_ok=False) and "\n" not in one_line(text)
    assert _clean(printable(text), newline_ok=True)
    for c in text:  # nothing removed silently: each unsafe character leaves a visible escape
        if ord(c) in FORBIDDEN and c != "\n" or 0xD800 <= ord(c) <= 0xDFFF:
            assert f"\\{'x' if ord(c) < 0x100 else 'u'}{ord(c):0{2 if ord(c) < 0x100 else 4}x}" in one_line(text)


def test_a_lone_surrogate_on_a_strict_stream_is_an_escape_not_a_traceback(tmp_path):
    with open(tmp_path / "out", "w", encoding="utf-8", errors="strict") as raw:
        PrintableStream(raw).write("node-\udc9b-\x9b[2J\n")
    assert (tmp_path / "out").read_bytes() == b"node-\\udc9b-\\x9b[2J\n"


def test_a_newline_inside_a_name_never_starts_a_line_of_the_summary():
    forged = "web\nERROR   swarm.down           everything: forged"
    snap = ClusterSnapshot(taken_at=1.8e9, engines=(Engine("unix:///x", Health.OK, hostname=forged,
                                                            updated_at=1.8e9),),
                           nodes=(Node("n1", forged, "manager", "ready", "active", "10.0.0.1"),))
    text = summary_text(snap)
    assert not any(line.startswith("ERROR") for line in text.splitlines())
    assert "web\\x0aERROR" in text


# ------------------------------------------------------------------------------------------------ config


def test_escape_codes_in_nodes_keys_are_said_visibly_in_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[nodes]\n"\\u001b]0;owned\\u0007" = "nope"\n"\\u009b2J\\n" = 3\n', encoding="utf-8")
    config, said = load_config(path)
    assert config.nodes == () and said and _clean(said, newline_ok=False)
    assert "\\x1b]0;owned\\x07" in said and "\\x9b2J\\x0a" in said


@pytest.mark.parametrize("body, says", [
    ('ssh_nodes = "yes"\n', "ssh_nodes must be true or false, not a string"),
    ("nodes = 3\n", "nodes must be a table, not a number"),
    ('thresholds = "low"\n', "thresholds must be a table, not a string"),
    ("theme = 7\n", "theme must be a string, not a number"),
    ("probe_window_min = 10e400\n", "probe_window_min must be between"),
    ("[thresholds]\nloss_good_pct = " + "9" * 400 + "\n", "thresholds must be finite"),
])
def test_every_wrong_type_is_said(tmp_path, body, says):
    path = tmp_path / "config.toml"
    path.write_text(body)
    _config, said = load_config(path)
    assert said and says in said and "\n" not in said


def test_several_problems_are_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('ssh_nodes = 1\ntheme = []\n[nodes]\nbad = "http://x"\n')
    _config, said = load_config(path)
    assert said.count("\n") == 0 and "ssh_nodes" in said and "theme" in said and "[nodes] bad" in said


def test_deeply_nested_toml_is_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    config, said = load_config(path)
    assert said and "\n" not in said and ("nested too deeply" in said or "using defaults" in said)


def test_a_big_config_is_refused_before_parsing(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    _config, said = load_config(path)
    assert said and "larger than" in said


def test_40k_bad_nodes_entries_take_linear_time(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[nodes]\n" + "".join(f'n{i} = "http://{i}"\n' for i in range(40_000)))
    started = time.perf_counter()
    config, said = load_config(path)
    assert time.perf_counter() - started < 5.0  # ~0.4 s here; the quadratic membership test took 8 s
    assert config.nodes == () and "and 39995 more" in said


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_config_that_is_not_a_regular_file_is_one_line_not_a_hang(tmp_path, kind):
    path = tmp_path / "config.toml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    started = time.perf_counter()
    _config, said = load_config(path)
    assert time.perf_counter() - started < 2.0 and said and "not a regular file" in said


def test_a_newline_inside_a_name_never_starts_a_line_of_the_doctor_report():
    from overlaytui.analysis.findings import Finding, Severity
    from overlaytui.commands.doctor import report_text

    forged = "node1\nERROR   swarm.down           all: forged"
    finding = Finding("node.down", Severity.WARNING, "node", forged, f"{forged} is down", "e", "r", "n1")
    text = report_text([finding], ClusterSnapshot(1.8e9, ()))
    assert [line for line in text.splitlines() if line.startswith("ERROR")] == []
