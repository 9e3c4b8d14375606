"""One self-contained HTML report of a network simulation run directory.

``write_report(run_dir, out)`` reads ``summary.json``, ``links.csv`` and ``demands.csv`` of a
``qnetkit network simulate`` run and writes a single HTML file: inline CSS, plots as base64 PNG
(matplotlib Agg), no external resources. Every string taken from the run directory is escaped.

The CSV files can be large (thousands of links x thousands of steps: millions of rows), so they
are read in one pass of numpy's C ``loadtxt`` (about 0.45 us a row), not row by row in Python.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

import qnetkit

MAX_SERIES = 12  # links (and demands) drawn one by one; the rest are aggregated
MAX_EVENT_ROWS = 500  # incident / alarm rows listed in the HTML
MAX_EVENT_LABELS = 16  # incidents labelled on the time series
LABEL_NODES_MAX = 40
DEFAULT_QBER_WARNING = 0.05
DEFAULT_QBER_ABORT = 0.11

LINK_COLUMNS = ("rate_bps", "qber", "up", "pool_bits", "detector_efficiency")
DEMAND_COLUMNS = ("delivered_bps", "fallback")

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


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


# ---------------------------------------------------------------------------------------------
# formatting helpers


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


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'


# ---------------------------------------------------------------------------------------------
# plots

_KIND_MARKERS = {
    "kme": "o",
    "trusted-relay": "s",
    "user-site": "^",
    "ground-station": "D",
    "satellite": "*",
}


def _plot_topology(s: _Summary, down: set[str]) -> str | None:
    if not s.nodes:
        return None
    pos = {n.id: (n.x_km, n.y_km) for n in s.nodes}
    xs = np.array([n.x_km for n in s.nodes])
    ys = np.array([n.y_km for n in s.nodes])
    w = float(np.ptp(xs)) or 1.0
    h = float(np.ptp(ys)) or 1.0
    fig_w = 11.0
    fig_h = float(np.clip(fig_w * h / w, 4.5, 11.0))
    fig, ax = plt.subplots(figsize=(fig_w, fig_h), dpi=100)
    drawn = [ln for ln in s.links if ln.a in pos and ln.b in pos]
    rates = np.array([ln.mean_rate_bps or 0.0 for ln in drawn])
    positive = rates[rates > 0]
    norm: LogNorm | None = None
    if positive.size:
        lo, hi = float(positive.min()), float(positive.max())
        if hi <= lo * 1.01:
            lo, hi = lo / 2, hi * 2
        norm = LogNorm(vmin=lo, vmax=hi)
    lw = 2.2 if len(drawn) <= 200 else (1.2 if len(drawn) <= 1000 else 0.7)
    mappable = None
    for is_down in (False, True):
        for has_rate in (True, False):
            segs = [
                (pos[ln.a], pos[ln.b])
                for ln, r in zip(drawn, rates, strict=True)
                if (ln.id in down) == is_down and (r > 0) == has_rate
            ]
            if not segs:
                continue
            style = "--" if is_down else "-"
            if has_rate and norm is not None:
                lc = LineCollection(segs, cmap="viridis", norm=norm, linewidths=lw,
                                    linestyles=style, zorder=1)
                lc.set_array(np.array([
                    r for ln, r in zip(drawn, rates, strict=True)
                    if (ln.id in down) == is_down and r > 0
                ]))
                mappable = lc
            else:
                lc = LineCollection(segs, colors="0.6", linewidths=lw, linestyles=style,
                                    zorder=1)
            ax.add_collection(lc)
    if mappable is not None:
        cb = fig.colorbar(mappable, ax=ax, fraction=0.04, pad=0.02)
        cb.set_label("mean secret key rate (bit/s)")
    kinds = sorted({n.kind for n in s.nodes})
    ms = 60 if len(s.nodes) <= 100 else (20 if len(s.nodes) <= 1000 else 6)
    for kind in kinds:
        sel = [n for n in s.nodes if n.kind == kind]
        ax.scatter([n.x_km for n in sel], [n.y_km for n in sel], s=ms,
                   marker=_KIND_MARKERS.get(kind, "o"), label=_mpl(kind), zorder=3,
                   edgecolors="black", linewidths=0.5)
    if len(s.nodes) <= LABEL_NODES_MAX:
        for n in s.nodes:
            ax.annotate(_mpl(n.id), (n.x_km, n.y_km), xytext=(4, 4),
                        textcoords="offset points", fontsize=8, zorder=4)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.6", lw=1.5, ls="-"))
    labels.append("no key (rate 0)")
    handles.append(Line2D([], [], color="0.3", lw=1.5, ls="--"))
    labels.append("down at end of run")
    ax.legend(handles, labels, fontsize=8, loc="best")
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.margins(0.05)
    ax.set_title(f"{_mpl(s.topology)}: {len(s.nodes)} nodes, {len(s.links)} links")
    ax.grid(True, alpha=0.2)
    fig.tight_layout()
    return _png(fig)


def _mark_incidents(axes: Sequence[Axes], s: _Summary, scale: float, label: bool) -> None:
    for i, inc in enumerate(sorted(s.incidents, key=lambda x: x.time_s)):
        for k, ax in enumerate(axes):
            ax.axvline(inc.time_s / scale, color="crimson", lw=1.0, alpha=0.7, zorder=0)
            if inc.detected_s is not None:
                ax.axvline(inc.detected_s / scale, color="crimson", lw=1.0, ls=":", alpha=0.7,
                           zorder=0)
            if label and k == 0 and i < MAX_EVENT_LABELS:
                tr = blended_transform_factory(ax.transData, ax.transAxes)
                ax.text(inc.time_s / scale, 0.98, f" {_mpl(inc.kind)} {_mpl(inc.link)}",
                        transform=tr, rotation=90, va="top", ha="right", fontsize=7,
                        color="crimson", clip_on=True)


def _palette(n: int) -> list[tuple[float, float, float, float]]:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _auto_log(ax: Axes, data: np.ndarray[Any, Any]) -> None:
    with np.errstate(all="ignore"):
        pos = data[np.isfinite(data) & (data > 0)]
    if pos.size and float(pos.max()) > 100 * float(pos.min()):
        ax.set_yscale("log")


def _band(
    ax: Axes, x: FloatArray, m: np.ndarray[Any, Any], label: str
) -> None:
    """Median and 10-90 % band of the rows of ``m`` (other links)."""
    if m.shape[0] == 0 or m.shape[1] == 0:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if np.isnan(m).any():
            q = np.nanpercentile(m, [10, 50, 90], axis=0)
        else:
            q = np.percentile(m, [10, 50, 90], axis=0)
    ax.fill_between(x, q[0], q[2], color="0.5", alpha=0.25, lw=0, label=f"{label} 10–90 %")
    ax.plot(x, q[1], color="0.35", lw=1.2, label=f"{label} median")


def _plot_links(
    s: _Summary, grid: _Grid, selected: list[int], scale: float, xlabel: str
) -> str | None:
    if grid.t.size == 0 or not selected:
        return None
    x = grid.t / scale
    rest = np.setdiff1d(np.arange(len(s.links)), np.array(selected, dtype=np.intp))
    det = grid.cols["detector_efficiency"][selected]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        det_varies = bool(np.nanmax(np.nanmax(det, axis=1) - np.nanmin(det, axis=1),
                                    initial=0.0) > 1e-4) if det.size else False
    panels = [("rate_bps", "secret key rate (bit/s)"), ("qber", "QBER"),
              ("pool_bits", "key pool (bits)")]
    if det_varies:
        panels.append(("detector_efficiency", "detector efficiency"))
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.6 * len(panels) + 0.8), dpi=100,
                             sharex=True, squeeze=False, layout="constrained")
    axs = [a for row in axes for a in row]
    colors = _palette(len(selected))
    others = f"other {rest.size} links"
    for ax, (col, ylabel) in zip(axs, panels, strict=True):
        m = grid.cols[col]
        if rest.size and col != "detector_efficiency":
            _band(ax, x, m[rest], others)
        for j, li in enumerate(selected):
            ax.plot(x, m[li], lw=1.1, color=colors[j % len(colors)],
                    label=_mpl(s.links[li].id))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if col == "qber":
            ax.axhline(s.qber_warning, color="orange", ls="--", lw=1,
                       label=f"warning {s.qber_warning:.3g}")
            ax.axhline(s.qber_abort, color="red", ls="--", lw=1,
                       label=f"abort {s.qber_abort:.3g}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                top = float(np.nanmax(m[selected], initial=0.0))
            ax.set_ylim(0, min(0.5, max(s.qber_abort * 1.3, top * 1.05)))
        elif col != "detector_efficiency":
            _auto_log(ax, m)
            if ax.get_yscale() == "linear":
                ax.set_ylim(bottom=0)
    _mark_incidents(axs, s, scale, label=True)
    axs[-1].set_xlabel(xlabel)
    axs[0].set_title(
        "Selected links" + (f" (and {others}, aggregated)" if rest.size else "")
    )
    handles, labels = axs[0].get_legend_handles_labels()
    h2, l2 = axs[1].get_legend_handles_labels()
    extra = [(h, lab) for h, lab in zip(h2, l2, strict=True) if lab.startswith(("warning",
                                                                              "abort"))]
    handles += [h for h, _ in extra]
    labels += [lab for _, lab in extra]
    if s.incidents:
        handles.append(Line2D([], [], color="crimson", lw=1))
        labels.append("incident")
        if any(i.detected_s is not None for i in s.incidents):
            handles.append(Line2D([], [], color="crimson", lw=1, ls=":"))
            labels.append("detected")
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    return _png(fig)


def _plot_network(s: _Summary, grid: _Grid, scale: float, xlabel: str) -> str | None:
    if grid.t.size == 0 or not s.links:
        return None
    x = grid.t / scale
    up = np.nansum(grid.cols["up"], axis=0, dtype=np.float64)
    total = np.nansum(grid.cols["rate_bps"], axis=0, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(11, 3.2), dpi=100, layout="constrained")
    ax.plot(x, total, color="tab:blue", lw=1.3, label="total secret key rate")
    ax.set_ylabel("total key rate (bit/s)", color="tab:blue")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(x, up, color="tab:green", lw=1.3, label="links up")
    ax2.set_ylabel(f"links up (of {len(s.links)})", color="tab:green")
    ax2.set_ylim(0, len(s.links) * 1.05)
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    _mark_incidents([ax], s, scale, label=False)
    ax.set_xlabel(xlabel)
    ax.set_title("Whole network")
    return _png(fig)


def _plot_demands(
    s: _Summary, grid: _Grid | None, scale: float, xlabel: str
) -> str | None:
    if grid is None or grid.t.size == 0 or not s.demands:
        return None
    order = sorted(range(len(s.demands)),
                   key=lambda i: (s.demands[i].served_fraction if s.demands[i].served_fraction
                                  is not None else 1.0, s.demands[i].id))
    selected = order[:MAX_SERIES]
    x = grid.t / scale
    fig, ax = plt.subplots(figsize=(11, 3.6), dpi=100)
    colors = _palette(len(selected))
    m = grid.cols["delivered_bps"]
    shaded = False
    for j, di in enumerate(selected):
        d = s.demands[di]
        c = colors[j % len(colors)]
        ax.plot(x, m[di], lw=1.1, color=c, label=_mpl(d.id))
        fb = grid.cols["fallback"][di] > 0.5
        if fb.any():
            ax.fill_between(x, 0, 1, where=fb, color=c, alpha=0.15, lw=0, step="mid",
                            transform=ax.get_xaxis_transform(),
                            label=None if shaded else "fallback (shaded)")
            shaded = True
        if d.rate_bps is not None:
            ax.axhline(d.rate_bps, color=c, lw=0.8, ls="--", alpha=0.7)
    _auto_log(ax, m[selected])
    if ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)
    _mark_incidents([ax], s, scale, label=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("delivered key (bit/s)")
    title = "Demands: delivered key rate (dashed: requested; shaded: fallback)"
    if len(s.demands) > len(selected):
        title += f"; the {len(selected)} least served of {len(s.demands)}"
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px;background:#fff;
box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{margin:0 0 4px;font-size:26px}h2{margin:32px 0 10px;font-size:19px;
border-bottom:2px solid #e3e6ec;padding-bottom:4px}
p.desc{margin:4px 0 16px;color:#4a5161;white-space:pre-wrap}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px;
margin:12px 0}
.fact{background:#f0f3f8;border-radius:6px;padding:8px 10px}
.fact b{display:block;font-size:18px}.fact span{font-size:12px;color:#5b6375}
img{max-width:100%;height:auto;display:block;margin:8px 0}
.scroll{max-height:560px;overflow:auto;border:1px solid #e3e6ec;border-radius:4px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #eceef2;text-align:left;white-space:nowrap}
th{background:#f0f3f8;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fdecec}tr.warn td{background:#fff6e0}
.note{color:#5b6375;font-size:13px}footer{margin-top:36px;color:#8a90a0;font-size:12px}
"""


def _table(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[tuple[str, bool]]]]) -> str:
    """Rows of (css class, cells); a cell is (escaped html, numeric)."""
    out = ['<div class="scroll"><table><thead><tr>']
    out += [f"<th>{h}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for cls, cells in rows:
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out += [f'<td class="n">{c}</td>' if num else f"<td>{c}</td>" for c, num in cells]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _select_links(s: _Summary) -> list[int]:
    """Links with incidents (earliest first), then the highest mean rates."""
    index = {ln.id: i for i, ln in enumerate(s.links)}
    chosen: list[int] = []
    for inc in sorted(s.incidents, key=lambda x: x.time_s):
        i = index.get(inc.link)
        if i is not None and i not in chosen:
            chosen.append(i)
    by_rate = sorted(range(len(s.links)),
                     key=lambda i: (-(s.links[i].mean_rate_bps or 0.0), s.links[i].id))
    for i in by_rate:
        if len(chosen) >= MAX_SERIES:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen[:MAX_SERIES]


def _facts(s: _Summary, n_steps: int) -> str:
    total_bits = sum(ln.secret_bits or 0.0 for ln in s.links)
    avail = [ln.availability for ln in s.links if ln.availability is not None]
    crit = sum(1 for a in s.alarms if a.level == "critical")
    served = [d.served_fraction for d in s.demands if d.served_fraction is not None]
    items = [
        (_dur(s.duration_s), "simulated"),
        (f"{n_steps} × {_dur(s.step_s)}", "steps"),
        (str(len(s.nodes)), "nodes"),
        (str(len(s.links)), "links"),
        (str(len(s.demands)), "demands"),
        (_si(total_bits, "bit"), "secret key generated"),
        (_pct(sum(avail) / len(avail)) if avail else "–", "mean link availability"),
        (_pct(min(served)) if served else "–", "worst demand served"),
        (str(len(s.incidents)), "incidents"),
        (f"{len(s.alarms)} ({crit} critical)", "alarms"),
        (_e(s.seed) or "–", "seed"),
        (_dur(s.wall_s), "wall time"),
    ]
    cells = "".join(f'<div class="fact"><b>{v}</b><span>{k}</span></div>' for v, k in items)
    return f'<div class="facts">{cells}</div>'


def _links_table(s: _Summary, incident_links: set[str], down: set[str]) -> str:
    published = any(ln.published_rate_bps is not None for ln in s.links)
    headers = ["link", "ends", "kind", "length", "secret key", "mean rate", "mean QBER",
               "availability", "at end"]
    if published:
        headers += ["published rate", "measured / published"]
    rows: list[tuple[str, list[tuple[str, bool]]]] = []
    for ln in s.links:
        cells: list[tuple[str, bool]] = [
            (_e(ln.id), False),
            (f"{_e(ln.a)} – {_e(ln.b)}", False),
            (_e(ln.kind), False),
            ("–" if ln.length_km is None else f"{ln.length_km:.4g} km", True),
            (_si(ln.secret_bits, "bit"), True),
            (_si(ln.mean_rate_bps, "bit/s"), True),
            (_pct(ln.mean_qber), True),
            (_pct(ln.availability), True),
            ("down" if ln.id in down else "up", False),
        ]
        if published:
            pub = ln.published_rate_bps
            ratio = (
                f"{ln.mean_rate_bps / pub:.3g}×"
                if pub and ln.mean_rate_bps is not None
                else "–"
            )
            cells += [(_si(pub, "bit/s"), True), (ratio, True)]
        cls = "bad" if ln.id in incident_links else ""
        if not cls and ln.availability is not None and ln.availability < 0.99:
            cls = "warn"
        rows.append((cls, cells))
    note = ('<p class="note">Red: link with an incident; amber: availability below 99 %. '
            "Mean QBER over the time the link was up.</p>")
    return note + _table(headers, rows)


def _demands_table(s: _Summary) -> str:
    if not s.demands:
        return '<p class="note">No demands in this run.</p>'
    headers = ["demand", "from – to", "rate", "policy", "priority", "requested", "delivered",
               "served", "fallback time"]
    rows: list[tuple[str, list[tuple[str, bool]]]] = []
    for d in s.demands:
        cls = ""
        if d.served_fraction is not None:
            cls = "bad" if d.served_fraction < 0.9 else ("warn" if d.served_fraction < 0.999
                                                         else "")
        rows.append((cls, [
            (_e(d.id), False),
            (f"{_e(d.a)} – {_e(d.b)}", False),
            (_si(d.rate_bps, "bit/s"), True),
            (_e(d.policy), False),
            (_e(d.priority), True),
            (_si(d.requested_bits, "bit"), True),
            (_si(d.delivered_bits, "bit"), True),
            (_pct(d.served_fraction), True),
            (_dur(d.fallback_s) if d.fallback_s else "0", True),
        ]))
    return _table(headers, rows)


def _clock(t: float) -> str:
    """Seconds from the start as d+hh:mm:ss."""
    if not math.isfinite(t):
        return "–"
    sec = round(t)
    days, sec = divmod(sec, 86400)
    hh, sec = divmod(sec, 3600)
    mm, ss = divmod(sec, 60)
    return f"{days}d+{hh:02d}:{mm:02d}:{ss:02d}" if days else f"{hh:02d}:{mm:02d}:{ss:02d}"


def _incidents_html(s: _Summary) -> str:
    if not s.incidents:
        return '<p class="note">No incidents.</p>'
    incs = sorted(s.incidents, key=lambda x: x.time_s)
    rows: list[tuple[str, list[tuple[str, bool]]]] = []
    for inc in incs[:MAX_EVENT_ROWS]:
        if inc.detected_s is None:
            det, delay = "not detected", "–"
        else:
            det, delay = _clock(inc.detected_s), _dur(max(inc.detected_s - inc.time_s, 0.0))
        rows.append(("" if inc.detected_s is not None else "bad", [
            (_clock(inc.time_s), False), (_e(inc.kind), False), (_e(inc.link), False),
            (det, False), (delay, True), (_e(inc.detail), False),
        ]))
    more = (f'<p class="note">… and {len(incs) - MAX_EVENT_ROWS} more incidents.</p>'
            if len(incs) > MAX_EVENT_ROWS else "")
    return _table(["time", "kind", "link", "detected", "delay", "detail"], rows) + more


def _alarms_html(s: _Summary) -> str:
    if not s.alarms:
        return '<p class="note">No alarms.</p>'
    counts = Counter((a.level, a.kind) for a in s.alarms)
    summary = ", ".join(f"{n} × {_e(level)} {_e(kind)}"
                        for (level, kind), n in sorted(counts.items()))
    alarms = sorted(s.alarms, key=lambda a: a.time_s)
    rows: list[tuple[str, list[tuple[str, bool]]]] = [
        ("bad" if a.level == "critical" else "warn", [
            (_clock(a.time_s), False), (_e(a.level), False), (_e(a.kind), False),
            (_e(a.link), False), (_e(a.value), True),
        ])
        for a in alarms[:MAX_EVENT_ROWS]
    ]
    more = (f'<p class="note">… and {len(alarms) - MAX_EVENT_ROWS} more alarms.</p>'
            if len(alarms) > MAX_EVENT_ROWS else "")
    return (f'<p class="note">{summary}</p>'
            + _table(["time", "level", "kind", "link", "value"], rows) + more)


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


def write_report(run_dir: Path, out: Path) -> Path:
    """Write the HTML report of the run in ``run_dir`` to ``out``; returns ``out``."""
    s, grid, dgrid = _load_run(Path(run_dir))
    duration = s.duration_s or (float(grid.t[-1] - grid.t[0]) if grid.t.size else 0.0)
    scale, xlabel = _time_unit(duration)
    down = _down_at_end(s, grid)
    selected = _select_links(s)
    incident_links = {i.link for i in s.incidents}

    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>qnetkit report: {_e(s.topology)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>Network run: {_e(s.topology)}</h1>",
    ]
    if s.description:
        parts.append(f'<p class="desc">{_e(s.description)}</p>')
    parts.append(_facts(s, int(grid.t.size)))
    if grid.unknown_keys:
        parts.append(f'<p class="note">links.csv has {grid.unknown_keys} row(s) for links not '
                     "in summary.json; they are ignored.</p>")

    topo = _plot_topology(s, down)
    if topo is not None:
        parts += ["<h2>Topology</h2>",
                  '<p class="note">Links coloured by mean secret key rate (log scale); dashed: '
                  "down at the end of the run.</p>",
                  _img(topo, "topology")]

    series = _plot_links(s, grid, selected, scale, xlabel)
    if series is not None:
        names = ", ".join(_e(s.links[i].id) for i in selected)
        note = f"Drawn one by one: {names}."
        if len(s.links) > len(selected):
            note += (f" The other {len(s.links) - len(selected)} links are shown as a median "
                     "and 10–90 % band.")
        note += (f" QBER levels: warning {s.qber_warning:.3g}, abort {s.qber_abort:.3g}."
                 " Vertical lines: incidents (solid) and their detection (dotted).")
        parts += ["<h2>Link time series</h2>", f'<p class="note">{note}</p>',
                  _img(series, "link time series")]
    net = _plot_network(s, grid, scale, xlabel)
    if net is not None:
        parts += [_img(net, "network totals")]

    parts += ["<h2>Links</h2>", _links_table(s, incident_links, down)]
    parts.append("<h2>Demands</h2>")
    dem = _plot_demands(s, dgrid, scale, xlabel)
    if dem is not None:
        parts.append(_img(dem, "demands"))
    parts.append(_demands_table(s))
    parts += ["<h2>Incidents</h2>", _incidents_html(s)]
    parts += ["<h2>Alarms</h2>", _alarms_html(s)]
    parts.append(f"<footer>qnetkit {_e(qnetkit.__version__)} · report of "
                 f"{_e(Path(run_dir).name)}</footer></main></body></html>")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
