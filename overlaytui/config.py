"""User settings in a TOML file in the platform's config directory (platformdirs): the theme, the thresholds.

OVERLAYTUI_CONFIG names another file (tests use it). Only keys overlaytui knows are written back.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from platformdirs import user_config_dir

from .analysis.thresholds import LossThresholds


def config_path() -> Path:
    override = os.environ.get("OVERLAYTUI_CONFIG")
    return Path(override) if override else Path(user_config_dir("overlaytui")) / "config.toml"


@dataclass(frozen=True)
class Config:
    theme: str | None = None
    loss: LossThresholds = LossThresholds()

    def with_theme(self, theme: str) -> Config:
        return replace(self, theme=theme)


def load_config(path: Path | None = None) -> tuple[Config, str | None]:
    """The config, and a one-line problem if the file could not be used (defaults apply then)."""
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return Config(), None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return Config(), f"config {path}: {exc} (using defaults)"
    theme = data.get("theme") if isinstance(data.get("theme"), str) else None
    raw = data.get("thresholds") if isinstance(data.get("thresholds"), dict) else {}
    try:
        loss = LossThresholds(float(raw.get("loss_good_pct", 0.01)), float(raw.get("loss_acceptable_pct", 0.1)))
    except (TypeError, ValueError):
        return Config(theme=theme), f"config {path}: thresholds must be numbers (using defaults)"
    return Config(theme=theme, loss=loss), None


def save_config(config: Config, path: Path | None = None) -> None:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    if config.theme:
        lines.append(f'theme = "{config.theme}"')
    lines += ["", "[thresholds]", f"loss_good_pct = {config.loss.good_pct!r}",
              f"loss_acceptable_pct = {config.loss.acceptable_pct!r}"]
    path.write_text("\n".join(lines).lstrip() + "\n")
