"""The user's settings, built once per command from flags > environment > config file > defaults, and passed to
everything that judges, probes or connects. No command reads the config or the environment for these itself.

- loss thresholds: --loss-good PCT / --loss-acceptable PCT; OVERLAYTUI_LOSS_GOOD_PCT /
  OVERLAYTUI_LOSS_ACCEPTABLE_PCT; [thresholds] loss_good_pct / loss_acceptable_pct; 0.01 / 0.1
- probe image: --probe-image IMAGE; OVERLAYTUI_PROBE_IMAGE; probe_image; nicolaka/netshoot (the lab's with --lab)
- recent window: --probe-window MIN; OVERLAYTUI_PROBE_WINDOW_MIN; probe_window_min; 5
- ssh nodes: --ssh-nodes; OVERLAYTUI_SSH_NODES=1; ssh_nodes = true; off
- deep view: --deep; OVERLAYTUI_DEEP=1; deep = true; off
- deep view's image: --deep-image IMAGE; OVERLAYTUI_DEEP_IMAGE; deep_image; nicolaka/netshoot (the lab's with --lab)
- node endpoints: the config's [nodes] table (hostname = "ssh://..."); none
- theme (the dashboard): --theme; the config's theme (t saves it); overlaytui-dark
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .analysis.thresholds import LossThresholds
from .config import Config, load_config, threshold_problem
from .flags import RECONCILE as RECONCILE  # declared in flags.py (cheap for --help); producer and app read it here
from .flags import pct
from .sources import deep as deep_view

DEFAULT_IMAGE = "nicolaka/netshoot"
LAB_IMAGE = "overlaytui/probe:lab"
DEFAULT_WINDOW_MIN = 5.0
ENV = {
    "loss_good_pct": "OVERLAYTUI_LOSS_GOOD_PCT",
    "loss_acceptable_pct": "OVERLAYTUI_LOSS_ACCEPTABLE_PCT",
    "probe_image": "OVERLAYTUI_PROBE_IMAGE",
    "probe_window_min": "OVERLAYTUI_PROBE_WINDOW_MIN",
    "ssh_nodes": "OVERLAYTUI_SSH_NODES",
    "deep": "OVERLAYTUI_DEEP",
    "deep_image": "OVERLAYTUI_DEEP_IMAGE",
}
WHERE = "flag > environment > config file > default"


class SettingsError(ValueError):
    """Settings that cannot be used (one line, said before anything connects)."""


@dataclass(frozen=True)
class Settings:
    thresholds: LossThresholds = LossThresholds()
    probe_image: str = DEFAULT_IMAGE
    window_s: float = DEFAULT_WINDOW_MIN * 60
    ssh_nodes: bool = False
    deep: bool = False  # read every node's kernel (sources/deep.py)
    deep_image: str = deep_view.DEFAULT_IMAGE
    nodes: tuple[tuple[str, str], ...] = ()  # hostname -> engine endpoint (the config's [nodes])
    theme: str | None = None
    config: Config = Config()  # what the file said (the dashboard saves its theme back into it)
    origin: Mapping[str, str] = field(default_factory=dict)  # setting -> "flag", "environment", "config", "default"
    problems: tuple[str, ...] = ()  # what could not be used from the file or the environment (said once)

    def describe(self) -> str:
        """One line: each setting with where it came from (doctor --verbose, the exporter's start)."""
        th = self.thresholds
        parts = [f"loss good < {th.good_pct:g} % / acceptable < {th.acceptable_pct:g} % "
                 f"({self.origin.get('thresholds', 'default')})",
                 f"probe image {self.probe_image} ({self.origin.get('probe_image', 'default')})",
                 f"window {self.window_s / 60:g} min ({self.origin.get('window', 'default')})"]
        if self.deep:
            parts.append(f"deep view with {self.deep_image} ({self.origin.get('deep', 'default')}; image: "
                         f"{self.origin.get('deep_image', 'default')})")
        return "settings: " + "; ".join(parts)

    def deep_settings(self, every: float = 30.0) -> deep_view.DeepSettings | None:
        """What the producer reads the nodes' kernels with (`--deep`), None when it does not."""
        return deep_view.DeepSettings(self.deep_image, every) if self.deep else None


def resolve(args: argparse.Namespace, env: Mapping[str, str] | None = None,
            loaded: tuple[Config, str | None] | None = None) -> Settings:
    """The settings for this command: each from its flag, else the environment, else the config file, else the
    default. Raises SettingsError (one line) for a combination that cannot be used, e.g. thresholds whose good
    bound is not below the acceptable one once merged."""
    env = os.environ if env is None else env
    config, problem = loaded if loaded is not None else load_config()
    problems = [problem] if problem else []
    origin: dict[str, str] = {}

    def pick(name: str, flag: object, from_env, from_config: object, default: object) -> object:
        if flag is not None:
            origin[name] = "flag"
            return flag
        raw = env.get(ENV[name]) if name in ENV else None
        if raw is not None and raw.strip():
            try:
                value = from_env(raw.strip())
            except ValueError as exc:
                problems.append(f"{ENV[name]}={raw[:40]!r}: {exc} (ignored)")
            else:
                origin[name] = "environment"
                return value
        if from_config is not None:
            origin[name] = "config"
            return from_config
        origin[name] = "default"
        return default

    given = config.given
    good = pick("loss_good_pct", getattr(args, "loss_good", None), _env_pct,
                config.loss.good_pct if "thresholds" in given else None, LossThresholds().good_pct)
    acceptable = pick("loss_acceptable_pct", getattr(args, "loss_acceptable", None), _env_pct,
                      config.loss.acceptable_pct if "thresholds" in given else None,
                      LossThresholds().acceptable_pct)
    why = threshold_problem(good, acceptable)
    if why:
        raise SettingsError(f"loss thresholds: {why} (good from the {origin['loss_good_pct']}, acceptable from "
                            f"the {origin['loss_acceptable_pct']})")
    origins = {origin["loss_good_pct"], origin["loss_acceptable_pct"]}
    origin["thresholds"] = origins.pop() if len(origins) == 1 else "/".join(
        (origin["loss_good_pct"], origin["loss_acceptable_pct"]))
    lab_default = LAB_IMAGE if getattr(args, "lab", False) else DEFAULT_IMAGE
    image = pick("probe_image", getattr(args, "probe_image", None) or None, _env_image, config.probe_image,
                 lab_default)
    window_min = pick("probe_window_min", getattr(args, "probe_window", None), _env_minutes,
                      config.probe_window_min, DEFAULT_WINDOW_MIN)
    origin["window"] = origin["probe_window_min"]
    ssh_nodes = pick("ssh_nodes", True if getattr(args, "ssh_nodes", False) else None, _env_bool,
                     True if config.ssh_nodes else None, False)
    deep = pick("deep", True if getattr(args, "deep", None) else None, _env_bool, True if config.deep else None,
                False)
    deep_image = pick("deep_image", getattr(args, "deep_image", None) or None, _env_image, config.deep_image,
                      deep_view.LAB_IMAGE if getattr(args, "lab", False) else deep_view.DEFAULT_IMAGE)
    return Settings(thresholds=LossThresholds(float(good), float(acceptable)),  # type: ignore[arg-type]
                    probe_image=str(image), window_s=float(window_min) * 60,  # type: ignore[arg-type]
                    ssh_nodes=bool(ssh_nodes), deep=bool(deep), deep_image=str(deep_image), nodes=config.nodes,
                    theme=getattr(args, "theme", None) or config.theme, config=config, origin=origin,
                    problems=tuple(problems))


def _env_pct(text: str) -> float:
    try:
        return pct(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


def _env_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(value) or not 0.1 <= value <= 1440:
        raise ValueError("must be between 0.1 and 1440 minutes")
    return value


def _env_image(text: str) -> str:
    if len(text) > 255 or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("not an image reference")
    return text


def _env_bool(text: str) -> bool | None:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("takes 1/0, true/false, yes/no, on/off")
