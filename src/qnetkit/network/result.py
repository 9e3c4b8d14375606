"""A network twin run: the time series it made and its summary (what ``--json`` prints).

In the summary a link's ``availability`` is the share of steps it made secret key; the time
it did not is broken down by cause (``unavailable_s``) with a one-line ``reason``. A demand's
``served_fraction`` counts key made during the run only, unless the run was asked to count
the pools' initial fill (``count_initial_fill``); both are given apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qnetkit._types import BoolArray, FloatArray
from qnetkit.network.diagnosis import (
    CAUSE_CODES,
    CAUSES,
    diagnose_demands,
    diagnose_links,
    path_entries,
)
from qnetkit.network.topology import InitialFill, Link, Topology
from qnetkit.network.viability import LinkViability


@dataclass
class PathSegment:
    """A demand's candidate routes (link indices, source to destination) from ``from_s``."""

    from_s: float
    to_s: float | None
    routes: tuple[tuple[int, ...], ...]


@dataclass
class SimResult:
    topology: Topology
    duration_s: float
    seed: int
    times_s: FloatArray
    link_rate_bps: FloatArray  # (links, steps): secret key produced while up
    link_qber: FloatArray
    link_up: BoolArray  # up and authenticated (not necessarily making key)
    link_pool_bits: FloatArray
    link_efficiency: FloatArray
    demand_delivered_bits: FloatArray  # (demands, steps), initial fill included
    demand_fallback: BoolArray
    incidents: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)  # episodes
    relayed_bits_per_link: FloatArray | None = None
    wall_s: float = 0.0
    link_cause: np.ndarray | None = None  # (links, steps) int8 codes of ``CAUSES``
    node_down: BoolArray | None = None  # (nodes, steps)
    demand_from_initial_bits: FloatArray | None = None  # (demands, steps)
    initial_pool_bits: FloatArray | None = None  # (links,)
    initial_fill: InitialFill = "empty"
    count_initial_fill: bool = False
    path_segments: list[list[PathSegment]] = field(default_factory=list)
    viability: list[LinkViability] = field(default_factory=list)

    @property
    def step_s(self) -> float:
        return self.topology.step_s

    def making_key(self) -> BoolArray:
        """(links, steps): the link produced secret key in the step."""
        if self.link_cause is None:
            return np.asarray(self.link_rate_bps > 0)
        return np.asarray(self.link_cause == CAUSE_CODES["making-key"])

    def summary(self) -> dict[str, Any]:
        """The run in one JSON-able dict (what ``--json`` prints and the report reads)."""
        topo = self.topology
        dt = self.step_s
        link_diag = diagnose_links(self)
        links = []
        for i, ln in enumerate(topo.links):
            up = self.link_up[i]
            q = self.link_qber[i][up]
            diag = link_diag[i]
            links.append({
                "id": ln.id, "a": ln.a, "b": ln.b, "kind": ln.kind, "length_km": ln.length_km,
                "protocol": (ln.qkd.protocol if ln.repeater is None
                             else f"{ln.repeater.key_protocol} (repeater)"),
                "secret_bits": float(self.link_rate_bps[i].sum() * dt),
                "mean_rate_bps": float(self.link_rate_bps[i].mean()),
                "mean_qber": float(q.mean()) if q.size else None,
                "availability": diag.availability,
                "connected_fraction": float(up.mean()),
                "state": diag.state, "reason": diag.reason,
                "physical_limit": diag.physical_limit,
                "unavailable_s": diag.unavailable_s,
                "initial_pool_bits": (None if self.initial_pool_bits is None
                                      else float(self.initial_pool_bits[i])),
                "pool_capacity_bits": ln.pool_capacity_bits,
                "published_rate_bps": ln.published_rate_bps,
            })
        demands = []
        for j, (d, dd) in enumerate(zip(topo.demands, diagnose_demands(self, link_diag),
                                        strict=True)):
            requested = d.rate_bps * self.duration_s
            delivered = float(self.demand_delivered_bits[j].sum())
            old = (0.0 if self.demand_from_initial_bits is None
                   else float(self.demand_from_initial_bits[j].sum()))
            with_initial = delivered / requested if requested else 1.0
            production = (delivered - old) / requested if requested else 1.0
            demands.append({
                "id": d.id, "a": d.a, "b": d.b, "rate_bps": d.rate_bps, "policy": d.policy,
                "priority": d.priority, "requested_bits": requested, "delivered_bits": delivered,
                "served_from_production_bits": delivered - old,
                "served_from_initial_bits": old,
                "served_fraction": with_initial if self.count_initial_fill else production,
                "served_fraction_with_initial": with_initial,
                "fallback_s": float(self.demand_fallback[j].sum() * dt),
                "met": dd.met, "reason": dd.reason,
                "headroom": None if dd.headroom is None else dd.headroom.as_dict(),
                "paths": path_entries(self, j),
            })
        nodes_down = (np.zeros(len(topo.nodes)) if self.node_down is None
                      else self.node_down.sum(axis=1) * dt)
        return {
            "topology": topo.name, "description": topo.description, "source": topo.source,
            "duration_s": self.duration_s, "step_s": dt, "seed": self.seed,
            "wall_s": self.wall_s,
            "monitoring": {"qber_warning": topo.monitoring.qber_warning,
                           "qber_abort": topo.monitoring.qber_abort},
            "pools": {"initial_fill": self.initial_fill,
                      "capacity_bits_default": Link.model_fields["pool_capacity_bits"].default,
                      "served_counts_initial": self.count_initial_fill},
            "nodes": [{"id": n.id, "kind": n.kind, "x_km": n.x_km, "y_km": n.y_km,
                       "down_s": float(nodes_down[i])} for i, n in enumerate(topo.nodes)],
            "links": links, "demands": demands,
            "incidents": self.incidents, "alarms": self.alarms,
        }


__all__ = ["CAUSES", "CAUSE_CODES", "PathSegment", "SimResult"]
