"""Numba kernel behind :func:`.chain_swap_asap.swap_asap_engine`: the SWAP-ASAP event loop.

The kernel executes the protocol of :mod:`.chain_swap_asap` one run after the other, event by
event, on the timing only (no randomness of its own, no quantum states):

* The next event of a run is found in O(log links) with two tournament trees (one over the
  ready times of the pending elementary pairs, one over the cutoff times of the stored pairs)
  instead of an argmin over all links per event, which made the vectorised loop cost
  O(links^2) per delivered pair. Ties go to the lowest index and a link success wins a tie
  with an expiry, as ``np.argmin`` and the strict ``<`` of the earlier loop did. The trees
  are read only at the start of an event, so the paths of the entries an event changed are
  brought up to date at its end.
* The event itself is written out in one function (no helper calls): array arguments passed
  to compiled helpers cost reference-count updates that took most of the time per event.
* Random inputs come from pools drawn in Python by the caller (elementary pairs from the
  chain's link sampler, uniforms for the swap outcomes). Before each event the kernel checks
  that the pools hold what one event can take at most (a link success swaps at both its nodes;
  a swap restarts at most four links); if not it stops with a status code, the caller refills
  and calls again: all state lives in the arrays passed in, so a call resumes where the last
  one stopped.
* States are not computed here: every stored pair has a node in a per-run log (a leaf: an
  elementary pair and its coefficients; a swap: its two inputs and how long each waited in
  memory before the swap). At delivery the tree of the end-to-end pair (``links`` leaves,
  ``links - 1`` swaps) is copied out in post-order with each swap's height, and the caller
  evaluates the states level by level with the vectorised operations of
  :mod:`.operations`, in exactly the order the event loop applied them before.

Compiled with ``cache=True``: the first use on a machine pays the compilation once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Status codes returned by :func:`run_engine`.
DONE = 0
NEED_SAMPLES = 1
NEED_UNIFORMS = 2
NEED_LOG = 3
EVENT_LIMIT = 4

# Rows of the per-run float state ``fs`` (length links + 1 each).
LINK_T = 0  # ready time of a pending elementary pair (inf: none)
LINK_AGE = 1  # age of that pair's oldest constituent at its ready time (purification)
SEG_T = 2  # pair stored under its left node: time of its state
SEG_O = 3  # creation time of its oldest constituent
SEG_EXP = 4  # when it passes the cutoff (inf: no pair, or no cutoff)
N_FS = 5
# Rows of the per-run integer state ``is_``.
SEG_R = 0  # right end of the pair stored under this (left) node, -1: none
SEG_L = 1  # left end of the pair ending at this node, -1: none
SEG_NODE = 2  # log node of the stored pair's state
N_IS = 3
# Slots of the scalar state ``st`` (int64) and ``sf`` (float64).
ST_RUN = 0  # current run
ST_STARTED = 1  # 1 once the current run's links were started
ST_POS = 2  # next unused pool sample
ST_UPOS = 3  # next unused uniform
ST_LOGN = 4  # log nodes used by the current run
ST_LOOPS = 5  # events (link successes, expiries) of the current run
ST_EVENTS = 6  # swaps, expiries, deliveries (samples are counted in SF_EV)
N_ST = 7
SF_NOW = 0
SF_EV = 1  # protocol events of the consumed samples
N_SF = 2


@njit(cache=True, nogil=True)
def _tree_build(tree: I64, val: F64, size: int) -> None:
    """Tournament tree over ``val[:size]``: ``tree[1]`` is the first index of the minimum.

    Leaves past ``size`` point at ``val[size]``, which must be inf; ties go to the lower index,
    so a padding leaf never wins over a real entry.
    """
    leaves = tree.size // 2
    for i in range(leaves):
        tree[leaves + i] = min(i, size)
    for k in range(leaves - 1, 0, -1):
        a = tree[2 * k]
        b = tree[2 * k + 1]
        tree[k] = a if val[a] <= val[b] else b


@njit(cache=True, nogil=True)
def _extract(
    run: int, root: int, links: int, log_a: I64, log_b: I64, log_dta: F64, log_dtb: F64,
    log_c: F64, out_leaf_c: F64, out_a: I64, out_b: I64, out_dta: F64, out_dtb: F64,
    out_h: I64, scratch: I64,
) -> None:
    """Copy the delivered pair's tree out in post-order (children before their swap).

    Leaves get ids ``0 .. links-1`` (left to right), swaps ``links .. 2 links - 2``; swap
    ``k`` combines ``out_a[run, k]`` and ``out_b[run, k]``; ``out_h`` is its height.
    """
    stack, phase, vals, hs = scratch[0], scratch[1], scratch[2], scratch[3]
    sp = 1
    stack[0] = root
    phase[0] = 0
    nv = 0
    n_leaf = 0
    n_swap = 0
    while sp > 0:
        node = stack[sp - 1]
        if log_a[node] < 0:  # leaf: an elementary pair
            for c in range(4):
                out_leaf_c[run, n_leaf, c] = log_c[node, c]
            vals[nv] = n_leaf
            hs[nv] = 0
            nv += 1
            n_leaf += 1
            sp -= 1
        elif phase[sp - 1] == 0:
            phase[sp - 1] = 1
            stack[sp] = log_a[node]
            phase[sp] = 0
            sp += 1
        elif phase[sp - 1] == 1:
            phase[sp - 1] = 2
            stack[sp] = log_b[node]
            phase[sp] = 0
            sp += 1
        else:
            out_a[run, n_swap] = vals[nv - 2]
            out_b[run, n_swap] = vals[nv - 1]
            out_dta[run, n_swap] = log_dta[node]
            out_dtb[run, n_swap] = log_dtb[node]
            h = 1 + max(hs[nv - 2], hs[nv - 1])
            out_h[run, n_swap] = h
            nv -= 2
            vals[nv] = links + n_swap
            hs[nv] = h
            nv += 1
            n_swap += 1
            sp -= 1


@njit(cache=True, nogil=True)
def run_engine(
    links: int, cut: float, q: float, max_loops: int,
    init_t: F64, init_age: F64, init_c: F64,
    pool_t: F64, pool_age: F64, pool_c: F64, pool_ev: F64, pool_u: F64,
    st: I64, sf: F64, fs: F64, is_: I64, link_c: F64, lt_tree: I64, ex_tree: I64,
    log_a: I64, log_b: I64, log_dta: F64, log_dtb: F64, log_c: F64,
    ready: F64, final_dt: F64, out_leaf_c: F64, out_a: I64, out_b: I64,
    out_dta: F64, out_dtb: F64, out_h: I64,
) -> int:
    """Run (or resume) the event loop over runs ``st[ST_RUN] ..``; returns a status code."""
    n = ready.size
    link_t, link_age, seg_t = fs[LINK_T], fs[LINK_AGE], fs[SEG_T]
    seg_o, seg_exp = fs[SEG_O], fs[SEG_EXP]
    seg_r, seg_l, seg_node = is_[SEG_R], is_[SEG_L], is_[SEG_NODE]
    finite_cut = cut < np.inf
    scratch = np.empty((4, links + 1), np.int64)  # stacks of _extract
    todo = np.empty(4, np.int64)
    dirty_lt = np.empty(16, np.int64)
    dirty_ex = np.empty(16, np.int64)
    half_lt = lt_tree.size // 2
    half_ex = ex_tree.size // 2
    while st[ST_RUN] < n:
        run = st[ST_RUN]
        if st[ST_STARTED] == 0:
            # Empty memories at t = 0; every link starts with the run's own initial sample.
            for j in range(links + 1):
                link_t[j] = np.inf
                seg_exp[j] = np.inf
                seg_r[j] = -1
                seg_l[j] = -1
            for j in range(links):
                link_t[j] = init_t[run, j]
                link_age[j] = init_age[run, j]
                for c in range(4):
                    link_c[j, c] = init_c[run, j, c]
            _tree_build(lt_tree, link_t, links)
            _tree_build(ex_tree, seg_exp, links)  # pairs are stored under nodes < links
            sf[SF_NOW] = 0.0
            st[ST_LOGN] = 0
            st[ST_LOOPS] = 0
            st[ST_STARTED] = 1
        while True:
            if st[ST_POS] + 8 > pool_t.size:
                return NEED_SAMPLES
            if q < 1.0 and st[ST_UPOS] + 2 > pool_u.size:
                return NEED_UNIFORMS
            if st[ST_LOGN] + 3 > log_a.size:
                return NEED_LOG
            if st[ST_LOOPS] >= max_loops:
                return EVENT_LIMIT
            st[ST_LOOPS] += 1
            # Everything below is written out in this one function: array arguments passed
            # to helpers cost reference-count updates that dominated the time per event.
            n_dirty_lt = 0  # links whose ready time changed in this event
            n_dirty_ex = 0  # nodes whose stored pair's cutoff time changed
            n_todo = 0  # links to start (if free), in order
            i_link = lt_tree[1]
            t_link = link_t[i_link]
            j_exp = ex_tree[1]
            if finite_cut and seg_exp[j_exp] < t_link:
                # The oldest constituent of the pair under j_exp passed the cutoff: discard it
                # and restart the links its memories blocked.
                now = seg_exp[j_exp]
                st[ST_EVENTS] += 1
                right = seg_r[j_exp]
                seg_r[j_exp] = -1
                seg_l[right] = -1
                seg_exp[j_exp] = np.inf
                dirty_ex[n_dirty_ex] = j_exp
                n_dirty_ex += 1
                todo[0] = j_exp
                todo[1] = right - 1
                n_todo = 2
                n_swaps = 0
            else:
                now = t_link
                k = st[ST_LOGN]
                st[ST_LOGN] = k + 1
                log_a[k] = -1
                log_b[k] = -1
                for c in range(4):
                    log_c[k, c] = link_c[i_link, c]
                seg_r[i_link] = i_link + 1
                seg_l[i_link + 1] = i_link
                seg_node[i_link] = k
                seg_t[i_link] = now
                seg_o[i_link] = now - link_age[i_link]
                seg_exp[i_link] = seg_o[i_link] + cut
                link_t[i_link] = np.inf
                dirty_ex[n_dirty_ex] = i_link
                n_dirty_ex += 1
                dirty_lt[n_dirty_lt] = i_link
                n_dirty_lt += 1
                n_swaps = 2
            sf[SF_NOW] = now
            # Swap at the left node, then at the right node, wherever it holds two pairs
            # (n_swaps = 0 for an expiry: only its restarts run, through the same code).
            for step in range(n_swaps + 1):
                if step < n_swaps:
                    node = i_link + step
                    if not (0 < node < links and seg_l[node] >= 0 and seg_r[node] >= 0):
                        continue
                    left = seg_l[node]
                    right = seg_r[node]
                    st[ST_EVENTS] += 1
                    ok = True
                    if q < 1.0:  # q = 1 needs no draw
                        ok = pool_u[st[ST_UPOS]] < q
                        st[ST_UPOS] += 1
                    # Both outcomes free the swapping node's memories.
                    seg_r[node] = -1
                    seg_l[node] = -1
                    seg_exp[node] = np.inf
                    dirty_ex[n_dirty_ex] = node
                    dirty_ex[n_dirty_ex + 1] = left
                    n_dirty_ex += 2
                    n_todo = 0
                    if ok:
                        k = st[ST_LOGN]
                        st[ST_LOGN] = k + 1
                        log_a[k] = seg_node[left]
                        log_b[k] = seg_node[node]
                        log_dta[k] = now - seg_t[left]
                        log_dtb[k] = now - seg_t[node]
                        seg_r[left] = right
                        seg_l[right] = left
                        seg_node[left] = k
                        seg_t[left] = now
                        seg_o[left] = min(seg_o[left], seg_o[node])
                        seg_exp[left] = seg_o[left] + cut
                    else:  # a failed Bell measurement destroys both pairs
                        seg_r[left] = -1
                        seg_l[right] = -1
                        seg_exp[left] = np.inf
                        todo[0] = left
                        todo[1] = right - 1
                        n_todo = 2
                    todo[n_todo] = node - 1
                    todo[n_todo + 1] = node
                    n_todo += 2
                # Start generation on the listed links where both memories are free and
                # the link is idle (right after each swap, as the protocol does).
                for t in range(n_todo):
                    link = todo[t]
                    if link < 0 or link >= links:
                        continue
                    if seg_r[link] >= 0 or seg_l[link + 1] >= 0 or link_t[link] != np.inf:
                        continue
                    p = st[ST_POS]
                    st[ST_POS] = p + 1
                    sf[SF_EV] += pool_ev[p]
                    link_t[link] = now + pool_t[p]
                    link_age[link] = pool_age[p]
                    for c in range(4):
                        link_c[link, c] = pool_c[p, c]
                    dirty_lt[n_dirty_lt] = link
                    n_dirty_lt += 1
                n_todo = 0
            # The trees are read only at the next event: bring the changed paths up to date.
            for t in range(n_dirty_lt):
                kk = (half_lt + dirty_lt[t]) // 2
                while kk >= 1:
                    x = lt_tree[2 * kk]
                    y = lt_tree[2 * kk + 1]
                    lt_tree[kk] = x if link_t[x] <= link_t[y] else y
                    kk //= 2
            for t in range(n_dirty_ex):
                kk = (half_ex + dirty_ex[t]) // 2
                while kk >= 1:
                    x = ex_tree[2 * kk]
                    y = ex_tree[2 * kk + 1]
                    ex_tree[kk] = x if seg_exp[x] <= seg_exp[y] else y
                    kk //= 2
            if seg_r[0] == links:
                now = sf[SF_NOW]
                ready[run] = now
                final_dt[run] = now - seg_t[0]
                st[ST_EVENTS] += 1
                _extract(run, seg_node[0], links, log_a, log_b, log_dta, log_dtb, log_c,
                         out_leaf_c, out_a, out_b, out_dta, out_dtb, out_h, scratch)
                break
        st[ST_RUN] = run + 1
        st[ST_STARTED] = 0
    return DONE
