"""Bob's per-frame decoder state and the small helpers of ``ldpc.py`` (pass statistics, checks).

The state keeps the layered decoder's LLRs and messages between blind rounds, so a round
continues where belief propagation stopped (Martinez-Mateo et al., QIC 12, 791 (2012)).
"""

from __future__ import annotations

import contextlib
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from qnetkit._types import BitArray
from qnetkit.errors import ParameterError
from qnetkit.qkd.channel import ChannelError, Endpoint
from qnetkit.qkd.reconciliation._ldpc_kernels import (
    PHI_FINE,
    PHI_TABLE,
    layered_decode,
)
from qnetkit.qkd.reconciliation._ldpc_plan import MIN_QBER, TOPIC_STATUS, _Layout

Decoder = Literal["layered", "bp"]

# LLR magnitude for a known bit: far above any sum of check messages (|R| < 12 from the table).
_KNOWN_LLR = 1.0e4


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
