"""Why a link made no key and why a demand was not met, in one line each, from a run.

A link's reason is its main cause of lost time (cut, node down, outside passes, clouds,
quarantine, re-authentication, QBER above abort, zero rate) with the physics behind it from
``viability`` (Raman noise, loss above the system's limit). A demand's headroom is the worst
hour's deliverable rate, the maximum flow between its sites over the links' mean production
in that hour (scipy's Edmonds-Karp/Dinic max-flow), against the rate requested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow

from qnetkit.network.routing import Router
from qnetkit.network.viability import no_key_reason

if TYPE_CHECKING:
    from qnetkit.network.result import SimResult

LinkState = Literal["ok", "partial", "no-key"]
# Why a link made no key in a step (``SimResult.link_cause``); 0 is "it did".
CAUSES = ("making-key", "cut", "node-down", "outside-pass", "weather", "quarantined",
          "re-authenticating", "qber-abort", "zero-rate")
CAUSE_CODES = {name: code for code, name in enumerate(CAUSES)}
MET_FRACTION = 0.999
HEADROOM_WINDOW_S = 3600.0
MAX_FLOWS = 5000  # (windows x demands) computed for every demand; beyond, unmet ones only
MAX_PATH_ENTRIES = 50
_FLOW_SCALE_MAX = 2**30  # max-flow takes int32 capacities: the largest link maps to 2^30


@dataclass(frozen=True)
class LinkDiagnosis:
    availability: float  # share of steps the link made secret key
    state: LinkState
    reason: str | None
    physical_limit: bool  # no key for a physical reason (noise, loss), whatever the faults
    unavailable_s: dict[str, float]


@dataclass(frozen=True)
class Headroom:
    worst_hour_start_s: float
    worst_hour_deliverable_bps: float
    requested_bps: float

    @property
    def ratio(self) -> float:
        return self.worst_hour_deliverable_bps / self.requested_bps

    def as_dict(self) -> dict[str, float]:
        return {"worst_hour_start_s": self.worst_hour_start_s,
                "worst_hour_deliverable_bps": self.worst_hour_deliverable_bps,
                "requested_bps": self.requested_bps, "ratio": self.ratio}


@dataclass(frozen=True)
class DemandDiagnosis:
    met: bool
    reason: str | None
    headroom: Headroom | None


def clock(t_s: float) -> str:
    """Run time as HH:MM (``d2 05:30`` from the second day on)."""
    minutes = round(t_s / 60.0)
    day, rest = divmod(minutes, 1440)
    hhmm = f"{rest // 60:02d}:{rest % 60:02d}"
    return hhmm if day == 0 else f"d{day + 1} {hhmm}"


def _spans(mask: np.ndarray, times: np.ndarray, dt: float) -> list[tuple[float, float]]:
    """Contiguous runs of True as (start, end) times."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(float(times[a]), float(times[b - 1]) + dt) for a, b in zip(starts, ends,
                                                                        strict=True)]


def _span_text(spans: list[tuple[float, float]]) -> str:
    shown = ", ".join(f"{clock(a)}-{clock(b)}" for a, b in spans[:2])
    return shown + (f" and {len(spans) - 2} more" if len(spans) > 2 else "")


def _pct(x: float) -> str:
    return f"{100.0 * x:.0f} %"


def _cause_reason(r: SimResult, i: int, cause: str, mask: np.ndarray) -> str:
    """One line for link ``i`` losing the steps in ``mask`` to ``cause``."""
    topo = r.topology
    abort = topo.monitoring.qber_abort
    spans = _spans(mask, r.times_s, r.step_s)
    if cause in ("cut", "re-authenticating", "quarantined"):
        word = {"cut": "cut", "re-authenticating": "re-authenticating",
                "quarantined": "quarantined"}[cause]
        text = f"{word} {_span_text(spans)}"
        if cause == "quarantined":
            text += f" (QBER above the abort level {_pct(abort)} with no known cause)"
        return text
    if cause == "node-down":
        ln = topo.links[i]
        ends = [n for n in (ln.a, ln.b) if r.node_down is not None and
                r.node_down[[x.id for x in topo.nodes].index(n)][mask].any()]
        return f"node {' and '.join(ends)} down {_span_text(spans)}"
    if cause == "outside-pass":
        return "outside satellite passes"
    if cause == "weather":
        return f"clouds {mask.sum() * r.step_s / 3600:.1f} h"
    v = r.viability[i] if r.viability else None
    q = float(np.median(r.link_qber[i][mask]))
    if v is not None and v.state != "ok":
        # The link as built cannot make key (at least at peak traffic): name the physics.
        if v.has_raman and v.qber_without_raman <= abort and q > abort:
            return f"Raman noise: QBER {_pct(q)}"
        return no_key_reason(v, abort)
    if cause == "qber-abort":
        return f"QBER {_pct(q)} above the abort level {_pct(abort)}"
    return f"no secret key at these conditions (QBER {_pct(q)})"


def diagnose_links(r: SimResult) -> list[LinkDiagnosis]:
    """Availability (making key), state and the main reason of lost time, per link."""
    out = []
    dt = r.step_s
    making = r.making_key()
    for i in range(len(r.topology.links)):
        avail = float(making[i].mean())
        lost: dict[str, float] = {}
        codes = r.link_cause[i] if r.link_cause is not None else None
        if codes is not None:
            counts = np.bincount(codes, minlength=len(CAUSES))
            lost = {CAUSES[c]: float(n * dt) for c, n in enumerate(counts) if c and n}
        if avail >= 1.0 or not lost or codes is None:
            out.append(LinkDiagnosis(avail, "ok" if avail >= 1.0 else "partial", None,
                                     False, lost))
            continue
        main = max(lost, key=lambda c: lost[c])
        reason = _cause_reason(r, i, main, codes == CAUSES.index(main))
        state: LinkState = "no-key" if avail == 0.0 else "partial"
        if state == "partial":
            reason += f"; no key {_pct(1.0 - avail)} of the time"
        v = r.viability[i] if r.viability else None
        physical = main in ("qber-abort", "zero-rate") and v is not None and v.state != "ok"
        out.append(LinkDiagnosis(avail, state, reason, physical, lost))
    return out


def _headrooms(r: SimResult, which: list[int]) -> dict[int, Headroom]:
    """Worst window's max-flow between each demand's sites over the links' production."""
    topo = r.topology
    if not which or not topo.links:
        return {}
    node_index = {n.id: k for k, n in enumerate(topo.nodes)}
    a = np.array([node_index[ln.a] for ln in topo.links])
    b = np.array([node_index[ln.b] for ln in topo.links])
    n_nodes = len(topo.nodes)
    steps = max(1, round(min(HEADROOM_WINDOW_S, r.duration_s) / r.step_s))
    n_steps = r.link_rate_bps.shape[1]
    worst: dict[int, tuple[float, float]] = {}
    for k0 in range(0, n_steps - steps + 1, steps):
        cap = r.link_rate_bps[:, k0:k0 + steps].mean(axis=1)
        top = float(cap.max())
        if top <= 0.0:
            flows = dict.fromkeys(which, 0.0)
        else:
            scale = _FLOW_SCALE_MAX / top
            ints = np.floor(cap * scale).astype(np.int64)
            g = csr_matrix((np.concatenate([ints, ints]).astype(np.int32),
                            (np.concatenate([a, b]), np.concatenate([b, a]))),
                           shape=(n_nodes, n_nodes))
            g.sum_duplicates()
            flows = {}
            for j in which:
                d = topo.demands[j]
                res = maximum_flow(g, node_index[d.a], node_index[d.b])
                flows[j] = float(res.flow_value) / scale
        for j, f in flows.items():
            if j not in worst or f < worst[j][1]:
                worst[j] = (float(r.times_s[k0]), f)
    return {j: Headroom(t, f, topo.demands[j].rate_bps) for j, (t, f) in worst.items()}


def _routes(r: SimResult, j: int) -> list[tuple[int, ...]]:
    """Routes the demand was given over the run; the fewest-hop ones if it never had one."""
    seen: list[tuple[int, ...]] = []
    for seg in r.path_segments[j] if r.path_segments else []:
        for route in seg.routes:
            if route not in seen:
                seen.append(route)
    if seen:
        return seen
    topo = r.topology
    node_index = {n.id: k for k, n in enumerate(topo.nodes)}
    router = Router(len(topo.nodes), [(node_index[ln.a], node_index[ln.b]) for ln in topo.links])
    d = topo.demands[j]
    ones = np.ones(len(topo.links))
    planned = router.plan([(node_index[d.a], node_index[d.b])], ones > 0, ones)[0]
    return [tuple(p) for p in planned]


def _short_steps(r: SimResult, j: int) -> np.ndarray:
    """Steps in which the demand got less than it asked (initial fill not counted unless the
    run counts it)."""
    d = r.topology.demands[j]
    got = r.demand_delivered_bits[j].copy()
    if r.demand_from_initial_bits is not None and not r.count_initial_fill:
        got -= r.demand_from_initial_bits[j]
    return np.asarray(got < d.rate_bps * r.step_s * (1 - 1e-9))


def _blocking_cause(r: SimResult, i: int, short: np.ndarray) -> str:
    """What stopped link ``i`` during the demand's short steps, in a few words."""
    codes = r.link_cause[i] if r.link_cause is not None else None
    if codes is None:
        return "no key"
    lost = codes[short]
    lost = lost[lost != CAUSE_CODES["making-key"]]
    if lost.size == 0:
        return "no key"
    main = int(np.bincount(lost).argmax())
    return _cause_reason(r, i, CAUSES[main], codes == main)


def _demand_reason(r: SimResult, j: int, links: list[LinkDiagnosis],
                   headroom: Headroom | None) -> str:
    topo = r.topology
    d = topo.demands[j]
    ids = [ln.id for ln in topo.links]
    routes = _routes(r, j)
    if not routes:
        return f"no path: {d.a} and {d.b} are not connected"
    short = _short_steps(r, j)
    making = r.making_key()
    # A link blocks a route when it made no key in most of the steps the demand was short.
    blocked = [[i for i in route if short.any() and making[i][short].mean() < 0.5]
               for route in routes]
    if all(blocked):
        n = len(routes)
        which = ("the only path contains" if n == 1 else "both paths contain" if n == 2
                 else f"all {n} paths contain")
        named = sorted(dict.fromkeys(i for bad in blocked for i in bad),
                       key=lambda i: links[i].availability)  # dead all run first
        text = f"{which} a zero-rate link: " + ", ".join(
            f"{ids[i]} ({_blocking_cause(r, i, short)})" for i in named)
    elif headroom is not None and headroom.ratio < 1.0:
        end = headroom.worst_hour_start_s + min(HEADROOM_WINDOW_S, r.duration_s)
        text = (f"short: in the worst hour ({clock(headroom.worst_hour_start_s)}-{clock(end)}) "
                f"the links could deliver {format_bps(headroom.worst_hour_deliverable_bps)} of the "
                f"{format_bps(d.rate_bps)} requested")
    else:
        # Links on the routes that lost key while the demand was short.
        partial = dict.fromkeys(i for route in routes for i in route
                                if short.any() and making[i][short].mean() < 1.0)
        higher = [o.id for o in topo.demands if o.priority > d.priority]
        if partial:
            text = "paths interrupted: " + ", ".join(
                f"{ids[i]} ({_blocking_cause(r, i, short)})" for i in list(partial)[:3])
        elif higher:
            text = "key taken by higher-priority demands: " + ", ".join(higher[:3])
        else:
            text = "the pools could not follow the demand (capacity or re-planning)"
    if r.demand_from_initial_bits is not None:
        used = np.flatnonzero(r.demand_from_initial_bits[j] > 0)
        if used.size:
            text += f"; served from the initial pool until {clock(r.times_s[used[-1]] + r.step_s)}"
    return text


def format_bps(v: float) -> str:
    """A rate in bit/s as people read it (2 decimals of Mbit/s or kbit/s, else bit/s)."""
    for unit, scale in (("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.1f} bit/s"


def diagnose_demands(r: SimResult, links: list[LinkDiagnosis]) -> list[DemandDiagnosis]:
    topo = r.topology
    served = []
    for j, d in enumerate(topo.demands):
        requested = d.rate_bps * r.duration_s
        got = float(r.demand_delivered_bits[j].sum())
        if r.demand_from_initial_bits is not None and not r.count_initial_fill:
            got -= float(r.demand_from_initial_bits[j].sum())
        served.append(got / requested if requested else 1.0)
    windows = max(1, int(r.duration_s // HEADROOM_WINDOW_S))
    unmet = [j for j, f in enumerate(served) if f < MET_FRACTION]
    every = len(topo.demands) * windows <= MAX_FLOWS
    heads = _headrooms(r, list(range(len(topo.demands))) if every else unmet)
    out = []
    for j, f in enumerate(served):
        met = f >= MET_FRACTION
        h = heads.get(j)
        out.append(DemandDiagnosis(met, None if met else _demand_reason(r, j, links, h), h))
    return out


def path_entries(r: SimResult, j: int) -> list[dict[str, Any]]:
    """The demand's candidate routes over time, with the trusted nodes each one relays through."""
    topo = r.topology
    d = topo.demands[j]
    out: list[dict[str, Any]] = []
    segments = r.path_segments[j] if r.path_segments else []
    for seg in segments[:MAX_PATH_ENTRIES]:
        routes = []
        for route in seg.routes:
            nodes = [d.a]
            for i in route:
                ln = topo.links[i]
                nodes.append(ln.b if ln.a == nodes[-1] else ln.a)
            routes.append({"links": [topo.links[i].id for i in route], "nodes": nodes,
                           "trusted_nodes": nodes[1:-1]})
        out.append({"from_s": seg.from_s,
                    "to_s": r.duration_s if seg.to_s is None else seg.to_s, "routes": routes})
    if len(segments) > MAX_PATH_ENTRIES:
        out.append({"truncated": True, "more": len(segments) - MAX_PATH_ENTRIES})
    return out


__all__ = ["CAUSES", "CAUSE_CODES", "DemandDiagnosis", "Headroom", "LinkDiagnosis", "clock",
           "diagnose_demands", "diagnose_links", "format_bps", "path_entries"]
