"""User settings in a TOML file in the platform's config directory (platformdirs): the theme, the thresholds,
`ssh_nodes = true` (as --ssh-nodes), `probe_image`, `probe_window_min` and a `[nodes]` table (hostname = "endpoint": a node's engine where its swarm
address is not the way in, behind NAT or a bastion).

OVERLAYTUI_CONFIG names another file (tests use it). Only keys overlaytui knows are written back. Commands never
read this file themselves: `settings.resolve` merges it with the flags and the environment.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from platformdirs import user_config_dir

from .analysis.thresholds import LossThresholds

ENDPOINT_SCHEMES = ("ssh://", "tcp://", "unix://")


def config_path() -> Path:
    override = os.environ.get("OVERLAYTUI_CONFIG")
    return Path(override) if override else Path(user_config_dir("overlaytui")) / "config.toml"


@dataclass(frozen=True)
class Config:
    theme: str | None = None
    loss: LossThresholds = LossThresholds()
    ssh_nodes: bool = False
    nodes: tuple[tuple[str, str], ...] = ()  # hostname -> engine endpoint
    probe_image: str | None = None
    probe_window_min: float | None = None
    given: frozenset[str] = frozenset()  # the keys the file set (settings.py: flag > environment > file > default)

    def with_theme(self, theme: str) -> Config:
        return replace(self, theme=theme)


def load_config(path: Path | None = None) -> tuple[Config, str | None]:
    """The config, and a one-line problem if the file could not be used (defaults apply then)."""
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return Config(), None
    except UnicodeDecodeError:
        return Config(), f"config {path}: not UTF-8 text (using defaults)"
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return Config(), f"config {path}: {exc} (using defaults)"
    theme = data.get("theme") if isinstance(data.get("theme"), str) else None
    ssh_nodes = data.get("ssh_nodes") is True
    table = data.get("nodes") if isinstance(data.get("nodes"), dict) else {}
    nodes = tuple(sorted((str(k), v) for k, v in table.items() if isinstance(v, str)))
    bad = sorted(str(k) for k, v in table.items() if not isinstance(v, str) or not v.startswith(ENDPOINT_SCHEMES))
    image = data.get("probe_image")
    image = image if isinstance(image, str) and image and len(image) <= 255 and image.isprintable() \
        and not any(c.isspace() for c in image) else None
    window = data.get("probe_window_min")
    window = float(window) if isinstance(window, int | float) and not isinstance(window, bool) \
        and math.isfinite(window) and 0.1 <= window <= 1440 else None
    given = frozenset(k for k in ("theme", "thresholds", "ssh_nodes", "nodes", "probe_image", "probe_window_min")
                      if k in data)
    base = Config(theme=theme, ssh_nodes=ssh_nodes, nodes=tuple((k, v) for k, v in nodes if k not in bad),
                  probe_image=image, probe_window_min=window, given=given)
    raw = data.get("thresholds") if isinstance(data.get("thresholds"), dict) else {}
    good, acceptable = raw.get("loss_good_pct", 0.01), raw.get("loss_acceptable_pct", 0.1)
    problem = threshold_problem(good, acceptable)
    if problem:
        return replace(base, given=given - {"thresholds"}), f"config {path}: {problem} (using the default thresholds)"
    if bad:
        return replace(base, loss=LossThresholds(float(good), float(acceptable))), (
            f"config {path}: [nodes] {', '.join(bad)}: not an engine URL (ssh://, tcp://, unix://): left out")
    return replace(base, loss=LossThresholds(float(good), float(acceptable))), None


def threshold_problem(good: object, acceptable: object) -> str:
    """Why these loss thresholds cannot be used, or "": numbers (not booleans), finite, 0 < good < acceptable
    < 100 — a good threshold of 0 could never be met, one of 100 % would call total loss good."""
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (good, acceptable)):
        return "thresholds must be numbers"
    if not all(math.isfinite(v) for v in (good, acceptable)):
        return "thresholds must be finite"
    if not 0 < good < acceptable < 100:
        return f"thresholds need 0 < loss_good_pct < loss_acceptable_pct < 100 (got {good:g} and {acceptable:g})"
    return ""


def save_config(config: Config, path: Path | None = None) -> None:
    """Written atomically (a temporary file renamed over the old one): a crash never leaves half a config."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    if config.theme:
        lines.append(f"theme = {json.dumps(config.theme)}")  # a TOML basic string: JSON's escapes are TOML's
    if config.ssh_nodes:
        lines.append("ssh_nodes = true")
    if config.probe_image:
        lines.append(f"probe_image = {json.dumps(config.probe_image)}")
    if config.probe_window_min is not None:
        lines.append(f"probe_window_min = {config.probe_window_min!r}")
    lines += ["", "[thresholds]", f"loss_good_pct = {config.loss.good_pct!r}",
              f"loss_acceptable_pct = {config.loss.acceptable_pct!r}"]
    if config.nodes:
        lines += ["", "[nodes]"] + [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in config.nodes]
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines).lstrip() + "\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
