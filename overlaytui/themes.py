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


# A terminal without true colour (tmux-256color without COLORTERM, the Linux console, 16-colour terminals) gets
# every colour rounded to its palette by Textual. Rounded there, the dark theme's blue-grey panels became navy
# (#232B36 is nearest to colour 17 in the 6x6x6 cube) and, in 16 colours, the accent and the error became the same
# red and the primary and success the same cyan. So the themes are adapted to the colour system once, at start:
# near-greys become the 256-colour grey ramp's greys, and in 16 colours each role takes its own ANSI colour.
GREY_SPREAD = 24  # a colour whose channels differ by at most this is a grey meant as a grey
_GREYS_256 = sorted({8 + 10 * i for i in range(24)} | {0, 95, 135, 175, 215, 255})
_COLOR_FIELDS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground", "background",
                 "surface", "panel")
_ANSI_16 = {  # role -> standard palette index (0-15), for dark and for light themes
    True: {"background": 0, "surface": 0, "panel": 8, "foreground": 15, "primary": 12, "secondary": 14,
           "accent": 13, "warning": 11, "error": 9, "success": 10},
    False: {"background": 15, "surface": 15, "panel": 7, "foreground": 0, "primary": 4, "secondary": 6,
            "accent": 5, "warning": 3, "error": 1, "success": 2},
}


def for_color_system(theme: Theme, system: str | None) -> Theme:
    """The theme as it should look with this colour system (Rich's names: "truecolor", "256", "standard",
    "windows"; None: no colour). Same name, so the choice saved is the same."""
    if system == "256":
        colors = {name: _grey(value) for name in _COLOR_FIELDS if (value := getattr(theme, name))}
    elif system in ("standard", "windows"):
        from rich._palettes import STANDARD_PALETTE

        colors = {name: STANDARD_PALETTE[index].hex for name, index in _ANSI_16[theme.dark].items()}
    else:
        return theme
    return Theme(**{**{name: getattr(theme, name) for name in ("name", "boost", "dark", "luminosity_spread",
                                                             "text_alpha", "variables", "ansi")},
                    **{name: getattr(theme, name) for name in _COLOR_FIELDS}, **colors})


def _grey(value: str) -> str:
    """A near-grey as the nearest grey of the 256-colour palette (other colours unchanged)."""
    from rich.color import Color

    triplet = Color.parse(value).get_truecolor()
    if max(triplet) - min(triplet) > GREY_SPREAD:
        return value
    level = round(0.299 * triplet.red + 0.587 * triplet.green + 0.114 * triplet.blue)
    grey = min(_GREYS_256, key=lambda g: abs(g - level))
    return f"#{grey:02x}{grey:02x}{grey:02x}"
