"""The report's figures: topology map, link and network time series, demands (matplotlib Agg,
returned as base64 PNG)."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Sequence
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

from qnetkit._types import FloatArray
from qnetkit.ops.report._format import _mpl
from qnetkit.ops.report.data import LABEL_NODES_MAX, MAX_EVENT_LABELS, MAX_SERIES, _Grid, _Summary


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


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
                # A link that makes no key (e.g. Raman noise, loss) in red, as in the tables.
                colors = [
                    "crimson" if ln.no_key else "0.6"
                    for ln, r in zip(drawn, rates, strict=True)
                    if (ln.id in down) == is_down and (r > 0) == has_rate
                ]
                lc = LineCollection(segs, colors=colors, linewidths=lw, linestyles=style,
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
    if any(ln.no_key for ln in drawn):
        handles.append(Line2D([], [], color="crimson", lw=1.5, ls="-"))
        labels.append("makes no key (physical limit)")
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
