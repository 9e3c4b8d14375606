"""Numba kernels behind ``ldpc_codes.py``: progressive edge growth, untainted puncturing, syndromes.

PEG after Hu, Eleftheriou, Arnold, IEEE Trans. Inf. Theory 51, 386 (2005); untainted puncturing
after Elkouss, Martinez-Mateo, Martin, IEEE Wireless Commun. Lett. 1, 585 (2012); the choices
are described in ``ldpc_codes.py``. This file is part of the construction: the LDPC disk-cache
key hashes it together with ``ldpc_codes.py``, so editing either rebuilds the cached codes.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

from qnetkit._types import BitArray, IntArray

Int32Array = npt.NDArray[np.int32]

# Deepest check level the PEG search beyond distance 1 may reach (its work budget in visited
# edges is the kernel's ``budget`` argument, ``ldpc_codes._BFS_BUDGET``).
_MAX_LEVELS = 3
# The degree-2 nodes beyond the zigzag path search much deeper (cycles made only of degree-2
# nodes are low-weight codewords); this budget still reaches cycles of length ~30 and up.
_DEEP_BUDGET = 10_000
# Random probes into a bucket of candidate checks before falling back to a scan.
_PROBES = 16


# --- progressive edge growth (numba) -------------------------------------------------------


@nb.njit(cache=True, nogil=True, inline="always")
def _add_edge(
    v: int,
    k: int,
    c: int,
    var_ptr: IntArray,
    var_adj: IntArray,
    chk_ptr: IntArray,
    chk_adj: IntArray,
    chk_cnt: IntArray,
    free: IntArray,
    order: IntArray,
    pos: IntArray,
    start: IntArray,
) -> None:
    var_adj[var_ptr[v] + k] = c
    chk_adj[chk_ptr[c] + chk_cnt[c]] = v
    chk_cnt[c] += 1
    r = free[c]
    if r > 0:
        # Move c from bucket r to bucket r-1: swap it with the bucket's first element.
        first = start[r]
        other = order[first]
        p = pos[c]
        order[first] = c
        order[p] = other
        pos[other] = p
        pos[c] = first
        start[r] += 1
        free[c] = r - 1


@nb.njit(cache=True, nogil=True)
def _peg_kernel(
    var_deg: IntArray, chk_cap: IntArray, rand: IntArray, budget: int
) -> tuple[IntArray, IntArray]:
    n = var_deg.size
    m = chk_cap.size
    var_ptr = np.zeros(n + 1, np.int64)
    for v in range(n):
        var_ptr[v + 1] = var_ptr[v] + var_deg[v]
    n_edges = var_ptr[n]
    var_adj = np.full(n_edges, -1, np.int64)
    slack = 8
    chk_ptr = np.zeros(m + 1, np.int64)
    for c in range(m):
        chk_ptr[c + 1] = chk_ptr[c] + chk_cap[c] + slack
    chk_adj = np.full(chk_ptr[m], -1, np.int64)
    chk_cnt = np.zeros(m, np.int64)
    free = chk_cap.copy()  # free sockets; < 0 never happens, overfilled checks sit at 0

    # Bucket queue over free sockets: order[start[r]:start[r+1]] holds the checks with r free.
    rmax = 0
    for c in range(m):
        rmax = max(rmax, free[c])
    start = np.zeros(rmax + 2, np.int64)
    for c in range(m):
        start[free[c] + 1] += 1
    for r in range(rmax + 1):
        start[r + 1] += start[r]
    fill = start[:-1].copy()
    order = np.zeros(m, np.int64)
    pos = np.zeros(m, np.int64)
    for c in range(m):
        r = free[c]
        order[fill[r]] = c
        pos[c] = fill[r]
        fill[r] += 1

    # Checks within distance 1 of the current variable v (level 0: its checks; level 1: checks
    # of its checks' other variables) are tracked incrementally while v gains edges, so the
    # 4-cycle test costs one expansion per edge instead of a search from scratch. Deeper levels
    # are searched afresh for every edge, within the work budget.
    near_stamp = np.full(m, -1, np.int64)
    near_level = np.zeros(m, np.int64)
    near = np.zeros(m, np.int64)
    expanded = np.full(n, -1, np.int64)  # == v: this variable's checks are in the near set
    far_stamp = np.zeros(m, np.int64)
    far_level = np.zeros(m, np.int64)
    far_vstamp = np.zeros(n, np.int64)
    far = np.zeros(m, np.int64)
    # Degree-2 nodes first form a zigzag path through the checks (v joins checks v and v+1),
    # so no cycle, hence no low-weight codeword, is made of degree-2 nodes alone; the rest of
    # them (high-rate ensembles have more than m - 1) get a much deeper search.
    n_zig = 0
    while n_zig < min(n, m - 1) and var_deg[n_zig] == 2:
        v = n_zig
        _add_edge(v, 0, v, var_ptr, var_adj, chk_ptr, chk_adj, chk_cnt, free, order, pos, start)
        _add_edge(v, 1, v + 1, var_ptr, var_adj, chk_ptr, chk_adj, chk_cnt, free, order, pos, start)
        n_zig += 1
    e = 0
    for v in range(n_zig, n):
        deep = var_deg[v] == 2
        max_levels = m if deep else _MAX_LEVELS
        limit = _DEEP_BUDGET if deep else budget
        n_near = 0
        expanded[v] = v
        for k in range(var_deg[v]):
            e += 1
            # Levels >= 2: breadth-first from the level-1 checks, unless there are so many that
            # the budget would be spent before the search gets anywhere.
            n_far = 0
            lo = 0
            hi = 0
            work = 0
            if n_near <= limit:
                for t in range(n_near):
                    c = near[t]
                    if near_level[c] == 1:
                        far[n_far] = c
                        n_far += 1
                hi = n_far
            level = 1
            while level < max_levels and hi > lo and work <= limit:
                for t in range(lo, hi):
                    c = far[t]
                    for u in range(chk_ptr[c], chk_ptr[c] + chk_cnt[c]):
                        w = chk_adj[u]
                        if expanded[w] == v or far_vstamp[w] == e:
                            continue
                        far_vstamp[w] = e
                        for q in range(var_ptr[w], var_ptr[w + 1]):
                            c2 = var_adj[q]
                            if c2 < 0:
                                break
                            work += 1
                            if near_stamp[c2] != v and far_stamp[c2] != e:
                                far_stamp[c2] = e
                                far_level[c2] = level + 1
                                far[n_far] = c2
                                n_far += 1
                    if work > limit:
                        break
                lo = hi
                hi = n_far
                level += 1
            # Unreached check with the most free sockets, uniformly at random within its bucket:
            # a few random probes first (cheap when most of the bucket is unreached), then a
            # scan from a random offset (when the search has reached most of the bucket).
            chosen = -1
            state = rand[e - 1] | 1
            for r in range(rmax, 0, -1):
                b0 = start[r]
                size = start[r + 1] - b0
                if size == 0:
                    continue
                for _ in range(_PROBES):
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                    c = order[b0 + (state & 0x7FFFFFFFFFFFFFFF) % size]
                    if near_stamp[c] != v and far_stamp[c] != e:
                        chosen = c
                        break
                if chosen < 0:
                    off = (state & 0x7FFFFFFFFFFFFFFF) % size
                    for t in range(size):
                        c = order[b0 + (off + t) % size]
                        if near_stamp[c] != v and far_stamp[c] != e:
                            chosen = c
                            break
                if chosen >= 0:
                    break
            if chosen < 0:
                # Every check with a free socket is reached: take the deepest level >= 2 (a
                # 6-cycle or longer), then the most free sockets (PEG's rule when the tree
                # spans the graph).
                best_level = 1
                best_free = 0
                for t in range(n_far):
                    c = far[t]
                    if (
                        free[c] > 0
                        and far_stamp[c] == e
                        and far_level[c] > 1
                        and (
                            far_level[c] > best_level
                            or (far_level[c] == best_level and free[c] > best_free)
                        )
                    ):
                        best_level = far_level[c]
                        best_free = free[c]
                        chosen = c
            if chosen < 0:
                # Only checks at distance <= 1 have free sockets: rather than close a 4-cycle,
                # overfill the check outside that distance that is the least over its target
                # (the check degrees then spread by one around rho).
                best_over = 1 << 60
                for c in range(m):
                    if near_stamp[c] == v:
                        continue
                    over = chk_cnt[c] - chk_cap[c]
                    if over < best_over and chk_ptr[c] + chk_cnt[c] < chk_ptr[c + 1]:
                        best_over = over
                        chosen = c
            if chosen < 0:
                # Last resort (tiny or dense graphs): the emptiest check not adjacent to v.
                best_over = 1 << 60
                for c in range(m):
                    if near_stamp[c] == v and near_level[c] == 0:
                        continue
                    over = chk_cnt[c] - chk_cap[c]
                    if over < best_over and chk_ptr[c] + chk_cnt[c] < chk_ptr[c + 1]:
                        best_over = over
                        chosen = c
            c = chosen
            _add_edge(v, k, c, var_ptr, var_adj, chk_ptr, chk_adj, chk_cnt, free, order, pos, start)
            # Grow the near set: c is level 0 now, the checks of its other variables level 1.
            if near_stamp[c] != v:
                near_stamp[c] = v
                near[n_near] = c
                n_near += 1
            near_level[c] = 0
            for u in range(chk_ptr[c], chk_ptr[c] + chk_cnt[c]):
                w = chk_adj[u]
                if expanded[w] == v:
                    continue
                expanded[w] = v
                for q in range(var_ptr[w], var_ptr[w + 1]):
                    c2 = var_adj[q]
                    if c2 < 0:
                        break
                    if near_stamp[c2] != v:
                        near_stamp[c2] = v
                        near_level[c2] = 1
                        near[n_near] = c2
                        n_near += 1
    return var_ptr, var_adj


@nb.njit(cache=True, nogil=True)
def _untainted_kernel(
    indptr: IntArray, indices: IntArray, cindptr: IntArray, cindices: IntArray, order: IntArray
) -> IntArray:
    """Greedy untainted puncturing in the given candidate order (Elkouss et al. 2012)."""
    n = cindptr.size - 1
    candidate = np.ones(n, np.bool_)
    out = np.zeros(n, np.int64)
    k = 0
    for v in order:
        if not candidate[v]:
            continue
        out[k] = v
        k += 1
        for q in range(cindptr[v], cindptr[v + 1]):
            c = cindices[q]
            for u in range(indptr[c], indptr[c + 1]):
                candidate[indices[u]] = False
    return out[:k]


@nb.njit(cache=True, nogil=True)
def _second_neighbourhood_sizes(
    indptr: IntArray, indices: IntArray, cindptr: IntArray, cindices: IntArray
) -> IntArray:
    """|N^2(v)|: distinct variable nodes sharing a check with v (v included)."""
    n = cindptr.size - 1
    stamp = np.full(n, -1, np.int64)
    out = np.zeros(n, np.int64)
    for v in range(n):
        cnt = 0
        for q in range(cindptr[v], cindptr[v + 1]):
            c = cindices[q]
            for u in range(indptr[c], indptr[c + 1]):
                w = indices[u]
                if stamp[w] != v:
                    stamp[w] = v
                    cnt += 1
        out[v] = cnt
    return out


@nb.njit(cache=True, nogil=True)
def syndrome_kernel(indptr: Int32Array, indices: Int32Array, words: BitArray) -> BitArray:
    """Syndromes H w (mod 2) of every row of ``words`` (frames x n) with H in CSR form."""
    frames = words.shape[0]
    m = indptr.size - 1
    out = np.zeros((frames, m), np.uint8)
    for f in range(frames):
        w = words[f]
        for c in range(m):
            acc = 0
            for u in range(indptr[c], indptr[c + 1]):
                acc ^= w[indices[u]]
            out[f, c] = acc
    return out
