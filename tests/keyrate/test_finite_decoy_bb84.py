"""Finite-key decoy BB84 against Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014).

The paper gives its Fig. 1 results as a log plot plus two numbers in the text (Sec. I and
Sec. IV): n_X = 1e4 still reaches 135 km, and at 100 km the n_X = 1e9 rate is about 1.75
times the n_X = 1e7 rate. Those are the quantitative checks; the rest of Fig. 1 is used only
for its ordering, as values read off a log plot would not be tighter than the model choices.

Every comparison runs at the paper's own security parameters, Sec. IV: "we set eps_sec to be
proportional to the secret key length, that is, eps_sec = kappa * ell", with kappa = 1e-15 and
eps_cor = 1e-15 (paper text, read here from a transcription of the published article; the same
values are in the ``lim2014`` preset). A fixed eps_sec is an option of this library, never used
for a comparison with the paper.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnetkit.errors import ParameterError
from qnetkit.keyrate.finite_decoy_bb84 import (
    DEFAULT_PRESET,
    PRESETS,
    FiniteDecoyBB84Params,
    finite_decoy_bb84_asymptotic_key_rate,
    finite_decoy_bb84_key_rate,
)
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.plob import plob_bound

LIM = PRESETS["lim2014"]
FIG1_BLOCKS = (1e4, 1e5, 1e6, 1e7, 1e8, 1e9)  # Lim et al. Fig. 1: n_X = 10^s, s = 4..9


def _reach(params: FiniteDecoyBB84Params, tol_km: float = 0.05) -> float:
    return max_distance_km(
        lambda x: finite_decoy_bb84_key_rate(params, x), upper_km=400.0, tol_km=tol_km
    )


@pytest.fixture(scope="module")
def fig1_reaches() -> dict[float, float]:
    return {n: _reach(replace(LIM, n_x=n), tol_km=0.2) for n in FIG1_BLOCKS}


def test_lim2014_preset_is_section_iv_of_the_paper() -> None:
    # Lim et al. 2014, Sec. IV (dedicated fiber, Fig. 1): 0.2 dB/km, eta_Bob = 10 %,
    # p_dc = 6e-7, p_ap = 4e-2, mu_3 = 2e-4, e_mis = 5e-3, f_EC = 1.16, eps_cor = 1e-15,
    # eps_sec = kappa * ell with kappa = 1e-15; mu_1, mu_2, p_mu1, p_mu2, q_x optimised.
    assert DEFAULT_PRESET == "lim2014"
    assert LIM.loss_db_per_km == 0.2
    assert LIM.extra_loss_db == 0.0
    assert LIM.detector_efficiency == 0.1
    assert LIM.dark_count_prob == 6e-7
    assert LIM.afterpulse_prob == 4e-2
    assert LIM.mu3 == 2e-4
    assert LIM.misalignment_error == 5e-3
    assert LIM.ec_efficiency == 1.16
    assert LIM.eps_cor == 1e-15
    assert LIM.eps_sec_per_key_bit == 1e-15
    assert LIM.n_x in FIG1_BLOCKS
    assert (LIM.mu, LIM.mu2, LIM.p_mu, LIM.p_mu2, LIM.p_x) == (None,) * 5


def test_block_of_1e4_reaches_about_135_km(fig1_reaches: dict[float, float]) -> None:
    # Lim et al. 2014, Sec. I and Sec. IV (Fig. 1): "even if we use a block size of 10^4,
    # cryptographic keys can still be distributed over a fiber length of 135 km", at the
    # paper's eps_sec = kappa * ell, kappa = 1e-15 (solved self-consistently here). Measured:
    # 130.9 km, 4.1 km short of the paper's figure; tolerance 5 km (the paper's figure is a
    # round number for a curve on a log plot).
    assert fig1_reaches[1e4] == pytest.approx(135.0, abs=5.0)
    assert fig1_reaches[1e4] == pytest.approx(130.9, abs=0.3)  # regression


def test_fixed_eps_sec_option_overrides_kappa() -> None:
    # Library option, not a paper comparison (the paper uses eps_sec = kappa * ell): a fixed
    # eps_sec replaces kappa * ell everywhere. 1e-10 is far looser than kappa * ell (~1e-12 at
    # n_X = 1e4), so the reach grows (135.4 km, regression).
    fixed = replace(LIM, n_x=1e4, eps_sec=1e-10)
    reach = _reach(fixed, tol_km=0.2)
    assert reach > _reach(replace(LIM, n_x=1e4), tol_km=0.2)
    assert reach == pytest.approx(135.4, abs=0.3)
    curve = finite_decoy_bb84_key_rate(fixed, [50.0])
    assert curve.extra["eps_sec"][0] == 1e-10
    # With kappa, eps_sec is kappa times the key length actually extracted (up to the fixed
    # point's convergence).
    own = finite_decoy_bb84_key_rate(replace(LIM, n_x=1e4), [50.0])
    ell = own.key_rate_per_pulse[0] * own.extra["n_pulses"][0]
    assert own.extra["eps_sec"][0] == pytest.approx(1e-15 * ell, rel=1e-3)


def test_rate_ratio_of_1e9_to_1e7_blocks_at_100_km_is_1_75() -> None:
    # Lim et al. 2014, Sec. IV (Fig. 1): "at a fiber length of 100 km, the secret key rate
    # obtained with n_X = 10^9 is about 1.75 times the one based on n_X = 10^7", at the paper's
    # kappa = 1e-15. Measured: 1.79 (2 % above); tolerance 3 %.
    rates = [
        finite_decoy_bb84_key_rate(replace(LIM, n_x=n), [100.0]).key_rate_per_pulse[0]
        for n in (1e7, 1e9)
    ]
    assert rates[1] / rates[0] == pytest.approx(1.75, rel=0.03)


def test_fig1_curves_are_ordered_and_saturate(fig1_reaches: dict[float, float]) -> None:
    # Lim et al. 2014, Fig. 1 and its discussion: curves n_X = 1e4 .. 1e9 lie left to right,
    # below the dashed asymptotic curve, within the 200 km plotted; 1e4, 1e5, 1e6 differ
    # markedly while 1e7, 1e8, 1e9 show only slight differences.
    reaches = [fig1_reaches[n] for n in FIG1_BLOCKS]
    assert all(a < b for a, b in pairwise(reaches))
    asymptotic = max_distance_km(
        lambda x: finite_decoy_bb84_asymptotic_key_rate(LIM, x), upper_km=400.0, tol_km=0.2
    )
    assert reaches[-1] < asymptotic < 200.0
    gaps = np.diff(reaches)
    assert min(gaps[:2]) > 2.0 * max(gaps[3:])
    lengths = np.array([0.0, 50.0, 100.0])
    rates = [finite_decoy_bb84_key_rate(replace(LIM, n_x=n), lengths) for n in (1e4, 1e6, 1e9)]
    limit = finite_decoy_bb84_asymptotic_key_rate(LIM, lengths).key_rate_per_pulse
    assert np.all(rates[0].key_rate_per_pulse < rates[1].key_rate_per_pulse)
    assert np.all(rates[1].key_rate_per_pulse < rates[2].key_rate_per_pulse)
    assert np.all(rates[2].key_rate_per_pulse < limit)
    # Fig. 1 y-axis: rates per pulse between 1e-7 and 1e-2 over the plotted range.
    assert 1e-3 < rates[2].key_rate_per_pulse[0] < 1e-2


def test_rate_converges_to_the_asymptotic_rate() -> None:
    # Lim et al. 2014, Fig. 1 dashed curve: the limit of infinitely large blocks (still three
    # intensities). The finite rate rises towards it and never exceeds it; the approach is
    # slow because q_x -> 1 and p_mu2, p_mu3 -> 0 only as the block grows.
    lengths = np.array([0.0, 60.0, 120.0])
    limit = finite_decoy_bb84_asymptotic_key_rate(LIM, lengths).key_rate_per_pulse
    ratios = [
        finite_decoy_bb84_key_rate(replace(LIM, n_x=n), lengths).key_rate_per_pulse / limit
        for n in (1e8, 1e12, 1e16, 1e20)
    ]
    for lower, higher in pairwise(ratios):
        assert np.all(lower < higher)
    assert np.all(ratios[-1] <= 1.0 + 1e-6)
    assert np.all(ratios[-1] > 0.95)


def test_larger_blocks_never_give_a_lower_rate() -> None:
    lengths = np.linspace(0.0, 190.0, 39)
    rates = [
        finite_decoy_bb84_key_rate(replace(LIM, n_x=10.0**s), lengths).key_rate_per_pulse
        for s in range(4, 11)
    ]
    for small, large in pairwise(rates):
        assert np.all(large >= small * (1.0 - 1e-9))


def test_sweep_is_monotone_and_zero_beyond_reach() -> None:
    lengths = np.linspace(0.0, 200.0, 100)  # its run time: benchmarks/timings.py
    curve = finite_decoy_bb84_key_rate(LIM, lengths)
    rate = curve.key_rate_per_pulse
    assert rate.shape == lengths.shape
    assert np.all(np.diff(rate) <= 0.0)
    reach = _reach(LIM, tol_km=0.01)
    assert np.all(rate[lengths > reach + 0.01] == 0.0)
    assert np.all(rate[lengths < reach - 0.01] > 0.0)
    for values in (curve.qber, curve.transmittance, curve.mu, *curve.extra.values()):
        assert values is not None and values.shape == lengths.shape
    assert curve.protocol == "finite-decoy-bb84"


def test_unsorted_lengths_give_the_same_points() -> None:
    lengths = np.array([120.0, 0.0, 60.0, 30.0])
    shuffled = finite_decoy_bb84_key_rate(LIM, lengths)
    ordered = finite_decoy_bb84_key_rate(LIM, np.sort(lengths))
    back = np.argsort(np.argsort(lengths))
    np.testing.assert_allclose(shuffled.key_rate_per_pulse, ordered.key_rate_per_pulse[back])
    np.testing.assert_allclose(shuffled.length_km, lengths)


def test_fixed_parameters_and_the_paper_channel_model() -> None:
    # Lim et al. 2014, Sec. IV: D_k = 1 - (1 - 2 p_dc) exp(-eta_sys k), R_k = D_k (1 + p_ap),
    # e_k = p_dc + e_mis (1 - exp(-eta_sys k)) + p_ap D_k / 2; E_X = sum p_k e_k / sum p_k R_k.
    fixed = replace(LIM, mu=0.5, mu2=0.1, p_mu=0.7, p_mu2=0.2, p_x=0.7)
    curve = finite_decoy_bb84_key_rate(fixed, [50.0])
    eta = 0.1 * 10 ** (-0.2 * 50.0 / 10)
    assert curve.transmittance[0] == pytest.approx(eta, rel=1e-12)
    mus, probs = np.array([0.5, 0.1, 2e-4]), np.array([0.7, 0.2, 0.1])
    d = 1 - (1 - 2 * 6e-7) * np.exp(-eta * mus)
    e = 6e-7 + 5e-3 * (1 - np.exp(-eta * mus)) + 0.04 * d / 2
    r = d * 1.04
    assert curve.qber[0] == pytest.approx(probs @ e / (probs @ r), rel=1e-12)
    assert curve.extra["n_pulses"][0] == pytest.approx(1e7 / (0.49 * (probs @ r)), rel=1e-12)
    assert curve.mu is not None and curve.mu[0] == 0.5
    assert curve.extra["p_mu3"][0] == pytest.approx(0.1)
    assert (
        0.0
        < curve.key_rate_per_pulse[0]
        < finite_decoy_bb84_key_rate(LIM, [50.0]).key_rate_per_pulse[0]
    )


@settings(max_examples=12, deadline=None)
@given(
    loss=st.floats(0.15, 0.35),
    extra=st.floats(0.0, 6.0),
    eta_bob=st.floats(0.03, 0.95),
    log_pdc=st.floats(-8.0, -4.5),
    pap=st.floats(0.0, 0.1),
    emis=st.floats(0.0, 0.04),
    f_ec=st.floats(1.0, 1.5),
    log_nx=st.floats(4.0, 12.0),
    lengths=st.lists(st.floats(0.0, 260.0), min_size=2, max_size=8),
)
def test_rate_is_nonnegative_monotone_and_below_plob(
    loss: float,
    extra: float,
    eta_bob: float,
    log_pdc: float,
    pap: float,
    emis: float,
    f_ec: float,
    log_nx: float,
    lengths: list[float],
) -> None:
    params = replace(
        LIM,
        loss_db_per_km=loss,
        extra_loss_db=extra,
        detector_efficiency=eta_bob,
        dark_count_prob=10.0**log_pdc,
        afterpulse_prob=pap,
        misalignment_error=emis,
        ec_efficiency=f_ec,
        n_x=10.0**log_nx,
    )
    curve = finite_decoy_bb84_key_rate(params, np.sort(lengths))
    rate = curve.key_rate_per_pulse
    assert np.all(np.isfinite(rate)) and np.all(rate >= 0.0)
    assert np.all(np.diff(rate) <= 1e-9 * rate[:-1])
    assert np.all(rate <= plob_bound(curve.transmittance))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("detector_efficiency", 1.5),
        ("detector_efficiency", -0.1),
        ("dark_count_prob", -1e-7),
        ("dark_count_prob", 1.2),
        ("afterpulse_prob", 1.01),
        ("misalignment_error", -0.01),
        ("p_mu", 1.3),
        ("p_mu2", -0.2),
        ("p_x", 1.0001),
        ("p_x", 0.0),
        ("eps_sec", 0.0),
        ("eps_cor", 2.0),
        ("n_x", 0.0),
        ("n_x", -1e6),
        ("ec_efficiency", 0.9),
        ("mu3", -1e-4),
        ("loss_db_per_km", -0.2),
    ],
)
def test_out_of_range_values_raise_parameter_error(field: str, value: float) -> None:
    with pytest.raises(ParameterError) as info:
        replace(LIM, **{field: value})
    assert info.value.name == field


def test_inconsistent_intensities_and_probabilities_raise() -> None:
    # Lim et al. 2014, Sec. II: mu_1 > mu_2 + mu_3 and mu_2 > mu_3 >= 0; p_mu3 = 1 - p_mu1 - p_mu2.
    with pytest.raises(ParameterError):
        replace(LIM, mu=0.2, mu2=0.2)
    with pytest.raises(ParameterError):
        replace(LIM, mu2=1e-4)
    with pytest.raises(ParameterError):
        replace(LIM, p_mu=0.6, p_mu2=0.4)
