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

This module holds the protocol (``LdpcReconciler``); the frame plan is in ``_ldpc_plan``, the
numba decoder in ``_ldpc_kernels`` and Bob's per-frame decoder state in ``_ldpc_frames``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from qnetkit._types import BitArray, IntArray
from qnetkit.errors import ParameterError
from qnetkit.qkd.channel import ChannelError, Endpoint, Message
from qnetkit.qkd.reconciliation._ldpc_frames import (
    Decoder,
    _abort,
    _check_key,
    _check_qber,
    _FrameState,
    _PassStats,
    _subsegments,
)
from qnetkit.qkd.reconciliation._ldpc_kernels import (
    PHI_FINE,
    PHI_TABLE,
    STALL_PROGRESS,
    layered_decode,
)
from qnetkit.qkd.reconciliation._ldpc_plan import (
    MAX_FRAME_BITS,
    MIN_FRAME_BITS,
    MIN_QBER,
    TOPIC_REVEAL,
    TOPIC_STATUS,
    TOPIC_SYNDROME,
    FramePlan,
    _Layout,
    _layout,
    extra_parity_rows,
    parity_weight,
    plan_frames,
)
from qnetkit.qkd.reconciliation.base import ReconciliationResult
from qnetkit.qkd.reconciliation.ldpc_codes import FAMILIES, LdpcCode, get_code

__all__ = [
    "DEFAULT_PUNCTURE_SPAN",
    "DEFAULT_TARGETS",
    "FAST_TARGETS",
    "FIRST_MIN_ITERATIONS",
    "MAX_FRAME_BITS",
    "MIN_FRAME_BITS",
    "MIN_QBER",
    "PHI_FINE",
    "PHI_TABLE",
    "STALL_PROGRESS",
    "TOPIC_REVEAL",
    "TOPIC_STATUS",
    "TOPIC_SYNDROME",
    "Decoder",
    "FramePlan",
    "LdpcReconciler",
    "extra_parity_rows",
    "layered_decode",
    "parity_weight",
    "plan_frames",
]



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

# Bob stops a decoding round once it no longer progresses (``STALL_PROGRESS``, in
# ``_ldpc_kernels``: the count of checks whose incoming signs disagree with the syndrome falls by
# less than 1 %; below threshold BP settles at a plateau, and stopping there and revealing more
# costs less than iterating on). A decoding from scratch gets at least FIRST_MIN_ITERATIONS
# before that rule applies (its early transient would otherwise stop frames that do decode:
# +0.002 in f at 5 and 10 %).
FIRST_MIN_ITERATIONS = 12


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
