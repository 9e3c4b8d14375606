"""SWAP-ASAP repeater chains: closed-form sampling and a lane-vectorised event engine.

Protocol: every elementary link tries to make a pair whenever both of its memories are free;
a node that holds two pairs (one to each side) swaps them at once ("swap as soon as
possible"). The chain delivers when node 0 shares a pair with the last node. Each of the
``pairs`` deliveries is an independent run from empty memories; its waiting time is measured
from the start of that run.

* :func:`swap_asap_closed_form` (deterministic swaps, no cutoff): the delivery time is the
  largest of the ``n`` links' generation times (each ``attempt_s`` times a geometric number of
  attempts), exact for SWAP-ASAP with memories that wait (Shchukin, Schmidt & van Loock, PRA
  100, 032322 (2019), Sec. II: ``K_n = max(K^(1), ..., K^(n))``). The swap at inner node ``j``
  happens at ``max(t_(j-1), t_j)``; each elementary pair's two qubits wait from its generation
  to the swap at their node (the end nodes' qubits to the delivery), it is decohered for these
  two times (``operations.decohere_pair``), and the pairs are swapped together. For dephasing
  (a Pauli channel) moving the noise of a qubit before the swaps is exact, since Pauli
  channels commute with the Bell measurement; for amplitude damping it is the same twirled
  approximation the operations use.
* :func:`swap_asap_engine` (any swap probability, cutoffs): the protocol event by event, one
  run after the other in a compiled loop (:mod:`._swap_asap_kernel`): each step executes the
  run's next event (a link's success, or a pair passing the cutoff), with the swaps it
  triggers. A failed swap discards both pairs; freed links start again at once (also inside
  the growing end-to-end pair, where the new pairs wait unused unless a failed swap or a cutoff
  frees the memories around them: real events of the protocol, so the events per delivery grow
  faster than the links). The next event is found in O(log links) (tournament trees), so each
  event costs about the same at any chain length. Random inputs are drawn in batches: first
  every run's initial link times (the closed form's draws, in the same order), then pools of
  link samples and swap outcomes consumed in event order. States are evaluated afterwards,
  vectorised over the runs, on each delivered pair's tree of swaps and memory waits.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.entanglement import _swap_asap_kernel as kernel
from qnetkit.entanglement.chain_nested import (
    ChainModel,
    Pairs,
    Sampler,
    purified_link_sampler,
    wait_in_memory,
)
from qnetkit.entanglement.operations import decohere_pair, swap
from qnetkit.errors import ParameterError

#: Events (link successes, expiries) per link of one run before the engine gives up (cutoff
#: too short).
MAX_EVENTS_PER_LINK = 20_000
#: Rows per vectorised state update of the engine (see ``_Engine._states``).
_STATE_BATCH = 4096


def swap_asap_closed_form(model: ChainModel, n: int, rng: np.random.Generator) -> Pairs:
    """``n`` deliveries of SWAP-ASAP with deterministic swaps and no cutoff (module docstring)."""
    links = model.links
    gen = rng.geometric(model.link_success_prob, size=(n, links)) * model.attempt_s
    delivery = gen.max(axis=1)
    # Swap time at each node: end nodes hold their qubits to the delivery.
    node_t = np.empty((n, links + 1))
    node_t[:, 0] = delivery
    node_t[:, links] = delivery
    if links > 1:
        node_t[:, 1:links] = np.maximum(gen[:, :-1], gen[:, 1:])
    state = np.broadcast_to(model.link_state, (n, 4))
    out: FloatArray | None = None
    for i in range(links):
        c = state
        if model.memory is not None:
            c = decohere_pair(
                state, node_t[:, i] - gen[:, i], node_t[:, i + 1] - gen[:, i],
                model.memory, model.memory,
            )
        out = np.array(c) if out is None else swap(out, c)
    assert out is not None
    # Events: one heralded success per link, one swap per inner node.
    return Pairs(delivery, np.zeros(n), out, events=n * (2 * links - 1))


def _grow(a: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    """``a`` with room for ``size`` rows along axis 0 (the first rows kept)."""
    out = np.empty((size, *a.shape[1:]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


class _Engine:
    """Driver of the compiled event loop (:mod:`._swap_asap_kernel`): pools, then states."""

    def __init__(self, model: ChainModel, n: int, rng: np.random.Generator) -> None:
        self.m = model
        self.n = n
        self.rng = rng
        self.links = links = model.links
        self.sample: Sampler = purified_link_sampler(model, rng)
        # Every run starts all its links at t = 0: the first n * links draws, run by run and
        # link by link, as the closed form draws them (same stream, same link times).
        init = self.sample(n * links)
        self.init_t = np.ascontiguousarray(init.ready_s, dtype=np.float64).reshape(n, links)
        self.init_age = np.ascontiguousarray(init.age_s, dtype=np.float64).reshape(n, links)
        self.init_c = np.ascontiguousarray(init.coeffs, dtype=np.float64).reshape(n, links, 4)
        self.pool_t = np.empty(0)
        self.pool_age = np.empty(0)
        self.pool_c = np.empty((0, 4))
        self.pool_ev = np.empty(0)
        self.pool_u = np.empty(0)
        self.pool_used = 0  # samples consumed before the last compaction of the pool
        self.st = np.zeros(kernel.N_ST, dtype=np.int64)
        self.sf = np.zeros(kernel.N_SF)
        self.sf[kernel.SF_EV] = init.events
        self.fs = np.full((kernel.N_FS, links + 1), np.inf)
        self.is_ = np.full((kernel.N_IS, links + 1), -1, dtype=np.int64)
        self.link_c = np.zeros((links, 4))
        leaves = 1 << max(links, 1).bit_length()  # a power of two >= links + 1
        self.lt_tree = np.zeros(2 * leaves, dtype=np.int64)
        self.ex_tree = np.zeros(2 * leaves, dtype=np.int64)
        cap = 64 * links + 16
        self.log_a = np.empty(cap, dtype=np.int64)
        self.log_b = np.empty(cap, dtype=np.int64)
        self.log_dta = np.empty(cap)
        self.log_dtb = np.empty(cap)
        self.log_c = np.empty((cap, 4))
        self.ready = np.empty(n)
        self.final_dt = np.empty(n)
        self.leaf_c = np.empty((n, links, 4))
        self.sw_a = np.empty((n, links - 1), dtype=np.int64)
        self.sw_b = np.empty((n, links - 1), dtype=np.int64)
        self.sw_dta = np.empty((n, links - 1))
        self.sw_dtb = np.empty((n, links - 1))
        self.sw_h = np.empty((n, links - 1), dtype=np.int64)

    def _refill_size(self) -> int:
        """Samples (or uniforms) to draw: the consumption so far, extrapolated to all runs."""
        done = int(self.st[kernel.ST_RUN])
        used = int(self.st[kernel.ST_POS]) + self.pool_used
        # Before the first delivery: one restart per link and run (most chains need about
        # that many: the unused rest of a refill is drawn for nothing).
        per_run = used / done if done else float(self.links)
        return int(min(max(1.1 * per_run * (self.n - done), 1024), 1 << 20))

    def _refill_samples(self) -> None:
        pos = int(self.st[kernel.ST_POS])
        self.pool_used += pos
        p = self.sample(self._refill_size())
        size = p.ready_s.size
        self.pool_t = np.concatenate([self.pool_t[pos:], p.ready_s])
        self.pool_age = np.concatenate([self.pool_age[pos:], p.age_s])
        self.pool_c = np.concatenate([self.pool_c[pos:], p.coeffs])
        self.pool_ev = np.concatenate([self.pool_ev[pos:], np.full(size, p.events / size)])
        self.st[kernel.ST_POS] = 0

    def _refill_uniforms(self) -> None:
        pos = int(self.st[kernel.ST_UPOS])
        self.pool_u = np.concatenate([self.pool_u[pos:], self.rng.random(self._refill_size())])
        self.st[kernel.ST_UPOS] = 0

    def _grow_log(self) -> None:
        cap = 2 * self.log_a.size
        self.log_a, self.log_b = _grow(self.log_a, cap), _grow(self.log_b, cap)
        self.log_dta, self.log_dtb = _grow(self.log_dta, cap), _grow(self.log_dtb, cap)
        self.log_c = _grow(self.log_c, cap)

    def run(self) -> Pairs:
        m = self.m
        while True:
            status = kernel.run_engine(
                self.links, float(m.cutoff_s), float(m.swap_success_prob),
                MAX_EVENTS_PER_LINK * self.links,
                self.init_t, self.init_age, self.init_c,
                self.pool_t, self.pool_age, self.pool_c, self.pool_ev, self.pool_u,
                self.st, self.sf, self.fs, self.is_, self.link_c, self.lt_tree, self.ex_tree,
                self.log_a, self.log_b, self.log_dta, self.log_dtb, self.log_c,
                self.ready, self.final_dt, self.leaf_c, self.sw_a, self.sw_b,
                self.sw_dta, self.sw_dtb, self.sw_h,
            )
            if status == kernel.DONE:
                break
            if status == kernel.NEED_SAMPLES:
                self._refill_samples()
            elif status == kernel.NEED_UNIFORMS:
                self._refill_uniforms()
            elif status == kernel.NEED_LOG:
                self._grow_log()
            else:
                raise ParameterError(
                    "cutoff_s", m.cutoff_s, "too short: no delivery within the event limit"
                )
        events = round(float(self.sf[kernel.SF_EV])) + int(self.st[kernel.ST_EVENTS])
        return Pairs(self.ready, np.zeros(self.n), self._states(), events=events)

    def _states(self) -> FloatArray:
        """Delivered states: each run's swap tree, level by level over all runs at once."""
        n, links = self.n, self.links
        width = 2 * links - 1  # states of one run: its leaves, then its swaps
        s = np.empty((n, width, 4))
        s[:, :links] = self.leaf_c
        flat = s.reshape(n * width, 4)
        h = self.sw_h.ravel()
        order = np.argsort(h, kind="stable")
        bounds = np.searchsorted(h[order], np.arange(1, int(h.max(initial=0)) + 2))
        base = (order // (links - 1)) * width if links > 1 else order
        sw_a, sw_b = self.sw_a.ravel(), self.sw_b.ravel()
        dta, dtb = self.sw_dta.ravel(), self.sw_dtb.ravel()
        # Swaps of one height at a time (their inputs are ready), in slices of at most
        # _STATE_BATCH rows: larger 4x4 products go multi-threaded in BLAS, which costs more
        # than it saves on these small rows (and competes with other work for the cores).
        cuts = np.unique(np.concatenate([bounds, np.arange(0, h.size, _STATE_BATCH)]))
        for lo, hi in itertools.pairwise(cuts):
            f = order[lo:hi]  # swaps of one height (run-major flat index)
            row0 = base[lo:hi]
            ca = wait_in_memory(self.m, flat[row0 + sw_a[f]], dta[f])
            cb = wait_in_memory(self.m, flat[row0 + sw_b[f]], dtb[f])
            flat[row0 + links + f % (links - 1)] = swap(ca, cb)
        # Post-order: the end-to-end pair is the last swap (the only leaf for one link).
        return wait_in_memory(self.m, s[:, width - 1], self.final_dt)


def swap_asap_engine(model: ChainModel, n: int, rng: np.random.Generator) -> Pairs:
    """``n`` deliveries of SWAP-ASAP, event by event (compiled loop, module docstring)."""
    return _Engine(model, n, rng).run()


__all__ = ["swap_asap_closed_form", "swap_asap_engine"]
