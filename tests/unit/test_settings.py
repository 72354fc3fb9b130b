"""The user's settings reach every command: flags > environment > config file > defaults, resolved once
(`settings.resolve`), and every command's verdicts, exit codes and exported values follow the thresholds they give.

The commands run on the demo's `loss` scenario: node4 loses ~2 % of the packets through it, which is bad against the
default thresholds (acceptable < 0.1 %) and acceptable with `loss_acceptable_pct = 30`."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from overlaytui.analysis.thresholds import LossThresholds
from overlaytui.cli import build_parser
from overlaytui.config import load_config
from overlaytui.exporter import OverlayCollector
from overlaytui.settings import DEFAULT_IMAGE, LAB_IMAGE, SettingsError, resolve
from overlaytui.sources.demo import DemoSource
from tests.helpers import eventually

LENIENT = "[thresholds]\nloss_good_pct = 0.01\nloss_acceptable_pct = 30\n"


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------- the precedence


def test_defaults_without_flags_environment_or_file(tmp_path):
    settings = resolve(_args("doctor"), env={}, loaded=load_config(tmp_path / "none.toml"))
    assert settings.thresholds == LossThresholds() and settings.probe_image == DEFAULT_IMAGE
    assert settings.window_s == 300 and not settings.ssh_nodes and settings.problems == ()
    assert settings.origin["thresholds"] == settings.origin["probe_image"] == "default"


def test_the_file_over_the_defaults(tmp_path):
    path = _config(tmp_path, 'probe_image = "busybox:1.36"\nprobe_window_min = 2\nssh_nodes = true\n' + LENIENT)
    settings = resolve(_args("probe"), env={}, loaded=load_config(path))
    assert settings.thresholds == LossThresholds(0.01, 30) and settings.probe_image == "busybox:1.36"
    assert settings.window_s == 120 and settings.ssh_nodes
    assert settings.origin["thresholds"] == settings.origin["window"] == "config"


def test_the_environment_over_the_file(tmp_path):
    path = _config(tmp_path, 'probe_image = "busybox:1.36"\n' + LENIENT)
    env = {"OVERLAYTUI_LOSS_ACCEPTABLE_PCT": "5", "OVERLAYTUI_PROBE_IMAGE": "alpine:3.20",
           "OVERLAYTUI_PROBE_WINDOW_MIN": "10", "OVERLAYTUI_SSH_NODES": "0"}
    settings = resolve(_args("exporter"), env=env, loaded=load_config(path))
    assert settings.thresholds == LossThresholds(0.01, 5) and settings.probe_image == "alpine:3.20"
    assert settings.window_s == 600 and settings.origin["thresholds"] == "config/environment"


def test_flags_over_everything(tmp_path):
    path = _config(tmp_path, LENIENT)
    env = {"OVERLAYTUI_LOSS_ACCEPTABLE_PCT": "5", "OVERLAYTUI_PROBE_IMAGE": "alpine:3.20"}
    args = _args("record", "out.jsonl", "--loss-good", "0.5", "--loss-acceptable", "2", "--probe-image", "mine:1",
                 "--probe-window", "1")
    settings = resolve(args, env=env, loaded=load_config(path))
    assert settings.thresholds == LossThresholds(0.5, 2) and settings.probe_image == "mine:1"
    assert settings.window_s == 60 and settings.origin["thresholds"] == "flag"


def test_the_lab_image_is_the_default_with_lab_only(tmp_path):
    loaded = load_config(tmp_path / "none.toml")
    assert resolve(_args("doctor", "--lab"), env={}, loaded=loaded).probe_image == LAB_IMAGE
    assert resolve(_args("doctor", "--lab", "--probe-image", "x:1"), env={}, loaded=loaded).probe_image == "x:1"


def test_thresholds_that_cannot_work_once_merged_are_one_line(tmp_path):
    path = _config(tmp_path, LENIENT)
    with pytest.raises(SettingsError, match=r"good from the flag, acceptable from the config"):
        resolve(_args("probe", "--loss-good", "40"), env={}, loaded=load_config(path))


def test_a_bad_environment_value_is_said_and_ignored(tmp_path):
    settings = resolve(_args("probe"), env={"OVERLAYTUI_LOSS_GOOD_PCT": "lots", "OVERLAYTUI_SSH_NODES": "maybe"},
                       loaded=load_config(tmp_path / "none.toml"))
    assert settings.thresholds == LossThresholds() and not settings.ssh_nodes
    assert [p.split("=")[0] for p in settings.problems] == ["OVERLAYTUI_LOSS_GOOD_PCT", "OVERLAYTUI_SSH_NODES"]


def test_a_flag_out_of_range_is_refused_by_the_parser():
    with pytest.raises(SystemExit):
        _args("probe", "--loss-acceptable", "100")


# ------------------------------------------------------------------------ every command follows them


def _cli(config: Path | None, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OVERLAYTUI_")}
    environ["OVERLAYTUI_CONFIG"] = str(config) if config else "/nonexistent/overlaytui.toml"
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "overlaytui.cli", *argv], capture_output=True, text=True,
                          timeout=120, env=environ, stdin=subprocess.DEVNULL)


# (command line, exit code with the defaults, exit code with the lenient config)
EXIT_CODES = [
    (("probe", "--demo", "loss"), 1, 0),
    (("probe", "--demo", "loss", "--json"), 1, 0),
    (("doctor", "--demo", "loss"), 2, 0),
    (("doctor", "--demo", "loss", "--json"), 2, 0),
]


@pytest.mark.parametrize(("argv", "default_code", "lenient_code"), EXIT_CODES, ids=[" ".join(a) for a, _d, _l
                                                                                      in EXIT_CODES])
def test_each_command_follows_the_configured_thresholds(tmp_path, argv, default_code, lenient_code):
    assert _cli(None, *argv).returncode == default_code
    lenient = _cli(_config(tmp_path, LENIENT), *argv)
    assert lenient.returncode == lenient_code, lenient.stderr
    # the environment and the flag win over the file
    assert _cli(_config(tmp_path, LENIENT), *argv, env={"OVERLAYTUI_LOSS_ACCEPTABLE_PCT": "1"}).returncode \
        == default_code
    assert _cli(_config(tmp_path, LENIENT), *argv, "--loss-acceptable", "1").returncode == default_code


def test_the_doctor_of_a_recording_follows_the_thresholds_of_now(tmp_path):
    path = tmp_path / "loss.jsonl.gz"
    recorded = _cli(None, "record", str(path), "--demo", "loss", "--duration", "2", "--every", "0.5")
    assert recorded.returncode == 0, recorded.stderr
    assert _cli(None, "doctor", "--replay", str(path)).returncode == 2
    assert _cli(_config(tmp_path, LENIENT), "doctor", "--replay", str(path)).returncode == 0


def test_the_probe_verdicts_in_json_follow_the_thresholds(tmp_path):
    import json

    strict = json.loads(_cli(None, "probe", "--demo", "loss", "--json").stdout)
    lenient = json.loads(_cli(_config(tmp_path, LENIENT), "probe", "--demo", "loss", "--json").stdout)
    assert not strict["within_thresholds"] and lenient["within_thresholds"]


def _exported(config_text: str | None, tmp_path: Path) -> str:
    """One scrape of the exporter on the demo's loss scenario, with these settings."""
    from overlaytui.commands.exporter import Exporter

    args = _args("exporter", "--demo", "loss", "--collect-every", "0.5")
    loaded = load_config(_config(tmp_path, config_text) if config_text else tmp_path / "none.toml")
    settings = resolve(args, env={}, loaded=loaded)
    exporter = Exporter(DemoSource("loss", seed=3), args, ("ping", "mtu"), settings)

    async def first_probed_state() -> None:
        run = asyncio.ensure_future(exporter.run())
        try:
            await eventually(lambda: exporter.state.findings and exporter.state.results, 30,
                             "the exporter's first probed state", interval=0.05)
        finally:
            run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    asyncio.run(first_probed_state())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverlayCollector(lambda: exporter.state))
    return generate_latest(registry).decode()


def test_the_exporters_findings_follow_the_thresholds(tmp_path):
    strict, lenient = _exported(None, tmp_path), _exported(LENIENT, tmp_path)
    assert 'overlaytui_finding{check="loss.bad",severity="error",subject="node4"} 1.0' in strict
    assert "loss.bad" not in lenient and 'check="loss.acceptable"' in lenient


async def test_the_dashboard_follows_the_thresholds(tmp_path):
    from overlaytui.app import FrameReady, OverlayApp

    for config_text, check in ((None, "loss.bad"), (LENIENT, "loss.acceptable")):
        loaded = load_config(_config(tmp_path, config_text) if config_text else tmp_path / "none.toml")
        settings = resolve(_args("--demo", "loss"), env={}, loaded=loaded)
        app = OverlayApp(DemoSource("loss", seed=3), interval=None, settings=settings, persist_config=False)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            frame = app.build_frame()
            assert check in {f.check for f in frame.findings}
            app.on_frame_ready(FrameReady(frame))
            view = app.view()
            assert view is not None and view.thresholds == settings.thresholds  # the Loss pane judges with them
