"""Raman noise from coexisting classical channels.

Model: Eraerds, Walenta, Legre, Gisin, Zbinden, New J. Phys. 12, 063027 (2010) (arXiv:0912.1798),
forward P_out * beta * L * dlambda and backward P_out * beta * dlambda * sinh(alpha L) / alpha;
Patel et al., Phys. Rev. X 2, 041010 (2012). The papers' own measured noise numbers could not be
read here (only abstracts were reachable), so the checks are the model's closed forms, its
asymptotics and a hand-computed worked example whose inputs are stated below.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from qnetkit.errors import ParameterError
from qnetkit.physics.raman import (
    DB_TO_NEPER,
    ClassicalChannel,
    RamanNoiseModel,
    attenuation_per_km,
    co_propagating_raman_power_w,
    counter_propagating_raman_power_w,
    dbm_to_watt,
    photon_energy_j,
    photon_rate_to_counts_per_gate,
    power_to_photon_rate,
    raman_noise_power_w,
    watt_to_dbm,
)

BETA = 3.0e-9  # per km per nm: order of the C-band effective cross-sections used in the literature
ALPHA_DB = 0.2


def test_dbm_conversions() -> None:
    np.testing.assert_allclose(dbm_to_watt([0.0, 10.0, -30.0]), [1e-3, 1e-2, 1e-6], rtol=1e-12)
    np.testing.assert_allclose(watt_to_dbm([1e-3, 2e-3]), [0.0, 3.0103], atol=1e-4)


def test_attenuation_coefficient() -> None:
    # 0.2 dB/km = 0.04605 /km: e^{-alpha * 50 km} = 0.1, the 10 dB of 50 km of fibre.
    alpha = attenuation_per_km(0.2)
    assert alpha == pytest.approx(0.2 * math.log(10) / 10)
    assert math.exp(-alpha * 50.0) == pytest.approx(0.1, rel=1e-12)


def test_backward_equals_eraerds_sinh_form() -> None:
    # Eraerds et al. (2010) write the backward power with the pump's OUTPUT power,
    # P_out * beta * dlambda * sinh(alpha L) / alpha,
    # identical to P_in * beta * dlambda * (1 - e^{-2 alpha L}) / (2 alpha).
    length = np.array([0.1, 1.0, 10.0, 25.0, 50.0, 100.0])
    alpha = ALPHA_DB * DB_TO_NEPER
    p_in, dl = 1e-3, 0.1
    p_out = p_in * np.exp(-alpha * length)
    expected = p_out * BETA * dl * np.sinh(alpha * length) / alpha
    got = counter_propagating_raman_power_w(p_in, length, BETA, dl, ALPHA_DB)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_forward_is_p_out_beta_l_dlambda() -> None:
    length = np.array([0.0, 5.0, 25.0, 80.0])
    alpha = ALPHA_DB * DB_TO_NEPER
    expected = 1e-3 * np.exp(-alpha * length) * BETA * length * 0.6
    got = co_propagating_raman_power_w(1e-3, length, BETA, 0.6, ALPHA_DB)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0)


def test_short_fibre_both_directions_grow_like_beta_l() -> None:
    # Lossless limit: every km adds P_in * beta * dlambda in either direction.
    length = np.array([1e-4, 1e-3])
    for model in (co_propagating_raman_power_w, counter_propagating_raman_power_w):
        np.testing.assert_allclose(
            model(1e-3, length, BETA, 1.0, ALPHA_DB), 1e-3 * BETA * length, rtol=1e-3
        )


def test_counter_propagating_saturates_at_beta_dlambda_p_over_2alpha() -> None:
    alpha = ALPHA_DB * DB_TO_NEPER
    limit = BETA * 1.0 * 1e-3 / (2.0 * alpha)
    got = counter_propagating_raman_power_w(1e-3, [100.0, 200.0, 1000.0], BETA, 1.0, ALPHA_DB)
    # 100 km at 0.2 dB/km is 40 dB for the round trip: exactly 1e-4 short of the limit.
    assert got[0] == pytest.approx(limit * (1.0 - 1e-4), rel=1e-12)
    np.testing.assert_allclose(got[1:], limit, rtol=2e-8)
    assert np.all(got <= limit)


def test_co_propagating_peaks_at_one_over_alpha() -> None:
    alpha = ALPHA_DB * DB_TO_NEPER  # 1/alpha = 21.7 km for 0.2 dB/km
    length = np.linspace(0.0, 100.0, 100_001)
    power = co_propagating_raman_power_w(1e-3, length, BETA, 1.0, ALPHA_DB)
    assert length[np.argmax(power)] == pytest.approx(1.0 / alpha, abs=2e-3)
    assert power.max() == pytest.approx(1e-3 * BETA / (math.e * alpha), rel=1e-9)


def test_worked_example_counts_per_gate() -> None:
    """Hand-computed example (inputs chosen here, not a paper's): 0 dBm co-propagating over
    25 km of 0.2 dB/km fibre, beta = 3e-9 /(km nm), 0.6 nm filter at 1550 nm, 10 % detector,
    1 ns gate, 1 dB demultiplexer loss."""
    p_out = 1e-3 * 10 ** (-0.2 * 25 / 10)  # 0.3162 mW
    p_noise = p_out * 3e-9 * 25 * 0.6  # 1.423e-11 W (-78.5 dBm)
    energy = 6.62607015e-34 * 299792458.0 / 1550e-9  # 1.2816e-19 J
    counts = p_noise / energy * 10 ** (-0.1) * 0.10 * 1e-9
    model = RamanNoiseModel(
        quantum_wavelength_nm=1550.0,
        filter_bandwidth_nm=0.6,
        loss_db_per_km=0.2,
        channels=(ClassicalChannel(launch_power_dbm=0.0, raman_cross_section_per_km_per_nm=3e-9),),
        receiver_loss_db=1.0,
    )
    assert float(model.noise_power_w(25.0)) == pytest.approx(p_noise, rel=1e-12)
    assert p_noise == pytest.approx(1.4230e-11, rel=1e-4)
    assert float(model.photon_rate_per_s(25.0)) == pytest.approx(1.1104e8, rel=1e-4)
    assert float(model.counts_per_gate(25.0, 0.10, 1e-9)) == pytest.approx(counts, rel=1e-12)
    assert counts == pytest.approx(8.820e-3, rel=1e-3)


def test_photon_energy_at_1550_nm() -> None:
    # h c / 1550 nm = 1.2816e-19 J (0.8 eV): 1 pW is 7.80e6 photons/s.
    assert photon_energy_j(1550.0) == pytest.approx(1.28155e-19, rel=1e-5)
    assert float(power_to_photon_rate(1e-12, 1550.0)) == pytest.approx(7.8030e6, rel=1e-4)


def test_counts_per_gate_scaling() -> None:
    got = photon_rate_to_counts_per_gate([1e6, 2e6], 0.2, 1e-9, receiver_loss_db=3.0)
    np.testing.assert_allclose(got, np.array([1e6, 2e6]) * 0.2 * 1e-9 * 10**-0.3)


def test_several_channels_add_and_directions_differ() -> None:
    co = ClassicalChannel(launch_power_dbm=0.0, raman_cross_section_per_km_per_nm=BETA)
    counter = ClassicalChannel(
        launch_power_dbm=3.0, raman_cross_section_per_km_per_nm=2 * BETA, direction="counter"
    )
    length = np.array([10.0, 50.0])
    total = raman_noise_power_w([co, counter], length, 1.0, ALPHA_DB)
    expected = co_propagating_raman_power_w(
        1e-3, length, BETA, 1.0, ALPHA_DB
    ) + counter_propagating_raman_power_w(float(dbm_to_watt(3.0)), length, 2 * BETA, 1.0, ALPHA_DB)
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    assert raman_noise_power_w([], length, 1.0, ALPHA_DB).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("direction", ["co", "counter"])
def test_unequal_attenuation_matches_numerical_integral(direction: str) -> None:
    # 1550 nm pump (0.2 dB/km) into a 1310 nm quantum channel (0.33 dB/km): integrate the
    # scattered power along the fibre directly.
    a_q, a_c = 0.33 * DB_TO_NEPER, 0.2 * DB_TO_NEPER
    length = 40.0
    if direction == "co":
        integrand = lambda z: math.exp(-a_c * z) * math.exp(-a_q * (length - z))  # noqa: E731
        got = co_propagating_raman_power_w(1e-3, length, BETA, 1.0, 0.33, 0.2)
    else:
        integrand = lambda z: math.exp(-(a_c + a_q) * z)  # noqa: E731
        got = counter_propagating_raman_power_w(1e-3, length, BETA, 1.0, 0.33, 0.2)
    expected = 1e-3 * BETA * quad(integrand, 0.0, length)[0]
    assert float(got) == pytest.approx(expected, rel=1e-9)


def test_validation_names_the_field() -> None:
    with pytest.raises(ParameterError) as err:
        ClassicalChannel(0.0, BETA, direction="sideways")  # type: ignore[arg-type]
    assert err.value.name == "direction"
    with pytest.raises(ParameterError) as err:
        ClassicalChannel(0.0, -1e-9)
    assert err.value.name == "raman_cross_section_per_km_per_nm"
    with pytest.raises(ParameterError) as err:
        ClassicalChannel(float("nan"), BETA)
    assert err.value.name == "launch_power_dbm"
    with pytest.raises(ParameterError) as err:
        RamanNoiseModel(quantum_wavelength_nm=1550.0, filter_bandwidth_nm=-0.1)
    assert err.value.name == "filter_bandwidth_nm"
    with pytest.raises(ParameterError) as err:
        co_propagating_raman_power_w(1e-3, [-1.0], BETA, 1.0, 0.2)
    assert err.value.name == "length_km"
    with pytest.raises(ParameterError) as err:
        RamanNoiseModel(1550.0, 0.6).counts_per_gate(10.0, 1.5, 1e-9)
    assert err.value.name == "detector_efficiency"


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 300.0), st.floats(0.0, 300.0), st.floats(0.01, 1.0))
def test_counter_noise_monotone_and_above_co(a: float, b: float, loss: float) -> None:
    lo, hi = sorted((a, b))
    back = counter_propagating_raman_power_w(1e-3, [lo, hi], BETA, 1.0, loss)
    fwd = co_propagating_raman_power_w(1e-3, [lo, hi], BETA, 1.0, loss)
    assert 0.0 <= back[0] <= back[1] * (1 + 1e-12)
    # (1 - e^{-2x})/2 - x e^{-x} >= 0: backward noise never below forward for equal loss.
    assert np.all(fwd <= back * (1 + 1e-12))
    assert np.all(fwd >= 0.0)


def test_excess_noise_matches_kumar_qin_alleaume_2015() -> None:
    """Published anchor, as quoted by plutoniumm/qkd, test/impairments.py (``test_raman_anchor``).

    Kumar, Qin, Alleaume, New J. Phys. 17, 043027 (2015), arXiv:1412.1403, Eq. (6): one classical
    channel at 0 dBm, 25 km of 0.2 dB/km fibre, beta = 3e-9 /(km nm) (their worst C-band
    coefficient), quantum channel at 1531.12 nm behind a 0.5 dB add/drop, gives a Raman excess
    noise at Bob of 1.3e-3 SNU co-propagating and 1.6e-3 SNU counter-propagating.

    In shot-noise units the excess noise of unpolarised Raman light is its photon number per
    temporal-spectral mode summed over both polarisations (the local oscillator keeps one, and a
    thermal photon adds 2 SNU): xi = P_noise / (h nu dnu) * T_add/drop, with dnu = c dlambda /
    lambda^2 the filter's width in Hz, so the filter width cancels. Tolerance 4%: the paper prints
    two significant figures.
    """
    wavelength_nm, filter_nm = 1531.12, 0.1
    filter_hz = 299_792_458.0 * (filter_nm * 1e-9) / (wavelength_nm * 1e-9) ** 2
    add_drop = 10.0 ** (-0.5 / 10.0)
    for model, published in (
        (co_propagating_raman_power_w, 1.3e-3),
        (counter_propagating_raman_power_w, 1.6e-3),
    ):
        noise_w = model(1e-3, 25.0, 3e-9, filter_nm, 0.2)
        xi_snu = float(power_to_photon_rate(noise_w, wavelength_nm)) / filter_hz * add_drop
        assert xi_snu == pytest.approx(published, rel=0.04)
