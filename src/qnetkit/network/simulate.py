"""The network digital twin: a QKD network over hours or days, step by step.

Each step (``topology.step_s``): every link that is up and below the abort QBER adds its
secret key (``linkmodel``) to its key pool (capped at the pool capacity); demands, in priority
order, take end-to-end key relayed hop by hop over key-aware paths (``routing``), split over
several paths when one is not enough; a demand left short is served by post-quantum
cryptography if its policy is ``fallback-pqc`` (time counted). Faults and passes come from
``conditions``; a link whose QBER jumps above the abort level without a known cause is
quarantined until the operator clears it, and re-authenticates before carrying key again.
Pools start as the topology's ``pools.initial_fill`` says (empty by default); key of the
initial fill is spent first and counted apart, so that "served" means made during the run.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.network.alarms import AlarmTracker
from qnetkit.network.conditions import link_conditions
from qnetkit.network.linkmodel import DAY_S, LinkModel
from qnetkit.network.result import (
    CAUSE_CODES,
    PathSegment,
    SimResult,
)
from qnetkit.network.routing import HORIZON_S, Router, allocate
from qnetkit.network.topology import InitialFill, Topology
from qnetkit.network.viability import assess_links

REAUTH_S = 600.0  # re-authentication of a link after repair or quarantine
REPLAN_S = 900.0  # periodic re-plan of paths as pools drain and refill (congestion)
MAX_PATH_SEGMENTS = 50  # per demand, in the summary


def parse_initial_fill(text: str) -> InitialFill:
    """``empty``, ``full`` or a number of seconds of production (``--initial-pools``)."""
    value = text.strip().lower()
    if value in ("empty", "full"):
        return value  # type: ignore[return-value]
    try:
        seconds = float(value.rstrip("s"))
    except ValueError:
        raise ValueError(f"--initial-pools {text!r}: use empty, full or a number of "
                         "seconds of production") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"--initial-pools {text!r}: seconds must be >= 0")
    return seconds


def initial_pool_bits(fill: InitialFill, capacity_bits: FloatArray,
                      start_rate_bps: FloatArray) -> FloatArray:
    """Each pool's key at the start: none, its capacity, or seconds of its starting rate."""
    if fill == "empty":
        return np.zeros_like(capacity_bits)
    if fill == "full":
        return capacity_bits.copy()
    return np.minimum(capacity_bits, start_rate_bps * float(fill))


def simulate(topo: Topology, *, duration_s: float, seed: int = 0,
             initial_pools: InitialFill | None = None, count_initial_fill: bool = False,
             progress: Callable[[int, int], None] | None = None) -> SimResult:
    """Run the twin for ``duration_s`` (whole steps). ``initial_pools`` overrides the
    topology's ``pools.initial_fill``; ``count_initial_fill`` makes the served fraction count
    key of the initial fill too (it never does by default)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    dt = topo.step_s
    n_steps = max(1, math.ceil(duration_s / dt))
    times = np.arange(n_steps, dtype=float) * dt
    links = topo.links
    n_links = len(links)
    mon = topo.monitoring

    models = LinkModel.build_many(links)
    cond = link_conditions(topo, models, times, rng, seed)
    rate, qber, qber_clean = cond.rate_bps, cond.qber, cond.qber_clean
    phys_up = ~cond.cut & ~cond.node_down  # faults needing a repair
    scheduled = cond.in_pass & cond.clear_sky  # passes and weather
    incidents = cond.incidents

    def step_of(t_s: float) -> int:
        return min(n_steps, math.ceil(t_s / dt - 1e-9))

    # -- the step loop: quarantine, pools, routing, relay ---------------------------------
    node_index = {n.id: i for i, n in enumerate(topo.nodes)}
    router = Router(len(topo.nodes), [(node_index[ln.a], node_index[ln.b]) for ln in links])
    pairs = [(node_index[d.a], node_index[d.b]) for d in topo.demands]
    cap = np.array([ln.pool_capacity_bits for ln in links])
    fill = topo.pools.initial_fill if initial_pools is None else initial_pools
    start_rate = np.where(qber[:, 0] > mon.qber_abort, 0.0, rate[:, 0])
    pool = initial_pool_bits(fill, cap, start_rate)
    initial = pool.copy()  # key of the initial fill still in each pool (spent first)
    initial_bits = pool.copy()
    up_series = np.zeros((n_links, n_steps), dtype=bool)
    cause = np.zeros((n_links, n_steps), dtype=np.int8)
    pool_series = np.zeros((n_links, n_steps))
    produced = np.zeros((n_links, n_steps))
    demands = sorted(enumerate(topo.demands), key=lambda jd: -jd[1].priority)
    delivered = np.zeros((len(topo.demands), n_steps))
    from_initial = np.zeros((len(topo.demands), n_steps))
    fallback = np.zeros((len(topo.demands), n_steps), dtype=bool)
    relayed = np.zeros(n_links)
    quarantined = np.zeros(n_links, dtype=bool)
    reauth_until = np.zeros(n_links)
    was_phys_up = np.ones(n_links, dtype=bool)
    alarms = AlarmTracker([ln.id for ln in links])
    eff_low = np.zeros(n_links, dtype=bool)
    eve_incident = {inc["link"]: inc for inc in incidents if inc["kind"] == "eavesdropper"}
    paths: list[list[list[int]]] = [[] for _ in topo.demands]
    segments: list[list[PathSegment]] = [[] for _ in topo.demands]
    last_plan_up: np.ndarray | None = None
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
            if any(k == step_of(c) for c in cond.clear_at[i]):
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
        cause[:, k] = _causes(cond.cut[:, k], cond.node_down[:, k], cond.in_pass[:, k],
                              cond.clear_sky[:, k], quarantined, up_phys & ~up, aborting, gen)
        # The step's key is usable in the step it is made; the capacity bounds what is left
        # stored at the end of the step (a cap before relaying would limit the throughput of
        # a link to capacity / step, an artefact of the time step).
        pool = pool + gen
        # Re-plan on any change of the up set, and periodically as pools move.
        if last_plan_up is None or not np.array_equal(up, last_plan_up) or \
                t - last_plan_t >= REPLAN_S:
            supply = pool + np.where(up, rate[:, k], 0.0) * HORIZON_S
            # Key already stored on a satellite link can be relayed between passes: the
            # satellite is a trusted node holding both keys (Micius, Liao et al. 2018).
            paths = router.plan(pairs, up | (stored_ok & ~quarantined), supply)
            last_plan_up, last_plan_t = up.copy(), t
            for j in range(len(topo.demands)):
                _record_paths(segments[j], float(t), paths[j])
        before = pool.copy()
        for j, d in demands:
            need = d.rate_bps * dt
            got, old = allocate(need, paths[j], pool, initial)
            delivered[j, k] = got
            from_initial[j, k] = old
            if got < need * (1 - 1e-9) and d.policy == "fallback-pqc":
                fallback[j, k] = True
        relayed += before - pool
        pool = np.minimum(cap, pool)
        # A full pool keeps the run's key and drops initial fill first, so that the fill
        # counts only where production could not serve.
        initial = np.minimum(initial, np.maximum(pool - np.minimum(pool, gen), 0.0))
        pool_series[:, k] = pool
        # Alarms are episodes: raised when a condition starts, cleared when it ends.
        q = qber[:, k]
        alarms.update("qber", "warning", float(t),
                      up & (q > mon.qber_warning) & (q <= mon.qber_abort), q)
        alarms.update("qber-abort", "critical", float(t), aborting, q)
        alarms.update("pool-low", "warning", float(t),
                      up & (pool < mon.pool_low_fraction * cap), pool, worse="low")
        eff_low |= cond.efficiency[:, k] < mon.detector_efficiency_warning  # ageing stays
        alarms.update("detector-efficiency", "warning", float(t), eff_low,
                      cond.efficiency[:, k], worse="low")
        if progress is not None and (k % 60 == 0 or k == n_steps - 1):
            progress(k + 1, n_steps)

    viability = assess_links(topo, models)
    for v in viability:
        if v.state == "no-key":  # known before the first step: say so on the timeline
            incidents.append({"kind": "no-key", "link": v.link_id, "time_s": 0.0,
                              "detected_s": dt, "detail": v.reason})
    incidents.sort(key=lambda inc: (inc["time_s"], inc["link"]))
    return SimResult(
        topology=topo, duration_s=n_steps * dt, seed=seed, times_s=times,
        link_rate_bps=produced / dt, link_qber=qber, link_up=up_series,
        link_pool_bits=pool_series, link_efficiency=cond.efficiency,
        demand_delivered_bits=delivered, demand_fallback=fallback, incidents=incidents,
        alarms=alarms.as_dicts(), relayed_bits_per_link=relayed,
        wall_s=time.perf_counter() - started,
        link_cause=cause, node_down=cond.node_down_by_node,
        demand_from_initial_bits=from_initial, initial_pool_bits=initial_bits,
        initial_fill=fill, count_initial_fill=count_initial_fill, path_segments=segments,
        viability=viability,
    )


def _causes(cut: np.ndarray, node_down: np.ndarray, in_pass: np.ndarray,
            clear_sky: np.ndarray, quarantined: np.ndarray, reauth: np.ndarray,
            aborting: np.ndarray, gen: FloatArray) -> np.ndarray:
    """Why each link makes no key this step (``CAUSE_CODES``); the first cause that holds."""
    out = np.full(gen.shape, CAUSE_CODES["zero-rate"], dtype=np.int8)
    out[gen > 0] = CAUSE_CODES["making-key"]
    # Later assignments win: from the least to the most fundamental cause.
    for name, mask in (("qber-abort", aborting), ("re-authenticating", reauth),
                       ("quarantined", quarantined), ("weather", ~clear_sky),
                       ("outside-pass", ~in_pass), ("node-down", node_down), ("cut", cut)):
        out[mask & (gen <= 0)] = CAUSE_CODES[name]
    return out


def _record_paths(segments: list[PathSegment], t_s: float, routes: list[list[int]]) -> None:
    """Open a new segment when the demand's candidate routes change."""
    key = tuple(tuple(r) for r in routes)
    if segments and segments[-1].routes == key:
        return
    if segments:
        segments[-1].to_s = t_s
    segments.append(PathSegment(from_s=t_s, to_s=None, routes=key))


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


__all__ = ["DAY_S", "SimResult", "initial_pool_bits", "parse_initial_fill", "simulate",
           "write_run"]
