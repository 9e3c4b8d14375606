"""Text formatting shared by the report's figures and HTML (SI prefixes, durations, escaping,
tables)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence


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


def _clock_span(start: float, end: float | None) -> str:
    return f"{_clock(start)}–{'end' if end is None else _clock(end)}"


# A table cell: (escaped html, css class: "" text, "n" number, "txt" wrapping text).
Cell = tuple[str, str]
# A row: (css class, cells), or (css class, html) for one cell across the whole row.
Row = tuple[str, Sequence[Cell] | str]


def _table(headers: Sequence[str], rows: Sequence[Row], table_id: str = "") -> str:
    """A scrolling table; every cell's html is already escaped."""
    tid = f' id="{table_id}"' if table_id else ""
    out = [f'<div class="scroll"><table{tid}><thead><tr>']
    out += [f"<th>{h}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for cls, cells in rows:
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        if isinstance(cells, str):
            out.append(f'<td class="txt" colspan="{len(headers)}">{cells}</td>')
        else:
            out += [f'<td class="{k}">{c}</td>' if k else f"<td>{c}</td>" for c, k in cells]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _img(b64: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'
