"""Rate-versus-distance plots (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from qnetkit._types import FloatArray
from qnetkit.keyrate.common import KeyRateCurve
from qnetkit.keyrate.plob import plob_bound_capped


def plot_rates_vs_distance(
    length_km: FloatArray,
    series: Sequence[tuple[str, FloatArray]],
    out_path: Path,
    *,
    title: str,
    reference: tuple[str, FloatArray] | None = None,
) -> Path:
    """Secret key rates in bit/s against total distance (log scale), one line per
    architecture, with an optional dashed reference (a bound); zero and non-finite values are
    left out, never drawn."""
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    lengths = np.asarray(length_km, dtype=np.float64)
    for label, values in series:
        v = np.asarray(values, dtype=np.float64)
        shown = np.isfinite(v) & (v > 0)
        ax.semilogy(lengths[shown], v[shown], "o-", lw=1.8, ms=4, label=label)
    if reference is not None:
        v = np.asarray(reference[1], dtype=np.float64)
        shown = np.isfinite(v) & (v > 0)
        ax.semilogy(lengths[shown], v[shown], "k--", lw=1.5, label=reference[0])
    ax.set_xlabel("total distance (km)")
    ax.set_ylabel("secret key rate (bit/s)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return out_path


def plot_key_rates(
    curves: Sequence[KeyRateCurve],
    out_path: Path,
    title: str = "Secret key rate vs distance",
    plob_from: Sequence[tuple[str, KeyRateCurve]] | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Draw rate per pulse against distance on a log scale, with PLOB bounds as dashed lines.

    Each PLOB line is evaluated at the transmittance of the given curve, i.e. the same channel
    and detector loss as that protocol (default: the first curve's); points where the bound is
    capped (``plob_bound_capped``, eta near 1) are not drawn.
    """
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    _draw_rates(ax, curves, labels)
    refs = (
        list(plob_from)
        if plob_from is not None
        else ([(f"{curves[0].protocol} channel", curves[0])] if curves else [])
    )
    for (label, ref), style in zip(refs, ("k--", "k:", "k-."), strict=False):
        # The bound is infinite at eta = 1 (0 km, lossless): capped points are left out.
        bound, clamped = plob_bound_capped(ref.transmittance)
        ax.semilogy(
            ref.length_km[~clamped],
            bound[~clamped],
            style,
            lw=1.5,
            label=f"PLOB bound ({label})",
        )
    ax.set_title(title)
    _finish(fig, ax, curves, out_path)
    return out_path


def plot_key_rate_comparison(
    curves: Sequence[KeyRateCurve],
    labels: Sequence[str],
    reference_length_km: FloatArray,
    reference_bits_per_use: FloatArray,
    reference_label: str,
    out_path: Path,
    *,
    title: str,
    pulse_rate_hz: float | None = None,
) -> Path:
    """Several protocols on one channel against one reference line (the caller's PLOB bound).

    The reference is drawn as given (the caller states its convention in ``reference_label``
    and leaves out points it capped); non-finite values are dropped, never drawn. With
    ``pulse_rate_hz`` a right-hand axis reads the same curves in bit/s (rate per pulse times
    pulses per second). A ``.svg`` keeps its text as text, so the labels can be searched.
    """
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    _draw_rates(ax, curves, labels)
    ref_len = np.asarray(reference_length_km, dtype=np.float64)
    ref_val = np.asarray(reference_bits_per_use, dtype=np.float64)
    shown = np.isfinite(ref_val) & (ref_val > 0)
    ax.semilogy(ref_len[shown], ref_val[shown], "k--", lw=1.5, label=reference_label)
    ax.set_title(title, fontsize=10)
    if pulse_rate_hz is not None:
        rate = float(pulse_rate_hz)

        def to_bps(per_pulse: npt.ArrayLike) -> FloatArray:
            return np.asarray(per_pulse, dtype=np.float64) * rate

        def to_per_pulse(bps: npt.ArrayLike) -> FloatArray:
            return np.asarray(bps, dtype=np.float64) / rate

        right = ax.secondary_yaxis("right", functions=(to_bps, to_per_pulse))
        right.set_ylabel(f"secret key rate (bit/s at {rate:.3g} pulses/s)")
    _finish(fig, ax, curves, out_path)
    return out_path


def _draw_rates(ax: Axes, curves: Sequence[KeyRateCurve], labels: Sequence[str] | None) -> None:
    # Zero rates (no key) cannot sit on a log axis: each curve stops at its last positive point.
    for i, curve in enumerate(curves):
        label = labels[i] if labels else curve.protocol
        positive = curve.key_rate_per_pulse > 0
        ax.semilogy(
            curve.length_km[positive], curve.key_rate_per_pulse[positive], label=label, lw=2
        )


def _finish(fig: Figure, ax: Axes, curves: Sequence[KeyRateCurve], out_path: Path) -> None:
    ax.set_xlabel("distance (km)")
    ax.set_ylabel("secret key rate (bits per pulse)")
    lows = [
        c.key_rate_per_pulse[c.key_rate_per_pulse > 0].min()
        for c in curves
        if np.any(c.key_rate_per_pulse > 0)
    ]
    if lows:
        ax.set_ylim(bottom=max(min(lows) * 0.5, 1e-14))
    ax.set_ylim(top=10.0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # svg.fonttype "none": SVG text stays <text>, not glyph paths (searchable, smaller).
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(out_path)
    plt.close(fig)
