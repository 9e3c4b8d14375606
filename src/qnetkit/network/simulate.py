"""The network digital twin: a QKD network over hours or days, step by step.

Each step (``topology.step_s``): every link that is up and below the abort QBER adds its
secret key (``linkmodel``) to its key pool (capped at the pool capacity); demands, in priority
order, take end-to-end key relayed hop by hop over key-aware paths (``routing``), split over
several paths when one is not enough; a demand left short is served by post-quantum
cryptography if its policy is ``fallback-pqc`` (time counted). Faults (random cuts from
MTBF/MTTR, scripted cuts and repairs, weather on free-space links, satellite pass windows),
ageing, Raman noise under classical traffic and eavesdroppers change the links; a link whose
QBER jumps above the abort level without a known cause is quarantined until the operator
clears it, and re-authenticates before carrying key again.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qnetkit._types import BoolArray, FloatArray
from qnetkit.network.linkmodel import DAY_S, LinkModel, ageing_factors
from qnetkit.network.routing import HORIZON_S, Router, allocate
from qnetkit.network.topology import Link, Topology

REAUTH_S = 600.0  # re-authentication of a link after repair or quarantine
REPLAN_S = 900.0  # periodic re-plan of paths as pools drain and refill (congestion)
MC_BLOCK_S = 3600.0  # Monte-Carlo links: one simulated block per hour of network time
MC_MAX_PULSES = 2 * 10**8
INITIAL_POOL_S = 3600.0  # pools start with an hour of nominal production


@dataclass
class SimResult:
    topology: Topology
    duration_s: float
    seed: int
    times_s: FloatArray
    link_rate_bps: FloatArray  # (links, steps): secret key produced while up
    link_qber: FloatArray
    link_up: BoolArray
    link_pool_bits: FloatArray
    link_efficiency: FloatArray
    demand_delivered_bits: FloatArray  # (demands, steps)
    demand_fallback: BoolArray
    incidents: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    relayed_bits_per_link: FloatArray | None = None
    wall_s: float = 0.0

    @property
    def step_s(self) -> float:
        return self.topology.step_s

    def summary(self) -> dict[str, Any]:
        """The run in one JSON-able dict (what ``--json`` prints and the report reads)."""
        topo = self.topology
        dt = self.step_s
        links = []
        for i, ln in enumerate(topo.links):
            up = self.link_up[i]
            q = self.link_qber[i][up]
            links.append({
                "id": ln.id, "a": ln.a, "b": ln.b, "kind": ln.kind, "length_km": ln.length_km,
                "protocol": ln.qkd.protocol,
                "secret_bits": float(self.link_rate_bps[i].sum() * dt),
                "mean_rate_bps": float(self.link_rate_bps[i].mean()),
                "mean_qber": float(q.mean()) if q.size else None,
                "availability": float(up.mean()),
                "published_rate_bps": ln.published_rate_bps,
            })
        demands = []
        for j, d in enumerate(topo.demands):
            requested = d.rate_bps * self.duration_s
            delivered = float(self.demand_delivered_bits[j].sum())
            demands.append({
                "id": d.id, "a": d.a, "b": d.b, "rate_bps": d.rate_bps, "policy": d.policy,
                "priority": d.priority, "requested_bits": requested, "delivered_bits": delivered,
                "served_fraction": delivered / requested if requested else 1.0,
                "fallback_s": float(self.demand_fallback[j].sum() * dt),
            })
        return {
            "topology": topo.name, "description": topo.description, "source": topo.source,
            "duration_s": self.duration_s, "step_s": dt, "seed": self.seed,
            "wall_s": self.wall_s,
            "monitoring": {"qber_warning": topo.monitoring.qber_warning,
                           "qber_abort": topo.monitoring.qber_abort},
            "nodes": [{"id": n.id, "kind": n.kind, "x_km": n.x_km, "y_km": n.y_km}
                      for n in topo.nodes],
            "links": links, "demands": demands,
            "incidents": self.incidents, "alarms": self.alarms,
        }


# -- conditions over time ------------------------------------------------------------------
def _outage_mask(rng: np.random.Generator, n: int, step_s: float, mtbf_s: float,
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


def simulate(topo: Topology, *, duration_s: float, seed: int = 0,
             progress: Callable[[int, int], None] | None = None) -> SimResult:
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    dt = topo.step_s
    n_steps = max(1, math.ceil(duration_s / dt))
    times = np.arange(n_steps, dtype=float) * dt
    links = topo.links
    n_links = len(links)
    index = {ln.id: i for i, ln in enumerate(links)}
    mon = topo.monitoring

    rate = np.zeros((n_links, n_steps))
    qber = np.zeros((n_links, n_steps))
    qber_clean = np.zeros((n_links, n_steps))
    eff_series = np.ones((n_links, n_steps))
    phys_up = np.ones((n_links, n_steps), dtype=bool)  # not cut (faults needing repair)
    scheduled = np.ones((n_links, n_steps), dtype=bool)  # passes and weather
    incidents: list[dict[str, Any]] = []
    intercept = np.zeros((n_links, n_steps))
    clear_at: dict[int, list[float]] = {i: [] for i in range(n_links)}

    def step_of(t_s: float) -> int:
        return min(n_steps, math.ceil(t_s / dt - 1e-9))

    # Scripted scenario.
    for ev in sorted(topo.scenario, key=lambda e: e.at_s):
        if ev.at_s >= n_steps * dt:
            continue  # after the end of this run
        i = index[ev.link]
        k = step_of(ev.at_s)
        if ev.event in ("cut", "weather-outage"):
            (phys_up if ev.event == "cut" else scheduled)[i, k:] = False
            incidents.append({"kind": "fiber-cut" if ev.event == "cut" else "weather-outage",
                              "link": ev.link, "time_s": ev.at_s,
                              "detected_s": float(times[k]) + dt if k < n_steps else None,
                              "detail": "scripted"})
        elif ev.event in ("repair", "weather-clear"):
            (phys_up if ev.event == "repair" else scheduled)[i, k:] = True
            clear_at[i].append(ev.at_s)
            incidents.append({"kind": "repair" if ev.event == "repair" else "weather-clear",
                              "link": ev.link, "time_s": ev.at_s, "detected_s": None,
                              "detail": "scripted; re-authentication follows"})
        elif ev.event == "eavesdropper":
            intercept[i, k:] = ev.intercept_fraction
            incidents.append({"kind": "eavesdropper", "link": ev.link, "time_s": ev.at_s,
                              "detected_s": None,
                              "detail": f"intercept-resend on {ev.intercept_fraction:.0%} "
                                        "of pulses"})
        elif ev.event == "eavesdropper-off":
            intercept[i, k:] = 0.0
            clear_at[i].append(ev.at_s)

    models = LinkModel.build_many(links)
    for i, ln in enumerate(links):
        eff, dark = ageing_factors(ln, times)
        eff_series[i] = eff
        if ln.mtbf_h is not None:
            down, spans = _outage_mask(rng, n_steps, dt, ln.mtbf_h * 3600, ln.mttr_h * 3600)
            phys_up[i] &= ~down
            for a, b in spans:
                incidents.append({"kind": "fiber-cut", "link": ln.id, "time_s": a,
                                  "detected_s": float(times[min(step_of(a), n_steps - 1)]) + dt,
                                  "detail": f"random (MTBF {ln.mtbf_h} h), repaired at {b:.0f} s"})
                clear_at[i].append(b)
        if ln.kind in ("free-space", "satellite") and ln.weather_outage_prob > 0:
            # Clouds: outages of mean 2 h covering the given share of time.
            mean_out = 7200.0
            mean_clear = mean_out * (1 - ln.weather_outage_prob) / ln.weather_outage_prob
            down, _ = _outage_mask(rng, n_steps, dt, mean_clear, mean_out)
            scheduled[i] &= ~down
        scheduled[i] &= _pass_mask(ln, times)
        if ln.qkd.engine == "monte-carlo":
            r, q = _mc_rates(ln, models[i], times, eff, seed * 1000 + i)
            q_eve = q * (1 - intercept[i]) + 0.25 * intercept[i]
            rate[i] = np.where(q_eve > mon.qber_abort, 0.0, r)
            qber[i], qber_clean[i] = q_eve, q
        else:
            rate[i], qber[i] = models[i].evaluate(times, eff, dark, intercept[i])
            if intercept[i].any():
                qber_clean[i] = models[i].evaluate(times, eff, dark, np.zeros(n_steps))[1]
            else:
                qber_clean[i] = qber[i]

    # -- the step loop: quarantine, pools, routing, relay ---------------------------------
    node_index = {n.id: i for i, n in enumerate(topo.nodes)}
    router = Router(len(topo.nodes), [(node_index[ln.a], node_index[ln.b]) for ln in links])
    pairs = [(node_index[d.a], node_index[d.b]) for d in topo.demands]
    cap = np.array([ln.pool_capacity_bits for ln in links])
    nominal = np.array([m.nominal_rate_bps for m in models])
    pool = np.minimum(cap, nominal * INITIAL_POOL_S)
    up_series = np.zeros((n_links, n_steps), dtype=bool)
    pool_series = np.zeros((n_links, n_steps))
    produced = np.zeros((n_links, n_steps))
    demands = sorted(enumerate(topo.demands), key=lambda jd: -jd[1].priority)
    delivered = np.zeros((len(topo.demands), n_steps))
    fallback = np.zeros((len(topo.demands), n_steps), dtype=bool)
    relayed = np.zeros(n_links)
    quarantined = np.zeros(n_links, dtype=bool)
    reauth_until = np.zeros(n_links)
    was_phys_up = np.ones(n_links, dtype=bool)
    alarms: list[dict[str, Any]] = []
    warn_state = np.zeros(n_links, dtype=bool)
    low_state = np.zeros(n_links, dtype=bool)
    eff_warned = np.zeros(n_links, dtype=bool)
    eve_incident = {inc["link"]: inc for inc in incidents if inc["kind"] == "eavesdropper"}
    paths: list[list[list[int]]] = [[] for _ in topo.demands]
    last_plan_up: BoolArray | None = None
    stored_ok = np.array([ln.kind == "satellite" for ln in links])
    last_plan_t = -math.inf

    for k in range(n_steps):
        t = times[k]
        # Repairs and clearing: a link that comes back re-authenticates first (not after a
        # satellite pass or a cloud: the authentication keys are kept).
        back = phys_up[:, k] & ~was_phys_up
        reauth_until[back] = t + REAUTH_S
        was_phys_up = phys_up[:, k].copy()
        for i in map(int, np.flatnonzero(quarantined)):
            if any(k == step_of(c) for c in clear_at[i]):
                quarantined[i] = False
                reauth_until[i] = t + REAUTH_S
        # Abort: QBER above the abort level. Unexplained by the link's own noise -> quarantine.
        up_phys = phys_up[:, k] & scheduled[:, k] & ~quarantined
        aborting = up_phys & (qber[:, k] > mon.qber_abort)
        suspicious = aborting & (qber_clean[:, k] <= mon.qber_abort)
        for i in map(int, np.flatnonzero(suspicious)):
            quarantined[i] = True
            ln = links[i]
            inc = eve_incident.get(ln.id)
            if inc is not None and inc["detected_s"] is None:
                inc["detected_s"] = float(t + dt)  # the block's estimate ends the step
            incidents.append({"kind": "quarantine", "link": ln.id, "time_s": float(t + dt),
                              "detected_s": float(t + dt),
                              "detail": f"QBER {qber[i, k]:.3f} above abort "
                                        f"{mon.qber_abort}; link taken out of routing"})
        up = up_phys & (reauth_until <= t)
        up_series[:, k] = up
        gen = np.where(up & ~aborting, rate[:, k] * dt, 0.0)
        produced[:, k] = gen
        pool = np.minimum(cap, pool + gen)
        # Re-plan on any change of the up set, and periodically as pools move.
        if last_plan_up is None or not np.array_equal(up, last_plan_up) or \
                t - last_plan_t >= REPLAN_S:
            supply = pool + np.where(up, rate[:, k], 0.0) * HORIZON_S
            # Key already stored on a satellite link can be relayed between passes: the
            # satellite is a trusted node holding both keys (Micius, Liao et al. 2018).
            paths = router.plan(pairs, up | (stored_ok & ~quarantined), supply)
            last_plan_up, last_plan_t = up.copy(), t
        before = pool.copy()
        for j, d in demands:
            need = d.rate_bps * dt
            got = allocate(need, paths[j], pool)
            delivered[j, k] = got
            if got < need * (1 - 1e-9) and d.policy == "fallback-pqc":
                fallback[j, k] = True
        relayed += before - pool
        pool_series[:, k] = pool
        # Alarms (entering a state).
        w = up & (qber[:, k] > mon.qber_warning)
        for i in map(int, np.flatnonzero(w & ~warn_state)):
            alarms.append({"time_s": float(t), "level": "warning", "kind": "qber",
                           "link": links[i].id, "value": float(qber[i, k])})
        warn_state = w
        low = up & (pool < mon.pool_low_fraction * cap)
        for i in map(int, np.flatnonzero(low & ~low_state)):
            alarms.append({"time_s": float(t), "level": "warning", "kind": "pool-low",
                           "link": links[i].id, "value": float(pool[i])})
        low_state = low
        e = eff_series[:, k] < mon.detector_efficiency_warning
        for i in map(int, np.flatnonzero(e & ~eff_warned)):
            alarms.append({"time_s": float(t), "level": "warning", "kind": "detector-efficiency",
                           "link": links[i].id, "value": float(eff_series[i, k])})
        eff_warned |= e
        for i in map(int, np.flatnonzero(aborting & up_phys)):
            if not quarantined[i] or suspicious[i]:
                alarms.append({"time_s": float(t), "level": "critical", "kind": "qber-abort",
                               "link": links[i].id, "value": float(qber[i, k])})
        if progress is not None and (k % 60 == 0 or k == n_steps - 1):
            progress(k + 1, n_steps)

    incidents.sort(key=lambda inc: (inc["time_s"], inc["link"]))
    return SimResult(
        topology=topo, duration_s=n_steps * dt, seed=seed, times_s=times,
        link_rate_bps=produced / dt, link_qber=qber, link_up=up_series,
        link_pool_bits=pool_series, link_efficiency=eff_series,
        demand_delivered_bits=delivered, demand_fallback=fallback, incidents=incidents,
        alarms=alarms, relayed_bits_per_link=relayed, wall_s=time.perf_counter() - started,
    )


def write_run(result: SimResult, out: Path, *, max_series_rows: int = 2_000_000) -> Path:
    """summary.json, links.csv, demands.csv, incidents.csv (time series decimated so the
    link CSV stays under ``max_series_rows`` rows)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=1) + "\n")
    n_links, n_steps = result.link_rate_bps.shape
    every = max(1, math.ceil(n_links * n_steps / max_series_rows))
    cols = np.arange(0, n_steps, every)
    ids = [ln.id for ln in result.topology.links]
    with (out / "links.csv").open("w", newline="") as f:
        f.write("time_s,link,rate_bps,qber,up,pool_bits,detector_efficiency\n")
        for k in cols:
            t = result.times_s[k]
            up = result.link_up[:, k]
            lines = [
                f"{t:.0f},{ids[i]},{result.link_rate_bps[i, k]:.6g},"
                f"{result.link_qber[i, k]:.5f}," if up[i] else f"{t:.0f},{ids[i]},0,,"
                for i in range(n_links)
            ]
            f.write("".join(
                f"{line}{int(up[i])},{result.link_pool_bits[i, k]:.6g},"
                f"{result.link_efficiency[i, k]:.5f}\n" for i, line in enumerate(lines)))
    dids = [d.id for d in result.topology.demands]
    with (out / "demands.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "demand", "delivered_bps", "fallback"])
        for k in cols:
            for j, did in enumerate(dids):
                w.writerow([f"{result.times_s[k]:.0f}", did,
                            f"{result.demand_delivered_bits[j, k] / result.step_s:.6g}",
                            int(result.demand_fallback[j, k])])
    with (out / "incidents.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "detected_s", "kind", "link", "detail"])
        for inc in result.incidents:
            w.writerow([inc["time_s"], inc["detected_s"], inc["kind"], inc["link"],
                        inc["detail"]])
    return out


__all__ = ["DAY_S", "SimResult", "simulate", "write_run"]
