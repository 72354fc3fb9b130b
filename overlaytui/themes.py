"""overlaytui's themes: data files in the top-level themes/ folder (shipped inside the wheel as
overlaytui/themes), registered with the app at start."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from textual.theme import Theme

DEFAULT_THEME = "overlaytui-dark"
_FIELDS = {"name", "primary", "secondary", "warning", "error", "success", "accent", "foreground", "background",
           "surface", "panel", "boost", "dark"}


def themes_dir() -> Path:
    """The installed copy (inside the package) or, in a source checkout, the repository's themes/."""
    packaged = Path(str(resources.files("overlaytui"))) / "themes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "themes"


def load_themes(directory: Path | None = None) -> list[Theme]:
    themes = []
    for path in sorted((directory or themes_dir()).glob("*.toml")):
        data = tomllib.loads(path.read_text())
        unknown = set(data) - _FIELDS
        if unknown:
            raise ValueError(f"{path.name}: unknown theme keys {', '.join(sorted(unknown))}")
        themes.append(Theme(**data))
    default_first = sorted(themes, key=lambda t: (t.name != DEFAULT_THEME, t.name))
    return default_first
