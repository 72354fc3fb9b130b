"""How sizes and rates read, in every pane and every command: binary units, one decimal (the one formatter)."""

from __future__ import annotations

RATE_UNITS = [(1024**3, "GiB/s"), (1024**2, "MiB/s"), (1024, "KiB/s"), (1, "B/s")]


def human_bytes(value: float | None, suffix: str = "B") -> str:
    """1536 -> '1.5 KiB'; None -> '-'."""
    if value is None:
        return "-"
    for unit in ("", "Ki", "Mi", "Gi", "Ti"):
        if abs(value) < 1024 or unit == "Ti":
            return f"{value:.0f} {unit}{suffix}" if unit == "" else f"{value:.1f} {unit}{suffix}"
        value /= 1024
    return f"{value:.1f} Ti{suffix}"


def human_rate(value: float | None) -> str:
    return human_bytes(value, "B/s")


def scale_for(peak: float) -> tuple[float, str]:
    """The rate unit that shows `peak` as a number between 1 and 1024 (a chart's axis)."""
    for factor, unit in RATE_UNITS:
        if peak >= factor:
            return factor, unit
    return 1, "B/s"
