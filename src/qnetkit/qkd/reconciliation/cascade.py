"""Cascade error reconciliation between two parties, in two variants.

Model. Alice's key is the reference; Bob's differs from it by a binary symmetric channel of
(estimated) error rate ``qber``. In pass ``i`` both lay their keys out in a pseudo-random order
keyed by Alice's generator, cut it into blocks of ``k_i`` positions and compare block parities:
Alice reveals parities, Bob runs BINARY (bisection: Alice reveals the parity of one half, the
other half's follows by XOR) inside every block whose parity differs from his and flips the bit
he finds. A flip changes the parity of the blocks holding that bit in every other started pass,
which are then searched as well (the cascade effect). Every parity Alice sends is counted as
leaked; Bob's questions are public: they depend on the error pattern, not on Alice's key.

Variants
    ``original`` (name "cascade-original"): Brassard and Salvail, "Secret-key reconciliation
    by public discussion", EUROCRYPT 1993, LNCS 765, 410: ``k_1 = ceil(0.73 / Q)``,
    ``k_i = 2 k_{i-1}``, 4 passes, a fresh random order per pass, BINARY on odd blocks; the
    cascade effect searches the top-level block that holds the flipped bit in each other pass
    (sub-block parities Bob already holds are not asked again, as in the simulations of the
    original by Martinez-Mateo et al.). Their "Cascade orig." curve (Figs. 1 and 11, n = 10^4;
    read off the plot) is about f = 1.13, 1.15, 1.165, 1.18, 1.21, 1.21 at Q = 1, 2, 3, 5, 8,
    10 % (the paper values ``tests/qkd/test_cascade.py`` compares with); this module measures
    1.135, 1.153, 1.169, 1.179, 1.214, 1.205 (2^16 bits, ``make bench``).

    ``optimized`` (name "cascade"): Martinez-Mateo, Pacher, Peev, Ciurana and Martin,
    "Demystifying the information reconciliation protocol Cascade", Quantum Inf. Comput. 15,
    453 (2015), arXiv:1407.3257, their best proposal "Cascade opt. (8)":

    - power-of-two blocks from ``alpha = log2(1/Q) + offset``: ``k_1 = 2^ceil(alpha)``,
      ``k_2 = 2^ceil((alpha + c) / 2)``, ``k_3 = 2^12``, ``k_i = n/2`` for ``i >= 4``, 14 passes.
      ``schedule="paper"`` is opt. (8) as published (offset -1/2, c = 12; the parameters as
      reproduced in github.com/brunorijsman/cascade-python, "option8"). The default
      ``schedule="tuned"`` keeps the form with offset -1 and c = 11, refitted here by
      simulation (2000 frames of 2^14 bits, 500 of 2^16 per point): on 2^14 bits it leaks less
      (f = 1.059 / 1.055 / 1.053 / 1.056 at Q = 1 / 2 / 3 / 5 % against 1.079 / 1.066 / 1.062 /
      1.056 for the published rule, ``schedule="paper"``, simulated here: not the paper's own
      figure values) with up to 2.6x fewer round trips; on 2^16 bits f is within 0.005 of
      ``schedule="paper"`` (1.044 / 1.047 / 1.042 / 1.045, simulated here) with up to 3x fewer
      round trips, because shorter pass-2 blocks give shorter cascade chains (at 5 % both rules
      give the same blocks). The paper plots opt. (8) in its Fig. 13 (n = 10^4), whose values
      could not be read here. ``schedule="lean"`` halves
      ``k_2`` once more: about half the round trips again for +0.1 to +1.1 % in f.
    - sub-block reuse: every parity Alice revealed, BINARY's sub-blocks included, is kept; a
      cascade search starts in the smallest known block holding the flipped bit and descends
      through known parities without asking; known parities are never requested again.
    - parities implied by XOR are not sent: the right half's parity in BINARY, and, since pass
      1 fixes the parity of the whole key, the last block's parity in every later pass.
    - pass 2 is laid out so that its blocks meet every pass-1 block as rarely as possible (the
      paper's opt. (5) also replaces the random shuffle; this structured layout is this
      module's own): an even pair of errors that pass 1 cannot see is then not hidden again in
      one pass-2 block, which a random shuffle does with probability k_2/n, leaving the pair
      to the expensive later passes (-0.2 to -0.5 % in f at 2^14).

    The paper's "discard singleton blocks" (opt. (6)) shortens the key, which this interface
    (Bob returns a key as long as Alice's) does not allow.

Rounds. Alice sends every pass's top-level parities in her first message (they do not depend
on Bob's corrections, so sending them early reveals nothing more). Then each round is one
message each way: Bob sends all his open questions as position ranges, Alice answers with one
parity array. All searches of a pass and all cascade searches they trigger move in lock-step;
passes stay sequential, so pass ``i+1`` only sees what passes ``1..i`` left, which is what keeps
the leakage low. A pass whose blocks all agree costs no round. The rounds are then set by the
longest cascade chain, mostly in pass 2: about 110 / 210 round trips at Q = 2 / 3 % on 2^14
bits and 150 / 290 on 2^16 bits ("lean": 60 / 115 and 80 / 145), far fewer than the errors
corrected.

``channel_uses`` is the number of round trips and ``leaked_bits`` exactly what the channel
books for the exchange, on both sides.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from qnetkit._types import BitArray, IntArray
from qnetkit.qkd.channel import ChannelError, Endpoint
from qnetkit.qkd.reconciliation import _cascade_kernels as _k
from qnetkit.qkd.reconciliation.base import ReconciliationResult

Variant = Literal["optimized", "original"]
Schedule = Literal["tuned", "paper", "lean"]

# An estimate below this is treated as this (the block sizes diverge as Q -> 0); 1e-3 keeps the
# first blocks at 512-1024 bits, which still corrects a small true error rate.
MIN_QBER = 1e-3
MAX_QBER = 0.5

# Brassard and Salvail (1993): k_1 = 0.73 / Q, doubled each pass, four passes.
ORIGINAL_K1_FACTOR = 0.73
ORIGINAL_PASSES = 4

# Martinez-Mateo et al. (2015), Cascade opt. (8): 14 passes, third-pass block 2^12.
OPTIMIZED_PASSES = 14
OPTIMIZED_K3 = 4096
# (alpha offset, k_2 constant): k_1 = 2^ceil(alpha), alpha = log2(1/Q) + offset,
# k_2 = 2^ceil((alpha + constant) / 2). "paper" is opt. (8) as published; "tuned" is the same
# form refitted here by simulation on 2^14..2^16-bit frames; "lean" halves tuned's k_2 for
# about half the round trips (see the module docstring).
SCHEDULES: dict[str, tuple[float, float]] = {
    "paper": (-0.5, 12.0),
    "tuned": (-1.0, 11.0),
    "lean": (-1.0, 9.0),
}

# Passes (0-based) whose blocks draw from distinct pass-1 blocks as far as possible.
GRID_PASSES: tuple[int, ...] = (1,)

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


def optimized_block_sizes(
    n: int, qber: float, passes: int = OPTIMIZED_PASSES, schedule: str = "tuned"
) -> list[int]:
    """Power-of-two schedule of Martinez-Mateo et al. (2015), "Cascade opt. (8)" form.

    alpha = log2(1/Q) + offset; k_1 = 2^ceil(alpha), k_2 = 2^ceil((alpha + c)/2), k_3 = 2^12,
    k_i = n/2 for i >= 4 (all capped at n/2). ``schedule="paper"``: offset -1/2, c = 12 (the
    published opt. (8)); ``"tuned"``: offset -1, c = 11; ``"lean"``: offset -1, c = 9.
    """
    offset, const = SCHEDULES[schedule]
    alpha = math.log2(1.0 / _clamp_qber(qber)) + offset
    sizes = [2 ** math.ceil(alpha), 2 ** math.ceil((alpha + const) / 2.0), OPTIMIZED_K3]
    while len(sizes) < passes:
        sizes.append(math.ceil(n / 2))
    return [_cap(k, n) for k in sizes[:passes]]


class CascadeReconciler:
    """Cascade (``variant="optimized"``, name "cascade"; or ``"original"``, "cascade-original").

    ``schedule`` picks the optimized variant's block sizes ("tuned", "paper" or "lean", see the
    module docstring); ``block_sizes`` overrides the first passes' block sizes and ``passes`` the
    number of passes (later passes continue the variant's rule: doubling for the original, n/2
    for the optimized one). Alice decides the schedule from her QBER estimate and announces it
    with the permutation keys, so Bob's ``qber`` argument is not used.
    """

    def __init__(
        self,
        variant: Variant = "optimized",
        *,
        schedule: Schedule = "tuned",
        block_sizes: Sequence[int] | None = None,
        passes: int | None = None,
    ) -> None:
        if variant not in ("optimized", "original"):
            raise ValueError(f"variant must be 'optimized' or 'original', not {variant!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, not {schedule!r}")
        if block_sizes is not None and (
            len(block_sizes) == 0 or any(int(k) < 1 for k in block_sizes)
        ):
            raise ValueError("block_sizes must be a non-empty sequence of positive integers")
        if passes is not None and passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        self.variant: Variant = variant
        self.schedule_name: Schedule = schedule
        self.name = "cascade" if variant == "optimized" else "cascade-original"
        self._block_sizes = None if block_sizes is None else [int(k) for k in block_sizes]
        if passes is None:
            default = OPTIMIZED_PASSES if variant == "optimized" else ORIGINAL_PASSES
            passes = default if block_sizes is None else max(default, len(block_sizes))
        self.passes = passes

    def schedule(self, n: int, qber: float) -> list[int]:
        """Block size of every pass for an ``n``-bit key at estimated error rate ``qber``."""
        if self.variant == "optimized":
            sizes = optimized_block_sizes(n, qber, self.passes, self.schedule_name)
        else:
            sizes = original_block_sizes(n, qber, self.passes)
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

    def _layout(self, npass: int) -> list[int]:
        """Permutation kind of every pass (see ``_cascade_kernels.perm_forward``)."""
        kinds = [_k.KIND_PLAIN] * npass
        if self.variant == "optimized":
            for q in GRID_PASSES:
                if q < npass:
                    kinds[q] = _k.KIND_GRID
        return kinds

    # --- Alice -------------------------------------------------------------------------------

    def alice(
        self, ep: Endpoint, key: BitArray, qber: float, rng: np.random.Generator
    ) -> ReconciliationResult:
        """Reveal parities on request; Alice's key is the reference and is not changed."""
        key = _check_key(key)
        n = key.size
        sizes = self.schedule(n, qber) if n > 0 else []
        npass = len(sizes)
        kinds = self._layout(npass)
        # Shared randomness: the keys of every pass's permutation (public), odd multipliers.
        perm_keys = rng.integers(
            0,
            np.iinfo(np.uint64).max,
            size=(npass, _k.KEYS_PER_PASS),
            dtype=np.uint64,
            endpoint=True,
        )
        perm_keys[:, 1::2] |= np.uint64(1)
        spec = _pass_spec(n, sizes, kinds)
        stride = _row_bits(n)
        prefix = np.empty((npass, stride // 8), dtype=np.uint8)
        if n > 0:
            _k.permuted_prefix_all(key, perm_keys, spec, prefix)
        tops = _sent_top_parities(prefix, sizes, n, self.variant == "optimized")
        ep.send(
            TOPIC_SETUP,
            {
                "variant": self.variant,
                "n": n,
                "block_sizes": sizes,
                "layout": kinds,
                "perm_keys": perm_keys,
            },
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
            answer = _answer(ep, msg.public, prefix, stride, n)
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
        try:
            sizes = [int(k) for k in msg.public["block_sizes"]]
            kinds = [int(v) for v in msg.public["layout"]]
            perm_keys = np.ascontiguousarray(msg.public["perm_keys"], dtype=np.uint64)
        except (KeyError, TypeError, ValueError):
            sizes, kinds, perm_keys = [], [], np.empty((1, 0), dtype=np.uint64)
        optimized = self.variant == "optimized"
        shapes_ok = (
            len(sizes) > 0
            and all(k >= 1 for k in sizes)
            and len(kinds) == len(sizes)
            and all(v in (_k.KIND_PLAIN, _k.KIND_GRID) for v in kinds)
            and (not kinds or kinds[0] == _k.KIND_PLAIN)
            and perm_keys.shape == (len(sizes), _k.KEYS_PER_PASS)
        )
        if not shapes_ok:
            _abort(ep, "malformed pass layout")
            raise ChannelError("malformed pass layout in cascade setup")
        geo = _Geometry(sizes, n)
        spec = _pass_spec(n, sizes, kinds)
        if msg.leaked.size != _n_sent_tops(geo.nblk, optimized):
            _abort(ep, "wrong number of block parities")
            raise ChannelError("wrong number of block parities in cascade setup")
        # Lazily zeroed memory: only the tree nodes Bob learns are ever touched.
        cache = np.zeros(geo.cache_size, dtype=np.uint8)
        cache[geo.roots] = _all_top_parities(msg.leaked, geo.nblk, optimized) + 1
        stride = _row_bits(n)
        work = key.copy()
        prefix = np.empty((len(sizes), stride // 8), dtype=np.uint8)
        fenwick = np.zeros((len(sizes), n + 1), dtype=np.uint8)
        state = np.zeros(_k.STATE_SIZE, dtype=np.int64)
        state[_k.ST_PASS] = -1
        state[_k.ST_MODE] = _k.MODE_SUBBLOCK_REUSE if optimized else _k.MODE_TOP_BLOCKS
        answers = np.empty(0, dtype=np.uint8)
        pending = np.empty((0, 3), dtype=np.int64)
        rounds = 0
        while True:
            nodes, ranges = _k.bob_round(
                work, geo.ksz, geo.kpow, geo.nblk, geo.noff, perm_keys, spec,
                cache, prefix, fenwick, stride, state, answers, pending,
            )  # fmt: skip
            if nodes.shape[0] == 0:
                ep.send(TOPIC_ASK, {"done": True})
                break
            ep.send(TOPIC_ASK, {"done": False, "ranges": ranges})
            reply = ep.recv(TOPIC_ANSWER)
            if reply.leaked.size != nodes.shape[0]:
                _abort(ep, "wrong number of parities")
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
        # A block's midpoint-split tree has depth ceil(log2 k): heap indices below 2 * kpow.
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


def _row_bits(n: int) -> int:
    """Bits per packed prefix row: n + 1 prefix parities rounded up to whole bytes."""
    return 8 * (n // 8 + 1)


def _feistel_split(n: int) -> tuple[int, int]:
    """Bit widths (left, right) of the permutation domain 2^m >= n, m >= 2."""
    m = max(2, (n - 1).bit_length())
    return m // 2, m - m // 2


def _pass_spec(n: int, sizes: Sequence[int], kinds: Sequence[int]) -> IntArray:
    """Per-pass permutation parameters for the kernels (rows of ``_k.SP_*`` fields)."""
    spec = np.zeros((len(sizes), _k.SPEC_SIZE), dtype=np.int64)
    a, b = _feistel_split(n)
    for q, kind in enumerate(kinds):
        spec[q, _k.SP_KIND] = kind
        spec[q, _k.SP_A], spec[q, _k.SP_B] = a, b
        if kind == _k.KIND_GRID:
            cols = sizes[0]
            rows = -(-n // cols)
            spec[q, _k.SP_COLS], spec[q, _k.SP_ROWS] = cols, rows
            spec[q, _k.SP_CA], spec[q, _k.SP_CB] = _feistel_split(cols)
            spec[q, _k.SP_RA], spec[q, _k.SP_RB] = _feistel_split(rows)
    return spec


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
        bounds = np.append(np.arange(0, n, k, dtype=np.int64), n)
        bits = (prefix[q, bounds >> 3] >> (bounds & 7).astype(np.uint8)) & 1
        par = (bits[1:] ^ bits[:-1]).astype(np.uint8)
        parts.append(par[:-1] if optimized and q > 0 else par)
    if not parts:
        return np.empty(0, dtype=np.uint8)
    return np.concatenate(parts)


def _all_top_parities(sent: BitArray, nblk: IntArray, optimized: bool) -> BitArray:
    """Bob's reconstruction of every top-level parity from what Alice sent."""
    out: list[BitArray] = []
    pos = 0
    total = 0
    for q, nb in enumerate(int(v) for v in nblk):
        if optimized and q > 0:
            par = np.empty(nb, dtype=np.uint8)
            par[:-1] = sent[pos : pos + nb - 1]
            pos += nb - 1
            par[-1] = total ^ (int(np.bitwise_xor.reduce(par[:-1])) if nb > 1 else 0)
        else:
            par = sent[pos : pos + nb].astype(np.uint8)
            pos += nb
        if q == 0:
            total = int(np.bitwise_xor.reduce(par)) & 1
        out.append(par)
    return np.concatenate(out)


def _answer(
    ep: Endpoint, public: dict[str, object], prefix: npt.NDArray[np.uint8], stride: int, n: int
) -> BitArray:
    """Alice's parities for Bob's ranges, refusing (and telling Bob) if one is malformed."""
    ranges = public.get("ranges")
    if isinstance(ranges, np.ndarray) and ranges.ndim == 2 and ranges.shape[1] == 2:
        ok, parities = _k.range_parities(prefix, stride, n, ranges.astype(np.int64, copy=False))
        if ok:
            return parities
    _abort(ep, "malformed parity request")
    raise ChannelError("malformed cascade parity request")


def _abort(ep: Endpoint, reason: str) -> None:
    """Tell the peer to stop waiting before raising locally."""
    with contextlib.suppress(ChannelError):
        ep.send("abort", {"reason": reason})
