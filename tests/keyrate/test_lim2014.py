"""Shared finite-key decoy bounds against Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014).

Paper text (read from a transcription of the published article): Eqs. (2)-(4) with
n^±_{X,k} = e^k / p_k [n_{X,k} ± sqrt(n_X / 2 ln(21 / eps_sec))], Eq. (5) with
gamma(a, b, c, d) = sqrt((c + d)(1 - b) b / (c d log 2) log2((c + d) / (c d (1 - b) b) 21^2 / a^2)),
and Eq. (B4): eps_sec = 21 eps. Without deviations the decoy bounds must hold for any photon-number
yields (they are lower bounds on s_0, s_1 and an upper bound on v_1), and be close for a small
third intensity; this is checked against an exact photon-number model of the paper's Sec. IV
channel.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnetkit.keyrate import lim2014
from qnetkit.keyrate.lim2014 import EPS_SPLIT, DecoyIntensities, gamma, hoeffding_deviation


def test_eps_sec_is_split_over_21_terms() -> None:
    # Lim et al. 2014, Eq. (B4): "we set each error term to a common value eps, thus
    # eps_sec = 21 eps".
    assert EPS_SPLIT == 21.0


@pytest.mark.parametrize(
    ("eps_sec", "b", "c", "d"),
    [(1e-10, 0.03, 1e4, 1e4), (1e-15, 0.01, 3e5, 2e7), (1e-9, 0.2, 50.0, 800.0)],
)
def test_gamma_is_eq_5_of_the_paper(eps_sec: float, b: float, c: float, d: float) -> None:
    # Eq. (5): gamma(eps_sec, b, c, d) with the 21^2 / eps_sec^2 factor, written out; the shared
    # function takes a = eps_sec / 21, the form of Eq. (B2) (1 / a^2) with a = alpha_1.
    paper = math.sqrt(
        (c + d)
        * (1 - b)
        * b
        / (c * d * math.log(2))
        * math.log2((c + d) / (c * d * (1 - b) * b) * 21**2 / eps_sec**2)
    )
    assert float(gamma(eps_sec / 21.0, b, c, d)) == pytest.approx(paper, rel=1e-12)


def test_hoeffding_deviation_of_the_n_plus_minus_definition() -> None:
    # Under Eq. (2): sqrt(n_X / 2 ln(21 / eps_sec)).
    assert float(hoeffding_deviation(1e6, 1e-10)) == pytest.approx(
        math.sqrt(1e6 / 2 * math.log(21 / 1e-10)), rel=1e-14
    )


def _photon_number_model(
    intensities: tuple[float, float, float], probs: tuple[float, float, float], eta: float
) -> tuple[list[float], list[float], float, float, float]:
    """Expected detections and errors per intensity class for N = 1 pulse (Sec. IV channel).

    Y_n = 1 - (1 - 2 p_dc)(1 - eta)^n, e_n Y_n = p_dc + e_mis (1 - (1 - eta)^n) (no afterpulses);
    returns counts, errors, and the true s_0 = tau_0 Y_0, s_1 = tau_1 Y_1, v_1 = tau_1 e_1 Y_1.
    """
    pdc, e_mis = 6e-7, 5e-3
    n = np.arange(0, 60)
    y_n = 1 - (1 - 2 * pdc) * (1 - eta) ** n
    err_n = pdc + e_mis * (1 - (1 - eta) ** n)
    log_fact = np.cumsum(np.log(np.maximum(n, 1)))
    counts, errors = [], []
    tau = np.zeros_like(y_n)
    for k, p in zip(intensities, probs, strict=True):
        poisson = np.exp(-k + n * np.log(k) - log_fact)
        tau += p * poisson
        counts.append(float(p * np.sum(poisson * y_n)))
        errors.append(float(p * np.sum(poisson * err_n)))
    return counts, errors, tau[0] * y_n[0], tau[1] * y_n[1], tau[1] * err_n[1]


@pytest.mark.parametrize("eta", [0.1, 1e-2, 1e-3])
def test_decoy_bounds_are_valid_and_tight_without_fluctuations(eta: float) -> None:
    # Eqs. (2)-(4) with zero deviation (the n* of Appendix A): rigorous bounds for any yields.
    # Measured ratios bound / true: s_1 0.97, v_1 1.10 at all three eta; s_0 0.98 at eta = 1e-3.
    intensities, probs = (0.5, 0.1, 2e-4), (0.7, 0.2, 0.1)
    counts, errors, s0, s1, v1 = _photon_number_model(intensities, probs, eta)
    decoys = DecoyIntensities(intensities, probs)
    s0_lo, s1_lo = decoys.vacuum_and_single(counts, 0.0)
    v1_hi = decoys.single_errors(errors, 0.0)
    assert 0.0 <= float(s0_lo) <= s0 * (1 + 1e-9)
    if eta <= 1e-3:  # the vacuum bound is loose while multi-photon clicks swamp dark counts
        assert float(s0_lo) > 0.95 * s0
    assert float(s1_lo) <= s1 * (1 + 1e-12) and float(s1_lo) > 0.9 * s1
    assert float(v1_hi) >= v1 * (1 - 1e-12) and float(v1_hi) < 1.25 * v1


def test_bounds_are_vectorised() -> None:
    intensities = [np.array([0.5, 0.4]), np.array([0.1, 0.05]), np.array([2e-4, 2e-4])]
    probs = [np.array([0.7, 0.6]), np.array([0.2, 0.3]), np.array([0.1, 0.1])]
    counts = [np.array([1e5, 2e5]), np.array([1e4, 3e4]), np.array([100.0, 200.0])]
    both = DecoyIntensities(intensities, probs).vacuum_and_single(counts, np.array([10.0, 20.0]))
    for i in range(2):
        one = DecoyIntensities([x[i] for x in intensities], [p[i] for p in probs])
        s0, s1 = one.vacuum_and_single([c[i] for c in counts], [10.0, 20.0][i])
        assert float(both[0][i]) == float(s0) and float(both[1][i]) == float(s1)


def test_three_intensities_are_required() -> None:
    with pytest.raises(ValueError):
        lim2014.DecoyIntensities((0.5, 0.1), (0.5, 0.5))
