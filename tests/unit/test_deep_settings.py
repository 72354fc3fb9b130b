"""`--deep` and `--deep-image` (issue 24): flag > environment > config file > default on every command that takes
them, the config file's keys checked and saved, and the producer reading kernels only where there are engines."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from overlaytui.cli import build_parser
from overlaytui.config import Config, load_config, save_config
from overlaytui.producer import Producer
from overlaytui.settings import resolve
from overlaytui.sources import deep
from overlaytui.sources.demo import DemoSource

COMMANDS = (("dashboard",), ("snapshot",), ("doctor",), ("exporter",), ("record", "out.jsonl"))


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _command(words: tuple[str, ...], *flags: str) -> argparse.Namespace:
    if words == ("dashboard",):
        return _args(*flags)
    return _args(words[0], *flags, *words[1:])


def _settings(tmp_path: Path, args: argparse.Namespace, env: dict[str, str], config: str = ""):
    path = tmp_path / "config.toml"
    path.write_text(config)
    return resolve(args, env=env, loaded=load_config(path))


@pytest.mark.parametrize("words", COMMANDS, ids=[w[0] for w in COMMANDS])
def test_every_command_takes_the_flags(tmp_path, words):
    off = _settings(tmp_path, _command(words), {})
    assert not off.deep and off.deep_settings() is None and off.origin["deep"] == "default"
    on = _settings(tmp_path, _command(words, "--deep", "--deep-image", "me/deep:1"), {})
    assert on.deep and on.deep_image == "me/deep:1" and on.origin["deep"] == on.origin["deep_image"] == "flag"
    assert on.deep_settings() == deep.DeepSettings("me/deep:1", 30.0)
    assert "deep view with me/deep:1 (flag" in on.describe()


def test_the_probe_command_has_no_deep_view():
    with pytest.raises(SystemExit):
        _args("probe", "--deep")


def test_flag_over_environment_over_file_over_default(tmp_path):
    config = 'deep = true\ndeep_image = "file/deep:1"\n'
    from_file = _settings(tmp_path, _args("doctor"), {}, config)
    assert from_file.deep and from_file.deep_image == "file/deep:1" and from_file.origin["deep"] == "config"
    env = {"OVERLAYTUI_DEEP": "1", "OVERLAYTUI_DEEP_IMAGE": "env/deep:1"}
    from_env = _settings(tmp_path, _args("doctor"), env, config)
    assert from_env.deep_image == "env/deep:1" and from_env.origin["deep_image"] == "environment"
    from_flag = _settings(tmp_path, _args("doctor", "--deep-image", "flag/deep:1"), env, config)
    assert from_flag.deep_image == "flag/deep:1"
    off_in_env = _settings(tmp_path, _args("doctor"), {"OVERLAYTUI_DEEP": "off"}, config)
    assert not off_in_env.deep and off_in_env.origin["deep"] == "environment"


def test_the_lab_defaults_to_its_own_image(tmp_path):
    settings = _settings(tmp_path, _args("snapshot", "--lab", "--deep"), {})
    assert settings.deep_image == deep.LAB_IMAGE == "overlaytui/deep:lab"
    assert _settings(tmp_path, _args("snapshot", "--deep"), {}).deep_image == deep.DEFAULT_IMAGE


def test_unusable_values_are_said_and_ignored(tmp_path):
    env = {"OVERLAYTUI_DEEP": "maybe", "OVERLAYTUI_DEEP_IMAGE": "two words"}
    settings = _settings(tmp_path, _args("doctor"), env, 'deep = "yes"\ndeep_image = "a\\tb"\n')
    assert not settings.deep and settings.deep_image == deep.DEFAULT_IMAGE
    said = " | ".join(settings.problems)
    assert "OVERLAYTUI_DEEP='maybe'" in said and "OVERLAYTUI_DEEP_IMAGE" in said
    _config, problem = load_config(_write(tmp_path, 'deep = "yes"\ndeep_image = "a\\tb"\n'))
    assert "deep must be true or false" in problem and "deep_image must be an image reference" in problem


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "other.toml"
    path.write_text(text)
    return path


def test_the_config_keeps_the_deep_settings_when_saved(tmp_path):
    path = tmp_path / "saved.toml"
    save_config(Config(theme="t", deep=True, deep_image="me/deep:2"), path)
    loaded, problem = load_config(path)
    assert problem is None and loaded.deep and loaded.deep_image == "me/deep:2"
    assert {"deep", "deep_image"} <= loaded.given


def test_the_demo_has_no_kernels_to_read():
    async def run():
        producer = Producer(DemoSource("healthy", seed=1), interval=None, deep=deep.DeepSettings("x"))
        try:
            assert await producer.start()
            update = await producer.frame_now()
            assert not producer.can_read_deep and producer.deep_raw is None
            assert await producer.deep_round() is None
            return update
        finally:
            await producer.close()
    assert asyncio.run(run()).frame.snapshot.nodes


def test_serve_hands_its_deep_view_to_its_producer(monkeypatch):
    """`serve --deep` was taken and dropped: its producer (every viewer's frames) read no kernel."""
    from overlaytui.commands import serve

    made = []

    class Stage:
        def __init__(self, make_producer, **_options) -> None:
            self.make_producer = make_producer

        async def run(self) -> int:
            made.append(self.make_producer(lambda severity, text: None))
            return 0

    monkeypatch.setattr(serve, "Stage", Stage)
    monkeypatch.setenv("OVERLAYTUI_CONFIG", "/nonexistent/overlaytui.toml")
    args = _args("serve", "--demo", "--deep", "--deep-image", "me/deep:1")
    assert args.handler(args) == 0
    assert made and made[0].deep == deep.DeepSettings("me/deep:1", 30.0)


def test_deep_without_engines_is_said_not_dropped():
    said: list[tuple[str, str]] = []

    async def run():
        producer = Producer(DemoSource("healthy", seed=1), interval=None, deep=deep.DeepSettings("x"),
                            say=lambda severity, text: said.append((severity, text)))
        try:
            assert await producer.start()
        finally:
            await producer.close()
    asyncio.run(run())
    assert [severity for severity, text in said if text.startswith("--deep: no engines")] == ["warning"]
