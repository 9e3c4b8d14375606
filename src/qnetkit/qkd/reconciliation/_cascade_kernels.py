"""Numba kernels behind ``cascade.py``: keyed pass permutations, prefix parities, Bob's rounds.

Everything here is local computation of one party; the protocol (who sends what) lives in
``cascade.py``. Kernels are compiled with ``cache=True`` (first import pays the compilation once
per machine) and ``nogil=True`` so Alice's and Bob's threads can run concurrently.

Pass permutations
    Pass ``q`` lays the key out in the order ``pi_q(0), pi_q(1), ...`` and cuts that order into
    blocks. ``pi_q`` is a 4-round (possibly unbalanced) Feistel network on ``m = ceil(log2 n)``
    bits with multiply-shift round functions keyed from Alice's generator, restricted to
    ``[0, n)`` by cycle walking (Black and Rogaway, CT-RSA 2002). Both directions are O(1) per
    element and need no stored table, which is what makes 14 passes over 10^6 bits cheap; a
    stored uniformly random permutation would cost a random-access shuffle plus its inverse per
    pass and party.

Block trees
    A block is searched by BINARY on an implicit binary tree: node ``h`` (root 1, children
    ``2h`` and ``2h+1``) is split at its midpoint, the left half taking the extra position of an
    odd length. A block of ``k <= K = 2^ceil(log2 k)`` positions has heap indices below ``2K``.
    Bob keeps Alice's revealed parity of every tree node he has learnt in one flat ``int8``
    array (-1 unknown, -2 asked in the current round); the right child's parity is always
    derived as parent XOR left child, never asked.

Bob's own parities
    Per started pass Bob stores the prefix parity of his permuted key at the moment the pass
    started, plus a Fenwick tree (XOR) of the bits he flipped since, so the parity of any range
    in any pass is O(log n) however the key has changed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

U8 = npt.NDArray[np.uint8]
I8 = npt.NDArray[np.int8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

FEISTEL_ROUNDS = 4
KEYS_PER_PASS = 2 * FEISTEL_ROUNDS  # (additive key, odd multiplier) per round

# state vector slots shared between cascade.py and the kernels
ST_PASS = 0  # index of the last started pass (-1 before the first)
ST_MODE = 1  # one of the MODE_* values below
ST_FLIPS = 2  # number of bits Bob flipped so far
ST_EARLY = 3  # start the next pass once a round has at most this many questions (0: never)
STATE_SIZE = 4

# How searches use what Bob already knows.
MODE_SUBBLOCK_REUSE = 0  # cascade starts in the smallest known block holding the flipped bit
MODE_TOP_BLOCKS = 1  # cascade starts in the top-level block; known sub-block parities reused
MODE_REASK = 2  # cascade starts in the top-level block and every sub-block parity is asked


@njit(cache=True, nogil=True, inline="always")
def _feistel(x: np.uint64, keys: U64, a: np.uint64, b: np.uint64) -> np.uint64:
    """One application of the keyed Feistel network on a+b bits (left part a bits)."""
    sixty_four = np.uint64(64)
    wl = a
    wr = b
    left = x >> b
    right = x & ((np.uint64(1) << b) - np.uint64(1))
    for i in range(FEISTEL_ROUNDS):
        f = ((right + keys[2 * i]) * keys[2 * i + 1]) >> (sixty_four - wl)
        left, right = right, left ^ f
        wl, wr = wr, wl
    return (left << wr) | right


@njit(cache=True, nogil=True, inline="always")
def _feistel_inv(y: np.uint64, keys: U64, a: np.uint64, b: np.uint64) -> np.uint64:
    """Inverse of ``_feistel`` (an even number of rounds restores the (a, b) split)."""
    sixty_four = np.uint64(64)
    wl = a
    wr = b
    left = y >> b
    right = y & ((np.uint64(1) << b) - np.uint64(1))
    for i in range(FEISTEL_ROUNDS - 1, -1, -1):
        f = ((left + keys[2 * i]) * keys[2 * i + 1]) >> (sixty_four - wr)
        left, right = right ^ f, left
        wl, wr = wr, wl
    return (left << wr) | right


@njit(cache=True, nogil=True)
def perm_forward(j: int, keys: U64, a: int, b: int, n: int) -> int:
    """pi(j): key index at position ``j`` of the pass order (cycle walking into [0, n))."""
    ua = np.uint64(a)
    ub = np.uint64(b)
    un = np.uint64(n)
    x = _feistel(np.uint64(j), keys, ua, ub)
    while x >= un:
        x = _feistel(x, keys, ua, ub)
    return np.int64(x)


@njit(cache=True, nogil=True)
def perm_inverse(x: int, keys: U64, a: int, b: int, n: int) -> int:
    """pi^-1(x): position of key index ``x`` in the pass order."""
    ua = np.uint64(a)
    ub = np.uint64(b)
    un = np.uint64(n)
    y = _feistel_inv(np.uint64(x), keys, ua, ub)
    while y >= un:
        y = _feistel_inv(y, keys, ua, ub)
    return np.int64(y)


@njit(cache=True, nogil=True)
def permuted_prefix(key: U8, keys: U64, a: int, b: int, out: U8) -> None:
    """out[j] = parity of key[pi(0)], ..., key[pi(j-1)] for j = 0..n (one fused sweep)."""
    n = key.size
    ua = np.uint64(a)
    ub = np.uint64(b)
    un = np.uint64(n)
    acc = np.uint8(0)
    out[0] = acc
    for j in range(n):
        x = _feistel(np.uint64(j), keys, ua, ub)
        while x >= un:
            x = _feistel(x, keys, ua, ub)
        acc ^= key[x]
        out[j + 1] = acc


@njit(cache=True, nogil=True)
def permuted_prefix_all(key: U8, keys: U64, a: int, b: int, out: U8) -> None:
    """``permuted_prefix`` for every pass: ``keys`` is (P, KEYS_PER_PASS), ``out`` (P, n+1)."""
    for q in range(keys.shape[0]):
        permuted_prefix(key, keys[q], a, b, out[q])


# --- Bob ---------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _fen_prefix(row: U8, i: int) -> int:
    s = 0
    while i > 0:
        s ^= row[i]
        i -= i & -i
    return s


@njit(cache=True, nogil=True, inline="always")
def _fen_toggle(row: U8, j: int, n: int) -> None:
    i = j + 1
    while i <= n:
        row[i] ^= np.uint8(1)
        i += i & -i


@njit(cache=True, nogil=True, inline="always")
def _bob_parity(pre: U8, fen: U8, q: int, lo: int, hi: int) -> int:
    """Parity of Bob's current bits at pass-``q`` positions [lo, hi)."""
    return (
        pre[q, hi] ^ pre[q, lo] ^ _fen_prefix(fen[q], hi) ^ _fen_prefix(fen[q], lo)
    ) & 1


@njit(cache=True, nogil=True, inline="always")
def _mid(lo: int, hi: int) -> int:
    """BINARY's split point: the left half gets the extra position of an odd range."""
    return lo + (hi - lo + 1) // 2


@njit(cache=True, nogil=True, inline="always")
def _node_range(q: int, b: int, h: int, ksz: I64, n: int) -> tuple[int, int]:
    """Positions [lo, hi) of tree node ``h`` (root 1, children 2h, 2h+1) of block ``b``."""
    lo = b * ksz[q]
    hi = min(lo + ksz[q], n)
    depth = 0
    t = h
    while t > 1:
        t >>= 1
        depth += 1
    for d in range(depth - 1, -1, -1):
        mid = _mid(lo, hi)
        if (h >> d) & 1:
            lo = mid
        else:
            hi = mid
    return lo, hi


@njit(cache=True, nogil=True)
def _push(stack: I64, top: int, q: int, b: int, h: int) -> tuple[I64, int]:
    if top == stack.shape[0]:
        bigger = np.empty((2 * stack.shape[0], 3), dtype=np.int64)
        bigger[:top] = stack[:top]
        stack = bigger
    stack[top, 0] = q
    stack[top, 1] = b
    stack[top, 2] = h
    return stack, top + 1


@njit(cache=True, nogil=True)
def bob_round(
    key: U8,
    ksz: I64,
    kpow: I64,
    nblk: I64,
    noff: I64,
    fkeys: U64,
    fa: int,
    fb: int,
    cache: I8,
    pre: U8,
    fen: U8,
    state: I64,
    answers: U8,
    pending: I64,
) -> tuple[I64, I64, I64]:
    """Advance Bob as far as possible without Alice; return the next round's questions.

    ``pending`` holds the nodes (pass, block, heap index) whose left child's parity Alice has
    just answered in ``answers``. Bob stores those parities, moves each search into the child
    that holds an odd number of errors, then runs every search down through parities he already
    knows, flips bits at single-position nodes, starts cascade searches in the other passes, and
    starts the next pass when nothing is left. Returns (nodes, lo, hi): the nodes whose left
    child's parity he asks for next, and those children's position ranges; no nodes means done.
    """
    n = key.size
    npass = ksz.size
    mode = state[ST_MODE]
    stack = np.empty((max(64, 2 * pending.shape[0] + 16), 3), dtype=np.int64)
    top = 0
    reqs = np.empty((64, 3), dtype=np.int64)
    nreq = 0

    # 1. Alice's answers: both children become known; follow the one with odd error parity.
    for i in range(pending.shape[0]):
        q = pending[i, 0]
        b = pending[i, 1]
        h = pending[i, 2]
        lo, hi = _node_range(q, b, h, ksz, n)
        base = noff[q] + b * 2 * kpow[q]
        a = np.int8(answers[i])
        cache[base + 2 * h] = a
        cache[base + 2 * h + 1] = cache[base + h] ^ a
        if (a ^ _bob_parity(pre, fen, q, lo, _mid(lo, hi))) & 1:
            stack, top = _push(stack, top, q, b, 2 * h)
        else:
            stack, top = _push(stack, top, q, b, 2 * h + 1)

    cur = state[ST_PASS]
    started = False
    while True:
        # 2. Run all searches locally; only unknown parities end a search (as a question).
        while top > 0:
            top -= 1
            q = stack[top, 0]
            b = stack[top, 1]
            h = stack[top, 2]
            lo, hi = _node_range(q, b, h, ksz, n)
            base = noff[q] + b * 2 * kpow[q]
            while True:
                ap = cache[base + h]
                if ((ap ^ _bob_parity(pre, fen, q, lo, hi)) & 1) == 0:
                    break  # even: no error guaranteed here (any odd part has its own search)
                if hi - lo == 1:
                    # A single position with odd error parity: Bob's bit is wrong.
                    x = perm_forward(lo, fkeys[q], fa, fb, n)
                    key[x] ^= np.uint8(1)
                    state[ST_FLIPS] += 1
                    for r in range(cur + 1):
                        j = lo if r == q else perm_inverse(x, fkeys[r], fa, fb, n)
                        _fen_toggle(fen[r], j, n)
                        if r == q:
                            continue
                        # Cascade: every known block of pass r holding x changed parity. Search
                        # the smallest one (sub-block reuse) or the top-level block (original).
                        br = j // ksz[r]
                        hr = 1
                        if mode == MODE_SUBBLOCK_REUSE:
                            rbase = noff[r] + br * 2 * kpow[r]
                            rlo = br * ksz[r]
                            rhi = min(rlo + ksz[r], n)
                            while rhi - rlo > 1 and cache[rbase + 2 * hr] >= 0:
                                rmid = _mid(rlo, rhi)
                                if j < rmid:
                                    hr = 2 * hr
                                    rhi = rmid
                                else:
                                    hr = 2 * hr + 1
                                    rlo = rmid
                        stack, top = _push(stack, top, r, br, hr)
                    break
                mid = _mid(lo, hi)
                left = base + 2 * h
                cl = cache[left]
                if cl >= 0 and mode != MODE_REASK:
                    # Both children known: descend without asking.
                    if ((cl ^ _bob_parity(pre, fen, q, lo, mid)) & 1) == 1:
                        h = 2 * h
                        hi = mid
                    else:
                        h = 2 * h + 1
                        lo = mid
                    continue
                if cl == -2:
                    break  # another search already asks this node's question this round
                cache[left] = -2
                if nreq == reqs.shape[0]:
                    bigger = np.empty((2 * nreq, 3), dtype=np.int64)
                    bigger[:nreq] = reqs[:nreq]
                    reqs = bigger
                reqs[nreq, 0] = q
                reqs[nreq, 1] = b
                reqs[nreq, 2] = h
                nreq += 1
                break

        # 3. Flips made after a question was queued can make its node even: drop those.
        keep = 0
        for i in range(nreq):
            q = reqs[i, 0]
            b = reqs[i, 1]
            h = reqs[i, 2]
            lo, hi = _node_range(q, b, h, ksz, n)
            base = noff[q] + b * 2 * kpow[q]
            if ((cache[base + h] ^ _bob_parity(pre, fen, q, lo, hi)) & 1) == 1:
                reqs[keep] = reqs[i]
                keep += 1
            else:
                cache[base + 2 * h] = -1
        nreq = keep
        if nreq > 0 and (nreq > state[ST_EARLY] or cur + 1 == npass or started):
            break

        # 4. Little or nothing to ask: start the next pass, or check that every block agrees and
        # stop.
        if cur + 1 < npass:
            started = True  # at most one pass starts per round
            cur += 1
            state[ST_PASS] = cur
            permuted_prefix(key, fkeys[cur], fa, fb, pre[cur])
            fen[cur, :] = 0
            k = ksz[cur]
            for b in range(nblk[cur]):
                lo = b * k
                hi = min(lo + k, n)
                root = noff[cur] + b * 2 * kpow[cur] + 1
                if ((cache[root] ^ _bob_parity(pre, fen, cur, lo, hi)) & 1) == 1:
                    stack, top = _push(stack, top, cur, b, 1)
            continue
        for r in range(cur + 1):
            k = ksz[r]
            for b in range(nblk[r]):
                lo = b * k
                hi = min(lo + k, n)
                root = noff[r] + b * 2 * kpow[r] + 1
                if ((cache[root] ^ _bob_parity(pre, fen, r, lo, hi)) & 1) == 1:
                    stack, top = _push(stack, top, r, b, 1)
        if top == 0:
            break

    out = reqs[:nreq].copy()
    los = np.empty(nreq, dtype=np.int64)
    his = np.empty(nreq, dtype=np.int64)
    for i in range(nreq):
        lo, hi = _node_range(out[i, 0], out[i, 1], out[i, 2], ksz, n)
        los[i] = lo
        his[i] = _mid(lo, hi)
    return out, los, his
