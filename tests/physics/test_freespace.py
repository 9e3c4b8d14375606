"""Free-space / satellite downlink budget, checked against Liao et al., Nature 549, 43 (2017).

Liao et al. figures used here (arXiv:1707.00542, "Experimental challenges and solutions" and
"Experimental procedure and results"; read through the quotations in a public validation module,
the paper itself was not reachable from this machine):
- 300 mm transmitter, 1 m receiver, ~10 urad beam, "diffraction loss ... 22 dB at 1200 km";
- at 1200 km, atmospheric absorption and turbulence 3-8 dB, pointing loss below 3 dB;
- ground optical efficiency ~16 %, detector efficiency 50 %;
- 848.6 nm, 100 MHz, intensities 0.8 / 0.1 / 0 sent with probabilities 50 / 25 / 25 %;
- 3,551,136 detections and 1,671,072 sifted bits on 19 Dec 2016;
- sifted key rate ~12 kbit/s at 645 km falling to ~1 kbit/s at 1200 km.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from qnetkit.errors import ParameterError
from qnetkit.physics.detectors import click_probability_coherent
from qnetkit.physics.freespace import (
    EARTH_RADIUS_KM,
    FreeSpaceLink,
    SatelliteDownlink,
    air_mass,
    atmospheric_transmittance,
    beam_radius_m,
    diffraction_limited_divergence_rad,
    elevation_deg_from_range,
    gaussian_capture_fraction,
    geometric_transmittance,
    micius_downlink,
    slant_range_km,
)

# Liao et al. 2017, as listed in the module docstring.
MICIUS_RATE_HZ = 100e6
MICIUS_MU = (0.8, 0.1, 0.0)
MICIUS_P = (0.5, 0.25, 0.25)
MICIUS_SIFT_FRACTION = 1_671_072 / 3_551_136
MICIUS_SIFTED_RATE_BPS = {645.0: 12e3, 1200.0: 1e3}
MICIUS_BUDGET_1200_KM_DB = (22.0 + 3.0 + 10.97, 22.0 + 8.0 + 3.0 + 10.97)


def implied_total_loss_db(sifted_rate_bps: float) -> float:
    """End-to-end loss that turns Micius's source into the measured sifted rate (noise ignored,
    so it is a lower bound on the true loss)."""

    def excess(eta: float) -> float:
        gain = sum(
            p * float(click_probability_coherent(mu, eta, 0.0))
            for mu, p in zip(MICIUS_MU, MICIUS_P, strict=True)
        )
        return MICIUS_RATE_HZ * gain * MICIUS_SIFT_FRACTION - sifted_rate_bps

    return -10.0 * math.log10(brentq(excess, 1e-12, 1.0, xtol=1e-18))


def test_slant_range_geometry() -> None:
    assert float(slant_range_km(500.0, 90.0)) == pytest.approx(500.0, rel=1e-12)
    horizon = math.sqrt((EARTH_RADIUS_KM + 500.0) ** 2 - EARTH_RADIUS_KM**2)
    assert float(slant_range_km(500.0, 0.0)) == pytest.approx(horizon, rel=1e-12)
    assert horizon == pytest.approx(2574.0, abs=1.0)
    # A 500 km orbit is 645 km away at ~49 deg and 1200 km away at ~19.8 deg elevation.
    np.testing.assert_allclose(
        elevation_deg_from_range(500.0, [645.0, 1200.0]), [49.02, 19.81], atol=0.01
    )


@settings(max_examples=60, deadline=None)
@given(st.floats(200.0, 2000.0), st.floats(0.0, 90.0))
def test_range_elevation_roundtrip(altitude_km: float, elevation: float) -> None:
    distance = slant_range_km(altitude_km, elevation)
    assert altitude_km * (1 - 1e-9) <= float(distance)
    back = float(elevation_deg_from_range(altitude_km, distance))
    # Range is flat in elevation at the zenith (d ~ h + c (90 - e)^2), so the inverse can only be
    # as good as sqrt(rounding) there; compare where it is well conditioned, and in range.
    assert float(slant_range_km(altitude_km, back)) == pytest.approx(float(distance), rel=1e-12)
    if elevation < 89.0:
        assert back == pytest.approx(elevation, abs=1e-6)


def test_air_mass_models() -> None:
    np.testing.assert_allclose(air_mass([90.0, 30.0]), [1.0, 2.0], rtol=1e-12)
    # Spherical shell: equal to the secant near zenith, finite at the horizon,
    # sqrt(2 R / H + 1) = 46.1 for a 6 km scale height.
    spherical = air_mass([90.0, 60.0, 0.0], model="spherical", atmosphere_scale_height_km=6.0)
    assert spherical[0] == pytest.approx(1.0, rel=1e-12)
    assert spherical[1] == pytest.approx(1.0 / math.sin(math.radians(60.0)), rel=1e-3)
    assert spherical[2] == pytest.approx(math.sqrt(2 * EARTH_RADIUS_KM / 6.0 + 1.0), rel=1e-12)
    assert math.isinf(float(air_mass(0.0)))
    assert float(atmospheric_transmittance(0.8, 30.0)) == pytest.approx(0.64, rel=1e-12)


def test_gaussian_capture_and_beam_growth() -> None:
    # Aperture radius equal to the 1/e^2 radius catches 1 - e^{-2} = 86.5 %.
    assert float(gaussian_capture_fraction(2.0, 1.0)) == pytest.approx(1 - math.exp(-2), rel=1e-12)
    assert float(beam_radius_m(1000.0, 10e-6)) == pytest.approx(5.0, rel=1e-12)
    assert float(beam_radius_m(0.0, 10e-6, waist_radius_m=0.15)) == pytest.approx(0.15)
    # Gaussian far-field full angle 2 lambda / (pi w0): 848.6 nm from a 0.15 m waist = 3.6 urad.
    assert diffraction_limited_divergence_rad(848.6, 0.15) == pytest.approx(3.60e-6, rel=1e-3)


def test_small_aperture_gaussian_is_twice_the_tophat() -> None:
    # On axis a Gaussian beam is twice as bright as a uniform disc of diameter theta L.
    gauss = geometric_transmittance([1000.0, 5000.0], 20e-6, 0.1, model="gaussian")
    tophat = geometric_transmittance([1000.0, 5000.0], 20e-6, 0.1, model="tophat")
    np.testing.assert_allclose(gauss / tophat, 2.0, rtol=1e-3)
    assert float(geometric_transmittance(1.0, 1e-6, 1.0, model="tophat")) == 1.0


def test_micius_diffraction_loss_at_1200_km_is_22_db() -> None:
    # Liao et al. 2017: ~10 urad beam, 1 m receiver, "diffraction loss ... 22 dB at 1200 km".
    link = micius_downlink().link
    assert float(link.geometric_loss_db(1200.0)) == pytest.approx(22.0, abs=0.5)
    # The beam "about 10 m" wide at 1200 km: 0.3 m + 10 urad x 1200 km = 12.3 m.
    assert link.tx_aperture_diameter_m + link.beam_divergence_rad * 1.2e6 == pytest.approx(12.3)


def test_micius_budget_at_1200_km_inside_published_ranges() -> None:
    budget = micius_downlink().budget_at_range(1200.0)
    assert 3.0 <= float(budget.atmospheric_loss_db) <= 8.0
    assert budget.pointing_loss_db <= 3.0
    assert budget.rx_optics_loss_db + budget.detector_loss_db == pytest.approx(10.97, abs=0.01)
    low, high = MICIUS_BUDGET_1200_KM_DB
    assert low <= float(budget.total_loss_db) <= high


@pytest.mark.parametrize("range_km", [645.0, 1200.0])
def test_micius_total_loss_matches_measured_sifted_rate(range_km: float) -> None:
    """Liao et al. 2017: ~12 kbit/s sifted at 645 km, ~1 kbit/s at 1200 km. The loss those rates
    imply for the published source is 32.2 dB and 43.0 dB; the budget is within 2.5 dB."""
    implied = implied_total_loss_db(MICIUS_SIFTED_RATE_BPS[range_km])
    assert implied == pytest.approx({645.0: 32.2, 1200.0: 43.0}[range_km], abs=0.05)
    model = float(micius_downlink().total_loss_db_at_range(range_km))
    assert model == pytest.approx(implied, abs=2.5)


def test_micius_range_dependence_is_mostly_geometric() -> None:
    """From 645 km to 1200 km the far-field geometric loss grows by 20 log10(1200/645) = 5.4 dB;
    the air mass (1.32 -> 2.95) adds the rest. The measured rates imply 10.8 dB in total."""
    downlink = micius_downlink()
    near, far = downlink.budget_at_range(645.0), downlink.budget_at_range(1200.0)
    geometric = float(far.geometric_loss_db - near.geometric_loss_db)
    atmospheric = float(far.atmospheric_loss_db - near.atmospheric_loss_db)
    assert geometric == pytest.approx(20 * math.log10(1200 / 645), abs=0.2)
    assert geometric > atmospheric > 0.0
    total = float(far.total_loss_db - near.total_loss_db)
    assert total == pytest.approx(geometric + atmospheric, rel=1e-12)
    measured = implied_total_loss_db(1e3) - implied_total_loss_db(12e3)
    assert measured == pytest.approx(10.8, abs=0.05)
    assert total == pytest.approx(measured, abs=2.0)


def test_budget_terms_add_up() -> None:
    link = FreeSpaceLink(
        wavelength_nm=850.0,
        beam_divergence_rad=20e-6,
        tx_aperture_diameter_m=0.1,
        rx_aperture_diameter_m=0.5,
        zenith_transmittance=0.9,
        pointing_loss_db=1.0,
        tx_optics_loss_db=2.0,
        rx_optics_loss_db=3.0,
        detector_loss_db=1.5,
    )
    budget = link.budget([500.0, 1000.0], 45.0)
    expected = budget.geometric_loss_db + budget.atmospheric_loss_db + 7.5
    np.testing.assert_allclose(budget.total_loss_db, expected)
    np.testing.assert_allclose(budget.transmittance, 10 ** (-expected / 10))
    np.testing.assert_allclose(
        budget.atmospheric_loss_db, -10 * math.log10(0.9) * math.sqrt(2), rtol=1e-12
    )
    np.testing.assert_allclose(link.transmittance([500.0, 1000.0], 45.0), budget.transmittance)


def test_satellite_budget_at_elevation_matches_range() -> None:
    downlink = micius_downlink()
    by_elevation = downlink.budget_at_elevation([30.0, 60.0]).total_loss_db
    by_range = downlink.budget_at_range(downlink.slant_range_km([30.0, 60.0])).total_loss_db
    np.testing.assert_allclose(by_elevation, by_range, rtol=1e-9)


def test_validation_names_the_field() -> None:
    kwargs = {
        "wavelength_nm": 850.0,
        "beam_divergence_rad": 10e-6,
        "tx_aperture_diameter_m": 0.3,
        "rx_aperture_diameter_m": 1.0,
    }
    with pytest.raises(ParameterError) as err:
        FreeSpaceLink(**kwargs, zenith_transmittance=1.2)  # type: ignore[arg-type]
    assert err.value.name == "zenith_transmittance"
    with pytest.raises(ParameterError) as err:
        FreeSpaceLink(**kwargs, geometric_model="cone")  # type: ignore[arg-type]
    assert err.value.name == "geometric_model"
    with pytest.raises(ParameterError) as err:
        SatelliteDownlink(link=micius_downlink().link, altitude_km=-1.0)
    assert err.value.name == "altitude_km"
    with pytest.raises(ParameterError) as err:
        slant_range_km(500.0, 95.0)
    assert err.value.name == "elevation_deg"
    with pytest.raises(ParameterError) as err:
        elevation_deg_from_range(500.0, 100.0)
    assert err.value.name == "range_km"


@settings(max_examples=60, deadline=None)
@given(st.floats(1.0, 5000.0), st.floats(1.0, 5000.0), st.sampled_from(["gaussian", "tophat"]))
def test_geometric_transmittance_monotone_in_range(a: float, b: float, model: str) -> None:
    lo, hi = sorted((a, b))
    t = geometric_transmittance([lo, hi], 10e-6, 1.0, 0.3, model)  # type: ignore[arg-type]
    assert 0.0 <= t[1] <= t[0] <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.floats(10.0, 90.0), st.floats(10.0, 90.0))
def test_downlink_loss_falls_with_elevation(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    loss = micius_downlink().budget_at_elevation([lo, hi]).total_loss_db
    assert loss[1] <= loss[0] + 1e-9
    transmittance = micius_downlink().budget_at_elevation([lo, hi]).transmittance
    assert np.all((transmittance >= 0.0) & (transmittance <= 1.0))
