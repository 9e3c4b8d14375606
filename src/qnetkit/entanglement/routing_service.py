"""The state of one request while it is served (``routing``): its path, the free memories at
each position, the pairs stored and in flight, and its cutoff deadlines."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from qnetkit.entanglement.routing_result import LinkParams

_INF = math.inf

# A pair between path positions s < e of one request is a list (made in the inner loop, a list
# costs a fraction of an object): [s, e, uid, t_c, q_s, q_e, known_s, depth, alive] with uid its
# record in the PairHistory, t_c when it was made (its state's time), q_s and q_e when its two
# qubits' storage began, known_s when all its swap outcomes are known at both ends, depth its
# level in the swap tree of its record chunk (PairHistory.flush), alive False once consumed.
_Segment = list[Any]
_S, _E, _UID, _TC, _QS, _QE, _KNOWN, _DEPTH, _ALIVE = range(9)


class _Service:
    """A request being served on its allocated path."""

    def __init__(self, req: int, path: list[int], links: list[int], hops: list[LinkParams],
                 k: int, cum_km: list[float], limit_s: list[float], now_s: float) -> None:
        n = len(path)
        self.req, self.path, self.hops, self.k, self.cum_km = req, path, hops, k, cum_km
        self.links = links  # index of each hop's link
        self.last = n - 1
        # Per-hop constants of the geometric draw, and per-position storage limits (hot loop).
        self.log_fail = [hop.log_fail for hop in hops]
        self.attempt_s = [hop.attempt_s for hop in hops]
        self.limit_s = [limit_s[u] for u in path]
        self.since_s = now_s
        self.free_r = [k] * n  # memories facing the next node, per path position
        self.free_l = [k] * n  # memories facing the previous node
        self.ending: list[deque[_Segment]] = [deque() for _ in range(n)]
        self.starting: list[deque[_Segment]] = [deque() for _ in range(n)]
        # Pairs spanning the path whose swap outcomes are still travelling (a dict: ordered).
        self.in_flight: dict[int, _Segment] = {}  # by uid
        # Cutoff deadlines of the pairs made (dead ones dropped when they surface) and the one
        # watchdog on the agenda, at the earliest: one event per service, not one per pair.
        # watch_seq is the live watchdog's insertion number (-1: none); others are stale.
        self.deadlines: list[tuple[float, int, _Segment]] = []
        self.watch_seq = -1
        self.watch_s = _INF
        self.active = True


__all__ = ["_ALIVE", "_DEPTH", "_E", "_KNOWN", "_QE", "_QS", "_S", "_TC", "_UID", "_Segment",
           "_Service"]
