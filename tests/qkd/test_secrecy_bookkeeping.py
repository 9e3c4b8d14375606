"""Secrecy bookkeeping of the link (issue 12, items 13 and 14).

* One eps split for every estimation path: each key basis' bound and overhead at eps_sec /
  (number of key bases), Lim et al., PRA 89, 022307 (2014) Eq. (1) (6 log2(21/eps) per basis).
* One key basis by default (Lim et al. 2014: key X, test Z; Tomamichel et al., Nat. Commun. 3,
  634 (2012)); both bases only on request (Lo, Chau, Ardehali, J. Cryptology 18, 133 (2005),
  asymptotic).
* The run summary composes per-block (eps_sec, eps_cor) over blocks (sum: composability).
* The reported QBER carries its sample size and an exact Clopper-Pearson 95 % interval
  (Clopper and Pearson, Biometrika 26, 404 (1934)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from qnetkit.qkd import link as link_mod
from qnetkit.qkd.estimation import (
    BasisBound,
    DecoyClasses,
    basis_eps_sec,
    decoy_basis_bound,
    entangled_basis_bound,
    secret_key_length,
    security_overhead_bits,
)
from qnetkit.qkd.link import LinkConfig, key_basis, simulate_link
from qnetkit.qkd.quantum import DecoySourceParams
from qnetkit.qkd.summary import clopper_pearson_interval
from qnetkit.qkd.verification import collision_probability

EPS = 1e-10


# --------------------------------------------------------------------------- eps split


def test_security_overhead_is_lim_eq1_per_key_basis() -> None:
    # Lim et al. Eq. (1): 6 log2(21 / eps_sec) for the one key basis.
    assert security_overhead_bits(EPS, 1) == pytest.approx(6 * math.log2(21 / EPS), rel=1e-12)
    # Two key bases: each at eps_sec / 2.
    assert security_overhead_bits(EPS, 2) == pytest.approx(
        2 * 6 * math.log2(21 / (EPS / 2)), rel=1e-12
    )
    assert basis_eps_sec(EPS, 1) == EPS and basis_eps_sec(EPS, 2) == EPS / 2
    with pytest.raises(ValueError):
        basis_eps_sec(EPS, 3)


def test_key_length_split_follows_the_key_bases_not_the_detections() -> None:
    """Two key bases, one without detections: the overhead is still that of eps_sec / 2 each,
    as the bounds were computed at eps_sec / 2 (the old code switched to the full eps_sec)."""
    full = BasisBound(100_000, 0.0, 100_000.0, 0.02, 80_000.0)
    empty = BasisBound(0, 0.0, 0.0, 0.5, 0.0)
    ell = secret_key_length([full, empty], 10_000, 128, EPS)
    assert ell == math.floor(80_000 - 10_000 - 128 - security_overhead_bits(EPS, 2))


def _counts() -> tuple[np.ndarray, np.ndarray]:
    counts = np.array([[200_000, 300_000, 50_000], [190_000, 310_000, 52_000]])
    errors = np.array([[6_000, 10_000, 25_000], [5_800, 10_500, 26_000]])
    return counts, errors


@pytest.mark.parametrize("key_bases", [1, 2])
def test_whitebox_bounds_use_the_same_eps_split_on_decoy_and_entangled_paths(
    key_bases: int,
) -> None:
    """link._bounds: BBM92 used the full eps_sec per basis where decoy BB84 used eps_sec / 2."""
    counts, errors = _counts()
    eps = basis_eps_sec(EPS, key_bases)
    bases = (0, 1) if key_bases == 2 else (0,)
    decoy_cfg = LinkConfig(key_bases=key_bases, eps_sec=EPS)
    classes = DecoyClasses(decoy_cfg.source.intensities, decoy_cfg.source.intensity_probs)
    got = link_mod._bounds(decoy_cfg, counts, errors, 3, 0.01)
    assert got == [
        decoy_basis_bound(list(counts[b]), list(counts[1 - b]), list(errors[1 - b]), classes, eps)
        for b in bases
    ]
    ent_cfg = LinkConfig(protocol="bbm92", key_bases=key_bases, eps_sec=EPS)
    n, m = counts.sum(axis=1), errors.sum(axis=1)
    got = link_mod._bounds(ent_cfg, counts, errors, 1, 0.01)
    expected = [entangled_basis_bound(int(n[b]), int(n[1 - b]), int(m[1 - b]), eps) for b in bases]
    assert got == expected


# --------------------------------------------------------------------------- key basis


def test_one_key_basis_by_default_chosen_from_the_basis_probabilities() -> None:
    assert LinkConfig().key_bases == 1
    assert key_basis(LinkConfig()) == 0  # Z on a tie
    biased_x = DecoySourceParams(basis_prob_z=0.2)
    assert key_basis(LinkConfig(source=biased_x)) == 1
    assert key_basis(LinkConfig(protocol="bbm92")) == 0
    assert key_basis(LinkConfig(key_bases=2)) is None
    with pytest.raises(Exception, match="key_bases"):
        LinkConfig(key_bases=3)


def test_default_run_announces_the_test_basis_and_keys_only_the_key_basis() -> None:
    one = simulate_link(LinkConfig(pulses=10**8, seed=3)).stats
    both = simulate_link(LinkConfig(pulses=10**8, seed=3, key_bases=2)).stats
    assert one["key_bases"] == 1 and both["key_bases"] == 2
    assert one["keys_match"] and both["keys_match"] and not one["aborted"]
    # p_Z = 1/2: about half the sifted bits (less the public sample) are X test bits.
    assert one["test_bits"] == pytest.approx(one["sifted_bits"] / 2, rel=0.02)
    assert both["test_bits"] == 0
    # Only the key basis is reconciled: about half the leakage of the two-basis run.
    assert one["leaked_ec_bits"] == pytest.approx(both["leaked_ec_bits"] / 2, rel=0.1)
    assert 0 < one["secret_key_bits"] < both["secret_key_bits"]


# --------------------------------------------------------------------------- composition


def test_run_summary_composes_eps_over_blocks() -> None:
    s = simulate_link(LinkConfig(pulses=10**8, seed=5, block_bits=2**16)).stats
    blocks = s["blocks"]
    assert blocks >= 3 and s["blocks_aborted"] < blocks
    assert s["eps_sec_per_block"] == EPS
    assert s["eps_sec_run"] == pytest.approx(blocks * EPS, rel=1e-12)
    # eps_cor: Poly1305 collision bound of each block that reached verification, summed.
    assert collision_probability(2**15) < s["eps_cor_run"] <= blocks * collision_probability(2**16)
    assert s["eps_qkd_run"] == pytest.approx(s["eps_sec_run"] + s["eps_cor_run"], rel=1e-12)
    assert "eps_sec" not in s and "eps_cor" not in s  # the ambiguous per-block/run mix is gone


# --------------------------------------------------------------------------- QBER interval


def test_clopper_pearson_matches_closed_forms_and_scipy() -> None:
    # k = 0: (1 - p)^n = alpha / 2 at the upper end; k = n: p^n = alpha / 2 at the lower end.
    assert clopper_pearson_interval(0, 10) == (0.0, pytest.approx(1 - 0.025**0.1, rel=1e-12))
    assert clopper_pearson_interval(10, 10) == (pytest.approx(0.025**0.1, rel=1e-12), 1.0)
    for k, n in ((5, 10), (3, 100), (3_300, 100_000)):
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        lo, hi = clopper_pearson_interval(k, n)
        assert lo == pytest.approx(ref.low, rel=1e-9) and hi == pytest.approx(ref.high, rel=1e-9)
    assert clopper_pearson_interval(0, 0) == (0.0, 1.0)


def test_run_reports_qber_with_sample_size_and_interval() -> None:
    s = simulate_link(LinkConfig(pulses=10**8, seed=3)).stats
    n = s["qber_sample_bits"]
    # Every sifted bit's error is known: reconciled key bits, the public sample, the test bits.
    assert n == s["sifted_bits"]
    assert s["qber"] == s["qber_errors"] / n
    lo, hi = s["qber_ci95"]
    assert lo < s["qber"] < hi
    # Normal approximation of the same interval: q +- 1.96 sqrt(q (1 - q) / n).
    half = 1.96 * math.sqrt(s["qber"] * (1 - s["qber"]) / n)
    assert hi - lo == pytest.approx(2 * half, rel=0.02)
