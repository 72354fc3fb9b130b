"""Careless or hostile input: config files, numeric flags, malformed engine answers, leftover probe services
that are not ours, screenshots over existing files. Each gets a clear line or is skipped, never a crash."""

from __future__ import annotations

import math

import pytest

from overlaytui.analysis.thresholds import LossThresholds
from overlaytui.cli import build_parser
from overlaytui.config import Config, load_config, save_config


@pytest.mark.parametrize("body, problem", [
    ("[thresholds]\nloss_good_pct = 0\n", "0 < loss_good_pct"),
    ("[thresholds]\nloss_good_pct = 100\nloss_acceptable_pct = 200\n", "< 100"),
    ("[thresholds]\nloss_good_pct = nan\n", "finite"),
    ("[thresholds]\nloss_acceptable_pct = inf\n", "finite"),
    ("[thresholds]\nloss_good_pct = -1\n", "0 < loss_good_pct"),
    ("[thresholds]\nloss_good_pct = 0.5\nloss_acceptable_pct = 0.1\n", "loss_good_pct < loss_acceptable_pct"),
    ("[thresholds]\nloss_good_pct = true\n", "numbers"),
    ("[thresholds]\nloss_good_pct = \"0.01\"\n", "numbers"),
    ("theme = [\n", "using defaults"),
])
def test_bad_thresholds_fall_back_to_the_defaults_with_one_line(tmp_path, body, problem):
    path = tmp_path / "config.toml"
    path.write_text('theme = "overlaytui-light"\n' + body if not body.startswith("theme") else body)
    config, said = load_config(path)
    assert config.loss == LossThresholds() and said and problem in said and "\n" not in said


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"theme = \"\xff\xfe\"\n")
    config, said = load_config(path)
    assert config == Config() and said.endswith("not UTF-8 text (using defaults)")


def test_config_is_written_atomically_and_round_trips_odd_theme_names(tmp_path):
    path = tmp_path / "sub" / "config.toml"
    odd = 'say "hi" \\ [b]'
    save_config(Config(theme=odd, loss=LossThresholds(0.02, 0.2)), path)
    assert load_config(path) == (Config(theme=odd, loss=LossThresholds(0.02, 0.2)), None)
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temporary file left


@pytest.mark.parametrize("argv", [
    ["--demo", "--interval", "nan"], ["--demo", "--interval", "inf"], ["--demo", "--interval", "0"],
    ["--demo", "--interval", "-1"], ["--demo", "--interval", "0.0001"], ["--demo", "--reconcile", "0"],
    ["--demo", "--timeout", "nan"], ["--demo", "--probe-every", "0"], ["--demo-scale", "100000,1,1"],
    ["--demo-scale", "5,1,10000000"], ["snapshot", "--watch", "inf"], ["snapshot", "--watch", "0"],
    ["snapshot", "--interval", "nan"], ["snapshot", "--timeout", "-5"], ["probe", "--count", "0"],
    ["probe", "--interval", "nan"], ["probe", "--timeout", "inf"], ["probe", "--concurrency", "0"],
    ["doctor", "--count", "-3"], ["doctor", "--interval", "0"], ["doctor", "--timeout", "0"],
])
def test_numeric_flags_out_of_bounds_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "must be between" in err or "NODES 1..1000" in err


def test_numeric_flags_in_bounds_parse():
    args = build_parser().parse_args(["--demo", "--interval", "0.5", "--demo-scale", "200,300,5000"])
    assert args.interval == 0.5 and args.demo_scale == (200, 300, 5000) and not math.isnan(args.reconcile)


def test_malformed_containers_are_skipped_with_a_problem_line():
    from overlaytui.model import Engine, Health
    from overlaytui.sources.assemble import EnginePoll, assemble

    containers = ({"Id": "good", "Names": ["/ok"], "Labels": {}},
                  {"Id": "bad1", "Names": ["/x"], "Labels": ["not", "a", "dict"]},
                  {"Id": "bad2", "Names": 5, "Labels": {}})
    poll = EnginePoll("unix:///e", {}, containers, (), {}, {}, ())
    snap = assemble(taken_at=1.0, engines=[Engine("unix:///e", Health.OK)], swarm=None, polls={"unix:///e": poll},
                    samples={})
    assert [c.container_id for c in snap.containers] == ["good"]
    assert len([p for p in snap.problems if p.startswith("unix:///e: skipped a container")]) == 2
