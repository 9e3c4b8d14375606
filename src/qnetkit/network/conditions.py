"""Each link's conditions over a run, before any key moves: faults, passes, weather, rates.

Random cuts are an alternating renewal process (exponential times to failure, MTBF, and to
repair, MTTR); clouds on free-space links the same with a 2 h mean outage; satellite links
are up only in their pass windows; node failures (``faults``) take down every link of the
node. Rates and QBERs come from the analytic link model (``linkmodel``) at each step's
detector efficiency, dark counts, Raman load and intercept fraction, or from the Monte-Carlo
link engine once per simulated hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qnetkit._types import BoolArray, FloatArray
from qnetkit.network.linkmodel import LinkModel, ageing_factors
from qnetkit.network.topology import Link, Topology

MC_BLOCK_S = 3600.0  # Monte-Carlo links: one simulated block per hour of network time
MC_MAX_PULSES = 2 * 10**8
WEATHER_MEAN_OUTAGE_S = 7200.0


@dataclass
class Conditions:
    """(links, steps) arrays of what the network's links face, and the incidents behind them."""

    rate_bps: FloatArray  # secret key rate the link would make if up
    qber: FloatArray
    qber_clean: FloatArray  # without the eavesdropper
    efficiency: FloatArray  # detector efficiency factor (ageing)
    cut: BoolArray  # the fiber is cut (waits for a repair)
    node_down: BoolArray  # an end node is down
    in_pass: BoolArray  # inside a satellite pass (always true for other links)
    clear_sky: BoolArray  # no cloud (always true for fiber)
    intercept: FloatArray
    node_down_by_node: BoolArray  # (nodes, steps)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    clear_at: dict[int, list[float]] = field(default_factory=dict)  # times a fault clears


def outage_mask(rng: np.random.Generator, n: int, step_s: float, mtbf_s: float,
                mttr_s: float) -> tuple[BoolArray, list[tuple[float, float]]]:
    """Random failures: exponential times to failure and to repair (alternating renewal)."""
    down = np.zeros(n, dtype=bool)
    spans = []
    t = float(rng.exponential(mtbf_s))
    horizon = n * step_s
    while t < horizon:
        dur = float(rng.exponential(mttr_s))
        a, b = int(t // step_s), math.ceil((t + dur) / step_s)
        down[a:b] = True
        spans.append((t, t + dur))
        t += dur + float(rng.exponential(mtbf_s))
    return down, spans


def _pass_mask(link: Link, times: FloatArray) -> BoolArray:
    p = link.passes
    if p is None:
        return np.ones(times.shape, dtype=bool)
    phase = (times - p.first_s) % p.period_s
    return np.asarray((times >= p.first_s) & (phase < p.duration_s))


def _mc_rates(link: Link, model: LinkModel, times: FloatArray, eff: FloatArray,
              seed: int) -> tuple[FloatArray, FloatArray]:
    """Monte-Carlo engine (qnetkit.qkd) run once per block; rate held over the block."""
    from qnetkit.qkd.link import LinkConfig, simulate_link

    rate = np.zeros_like(times)
    qber = np.zeros_like(times)
    block_steps = max(1, round(MC_BLOCK_S / (times[1] - times[0] if times.size > 1 else 1)))
    pulses = int(min(MC_MAX_PULSES, link.qkd.pulse_rate_hz * MC_BLOCK_S))
    for k in range(0, times.size, block_steps):
        params = model.params
        p = type(params)(**{**params.__dict__,
                            "detector_efficiency": params.detector_efficiency * float(eff[k])})
        res = simulate_link(LinkConfig(length_km=link.length_km, pulses=pulses, link=p,
                                       seed=seed + k))
        stats = res.stats
        per_pulse = float(stats["secret_key_bits"]) / pulses
        rate[k : k + block_steps] = per_pulse * link.qkd.pulse_rate_hz
        qber[k : k + block_steps] = float(stats["qber"] or 0.0)
    return rate, qber


def _scripted(topo: Topology, c: Conditions, times: FloatArray, dt: float) -> None:
    """Scripted link events: cuts and repairs, clouds, eavesdroppers."""
    n_steps = times.size
    index = {ln.id: i for i, ln in enumerate(topo.links)}
    for ev in sorted(topo.scenario, key=lambda e: e.at_s):
        link_id = getattr(ev, "link", None)
        if ev.at_s >= n_steps * dt or link_id is None:
            continue  # after the end of this run, or a node event (``faults``)
        i = index[link_id]
        k = min(n_steps, math.ceil(ev.at_s / dt - 1e-9))
        if ev.event in ("cut", "weather-outage"):
            if ev.event == "cut":
                c.cut[i, k:] = True
            else:
                c.clear_sky[i, k:] = False
            c.incidents.append({
                "kind": "fiber-cut" if ev.event == "cut" else "weather-outage",
                "link": link_id, "time_s": ev.at_s,
                "detected_s": float(times[k]) + dt if k < n_steps else None,
                "detail": "scripted"})
        elif ev.event in ("repair", "weather-clear"):
            if ev.event == "repair":
                c.cut[i, k:] = False
            else:
                c.clear_sky[i, k:] = True
            c.clear_at[i].append(ev.at_s)
            c.incidents.append({"kind": "repair" if ev.event == "repair" else "weather-clear",
                                "link": link_id, "time_s": ev.at_s, "detected_s": None,
                                "detail": "scripted; re-authentication follows"})
        elif ev.event == "eavesdropper":
            c.intercept[i, k:] = ev.intercept_fraction
            c.incidents.append({"kind": "eavesdropper", "link": link_id, "time_s": ev.at_s,
                                "detected_s": None,
                                "detail": f"intercept-resend on {ev.intercept_fraction:.0%} "
                                          "of pulses"})
        elif ev.event == "eavesdropper-off":
            c.intercept[i, k:] = 0.0
            c.clear_at[i].append(ev.at_s)


def _node_failures(topo: Topology, c: Conditions, times: FloatArray, seed: int) -> None:
    """Nodes down (scripted or MTBF/MTTR) take every link they end down with them."""
    scripted = any(getattr(ev, "node", None) is not None for ev in topo.scenario)
    random = any(getattr(n, "mtbf_h", None) is not None for n in topo.nodes)
    if not (scripted or random):
        return
    from qnetkit.network.faults import node_outages

    outages = node_outages(topo, times, seed)
    c.node_down_by_node = outages.down
    c.incidents.extend(outages.incidents)
    node_index = {n.id: i for i, n in enumerate(topo.nodes)}
    for i, ln in enumerate(topo.links):
        c.node_down[i] = outages.down[node_index[ln.a]] | outages.down[node_index[ln.b]]


def link_conditions(topo: Topology, models: list[LinkModel], times: FloatArray,
                    rng: np.random.Generator, seed: int) -> Conditions:
    """Every link's conditions over the run (seeded: same seed, same faults)."""
    dt = topo.step_s
    n_links, n_steps = len(topo.links), times.size
    shape = (n_links, n_steps)
    c = Conditions(
        rate_bps=np.zeros(shape), qber=np.zeros(shape), qber_clean=np.zeros(shape),
        efficiency=np.ones(shape), cut=np.zeros(shape, dtype=bool),
        node_down=np.zeros(shape, dtype=bool), in_pass=np.ones(shape, dtype=bool),
        clear_sky=np.ones(shape, dtype=bool), intercept=np.zeros(shape),
        node_down_by_node=np.zeros((len(topo.nodes), n_steps), dtype=bool),
        clear_at={i: [] for i in range(n_links)})
    _scripted(topo, c, times, dt)
    for i, ln in enumerate(topo.links):
        eff, dark = ageing_factors(ln, times)
        c.efficiency[i] = eff
        if ln.mtbf_h is not None:
            down, spans = outage_mask(rng, n_steps, dt, ln.mtbf_h * 3600, ln.mttr_h * 3600)
            c.cut[i] |= down
            for a, b in spans:
                k = min(math.ceil(a / dt - 1e-9), n_steps - 1)
                c.incidents.append({"kind": "fiber-cut", "link": ln.id, "time_s": a,
                                    "detected_s": float(times[k]) + dt,
                                    "detail": f"random (MTBF {ln.mtbf_h} h), repaired at "
                                              f"{b:.0f} s"})
                c.clear_at[i].append(b)
        if ln.kind in ("free-space", "satellite") and ln.weather_outage_prob > 0:
            mean_clear = (WEATHER_MEAN_OUTAGE_S * (1 - ln.weather_outage_prob)
                          / ln.weather_outage_prob)
            down, _ = outage_mask(rng, n_steps, dt, mean_clear, WEATHER_MEAN_OUTAGE_S)
            c.clear_sky[i] &= ~down
        c.in_pass[i] = _pass_mask(ln, times)
        if ln.qkd.engine == "monte-carlo":
            r, q = _mc_rates(ln, models[i], times, eff, seed * 1000 + i)
            q_eve = q * (1 - c.intercept[i]) + 0.25 * c.intercept[i]
            c.rate_bps[i] = np.where(q_eve > topo.monitoring.qber_abort, 0.0, r)
            c.qber[i], c.qber_clean[i] = q_eve, q
        else:
            c.rate_bps[i], c.qber[i] = models[i].evaluate(times, eff, dark, c.intercept[i])
            if c.intercept[i].any():
                c.qber_clean[i] = models[i].evaluate(times, eff, dark, np.zeros(n_steps))[1]
            else:
                c.qber_clean[i] = c.qber[i]
    _node_failures(topo, c, times, seed)
    return c


__all__ = ["Conditions", "link_conditions", "outage_mask"]
