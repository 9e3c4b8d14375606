"""The frame plan of ``ldpc.py``: how a key is cut into frames and each frame into key, punctured
and shortened positions of a mother code (rate adaptation, Elkouss et al., QIC 11, 226 (2011)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from qnetkit._types import IntArray
from qnetkit.keyrate.common import binary_entropy
from qnetkit.qkd.channel import ChannelError
from qnetkit.qkd.reconciliation._ldpc_kernels import Int32Array
from qnetkit.qkd.reconciliation.ldpc_codes import FAMILIES, LdpcCode, get_code

TOPIC_SYNDROME = "ldpc.syndrome"
TOPIC_REVEAL = "ldpc.reveal"
TOPIC_STATUS = "ldpc.status"

# QBER estimates below this plan as this: h(Q) -> 0 would ask for an unbounded code rate, and
# the highest-rate code cannot go much above it anyway.
MIN_QBER = 1e-3
# Shortest code used for keys shorter than one frame, and the longest a peer may ask for.
MIN_FRAME_BITS = 1024
MAX_FRAME_BITS = 2**20


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
