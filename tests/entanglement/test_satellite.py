"""Satellite dual-downlink entanglement (qnetkit.entanglement.satellite).

Micius reference: Yin et al., Science 356, 1140 (2017), arXiv:1707.01339. Labels: **abstract**
(1203 km, summed downlink length 1600-2400 km, S = 2.37 +- 0.09, read in the abstract);
**second-hand** (64-82 dB summed two-downlink loss and ~1.1 detected pairs/s as given in the
task brief, 5.9e6 pairs/s at the source and fidelity 0.869 +- 0.085 recalled from the paper's
text; none confirmed from a reachable copy).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnetkit.entanglement.satellite import (
    MICIUS_PAIR_RATE_PER_S,
    MICIUS_SEPARATION_KM,
    DualDownlink,
    PairSource,
    baseline_ranges_km,
    dual_downlink,
    micius_dual_downlink,
    werner_like,
)
from qnetkit.errors import ParameterError
from qnetkit.physics.freespace import EARTH_RADIUS_KM, FreeSpaceLink, SatelliteDownlink

MICIUS = micius_dual_downlink()


def _midpoint_ranges() -> tuple[float, float]:
    ra, rb = baseline_ranges_km(MICIUS_SEPARATION_KM, 500.0)
    return float(ra), float(rb)


def _simple_link(**overrides: float) -> DualDownlink:
    link = FreeSpaceLink(
        wavelength_nm=810.0,
        beam_divergence_rad=10e-6,
        tx_aperture_diameter_m=0.3,
        rx_aperture_diameter_m=1.0,
        geometric_model="tophat",
    )
    down = SatelliteDownlink(link=link, altitude_km=500.0)
    options: dict[str, float] = {
        "background_counts_per_s_a": 0.0,
        "background_counts_per_s_b": 0.0,
        "coincidence_window_s": 0.0,
    }
    options.update(overrides)
    visibility = options.pop("visibility", 0.9)
    return DualDownlink(
        source=PairSource(pair_rate_per_s=1e7, visibility=visibility),
        downlink_a=down,
        downlink_b=down,
        **options,
    )


def test_midpoint_range_law_of_cosines() -> None:
    """3-D chord at the midpoint equals the law of cosines; the sum is the abstract's 1600 km."""
    ra, rb = _midpoint_ranges()
    r, rh = EARTH_RADIUS_KM, EARTH_RADIUS_KM + 500.0
    theta = 0.5 * MICIUS_SEPARATION_KM / r
    expected = math.sqrt(r**2 + rh**2 - 2.0 * r * rh * math.cos(theta))
    assert ra == pytest.approx(expected, rel=1e-12) and rb == pytest.approx(expected, rel=1e-12)
    assert ra + rb == pytest.approx(1600.0, abs=5.0)  # abstract: summed length from 1600 km


def test_pair_rate_is_source_times_both_transmittances() -> None:
    link = _simple_link()
    result = dual_downlink(link, [600.0, 900.0], [1000.0, 700.0])
    eta_a = link.downlink_a.budget_at_range(np.array([600.0, 900.0])).transmittance
    eta_b = link.downlink_b.budget_at_range(np.array([1000.0, 700.0])).transmittance
    np.testing.assert_allclose(result.signal_coincidences_per_s, 1e7 * eta_a * eta_b, rtol=1e-12)
    np.testing.assert_allclose(result.total_loss_db, -10.0 * np.log10(eta_a * eta_b), rtol=1e-12)
    # No background, no window: the delivered pairs keep the source visibility.
    np.testing.assert_allclose(result.visibility, 0.9)
    np.testing.assert_allclose(result.qber, 0.05)
    np.testing.assert_allclose(result.chsh, 0.9 * 2.0 * math.sqrt(2.0))


def test_accidentals_add_white_noise() -> None:
    """R_acc = S_A S_B tau; V_eff = V R_s / (R_s + R_acc)."""
    link = _simple_link(
        background_counts_per_s_a=2000.0,
        background_counts_per_s_b=3000.0,
        coincidence_window_s=2e-9,
    )
    result = dual_downlink(link, 800.0, 800.0)
    eta = float(link.downlink_a.budget_at_range(800.0).transmittance)
    signal = 1e7 * eta * eta
    accidental = (1e7 * eta + 2000.0) * (1e7 * eta + 3000.0) * 2e-9
    assert float(result.accidental_coincidences_per_s) == pytest.approx(accidental, rel=1e-12)
    v = 0.9 * signal / (signal + accidental)
    assert float(result.visibility) == pytest.approx(v, rel=1e-12)
    np.testing.assert_allclose(result.coefficients, werner_like(v), rtol=1e-12)
    # Overwhelming background: no correlation left, QBER 1/2, no Bell violation.
    noisy = dual_downlink(
        _simple_link(
            background_counts_per_s_a=1e9,
            background_counts_per_s_b=1e9,
            coincidence_window_s=1e-6,
        ),
        800.0,
        800.0,
    )
    assert float(noisy.qber) == pytest.approx(0.5, abs=1e-6)
    assert float(noisy.chsh) < 2.0


def test_micius_summed_loss_within_published_range() -> None:
    """Check (no budget parameter tuned): 64-82 dB summed loss (second-hand) over 1600-2400 km."""
    ra, rb = _midpoint_ranges()
    mid = dual_downlink(MICIUS, ra, rb)
    far = dual_downlink(MICIUS, 1200.0, 1200.0)  # summed 2400 km (abstract's upper end)
    assert 64.0 <= float(mid.total_loss_db) <= 82.0
    assert 64.0 <= float(far.total_loss_db) <= 82.0
    assert float(mid.total_loss_db) == pytest.approx(67.1, abs=0.1)  # the model's own value
    assert float(far.total_loss_db) == pytest.approx(80.6, abs=0.1)


def test_micius_pair_rate_near_published() -> None:
    """Check: ~1.1 detected pairs/s (second-hand) against 5.9e6 x eta_A x eta_B at the midpoint."""
    ra, rb = _midpoint_ranges()
    mid = dual_downlink(MICIUS, ra, rb)
    expected = MICIUS_PAIR_RATE_PER_S * 10.0 ** (-float(mid.total_loss_db) / 10.0)
    assert float(mid.signal_coincidences_per_s) == pytest.approx(expected, rel=1e-12)
    assert float(mid.signal_coincidences_per_s) == pytest.approx(1.1, rel=0.1)  # model: 1.14


def test_micius_chsh_calibration_and_fidelity_check() -> None:
    """Calibration: source visibility chosen so S = 2.37 (abstract) at the midpoint.
    Check: fidelity against 0.869 +- 0.085 (second-hand), and S > 2 to 2400 km summed range."""
    ra, rb = _midpoint_ranges()
    mid = dual_downlink(MICIUS, ra, rb)
    assert float(mid.chsh) == pytest.approx(2.37, abs=0.005)
    assert abs(float(mid.fidelity) - 0.869) <= 0.085
    across = np.linspace(0.0, 800.0, 9)  # summed range 1600 -> ~2300 km
    ra_s, rb_s = baseline_ranges_km(MICIUS_SEPARATION_KM, 500.0, 0.0, across)
    pass_result = dual_downlink(MICIUS, ra_s, rb_s)
    assert np.all(pass_result.chsh > 2.0)
    assert np.all(np.diff(pass_result.signal_coincidences_per_s) < 0.0)  # farther, fewer


def test_below_horizon_and_bad_parameters() -> None:
    with pytest.raises(ParameterError):
        baseline_ranges_km(MICIUS_SEPARATION_KM, 500.0, 0.0, 5000.0)
    with pytest.raises(ParameterError):
        PairSource(pair_rate_per_s=0.0)
    with pytest.raises(ParameterError):
        PairSource(pair_rate_per_s=1e6, visibility=1.2)
    other = SatelliteDownlink(link=MICIUS.downlink_a.link, altitude_km=600.0)
    with pytest.raises(ParameterError):
        DualDownlink(source=MICIUS.source, downlink_a=MICIUS.downlink_a, downlink_b=other)
