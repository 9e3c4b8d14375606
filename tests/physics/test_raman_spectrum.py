"""The spectrum of the effective Raman cross-section beta(pump, quantum wavelength).

Model: silica's Raman response after Hollenbeck & Cantrell, J. Opt. Soc. Am. B 19, 2886 (2002)
(13-mode fit, Table 1, read second-hand from WUST-FOG/gnlse-python), Stokes factor n + 1 and
anti-Stokes factor n with the Bose-Einstein phonon occupation n, scale anchored to Kumar, Qin,
Alleaume, NJP 17, 043027 (2015) (3e-9 /(km nm) at 1531.12 nm; second-hand, see
tests/physics/test_raman.py). Which checks are published values and which are derived is said
in each test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnetkit.errors import ParameterError
from qnetkit.physics.raman import (
    BOLTZMANN_J_PER_K,
    PLANCK_J_S,
    RAMAN_ANCHOR_BETA_PER_KM_PER_NM,
    ClassicalChannel,
    phonon_occupation,
    raman_cross_section_per_km_per_nm,
    raman_response_im,
)

C_NM_THZ = 299_792.458


def _pump_for_shift(quantum_nm: float, shift_thz: float) -> float:
    """Pump wavelength whose frequency is ``shift_thz`` above the quantum channel's."""
    return C_NM_THZ / (C_NM_THZ / quantum_nm + shift_thz)


def test_gain_peaks_at_13_2_thz() -> None:
    # Published (second-hand): silica's Raman gain peaks at a shift of about 13.2 THz
    # (440 cm^-1) (Agrawal, Nonlinear Fiber Optics, Sec. 8.1; Hollenbeck & Cantrell's fit,
    # Fig. 1, has its maximum there).
    shift = np.linspace(0.01, 40.0, 40_000)
    g = raman_response_im(shift)
    assert shift[np.argmax(g)] == pytest.approx(13.2, abs=0.1)
    # The response is odd in the shift and vanishes at zero shift.
    assert float(raman_response_im(-5.0)) == pytest.approx(-float(raman_response_im(5.0)))
    assert float(raman_response_im(0.0)) == 0.0


def test_anchor_is_reproduced() -> None:
    # Calibration, not a check: the scale is chosen so that this value comes out.
    assert float(raman_cross_section_per_km_per_nm(1550.12, 1531.12)) == pytest.approx(
        RAMAN_ANCHOR_BETA_PER_KM_PER_NM, rel=1e-12)


@pytest.mark.parametrize("shift_thz", [2.0, 5.0, 13.2, 20.0])
def test_anti_stokes_over_stokes_is_the_thermal_factor(shift_thz: float) -> None:
    # Derived: at equal |shift| the anti-Stokes side has n, the Stokes side n + 1, so their
    # ratio is exp(-h shift / k T) (0.121 at 13.2 THz, 300 K), times (f_aS / f_S)^4 for power
    # per nm. The pump is fixed at 1550.12 nm.
    pump = 1550.12
    f_pump = C_NM_THZ / pump
    stokes_nm, anti_nm = C_NM_THZ / (f_pump - shift_thz), C_NM_THZ / (f_pump + shift_thz)
    ratio = float(raman_cross_section_per_km_per_nm(pump, anti_nm)
                  / raman_cross_section_per_km_per_nm(pump, stokes_nm))
    thermal = math.exp(-PLANCK_J_S * shift_thz * 1e12 / (BOLTZMANN_J_PER_K * 300.0))
    assert ratio == pytest.approx(thermal * ((f_pump + shift_thz) / (f_pump - shift_thz)) ** 4,
                                  rel=1e-9)
    if shift_thz == 13.2:
        assert thermal == pytest.approx(0.1211, abs=1e-4)


def test_both_sides_meet_at_small_detuning() -> None:
    # Published (abstract): Li et al., Opt. Express 13, 2236 (2005) measured Raman scattering in
    # fibre down to 0.17 THz on both the Stokes and anti-Stokes sides: it does not vanish near
    # the pump. Derived: Stokes / anti-Stokes = exp(h f / k T) = 1.0276 at 0.17 THz, times
    # ((f_p - 0.17) / (f_p + 0.17))^4 = 0.9930 for power per nm: 1.0204.
    pump = 1550.12
    f_pump = C_NM_THZ / pump
    near = raman_cross_section_per_km_per_nm(pump, [C_NM_THZ / (f_pump - 0.17),
                                                    C_NM_THZ / (f_pump + 0.17)])
    assert near[0] / near[1] == pytest.approx(1.0204, abs=2e-4)
    assert 2e-9 < near[1] < 4e-9  # same order as the anchor, 2.4 THz away
    # Exactly on the pump the limit is taken, not 0 x infinity.
    assert float(raman_cross_section_per_km_per_nm(pump, pump)) == pytest.approx(
        float(near.mean()), rel=0.03)


def test_dwdm_neighbours_are_below_the_stokes_peak() -> None:
    # Published (abstract): da Silva et al., JLT 32, 2332 (2014): in-band classical channels
    # should sit as close as possible to the quantum channel "to avoid the Raman noise peaks".
    quantum = 1550.12
    neighbours = [_pump_for_shift(quantum, 0.1 * k) for k in range(1, 9)]  # 8 x 100 GHz above
    # A pump 13.2 THz above (1451 nm) puts the quantum channel on its Stokes peak.
    peak_pump = _pump_for_shift(quantum, 13.2)
    near = raman_cross_section_per_km_per_nm(neighbours, quantum)
    far = float(raman_cross_section_per_km_per_nm(peak_pump, quantum))
    assert near.max() < 0.5 * far
    # Model values (regression): 2.9-3.4e-9 next door, 8.05e-9 at the peak.
    assert near.min() == pytest.approx(2.88e-9, rel=0.01)
    assert near.max() == pytest.approx(3.42e-9, rel=0.01)
    assert far == pytest.approx(8.05e-9, rel=0.01)


def test_o_band_quantum_beside_c_band_pumps_is_far_quieter() -> None:
    # Qualitative published basis: O-band QKD beside C-band data (e.g. Chapuran et al., NJP 11,
    # 105001 (2009)) because 1310 nm is 35 THz on the anti-Stokes side of 1550 nm, where both the
    # gain (3 % of its peak) and the phonon occupation (exp(-5.67) = 0.0035) are small.
    pumps = [C_NM_THZ / (193.5 + 0.1 * k) for k in range(8)]
    c_band = raman_cross_section_per_km_per_nm(pumps, 1550.12)
    o_band = raman_cross_section_per_km_per_nm(pumps, 1310.0)
    assert float(o_band.sum() / c_band.sum()) < 1e-3
    assert float(o_band.mean()) == pytest.approx(1.49e-12, rel=0.02)  # model value, regression
    # The reverse (1310 nm pump, 1550 nm quantum: Stokes side) is 150 times noisier than that.
    assert float(raman_cross_section_per_km_per_nm(1310.0, 1550.12)) > 100 * float(o_band.mean())


def test_phonon_occupation_and_temperature() -> None:
    # n(13.2 THz, 300 K) = 1 / (e^2.111 - 1) = 0.1378.
    assert float(phonon_occupation(13.2)) == pytest.approx(0.1378, abs=2e-4)
    # Hotter fibre: more anti-Stokes light.
    cold = float(raman_cross_section_per_km_per_nm(1550.12, 1310.0, temperature_k=250.0))
    hot = float(raman_cross_section_per_km_per_nm(1550.12, 1310.0, temperature_k=330.0))
    assert hot > 3 * cold
    with pytest.raises(ParameterError):
        phonon_occupation(1.0, temperature_k=0.0)


def test_channel_from_wavelengths_uses_the_spectrum() -> None:
    ch = ClassicalChannel.at_wavelengths(0.0, 1549.32, 1550.12, "counter", 0.2)
    assert ch.raman_cross_section_per_km_per_nm == pytest.approx(
        float(raman_cross_section_per_km_per_nm(1549.32, 1550.12)))
    assert ch.direction == "counter" and ch.loss_db_per_km == 0.2
    with pytest.raises(ParameterError) as err:
        raman_cross_section_per_km_per_nm(-1.0, 1550.0)
    assert err.value.name == "pump_wavelength_nm"
