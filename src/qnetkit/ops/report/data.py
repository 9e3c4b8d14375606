"""Reading a run directory: ``summary.json`` checked field by field (``summary``), the CSV time
series on a grid (``series``); the limits the report's figures and tables keep to."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qnetkit.ops.report._checks import ReportError
from qnetkit.ops.report.series import _Grid, _read_series
from qnetkit.ops.report.summary import (
    _Alarm,
    _Demand,
    _Incident,
    _Link,
    _Node,
    _parse_summary,
    _Summary,
)

__all__ = [
    "ReportError", "_Alarm", "_Demand", "_Grid", "_Incident", "_Link", "_Node", "_Summary",
    "_down_at_end", "_load_run",
]

MAX_SERIES = 12  # links (and demands) drawn one by one; the rest are aggregated
MAX_EVENT_ROWS = 500  # incident / alarm-episode rows listed in the HTML
MAX_EPISODES_PER_GROUP = 20  # alarm episodes listed per (link, kind); the rest are counted
MAX_PATH_ROWS = 400  # path-set intervals listed over all demands
MAX_BOX_ITEMS = 20  # links / demands listed in the boxes at the top; the tables list them all
MAX_EVENT_LABELS = 16  # incidents labelled on the time series
LABEL_NODES_MAX = 40

LINK_COLUMNS = ("rate_bps", "qber", "up", "pool_bits", "detector_efficiency")
DEMAND_COLUMNS = ("delivered_bps", "fallback")


def _down_at_end(s: _Summary, grid: _Grid) -> set[str]:
    """Links whose last reported state is down (or that were never available)."""
    down: set[str] = set()
    up = grid.cols.get("up")
    for i, ln in enumerate(s.links):
        if up is not None and up.shape[1]:
            known = up[i][np.isfinite(up[i])]
            if known.size:
                if known[-1] < 0.5:
                    down.add(ln.id)
                continue
        # No time series: never connected (the old meaning of availability when it is absent).
        connected = ln.connected_fraction if ln.connected_fraction is not None else (
            ln.availability if ln.state is None else None)
        if connected is not None and connected <= 0:
            down.add(ln.id)
    return down


def _load_run(run_dir: Path) -> tuple[_Summary, _Grid, _Grid | None]:
    """Read and check a run directory: the summary and the link and demand time series."""
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is not a directory: not a run directory")
    sp = run_dir / "summary.json"
    if not sp.is_file():
        raise ReportError(f"{run_dir} has no summary.json: not a run directory")
    try:
        data = json.loads(sp.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read {sp}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{sp}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    s = _parse_summary(data)
    lp = run_dir / "links.csv"
    if not lp.is_file():
        raise ReportError(f"{run_dir} has no links.csv: not a complete run directory")
    links = _read_series(lp, "link", LINK_COLUMNS, {ln.id: i for i, ln in enumerate(s.links)},
                         s.step_s)
    dp = run_dir / "demands.csv"
    demands: _Grid | None = None
    if dp.is_file():
        demands = _read_series(dp, "demand", DEMAND_COLUMNS,
                               {d.id: i for i, d in enumerate(s.demands)}, s.step_s)
    elif s.demands:
        raise ReportError(f"{run_dir} has no demands.csv but the summary lists demands")
    return s, links, demands
