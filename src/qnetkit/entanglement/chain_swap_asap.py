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
* :func:`swap_asap_engine` (any swap probability, cutoffs): the protocol event by event, all
  runs at once: each loop pass executes the next event of every unfinished run (a link's
  success, or a pair passing the cutoff), with the swaps it triggers. A failed swap discards
  both pairs; freed links start again at once.
"""

from __future__ import annotations

import numpy as np

from qnetkit._types import BoolArray, FloatArray, IntArray
from qnetkit.entanglement.chain_nested import (
    ChainModel,
    Pairs,
    Sampler,
    purified_link_sampler,
    wait_in_memory,
)
from qnetkit.entanglement.operations import decohere_pair, swap
from qnetkit.errors import ParameterError

#: Loop passes of the engine per link and delivered run before it gives up (cutoff too short).
MAX_EVENTS_PER_LINK = 20_000


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


class _Lanes:
    """State of the unfinished runs: one row per run (compacted as runs finish)."""

    def __init__(self, n: int, links: int) -> None:
        self.row_id = np.arange(n)
        self.now = np.zeros(n)
        self.link_t = np.full((n, links), np.inf)  # ready time of a pending elementary pair
        self.link_c = np.zeros((n, links, 4))
        self.link_age = np.zeros((n, links))
        # A pair (segment) is stored under its left node: right end, state, time of the state,
        # creation of its oldest constituent; seg_l[j] is the left end of the pair ending at j.
        self.seg_r = np.full((n, links + 1), -1, dtype=np.int64)
        self.seg_l = np.full((n, links + 1), -1, dtype=np.int64)
        self.seg_c = np.zeros((n, links + 1, 4))
        self.seg_t = np.zeros((n, links + 1))
        self.seg_o = np.zeros((n, links + 1))
        self.seg_exp = np.full((n, links + 1), np.inf)  # when the pair passes the cutoff

    def keep(self, mask: BoolArray) -> None:
        for name in ("row_id", "now", "link_t", "link_c", "link_age",
                     "seg_r", "seg_l", "seg_c", "seg_t", "seg_o", "seg_exp"):
            setattr(self, name, getattr(self, name)[mask])


class _Engine:
    def __init__(self, model: ChainModel, n: int, rng: np.random.Generator) -> None:
        self.m = model
        self.rng = rng
        self.links = model.links
        self.sample: Sampler = purified_link_sampler(model, rng)
        self.s = _Lanes(n, model.links)
        self.events = 0

    def start_links(self, rows: IntArray, links: IntArray) -> None:
        """Start generation on the given links where both memories are free and idle."""
        s = self.s
        ok = (links >= 0) & (links < self.links)
        rows, links = rows[ok], links[ok]
        free = (
            (s.seg_r[rows, links] < 0)
            & (s.seg_l[rows, links + 1] < 0)
            & np.isinf(s.link_t[rows, links])
        )
        rows, links = rows[free], links[free]
        if rows.size == 0:
            return
        # Each call holds a run at most once, so no (row, link) is started twice.
        p = self.sample(rows.size)
        self.events += p.events
        s.link_t[rows, links] = s.now[rows] + p.ready_s
        s.link_c[rows, links] = p.coeffs
        s.link_age[rows, links] = p.age_s

    def discard(self, rows: IntArray, left: IntArray) -> None:
        """Drop the pairs stored under ``left`` and restart the links their memories block."""
        s = self.s
        right = s.seg_r[rows, left]
        s.seg_r[rows, left] = -1
        s.seg_l[rows, right] = -1
        s.seg_exp[rows, left] = np.inf
        self.start_links(rows, left)
        self.start_links(rows, right - 1)

    def swap_at(self, rows: IntArray, node: IntArray) -> None:
        """Swap, at ``node``, the pair ending there with the pair starting there (both exist)."""
        s = self.s
        left = s.seg_l[rows, node]
        right = s.seg_r[rows, node]
        now = s.now[rows]
        ca = wait_in_memory(self.m, s.seg_c[rows, left], now - s.seg_t[rows, left])
        cb = wait_in_memory(self.m, s.seg_c[rows, node], now - s.seg_t[rows, node])
        self.events += rows.size
        ok = self.rng.random(rows.size) < self.m.swap_success_prob
        # Both outcomes free the swapping node's memories.
        s.seg_r[rows, node] = -1
        s.seg_l[rows, node] = -1
        s.seg_exp[rows, node] = np.inf
        g, lg, rg = rows[ok], left[ok], right[ok]
        s.seg_r[g, lg] = rg
        s.seg_l[g, rg] = lg
        s.seg_c[g, lg] = swap(ca[ok], cb[ok])
        s.seg_t[g, lg] = s.now[g]
        s.seg_o[g, lg] = np.minimum(s.seg_o[g, lg], s.seg_o[g, node[ok]])
        s.seg_exp[g, lg] = s.seg_o[g, lg] + self.m.cutoff_s
        bad = ~ok
        b, lb, rb = rows[bad], left[bad], right[bad]
        s.seg_r[b, lb] = -1
        s.seg_l[b, rb] = -1
        s.seg_exp[b, lb] = np.inf
        self.start_links(b, lb)
        self.start_links(b, rb - 1)
        self.start_links(rows, node - 1)
        self.start_links(rows, node)

    def link_ready(self, rows: IntArray, link: IntArray) -> None:
        s = self.s
        s.seg_r[rows, link] = link + 1
        s.seg_l[rows, link + 1] = link
        s.seg_c[rows, link] = s.link_c[rows, link]
        s.seg_t[rows, link] = s.now[rows]
        s.seg_o[rows, link] = s.now[rows] - s.link_age[rows, link]
        s.seg_exp[rows, link] = s.seg_o[rows, link] + self.m.cutoff_s
        s.link_t[rows, link] = np.inf
        # Swap at the left node, then at the right node, wherever the node now holds two pairs.
        for node in (link, link + 1):
            inner = (node > 0) & (node < self.links)
            cand = rows[inner]
            nd = node[inner]
            both = (s.seg_l[cand, nd] >= 0) & (s.seg_r[cand, nd] >= 0)
            if np.any(both):
                self.swap_at(cand[both], nd[both])

    def run(self, n: int) -> Pairs:
        links = self.links
        s = self.s
        rows_all = np.repeat(np.arange(n), links)
        self.start_links(rows_all, np.tile(np.arange(links), n))
        ready = np.empty(n)
        coeffs = np.empty((n, 4))
        cut = self.m.cutoff_s
        alive = np.ones(n, dtype=bool)
        for _ in range(MAX_EVENTS_PER_LINK * links):
            rows = np.flatnonzero(alive)
            if rows.size == 0:
                return Pairs(ready, np.zeros(n), coeffs, events=self.events)
            i_link = np.argmin(s.link_t, axis=1)[rows]
            t_link = s.link_t[rows, i_link]
            if np.isfinite(cut):
                j_exp = np.argmin(s.seg_exp, axis=1)[rows]
                t_exp = s.seg_exp[rows, j_exp]
                is_exp = t_exp < t_link
            else:
                is_exp = np.zeros(rows.size, dtype=bool)
                t_exp = t_link
            s.now[rows] = np.where(is_exp, t_exp, t_link)
            if np.any(is_exp):
                self.events += int(is_exp.sum())
                self.discard(rows[is_exp], j_exp[is_exp])
            lr = ~is_exp
            self.link_ready(rows[lr], i_link[lr])
            d = rows[s.seg_r[rows, 0] == links]
            if d.size:
                ready[s.row_id[d]] = s.now[d]
                coeffs[s.row_id[d]] = wait_in_memory(
                    self.m, s.seg_c[d, 0], s.now[d] - s.seg_t[d, 0]
                )
                self.events += d.size
                alive[d] = False
                # Finished runs stay as dead rows (no events) until a third are dead.
                s.link_t[d] = np.inf
                s.seg_exp[d] = np.inf
                if 3 * (alive.size - rows.size + d.size) > alive.size:
                    s.keep(alive)
                    alive = np.ones(s.row_id.size, dtype=bool)
        raise ParameterError("cutoff_s", cut, "too short: no delivery within the event limit")


def swap_asap_engine(model: ChainModel, n: int, rng: np.random.Generator) -> Pairs:
    """``n`` deliveries of SWAP-ASAP, event by event, vectorised over the runs."""
    return _Engine(model, n, rng).run(n)


__all__ = ["swap_asap_closed_form", "swap_asap_engine"]
