"""``summary.json`` of a ``qnetkit network simulate`` run, checked field by field into dataclasses.

The format since issue 13: a link's ``availability`` is the fraction of steps it produced secret
key (``connected_fraction`` is the old meaning: up and authenticated), with a ``state`` (ok /
partial / no-key) and a one-line ``reason``; a demand separates key served from production and
from the initial pool fill, says whether it was ``met`` and why not, its ``headroom`` (worst
hour's deliverable rate against the requested one) and the candidate ``paths`` over time; an
alarm is an episode (start, end or still active, peak value, steps).

A summary of an older qnetkit (no such fields; one alarm record per step with ``time_s`` and
``value``) still reads: the new fields are absent (``None``), each old alarm is a one-step
episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qnetkit.ops.report._checks import (
    ReportError,
    _count,
    _entries,
    _num,
    _num_map,
    _obj,
    _opt_bool,
    _opt_str,
    _req_num,
    _req_text,
    _str_list,
    _sub_entries,
    _text,
)

DEFAULT_QBER_WARNING = 0.05
DEFAULT_QBER_ABORT = 0.11


@dataclass(frozen=True)
class _Node:
    id: str
    kind: str
    x_km: float
    y_km: float
    down_s: float | None = None


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
    availability: float | None  # fraction of steps making key (connected, in older summaries)
    published_rate_bps: float | None
    connected_fraction: float | None = None
    state: str | None = None  # "ok" | "partial" | "no-key"; None in older summaries
    reason: str | None = None
    physical_limit: bool = False
    unavailable_s: dict[str, float] = field(default_factory=dict)
    initial_pool_bits: float | None = None
    pool_capacity_bits: float | None = None

    @property
    def no_key(self) -> bool:
        """Highlighted: the link never made key, or cannot for a physical reason."""
        return self.physical_limit or self.state == "no-key"


@dataclass(frozen=True)
class _Headroom:
    worst_hour_start_s: float | None
    worst_hour_deliverable_bps: float
    requested_bps: float
    ratio: float | None


@dataclass(frozen=True)
class _Route:
    links: list[str]
    nodes: list[str]
    trusted_nodes: list[str]


@dataclass(frozen=True)
class _PathSpan:
    """The candidate path set of a demand from ``from_s`` to ``to_s``; no routes = no path."""

    from_s: float
    to_s: float | None
    routes: list[_Route]


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
    served_from_production_bits: float | None = None
    served_from_initial_bits: float | None = None
    served_fraction_with_initial: float | None = None
    met: bool | None = None
    reason: str | None = None
    headroom: _Headroom | None = None
    paths: list[_PathSpan] = field(default_factory=list)
    paths_truncated: bool = False  # the path list was cut short: ...
    paths_truncated_from_s: float | None = None  # ... after this time
    paths_more: int | None = None  # ... by this many intervals


@dataclass(frozen=True)
class _Incident:
    kind: str
    link: str
    time_s: float
    detected_s: float | None
    detail: str
    node: bool = False  # ``link`` holds a node id (node-down, node-repair)


@dataclass(frozen=True)
class _Alarm:
    """One alarm episode: from ``start_s`` to ``end_s`` (None: still active at the end)."""

    kind: str
    level: str
    link: str
    start_s: float
    end_s: float | None
    active: bool
    peak_value: float | None
    peak_text: str  # the value as written, when it is not a number (older summaries)
    steps: int | None


@dataclass(frozen=True)
class _Pools:
    initial_fill: str | float | None  # "empty" | "full" | seconds of production
    capacity_bits_default: float | None
    served_counts_initial: bool | None


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
    pools: _Pools | None = None


def _fmt_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _link(e: dict[str, Any], i: int) -> _Link:
    w = f"links[{i}]"
    state = _opt_str(e, "state", w)
    return _Link(
        id=_req_text(e, "id", w),
        a=_text(e, "a"),
        b=_text(e, "b"),
        kind=_text(e, "kind"),
        length_km=_num(e, "length_km", w),
        secret_bits=_num(e, "secret_bits", w),
        mean_rate_bps=_num(e, "mean_rate_bps", w),
        mean_qber=_num(e, "mean_qber", w),
        availability=_num(e, "availability", w),
        published_rate_bps=_num(e, "published_rate_bps", w),
        connected_fraction=_num(e, "connected_fraction", w),
        state=state,
        reason=_opt_str(e, "reason", w),
        physical_limit=bool(_opt_bool(e, "physical_limit", w)),
        unavailable_s=_num_map(e, "unavailable_s", w),
        initial_pool_bits=_num(e, "initial_pool_bits", w),
        pool_capacity_bits=_num(e, "pool_capacity_bits", w),
    )


def _headroom(e: dict[str, Any], w: str) -> _Headroom | None:
    h = _obj(e, "headroom", w)
    if h is None:
        return None
    w = f"{w}.headroom"
    deliverable = _req_num(h, "worst_hour_deliverable_bps", w)
    requested = _req_num(h, "requested_bps", w)
    ratio = _num(h, "ratio", w)
    if ratio is None and requested > 0:
        ratio = deliverable / requested
    return _Headroom(_num(h, "worst_hour_start_s", w), deliverable, requested, ratio)


def _paths(
    e: dict[str, Any], w: str
) -> tuple[list[_PathSpan], bool, float | None, int | None]:
    spans: list[_PathSpan] = []
    truncated, truncated_from, more = False, None, None
    for k, p in enumerate(_sub_entries(e, "paths", w)):
        pw = f"{w}.paths[{k}]"
        if _opt_bool(p, "truncated", pw):
            truncated, truncated_from = True, _num(p, "from_s", pw)
            more = _count(p, "more", pw)
            continue
        routes = [
            _Route(links=_str_list(r, "links", f"{pw}.routes[{j}]"),
                   nodes=_str_list(r, "nodes", f"{pw}.routes[{j}]"),
                   trusted_nodes=_str_list(r, "trusted_nodes", f"{pw}.routes[{j}]"))
            for j, r in enumerate(_sub_entries(p, "routes", pw))
        ]
        spans.append(_PathSpan(_req_num(p, "from_s", pw), _num(p, "to_s", pw), routes))
    return spans, truncated, truncated_from, more


def _demand(e: dict[str, Any], i: int) -> _Demand:
    w = f"demands[{i}]"
    paths, truncated, truncated_from, more = _paths(e, w)
    return _Demand(
        id=_req_text(e, "id", w),
        a=_text(e, "a"),
        b=_text(e, "b"),
        rate_bps=_num(e, "rate_bps", w),
        policy=_text(e, "policy"),
        priority=_text(e, "priority"),
        requested_bits=_num(e, "requested_bits", w),
        delivered_bits=_num(e, "delivered_bits", w),
        served_fraction=_num(e, "served_fraction", w),
        fallback_s=_num(e, "fallback_s", w),
        served_from_production_bits=_num(e, "served_from_production_bits", w),
        served_from_initial_bits=_num(e, "served_from_initial_bits", w),
        served_fraction_with_initial=_num(e, "served_fraction_with_initial", w),
        met=_opt_bool(e, "met", w),
        reason=_opt_str(e, "reason", w),
        headroom=_headroom(e, w),
        paths=paths,
        paths_truncated=truncated,
        paths_truncated_from_s=truncated_from,
        paths_more=more,
    )


def _alarm(e: dict[str, Any], i: int) -> _Alarm:
    w = f"alarms[{i}]"
    kind, level, link = _text(e, "kind"), _text(e, "level"), _text(e, "link")
    start = _num(e, "start_s", w)
    if start is None:
        # A per-step alarm of an older qnetkit: a one-step episode; its value may be any text.
        t = _req_num(e, "time_s", w)
        v = e.get("value")
        num = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        return _Alarm(kind=kind, level=level, link=link, start_s=t, end_s=t, active=False,
                      peak_value=num, peak_text="" if num is not None else _fmt_value(v),
                      steps=1)
    end = _num(e, "end_s", w)
    active = _opt_bool(e, "active", w)
    peak = _num(e, "peak_value", w)
    return _Alarm(
        kind=kind, level=level, link=link, start_s=start, end_s=end,
        active=(end is None) if active is None else active,
        peak_value=peak if peak is not None else _num(e, "value", w),
        peak_text="", steps=_count(e, "steps", w),
    )


def _pools(data: dict[str, Any]) -> _Pools | None:
    p = _obj(data, "pools", "(top level)")
    if p is None:
        return None
    fill = p.get("initial_fill")
    if fill is not None and (isinstance(fill, bool) or not isinstance(fill, str | int | float)):
        raise ReportError(f"summary.json: pools.initial_fill is not 'empty', 'full' or a "
                          f"number of seconds: {fill!r}"[:200])
    return _Pools(
        initial_fill=float(fill) if isinstance(fill, int | float) else fill,
        capacity_bits_default=_num(p, "capacity_bits_default", "pools"),
        served_counts_initial=_opt_bool(p, "served_counts_initial", "pools"),
    )


def _parse_summary(data: Any) -> _Summary:
    if not isinstance(data, dict):
        raise ReportError("summary.json is not a JSON object")
    links = [_link(e, i) for i, e in enumerate(_entries(data, "links", required=True))]
    demands = [_demand(e, i) for i, e in enumerate(_entries(data, "demands"))]
    incidents = [
        _Incident(
            kind=_text(e, "kind", "incident"),
            link=_text(e, "link"),
            time_s=_req_num(e, "time_s", f"incidents[{i}]"),
            detected_s=_num(e, "detected_s", f"incidents[{i}]"),
            detail=_text(e, "detail"),
            node=bool(_opt_bool(e, "node", f"incidents[{i}]")),
        )
        for i, e in enumerate(_entries(data, "incidents"))
    ]
    alarms = [_alarm(e, i) for i, e in enumerate(_entries(data, "alarms"))]
    nodes = [
        _Node(
            id=_req_text(e, "id", f"nodes[{i}]"),
            kind=_text(e, "kind", "kme"),
            x_km=_num(e, "x_km", f"nodes[{i}]") or 0.0,
            y_km=_num(e, "y_km", f"nodes[{i}]") or 0.0,
            down_s=_num(e, "down_s", f"nodes[{i}]"),
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
        pools=_pools(data),
    )
