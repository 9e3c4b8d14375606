"""Can a link make key at all? A check of each link as built, before any simulation.

Each link's rate model (``linkmodel``) is evaluated over one day of classical traffic with
new detectors and no eavesdropper: a link whose QBER stays above the abort level, or whose
rate is zero, can never carry key, whatever the scenario. The reason names the physics:
Raman noise when the QBER without the classical channels would be below the abort level,
the system's own noise otherwise, and loss when the QBER is fine but nothing survives (the
system's loss limit is found on the same model by adding loss until the rate reaches zero).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.registry import get_protocol
from qnetkit.network.linkmodel import DAY_S, LinkModel
from qnetkit.network.topology import Topology

ViabilityState = Literal["ok", "peak-traffic", "no-key"]

_DAY_GRID_S = np.arange(0.0, DAY_S, 900.0)  # a day of traffic in 15-min steps
_EXTRA_LOSS_STEP_DB = 0.1
_EXTRA_LOSS_MAX_DB = 80.0


@dataclass(frozen=True)
class LinkViability:
    """One link as built: its key over a day of traffic and, when none, why."""

    link_id: str
    best_rate_bps: float  # the quietest moment of the day
    worst_rate_bps: float  # the traffic peak
    qber_at_peak: float  # QBER at the traffic peak (the worst)
    qber_without_raman: float  # the same link with every classical channel dark
    has_raman: bool
    loss_db: float
    loss_limit_db: float | None  # highest channel loss with key (no Raman); None: above 80 dB more
    hours_without_key_per_day: float
    state: ViabilityState
    reason: str | None


def _effective_rate(model: LinkModel, t_s: FloatArray, qber_abort: float,
                    efficiency: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """Rate the twin would count (zero above the abort QBER) and QBER, nominal conditions."""
    factor = np.ones_like(t_s) if efficiency is None else efficiency
    rate, qber = model.evaluate(t_s, factor, np.ones_like(t_s), np.zeros_like(t_s))
    return np.where(qber > qber_abort, 0.0, rate), qber


def loss_limit_db(model: LinkModel, qber_abort: float) -> float | None:
    """The highest channel loss (dB) at which the link's system makes key, without Raman noise.

    The protocol's own rate-vs-length curve (``keyrate``, intensities re-optimised at each
    length as an operator would) is searched for its maximum distance; the limit is that
    length's fiber loss plus the link's lumped loss. Links without fiber attenuation
    (free-space) are searched by adding loss through the rate model's efficiency factor.
    """
    link = model.link
    per_km = float(getattr(model.params, "loss_db_per_km", 0.0) or 0.0)
    if per_km > 0.0:
        spec = get_protocol(link.qkd.protocol)
        d_max = max_distance_km(lambda lengths: spec.evaluate(model.params, lengths),
                                upper_km=_EXTRA_LOSS_MAX_DB / per_km + link.length_km,
                                tol_km=0.01)
        if math.isinf(d_max):
            return None
        return per_km * d_max + link.lumped_loss_db
    quiet = dataclasses.replace(model, raman=())
    total = link.total_loss_db
    extra = np.arange(-total, _EXTRA_LOSS_MAX_DB + _EXTRA_LOSS_STEP_DB, _EXTRA_LOSS_STEP_DB)
    rate, _ = _effective_rate(quiet, np.zeros_like(extra), qber_abort,
                              10.0 ** (-extra / 10.0))
    positive = np.flatnonzero(rate > 0.0)
    if positive.size == 0:
        return 0.0
    if positive[-1] == extra.size - 1:
        return None
    return float(total + extra[positive[-1]])


def _pct(q: float) -> str:
    return f"{100.0 * q:.0f} %"


def no_key_reason(v: LinkViability, qber_abort: float) -> str:
    """One line naming the physics that stops the key (Raman, loss, or the system's noise)."""
    raman = v.has_raman and v.qber_without_raman <= qber_abort
    if v.qber_at_peak > qber_abort and raman:
        return f"Raman noise: QBER {_pct(v.qber_at_peak)}"
    if not raman and v.loss_limit_db is not None and v.loss_db > v.loss_limit_db:
        return (f"loss {v.loss_db:.1f} dB, {v.loss_db - v.loss_limit_db:.1f} dB above the "
                f"system's limit ({v.loss_limit_db:.1f} dB)")
    if v.qber_at_peak > qber_abort:
        return (f"QBER {_pct(v.qber_at_peak)} above the abort level {_pct(qber_abort)} "
                "without any classical traffic (the system's own noise)")
    if v.has_raman and v.qber_without_raman < v.qber_at_peak and \
            (v.loss_limit_db is None or v.loss_db <= v.loss_limit_db):
        return f"Raman noise: QBER {_pct(v.qber_at_peak)}, no secret key left"
    if v.loss_limit_db is not None:
        return (f"loss {v.loss_db:.1f} dB, {v.loss_db - v.loss_limit_db:.1f} dB above the "
                f"system's limit ({v.loss_limit_db:.1f} dB)")
    return "no secret key at this loss"  # not reached for the protocols in the registry


def assess_link(model: LinkModel, qber_abort: float) -> LinkViability:
    """The link over one day of its classical traffic profile, nominal devices, no Eve."""
    t = _DAY_GRID_S
    rate, qber = _effective_rate(model, t, qber_abort)
    _, quiet_qber = _effective_rate(dataclasses.replace(model, raman=()), t[:1],
                                             qber_abort)
    peak = int(np.argmin(rate)) if rate.size else 0
    if rate[peak] > 0.0:
        peak = int(np.argmax(qber))
    hours = float((rate <= 0.0).sum() * 900.0 / 3600.0)
    best, worst = float(rate.max()), float(rate.min())
    state: ViabilityState = "ok" if worst > 0.0 else ("peak-traffic" if best > 0.0 else "no-key")
    v = LinkViability(
        link_id=model.link.id, best_rate_bps=best, worst_rate_bps=worst,
        qber_at_peak=float(qber[peak]), qber_without_raman=float(quiet_qber[0]),
        has_raman=bool(model.raman) and any(c > 0.0 for _, c in model.raman),
        loss_db=model.link.total_loss_db,
        loss_limit_db=loss_limit_db(model, qber_abort) if state != "ok" else None,
        hours_without_key_per_day=hours, state=state, reason=None)
    if state == "no-key":
        return dataclasses.replace(v, reason=no_key_reason(v, qber_abort))
    if state == "peak-traffic":
        why = no_key_reason(v, qber_abort)
        return dataclasses.replace(
            v, reason=f"no key for {hours:.1f} h a day at peak traffic: {why}")
    return v


def assess_links(topo: Topology, models: list[LinkModel] | None = None) -> list[LinkViability]:
    """Every link of the topology (models built here unless given)."""
    built = LinkModel.build_many(topo.links) if models is None else models
    return [assess_link(m, topo.monitoring.qber_abort) for m in built]


def validate_warnings(topo: Topology) -> list[tuple[str, str]]:
    """(field path, message) for links that cannot make key, all day or at peak traffic."""
    out: list[tuple[str, str]] = []
    for i, v in enumerate(assess_links(topo)):
        if v.state == "no-key":
            out.append((f"links[{i}]", f"{v.link_id} cannot make key: {v.reason}"))
        elif v.state == "peak-traffic":
            out.append((f"links[{i}]", f"{v.link_id}: {v.reason}"))
    return out


__all__ = ["LinkViability", "assess_link", "assess_links", "loss_limit_db", "no_key_reason",
           "validate_warnings"]
