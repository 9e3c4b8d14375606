"""Toeplitz privacy amplification (FFT) and hash verification."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from qnetkit.qkd.channel import local_pair, run_parties
from qnetkit.qkd.privacy import (
    ToeplitzAmplifier,
    modified_toeplitz_hash,
    toeplitz_hash,
    toeplitz_hash_reference,
)
from qnetkit.qkd.verification import collision_probability, verify_alice, verify_bob


@pytest.mark.parametrize(("n", "m"), [(1, 1), (7, 3), (64, 64), (1000, 999), (3001, 17)])
def test_fft_product_equals_definition(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 31 + m)
    x = rng.integers(0, 2, n, dtype=np.uint8)
    s = rng.integers(0, 2, n + m - 1, dtype=np.uint8)
    assert np.array_equal(toeplitz_hash(x, s, m), toeplitz_hash_reference(x, s, m))


def test_large_block_single_precision_path_is_exact() -> None:
    # 2e5 x 4e5: compare with an exact integer convolution computed blockwise in float64.
    rng = np.random.default_rng(7)
    n, m = 400_000, 200_000
    x = rng.integers(0, 2, n, dtype=np.uint8)
    s = rng.integers(0, 2, n + m - 1, dtype=np.uint8)
    fast = toeplitz_hash(x, s, m)
    rows = rng.choice(m, 200, replace=False)
    for i in rows:
        window = s[i : i + n][::-1]  # row i: T[i, j] = s[i - j + n - 1]
        assert fast[i] == int(np.dot(window.astype(np.int64), x)) & 1


def test_toeplitz_is_linear_and_output_balanced() -> None:
    rng = np.random.default_rng(3)
    n, m = 4096, 1024
    s = rng.integers(0, 2, n + m - 1, dtype=np.uint8)
    x1 = rng.integers(0, 2, n, dtype=np.uint8)
    x2 = rng.integers(0, 2, n, dtype=np.uint8)
    combined = toeplitz_hash(x1, s, m) ^ toeplitz_hash(x2, s, m)
    assert np.array_equal(toeplitz_hash(x1 ^ x2, s, m), combined)
    # Universality in practice: outputs of distinct inputs under random seeds are unbiased.
    ones = sum(int(toeplitz_hash(x1, rng.integers(0, 2, n + m - 1, dtype=np.uint8), m).sum())
               for _ in range(20))
    assert stats.binomtest(ones, 20 * m, 0.5).pvalue > 1e-4


def test_bad_lengths() -> None:
    with pytest.raises(ValueError, match="needs"):
        toeplitz_hash(np.zeros(10, np.uint8), np.zeros(10, np.uint8), 5)
    with pytest.raises(ValueError, match="between 0"):
        modified_toeplitz_hash(np.zeros(10, np.uint8), np.zeros(9, np.uint8), 11)
    with pytest.raises(ValueError, match="needs 9"):
        modified_toeplitz_hash(np.zeros(10, np.uint8), np.zeros(10, np.uint8), 4)
    assert toeplitz_hash(np.zeros(10, np.uint8), np.zeros(0, np.uint8), 0).size == 0


@pytest.mark.parametrize(("n", "m"), [(2, 1), (100, 30), (100, 70), (5000, 4999)])
def test_modified_toeplitz_is_identity_plus_toeplitz(n: int, m: int) -> None:
    # Hayashi-Tsurumaru 2016: [I_m | T] with T an m x (n - m) Toeplitz matrix.
    rng = np.random.default_rng(n + m)
    x = rng.integers(0, 2, n, dtype=np.uint8)
    s = rng.integers(0, 2, n - 1, dtype=np.uint8)
    expected = x[:m] ^ toeplitz_hash_reference(x[m:], s, m)
    assert np.array_equal(modified_toeplitz_hash(x, s, m), expected)
    assert np.array_equal(modified_toeplitz_hash(x, s[:0], n), x)


def test_modified_family_collision_rate() -> None:
    # Two-universality, checked statistically: Pr[f(x) = f(x')] ~ 2^-m over random seeds.
    rng = np.random.default_rng(9)
    n, m, trials = 64, 4, 4000
    x = rng.integers(0, 2, n, dtype=np.uint8)
    x2 = x.copy()
    x2[[5, 40]] ^= 1
    same = sum(
        np.array_equal(modified_toeplitz_hash(x, s, m), modified_toeplitz_hash(x2, s, m))
        for s in rng.integers(0, 2, (trials, n - 1), dtype=np.uint8)
    )
    assert stats.binomtest(same, trials, 2.0**-m).pvalue > 1e-4


def test_amplifier_two_parties_identical() -> None:
    rng = np.random.default_rng(11)
    key = rng.integers(0, 2, 50_000, dtype=np.uint8)
    a, b = local_pair()
    ra, rb = run_parties(
        lambda: ToeplitzAmplifier().alice(a, key, 20_000, np.random.default_rng(1)),
        lambda: ToeplitzAmplifier().bob(b, key.copy()),
    )
    assert np.array_equal(ra.key, rb.key) and ra.key.size == 20_000
    assert a.log.leaked_bits() == 0  # the seed is public, not key-derived


def test_verification_catches_one_flipped_bit() -> None:
    rng = np.random.default_rng(5)
    key = rng.integers(0, 2, 100_000, dtype=np.uint8)
    for flip in (None, 0, 54_321, 99_999):
        bob_key = key.copy()
        if flip is not None:
            bob_key[flip] ^= 1
        a, b = local_pair()
        ra, rb = run_parties(
            lambda: verify_alice(a, key, np.random.default_rng(2)),  # noqa: B023
            lambda: verify_bob(b, bob_key),  # noqa: B023
        )
        assert ra.passed == rb.passed == (flip is None)
        assert a.log.leaked_bits() == 128
    assert collision_probability(100_000) < 1e-25


def test_fftw_single_precision_agrees_with_double_precision_scipy() -> None:
    from qnetkit.qkd import privacy

    rng = np.random.default_rng(21)
    n, m = 300_000, 120_000
    x = rng.integers(0, 2, n, dtype=np.uint8)
    s = rng.integers(0, 2, n + m - 1, dtype=np.uint8)
    single = privacy._convolve(s, x, m, np.float32)
    double = privacy._convolve(s, x, m, np.float64)
    assert np.max(np.abs(single - double)) < 0.05  # both within rounding of the same sums
    assert np.array_equal(np.rint(2 * single), np.rint(2 * double))
