"""Decoy-state BB84 against Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005) (GYS parameters, Table I)."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnetkit.errors import ParameterError
from qnetkit.keyrate.decoy_bb84 import (
    PRESETS,
    DecoyBB84Params,
    decoy_bb84_key_rate,
    decoy_bb84_rate_at,
    decoy_bb84_transmittance,
)
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.plob import plob_bound

GYS = PRESETS["gys2004"]


def _reach(params: DecoyBB84Params) -> float:
    return max_distance_km(lambda x: decoy_bb84_key_rate(params, x), tol_km=1e-3)


def test_gys_preset_is_table_one_of_ma_2005() -> None:
    # Ma et al. 2005, Table I, row GYS [Gobby, Yuan, Shields, APL 84, 3762 (2004)].
    assert GYS.loss_db_per_km == 0.21
    assert GYS.misalignment_error == 0.033
    assert GYS.dark_count_prob == 1.7e-6
    assert GYS.detector_efficiency == 0.045
    assert GYS.ec_efficiency == 1.22
    assert GYS.sifting_factor == 0.5


def test_infinite_decoy_maximum_distance_is_142_km() -> None:
    # Ma et al. 2005, Sec. V / Fig. 1: with infinitely many decoys and GYS parameters the
    # maximal secure distance is about 142 km.
    assert _reach(GYS) == pytest.approx(142.0, abs=1.0)


def test_optimal_signal_intensity_is_about_half_a_photon() -> None:
    # Ma et al. 2005 (and Lo, Ma, Chen, PRL 94, 230504 (2005)): for GYS the optimal mu is
    # close to 0.48 over most distances, dropping only near the maximal distance.
    curve = decoy_bb84_key_rate(GYS, np.array([0.0, 50.0, 100.0]))
    assert curve.mu is not None
    np.testing.assert_allclose(curve.mu, 0.48, atol=0.01)


def test_figure_2_maximal_distances_at_fixed_mu() -> None:
    # Ma et al. 2005, Fig. 2 (GYS, mu = 0.48): infinite decoys reach 142.05 km and vacuum + weak
    # decoy with nu = 0.05 reaches 140.55 km (values as quoted from the figure's text).
    infinite = _reach(replace(GYS, mu=0.48))
    vacuum_weak = _reach(replace(GYS, mu=0.48, decoys="vacuum+weak", nu=0.05))
    assert infinite == pytest.approx(142.05, abs=0.2)
    assert vacuum_weak == pytest.approx(140.55, abs=0.2)


def test_figure_1_bound_deviations_at_40_km() -> None:
    # Ma et al. 2005, Fig. 1: at 40 km with nu/mu = 25 % (mu = 0.48) the vacuum+weak lower bound
    # on Y1 is 3.5 % below the true single-photon yield and the e1 upper bound 16.8 % above.
    eta = decoy_bb84_transmittance(GYS, [40.0])
    mu = np.array([0.48])
    _, exact = decoy_bb84_rate_at(GYS, eta, mu)
    _, bound = decoy_bb84_rate_at(replace(GYS, decoys="vacuum+weak", nu=0.12), eta, mu)
    y1_low = 100 * (exact["y1"][0] - bound["y1"][0]) / exact["y1"][0]
    e1_high = 100 * (bound["e1"][0] - exact["e1"][0]) / exact["e1"][0]
    assert y1_low == pytest.approx(3.5, abs=0.05)
    assert e1_high == pytest.approx(16.8, abs=0.05)


def test_eq_12_optimal_mu_for_both_ec_efficiencies() -> None:
    # Ma et al. 2005, Eq. (12) and Sec. III.A: for GYS the optimal mu is 0.48 with f(e) = 1.22
    # and 0.54 with f(e) = 1 (short distance, where Y0 is negligible).
    for f_ec, expected in ((1.22, 0.48), (1.0, 0.54)):
        curve = decoy_bb84_key_rate(replace(GYS, ec_efficiency=f_ec), [10.0])
        assert curve.mu is not None
        assert curve.mu[0] == pytest.approx(expected, abs=0.01)


def test_vacuum_plus_weak_approaches_infinite_decoys_as_nu_shrinks() -> None:
    # Ma et al. 2005, abstract and Sec. IV.B: vacuum + one weak decoy approaches the
    # infinite-decoy limit as nu -> 0; a larger nu costs distance.
    reaches = [_reach(replace(GYS, decoys="vacuum+weak", nu=nu)) for nu in (0.01, 0.05, 0.1, 0.2)]
    assert all(a > b for a, b in pairwise(reaches))
    limit = _reach(GYS)
    assert limit - reaches[0] < 0.5
    assert 139.0 < reaches[2] < limit
    assert reaches[3] > 135.0


def test_vacuum_plus_weak_never_beats_infinite_decoys() -> None:
    lengths = np.linspace(0.0, 145.0, 30)
    inf = decoy_bb84_key_rate(GYS, lengths).key_rate_per_pulse
    for nu in (0.02, 0.1, 0.3):
        vw = decoy_bb84_key_rate(replace(GYS, decoys="vacuum+weak", nu=nu), lengths)
        assert np.all(vw.key_rate_per_pulse <= inf * (1 + 1e-9) + 1e-18)


def test_gain_and_qber_follow_eqs_10_11() -> None:
    # Ma et al. 2005 Eq. (10)-(11): Q = Y0 + 1 - exp(-eta mu), E Q = e0 Y0 + e_d (1 - exp(-eta mu)).
    eta = np.array([0.045])
    _, parts = decoy_bb84_rate_at(GYS, eta, np.array([0.5]))
    q = 1.7e-6 + 1 - np.exp(-0.045 * 0.5)
    assert parts["gain"][0] == pytest.approx(q, rel=1e-12)
    assert parts["qber"][0] == pytest.approx((0.5 * 1.7e-6 + 0.033 * (q - 1.7e-6)) / q, rel=1e-12)


def test_qber_goes_from_detector_error_to_one_half() -> None:
    curve = decoy_bb84_key_rate(replace(GYS, mu=0.5), np.array([0.0, 400.0]))
    assert curve.qber[0] == pytest.approx(0.033, abs=1e-3)
    assert curve.qber[1] == pytest.approx(0.5, abs=0.01)


def test_basis_sifting_halves_the_rate() -> None:
    lengths = np.array([10.0, 60.0])
    half = decoy_bb84_key_rate(replace(GYS, mu=0.5), lengths).key_rate_per_pulse
    full = decoy_bb84_key_rate(replace(GYS, mu=0.5, sifting_factor=1.0), lengths).key_rate_per_pulse
    np.testing.assert_allclose(full, 2 * half, rtol=1e-12)


def test_fixed_mu_is_never_better_than_optimised() -> None:
    lengths = np.linspace(0.0, 140.0, 15)
    best = decoy_bb84_key_rate(GYS, lengths).key_rate_per_pulse
    for mu in (0.1, 0.3, 0.6, 0.9):
        fixed = decoy_bb84_key_rate(replace(GYS, mu=mu), lengths).key_rate_per_pulse
        assert np.all(fixed <= best * (1 + 1e-6) + 1e-18)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dark_count_prob", 1.5),
        ("misalignment_error", -0.1),
        ("detector_efficiency", 2.0),
        ("ec_efficiency", 0.9),
        ("decoys", "three"),
        ("nu", 0.0),
        ("loss_db_per_km", -0.2),
    ],
)
def test_bad_values_raise_parameter_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ParameterError) as info:
        replace(GYS, **{field: value})
    assert info.value.name == field


def test_weak_decoy_must_be_below_signal() -> None:
    with pytest.raises(ParameterError):
        replace(GYS, decoys="vacuum+weak", mu=0.1, nu=0.2)


lengths_strategy = st.lists(st.floats(0.0, 300.0), min_size=2, max_size=20)


@settings(max_examples=40, deadline=None)
@given(
    lengths=lengths_strategy,
    decoys=st.sampled_from(["infinite", "vacuum+weak"]),
    e_det=st.floats(0.0, 0.1),
    y0=st.floats(1e-8, 1e-4),
)
def test_rate_is_monotone_in_distance_and_below_plob(
    lengths: list[float], decoys: str, e_det: float, y0: float
) -> None:
    params = replace(GYS, decoys=decoys, misalignment_error=e_det, dark_count_prob=y0)
    ordered = np.sort(np.array(lengths))
    curve = decoy_bb84_key_rate(params, ordered)
    rate = curve.key_rate_per_pulse
    assert np.all(rate >= 0.0)
    assert np.all(np.diff(rate) <= 1e-12 * rate[:-1] + 1e-300)
    assert np.all(rate <= plob_bound(curve.transmittance))
