"""Elementary-link parameters and the typed results of an entanglement-routing run."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.entanglement.routing_topology import EntLink, EntRequest
from qnetkit.entanglement.states import werner
from qnetkit.physics.memory import QuantumMemory

__all__ = ["LinkParams", "NodeUsage", "RequestResult", "RoutingResult", "link_params"]


@dataclass(frozen=True)
class LinkParams:
    """One elementary link as the router uses it.

    ``log_fail`` is ``ln(1 - success_prob)`` (``-inf`` when every attempt succeeds), the
    denominator of the geometric draw of the number of attempts.
    """

    length_km: float
    success_prob: float
    attempt_s: float
    coeffs: FloatArray  # Bell-diagonal state on success (Phi+, Psi-, Psi+, Phi-)
    scheme: str

    @functools.cached_property
    def log_fail(self) -> float:
        return -math.inf if self.success_prob >= 1.0 else math.log1p(-self.success_prob)


def link_params(link: EntLink, memory_a: QuantumMemory, memory_b: QuantumMemory) -> LinkParams:
    """The link's success probability, attempt time and heralded state.

    Values the file gives are used as they are (``fidelity``: a Werner state); the others come
    from the link's heralding scheme (``qnetkit.physics.heralding``) at its length, with the
    two end memories' retrieval efficiencies (their geometric mean, the scheme taking one).
    The attempt time defaults to ``heralding_attempt_s(length_km)``: a midpoint station, the
    photon travelling L/2 out and the herald L/2 back.
    """
    from qnetkit.physics import heralding

    p, coeffs, attempt_s = link.success_prob, None, link.attempt_s
    scheme = "fixed"
    if link.fidelity is not None:
        coeffs = werner(link.fidelity)
    if p is None or coeffs is None:
        scheme = link.scheme
        eta = math.sqrt(memory_a.efficiency * memory_b.efficiency)
        if link.scheme == "single-click":
            h = heralding.single_click_link(link.length_km, loss_db_per_km=link.loss_db_per_km,
                                            memory_efficiency=eta)
        elif link.scheme == "double-click":
            h = heralding.double_click_link(link.length_km, loss_db_per_km=link.loss_db_per_km,
                                            memory_efficiency=eta)
        else:
            h = heralding.spdc_multiplexed_link(link.length_km, modes=link.modes,
                                                loss_db_per_km=link.loss_db_per_km,
                                                memory_efficiency=eta)
        p = h.success_prob if p is None else p
        coeffs = np.asarray(h.bell_diagonal, dtype=np.float64) if coeffs is None else coeffs
        attempt_s = h.attempt_s if attempt_s is None else attempt_s
    if attempt_s is None:
        attempt_s = heralding.heralding_attempt_s(link.length_km)
    return LinkParams(length_km=link.length_km, success_prob=float(p),
                      attempt_s=float(attempt_s), coeffs=np.asarray(coeffs, dtype=np.float64),
                      scheme=scheme)


@dataclass
class RequestResult:
    """What one request got. ``state``: done (all its pairs), serving (still at the end of the
    run), queued (waiting for memories at the end), withdrawn (its ``end_s`` passed) or
    not-started (arrives after the run).

    ``delivery_times_s[j]`` is when pair j reached both end nodes, ``fidelities[j]`` and
    ``states[j]`` (Bell-diagonal) its fidelity and state then; ``waiting_times_s[j]`` the time
    from the previous delivered pair (the first: from the arrival, queueing included) to pair
    j; ``queue_wait_s`` the time from the arrival until memories were allocated (None if
    never); ``below_min_fidelity`` how many delivered pairs fell short of the request's
    ``min_fidelity``; ``lost_pairs`` how many pairs were dropped on the way (cutoff, failed
    swaps).
    """

    id: str
    a: str
    b: str
    pairs_wanted: int | None
    start_s: float
    state: str = "not-started"
    path: list[str] = field(default_factory=list)
    queue_wait_s: float | None = None
    finished_s: float | None = None
    delivery_times_s: list[float] = field(default_factory=list)
    fidelities: FloatArray = field(default_factory=lambda: np.zeros(0))
    waiting_times_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    states: FloatArray = field(default_factory=lambda: np.zeros((0, 4)))
    below_min_fidelity: int = 0
    lost_pairs: int = 0

    @classmethod
    def empty(cls, req: EntRequest) -> RequestResult:
        return cls(id=req.id, a=req.a, b=req.b, pairs_wanted=req.pairs, start_s=req.start_s)

    def set_states(self, states: FloatArray, min_fidelity: float | None) -> None:
        """The delivered pairs' states (delivery order), from ``PairHistory.evaluate``."""
        self.states = states
        self.fidelities = np.asarray(states[:, 0], dtype=np.float64)
        times = np.asarray(self.delivery_times_s, dtype=np.float64)
        self.waiting_times_s = np.diff(times, prepend=self.start_s)
        if min_fidelity is not None:
            self.below_min_fidelity = int(np.count_nonzero(self.fidelities < min_fidelity))

    @property
    def delivered_pairs(self) -> int:
        return len(self.delivery_times_s)

    @property
    def mean_fidelity(self) -> float:
        return float(np.mean(self.fidelities)) if len(self.fidelities) else math.nan

    @property
    def mean_waiting_time_s(self) -> float:
        return float(np.mean(self.waiting_times_s)) if len(self.waiting_times_s) else math.nan

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id, "a": self.a, "b": self.b, "state": self.state,
            "pairs_wanted": self.pairs_wanted, "delivered_pairs": self.delivered_pairs,
            "below_min_fidelity": self.below_min_fidelity, "lost_pairs": self.lost_pairs,
            "mean_fidelity": self.mean_fidelity,
            "lowest_fidelity": float(self.fidelities.min()) if len(self.fidelities) else None,
            "mean_waiting_time_s": self.mean_waiting_time_s,
            "queue_wait_s": self.queue_wait_s, "start_s": self.start_s,
            "finished_s": self.finished_s, "hops": max(0, len(self.path) - 1),
            "path": self.path,
        }


@dataclass(frozen=True)
class NodeUsage:
    """A node's memories over the run: ``utilisation`` is the time-averaged fraction held by
    requests, ``storing_fraction`` the fraction holding a stored qubit, ``peak_reserved`` the
    most memories held at once."""

    id: str
    memories: int
    utilisation: float
    storing_fraction: float
    peak_reserved: int


@dataclass
class RoutingResult:
    """A routing run: per request and per node, with the engine's event count and wall time."""

    name: str
    duration_s: float
    seed: int
    path_policy: str
    requests: list[RequestResult]
    nodes: list[NodeUsage]
    events: int
    wall_s: float

    def request(self, request_id: str) -> RequestResult:
        return next(r for r in self.requests if r.id == request_id)

    def node(self, node_id: str) -> NodeUsage:
        return next(n for n in self.nodes if n.id == node_id)

    def summary(self) -> dict[str, Any]:
        """Plain data for JSON: requests, the nodes any request used, totals."""
        used = [n for n in self.nodes if n.peak_reserved > 0]
        delivered = sum(r.delivered_pairs for r in self.requests)
        return {
            "network": self.name, "duration_s": self.duration_s, "seed": self.seed,
            "path_policy": self.path_policy, "events": self.events, "wall_s": self.wall_s,
            "delivered_pairs": delivered,
            "requests": [r.summary() for r in self.requests],
            "nodes": [{"id": n.id, "memories": n.memories, "utilisation": n.utilisation,
                       "storing_fraction": n.storing_fraction,
                       "peak_reserved": n.peak_reserved} for n in used],
            "nodes_unused": len(self.nodes) - len(used),
        }
