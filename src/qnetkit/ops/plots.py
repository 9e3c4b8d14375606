"""Rate-versus-distance plots (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from qnetkit.keyrate.common import KeyRateCurve
from qnetkit.keyrate.plob import plob_bound


def plot_key_rates(
    curves: Sequence[KeyRateCurve],
    out_path: Path,
    title: str = "Secret key rate vs distance",
    plob_from: Sequence[tuple[str, KeyRateCurve]] | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Draw rate per pulse against distance on a log scale, with PLOB bounds as dashed lines.

    Each PLOB line is evaluated at the transmittance of the given curve, i.e. the same channel
    and detector loss as that protocol (default: the first curve's).
    """
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    for i, curve in enumerate(curves):
        label = labels[i] if labels else curve.protocol
        positive = curve.key_rate_per_pulse > 0
        ax.semilogy(
            curve.length_km[positive], curve.key_rate_per_pulse[positive], label=label, lw=2
        )
    refs = (
        list(plob_from)
        if plob_from is not None
        else ([(f"{curves[0].protocol} channel", curves[0])] if curves else [])
    )
    for (label, ref), style in zip(refs, ("k--", "k:", "k-."), strict=False):
        ax.semilogy(
            ref.length_km,
            plob_bound(ref.transmittance),
            style,
            lw=1.5,
            label=f"PLOB bound ({label})",
        )
    ax.set_xlabel("distance (km)")
    ax.set_ylabel("secret key rate (bits per pulse)")
    ax.set_title(title)
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
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
