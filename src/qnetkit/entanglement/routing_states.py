"""The states of routed pairs, evaluated after the run in vectorised form.

In the routing model the states never steer the events: a link succeeds, a swap is made, a
cutoff fires and memories are freed whatever the pairs' fidelities are. So the router records
how each pair was made (:class:`PairHistory`: a heralded link at its emission time, or a swap of
two recorded pairs at a time) and the states are computed afterwards with the same operations,
in the same order, as an eager computation would apply them: each input of a swap decohered in
its two end memories from the time it was made to the swap
(:func:`qnetkit.entanglement.operations.decohere_pair`), then swapped
(:func:`qnetkit.entanglement.operations.swap`); a delivered pair decohered up to its delivery.
The computation runs level by level of the swap trees, each level one NumPy call per pair of
memory types, instead of two or three small NumPy calls per event (which dominated the run
time: about 0.2 ms each). Records are evaluated in chunks and dropped, keeping only the states
of pairs still stored, so memory does not grow with the length of the run.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.entanglement.operations import decohere_pair, swap
from qnetkit.physics.memory import QuantumMemory

__all__ = ["CHUNK_RECORDS", "DELIVERY_FIELDS", "SWAP_FIELDS", "PairHistory"]

#: Pairs recorded between two evaluations: under 100 bytes each (flat arrays), so at most
#: about 20 MB per chunk.
CHUNK_RECORDS = 200_000
#: Numbers per record row in ``PairHistory.swaps`` and ``PairHistory.deliveries``.
SWAP_FIELDS, DELIVERY_FIELDS = 9, 5


class PairHistory:
    """Record of the pairs made in a run; each pair gets an id (uid), in order of making.

    The records are evaluated and dropped chunk by chunk (:meth:`flush`, when :attr:`full`), so
    that a long run holds only the current chunk and the states of the pairs still stored.
    """

    def __init__(self, link_coeffs: list[FloatArray], memories: list[QuantumMemory],
                 swap_options: dict[str, float], chunk: int | None = None) -> None:
        self.link_coeffs = np.asarray(link_coeffs, dtype=np.float64).reshape(-1, 4)
        self.memories = memories
        self.swap_options = swap_options
        self.chunk = CHUNK_RECORDS if chunk is None else chunk
        kinds: dict[QuantumMemory, int] = {}
        self._kind = np.array([kinds.setdefault(m, len(kinds)) for m in memories])
        self._kinds = list(kinds)
        self.base = 0  # uid of the first record of the current chunk
        self.carry: dict[int, FloatArray] = {}  # states of earlier pairs still stored
        # The records, appended to by the router and emptied in place by each flush; flat typed
        # arrays (one buffer copy into NumPy, no Python object per field): per pair made, its
        # link index if heralded, -1 if swapped (its uid: base + position);
        self.link = array("q")
        # per swap: its pair id, the two inputs, their end nodes (left, middle, right), each
        # input's age at the swap, and its depth (1 + the deeper input's within the chunk, a
        # heralded or carried input counting 0: the levels of :meth:`flush`), SWAP_FIELDS a row;
        self.swaps = array("d")
        # per delivery: pair id, its end nodes, its age at delivery, a tag (the request),
        # DELIVERY_FIELDS a row.
        self.deliveries = array("d")

    @property
    def full(self) -> bool:
        return len(self.link) >= self.chunk

    def _decohere(self, coeffs: FloatArray, u: Any, v: Any, age_s: FloatArray) -> FloatArray:
        """``decohere_pair`` row-wise, one call per (memory of u, memory of v) type pair."""
        out = coeffs.copy()
        if not len(out):
            return out
        n = len(self._kinds)
        group = self._kind[u] * n + self._kind[v]
        for g in np.unique(group):
            rows = np.flatnonzero((group == g) & (age_s > 0.0))
            mem_a, mem_b = self._kinds[g // n], self._kinds[g % n]
            if len(rows) and not (_ideal(mem_a) and _ideal(mem_b)):
                out[rows] = decohere_pair(out[rows], age_s[rows], age_s[rows], mem_a, mem_b)
        return out

    def flush(self, alive: list[int]) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """Evaluate the current chunk: ``(tags, states)`` of the pairs delivered in it, in
        delivery order. ``alive``: ids of the pairs still stored, whose states are kept."""
        carried = list(self.carry)
        where = {uid: i for i, uid in enumerate(carried)}
        m, base = len(carried), self.base

        def pos(uids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            old = uids < base
            out = m + uids - base
            out[old] = [where[int(u)] for u in uids[old]]
            return out

        link = np.array(self.link, dtype=np.int64)
        states = np.zeros((m + len(link), 4))
        if m:
            states[:m] = np.asarray([self.carry[u] for u in carried])
        heralded = np.flatnonzero(link >= 0)
        states[m + heralded] = self.link_coeffs[link[heralded]]
        if self.swaps:
            sw = np.array(self.swaps, dtype=np.float64).reshape(-1, SWAP_FIELDS)
            uid, left, right = (sw[:, j].astype(np.int64) for j in range(3))
            u_l, u_m, u_r = (sw[:, j].astype(np.int64) for j in range(3, 6))
            depth = sw[:, 8].astype(np.int64)
            left, right, uid = pos(left), pos(right), pos(uid)
            for d in range(1, int(depth.max()) + 1):
                at = depth == d  # their inputs all sit at lower depths, already computed
                a = self._decohere(states[left[at]], u_l[at], u_m[at], sw[at, 6])
                b = self._decohere(states[right[at]], u_m[at], u_r[at], sw[at, 7])
                states[uid[at]] = swap(a, b, **self.swap_options)
        if self.deliveries:
            dl = np.array(self.deliveries, dtype=np.float64).reshape(-1, DELIVERY_FIELDS)
            tags = dl[:, 4].astype(np.int64)
            out = self._decohere(states[pos(dl[:, 0].astype(np.int64))],
                                 dl[:, 1].astype(np.int64), dl[:, 2].astype(np.int64), dl[:, 3])
        else:
            tags, out = np.zeros(0, dtype=np.int64), np.zeros((0, 4))
        keep = np.asarray(alive, dtype=np.int64)
        self.carry = dict(zip(alive, states[pos(keep)], strict=True)) if alive else {}
        self.base += len(link)
        del self.link[:], self.swaps[:], self.deliveries[:]  # in place: the router holds them
        return tags, out


def _ideal(memory: QuantumMemory) -> bool:
    return all(np.isinf(getattr(memory, f, np.inf))
               for f in ("t1_s", "t2_s", "depolarizing_time_s"))
