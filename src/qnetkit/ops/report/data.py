"""Reading a run directory: ``summary.json`` checked field by field, the CSV time series on a grid.

The CSV files can be large (thousands of links x thousands of steps: millions of rows), so they
are read in one pass of numpy's C ``loadtxt`` (about 0.45 us a row), not row by row in Python.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qnetkit._types import FloatArray

MAX_SERIES = 12  # links (and demands) drawn one by one; the rest are aggregated
MAX_EVENT_ROWS = 500  # incident / alarm rows listed in the HTML
MAX_EVENT_LABELS = 16  # incidents labelled on the time series
LABEL_NODES_MAX = 40
DEFAULT_QBER_WARNING = 0.05
DEFAULT_QBER_ABORT = 0.11

LINK_COLUMNS = ("rate_bps", "qber", "up", "pool_bits", "detector_efficiency")
DEMAND_COLUMNS = ("delivered_bps", "fallback")



class ReportError(Exception):
    """The run directory is missing or malformed; the message is one line."""


# ---------------------------------------------------------------------------------------------
# summary.json


@dataclass(frozen=True)
class _Node:
    id: str
    kind: str
    x_km: float
    y_km: float


@dataclass(frozen=True)
class _Link:
    id: str
    a: str
    b: str
    kind: str
    length_km: float | None
    secret_bits: float | None
    mean_rate_bps: float | None
    mean_qber: float | None
    availability: float | None
    published_rate_bps: float | None


@dataclass(frozen=True)
class _Demand:
    id: str
    a: str
    b: str
    rate_bps: float | None
    policy: str
    priority: str
    requested_bits: float | None
    delivered_bits: float | None
    served_fraction: float | None
    fallback_s: float | None


@dataclass(frozen=True)
class _Incident:
    kind: str
    link: str
    time_s: float
    detected_s: float | None
    detail: str


@dataclass(frozen=True)
class _Alarm:
    time_s: float
    level: str
    kind: str
    link: str
    value: str


@dataclass
class _Summary:
    topology: str
    description: str
    duration_s: float | None
    step_s: float | None
    seed: str
    wall_s: float | None
    qber_warning: float
    qber_abort: float
    links: list[_Link]
    demands: list[_Demand]
    incidents: list[_Incident]
    alarms: list[_Alarm]
    nodes: list[_Node]


def _num(d: dict[str, Any], key: str, where: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ReportError(f"summary.json: {where}.{key} is not a number: {v!r}"[:200])
    return float(v)


def _req_num(d: dict[str, Any], key: str, where: str) -> float:
    v = _num(d, key, where)
    if v is None:
        raise ReportError(f"summary.json: {where} has no {key!r}")
    return v


def _text(d: dict[str, Any], key: str, default: str = "") -> str:
    v = d.get(key)
    return default if v is None else str(v)


def _req_text(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if v is None or v == "":
        raise ReportError(f"summary.json: {where} has no {key!r}")
    return str(v)


def _entries(data: dict[str, Any], key: str, required: bool = False) -> list[dict[str, Any]]:
    v = data.get(key)
    if v is None:
        if required:
            raise ReportError(f"summary.json has no {key!r} list: not a run summary")
        return []
    if not isinstance(v, list):
        raise ReportError(f"summary.json: {key!r} is not a list")
    for i, e in enumerate(v):
        if not isinstance(e, dict):
            raise ReportError(f"summary.json: {key}[{i}] is not an object")
    return v


def _parse_summary(data: Any) -> _Summary:
    if not isinstance(data, dict):
        raise ReportError("summary.json is not a JSON object")
    links = [
        _Link(
            id=_req_text(e, "id", f"links[{i}]"),
            a=_text(e, "a"),
            b=_text(e, "b"),
            kind=_text(e, "kind"),
            length_km=_num(e, "length_km", f"links[{i}]"),
            secret_bits=_num(e, "secret_bits", f"links[{i}]"),
            mean_rate_bps=_num(e, "mean_rate_bps", f"links[{i}]"),
            mean_qber=_num(e, "mean_qber", f"links[{i}]"),
            availability=_num(e, "availability", f"links[{i}]"),
            published_rate_bps=_num(e, "published_rate_bps", f"links[{i}]"),
        )
        for i, e in enumerate(_entries(data, "links", required=True))
    ]
    demands = [
        _Demand(
            id=_req_text(e, "id", f"demands[{i}]"),
            a=_text(e, "a"),
            b=_text(e, "b"),
            rate_bps=_num(e, "rate_bps", f"demands[{i}]"),
            policy=_text(e, "policy"),
            priority=_text(e, "priority"),
            requested_bits=_num(e, "requested_bits", f"demands[{i}]"),
            delivered_bits=_num(e, "delivered_bits", f"demands[{i}]"),
            served_fraction=_num(e, "served_fraction", f"demands[{i}]"),
            fallback_s=_num(e, "fallback_s", f"demands[{i}]"),
        )
        for i, e in enumerate(_entries(data, "demands"))
    ]
    incidents = [
        _Incident(
            kind=_text(e, "kind", "incident"),
            link=_text(e, "link"),
            time_s=_req_num(e, "time_s", f"incidents[{i}]"),
            detected_s=_num(e, "detected_s", f"incidents[{i}]"),
            detail=_text(e, "detail"),
        )
        for i, e in enumerate(_entries(data, "incidents"))
    ]
    alarms = [
        _Alarm(
            time_s=_req_num(e, "time_s", f"alarms[{i}]"),
            level=_text(e, "level"),
            kind=_text(e, "kind"),
            link=_text(e, "link"),
            value=_fmt_value(e.get("value")),
        )
        for i, e in enumerate(_entries(data, "alarms"))
    ]
    nodes = [
        _Node(
            id=_req_text(e, "id", f"nodes[{i}]"),
            kind=_text(e, "kind", "kme"),
            x_km=_num(e, "x_km", f"nodes[{i}]") or 0.0,
            y_km=_num(e, "y_km", f"nodes[{i}]") or 0.0,
        )
        for i, e in enumerate(_entries(data, "nodes"))
    ]
    # QBER levels: top level or under "monitoring" (as in the topology file); else defaults.
    mon = data.get("monitoring")
    mon = mon if isinstance(mon, dict) else {}
    warn = _num(data, "qber_warning", "(top level)") or _num(mon, "qber_warning", "monitoring")
    abort = _num(data, "qber_abort", "(top level)") or _num(mon, "qber_abort", "monitoring")
    seed = data.get("seed")
    return _Summary(
        topology=_text(data, "topology", "(unnamed topology)"),
        description=_text(data, "description"),
        duration_s=_num(data, "duration_s", "(top level)"),
        step_s=_num(data, "step_s", "(top level)"),
        seed="" if seed is None else str(seed),
        wall_s=_num(data, "wall_s", "(top level)"),
        qber_warning=warn if warn is not None else DEFAULT_QBER_WARNING,
        qber_abort=abort if abort is not None else DEFAULT_QBER_ABORT,
        links=links,
        demands=demands,
        incidents=incidents,
        alarms=alarms,
        nodes=nodes,
    )


def _fmt_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# CSV time series


@dataclass
class _Grid:
    """Per-key time series on a common time axis: ``cols[name][key_index, step]`` (NaN = none)."""

    t: FloatArray
    cols: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = field(default_factory=dict)
    unknown_keys: int = 0


class _Codes(dict[str, int]):
    """Key id -> row index; an unknown id maps to -1 (a C-level lookup for loadtxt)."""

    def __missing__(self, key: str) -> int:
        return -1


def _float_or_nan(text: str) -> float:
    return float(text) if text.strip() else math.nan


def _loadtxt_message(name: str, msg: str, ncol: int) -> str:
    """numpy's loadtxt error as one line with the file's own line number."""
    msg = (msg.splitlines() or ["malformed"])[0].rstrip(".")
    m = re.fullmatch(r"invalid column index \d+ at row (\d+) with (\d+) columns?", msg)
    if m is not None:  # rows of this message count data lines from 1
        return f"{name} line {int(m.group(1)) + 1}: {m.group(2)} fields, expected {ncol}"
    m = re.fullmatch(r"(could not convert .*) at row (\d+), column (\d+)", msg)
    if m is not None:  # rows of this message count data lines from 0
        return f"{name} line {int(m.group(2)) + 2}: {m.group(1)} (field {m.group(3)})"[:300]
    return f"{name}: {msg}"[:300]


def _read_series(
    path: Path, key: str, columns: Sequence[str], keys: dict[str, int], step_s: float | None
) -> _Grid:
    """Read ``time_s,<key>,<columns...>`` CSV rows into per-key matrices on one time grid.

    One pass of numpy's C ``loadtxt``; the key column is mapped to row indices by a converter
    and ``qber`` may be empty (NaN). If another column has empty fields, a second pass reads
    every column with the empty-tolerant converter.
    """
    name = path.name
    try:
        with path.open("r", encoding="utf-8", newline="") as f:
            header = [h.strip() for h in f.readline().strip("\r\n").split(",")]
    except UnicodeDecodeError:
        raise ReportError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise ReportError(f"cannot read {name}: {exc.strerror}") from None
    missing = [c for c in ("time_s", key, *columns) if c not in header]
    if missing:
        raise ReportError(f"{name} has no column {', '.join(map(repr, missing))}")
    wanted = ["time_s", key, *columns]
    usecols = [header.index(c) for c in wanted]
    codes = _Codes(keys)
    converters: dict[int | str, Callable[[str], Any]] = {header.index(key): codes.__getitem__}
    if "qber" in columns:
        converters[header.index("qber")] = _float_or_nan

    def load(conv: dict[int | str, Callable[[str], Any]]) -> FloatArray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            out: FloatArray = np.loadtxt(
                path, delimiter=",", skiprows=1, usecols=usecols, converters=conv,
                dtype=np.float64, comments=None, encoding="utf-8", ndmin=2,
            )
        return out

    try:
        try:
            data = load(converters)
        except ValueError as exc:
            if "could not convert string ''" not in str(exc):
                raise
            every: dict[int | str, Callable[[str], Any]] = dict.fromkeys(usecols, _float_or_nan)
            every.update(converters)
            data = load(every)
    except ValueError as exc:
        raise ReportError(_loadtxt_message(name, str(exc), len(header))) from None
    except UnicodeDecodeError:
        raise ReportError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise ReportError(f"cannot read {name}: {exc.strerror}") from None

    if data.shape[0] == 0:
        return _Grid(t=np.zeros(0), cols={c: np.zeros((len(keys), 0), np.float32) for c in columns})
    t = data[:, 0]
    code = data[:, 1].astype(np.intp)
    if not np.all(np.isfinite(t)):
        raise ReportError(f"{name}: column 'time_s' has an empty or non-finite value")
    known = code >= 0
    unknown = int(np.count_nonzero(~known))
    # Steps: on the summary's step grid (no sort needed) or else the distinct times.
    grid_t, step_idx = _time_grid(t, step_s)
    grid = _Grid(t=grid_t, unknown_keys=unknown)
    rows, cols = code[known], step_idx[known]
    for j, c in enumerate(columns, start=2):
        m = np.full((len(keys), grid_t.size), np.nan, dtype=np.float32)
        m[rows, cols] = data[known, j]
        grid.cols[c] = m
    return grid


def _time_grid(
    t: FloatArray, step_s: float | None
) -> tuple[FloatArray, np.ndarray[Any, np.dtype[np.intp]]]:
    if step_s is not None and step_s > 0:
        k = np.rint(t / step_s)
        if np.allclose(k * step_s, t, rtol=0, atol=1e-6 * step_s):
            k0 = int(k.min())
            idx = (k - k0).astype(np.intp)
            n = int(idx.max()) + 1
            if n <= 4 * t.size + 1:
                return ((np.arange(n) + k0) * step_s).astype(np.float64), idx
    uniq, inv = np.unique(t, return_inverse=True)
    return uniq.astype(np.float64), inv.astype(np.intp).reshape(-1)


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
        if ln.availability is not None and ln.availability <= 0:
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
