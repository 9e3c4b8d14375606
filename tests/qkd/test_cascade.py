"""Cascade reconciliation: correctness, exact leakage accounting, efficiency against the papers.

References for the efficiency bounds:
- Brassard and Salvail, EUROCRYPT 1993 (the original protocol, k_1 = 0.73/Q, four passes).
- Martinez-Mateo, Pacher, Peev, Ciurana, Martin, "Demystifying the information reconciliation
  protocol Cascade", Quantum Inf. Comput. 15, 453 (2015), arXiv:1407.3257: Figs. 1 and 11 give
  the average efficiency of "Cascade orig." at n = 10^4 (about 1.13 at Q = 1 %, 1.15 at 2 %,
  1.18 at 5 %, 1.21 at 10 %) and Fig. 11 that of their optimised versions (3)-(6) (1.05-1.07 for
  Q = 1-3 %). Values read off the plots (seen as crops of the paper's figures in the public
  brunorijsman/cascade-python docs); the same numbers are cited in ``cascade.py``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from qnetkit.keyrate.common import binary_entropy
from qnetkit.qkd.channel import ChannelError, Endpoint, local_pair, run_parties
from qnetkit.qkd.reconciliation import _cascade_kernels as kernels
from qnetkit.qkd.reconciliation.base import ReconciliationResult
from qnetkit.qkd.reconciliation.cascade import (
    CascadeReconciler,
    _feistel_split,
    _pass_spec,
    _row_bits,
    optimized_block_sizes,
    original_block_sizes,
)

Run = tuple[ReconciliationResult, ReconciliationResult, Endpoint, Endpoint]


def _keys(n: int, qber: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    alice = rng.integers(0, 2, n, dtype=np.uint8)
    errors = (rng.random(n) < qber).astype(np.uint8)
    return alice, alice ^ errors, rng


def _run(
    rec: CascadeReconciler, alice_key: np.ndarray, bob_key: np.ndarray, qber: float, seed: int
) -> Run:
    ea, eb = local_pair()
    rng = np.random.default_rng(seed)
    ra, rb = run_parties(
        lambda: rec.alice(ea, alice_key, qber, rng), lambda: rec.bob(eb, bob_key, qber)
    )
    return ra, rb, ea, eb


def _efficiency(leaked: int, alice_key: np.ndarray, bob_key: np.ndarray) -> float:
    q = float(np.mean(alice_key != bob_key))
    return leaked / (alice_key.size * float(binary_entropy(q)))


# --- correctness and accounting ----------------------------------------------------------------


@pytest.mark.parametrize("variant", ["optimized", "original"])
@pytest.mark.parametrize("qber", [0.01, 0.02, 0.03, 0.05])
def test_bob_ends_with_alices_key_over_many_seeds(variant: str, qber: float) -> None:
    rec = CascadeReconciler(variant)  # type: ignore[arg-type]
    for seed in range(8):
        n = 4096 + 997 * seed  # mostly not powers of two
        alice, bob, _ = _keys(n, qber, seed)
        alice_before = alice.copy()
        ra, rb, ea, eb = _run(rec, alice, bob, qber, seed)
        assert np.array_equal(rb.key, alice), (variant, qber, seed)
        assert np.array_equal(alice, alice_before) and np.array_equal(ra.key, alice)
        # The leak is exactly what the channel booked, on both sides, and both sides agree.
        assert rb.leaked_bits == ra.leaked_bits == ea.log.leaked_bits() == eb.log.leaked_bits()
        assert rb.channel_uses == ra.channel_uses == eb.log.channel_uses()
        # One message per direction and round: setup, then (questions, answers) pairs, done.
        assert eb.log.messages() == 2 * rb.channel_uses
        assert rb.converged and ra.converged


def test_keys_are_uint8_bits_and_inputs_untouched() -> None:
    alice, bob, _ = _keys(3000, 0.03, 1)
    bob_before = bob.copy()
    ra, rb, _, _ = _run(CascadeReconciler(), alice, bob, 0.03, 1)
    for res in (ra, rb):
        assert res.key.dtype == np.uint8 and res.key.shape == (3000,)
        assert set(np.unique(res.key)) <= {0, 1}
    assert np.array_equal(bob, bob_before)  # Bob corrects a copy
    assert rb.key is not bob and ra.key is not alice


def test_bool_and_int_keys_are_accepted() -> None:
    alice, bob, _ = _keys(2000, 0.02, 4)
    _, rb, _, _ = _run(CascadeReconciler(), alice.astype(bool), bob.astype(np.int64), 0.02, 4)
    assert np.array_equal(rb.key, alice)


def test_rounds_are_batched_not_per_error() -> None:
    # All searches of a round travel in one message each way; the rounds follow the longest
    # cascade chain, far fewer than the errors corrected.
    for qber in (0.02, 0.05):
        alice, bob, _ = _keys(1 << 14, qber, 7)
        _, rb, _, _ = _run(CascadeReconciler(), alice, bob, qber, 7)
        errors = int(np.sum(alice != bob))
        assert np.array_equal(rb.key, alice)
        assert rb.channel_uses < errors / 2, (rb.channel_uses, errors)


def test_public_fields_depend_only_on_the_error_pattern() -> None:
    # Whatever Alice's key, the same error pattern and the same generator produce the same
    # public transcript: nothing key-derived travels outside ``leaked``.
    n, qber = 5000, 0.04
    rng = np.random.default_rng(11)
    errors = (rng.random(n) < qber).astype(np.uint8)
    transcripts = []
    for key_seed in (1, 2):
        alice = np.random.default_rng(key_seed).integers(0, 2, n, dtype=np.uint8)
        ea, eb = local_pair()
        seen: list[tuple[str, str, dict[str, Any]]] = []
        for ep in (ea, eb):
            _record(ep, seen)
        rec = CascadeReconciler()
        gen = np.random.default_rng(99)
        bob = alice ^ errors
        run_parties(
            lambda: rec.alice(ea, alice, qber, gen),  # noqa: B023
            lambda: rec.bob(eb, bob, qber),  # noqa: B023
        )
        transcripts.append(seen)
    assert len(transcripts[0]) == len(transcripts[1])
    for (role_a, topic_a, pub_a), (role_b, topic_b, pub_b) in zip(*transcripts, strict=True):
        assert (role_a, topic_a) == (role_b, topic_b)
        assert pub_a.keys() == pub_b.keys()
        for name, value in pub_a.items():
            other = pub_b[name]
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, other), name
            else:
                assert value == other, name


def _record(ep: Endpoint, seen: list[tuple[str, str, dict[str, Any]]]) -> None:
    send = ep.send

    def recording_send(
        topic: str, public: dict[str, Any] | None = None, leaked: Any = None
    ) -> None:
        seen.append((ep.role, topic, dict(public or {})))
        send(topic, public, leaked)

    ep.send = recording_send  # type: ignore[method-assign]


# --- efficiency against the papers ------------------------------------------------------------


def _mean_efficiency(rec: CascadeReconciler, n: int, qber: float, frames: int) -> float:
    fs = []
    for seed in range(frames):
        alice, bob, _ = _keys(n, qber, 1000 + seed)
        _, rb, _, eb = _run(rec, alice, bob, qber, seed)
        assert np.array_equal(rb.key, alice)
        assert rb.leaked_bits == eb.log.leaked_bits()
        fs.append(_efficiency(rb.leaked_bits, alice, bob))
    return float(np.mean(fs))


def test_optimized_efficiency_at_2_percent() -> None:
    # Target f <= 1.06 on frames of 2^14 bits or more; Martinez-Mateo et al. (2015), Fig. 11,
    # show 1.06-1.07 for their optimised versions (4)-(6) at 2 % on 10^4-bit frames. Measured here
    # (1000 frames): 1.055 at 2^14, 1.047 at 2^16.
    f = _mean_efficiency(CascadeReconciler("optimized"), 1 << 14, 0.02, 20)
    assert 1.0 < f < 1.06, f


def test_optimized_efficiency_at_5_percent() -> None:
    f = _mean_efficiency(CascadeReconciler("optimized"), 1 << 14, 0.05, 20)
    assert 1.0 < f < 1.06, f


def test_original_efficiency_matches_the_paper() -> None:
    # "Cascade orig." in Martinez-Mateo et al. (2015), Figs. 1 and 11: about 1.15 at 2 % and
    # 1.18 at 5 % (n = 10^4, read off the plot).
    rec = CascadeReconciler("original")
    f2 = _mean_efficiency(rec, 1 << 14, 0.02, 20)
    f5 = _mean_efficiency(rec, 1 << 14, 0.05, 20)
    assert 1.12 < f2 < 1.19, f2
    assert 1.15 < f5 < 1.22, f5


def test_optimized_beats_original() -> None:
    opt = _mean_efficiency(CascadeReconciler("optimized"), 1 << 14, 0.03, 10)
    orig = _mean_efficiency(CascadeReconciler("original"), 1 << 14, 0.03, 10)
    assert opt < orig - 0.07, (opt, orig)


# --- edge cases --------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["optimized", "original"])
def test_zero_errors_is_cheap_and_needs_no_round(variant: str) -> None:
    alice, _, _ = _keys(1 << 14, 0.0, 3)
    rec = CascadeReconciler(variant)  # type: ignore[arg-type]
    _, rb, _, eb = _run(rec, alice, alice.copy(), 0.02, 3)
    assert np.array_equal(rb.key, alice)
    assert rb.channel_uses == eb.log.channel_uses() == 1  # setup, then "done"
    # Only the top-level parities are revealed (minus the inferred ones for "optimized").
    n = alice.size
    tops = sum(math.ceil(n / k) for k in rec.schedule(n, 0.02))
    if variant == "optimized":
        tops -= len(rec.schedule(n, 0.02)) - 1
    assert rb.leaked_bits == eb.log.leaked_bits() == tops


@pytest.mark.parametrize("variant", ["optimized", "original"])
def test_empty_key_is_a_trivial_result(variant: str) -> None:
    empty = np.zeros(0, dtype=np.uint8)
    ra, rb, ea, eb = _run(CascadeReconciler(variant), empty, empty, 0.02, 0)  # type: ignore[arg-type]
    assert rb.key.size == ra.key.size == 0
    assert rb.leaked_bits == ra.leaked_bits == ea.log.leaked_bits() == 0
    assert rb.channel_uses == eb.log.channel_uses() == 1


def test_qber_estimate_zero_still_corrects() -> None:
    n = 1 << 14
    alice, _, _ = _keys(n, 0.0, 5)
    bob = alice.copy()
    bob[np.random.default_rng(5).choice(n, 12, replace=False)] ^= 1
    rec = CascadeReconciler()
    sizes = rec.schedule(n, 0.0)
    assert sizes[0] == 512  # the estimate is floored at 0.1 %, not taken as zero
    _, rb, _, eb = _run(rec, alice, bob, 0.0, 5)
    assert np.array_equal(rb.key, alice)
    # Top-level parities (n/512 + n/1024 + n/4096 + 11 bits) plus ~log2(block) per error.
    assert rb.leaked_bits == eb.log.leaked_bits() < 0.015 * n


@pytest.mark.parametrize("n", [1, 2, 3, 5, 31, 1001, 10007, 12345])
@pytest.mark.parametrize("variant", ["optimized", "original"])
def test_lengths_that_are_not_powers_of_two(n: int, variant: str) -> None:
    rec = CascadeReconciler(variant)  # type: ignore[arg-type]
    for seed in range(3):
        alice, bob, _ = _keys(n, 0.05, seed)
        if n <= 5:
            bob = alice ^ np.random.default_rng(seed).integers(0, 2, n, dtype=np.uint8)
        _, rb, _, eb = _run(rec, alice, bob, 0.05, seed)
        assert np.array_equal(rb.key, alice), (n, seed)
        assert rb.leaked_bits == eb.log.leaked_bits()


def test_mismatched_lengths_abort_both_sides() -> None:
    alice, bob, _ = _keys(1000, 0.02, 0)
    with pytest.raises((ValueError, ChannelError), match="key lengths differ"):
        _run(CascadeReconciler(), alice, bob[:999], 0.02, 0)


def test_variant_mismatch_aborts() -> None:
    alice, bob, _ = _keys(1000, 0.02, 0)
    ea, eb = local_pair()
    rng = np.random.default_rng(0)
    with pytest.raises((ValueError, ChannelError), match="variant mismatch"):
        run_parties(
            lambda: CascadeReconciler("optimized").alice(ea, alice, 0.02, rng),
            lambda: CascadeReconciler("original").bob(eb, bob, 0.02),
        )


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="variant"):
        CascadeReconciler("fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schedule"):
        CascadeReconciler(schedule="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block_sizes"):
        CascadeReconciler(block_sizes=[0, 4])
    with pytest.raises(ValueError, match="passes"):
        CascadeReconciler(passes=0)
    ea, _ = local_pair()
    with pytest.raises(ValueError, match="only 0 and 1"):
        CascadeReconciler().alice(ea, np.array([0, 2, 1]), 0.02, np.random.default_rng(0))
    with pytest.raises(ValueError, match="1-d"):
        CascadeReconciler().alice(ea, np.zeros((2, 2), np.uint8), 0.02, np.random.default_rng(0))


# --- schedules ---------------------------------------------------------------------------------


def test_schedules() -> None:
    n = 1 << 16
    # Brassard-Salvail: k_1 = ceil(0.73 / Q), doubled, four passes.
    assert original_block_sizes(n, 0.02) == [37, 74, 148, 296]
    # Martinez-Mateo et al. opt. (8) at Q = 2 %: alpha = log2(50) - 1/2 = 5.14.
    assert optimized_block_sizes(n, 0.02, schedule="paper") == [64, 512, 4096] + [n // 2] * 11
    assert optimized_block_sizes(n, 0.02) == [32, 256, 4096] + [n // 2] * 11
    assert optimized_block_sizes(n, 0.02, schedule="lean") == [32, 128, 4096] + [n // 2] * 11
    assert CascadeReconciler().name == "cascade"
    assert CascadeReconciler("original").name == "cascade-original"
    assert len(CascadeReconciler().schedule(n, 0.02)) == 14
    # Overrides: given sizes first, the variant's rule afterwards; all capped at n/2.
    assert CascadeReconciler("original", block_sizes=[10]).schedule(n, 0.02) == [10, 20, 40, 80]
    assert CascadeReconciler(block_sizes=[16], passes=5).schedule(1000, 0.02) == [
        16, 256, 500, 500, 500,
    ]  # fmt: skip


@pytest.mark.parametrize("schedule", ["paper", "lean"])
def test_other_schedules_work(schedule: str) -> None:
    rec = CascadeReconciler(schedule=schedule)  # type: ignore[arg-type]
    alice, bob, _ = _keys(1 << 14, 0.03, 2)
    _, rb, _, eb = _run(rec, alice, bob, 0.03, 2)
    assert np.array_equal(rb.key, alice)
    assert rb.leaked_bits == eb.log.leaked_bits()


def test_lean_schedule_trades_leakage_for_round_trips() -> None:
    uses: dict[str, int] = {}
    for schedule in ("tuned", "lean"):
        rec = CascadeReconciler(schedule=schedule)
        total = 0
        for seed in range(5):
            alice, bob, _ = _keys(1 << 14, 0.03, 300 + seed)
            _, rb, _, _ = _run(rec, alice, bob, 0.03, seed)
            assert np.array_equal(rb.key, alice)
            total += rb.channel_uses
        uses[schedule] = total
    assert uses["lean"] < 0.75 * uses["tuned"], uses


# --- kernels -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1000, 4099])
def test_pass_permutations_are_bijections_with_matching_prefix_parities(n: int) -> None:
    rng = np.random.default_rng(n)
    key = rng.integers(0, 2, n, dtype=np.uint8)
    sizes = CascadeReconciler().schedule(n, 0.05)
    kinds = CascadeReconciler()._layout(len(sizes))
    assert kinds[1:2] == [kernels.KIND_GRID] or len(sizes) < 2
    spec = _pass_spec(n, sizes, kinds)
    pk = rng.integers(0, 2**63, size=(len(sizes), kernels.KEYS_PER_PASS), dtype=np.uint64)
    pk |= np.uint64(1)
    prefix = np.empty((len(sizes), _row_bits(n) // 8), dtype=np.uint8)
    kernels.permuted_prefix_all(key, pk, spec, prefix)
    for q in range(len(sizes)):
        fwd = np.array([kernels.perm_forward(q, j, pk, spec, n) for j in range(n)])
        assert np.array_equal(np.sort(fwd), np.arange(n))
        inv = np.array([kernels.perm_inverse(q, x, pk, spec, n) for x in range(n)])
        assert np.array_equal(inv[fwd], np.arange(n))
        expected = np.concatenate(([0], np.bitwise_xor.accumulate(key[fwd])))
        bits = np.unpackbits(prefix[q], bitorder="little")[: n + 1]
        assert np.array_equal(bits, expected)


def test_grid_pass_separates_pass_one_blocks() -> None:
    # With k_2 no longer than the number of pass-1 blocks, no pass-2 block holds two bits of
    # one pass-1 block (up to the few cells moved by cycle walking on a ragged grid).
    n, k1, k2 = 1 << 14, 64, 256
    spec = _pass_spec(n, [k1, k2], [kernels.KIND_PLAIN, kernels.KIND_GRID])
    rng = np.random.default_rng(3)
    pk = rng.integers(0, 2**63, size=(2, kernels.KEYS_PER_PASS), dtype=np.uint64) | np.uint64(1)
    pass1_block = np.empty(n, dtype=np.int64)
    for j in range(n):
        pass1_block[kernels.perm_forward(0, j, pk, spec, n)] = j // k1
    pass2 = np.array([kernels.perm_forward(1, j, pk, spec, n) for j in range(n)])
    for b in range(n // k2):
        members = pass1_block[pass2[b * k2 : (b + 1) * k2]]
        assert np.unique(members).size == k2
    # Random-looking otherwise: the Feistel split covers the domain.
    a, b_bits = _feistel_split(n)
    assert 2 ** (a + b_bits) >= n
