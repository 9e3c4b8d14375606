"""Threshold single-photon detector model against its closed forms.

Gain of a coherent state: Ma, Qi, Zhao, Lo, Phys. Rev. A 72, 012326 (2005), Q_mu = Y_0 + 1 -
e^{-eta mu}, with their GYS parameters (Gobby, Yuan, Shields, APL 84, 3762 (2004)):
eta_Bob = 4.5 %, Y_0 = 1.7e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnetkit.errors import ParameterError
from qnetkit.physics.detectors import (
    SinglePhotonDetector,
    afterpulse_inflated_dark_prob,
    click_probability_coherent,
    click_probability_fock,
    nonparalysable_count_rate,
    paralysable_count_rate,
    threshold_pair_click_probabilities,
)
from qnetkit.physics.sources import poisson_pmf


def test_fock_click_probability() -> None:
    np.testing.assert_allclose(click_probability_fock([0, 1, 2], 0.2, 0.0), [0.0, 0.2, 0.36])
    assert float(click_probability_fock(0, 0.2, 1e-5)) == pytest.approx(1e-5)
    assert float(click_probability_fock(3, 1.0, 0.0)) == 1.0
    # 1 - (1 - p_d)(1 - eta)^n
    assert float(click_probability_fock(2, 0.1, 0.01)) == pytest.approx(1 - 0.99 * 0.81)


def test_coherent_click_is_poisson_average_of_fock() -> None:
    n = np.arange(0, 200)
    for mu in (0.1, 0.8, 5.0):
        averaged = float((poisson_pmf(n, mu) * click_probability_fock(n, 0.3, 2e-4)).sum())
        direct = float(click_probability_coherent(mu, 0.3, 2e-4))
        assert direct == pytest.approx(averaged, rel=1e-12)
        assert direct == pytest.approx(1 - (1 - 2e-4) * math.exp(-0.3 * mu), rel=1e-15)


def test_gain_matches_ma_qi_zhao_lo_with_gys_parameters() -> None:
    # Ma et al. 2005: Q_mu = Y0 + 1 - e^{-eta mu}; ours, 1 - (1 - Y0) e^{-eta mu}, differs by
    # Y0 (1 - e^{-eta mu}), i.e. double counting of dark and signal clicks, below 1e-7 here.
    eta_bob, y0 = 0.045, 1.7e-6
    for length_km in (0.0, 50.0, 100.0):
        eta = eta_bob * 10 ** (-0.21 * length_km / 10)  # GYS fibre: 0.21 dB/km
        for mu in (0.1, 0.48, 0.8):
            ma = y0 + 1 - math.exp(-eta * mu)
            ours = float(click_probability_coherent(mu, eta, y0))
            assert ma - ours == pytest.approx(y0 * (1 - math.exp(-eta * mu)), rel=1e-5)
            assert ours == pytest.approx(ma, rel=1e-5)


def test_dead_time_models() -> None:
    tau = 100e-9
    assert float(nonparalysable_count_rate(1 / tau, tau)) == pytest.approx(0.5 / tau)
    assert float(nonparalysable_count_rate(1e12, tau)) == pytest.approx(1 / tau, rel=1e-4)
    assert float(nonparalysable_count_rate(1e3, 0.0)) == 1e3
    # Paralysable counting peaks at R = 1 / tau with 1 / (e tau).
    rates = np.linspace(1e5, 5e7, 20_001)
    observed = paralysable_count_rate(rates, tau)
    assert rates[np.argmax(observed)] == pytest.approx(1 / tau, rel=1e-3)
    assert observed.max() == pytest.approx(1 / (math.e * tau), rel=1e-6)


def test_afterpulse_first_order() -> None:
    np.testing.assert_allclose(
        afterpulse_inflated_dark_prob(1e-6, 0.05, [0.0, 1e-3, 1.0]), [1e-6, 5.1e-5, 0.050001]
    )
    assert float(afterpulse_inflated_dark_prob(0.9, 0.5, 0.5)) == 1.0


def test_pair_click_probabilities_closed_forms() -> None:
    eta, pd, mu = 0.6, 1e-3, 0.4
    out = threshold_pair_click_probabilities(mu, mu, eta, eta, pd, pd)
    quiet = (1 - pd) * math.exp(-eta * mu)
    assert float(out.no_click) == pytest.approx(quiet**2)
    assert float(out.only_a) == pytest.approx((1 - quiet) * quiet)
    assert float(out.double_click) == pytest.approx((1 - quiet) ** 2)
    total = out.no_click + out.single_click + out.double_click
    assert float(total) == pytest.approx(1.0, abs=1e-15)
    # One detector in the dark and no dark counts: no double clicks at all.
    lone = threshold_pair_click_probabilities([0.1, 2.0], 0.0, 0.5, 0.5, 0.0, 0.0)
    np.testing.assert_allclose(lone.double_click, 0.0)
    np.testing.assert_allclose(lone.only_a, 1 - np.exp(-0.5 * np.array([0.1, 2.0])))
    np.testing.assert_allclose(lone.any_click, lone.only_a)


def test_detector_dataclass() -> None:
    det = SinglePhotonDetector(
        efficiency=0.5,
        dark_count_prob=5e-8,
        dead_time_s=1e-6,
        afterpulse_prob=0.02,
        gate_width_s=2e-9,
    )
    assert det.dark_count_rate_per_s == pytest.approx(25.0)
    assert float(det.click_probability_coherent(0.8, transmittance=1e-3)) == pytest.approx(
        1 - (1 - 5e-8) * math.exp(-0.5 * 0.8e-3)
    )
    assert float(det.click_probability_fock(1)) == pytest.approx(0.5 + 0.5 * 5e-8)
    assert float(det.effective_dark_count_prob(1e-3)) == pytest.approx(5e-8 + 2e-5)
    assert float(det.observed_count_rate(1e6)) == pytest.approx(5e5)


def test_detector_validation_names_the_field() -> None:
    with pytest.raises(ParameterError) as err:
        SinglePhotonDetector(efficiency=1.2)
    assert err.value.name == "efficiency"
    with pytest.raises(ParameterError) as err:
        SinglePhotonDetector(efficiency=0.5, dark_count_prob=-1e-6)
    assert err.value.name == "dark_count_prob"
    with pytest.raises(ParameterError) as err:
        SinglePhotonDetector(efficiency=0.5, gate_width_s=0.0)
    assert err.value.name == "gate_width_s"
    with pytest.raises(ParameterError) as err:
        click_probability_coherent(-0.1, 0.5, 0.0)
    assert err.value.name == "mean_photon_number"


@settings(max_examples=80, deadline=None)
@given(
    st.floats(0.0, 50.0),
    st.floats(0.0, 50.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_pair_probabilities_form_a_distribution(
    mu_a: float, mu_b: float, eta_a: float, eta_b: float, pd_a: float, pd_b: float
) -> None:
    out = threshold_pair_click_probabilities(mu_a, mu_b, eta_a, eta_b, pd_a, pd_b)
    parts = [float(x) for x in (out.no_click, out.only_a, out.only_b, out.double_click)]
    assert all(-1e-15 <= p <= 1.0 + 1e-15 for p in parts)
    assert sum(parts) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 100.0), st.floats(0.0, 100.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_click_probability_monotone_in_mean(a: float, b: float, eta: float, pd: float) -> None:
    lo, hi = sorted((a, b))
    p = click_probability_coherent([lo, hi], eta, pd)
    assert 0.0 <= p[0] <= p[1] <= 1.0
