"""Text formatting shared by the report's figures and HTML (SI prefixes, durations, escaping)."""

from __future__ import annotations

import html
import math


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _mpl(s: str) -> str:
    """A file string safe as matplotlib text (no mathtext)."""
    return s.replace("$", r"\$")


def _si(x: float | None, unit: str, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return f"0 {unit}"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")):
        if abs(x) >= factor:
            return f"{x / factor:.{digits}g} {prefix}{unit}"
    return f"{x:.{digits}g} {unit}"


def _dur(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    if s < 2 * 86400:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} d"


def _pct(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.2f} %"


def _time_unit(duration_s: float) -> tuple[float, str]:
    if duration_s <= 2 * 3600:
        return 60.0, "time (min)"
    if duration_s <= 3 * 86400:
        return 3600.0, "time (h)"
    return 86400.0, "time (d)"


def _clock(t: float) -> str:
    """Seconds from the start as d+hh:mm:ss."""
    if not math.isfinite(t):
        return "–"
    sec = round(t)
    days, sec = divmod(sec, 86400)
    hh, sec = divmod(sec, 3600)
    mm, ss = divmod(sec, 60)
    return f"{days}d+{hh:02d}:{mm:02d}:{ss:02d}" if days else f"{hh:02d}:{mm:02d}:{ss:02d}"
