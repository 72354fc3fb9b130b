"""User settings in a TOML file in the platform's config directory (platformdirs): the theme, the thresholds,
`ssh_nodes = true` (as --ssh-nodes), `probe_image`, `probe_window_min` and a `[nodes]` table (hostname =
"endpoint": a node's engine where its swarm address is not the way in, behind NAT or a bastion).

OVERLAYTUI_CONFIG names another file (tests use it). Only keys overlaytui knows are written back. Commands never
read this file themselves: `settings.resolve` merges it with the flags and the environment.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from platformdirs import user_config_dir

from .analysis.thresholds import LossThresholds
from .safe import one_line

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
    deep: bool = False  # `deep = true`: as --deep
    deep_image: str | None = None
    # the keys the file set (settings.py: flag > environment > file > default); not part of what the config says
    given: frozenset[str] = field(default=frozenset(), compare=False)

    def with_theme(self, theme: str) -> Config:
        return replace(self, theme=theme)


MAX_CONFIG_BYTES = 1 << 20  # a config is a few lines: a bigger file is refused before it is parsed
MAX_NODES = 10_000  # entries of [nodes] (one per swarm node)


def _read_bounded(path: Path) -> bytes:
    """The file's bytes: a regular file only (a FIFO would block forever, /dev/zero never ends), at most
    MAX_CONFIG_BYTES. Raises OSError or ValueError with the reason."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"larger than {MAX_CONFIG_BYTES // 1024} KiB")
    return data


KINDS = {"theme": "a string", "ssh_nodes": "true or false", "nodes": "a table", "thresholds": "a table",
         "probe_image": "a string", "probe_window_min": "a number", "deep": "true or false",
         "deep_image": "a string"}


def _kind(value: object) -> str:
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number", dict: "a table",
            list: "an array"}.get(type(value), type(value).__name__)


def load_config(path: Path | None = None) -> tuple[Config, str | None]:
    """The config, and one line saying what could not be used (defaults apply to it), or None. Bounded: a
    regular file of at most 1 MiB, parsed in linear time; a nesting too deep, a wrong type anywhere, a bad
    endpoint: all said in that one line, every value from the file made displayable (`safe.one_line`)."""
    path = path or config_path()
    where = f"config {one_line(path)}"
    try:
        data = tomllib.loads(_read_bounded(path).decode("utf-8"))
    except FileNotFoundError:
        return Config(), None
    except UnicodeDecodeError:
        return Config(), f"{where}: not UTF-8 text (using defaults)"
    except RecursionError:
        return Config(), f"{where}: nested too deeply (using defaults)"
    except ValueError as exc:  # tomllib.TOMLDecodeError is one
        return Config(), f"{where}: {one_line(exc)} (using defaults)"
    except OSError as exc:
        return Config(), f"{where}: {one_line(exc.strerror or exc)} (using defaults)"
    problems: list[str] = []

    def typed(key: str, kind: type, default):
        value = data.get(key, default)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            problems.append(f"{key} must be {KINDS.get(key, 'something else')}, not {_kind(value)} (ignored)")
            return default
        return value

    theme = typed("theme", str, None) if "theme" in data else None
    ssh_nodes = typed("ssh_nodes", bool, False)
    table = typed("nodes", dict, {})
    raw = typed("thresholds", dict, {})
    nodes: list[tuple[str, str]] = []
    bad: list[str] = []
    for key, value in table.items():
        if isinstance(value, str) and value.startswith(ENDPOINT_SCHEMES) and len(nodes) < MAX_NODES:
            nodes.append((key, value))
        else:
            bad.append(key)
    image = _image(typed("probe_image", str, None) if "probe_image" in data else None, "probe_image", problems)
    deep = typed("deep", bool, False)
    deep_image = _image(typed("deep_image", str, None) if "deep_image" in data else None, "deep_image", problems)
    window = typed("probe_window_min", int | float, None) if "probe_window_min" in data else None
    if window is not None and not (_finite(window) and 0.1 <= window <= 1440):
        problems.append("probe_window_min must be between 0.1 and 1440 (ignored)")
        window = None
    given = frozenset(k for k in ("theme", "thresholds", "ssh_nodes", "nodes", "probe_image", "probe_window_min",
                                  "deep", "deep_image") if k in data)
    base = Config(theme=theme, ssh_nodes=ssh_nodes, nodes=tuple(sorted(nodes)), probe_image=image,
                  probe_window_min=None if window is None else float(window), deep=deep, deep_image=deep_image,
                  given=given)
    if bad:
        shown = ", ".join(one_line(k)[:80] for k in sorted(bad)[:5]) + (f" and {len(bad) - 5} more"
                                                                        if len(bad) > 5 else "")
        limit = f" (or beyond {MAX_NODES} entries)" if len(nodes) >= MAX_NODES else ""
        problems.append(f"[nodes] {shown}: not an engine URL (ssh://, tcp://, unix://){limit}: left out")
    good, acceptable = raw.get("loss_good_pct", 0.01), raw.get("loss_acceptable_pct", 0.1)
    problem = threshold_problem(good, acceptable)
    if problem:
        problems.insert(0, f"{problem} (using the default thresholds)")
        base = replace(base, given=given - {"thresholds"})
    else:
        base = replace(base, loss=LossThresholds(float(good), float(acceptable)))
    return base, (f"{where}: {'; '.join(problems)}" if problems else None)


def _image(image: str | None, key: str, problems: list[str]) -> str | None:
    """An image reference from the file, else None with the problem said."""
    if image is not None and not (image and len(image) <= 255 and image.isprintable()
                                  and not any(c.isspace() for c in image)):
        problems.append(f"{key} must be an image reference (no spaces or controls, at most 255 characters) "
                        "(ignored)")
        return None
    return image


def _finite(value: int | float) -> bool:
    """A finite number that fits a float (an integer of 400 digits does not: float() would raise)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def threshold_problem(good: object, acceptable: object) -> str:
    """Why these loss thresholds cannot be used, or "": numbers (not booleans), finite, 0 < good < acceptable
    < 100 — a good threshold of 0 could never be met, one of 100 % would call total loss good."""
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (good, acceptable)):
        return "thresholds must be numbers"
    if not all(_finite(v) for v in (good, acceptable)):
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
    if config.deep:
        lines.append("deep = true")
    if config.deep_image:
        lines.append(f"deep_image = {json.dumps(config.deep_image)}")
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
