"""Photon-number statistics of weak coherent and SPDC sources.

SPDC: Ma, Fung, Lo, Phys. Rev. A 76, 012307 (2007), Eq. (1), P(n) = (n+1) lambda^n/(1+lambda)^(n+2)
with mean 2 lambda; Kok and Braunstein, Phys. Rev. A 61, 042304 (2000), the same law written as
(n+1) tanh^(2n) r / cosh^4 r. Weak coherent: Poisson statistics of a phase-randomised laser
(Lo, Ma, Chen, Phys. Rev. Lett. 94, 230504 (2005)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnetkit.errors import ParameterError
from qnetkit.physics.sources import (
    SPDCSource,
    WeakCoherentSource,
    poisson_multiphoton_probability,
    poisson_pmf,
    poisson_single_photon_probability,
    poisson_vacuum_probability,
    spdc_pair_pmf,
    thermal_pmf,
)

N = np.arange(0, 400)


def micius_source() -> WeakCoherentSource:
    # Liao et al., Nature 549, 43 (2017): mu_s = 0.8, mu_1 = 0.1, mu_2 = 0 at the telescope
    # output, sent with probabilities 50 %, 25 %, 25 %.
    return WeakCoherentSource(
        signal_mean_photon_number=0.8,
        decoy_mean_photon_number=0.1,
        signal_probability=0.5,
        decoy_probability=0.25,
        vacuum_probability=0.25,
    )


@pytest.mark.parametrize("mu", [0.0, 0.1, 0.5, 0.8, 5.0, 40.0])
def test_poisson_normalisation_mean_and_variance(mu: float) -> None:
    p = poisson_pmf(N, mu)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (N * p).sum() == pytest.approx(mu, abs=1e-10)
    assert ((N - mu) ** 2 * p).sum() == pytest.approx(mu, abs=1e-9)


def test_poisson_closed_forms() -> None:
    mu = np.array([0.0, 0.1, 0.5, 0.8])
    np.testing.assert_allclose(poisson_vacuum_probability(mu), np.exp(-mu))
    np.testing.assert_allclose(poisson_single_photon_probability(mu), mu * np.exp(-mu))
    np.testing.assert_allclose(
        poisson_multiphoton_probability(mu), 1 - np.exp(-mu) * (1 + mu), atol=1e-15
    )
    # Small-mu branch: mu^2 / 2 to leading order, no cancellation.
    assert float(poisson_multiphoton_probability(1e-6)) == pytest.approx(5e-13, rel=1e-5)
    assert float(poisson_pmf(3, 0.5)) == pytest.approx(math.exp(-0.5) * 0.125 / 6)
    # Broadcasting: a column of n against a row of means.
    assert poisson_pmf(N[:5, None], mu[None, :]).shape == (5, 4)


def test_micius_intensities() -> None:
    source = micius_source()
    assert source.mean_photon_number == pytest.approx(0.425)
    # Signal pulses carry two or more photons 19.1 % of the time: 1 - e^{-0.8} x 1.8.
    assert float(poisson_multiphoton_probability(0.8)) == pytest.approx(0.191208, abs=1e-6)
    expected = 0.5 * 0.191208 + 0.25 * float(poisson_multiphoton_probability(0.1))
    assert source.multiphoton_probability() == pytest.approx(expected, abs=1e-6)
    p = source.photon_number_distribution(N)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert p[0] == pytest.approx(0.5 * math.exp(-0.8) + 0.25 * math.exp(-0.1) + 0.25)
    names = [i.name for i in source.intensities]
    assert names == ["signal", "decoy", "vacuum"]


def test_weak_coherent_validation() -> None:
    with pytest.raises(ParameterError) as err:
        WeakCoherentSource(0.8, 0.1, 0.5, 0.3, 0.3)
    assert err.value.name == "probabilities"
    with pytest.raises(ParameterError) as err:
        WeakCoherentSource(0.8, 0.1, 1.5, -0.25, -0.25)
    assert err.value.name == "signal_probability"
    with pytest.raises(ParameterError) as err:
        WeakCoherentSource(0.1, 0.8, 0.5, 0.25, 0.25)
    assert err.value.name == "decoy_mean_photon_number"
    with pytest.raises(ParameterError) as err:
        WeakCoherentSource(-0.8, 0.1, 0.5, 0.25, 0.25)
    assert err.value.name == "signal_mean_photon_number"
    with pytest.raises(ParameterError) as err:
        poisson_pmf(1.5, 0.1)
    assert err.value.name == "n"


@pytest.mark.parametrize("lam", [0.0, 0.01, 0.1, 0.5, 2.0])
def test_spdc_normalisation_and_mean_two_lambda(lam: float) -> None:
    p = spdc_pair_pmf(N, lam)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (N * p).sum() == pytest.approx(2 * lam, abs=1e-10)
    source = SPDCSource(mean_pair_number=2 * lam)
    assert source.lambda_ == pytest.approx(lam)
    assert source.vacuum_probability() == pytest.approx(1 / (1 + lam) ** 2)
    assert source.single_pair_probability() == pytest.approx(float(p[1]))
    assert source.multi_pair_probability() == pytest.approx(float(p[2:].sum()), abs=1e-12)


def test_spdc_equals_kok_braunstein_form() -> None:
    # lambda = sinh^2 r: tanh^2 r = lambda / (1 + lambda), cosh^2 r = 1 + lambda.
    r = 0.3
    source = SPDCSource.from_squeezing(r)
    n = np.arange(0, 8)
    expected = (n + 1) * np.tanh(r) ** (2 * n) / np.cosh(r) ** 4
    np.testing.assert_allclose(source.pair_number_distribution(n), expected, rtol=1e-12)


def test_spdc_is_two_independent_thermal_modes() -> None:
    # H and V modes each thermal with mean lambda; total pairs is their convolution.
    lam = 0.2
    single = thermal_pmf(N[:60], lam)
    np.testing.assert_allclose(
        np.convolve(single, single)[:40], spdc_pair_pmf(N[:40], lam), rtol=1e-10
    )


@pytest.mark.parametrize("lam", [0.0, 0.05, 1.0])
def test_thermal_normalisation_and_mean(lam: float) -> None:
    p = thermal_pmf(N, lam)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (N * p).sum() == pytest.approx(lam, abs=1e-10)
    # Bose-Einstein variance lambda (1 + lambda): super-Poissonian.
    assert ((N - lam) ** 2 * p).sum() == pytest.approx(lam * (1 + lam), abs=1e-9)


def test_spdc_validation() -> None:
    with pytest.raises(ParameterError) as err:
        SPDCSource(mean_pair_number=-0.1)
    assert err.value.name == "mean_pair_number"


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 20.0), st.integers(0, 60))
def test_probabilities_in_unit_interval(mean: float, n: int) -> None:
    for value in (
        poisson_pmf(n, mean),
        thermal_pmf(n, mean),
        spdc_pair_pmf(n, mean),
        poisson_multiphoton_probability(mean),
    ):
        assert 0.0 <= float(value) <= 1.0 + 1e-12
