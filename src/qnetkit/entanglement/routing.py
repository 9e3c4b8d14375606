"""Entanglement routing with concurrent requests sharing the nodes' quantum memories.

Model (event-driven on :class:`qnetkit.sim.Simulator`; the file format is
:mod:`qnetkit.entanglement.routing_topology`):

* **Requests and queueing.** A request arrives at ``start_s`` and joins a queue ordered by
  arrival. Whenever memories are freed (and on each arrival) the queue is scanned in arrival
  order and every request that now finds a path is started (first fit with back-filling: a
  later request whose path is free does not wait behind one whose path is not).
* **Path choice and memory allocation.** A path is usable when each inner node has
  ``2 x multiplex`` free memories and each end node ``multiplex``. Among usable paths the policy
  ``fewest-hops`` takes the one with fewest hops (ties: fewest km), ``shortest-km`` the shortest
  (ties: fewest hops); a Dijkstra search over the usable nodes with those lexicographic weights.
  The request holds these memories until it has its ``pairs`` (or ``end_s`` passes), then frees
  them; it is never re-routed.
* **Elementary links.** Each hop runs ``multiplex`` generators, each needing one free memory at
  both ends. The number of attempts to success is geometric, ``N = 1 + floor(ln U / ln(1-p))``,
  so a success is one event, not one per attempt; it is heralded ``N x attempt_s`` after the
  start, the qubits having been stored since the successful emission ``attempt_s`` earlier
  (midpoint heralding: the photon travels L/2 out, the herald L/2 back). The heralded state and
  ``p`` come from :mod:`qnetkit.physics.heralding` (Cabrillo et al., PRA 59, 1025 (1999);
  Barrett & Kok, PRA 71, 060310 (2005); Simon et al., PRL 98, 190503 (2007)) unless the file
  fixes them (a Werner state of the given fidelity).
* **Swapping (SWAP-ASAP).** As soon as a node holds a pair towards each side of the same
  request's path it swaps the oldest of each (:func:`qnetkit.entanglement.operations.swap`,
  Bell-diagonal XOR convolution; Duer, Briegel, Cirac & Zoller, PRA 59, 169 (1999), Sec. IV),
  frees its two memories and restarts link generation on both hops. The swap outcome travels to
  both end nodes at ``FIBER_GROUP_VELOCITY_KM_PER_S`` along the path; a pair spanning the whole
  path is delivered when the last outcome has reached both ends (Pauli frame tracking: further
  swaps need not wait for it).
* **Decoherence.** Each stored qubit decoheres in its node's memory
  (:func:`qnetkit.entanglement.operations.decohere_pair`, T1/T2 per node) for the time it is
  stored, brought up to date at each swap and at delivery (the states never steer the events,
  so they are computed after the run, in the same order, by
  :class:`qnetkit.entanglement.routing_states.PairHistory`). A pair is discarded when one of its
  qubits has been stored longer than ``cutoff_s`` (or its node's ``max_storage_s``); a failed
  Bell measurement (``swap.success_prob``) loses both pairs.
* **Figures.** Per request: delivered pairs, their fidelities (mean; how many fall below the
  request's ``min_fidelity``), waiting times (time from the previous delivery, the first from
  the arrival, so queueing counts) and the time spent in the queue. Per node: utilisation,
  the time-averaged fraction of its memories held by requests, and the fraction holding a
  stored qubit.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from typing import Any

import numpy as np

from qnetkit.entanglement.routing_result import (
    LinkParams,
    NodeUsage,
    RequestResult,
    RoutingResult,
    link_params,
)
from qnetkit.entanglement.routing_states import PairHistory
from qnetkit.entanglement.routing_topology import EntNetwork, EntRequest, RoutingFileError
from qnetkit.errors import ParameterError
from qnetkit.physics.heralding import FIBER_GROUP_VELOCITY_KM_PER_S
from qnetkit.physics.memory import QuantumMemory
from qnetkit.sim import Event, Simulator

__all__ = ["FIBER_GROUP_VELOCITY_KM_PER_S", "NodeUsage", "RequestResult", "RoutingResult",
           "simulate_routing"]

_UNIFORM_BATCH = 4096


class _Segment:
    """An entangled pair between path positions ``s`` < ``e`` of one request."""

    __slots__ = ("alive", "e", "known_s", "q_e", "q_s", "s", "t_c", "uid")

    def __init__(self, s: int, e: int, uid: int, t_c: float, q_s: float, q_e: float,
                 known_s: float) -> None:
        # uid: the pair's record in the PairHistory; t_c: when it was made (its state's time)
        self.s, self.e, self.uid, self.t_c = s, e, uid, t_c
        self.q_s, self.q_e, self.known_s = q_s, q_e, known_s  # storage starts; outcomes known
        self.alive = True


class _Service:
    """A request being served on its allocated path."""

    def __init__(self, req: int, path: list[int], links: list[int], hops: list[LinkParams],
                 k: int, cum_km: list[float], now_s: float) -> None:
        n = len(path)
        self.req, self.path, self.hops, self.k, self.cum_km = req, path, hops, k, cum_km
        self.links = links  # index of each hop's link
        self.since_s = now_s
        self.free_r = [k] * n  # memories facing the next node, per path position
        self.free_l = [k] * n  # memories facing the previous node
        self.ending: list[deque[_Segment]] = [deque() for _ in range(n)]
        self.starting: list[deque[_Segment]] = [deque() for _ in range(n)]
        # Pairs spanning the path whose swap outcomes are still travelling (a dict: ordered).
        self.in_flight: dict[_Segment, None] = {}
        # Cutoff deadlines of the pairs made (dead ones dropped when they surface) and the one
        # watchdog event, at the earliest: one engine event per service, not one per pair.
        self.deadlines: list[tuple[float, int, _Segment]] = []
        self.watch: Event | None = None
        self.watch_s = math.inf
        self.active = True


class _Router:
    def __init__(self, net: EntNetwork, duration_s: float, seed: int) -> None:
        self.net, self.duration_s = net, duration_s
        self.sim = Simulator(seed)
        self.rng_attempts = self.sim.streams.stream("routing.attempts")
        self.rng_swap = self.sim.streams.stream("routing.swap")
        self._u = np.empty(0)
        self._seq = 0  # tie-break of equal deadlines: order of making
        self._ui = 0
        self.ids = [n.id for n in net.nodes]
        index = {nid: i for i, nid in enumerate(self.ids)}
        self.capacity = [n.memories for n in net.nodes]
        self.free = list(self.capacity)
        inf = math.inf
        self.memory = [QuantumMemory(efficiency=n.efficiency, t1_s=n.t1_s or inf,
                                     t2_s=n.t2_s or inf, max_storage_s=n.max_storage_s or inf)
                       for n in net.nodes]
        self.ideal = [n.t1_s is None and n.t2_s is None for n in net.nodes]
        cutoff = net.cutoff_s or inf
        self.limit_s = [min(cutoff, m.max_storage_s) for m in self.memory]
        self.adj: list[list[tuple[int, int, float]]] = [[] for _ in net.nodes]
        self.links = [self._link(j, index) for j in range(len(net.links))]
        for j, ln in enumerate(net.links):
            a, b = index[ln.a], index[ln.b]
            self.adj[a].append((b, j, ln.length_km))
            self.adj[b].append((a, j, ln.length_km))
        self.link_ends = [(index[ln.a], index[ln.b]) for ln in net.links]
        sw = net.swap
        self.swap_p = sw.success_prob
        self.history = PairHistory(
            [ln.coeffs for ln in self.links], self.memory,
            {"gate_depolarizing": sw.gate_depolarizing, "measurement_error": sw.measurement_error})
        self.requests: list[EntRequest] = list(net.requests)
        self.ends = [(index[r.a], index[r.b]) for r in net.requests]
        self.results = [RequestResult.empty(r) for r in net.requests]
        self.states: list[list[Any]] = [[] for _ in net.requests]  # delivered, by chunk
        self.services: list[_Service | None] = [None] * len(net.requests)
        self.queue: list[int] = []
        self.reserved_s = [0.0] * len(net.nodes)  # memory-seconds held by requests
        self.stored_s = [0.0] * len(net.nodes)  # memory-seconds holding a qubit
        self.peak_reserved = [0] * len(net.nodes)

    def _link(self, j: int, index: dict[str, int]) -> LinkParams:
        ln = self.net.links[j]
        try:
            params = link_params(ln, self.memory[index[ln.a]], self.memory[index[ln.b]])
        except ParameterError as exc:
            raise RoutingFileError(self.net.name, [(f"links[{j}]", str(exc))]) from None
        if not params.success_prob > 0.0:
            raise RoutingFileError(self.net.name, [(f"links[{j}]", (
                f"the {params.scheme} link of {ln.length_km:g} km never succeeds "
                "(success probability 0)"))])
        return params

    # -- random numbers ---------------------------------------------------------------------

    def _uniform(self) -> float:
        if self._ui >= len(self._u):
            self._u = 1.0 - self.rng_attempts.random(_UNIFORM_BATCH)  # in (0, 1]
            self._ui = 0
        u = float(self._u[self._ui])
        self._ui += 1
        return u

    # -- queue and allocation ---------------------------------------------------------------

    def _arrive(self, r: int) -> None:
        self.results[r].state = "queued"
        self.queue.append(r)
        self._serve_queue()

    def _withdraw(self, r: int) -> None:
        svc = self.services[r]
        if svc is not None and svc.active:
            self._finish(svc, "withdrawn")
        elif r in self.queue:
            self.queue.remove(r)
            self.results[r].state = "withdrawn"

    def _serve_queue(self) -> None:
        for r in list(self.queue):
            path = self._find_path(r)
            if path is not None:
                self.queue.remove(r)
                self._start(r, path)

    def _find_path(self, r: int) -> list[tuple[int, int]] | None:
        """Lexicographic Dijkstra over nodes with free memories: [(node, link into it)]."""
        a, b = self.ends[r]
        k = self.requests[r].multiplex
        free = self.free
        if free[a] < k or free[b] < k:
            return None
        by_km = self.net.path_policy == "shortest-km"
        best: dict[int, tuple[float, float]] = {a: (0.0, 0.0)}
        back: dict[int, tuple[int, int]] = {}
        heap: list[tuple[float, float, int]] = [(0.0, 0.0, a)]
        done: set[int] = set()
        while heap:
            w1, w2, u = heapq.heappop(heap)
            if u in done:
                continue
            if u == b:
                break
            done.add(u)
            for v, j, km in self.adj[u]:
                if v in done or (v != b and free[v] < 2 * k):
                    continue
                key = (w1 + km, w2 + 1.0) if by_km else (w1 + 1.0, w2 + km)
                if key < best.get(v, (math.inf, math.inf)):
                    best[v] = key
                    back[v] = (u, j)
                    heapq.heappush(heap, (key[0], key[1], v))
        if b not in back:
            return None
        out = [(b, back[b][1])]
        while out[-1][0] != a:
            u, _ = back[out[-1][0]]
            out.append((u, back[u][1] if u != a else -1))
        out.reverse()
        return out

    def _start(self, r: int, route: list[tuple[int, int]]) -> None:
        k = self.requests[r].multiplex
        path = [u for u, _ in route]
        links = [j for _, j in route[1:]]
        hops = [self.links[j] for j in links]
        cum = [0.0]
        for hop in hops:
            cum.append(cum[-1] + hop.length_km)
        for i, u in enumerate(path):
            self.free[u] -= k if i in (0, len(path) - 1) else 2 * k
            used = self.capacity[u] - self.free[u]
            self.peak_reserved[u] = max(self.peak_reserved[u], used)
        res = self.results[r]
        res.state, res.path = "serving", [self.ids[u] for u in path]
        res.queue_wait_s = self.sim.now_s - self.requests[r].start_s
        svc = _Service(r, path, links, hops, k, cum, self.sim.now_s)
        self.services[r] = svc
        for h in range(len(hops)):
            self._generate(svc, h)

    def _finish(self, svc: _Service, state: str) -> None:
        now = self.sim.now_s
        svc.active = False
        if svc.watch is not None:
            svc.watch.cancel()
        svc.deadlines.clear()
        self.results[svc.req].state = state
        last = len(svc.path) - 1
        for i, u in enumerate(svc.path):
            held = svc.k if i in (0, last) else 2 * svc.k
            self.free[u] += held
            self.reserved_s[u] += held * (now - svc.since_s)
            for seg in svc.starting[i]:
                self._drop(svc, seg)
        for seg in svc.in_flight:
            self._drop(svc, seg)
        self._serve_queue()

    # -- link generation, swapping, delivery ------------------------------------------------

    def _generate(self, svc: _Service, h: int) -> None:
        """Start a generator on hop h for each free memory pair at its two ends."""
        free_r, free_l = svc.free_r, svc.free_l
        link = svc.hops[h]
        while free_r[h] > 0 and free_l[h + 1] > 0:
            free_r[h] -= 1
            free_l[h + 1] -= 1
            n = 1 if link.log_fail == -math.inf else \
                1 + math.floor(math.log(self._uniform()) / link.log_fail)
            delay_s = n * link.attempt_s
            if self.sim.now_s + delay_s <= self.duration_s:  # else: still trying at the end
                self.sim.schedule(delay_s, self._herald, svc, h)

    def _herald(self, svc: _Service, h: int) -> None:
        if not svc.active:
            return
        now = self.sim.now_s
        link = svc.hops[h]
        emitted = now - link.attempt_s
        uid = self.history.heralded(svc.links[h])
        seg = _Segment(h, h + 1, uid, emitted, emitted, emitted, now)
        self._place(svc, seg)

    def _place(self, svc: _Service, seg: _Segment) -> None:
        """A new pair: schedule its cutoff, then deliver it or swap wherever possible.

        A worklist rather than recursion: a swap makes a longer pair whose two ends may swap in
        turn, and with multiplexing a node may hold several pairs on each side.
        """
        last = len(svc.path) - 1
        work = [seg]
        while work:
            seg = work.pop()
            if not self._arm_cutoff(svc, seg):
                continue
            if seg.s == 0 and seg.e == last:
                if seg.known_s > self.sim.now_s:
                    svc.in_flight[seg] = None
                    self.sim.schedule_at(seg.known_s, self._deliver, svc, seg)
                else:
                    self._deliver(svc, seg)
                continue
            svc.starting[seg.s].append(seg)
            svc.ending[seg.e].append(seg)
            for i in (seg.s, seg.e):
                while 0 < i < last and svc.ending[i] and svc.starting[i]:
                    made = self._swap(svc, i)
                    if made is not None:
                        work.append(made)

    def _arm_cutoff(self, svc: _Service, seg: _Segment) -> bool:
        """Schedule the pair's cutoff; False (pair dropped) if it is already past it."""
        path, lim = svc.path, self.limit_s
        deadline = min(seg.q_s + lim[path[seg.s]], seg.q_e + lim[path[seg.e]])
        if deadline == math.inf:
            return True
        if deadline < self.sim.now_s:
            self._drop(svc, seg)
            self.results[svc.req].lost_pairs += 1
            self._generate(svc, seg.s)
            self._generate(svc, seg.e - 1)
            return False
        self._seq += 1
        heapq.heappush(svc.deadlines, (deadline, self._seq, seg))
        if deadline < svc.watch_s:
            if svc.watch is not None:
                svc.watch.cancel()
            svc.watch = self.sim.schedule_at(deadline, self._watchdog, svc)
            svc.watch_s = deadline
        return True

    def _watchdog(self, svc: _Service) -> None:
        """Discard the service's pairs whose deadline has come; re-arm for the next one."""
        svc.watch, svc.watch_s = None, math.inf
        if not svc.active:
            return
        heap, now = svc.deadlines, self.sim.now_s
        while heap and (heap[0][0] <= now or not heap[0][2].alive):
            seg = heapq.heappop(heap)[2]
            if seg.alive:
                self._cutoff(svc, seg)
        if heap:
            svc.watch_s = heap[0][0]
            svc.watch = self.sim.schedule_at(svc.watch_s, self._watchdog, svc)

    def _swap(self, svc: _Service, i: int) -> _Segment | None:
        """Swap the oldest pair ending at path position i with the oldest starting there."""
        left, right = svc.ending[i].popleft(), svc.starting[i].popleft()
        svc.starting[left.s].remove(left)
        svc.ending[right.e].remove(right)
        now = self.sim.now_s
        u = svc.path[i]
        left.alive = right.alive = False
        self.stored_s[u] += (now - left.q_e) + (now - right.q_s)
        svc.free_l[i] += 1
        svc.free_r[i] += 1
        if self.swap_p < 1.0 and self.rng_swap.random() >= self.swap_p:
            # Both pairs are lost with the failed Bell measurement; their outer qubits too.
            self._release(svc, left.s, left.q_s, right=True)
            self._release(svc, right.e, right.q_e, right=False)
            self.results[svc.req].lost_pairs += 2
            self._generate(svc, i - 1)
            self._generate(svc, i)
            return None
        path = svc.path
        uid = self.history.swapped(left.uid, right.uid, path[left.s], u, path[right.e],
                                   now - left.t_c, now - right.t_c)
        v = FIBER_GROUP_VELOCITY_KM_PER_S
        cum = svc.cum_km
        tell_s = max(cum[i] - cum[left.s], cum[right.e] - cum[i]) / v
        known = max(left.known_s, right.known_s, now + tell_s)
        self._generate(svc, i - 1)
        self._generate(svc, i)
        return _Segment(left.s, right.e, uid, now, left.q_s, right.q_e, known)

    def _release(self, svc: _Service, i: int, stored_since_s: float, *, right: bool) -> None:
        """Free the memory at path position i that held a qubit since ``stored_since_s``."""
        self.stored_s[svc.path[i]] += self.sim.now_s - stored_since_s
        if right:
            svc.free_r[i] += 1
        else:
            svc.free_l[i] += 1

    def _drop(self, svc: _Service, seg: _Segment) -> None:
        """Discard a pair (cutoff, or its request ended); its memories are freed."""
        if not seg.alive:
            return
        seg.alive = False
        self._release(svc, seg.s, seg.q_s, right=True)
        self._release(svc, seg.e, seg.q_e, right=False)

    def _cutoff(self, svc: _Service, seg: _Segment) -> None:
        if seg in svc.in_flight:
            del svc.in_flight[seg]
        else:
            svc.starting[seg.s].remove(seg)
            svc.ending[seg.e].remove(seg)
        self._drop(svc, seg)
        self.results[svc.req].lost_pairs += 1
        self._generate(svc, seg.s)
        self._generate(svc, seg.e - 1)

    def _deliver(self, svc: _Service, seg: _Segment) -> None:
        if not (svc.active and seg.alive):
            return
        svc.in_flight.pop(seg, None)
        now = self.sim.now_s
        path = svc.path
        res, req = self.results[svc.req], self.requests[svc.req]
        self.history.delivered(seg.uid, path[0], path[-1], now - seg.t_c, svc.req)
        res.delivery_times_s.append(now)
        if self.history.full:
            self._flush()
        self._drop(svc, seg)
        if req.pairs is not None and len(res.delivery_times_s) >= req.pairs:
            res.finished_s = now
            self._finish(svc, "done")
            return
        self._generate(svc, 0)
        self._generate(svc, len(path) - 2)

    def _flush(self, *, final: bool = False) -> None:
        """Evaluate the recorded pairs' states (PairHistory), keeping those still stored."""
        alive = [] if final else [
            seg.uid for svc in self.services if svc is not None and svc.active
            for seg in [*svc.in_flight, *(x for q in svc.starting for x in q)]]
        tags, states = self.history.flush(alive)
        for r in np.unique(tags):
            self.states[int(r)].append(states[tags == r])

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> RoutingResult:
        t0 = time.perf_counter()
        for r, req in enumerate(self.requests):
            if req.start_s <= self.duration_s:
                self.sim.schedule_at(req.start_s, self._arrive, r, priority=1)
            if req.end_s is not None and req.end_s <= self.duration_s:
                self.sim.schedule_at(req.end_s, self._withdraw, r, priority=0)
        self.sim.run(until_s=self.duration_s)
        end = self.duration_s
        for svc in self.services:
            if svc is not None and svc.active:
                last = len(svc.path) - 1
                for i, u in enumerate(svc.path):
                    self.reserved_s[u] += (svc.k if i in (0, last) else 2 * svc.k) * \
                        (end - svc.since_s)
                for seg in [*svc.in_flight, *(x for q in svc.starting for x in q)]:
                    if seg.alive:
                        self.stored_s[svc.path[seg.s]] += end - seg.q_s
                        self.stored_s[svc.path[seg.e]] += end - seg.q_e
        self._flush(final=True)
        for r, res in enumerate(self.results):
            states = np.concatenate(self.states[r]) if self.states[r] else np.zeros((0, 4))
            res.set_states(states, self.requests[r].min_fidelity)
        nodes = [NodeUsage(id=nid, memories=cap,
                           utilisation=self.reserved_s[u] / (cap * end),
                           storing_fraction=self.stored_s[u] / (cap * end),
                           peak_reserved=self.peak_reserved[u])
                 for u, (nid, cap) in enumerate(zip(self.ids, self.capacity, strict=True))]
        return RoutingResult(name=self.net.name, duration_s=end, seed=self.sim.streams.seed,
                             path_policy=self.net.path_policy, requests=self.results,
                             nodes=nodes, events=self.sim.events_executed,
                             wall_s=time.perf_counter() - t0)


def simulate_routing(net: EntNetwork, *, duration_s: float, seed: int = 0) -> RoutingResult:
    """Simulate ``net``'s requests for ``duration_s`` simulated seconds (module docstring)."""
    if not 0.0 < duration_s < math.inf:
        raise ParameterError("duration_s", duration_s, "must be a finite time > 0 seconds")
    return _Router(net, float(duration_s), seed).run()
