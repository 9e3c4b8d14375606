"""Cascade error reconciliation between two parties, in two variants.

Model. Alice's key is the reference and Bob's differs from it by a binary symmetric channel of
(estimated) error rate ``qber``. In pass ``i`` both lay their keys out in a keyed pseudo-random
order ``pi_i``, cut it into blocks of ``k_i`` positions and compare the blocks' parities; Alice
reveals parities, Bob runs BINARY (bisection: Alice reveals the parity of one half, the other
half's follows by XOR) inside every block whose parity differs and flips the bit he finds. A flip
changes the parity of the blocks holding that bit in every earlier pass, which are then searched
as well (the cascade effect). Every bit Alice reveals is counted as leaked; Bob's questions are
public (they depend on the error pattern, not on Alice's key).

Variants
    ``original``: Brassard and Salvail, "Secret-key reconciliation by public discussion",
    EUROCRYPT 1993 (LNCS 765, 410): ``k_1 = ceil(0.73 / Q)``, ``k_i = 2 k_{i-1}``, 4 passes; the
    cascade effect searches the whole top-level block of the other pass, asking for its
    sub-block parities afresh.

    ``optimized``: Martinez-Mateo, Pacher, Peev, Ciurana and Martin, "Demystifying the
    information reconciliation protocol Cascade", Quantum Inf. Comput. 15, 453 (2015),
    arXiv:1407.3257, their best-performing proposal "Cascade opt. (8)": power-of-two block sizes
    ``k_1 = 2^ceil(alpha)``, ``k_2 = 2^ceil((alpha + 12) / 2)``, ``k_3 = 2^12``, ``k_i = n/2``
    for ``i >= 4``, with ``alpha = log2(1/Q) - 1/2``, 14 passes, and sub-block reuse (every
    parity Alice revealed, including BINARY's sub-block parities, is remembered; a cascade
    search starts in the smallest known block holding the flipped bit and descends through
    known parities without asking). The parameters are as reproduced in
    github.com/brunorijsman/cascade-python (``algorithm.py``, "option8"). On top of that, known
    parities are never requested again and parities implied by XOR are not sent: the parity of
    the whole key follows from pass 1, so in every later pass the last block's parity is
    derived rather than revealed (one bit per pass; "block parity inference" in the paper's
    terms).

Rounds. Alice sends every pass's top-level parities in her first message (they do not depend
on Bob's corrections, so sending them early leaks nothing extra). Then every round is one
message each way: Bob sends all his open questions (pass, position range) at once, Alice answers
with one array of parities. All searches of a pass, and all cascade searches they trigger, move
in lock-step; passes stay sequential so that pass ``i+1`` only sees the errors passes ``1..i``
left, which is what keeps the leakage low. A pass whose blocks all agree costs no round.

The number of round trips is ``channel_uses``; the leaked bits are exactly what the channel
books for the exchange.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from qnetkit.qkd.channel import ChannelError, Endpoint
from qnetkit.qkd.reconciliation import _cascade_kernels as _k
from qnetkit.qkd.reconciliation.base import BitArray, ReconciliationResult

Variant = Literal["optimized", "original"]
IntArray = npt.NDArray[np.int64]

# An estimate below this is treated as this (the block sizes diverge as Q -> 0); 1e-3 keeps the
# first blocks at ~1000 bits, which still corrects a small true error rate in a few passes.
MIN_QBER = 1e-3
MAX_QBER = 0.5

# Brassard and Salvail (1993): k_1 = 0.73 / Q, doubled each pass, four passes.
ORIGINAL_K1_FACTOR = 0.73
ORIGINAL_PASSES = 4

# Martinez-Mateo et al. (2015), Cascade opt. (8): 14 passes, third-pass block 2^12.
OPTIMIZED_PASSES = 14
OPTIMIZED_K3 = 4096

TOPIC_SETUP = "cascade.setup"
TOPIC_ASK = "cascade.ask"
TOPIC_ANSWER = "cascade.parities"


def original_block_sizes(n: int, qber: float, passes: int = ORIGINAL_PASSES) -> list[int]:
    """Brassard-Salvail schedule: k_1 = ceil(0.73 / Q), k_i = 2 k_{i-1} (capped at n/2)."""
    q = _clamp_qber(qber)
    sizes = [math.ceil(ORIGINAL_K1_FACTOR / q)]
    while len(sizes) < passes:
        sizes.append(2 * sizes[-1])
    return [_cap(k, n) for k in sizes[:passes]]


def optimized_block_sizes(n: int, qber: float, passes: int = OPTIMIZED_PASSES) -> list[int]:
    """Martinez-Mateo et al. (2015) "Cascade opt. (8)" schedule (capped at n/2).

    alpha = log2(1/Q) - 1/2; k_1 = 2^ceil(alpha), k_2 = 2^ceil((alpha + 12)/2), k_3 = 2^12,
    k_i = n/2 afterwards.
    """
    q = _clamp_qber(qber)
    alpha = math.log2(1.0 / q) - 0.5
    sizes = [2 ** math.ceil(alpha), 2 ** math.ceil((alpha + 12.0) / 2.0), OPTIMIZED_K3]
    while len(sizes) < passes:
        sizes.append(math.ceil(n / 2))
    return [_cap(k, n) for k in sizes[:passes]]


class CascadeReconciler:
    """Cascade (``variant="optimized"``, name "cascade"; or ``"original"``, "cascade-original").

    ``block_sizes`` overrides the first passes' block sizes; ``passes`` the number of passes
    (later passes continue the variant's rule: doubling for the original, n/2 for the
    optimized one). Alice decides the schedule from her QBER estimate and announces it, so
    Bob's ``qber`` argument is not used.
    """

    def __init__(
        self,
        variant: Variant = "optimized",
        *,
        block_sizes: Sequence[int] | None = None,
        passes: int | None = None,
    ) -> None:
        if variant not in ("optimized", "original"):
            raise ValueError(f"variant must be 'optimized' or 'original', not {variant!r}")
        if block_sizes is not None and (
            len(block_sizes) == 0 or any(int(k) < 1 for k in block_sizes)
        ):
            raise ValueError("block_sizes must be a non-empty sequence of positive integers")
        if passes is not None and passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        self.variant: Variant = variant
        self.name = "cascade" if variant == "optimized" else "cascade-original"
        self._block_sizes = None if block_sizes is None else [int(k) for k in block_sizes]
        if passes is None:
            default = OPTIMIZED_PASSES if variant == "optimized" else ORIGINAL_PASSES
            passes = default if block_sizes is None else max(default, len(block_sizes))
        self.passes = passes

    def schedule(self, n: int, qber: float) -> list[int]:
        """Block size of every pass for an ``n``-bit key at estimated error rate ``qber``."""
        rule = optimized_block_sizes if self.variant == "optimized" else original_block_sizes
        sizes = rule(n, qber, self.passes)
        if self._block_sizes is not None:
            given = [_cap(k, n) for k in self._block_sizes[: self.passes]]
            sizes = given + sizes[len(given) :]
            for i in range(len(given), len(sizes)):
                # Continue the variant's rule from the overridden sizes.
                if self.variant == "original":
                    sizes[i] = _cap(2 * sizes[i - 1], n)
                elif i >= 3:
                    sizes[i] = _cap(math.ceil(n / 2), n)
        return sizes

    # --- Alice -------------------------------------------------------------------------------

    def alice(
        self, ep: Endpoint, key: BitArray, qber: float, rng: np.random.Generator
    ) -> ReconciliationResult:
        """Reveal parities on request; Alice's key is the reference and is not changed."""
        key = _check_key(key)
        n = key.size
        sizes = self.schedule(n, qber) if n > 0 else []
        npass = len(sizes)
        a_bits, b_bits = _feistel_split(n)
        # Shared randomness: the keys of every pass's permutation (public), odd multipliers.
        perm_keys = rng.integers(
            0, np.iinfo(np.uint64).max, size=(npass, _k.KEYS_PER_PASS), dtype=np.uint64,
            endpoint=True,
        )
        perm_keys[:, 1::2] |= np.uint64(1)
        prefix = np.empty((npass, n + 1), dtype=np.uint8)
        if n > 0:
            _k.permuted_prefix_all(key, perm_keys, a_bits, b_bits, prefix)
        tops = _sent_top_parities(prefix, sizes, n, self.variant == "optimized")
        ep.send(
            TOPIC_SETUP,
            {"variant": self.variant, "n": n, "block_sizes": sizes, "perm_keys": perm_keys},
            leaked=tops,
        )
        leaked = int(tops.size)
        if n == 0:
            return ReconciliationResult(key.copy(), leaked, 1, True)
        rounds = 0
        while True:
            msg = ep.recv(TOPIC_ASK)
            if msg.public.get("done"):
                break
            p, lo, hi = _checked_question(ep, msg.public, npass, n)
            # Parity of Alice's bits at pass-p positions [lo, hi): two prefix lookups each.
            answer = prefix[p, hi] ^ prefix[p, lo]
            ep.send(TOPIC_ANSWER, leaked=answer)
            leaked += int(answer.size)
            rounds += 1
        return ReconciliationResult(key.copy(), leaked, rounds + 1, True)

    # --- Bob ---------------------------------------------------------------------------------

    def bob(self, ep: Endpoint, key: BitArray, qber: float) -> ReconciliationResult:
        """Correct Bob's copy of the key towards Alice's; returns the corrected copy."""
        del qber  # the schedule is Alice's, announced in her first message
        key = _check_key(key)
        msg = ep.recv(TOPIC_SETUP)
        n = int(msg.public["n"])
        if n != key.size:
            _abort(ep, f"key lengths differ: alice {n}, bob {key.size}")
            raise ValueError(f"key lengths differ: alice has {n} bits, bob {key.size}")
        if msg.public.get("variant") != self.variant:
            reason = f"variant mismatch: alice {msg.public.get('variant')}, bob {self.variant}"
            _abort(ep, reason)
            raise ValueError(reason)
        leaked = int(msg.leaked.size)
        if n == 0:
            return ReconciliationResult(key.copy(), leaked, 1, True)
        sizes = [int(k) for k in msg.public["block_sizes"]]
        perm_keys = np.ascontiguousarray(msg.public["perm_keys"], dtype=np.uint64)
        optimized = self.variant == "optimized"
        geo = _Geometry(sizes, n)
        if perm_keys.shape != (len(sizes), _k.KEYS_PER_PASS):
            _abort(ep, "malformed permutation keys")
            raise ChannelError("malformed permutation keys in cascade setup")
        if msg.leaked.size != _n_sent_tops(geo.nblk, optimized):
            _abort(ep, "wrong number of block parities")
            raise ChannelError("wrong number of block parities in cascade setup")
        cache = np.full(geo.cache_size, -1, dtype=np.int8)
        cache[geo.roots] = _all_top_parities(msg.leaked, geo.nblk, optimized)
        a_bits, b_bits = _feistel_split(n)
        work = key.copy()
        prefix = np.empty((len(sizes), n + 1), dtype=np.uint8)
        fenwick = np.empty((len(sizes), n + 1), dtype=np.uint8)
        state = np.zeros(_k.STATE_SIZE, dtype=np.int64)
        state[_k.ST_PASS] = -1
        state[_k.ST_MODE] = _k.MODE_SUBBLOCK_REUSE if optimized else _k.MODE_TOP_BLOCKS
        answers = np.empty(0, dtype=np.uint8)
        pending = np.empty((0, 3), dtype=np.int64)
        index_dtype = np.int32 if n < 2**31 else np.int64
        rounds = 0
        while True:
            nodes, lo, hi = _k.bob_round(
                work, geo.ksz, geo.kpow, geo.nblk, geo.noff, perm_keys, a_bits, b_bits,
                cache, prefix, fenwick, state, answers, pending,
            )  # fmt: skip
            if nodes.shape[0] == 0:
                ep.send(TOPIC_ASK, {"done": True})
                break
            ep.send(
                TOPIC_ASK,
                {
                    "done": False,
                    "p": nodes[:, 0].astype(np.int32),
                    "lo": lo.astype(index_dtype),
                    "hi": hi.astype(index_dtype),
                },
            )
            reply = ep.recv(TOPIC_ANSWER)
            if reply.leaked.size != nodes.shape[0]:
                raise ChannelError(
                    f"expected {nodes.shape[0]} parities from alice, got {reply.leaked.size}"
                )
            answers = reply.leaked
            pending = nodes
            leaked += int(reply.leaked.size)
            rounds += 1
        return ReconciliationResult(work, leaked, rounds + 1, True)


# --- helpers -----------------------------------------------------------------------------------


class _Geometry:
    """Per-pass block layout and where each pass's block trees live in Bob's parity cache."""

    def __init__(self, sizes: Sequence[int], n: int) -> None:
        self.ksz = np.asarray(sizes, dtype=np.int64)
        # Virtual power-of-two width of each block's BINARY tree.
        self.kpow = np.asarray([1 << max(0, (k - 1).bit_length()) for k in sizes], np.int64)
        self.nblk = np.asarray([-(-n // k) for k in sizes], dtype=np.int64)
        tree = self.nblk * 2 * self.kpow
        self.noff = np.concatenate(([0], np.cumsum(tree)[:-1])).astype(np.int64)
        self.cache_size = int(tree.sum())
        self.roots = np.concatenate(
            [
                self.noff[q] + np.arange(self.nblk[q], dtype=np.int64) * 2 * self.kpow[q] + 1
                for q in range(len(sizes))
            ]
        )


def _clamp_qber(qber: float) -> float:
    if not math.isfinite(qber):
        raise ValueError(f"qber must be finite, got {qber}")
    return min(max(qber, MIN_QBER), MAX_QBER)


def _cap(k: int, n: int) -> int:
    """Block sizes stay in [1, ceil(n/2)]: one block holding the whole key tells nothing new."""
    return max(1, min(int(k), math.ceil(n / 2)))


def _check_key(key: BitArray) -> BitArray:
    arr = np.asarray(key)
    if arr.ndim != 1:
        raise ValueError(f"key must be a 1-d bit array, got shape {arr.shape}")
    if arr.size and (arr.dtype.kind not in "uib" or arr.min() < 0 or arr.max() > 1):
        raise ValueError("key must contain only 0 and 1")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _feistel_split(n: int) -> tuple[int, int]:
    """Bit widths (left, right) of the permutation domain 2^m >= n, m >= 2."""
    m = max(2, (n - 1).bit_length())
    return m // 2, m - m // 2


def _n_sent_tops(nblk: IntArray, optimized: bool) -> int:
    total = int(nblk.sum())
    if optimized:
        # Passes after the first derive their last block's parity from the total parity.
        total -= len(nblk) - 1
    return total


def _sent_top_parities(
    prefix: npt.NDArray[np.uint8], sizes: Sequence[int], n: int, optimized: bool
) -> BitArray:
    """Alice's top-level block parities of every pass, minus those Bob can derive."""
    parts: list[BitArray] = []
    for q, k in enumerate(sizes):
        starts = np.arange(0, n, k, dtype=np.int64)
        ends = np.minimum(starts + k, n)
        par = prefix[q, ends] ^ prefix[q, starts]
        parts.append(par[:-1] if optimized and q > 0 else par)
    if not parts:
        return np.empty(0, dtype=np.uint8)
    return np.concatenate(parts).astype(np.uint8)


def _all_top_parities(sent: BitArray, nblk: IntArray, optimized: bool) -> npt.NDArray[np.int8]:
    """Bob's reconstruction of every top-level parity from what Alice sent."""
    out: list[npt.NDArray[np.int8]] = []
    pos = 0
    total = 0
    for q, nb in enumerate(int(v) for v in nblk):
        if optimized and q > 0:
            par = np.empty(nb, dtype=np.int8)
            par[:-1] = sent[pos : pos + nb - 1]
            pos += nb - 1
            par[-1] = total ^ (int(np.bitwise_xor.reduce(par[:-1])) if nb > 1 else 0)
        else:
            par = sent[pos : pos + nb].astype(np.int8)
            pos += nb
        if q == 0:
            total = int(np.bitwise_xor.reduce(par)) & 1
        out.append(par)
    return np.concatenate(out)


def _checked_question(
    ep: Endpoint, public: dict[str, object], npass: int, n: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Bob's question arrays, validated so a malformed request cannot index out of range."""
    try:
        p = np.asarray(public["p"], dtype=np.int64)
        lo = np.asarray(public["lo"], dtype=np.int64)
        hi = np.asarray(public["hi"], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        _abort(ep, "malformed parity request")
        raise ChannelError("malformed cascade parity request") from None
    ok = (
        p.ndim == 1
        and p.shape == lo.shape == hi.shape
        and bool(np.all((p >= 0) & (p < npass) & (lo >= 0) & (lo < hi) & (hi <= n)))
    )
    if not ok:
        _abort(ep, "parity request out of range")
        raise ChannelError("cascade parity request out of range")
    return p, lo, hi


def _abort(ep: Endpoint, reason: str) -> None:
    """Tell the peer to stop waiting before raising locally."""
    try:
        ep.send("abort", {"reason": reason})
    except ChannelError:
        pass
