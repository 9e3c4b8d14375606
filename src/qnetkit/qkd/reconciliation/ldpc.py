"""LDPC syndrome reconciliation with rate adaptation and blind (interactive) rounds.

Model. Alice's key ``x`` is the reference; Bob's ``y = x + e`` with ``e`` i.i.d. Bernoulli(Q), a
binary symmetric channel whose crossover probability Q is estimated beforehand. The key is cut
into frames; each frame is embedded in a codeword-length word of a mother LDPC code (Wyner's
coset scheme: Alice sends a syndrome, Bob looks for the member of that coset closest to ``y``).

Rate adaptation (Elkouss, Martinez-Mateo, Martin, "Information reconciliation for quantum key
distribution", Quantum Inf. Comput. 11, 226 (2011)). A frame of ``L`` key bits uses ``p``
punctured and ``s`` shortened positions of an ``[n, k]`` mother code, ``L + p + s = n``; the
effective rate is ``R = (k - s) / (n - p - s)``. Shortened positions hold public random values
Alice draws and sends (not key, known to both). Punctured positions are unknown to Bob.

Blind rounds (Martinez-Mateo, Elkouss, Martin, "Blind reconciliation", Quantum Inf. Comput. 12,
791 (2012)). Bob decodes; for every frame he could not decode Alice reveals some punctured
values, which become shortened ones, and Bob decodes again from where belief propagation
stopped. Once every punctured value is out a frame may still fail (QBER underestimated, a short
code): the next rounds send parities of pseudo-random sets of ~1/(4Q) key bits, which Bob adds
to the graph as extra check rows (one leaked bit each, ~0.9 bit of information where a revealed
key bit would carry h(Q)). Frames that fail the last round are reconciled again as a new key,
planned for a higher QBER taken from the errors Bob found in the decoded frames (``retries``);
their first leak stays counted. What still fails is reported ``converged=False`` (Bob keeps his
own bits there).

Leakage accounting (what the channel books, and why it is exact). Punctured positions are chosen
by untainted puncturing, so each one has a *private* check that touches no other punctured
position. Instead of drawing the punctured values at random, Alice sets each to the parity of
the other bits in its private check: those ``p`` syndrome bits are then zero by construction and
are not sent. Alice sends the other ``m - p`` syndrome bits (``leaked``); they are linear
functions of the key and of public fill bits, so they tell Eve at most ``m - p`` bits, the
``m - p`` of Elkouss et al. (2011), where a random punctured value masks one syndrome bit each.
This is statistically the same code: for belief propagation a punctured value with prior LLR 0
and its value flipped together with its checks' syndrome bits is the same problem (a gauge
symmetry of the decoder), so decoding, and Bob's success flags, do not depend on the punctured
values. Every later revealed value (a punctured value, i.e. a key parity, or an extra parity)
is one leaked bit. Bob's per-frame success flags and error counts are public: they are functions
of the error pattern only (syndrome decoding sees ``H e``), which is independent of Alice's key.
So ``leaked_bits = sum over frames of (m - p) + revealed values``, exactly the channel's count.

Decoding. Bob decodes ``e`` from ``H e = s_A + H y`` by belief propagation (sum-product) with
channel LLRs ``log((1-Q)/Q)`` on key positions, 0 on punctured ones and a large value on known
ones (shortened, revealed). The default decoder is a layered (row-serial) sum-product decoder in
numba, with the check-node update in the ``phi(x) = -log tanh(x/2)`` form evaluated from a table
(Hocevar, "A reduced complexity decoder architecture via layered decoding of LDPC codes", IEEE
SIPS 2004); layered scheduling converges in about half the iterations of flooding and keeps its
state between blind rounds. ``decoder="bp"`` uses ``ldpc.BpDecoder`` (Roffe et al., product-sum,
flooding schedule, restarted each round) instead; it is the cross-check, about ten times slower.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numba as nb
import numpy as np
import numpy.typing as npt

from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import binary_entropy
from qnetkit.qkd.channel import ChannelError, Endpoint, Message
from qnetkit.qkd.reconciliation.base import BitArray, ReconciliationResult
from qnetkit.qkd.reconciliation.ldpc_codes import FAMILIES, LdpcCode, get_code

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
F32Array = npt.NDArray[np.float32]
Decoder = Literal["layered", "bp"]

TOPIC_SYNDROME = "ldpc.syndrome"
TOPIC_REVEAL = "ldpc.reveal"
TOPIC_STATUS = "ldpc.status"

# QBER estimates below this plan as this: h(Q) -> 0 would ask for an unbounded code rate, and
# the highest-rate code cannot go much above it anyway.
MIN_QBER = 1e-3
# Shortest code used for keys shorter than one frame, and the longest a peer may ask for.
MIN_FRAME_BITS = 1024
MAX_FRAME_BITS = 2**20

# Efficiencies f = leaked / (L h(Q_est)) the rounds aim at. The first sets how many positions are
# punctured; the steps are fine where frames of 2^16..2^17 bits of these codes decode (measured
# here: f ~ 1.08 - 1.15 for QBER 2 - 10 %) and coarse beyond, where only frames with far more
# errors than estimated remain. Starting lower saves ~0.005 in f and costs ~20 % throughput.
DEFAULT_TARGETS: tuple[float, ...] = (1.08, 1.1, 1.12, 1.14, 1.17, 1.21, 1.27, 1.35, 1.5)
# A throughput-first schedule: nearly every frame decodes at its first attempt. Measured with
# 2^17-bit frames: f = 1.12 at 5 % and 10 % QBER, 0.83-0.97 Mbit/s (default: f = 1.09-1.10,
# 0.45-0.6 Mbit/s); below ~3 % QBER it costs more efficiency, frames there need f ~ 1.11-1.14.
FAST_TARGETS: tuple[float, ...] = (1.12, 1.15, 1.19, 1.25, 1.35, 1.5)
# Efficiency at which every punctured value has been revealed (Elkouss et al.'s delta follows).
DEFAULT_PUNCTURE_SPAN = 1.25

# A decoding round counts as progressing while the number of checks whose incoming signs
# disagree with the syndrome keeps falling by at least 1 % (below threshold BP settles at a
# plateau; stopping there and revealing more costs less than iterating on). A decoding from
# scratch gets at least FIRST_MIN_ITERATIONS before that rule applies (its early transient
# would otherwise stop frames that do decode: +0.002 in f at 5 and 10 %).
STALL_PROGRESS = 0.99
FIRST_MIN_ITERATIONS = 12

# LLR magnitude for a known bit: far above any sum of check messages (|R| < 12 from the table).
_KNOWN_LLR = 1.0e4


# --- check-node function phi(x) = -log(tanh(x / 2)), tabulated --------------------------------

_PHI_STEP_INV = 128.0
_PHI_MAX = 24.0  # phi(24) = 7.6e-11: treated as 0
_FINE_STEP_INV = 8192.0
_FINE_MAX = 0.0625  # below this phi is steep (~ -log(x/2)): a finer table


def _phi_table(step_inv: float, upto: float, first: float) -> F32Array:
    x = np.arange(int(upto * step_inv) + 2, dtype=np.float64) / step_inv
    # phi(0) = inf: the first node stands for x = first, i.e. messages are capped at phi(first)
    # (~11.8 for the fine table): larger ones would only make the decoder overconfident.
    x[0] = first
    return np.asarray(-np.log(np.tanh(x / 2.0)), dtype=np.float32)


PHI_TABLE = _phi_table(_PHI_STEP_INV, _PHI_MAX, 1.0 / (4 * _PHI_STEP_INV))
PHI_FINE = _phi_table(_FINE_STEP_INV, _FINE_MAX, 1.0 / (8 * _FINE_STEP_INV))


_F32_PHI_MAX = np.float32(_PHI_MAX)
_F32_FINE_MAX = np.float32(_FINE_MAX)
_F32_STEP_INV = np.float32(_PHI_STEP_INV)
_F32_FINE_INV = np.float32(_FINE_STEP_INV)
_F32_ZERO = np.float32(0.0)


@nb.njit(cache=True, nogil=True, inline="always", fastmath=True)
def _phi(x: np.float32, table: F32Array, fine: F32Array) -> np.float32:
    """phi(x) for x >= 0 by linear interpolation (phi is its own inverse on (0, inf)).

    Everything stays in float32: mixing in float64 constants costs ~40 % of the decoder's time.
    """
    if x >= _F32_PHI_MAX:
        return _F32_ZERO
    if x < _F32_FINE_MAX:
        u = x * _F32_FINE_INV
        i = int(u)
        return np.float32(fine[i] + (u - np.float32(i)) * (fine[i + 1] - fine[i]))
    u = x * _F32_STEP_INV
    i = int(u)
    return np.float32(table[i] + (u - np.float32(i)) * (table[i + 1] - table[i]))


@nb.njit(cache=True, nogil=True, fastmath=True)
def layered_decode(
    indptr: Int32Array,
    indices: Int32Array,
    syndrome: BitArray,
    llr: F32Array,
    msg: F32Array,
    max_iter: int,
    stall: int,
    min_iter: int,
    table: F32Array,
    fine: F32Array,
) -> tuple[BitArray, bool, int]:
    """Layered sum-product syndrome decoding, resumable.

    ``llr`` holds the a-posteriori LLRs (start: channel LLRs) and ``msg`` the check-to-variable
    messages in CSR order (start: zeros); both are updated in place so a later call continues.
    The decision is ``e = (llr < 0)``. Stops when ``H e = syndrome`` (converged), after
    ``max_iter`` iterations, or when the number of checks whose incoming signs disagree with the
    syndrome has not fallen for ``stall`` iterations (0: never) and ``min_iter`` are done.
    """
    m = indptr.size - 1
    n = llr.size
    width = 0
    for c in range(m):
        width = max(width, indptr[c + 1] - indptr[c])
    ext = np.empty(width, np.float32)
    phis = np.empty(width, np.float32)
    hard = np.zeros(n, np.uint8)
    best = m + 1
    since = 0
    it = 0
    while it < max_iter:
        it += 1
        unsat = 0
        for c in range(m):
            a = indptr[c]
            deg = indptr[c + 1] - a
            sign = syndrome[c]
            total = _F32_ZERO
            tie = np.uint8(0)
            for k in range(deg):
                t = llr[indices[a + k]] - msg[a + k]
                ext[k] = t
                # Branch-free sign bookkeeping: the signs are random early on, so branches on
                # them mispredict half the time.
                sign ^= np.uint8(t < 0)
                p = _phi(abs(t), table, fine)
                if t == 0:
                    # A zero input (a punctured value before any message): as tanh(0) = 0 in
                    # exact BP, the check then sends exactly 0 to its other variables (phi >=
                    # _PHI_MAX does); the capped phi(0) would send them +-1e-5 with a sign set by
                    # the syndrome bit, breaking the symmetry that makes decoding independent of
                    # the punctured values.
                    p = _F32_PHI_MAX
                    tie = np.uint8(1)
                phis[k] = p
                total += p
            # A check with a zero input counts as unsatisfied whatever its syndrome bit (same
            # symmetry as above: the count must not depend on punctured values).
            unsat += sign | tie
            for k in range(deg):
                t = ext[k]
                mag = _phi(total - phis[k], table, fine)
                r = mag * np.float32(1 - 2 * (sign ^ np.uint8(t < 0)))
                msg[a + k] = r
                llr[indices[a + k]] = t + r
        # The sign count is a cheap proxy; the exact syndrome check runs when it is small.
        if unsat * 64 <= m:
            for v in range(n):
                hard[v] = 1 if llr[v] < 0 else 0
            bad = 0
            for c in range(m):
                acc = syndrome[c]
                for u in range(indptr[c], indptr[c + 1]):
                    acc ^= hard[indices[u]]
                bad += acc
            if bad == 0:
                return hard, True, it
        if unsat < best * STALL_PROGRESS:
            best = unsat
            since = 0
        else:
            since += 1
            if stall > 0 and since >= stall and it >= min_iter:
                break
    for v in range(n):
        hard[v] = 1 if llr[v] < 0 else 0
    return hard, False, it


# --- frame plan -------------------------------------------------------------------------------


def _entropy(p: float) -> float:
    return float(binary_entropy(p))


@dataclass(frozen=True)
class FramePlan:
    """How a key of ``sum(lengths)`` bits is laid out on one mother code (public)."""

    rate: float
    n: int
    qber: float
    lengths: IntArray  # key bits per frame
    punctured: IntArray  # p per frame
    shortened: IntArray  # s per frame
    targets: tuple[float, ...]
    group: int  # frames decoded together (one set of blind rounds per group)

    @property
    def frames(self) -> int:
        return int(self.lengths.size)

    def reveals(self, m: int) -> IntArray:
        """Cumulative values revealed after each round (frames x rounds; round 0 reveals none).

        Round ``j`` aims at leaking ``targets[j] * L * h(Q)``; at least one more value per round,
        at most every punctured value plus ``L`` extra parities. Slots ``0..p-1`` are punctured
        values, the later ones extra parities.
        """
        h = _entropy(self.qber)
        out = np.zeros((self.frames, len(self.targets)), dtype=np.int64)
        for i in range(self.frames):
            L, p = int(self.lengths[i]), int(self.punctured[i])
            prev = 0
            for j in range(1, len(self.targets)):
                want = math.ceil(self.targets[j] * L * h) - (m - p)
                prev = min(max(want, prev + 1), p + L)
                out[i, j] = prev
        return out

    def to_public(self) -> dict[str, Any]:
        """Flat public fields (the channel serialises top-level arrays only)."""
        return {
            "rate": self.rate,
            "n": self.n,
            "qber": self.qber,
            "lengths": self.lengths,
            "punctured": self.punctured,
            "shortened": self.shortened,
            "targets": list(self.targets),
            "frames_per_group": self.group,
        }

    @staticmethod
    def from_public(pub: dict[str, Any]) -> FramePlan:
        try:
            return FramePlan(
                float(pub["rate"]),
                int(pub["n"]),
                float(pub["qber"]),
                np.asarray(pub["lengths"], dtype=np.int64),
                np.asarray(pub["punctured"], dtype=np.int64),
                np.asarray(pub["shortened"], dtype=np.int64),
                tuple(float(t) for t in pub["targets"]),
                int(pub["frames_per_group"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelError(f"malformed LDPC frame plan: {exc}") from None


def _frame_shape(
    m: int, n: int, length: int, h: float, f_first: float, max_punct: int
) -> tuple[int, int]:
    """(punctured, shortened) for a frame of ``length`` key bits: the syndrome sent first
    (``m - p`` bits) is ``f_first`` times the frame's entropy, within what the code allows."""
    p = math.ceil(m - f_first * length * h)
    p = min(max(p, 0), max_punct, n - length)
    return p, n - length - p


def plan_frames(
    n_key: int,
    qber: float,
    frame_bits: int,
    family: str,
    seed: int,
    targets: tuple[float, ...],
    puncture_span: float,
    group_bits: int,
) -> FramePlan:
    """Choose the mother code and each frame's (L, p, s) for a key of ``n_key`` bits.

    For the full frame length ``n`` and the lowest ladder rate that fits, ``L = m / (F h)``
    with ``F = puncture_span`` (all punctured values revealed = efficiency F) and
    ``p = m (1 - f_1 / F)`` (the first syndrome is efficiency ``f_1 = targets[0]``); the rest
    is shortened. The lowest feasible rate needs the least shortening. If even the highest rate
    needs ``s < 0`` (very low QBER), ``s = 0`` and ``p`` keeps ``f_1`` as far as puncturing
    allows. Keys shorter than a frame use the shortest power-of-two code that holds them.
    """
    q = max(qber, MIN_QBER)
    h = _entropy(q)
    rates = sorted(FAMILIES[family])
    f1 = targets[0]

    def full_frame(n: int) -> tuple[float, int]:
        for rate in rates:
            m = round(n * (1.0 - rate))
            length = math.floor(m / (puncture_span * h))
            p = math.ceil(m * (1.0 - f1 / puncture_span))
            if length >= 1 and length + p <= n:
                return rate, length
        rate = rates[-1]
        m = round(n * (1.0 - rate))
        # s = 0: L + p = n and m - p = f1 L h  =>  p = (m - f1 h n) / (1 - f1 h).
        p = max(0, math.ceil((m - f1 * h * n) / (1.0 - f1 * h)))
        return rate, n - p

    n = frame_bits
    rate, l_max = full_frame(n)
    if n_key < l_max:
        n = MIN_FRAME_BITS
        while n < frame_bits:
            rate, l_max = full_frame(n)
            if l_max >= n_key:
                break
            n *= 2
        else:
            rate, l_max = full_frame(n)
    frames = max(1, -(-n_key // l_max))
    lengths = np.full(frames, n_key // frames, dtype=np.int64)
    lengths[: n_key % frames] += 1
    code = get_code(rate, n, family, seed)
    shapes = [_frame_shape(code.m, n, int(L), h, f1, code.max_puncture) for L in lengths]
    punctured = np.array([p for p, _ in shapes], dtype=np.int64)
    shortened = np.array([s for _, s in shapes], dtype=np.int64)
    group = max(1, min(frames, group_bits // max(1, int(lengths[0]))))
    return FramePlan(rate, n, q, lengths, punctured, shortened, targets, group)


@dataclass(frozen=True, eq=False)
class _Layout:
    """Positions of one frame shape (p, s) in the codeword, and Bob's reduced graph.

    Shortened values are known to both and cancel in ``H e``, so Bob decodes on H without
    the shortened columns (``indptr``/``indices``, columns renumbered to ``0..n-s-1``), which
    saves their share of the edges in every iteration.
    """

    key: IntArray  # key positions, in key order
    punctured: IntArray  # puncture order
    private: IntArray  # private check of each punctured position
    shortened: IntArray
    sent_rows: IntArray  # syndrome rows Alice sends (all but the private checks)
    reveal: IntArray  # reveal order of the punctured positions: last punctured first
    indptr: Int32Array  # H without the shortened columns (CSR)
    indices: Int32Array
    r_key: IntArray  # key / reveal positions in the reduced numbering
    r_reveal: IntArray

    @property
    def reduced_n(self) -> int:
        return int(self.r_key.size + self.punctured.size)


@lru_cache(maxsize=16)
def _layout(code: LdpcCode, p: int, s: int) -> _Layout:
    n = code.n
    punct = code.puncture_order[:p]
    private = code.private_check[:p]
    short = code.shorten_order[:s]
    is_key = np.ones(n, dtype=bool)
    is_key[punct] = False
    is_key[short] = False
    key = np.flatnonzero(is_key)
    rows = np.ones(code.m, dtype=bool)
    rows[private] = False
    reveal = punct[::-1].copy()
    keep = np.ones(n, dtype=bool)
    keep[short] = False
    renumber = np.cumsum(keep) - 1
    sub = code.H[:, np.flatnonzero(keep)].tocsr()
    sub.sort_indices()
    arrays = (
        key, punct, private, short, np.flatnonzero(rows), reveal,
        sub.indptr.astype(np.int32), sub.indices.astype(np.int32),
        renumber[key].astype(np.int64), renumber[reveal].astype(np.int64),
    )  # fmt: skip
    for arr in arrays:
        arr.setflags(write=False)
    return _Layout(*arrays)


def parity_weight(qber: float) -> int:
    """Row weight of the extra parities: about 1/(4Q) key bits, so each parity is odd with
    probability ~0.3 given Bob's bits and tells ~0.9 bit (a single key bit would tell h(Q))."""
    return int(min(max(round(0.25 / qber), 4), 48))


@lru_cache(maxsize=64)
def extra_parity_rows(length: int, count: int, weight: int, seed: int) -> IntArray:
    """``count`` rows of ``min(weight, length)`` distinct key indices (0..length-1), seeded.

    Both sides derive them from public data (frame length, plan, code seed), so only the
    parities travel.
    """
    w = min(weight, length)
    rng = np.random.default_rng(np.random.SeedSequence([seed, length, weight, 0x9E3779B9]))
    rows = np.empty((count, w), dtype=np.int64)
    for t in range(count):
        rows[t] = rng.choice(length, size=w, replace=False)
    rows.setflags(write=False)
    return rows


# --- the reconciler -----------------------------------------------------------------------------


class LdpcReconciler:
    """Rate-adaptive blind LDPC reconciliation (name ``"ldpc"``).

    Parameters
        frame_bits: mother-code length n (a power of two in [2^10, 2^20]); keys shorter than
            one frame use a shorter code. Default 2^17: the spread of the per-frame decoding
            threshold shrinks as 1/sqrt(n) (2^16 -> 2^17: f 1.127 -> 1.11 at 2 % QBER), a code
            builds in 1-4 s, and Bob holds ~3 MB of decoder state per frame in flight.
        family: degree-distribution family (``ldpc_codes.FAMILIES``).
        targets: efficiencies of the successive rounds (``DEFAULT_TARGETS``; ``FAST_TARGETS``
            trades ~0.02 of efficiency for about twice the throughput).
        puncture_span: efficiency at which all punctured values are revealed.
        first_iterations, round_iterations: iteration caps of the first and later decodings.
        stall: a decoding round stops when belief propagation has stopped progressing for this
            many iterations (the next round reveals more instead).
        group_bits: key bits decoded together (one set of blind rounds; their decoder state
            stays in memory between rounds, ~4 bytes per edge and frame).
        decoder: ``"layered"`` (numba, default) or ``"bp"`` (``ldpc.BpDecoder``, product-sum).
        code_seed: seed of the PEG construction (public; both sides must use the same codes).
        retries: frames still undecoded after the last round are reconciled again, as a new
            key, planned for a higher QBER (from the errors Bob found in the decoded frames);
            at most this many times. Their earlier leak stays counted.
    """

    name = "ldpc"

    def __init__(
        self,
        frame_bits: int = 2**17,
        family: str = "elkouss2009",
        targets: tuple[float, ...] = DEFAULT_TARGETS,
        puncture_span: float = DEFAULT_PUNCTURE_SPAN,
        first_iterations: int = 60,
        round_iterations: int = 40,
        stall: int = 3,
        group_bits: int = 2**20,
        decoder: Decoder = "layered",
        code_seed: int = 1,
        retries: int = 2,
    ) -> None:
        if not MIN_FRAME_BITS <= frame_bits <= MAX_FRAME_BITS or frame_bits & (frame_bits - 1):
            raise ParameterError("frame_bits", frame_bits, "must be a power of two in [2^10, 2^20]")
        if family not in FAMILIES:
            raise ParameterError("family", family, f"must be one of {sorted(FAMILIES)}")
        if not targets or any(b <= a for a, b in itertools.pairwise(targets)):
            raise ParameterError("targets", targets, "must be a non-empty increasing sequence")
        if targets[0] <= 0.5:
            raise ParameterError("targets", targets, "the first efficiency must exceed 0.5")
        if puncture_span <= targets[0]:
            raise ParameterError(
                "puncture_span", puncture_span, "must exceed the first target efficiency"
            )
        if first_iterations < 1 or round_iterations < 1 or stall < 0:
            raise ParameterError(
                "iterations", (first_iterations, round_iterations, stall), "must be positive"
            )
        if retries < 0:
            raise ParameterError("retries", retries, "must be >= 0")
        if decoder not in ("layered", "bp"):
            raise ParameterError("decoder", decoder, "must be 'layered' or 'bp'")
        if decoder == "bp":
            try:
                import ldpc  # noqa: F401  # optional cross-check backend
            except ImportError:
                raise ParameterError(
                    "decoder", decoder, "needs the optional package ldpc: pip install 'qnetkit[bp]'"
                ) from None
        self.frame_bits = frame_bits
        self.family = family
        self.targets = tuple(float(t) for t in targets)
        self.puncture_span = float(puncture_span)
        self.first_iterations = first_iterations
        self.round_iterations = round_iterations
        self.stall = stall
        self.group_bits = group_bits
        self.decoder: Decoder = decoder
        self.code_seed = code_seed
        self.retries = retries

    def plan(self, n_key: int, qber: float) -> FramePlan:
        """The frame plan Alice announces for a key of ``n_key`` bits at QBER ``qber``."""
        return plan_frames(
            n_key, _check_qber(qber), self.frame_bits, self.family, self.code_seed,
            self.targets, self.puncture_span, self.group_bits,
        )  # fmt: skip

    def _extra_rows(self, plan: FramePlan, reveals: IntArray, i: int) -> IntArray:
        """Frame ``i``'s extra parity rows (key-order indices), as many as its last round needs."""
        count = max(0, int(reveals[i, -1] - plan.punctured[i]))
        weight = parity_weight(plan.qber)
        return extra_parity_rows(int(plan.lengths[i]), count, weight, self.code_seed)

    @staticmethod
    def _reveal_values(
        lay: _Layout, word: BitArray, extra: IntArray, first: int, last: int
    ) -> BitArray:
        """Alice's values for reveal slots ``first:last``: punctured values (slots < p), then
        parities of her key over the extra rows."""
        p = lay.punctured.size
        punct = word[lay.reveal[first : min(last, p)]]
        rows = extra[max(first - p, 0) : max(last - p, 0)]
        parities = np.bitwise_xor.reduce(word[lay.key[rows]], axis=1) if rows.size else rows[:, 0]
        return np.concatenate([punct, parities.astype(np.uint8)])

    # --- Alice ---------------------------------------------------------------------------------

    def alice(
        self, ep: Endpoint, key: BitArray, qber: float, rng: np.random.Generator
    ) -> ReconciliationResult:
        """Send syndromes, then reveal values for the frames Bob reports undecoded."""
        key = _check_key(key)
        q = _check_qber(qber)
        leaked = uses = 0
        segments = [(0, key.size)] if key.size else []
        for attempt in range(self.retries + 1):
            if not segments:
                break
            sub = np.concatenate([key[a:b] for a, b in segments])
            failed, stats = self._alice_pass(ep, sub, q, rng)
            leaked += stats.leaked
            uses += stats.uses
            segments = _subsegments(segments, failed)
            if not segments or attempt == self.retries:
                break
            q = stats.retry_qber(q)
        return ReconciliationResult(key.copy(), leaked, uses, not segments)

    def _alice_pass(
        self, ep: Endpoint, key: BitArray, q: float, rng: np.random.Generator
    ) -> tuple[list[tuple[int, int]], _PassStats]:
        plan = self.plan(key.size, q)
        code = get_code(plan.rate, plan.n, self.family, self.code_seed)
        reveals = plan.reveals(code.m)
        starts = np.concatenate(([0], np.cumsum(plan.lengths)))
        stats = _PassStats()
        failed: list[tuple[int, int]] = []
        for g0 in range(0, plan.frames, plan.group):
            frames = range(g0, min(g0 + plan.group, plan.frames))
            words = np.zeros((len(frames), plan.n), dtype=np.uint8)
            layouts = []
            fills = []
            for r, i in enumerate(frames):
                lay = _layout(code, int(plan.punctured[i]), int(plan.shortened[i]))
                layouts.append(lay)
                words[r, lay.key] = key[starts[i] : starts[i + 1]]
                fill = rng.integers(0, 2, size=lay.shortened.size, dtype=np.uint8)
                words[r, lay.shortened] = fill
                fills.append(fill)
            # Punctured value = parity of the rest of its private check, so that syndrome bit is
            # 0 and is not sent (see the module docstring for the accounting).
            partial = code.syndromes(words)
            for r, lay in enumerate(layouts):
                words[r, lay.punctured] = partial[r, lay.private]
            extras = [self._extra_rows(plan, reveals, i) for i in frames]
            synd = code.syndromes(words)
            sent = [synd[r, lay.sent_rows] for r, lay in enumerate(layouts)]
            public: dict[str, Any] = {"group": g0, "fill": np.packbits(np.concatenate(fills))}
            if g0 == 0:
                public.update(plan.to_public())
                public["n_key"] = int(key.size)
                public["family"] = self.family
                public["code_seed"] = self.code_seed
            payload = np.concatenate(sent)
            ep.send(TOPIC_SYNDROME, public, leaked=payload)
            stats.sent(payload.size)
            pending = stats.status(ep, len(frames))
            for j in range(1, len(plan.targets)):
                if not pending.any():
                    break
                bits = []
                for r in np.flatnonzero(pending).tolist():
                    i = frames[r]
                    a, b = int(reveals[i, j - 1]), int(reveals[i, j])
                    bits.append(self._reveal_values(layouts[r], words[r], extras[r], a, b))
                payload = np.concatenate(bits)
                ep.send(TOPIC_REVEAL, {"group": g0, "round": j}, leaked=payload)
                stats.sent(payload.size)
                pending = stats.status(ep, len(frames)) & pending
            failed += [(int(starts[frames[r]]), int(starts[frames[r] + 1]))
                       for r in np.flatnonzero(pending).tolist()]  # fmt: skip
        return failed, stats

    # --- Bob -----------------------------------------------------------------------------------

    def bob(self, ep: Endpoint, key: BitArray, qber: float) -> ReconciliationResult:
        """Decode every frame, asking for reveals while some fail; returns the corrected key."""
        key = _check_key(key)
        q = _check_qber(qber)
        out = key.copy()
        leaked = uses = 0
        segments = [(0, key.size)] if key.size else []
        for attempt in range(self.retries + 1):
            if not segments:
                break
            sub = np.concatenate([key[a:b] for a, b in segments])
            corrected, failed, stats = self._bob_pass(ep, sub, q)
            leaked += stats.leaked
            uses += stats.uses
            off = 0
            for a, b in segments:
                out[a:b] = corrected[off : off + b - a]
                off += b - a
            segments = _subsegments(segments, failed)
            if not segments or attempt == self.retries:
                break
            q = stats.retry_qber(q)
        return ReconciliationResult(out, leaked, uses, not segments)

    def _bob_pass(
        self, ep: Endpoint, key: BitArray, qber: float
    ) -> tuple[BitArray, list[tuple[int, int]], _PassStats]:
        q_bob = max(qber, MIN_QBER)
        out = key.copy()
        stats = _PassStats()
        failed: list[tuple[int, int]] = []
        plan: FramePlan | None = None
        code: LdpcCode | None = None
        reveals = np.zeros((0, 0), dtype=np.int64)
        starts = np.zeros(1, dtype=np.int64)
        g0 = 0
        while plan is None or g0 < plan.frames:
            msg = ep.recv(TOPIC_SYNDROME)
            if plan is None:
                plan, code = self._accept_plan(ep, msg.public, key.size)
                reveals = plan.reveals(code.m)
                starts = np.concatenate(([0], np.cumsum(plan.lengths)))
            assert code is not None
            if int(msg.public.get("group", -1)) != g0:
                _abort(ep, "frame groups out of order")
                raise ChannelError("LDPC frame groups out of order")
            frames = range(g0, min(g0 + plan.group, plan.frames))
            layouts = [
                _layout(code, int(plan.punctured[i]), int(plan.shortened[i])) for i in frames
            ]
            stats.received(msg.leaked.size)
            states = self._initial_states(ep, code, layouts, frames, starts, key, msg, q_bob)
            for r, i in enumerate(frames):
                states[r].extra = self._extra_rows(plan, reveals, i)
            pending = self._decode_round(states, np.ones(len(frames), bool), first=True)
            stats.report(ep, states, pending, np.ones(len(frames), bool))
            for j in range(1, len(plan.targets)):
                if not pending.any():
                    break
                msg = ep.recv(TOPIC_REVEAL)
                counts = [
                    int(reveals[frames[r], j] - reveals[frames[r], j - 1])
                    for r in np.flatnonzero(pending).tolist()
                ]
                if msg.leaked.size != sum(counts) or int(msg.public.get("round", -1)) != j:
                    _abort(ep, "wrong number of revealed values")
                    raise ChannelError("wrong number of revealed values from alice")
                stats.received(msg.leaked.size)
                off = 0
                for r, cnt in zip(np.flatnonzero(pending).tolist(), counts, strict=True):
                    i = frames[r]
                    states[r].reveal(
                        int(reveals[i, j - 1]), int(reveals[i, j]), msg.leaked[off : off + cnt]
                    )
                    off += cnt
                still = self._decode_round(states, pending, first=False)
                stats.report(ep, states, still, pending)
                pending = still
            for r, frame in enumerate(frames):
                if pending[r]:
                    failed.append((int(starts[frame]), int(starts[frame + 1])))
                else:
                    out[starts[frame] : starts[frame + 1]] = states[r].key_bits()
            g0 += plan.group
        return out, failed, stats

    def _accept_plan(
        self, ep: Endpoint, pub: dict[str, Any], n_key: int
    ) -> tuple[FramePlan, LdpcCode]:
        plan = FramePlan.from_public(pub)
        if int(pub.get("n_key", -1)) != n_key or int(plan.lengths.sum()) != n_key:
            _abort(ep, f"key lengths differ: bob has {n_key} bits")
            raise ValueError(f"key lengths differ: alice has {pub.get('n_key')}, bob {n_key}")
        if pub.get("family") != self.family or int(pub.get("code_seed", -1)) != self.code_seed:
            reason = "alice and bob use different LDPC code families or seeds"
            _abort(ep, reason)
            raise ValueError(reason)
        if not (MIN_FRAME_BITS <= plan.n <= MAX_FRAME_BITS and plan.n & (plan.n - 1) == 0):
            _abort(ep, "frame length out of range")
            raise ChannelError(f"LDPC frame length {plan.n} out of range")
        code = get_code(plan.rate, plan.n, self.family, self.code_seed)
        if np.any(plan.lengths + plan.punctured + plan.shortened != plan.n) or np.any(
            plan.punctured > code.max_puncture
        ):
            _abort(ep, "inconsistent frame plan")
            raise ChannelError("inconsistent LDPC frame plan")
        return plan, code

    def _initial_states(
        self,
        ep: Endpoint,
        code: LdpcCode,
        layouts: list[_Layout],
        frames: range,
        starts: IntArray,
        key: BitArray,
        msg: Message,
        q_bob: float,
    ) -> list[_FrameState]:
        expect_fill = sum(lay.shortened.size for lay in layouts)
        packed = np.asarray(msg.public.get("fill", np.zeros(0, np.uint8)), dtype=np.uint8)
        if packed.size != (expect_fill + 7) // 8:
            _abort(ep, "fill of the wrong length")
            raise ChannelError("LDPC fill of the wrong length")
        fill = np.unpackbits(packed, count=expect_fill)
        if msg.leaked.size != sum(lay.sent_rows.size for lay in layouts):
            _abort(ep, "syndrome of the wrong length")
            raise ChannelError("LDPC syndrome of the wrong length")
        words = np.zeros((len(frames), code.n), dtype=np.uint8)
        f_off = 0
        for r, i in enumerate(frames):
            lay = layouts[r]
            words[r, lay.key] = key[starts[i] : starts[i + 1]]
            words[r, lay.shortened] = fill[f_off : f_off + lay.shortened.size]
            f_off += lay.shortened.size
        own = code.syndromes(words)
        llr_key = math.log((1.0 - q_bob) / q_bob)
        states = []
        s_off = 0
        for r in range(len(frames)):
            lay = layouts[r]
            syn = np.zeros(code.m, dtype=np.uint8)  # private checks: 0 by construction
            syn[lay.sent_rows] = msg.leaked[s_off : s_off + lay.sent_rows.size]
            s_off += lay.sent_rows.size
            syn ^= own[r]
            states.append(_FrameState(lay, words[r], syn, llr_key, self.decoder))
        return states

    def _decode_round(
        self, states: list[_FrameState], pending: npt.NDArray[np.bool_], first: bool
    ) -> npt.NDArray[np.bool_]:
        """Decode the pending frames; returns which are still pending (flags are public: they
        depend on the error pattern only)."""
        iters = self.first_iterations if first else self.round_iterations
        # A decoding from scratch has a transient before the unsatisfied-check count settles.
        floor = FIRST_MIN_ITERATIONS if first else 0
        still = pending.copy()
        for r in np.flatnonzero(pending).tolist():
            if states[r].decode(iters, self.stall, floor):
                still[r] = False
        return still


class _FrameState:
    """Bob's decoder state for one frame, on the graph without shortened columns.

    The unknown is the error pattern ``e = x + word`` (``word``: Bob's key bits, the public fill,
    0 on punctured positions); ``syndrome = H e``. Priors: ``log((1-Q)/Q)`` on key positions, 0
    on punctured ones, +-``_KNOWN_LLR`` once a value is revealed. Extra parities (the last
    rounds) become extra check rows appended to the graph.
    """

    def __init__(
        self,
        layout: _Layout,
        word: BitArray,
        syndrome: BitArray,
        llr_key: float,
        decoder: Decoder,
    ) -> None:
        self.layout = layout
        self.word = word
        self.syndrome = syndrome
        self.indptr = layout.indptr
        self.indices = layout.indices
        self.prior = np.zeros(layout.reduced_n, dtype=np.float32)
        self.prior[layout.r_key] = llr_key
        self.llr = self.prior.copy()
        self.msg = np.zeros(layout.indices.size, dtype=np.float32)
        self.decoder = decoder
        self.error = np.zeros(layout.reduced_n, dtype=np.uint8)
        self.extra = np.zeros((0, 1), dtype=np.int64)

    def reveal(self, first: int, last: int, values: BitArray) -> None:
        """Alice's values for reveal slots ``first:last`` are known now."""
        lay = self.layout
        p = lay.punctured.size
        k = max(0, min(last, p) - first)
        if k:
            e = values[:k].astype(np.uint8) ^ self.word[lay.reveal[first : first + k]]
            pos = lay.r_reveal[first : first + k]
            known = np.where(e == 0, _KNOWN_LLR, -_KNOWN_LLR).astype(np.float32)
            # Resume from the current beliefs: only the channel term of these positions changes.
            self.llr[pos] += known - self.prior[pos]
            self.prior[pos] = known
        rows = self.extra[max(first - p, 0) : max(last - p, 0)]
        if rows.size:
            own = np.bitwise_xor.reduce(self.word[lay.key[rows]], axis=1).astype(np.uint8)
            cols = np.sort(lay.r_key[rows], axis=1).astype(np.int32)
            ends = self.indptr[-1] + cols.shape[1] * np.arange(1, rows.shape[0] + 1)
            self.indptr = np.concatenate([self.indptr, ends.astype(np.int32)])
            self.indices = np.concatenate([self.indices, cols.ravel()])
            self.syndrome = np.concatenate([self.syndrome, values[k:].astype(np.uint8) ^ own])
            self.msg = np.concatenate([self.msg, np.zeros(cols.size, dtype=np.float32)])

    def decode(self, iterations: int, stall: int, min_iterations: int) -> bool:
        if self.decoder == "bp":
            return self._decode_bp(iterations)
        hard, ok, _ = layered_decode(
            self.indptr, self.indices, self.syndrome, self.llr, self.msg,
            iterations, stall, min_iterations, PHI_TABLE, PHI_FINE,
        )  # fmt: skip
        self.error = hard
        return bool(ok)

    def _decode_bp(self, iterations: int) -> bool:
        from ldpc import BpDecoder  # type: ignore[attr-defined]  # cross-check backend
        from scipy.sparse import csr_matrix

        H = csr_matrix(
            (np.ones(self.indices.size, np.uint8), self.indices.copy(), self.indptr.copy()),
            shape=(self.indptr.size - 1, self.layout.reduced_n),
        )
        # Flooding product-sum from scratch (BpDecoder keeps no state between calls); a known
        # value has error probability 1e-12 (or 1 - 1e-12 when e = 1 is known).
        probs = 1.0 / (1.0 + np.exp(np.clip(self.prior.astype(np.float64), -27.6, 27.6)))
        dec = BpDecoder(
            H, error_channel=probs, max_iter=2 * iterations,
            bp_method="product_sum", schedule="parallel", input_vector_type="syndrome",
        )  # fmt: skip
        self.error = np.asarray(dec.decode(self.syndrome), dtype=np.uint8)
        return bool(dec.converge)

    def key_bits(self) -> BitArray:
        lay = self.layout
        return np.asarray(self.word[lay.key] ^ self.error[lay.r_key], dtype=np.uint8)

    def errors_corrected(self) -> int:
        return int(np.count_nonzero(self.error[self.layout.r_key]))


# --- helpers -------------------------------------------------------------------------------------


class _PassStats:
    """Leak, channel uses and the public error counts of one pass (both sides keep one).

    Bob's status messages carry, besides the pending flags, the number of errors he corrected
    in the frames that just decoded: a function of the error pattern only, hence public. Both
    sides derive the QBER of a retry pass from them.
    """

    def __init__(self) -> None:
        self.leaked = 0
        self.uses = 0
        self.errors = 0
        self.bits = 0

    def sent(self, size: int) -> None:
        self.leaked += int(size)
        self.uses += 1

    received = sent

    def status(self, ep: Endpoint, frames: int) -> npt.NDArray[np.bool_]:
        """Alice: Bob's answer to the last message."""
        msg = ep.recv(TOPIC_STATUS)
        pending = np.asarray(msg.public.get("pending", []), dtype=np.uint8)
        if pending.size != frames:
            raise ChannelError(f"expected {frames} frame flags from bob, got {pending.size}")
        self.errors += int(msg.public.get("errors", 0))
        self.bits += int(msg.public.get("bits", 0))
        return pending.astype(bool)

    def report(
        self,
        ep: Endpoint,
        states: list[_FrameState],
        pending: npt.NDArray[np.bool_],
        tried: npt.NDArray[np.bool_],
    ) -> None:
        """Bob: pending flags, plus the errors found in the frames decoded this round."""
        done = np.flatnonzero(tried & ~pending).tolist()
        errors = sum(states[r].errors_corrected() for r in done)
        bits = sum(states[r].layout.key.size for r in done)
        self.errors += errors
        self.bits += bits
        ep.send(TOPIC_STATUS, {"pending": pending.astype(np.uint8), "errors": errors, "bits": bits})

    def retry_qber(self, q: float) -> float:
        """QBER for re-reconciling the frames that failed, below 0.3: 1.15 x the error rate of
        the decoded frames (the failed ones had more errors) and at least 1.3 x the old
        estimate; twice the old estimate if no frame decoded (nothing to go by)."""
        q = max(q, MIN_QBER)
        if not self.bits:
            return min(2.0 * q, 0.3)
        return min(max(1.3 * q, 1.15 * self.errors / self.bits), 0.3)


def _subsegments(
    segments: list[tuple[int, int]], failed: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Map ranges of the concatenated sub-key (``failed``) back to ranges of the full key."""
    out: list[tuple[int, int]] = []
    for a, b in failed:
        off = 0
        for s0, s1 in segments:
            lo, hi = max(a, off), min(b, off + s1 - s0)
            if lo < hi:
                out.append((s0 + lo - off, s0 + hi - off))
            off += s1 - s0
    return out


def _check_qber(qber: float) -> float:
    q = float(qber)
    if not math.isfinite(q) or q < 0.0 or q >= 0.5:
        raise ParameterError(
            "qber", qber,
            "must be in [0, 0.5): syndrome decoding needs a binary symmetric channel whose "
            "crossover probability is below 1/2 (at 1/2 Bob's key carries no information)",
        )  # fmt: skip
    return q


def _check_key(key: BitArray) -> BitArray:
    arr = np.asarray(key)
    if arr.ndim != 1:
        raise ValueError(f"key must be a 1-d bit array, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError("key must contain only 0 and 1")
    return arr.astype(np.uint8)


def _abort(ep: Endpoint, reason: str) -> None:
    """Tell the peer to stop waiting before raising locally."""
    with contextlib.suppress(ChannelError):
        ep.send("abort", {"reason": reason})
