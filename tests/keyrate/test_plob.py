"""PLOB bound against Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun. 8, 15043 (2017)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qnetkit.keyrate.plob import (
    PLOB_CAP_BITS_PER_USE,
    PRESETS,
    plob_bound,
    plob_bound_capped,
    plob_key_rate,
)


def test_high_loss_limit_is_1_44_eta() -> None:
    # Pirandola et al. 2017, Eq. (19) and text: -log2(1 - eta) ~ eta / ln 2 ~ 1.44 eta.
    eta = np.array([1e-3, 1e-5, 1e-9])
    np.testing.assert_allclose(plob_bound(eta) / eta, 1.0 / math.log(2.0), rtol=1e-3)
    assert 1.0 / math.log(2.0) == pytest.approx(1.44, abs=0.005)


def test_exact_values() -> None:
    assert plob_bound(0.5) == pytest.approx(1.0, rel=1e-15)
    assert plob_bound(0.75) == pytest.approx(2.0, rel=1e-15)
    assert plob_bound(0.0) == 0.0
    assert math.isinf(float(plob_bound(1.0)))


def test_fiber_curve_at_100_km() -> None:
    # 0.2 dB/km x 100 km = 20 dB: eta = 0.01, bound = -log2(0.99) = 0.0145 bits per use.
    curve = plob_key_rate(PRESETS["ideal"], [100.0])
    assert curve.transmittance[0] == pytest.approx(0.01, rel=1e-12)
    assert curve.key_rate_per_pulse[0] == pytest.approx(-math.log2(0.99), rel=1e-12)
    assert math.isnan(curve.qber[0])


@given(st.floats(0.0, 0.999999), st.floats(0.0, 0.999999))
def test_bound_is_monotone_in_transmittance(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert plob_bound(lo) <= plob_bound(hi)


def test_capped_bound_is_finite_at_zero_km_and_exact_elsewhere() -> None:
    # -log2(1 - eta) (Pirandola et al. 2017, Eq. (19)) is infinite at eta = 1 (0 km, lossless):
    # the capped form shows PLOB_CAP_BITS_PER_USE there and flags it; elsewhere it is the bound.
    bound, clamped = plob_bound_capped([1.0, 0.9, 1.0 - 2.0**-10, 0.0])
    assert bound[0] == PLOB_CAP_BITS_PER_USE == 10.0
    assert bound[1] == pytest.approx(-math.log2(0.1), rel=1e-14)
    assert bound[2] == pytest.approx(10.0, rel=1e-12)  # exactly at the cap: not clamped
    assert bound[3] == 0.0
    assert clamped.tolist() == [True, False, False, False]
    assert np.all(np.isfinite(bound))


def test_capped_bound_takes_a_lower_cap() -> None:
    bound, clamped = plob_bound_capped([0.5, 0.75], cap_bits_per_use=1.5)
    assert bound.tolist() == [pytest.approx(1.0), 1.5]
    assert clamped.tolist() == [False, True]
