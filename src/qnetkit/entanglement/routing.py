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

Implementation (for speed; the model above is unchanged): the router keeps its own agenda, a
binary heap of plain tuples ``(time_s, priority, insertion, kind, ...)`` ordered exactly as
:class:`qnetkit.sim.Simulator` orders its events (time, then priority, then scheduling order),
instead of one ``Event`` object and callback per event, which cost more than the model itself
on busy networks (about 10 us per event). A superseded cutoff watchdog is dropped lazily when it
reaches the top (its service holds the insertion number of the live one). The random streams
are the engine's (``RandomStreams``, same names), so a run is reproducible from its seed.
"""

from __future__ import annotations

import gc
import heapq
import math
import time
from typing import Any

import numpy as np

from qnetkit.entanglement.routing_result import (
    LinkParams,
    NodeUsage,
    RequestResult,
    RoutingResult,
    link_params,
)
from qnetkit.entanglement.routing_service import (
    _ALIVE,
    _DEPTH,
    _E,
    _KNOWN,
    _QE,
    _QS,
    _S,
    _TC,
    _UID,
    _Segment,
    _Service,
)
from qnetkit.entanglement.routing_states import PairHistory
from qnetkit.entanglement.routing_topology import (
    EntNetwork,
    EntRequest,
    RoutingFileError,
    find_path,
)
from qnetkit.errors import ParameterError
from qnetkit.physics.heralding import FIBER_GROUP_VELOCITY_KM_PER_S
from qnetkit.physics.memory import QuantumMemory
from qnetkit.sim.streams import RandomStreams

__all__ = ["FIBER_GROUP_VELOCITY_KM_PER_S", "NodeUsage", "RequestResult", "RoutingResult",
           "simulate_routing"]

_UNIFORM_BATCH = 4096
_INF = math.inf
# Agenda entry kinds: (time_s, priority, insertion, kind, a, b).
_HERALD, _DELIVER, _WATCH, _ARRIVE, _WITHDRAW = range(5)
# Below this many superseded watchdogs a rebuild of the agenda is not worth its O(n).
_COMPACT_MIN_STALE = 1024


class _Router:
    def __init__(self, net: EntNetwork, duration_s: float, seed: int) -> None:
        self.net, self.duration_s = net, duration_s
        self.streams = RandomStreams(seed)
        self.rng_attempts = self.streams.stream("routing.attempts")
        self.rng_swap = self.streams.stream("routing.swap")
        self.now_s = 0.0
        self.agenda: list[tuple[float, int, int, int, Any, Any]] = []
        self._aseq = 0  # agenda insertion counter (the engine's tie-break)
        self._stale = 0  # superseded watchdogs still on the agenda
        self.events = 0
        self._u: list[float] = []
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
        cutoff = net.cutoff_s or inf
        self.limit_s = [min(cutoff, m.max_storage_s) for m in self.memory]
        self.adj: list[list[tuple[int, int, float]]] = [[] for _ in net.nodes]
        self.links = [self._link(j, index) for j in range(len(net.links))]
        for j, ln in enumerate(net.links):
            a, b = index[ln.a], index[ln.b]
            self.adj[a].append((b, j, ln.length_km))
            self.adj[b].append((a, j, ln.length_km))
        sw = net.swap
        self.swap_p = sw.success_prob
        self.history = PairHistory(
            [ln.coeffs for ln in self.links], self.memory,
            {"gate_depolarizing": sw.gate_depolarizing, "measurement_error": sw.measurement_error})
        # The history's record lists are appended to here directly (they are cleared in place
        # by each flush); made counts the records, so a record's uid is made before it.
        self.rec_link = self.history.link
        self.rec_swaps = self.history.swaps
        self.rec_deliveries = self.history.deliveries
        self.made = 0
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

    # -- the agenda ---------------------------------------------------------------------------

    def _push(self, time_s: float, priority: int, kind: int, a: Any, b: Any = None) -> int:
        seq = self._aseq
        self._aseq = seq + 1
        heapq.heappush(self.agenda, (time_s, priority, seq, kind, a, b))
        return seq

    def _watch(self, svc: _Service, time_s: float) -> None:
        """(Re-)arm the service's cutoff watchdog at ``time_s``, superseding any pending one."""
        if svc.watch_seq >= 0:
            self._stale += 1
            # Bound the agenda (as the engine's compaction does): drop stale entries when they
            # outnumber the live ones.
            if self._stale > _COMPACT_MIN_STALE and 2 * self._stale > len(self.agenda):
                self.agenda[:] = [x for x in self.agenda
                                  if x[3] != _WATCH or x[4].watch_seq == x[2]]
                heapq.heapify(self.agenda)
                self._stale = 0
        svc.watch_seq = self._push(time_s, 0, _WATCH, svc)
        svc.watch_s = time_s

    def _run_agenda(self) -> None:
        """Next-event time advance over the agenda up to and including ``duration_s``."""
        heap, pop, limit = self.agenda, heapq.heappop, self.duration_s
        herald, deliver = self._herald, self._deliver
        executed = 0
        while heap:
            entry = pop(heap)
            time_s = entry[0]
            if time_s > limit:
                break
            kind = entry[3]
            if kind == _HERALD:
                self.now_s = time_s
                svc = entry[4]
                if svc.active:
                    herald(svc, entry[5])
            elif kind == _DELIVER:
                self.now_s = time_s
                deliver(entry[4], entry[5])
            elif kind == _WATCH:
                if entry[4].watch_seq != entry[2]:  # superseded: never runs, not counted
                    self._stale -= 1
                    continue
                self.now_s = time_s
                self._watchdog(entry[4])
            elif kind == _ARRIVE:
                self.now_s = time_s
                self._arrive(entry[4])
            else:
                self.now_s = time_s
                self._withdraw(entry[4])
            executed += 1
        self.events = executed

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
        a, b = self.ends[r]
        return find_path(self.adj, self.free, a, b, self.requests[r].multiplex,
                         by_km=self.net.path_policy == "shortest-km")

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
        res.queue_wait_s = self.now_s - self.requests[r].start_s
        svc = _Service(r, path, links, hops, k, cum, self.limit_s, self.now_s)
        self.services[r] = svc
        for h in range(len(hops)):
            self._generate(svc, h)

    def _finish(self, svc: _Service, state: str) -> None:
        now = self.now_s
        svc.active = False
        if svc.watch_seq >= 0:  # withdraw the pending watchdog
            svc.watch_seq = -1
            self._stale += 1
        svc.deadlines.clear()
        self.results[svc.req].state = state
        last = len(svc.path) - 1
        for i, u in enumerate(svc.path):
            held = svc.k if i in (0, last) else 2 * svc.k
            self.free[u] += held
            self.reserved_s[u] += held * (now - svc.since_s)
            for seg in svc.starting[i]:
                self._drop(svc, seg)
        for seg in svc.in_flight.values():
            self._drop(svc, seg)
        self._serve_queue()

    # -- link generation, swapping, delivery ------------------------------------------------

    def _generate(self, svc: _Service, h: int) -> None:
        """Start a generator on hop h for each free memory pair at its two ends.

        The number of attempts to success is geometric, ``N = 1 + floor(ln U / ln(1-p))``
        (inverse transform); the success is one agenda entry at ``N x attempt_s``.
        """
        free_r, free_l = svc.free_r, svc.free_l
        while free_r[h] > 0 and free_l[h + 1] > 0:
            free_r[h] -= 1
            free_l[h + 1] -= 1
            log_fail = svc.log_fail[h]
            if log_fail == -_INF:
                n = 1
            else:
                i = self._ui
                if i >= len(self._u):
                    self._u = (1.0 - self.rng_attempts.random(_UNIFORM_BATCH)).tolist()  # (0,1]
                    i = 0
                self._ui = i + 1
                n = 1 + math.floor(math.log(self._u[i]) / log_fail)
            time_s = self.now_s + n * svc.attempt_s[h]
            if time_s <= self.duration_s:  # else: still trying at the end
                seq = self._aseq
                self._aseq = seq + 1
                heapq.heappush(self.agenda, (time_s, 0, seq, _HERALD, svc, h))

    def _herald(self, svc: _Service, h: int) -> None:
        now = self.now_s
        emitted = now - svc.attempt_s[h]
        uid = self.made
        self.made = uid + 1
        self.rec_link.append(svc.links[h])
        self._place(svc, [h, h + 1, uid, emitted, emitted, emitted, now, 0, True])

    def _place(self, svc: _Service, seg: _Segment) -> None:
        """A new pair: arm its cutoff, then deliver it or swap wherever possible.

        A worklist rather than recursion: a swap makes a longer pair whose two ends may swap in
        turn, and with multiplexing a node may hold several pairs on each side. The swap
        (SWAP-ASAP, module docstring) is inlined here: this is the run's inner loop.
        """
        now, last, lim = self.now_s, svc.last, svc.limit_s
        ending, starting, path = svc.ending, svc.starting, svc.path
        free_l, free_r, cum = svc.free_l, svc.free_r, svc.cum_km
        stored, hist, swap_p = self.stored_s, self.history, self.swap_p
        rec_link, rec_swaps = self.rec_link, self.rec_swaps
        heappush = heapq.heappush
        work = [seg]
        while work:
            seg = work.pop()
            s, e = seg[_S], seg[_E]
            # The pair's cutoff: when its older qubit has been stored for its node's limit.
            deadline = min(seg[_QS] + lim[s], seg[_QE] + lim[e])
            if deadline != _INF:
                if deadline < now:  # already past it: dropped at once
                    self._drop(svc, seg)
                    self.results[svc.req].lost_pairs += 1
                    self._generate(svc, s)
                    self._generate(svc, e - 1)
                    continue
                self._seq += 1
                heappush(svc.deadlines, (deadline, self._seq, seg))
                if deadline < svc.watch_s:
                    self._watch(svc, deadline)
            if s == 0 and e == last:
                if seg[_KNOWN] > now:
                    svc.in_flight[seg[_UID]] = seg
                    self._push(seg[_KNOWN], 0, _DELIVER, svc, seg)
                else:
                    self._deliver(svc, seg)
                continue
            starting[s].append(seg)
            ending[e].append(seg)
            for i in (s, e):
                while 0 < i < last and ending[i] and starting[i]:
                    # Swap the oldest pair ending at i with the oldest starting there.
                    left, right = ending[i].popleft(), starting[i].popleft()
                    starting[left[_S]].remove(left)
                    ending[right[_E]].remove(right)
                    left[_ALIVE] = False
                    right[_ALIVE] = False
                    stored[path[i]] += (now - left[_QE]) + (now - right[_QS])
                    free_l[i] += 1
                    free_r[i] += 1
                    if swap_p < 1.0 and self.rng_swap.random() >= swap_p:
                        self._failed_swap(svc, i, left, right)
                        continue
                    # Record the swap (PairHistory.swaps); an input made in an earlier chunk
                    # is carried there as a computed state, so its depth in this chunk is 0.
                    uid = self.made
                    self.made = uid + 1
                    base = hist.base
                    depth = 1 + max(left[_DEPTH] if left[_UID] >= base else 0,
                                    right[_DEPTH] if right[_UID] >= base else 0)
                    rec_link.append(-1)
                    rec_swaps.extend((uid, left[_UID], right[_UID], path[left[_S]], path[i],
                                      path[right[_E]], now - left[_TC], now - right[_TC], depth))
                    tell_s = max(cum[i] - cum[left[_S]], cum[right[_E]] - cum[i]) / \
                        FIBER_GROUP_VELOCITY_KM_PER_S
                    known = max(left[_KNOWN], right[_KNOWN], now + tell_s)
                    # Restart both hops (free_l[i], free_r[i] > 0 now: check the far ends).
                    if free_r[i - 1] > 0:
                        self._generate(svc, i - 1)
                    if free_l[i + 1] > 0:
                        self._generate(svc, i)
                    work.append([left[_S], right[_E], uid, now, left[_QS], right[_QE], known,
                                 depth, True])

    def _watchdog(self, svc: _Service) -> None:
        """Discard the service's pairs whose deadline has come; re-arm for the next one."""
        svc.watch_seq, svc.watch_s = -1, _INF
        if not svc.active:
            return
        heap, now = svc.deadlines, self.now_s
        while heap and (heap[0][0] <= now or not heap[0][2][_ALIVE]):
            seg = heapq.heappop(heap)[2]
            if seg[_ALIVE]:
                self._cutoff(svc, seg)
        if heap:
            self._watch(svc, heap[0][0])

    def _failed_swap(self, svc: _Service, i: int, left: _Segment, right: _Segment) -> None:
        """A failed Bell measurement at i loses both pairs; their outer qubits are freed too."""
        self._release(svc, left[_S], left[_QS], right=True)
        self._release(svc, right[_E], right[_QE], right=False)
        self.results[svc.req].lost_pairs += 2
        self._generate(svc, i - 1)
        self._generate(svc, i)

    def _release(self, svc: _Service, i: int, stored_since_s: float, *, right: bool) -> None:
        """Free the memory at path position i that held a qubit since ``stored_since_s``."""
        self.stored_s[svc.path[i]] += self.now_s - stored_since_s
        if right:
            svc.free_r[i] += 1
        else:
            svc.free_l[i] += 1

    def _drop(self, svc: _Service, seg: _Segment) -> None:
        """Discard a pair (cutoff, or its request ended); its memories are freed."""
        if not seg[_ALIVE]:
            return
        seg[_ALIVE] = False
        self._release(svc, seg[_S], seg[_QS], right=True)
        self._release(svc, seg[_E], seg[_QE], right=False)

    def _cutoff(self, svc: _Service, seg: _Segment) -> None:
        if seg[_UID] in svc.in_flight:
            del svc.in_flight[seg[_UID]]
        else:
            svc.starting[seg[_S]].remove(seg)
            svc.ending[seg[_E]].remove(seg)
        self._drop(svc, seg)
        self.results[svc.req].lost_pairs += 1
        self._generate(svc, seg[_S])
        self._generate(svc, seg[_E] - 1)

    def _deliver(self, svc: _Service, seg: _Segment) -> None:
        if not (svc.active and seg[_ALIVE]):
            return
        svc.in_flight.pop(seg[_UID], None)
        now = self.now_s
        path = svc.path
        res, req = self.results[svc.req], self.requests[svc.req]
        self.rec_deliveries.extend((seg[_UID], path[0], path[-1], now - seg[_TC], svc.req))
        res.delivery_times_s.append(now)
        if self.history.full:
            self._flush()
        # _drop inlined: the pair is alive (checked above)
        seg[_ALIVE] = False
        stored = self.stored_s
        stored[path[0]] += now - seg[_QS]
        stored[path[-1]] += now - seg[_QE]
        svc.free_r[0] += 1
        svc.free_l[-1] += 1
        if req.pairs is not None and len(res.delivery_times_s) >= req.pairs:
            res.finished_s = now
            self._finish(svc, "done")
            return
        self._generate(svc, 0)
        self._generate(svc, len(path) - 2)

    def _flush(self, *, final: bool = False) -> None:
        """Evaluate the recorded pairs' states (PairHistory), keeping those still stored."""
        alive = [] if final else [
            seg[_UID] for svc in self.services if svc is not None and svc.active
            for seg in [*svc.in_flight.values(), *(x for q in svc.starting for x in q)]]
        tags, states = self.history.flush(alive)
        order = np.argsort(tags, kind="stable")
        tags, states = tags[order], states[order]
        bounds = np.flatnonzero(np.diff(tags)) + 1
        for chunk in np.split(np.arange(len(tags)), bounds):
            if len(chunk):
                self.states[int(tags[chunk[0]])].append(states[chunk])

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> RoutingResult:
        t0 = time.perf_counter()
        for r, req in enumerate(self.requests):
            if req.start_s <= self.duration_s:
                self._push(float(req.start_s), 1, _ARRIVE, r)
            if req.end_s is not None and req.end_s <= self.duration_s:
                self._push(float(req.end_s), 0, _WITHDRAW, r)
        # The cyclic garbage collector is paused for the event loop: it makes no reference
        # cycles, yet its millions of short-lived pairs and entries would trigger a collection
        # every few hundred allocations (10-20 % of the run). Restored whatever happens.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._run_agenda()
        finally:
            if collecting:
                gc.enable()
        self.now_s = end = self.duration_s
        for svc in self.services:
            if svc is not None and svc.active:
                last = len(svc.path) - 1
                for i, u in enumerate(svc.path):
                    self.reserved_s[u] += (svc.k if i in (0, last) else 2 * svc.k) * \
                        (end - svc.since_s)
                for seg in [*svc.in_flight.values(), *(x for q in svc.starting for x in q)]:
                    if seg[_ALIVE]:
                        self.stored_s[svc.path[seg[_S]]] += end - seg[_QS]
                        self.stored_s[svc.path[seg[_E]]] += end - seg[_QE]
        self._flush(final=True)
        for r, res in enumerate(self.results):
            states = np.concatenate(self.states[r]) if self.states[r] else np.zeros((0, 4))
            res.set_states(states, self.requests[r].min_fidelity)
        nodes = [NodeUsage(id=nid, memories=cap,
                           utilisation=self.reserved_s[u] / (cap * end),
                           storing_fraction=self.stored_s[u] / (cap * end),
                           peak_reserved=self.peak_reserved[u])
                 for u, (nid, cap) in enumerate(zip(self.ids, self.capacity, strict=True))]
        return RoutingResult(name=self.net.name, duration_s=end, seed=self.streams.seed,
                             path_policy=self.net.path_policy, requests=self.results,
                             nodes=nodes, events=self.events,
                             wall_s=time.perf_counter() - t0)


def simulate_routing(net: EntNetwork, *, duration_s: float, seed: int = 0) -> RoutingResult:
    """Simulate ``net``'s requests for ``duration_s`` simulated seconds (module docstring)."""
    if not 0.0 < duration_s < math.inf:
        raise ParameterError("duration_s", duration_s, "must be a finite time > 0 seconds")
    return _Router(net, float(duration_s), seed).run()
