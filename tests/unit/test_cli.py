"""The command line keeps its word (issue 22) and starts in a blink (issue 26): `--at -30s` as written, a top-level
flag before a command handed to it or refused in one line, `make demo SCENARIO=bad-node` at 200 nodes, and
`--version`/`--help` without importing the engine client, ssh, the UI or the exporter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from overlaytui.cli import COMMANDS, Commands, build_parser

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("docker", "paramiko", "textual", "prometheus_client", "requests", "overlaytui.model",
         "overlaytui.producer", "overlaytui.probes", "overlaytui.sources.demo", "overlaytui.recording")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overlaytui.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _imported(*args: str) -> set[str]:
    """The modules `python -X importtime -m overlaytui.cli ARGS` imports (its stderr lists every one)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "overlaytui.cli", *args], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_no_heavy_module(flag):
    imported = _imported(flag)
    assert "overlaytui.commands.dashboard" in imported and "argparse" in imported  # the list is the real one
    heavy = sorted(m for m in imported if m.startswith(HEAVY))
    assert heavy == []


def test_a_command_imports_what_it_uses_when_it_runs():
    imported = _imported("snapshot", "--help")
    assert "overlaytui.commands.snapshot" in imported
    assert not any(m.startswith(("overlaytui.commands.probe", "overlaytui.commands.exporter", "overlaytui.lab",
                                 "textual", "prometheus_client")) for m in imported)


def test_paramiko_is_imported_only_when_a_name_of_it_is_used():
    """docker imports its paramiko transport; ours runs the ssh client: paramiko waits until something uses it."""
    imported = _imported("snapshot", "--help")
    assert "docker" in imported and not any(m.startswith(("paramiko", "cryptography")) for m in imported)
    run = subprocess.run([sys.executable, "-c", "import sys; from overlaytui.cli import defer_import; "
                          "defer_import('paramiko'); from docker.transport import sshconn; "
                          "print('paramiko.transport' in sys.modules, sshconn.paramiko.SSHClient.__module__, "
                          "type(sys.modules['paramiko']).__name__)"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert run.stdout.split() == ["False", "paramiko.client", "module"], run.stderr


def test_every_command_is_listed_with_the_line_its_module_gives():
    parser = build_parser(every_command=True)
    commands = next(a for a in parser._actions if isinstance(a, Commands))
    listed = {c.dest: c.help for c in commands._choices_actions}
    assert list(listed) == list(COMMANDS)
    assert commands.declared_help == listed
    help_text = parser.format_help()
    for name, (_, line) in COMMANDS.items():
        assert f"{name}" in help_text and line[:40] in " ".join(help_text.split())


@pytest.mark.parametrize("argv", [
    ["doctor", "--replay", "r.jsonl", "--at", "-30s"],
    ["snapshot", "--replay", "r.jsonl", "--at", "-1h30m"],
    ["--replay", "r.jsonl", "--at", "-90"],
    ["doctor", "--replay", "r.jsonl", "--at=-30s"],
])
def test_at_takes_an_offset_from_the_end_as_written(argv):
    args = build_parser().parse_args(argv)
    assert args.at == argv[-1].removeprefix("--at=") and args.replay == "r.jsonl"


def test_a_dash_value_that_is_not_an_offset_is_still_an_option():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["doctor", "--at", "-x"])


@pytest.mark.parametrize("argv, expected", [
    (["--demo", "loss", "doctor"], {"command": "doctor", "demo": "loss"}),
    (["--demo", "doctor"], {"command": "doctor", "demo": "healthy"}),
    (["--demo-scale", "20,30,100", "--seed", "3", "probe"], {"demo_scale": (20, 30, 100), "seed": 3}),
    (["--demo", "mtu", "snapshot", "--demo", "loss"], {"demo": "loss"}),  # given after the command: it wins
    (["--timeout", "3", "probe", "--timeout", "10"], {"timeout": 10.0}),  # even when it is probe's default
    (["--timeout", "3", "probe"], {"timeout": 3.0}),
    (["-H", "unix:///a.sock", "doctor", "-H", "unix:///b.sock"], {"host": ["unix:///a.sock", "unix:///b.sock"]}),
    (["--lab", "--loss-good", "0.5", "exporter"], {"lab": True, "loss_good": 0.5}),
    (["--replay", "r.jsonl", "--at", "-30s", "doctor"], {"replay": "r.jsonl", "at": "-30s"}),
    (["--probe-window", "2", "record", "f.jsonl"], {"probe_window": 2.0, "file": "f.jsonl"}),
])
def test_a_flag_before_the_command_is_handed_to_it(argv, expected):
    args = build_parser().parse_args(argv)
    assert {k: getattr(args, k) for k in expected} == expected


@pytest.mark.parametrize("argv, says", [
    (["--theme", "x", "probe"], "overlaytui: --theme is the dashboard's; `overlaytui probe` does not take it"),
    (["--demo", "lab", "status"], "overlaytui: --demo is the dashboard's; `overlaytui lab` does not take it"),
    (["--speed", "2", "doctor"], "overlaytui: --speed is the dashboard's; `overlaytui doctor` does not take it"),
    (["--interval", "2", "snapshot"],
     "overlaytui: --interval before `snapshot` is the dashboard's; `snapshot` has its own --interval: give it "
     "after `snapshot`"),
])
def test_a_flag_before_a_command_that_does_not_take_it_is_refused_in_one_line(argv, says):
    run = _cli(*argv)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [says]


def test_the_demo_flag_before_the_doctor_is_honoured():
    """`overlaytui --demo loss doctor` checks the simulated cluster (it used to check the local socket)."""
    run = _cli("--demo", "loss", "doctor", "--json")
    assert run.returncode == 2, run.stderr  # node4 loses 2 %: an error
    assert '"node4"' in run.stdout


def test_doctor_at_minus_30s_as_written_reaches_the_recording(tmp_path):
    run = _cli("doctor", "--replay", str(tmp_path / "none.jsonl"), "--at", "-30s")
    assert run.returncode == 2 and run.stderr.splitlines() == [f"overlaytui doctor: {tmp_path / 'none.jsonl'}: "
                                                                "no such file"]


@pytest.mark.parametrize("make_args, words", [
    (["SCENARIO=bad-node"], ["--demo", "bad-node", "--demo-scale", "200,300,5000"]),
    (["SCENARIO=loss"], ["--demo", "loss"]),
    (["SCENARIO=loss", "SCALE=20,30,100"], ["--demo", "loss", "--demo-scale", "20,30,100"]),
    ([], ["--demo"]),
])
def test_make_demo_bad_node_shows_200_nodes(make_args, words):
    # as a user runs it: not as a sub-make of `make test` (MAKELEVEL adds "Entering directory" lines)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    run = subprocess.run(["make", "--no-print-directory", "-n", "demo", *make_args], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    command = run.stdout.splitlines()[-1].split()
    assert command[0].endswith("/overlaytui") and command[1:] == words
    args = build_parser().parse_args(command[1:])
    assert args.demo == (words[1] if len(words) > 1 else "healthy")
    assert args.demo_scale == (tuple(int(n) for n in words[3].split(",")) if len(words) > 2 else None)
