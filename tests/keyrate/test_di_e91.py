"""DI-QKD rate from CHSH against Acin et al., PRL 98, 230501 (2007); the DI-E91 distance model."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import BBM92Params, bbm92_key_rate, pdc_gain_and_qber
from qnetkit.keyrate.common import binary_entropy
from qnetkit.keyrate.di_e91 import (
    DEFAULT_PRESET,
    PRESETS,
    TSIRELSON,
    E91Params,
    di_key_rate_from_chsh,
    e91_key_rate,
    werner_chsh,
)

GYS = PRESETS["gys2004"]


def _werner_rate(q: float, ec_efficiency: float = 1.0) -> float:
    return float(di_key_rate_from_chsh(werner_chsh(q), q, ec_efficiency=ec_efficiency)[0])


def _as_bbm92(params: E91Params) -> BBM92Params:
    shared = {f.name for f in fields(BBM92Params)}
    return BBM92Params(**{name: getattr(params, name) for name in shared})


def _reach_km(params: E91Params, upper_km: float = 1000.0, tol_km: float = 1e-3) -> float:
    lo, hi = 0.0, upper_km
    while hi - lo > tol_km:
        mid = 0.5 * (lo + hi)
        if e91_key_rate(params, [mid]).key_rate_per_pulse[0] > 0.0:
            lo = mid
        else:
            hi = mid
    return lo


# --- the Acin et al. formula ------------------------------------------------------------------


def test_perfect_correlations_and_maximal_violation_give_one_bit() -> None:
    # Acin et al. 2007: r = 1 - h(Q) - h((1 + sqrt((S/2)^2 - 1))/2); Q = 0, S = 2 sqrt(2) -> 1.
    assert di_key_rate_from_chsh(TSIRELSON, 0.0)[0] == pytest.approx(1.0, abs=1e-12)


def test_threshold_for_the_depolarised_state_is_7_1_percent() -> None:
    # Acin et al. 2007: for S = 2 sqrt(2)(1 - 2Q) (depolarising noise) the collective-attack rate is
    # positive up to Q ~ 7.1 %, against 11 % for BB84 with the same noise (1 - 2h(Q),
    # Shor-Preskill, PRL 85, 441 (2000)).
    threshold = brentq(_werner_rate, 1e-3, 0.2, xtol=1e-12)
    assert threshold == pytest.approx(0.071, abs=1e-3)
    bb84 = brentq(lambda q: 1 - 2 * float(binary_entropy(q)), 1e-3, 0.3, xtol=1e-12)
    assert bb84 == pytest.approx(0.110, abs=1e-3)
    assert threshold < bb84
    # With f = 1.22 error correction the threshold drops (regression: 6.39 %).
    lower = brentq(lambda q: _werner_rate(q, 1.22), 1e-3, 0.2, xtol=1e-12)
    assert lower == pytest.approx(0.0639, abs=2e-4)


@pytest.mark.parametrize("q", [0.01, 0.03, 0.05])
def test_di_rate_is_below_bb84_at_equal_qber(q: float) -> None:
    # Acin et al. 2007: device independence costs rate against the BB84 bound 1 - 2h(Q).
    assert _werner_rate(q) < 1 - 2 * float(binary_entropy(q))


def test_no_bell_violation_no_key() -> None:
    # S <= 2: Eve's term is one full bit, so r = -h(Q) <= 0.
    s = np.array([0.0, 1.5, 2.0])
    q = np.array([0.0, 0.02, 0.1])
    np.testing.assert_allclose(di_key_rate_from_chsh(s, q), -binary_entropy(q), atol=1e-15)


def test_rate_increases_with_violation_and_decreases_with_qber() -> None:
    s = np.linspace(2.0, TSIRELSON, 50)
    assert np.all(np.diff(di_key_rate_from_chsh(s, 0.02)) > 0)
    q = np.linspace(0.0, 0.5, 50)
    assert np.all(np.diff(di_key_rate_from_chsh(2.7, q)) < 0)


@pytest.mark.parametrize(
    ("s", "q", "name"),
    [
        (3.0, 0.0, "chsh_value"),
        (-0.1, 0.0, "chsh_value"),
        (math.nan, 0.0, "chsh_value"),
        (2.5, -0.01, "qber"),
        (2.5, 1.2, "qber"),
    ],
)
def test_di_formula_rejects_out_of_range(s: float, q: float, name: str) -> None:
    with pytest.raises(ParameterError) as info:
        di_key_rate_from_chsh(s, q)
    assert info.value.name == name


# --- the distance model -----------------------------------------------------------------------


def test_link_chsh_and_rate_follow_the_stated_model() -> None:
    # S = 2 sqrt(2)(1 - 2 E_lambda) from the Ma-Fung-Lo QBER; R = q Q_lambda r(S, E_lambda).
    params = replace(GYS, mu=0.06)
    lengths = np.array([0.0, 80.0, 160.0])
    curve = e91_key_rate(params, lengths)
    eta = 0.045 * 10 ** (-0.021 * lengths / 2)
    gain, qber = pdc_gain_and_qber(0.03, eta, eta, 1.7e-6, 1.7e-6, 0.033)
    chsh = TSIRELSON * (1 - 2 * qber)
    np.testing.assert_allclose(curve.qber, qber)
    np.testing.assert_allclose(curve.extra["chsh"], chsh)
    r = di_key_rate_from_chsh(chsh, qber, ec_efficiency=1.22)
    np.testing.assert_allclose(curve.key_rate_per_pulse, np.maximum(0.5 * gain * r, 0.0))
    assert curve.protocol == "e91"


def test_presets() -> None:
    assert DEFAULT_PRESET in PRESETS
    # The link of the bbm92 "gys2004" preset: GYS values of Ma, Qi, Zhao, Lo 2005, Table I.
    assert _as_bbm92(GYS) == BBM92Params()
    assert GYS.sifting_factor == 0.5


def test_dark_counts_and_multipairs_lower_chsh() -> None:
    # Multi-pairs: more pairs per pulse -> higher QBER -> lower S (at fixed distance).
    lengths = np.array([50.0])
    s = [e91_key_rate(replace(GYS, mu=mu), lengths).extra["chsh"][0] for mu in (0.01, 0.1, 0.5)]
    assert s[0] > s[1] > s[2]
    # Background: S falls with distance and drops below the local bound 2 far out.
    far = e91_key_rate(replace(GYS, mu=0.05), np.array([0.0, 200.0, 400.0]))
    assert far.extra["chsh"][0] > far.extra["chsh"][1] > 2.0 > far.extra["chsh"][2]


def test_di_reach_is_shorter_than_bbm92() -> None:
    # Regression (this model, GYS link, source in the middle): DI-E91 254.8 km vs BBM92 286.5 km;
    # the DI rate needs E below 6.4 % (f = 1.22) instead of about 11 %.
    e91 = _reach_km(GYS)
    assert e91 == pytest.approx(254.8, abs=0.5)
    assert e91 < 286.5
    # Without background there is no maximum distance.
    assert e91_key_rate(PRESETS["ideal-detectors"], [2000.0]).key_rate_per_pulse[0] > 0.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sifting_factor", 1.5),
        ("source_position", 2.0),
        ("detector_efficiency", -0.5),
        ("dark_count_prob", 1.1),
        ("misalignment_error", -0.01),
        ("ec_efficiency", 0.5),
        ("mu", -1.0),
    ],
)
def test_bad_parameters_raise(name: str, value: float) -> None:
    with pytest.raises(ParameterError) as info:
        replace(GYS, **{name: value})
    assert info.value.name == name


# --- properties -------------------------------------------------------------------------------

params_strategy = st.builds(
    E91Params,
    loss_db_per_km=st.floats(0.15, 0.5),
    extra_loss_db=st.floats(0.0, 10.0),
    detector_efficiency=st.floats(0.01, 1.0),
    dark_count_prob=st.one_of(st.just(0.0), st.floats(1e-9, 1e-3)),
    misalignment_error=st.floats(0.0, 0.06),
    ec_efficiency=st.floats(1.0, 1.5),
    source_position=st.floats(0.0, 1.0),
    sifting_factor=st.just(0.5),
    mu=st.one_of(st.none(), st.floats(1e-3, 2.0)),
)
lengths_strategy = st.lists(st.floats(0.0, 400.0), min_size=2, max_size=12).map(
    lambda xs: np.sort(np.array(xs))
)


@settings(max_examples=60, deadline=None)
@given(params=params_strategy, lengths=lengths_strategy)
def test_rate_nonnegative_nonincreasing_below_plob_and_bbm92(
    params: E91Params, lengths: np.ndarray
) -> None:
    curve = e91_key_rate(params, lengths)
    rate = curve.key_rate_per_pulse
    assert np.all(rate >= 0.0)
    assert np.all(np.diff(rate) <= 1e-9 * rate[:-1] + 1e-300)
    with np.errstate(divide="ignore"):
        plob = -np.log1p(-curve.transmittance) / math.log(2.0)
    assert np.all(rate <= plob)
    assert np.all((curve.extra["chsh"] >= 0.0) & (curve.extra["chsh"] <= TSIRELSON))
    # Same link and sifting: the DI rate never beats BBM92 (chi(S) >= h(Q) for S = S_Werner(Q)).
    bbm92 = bbm92_key_rate(_as_bbm92(params), lengths).key_rate_per_pulse
    assert np.all(rate <= bbm92 * (1 + 1e-9) + 1e-300)


@settings(max_examples=40, deadline=None)
@given(
    s=st.floats(2.0, TSIRELSON),
    q=st.floats(0.0, 0.5),
    f=st.floats(1.0, 1.5),
)
def test_di_rate_at_most_one_bit(s: float, q: float, f: float) -> None:
    r = float(di_key_rate_from_chsh(s, q, ec_efficiency=f)[0])
    assert r <= 1.0 + 1e-12
    assert r <= 1.0 - float(binary_entropy(q)) * f + 1e-12
