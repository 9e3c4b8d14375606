"""Spontaneous Raman noise from classical channels sharing a fibre with a quantum channel.

Model of Eraerds et al., New J. Phys. 12, 063027 (2010) and Patel et al., Phys. Rev. X 2, 041010
(2012): noise power in the quantum filter is the classical power times an effective Raman
cross-section beta (per km per nm) times the filter bandwidth, integrated along the fibre.

beta depends on where the quantum channel sits relative to each classical (pump) channel; see
:func:`raman_cross_section_per_km_per_nm` for its spectrum (silica's Raman response after
Hollenbeck & Cantrell 2002, thermal phonon factors, anchored to a published coefficient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import voigt_profile

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.physics.validate import check_nonnegative, check_positive, check_probability

Direction = Literal["co", "counter"]

PLANCK_J_S = 6.62607015e-34
SPEED_OF_LIGHT_M_PER_S = 299_792_458.0
DB_TO_NEPER = math.log(10.0) / 10.0
"""Multiply a loss in dB/km by this to get the power attenuation coefficient alpha in 1/km."""


def _check_finite(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value)):
        raise ParameterError(name, value, "must be a finite number")


def _lengths(length_km: npt.ArrayLike) -> FloatArray:
    length = np.asarray(length_km, dtype=np.float64)
    if np.any(~np.isfinite(length)) or np.any(length < 0.0):
        raise ParameterError("length_km", length_km, "must be finite and >= 0")
    return length


def dbm_to_watt(power_dbm: npt.ArrayLike) -> FloatArray:
    """Optical power in W from dBm (0 dBm = 1 mW)."""
    return np.asarray(1e-3 * np.power(10.0, np.asarray(power_dbm, dtype=np.float64) / 10.0))


def watt_to_dbm(power_w: npt.ArrayLike) -> FloatArray:
    """Optical power in dBm from W (0 W gives -inf)."""
    with np.errstate(divide="ignore"):
        return np.asarray(10.0 * np.log10(np.asarray(power_w, dtype=np.float64) / 1e-3))


def attenuation_per_km(loss_db_per_km: float) -> float:
    """Power attenuation coefficient alpha in 1/km (P(L) = P(0) e^{-alpha L})."""
    check_nonnegative("loss_db_per_km", loss_db_per_km)
    return loss_db_per_km * DB_TO_NEPER


def _effective_length_km(rate_per_km: float, length: FloatArray) -> FloatArray:
    """(1 - e^{-r L}) / r, equal to L when r = 0 (and the series limit near it)."""
    if abs(rate_per_km) < 1e-12:
        return np.asarray(length * (1.0 - 0.5 * rate_per_km * length))
    return np.asarray(-np.expm1(-rate_per_km * length) / rate_per_km)


def _checked_inputs(
    launch_power_w: float,
    length_km: npt.ArrayLike,
    raman_cross_section_per_km_per_nm: float,
    filter_bandwidth_nm: float,
    loss_db_per_km: float,
    classical_loss_db_per_km: float | None,
) -> tuple[FloatArray, float, float]:
    """Validated lengths and the attenuations (1/km) at the quantum and pump wavelengths."""
    check_nonnegative("launch_power_w", launch_power_w)
    check_nonnegative("raman_cross_section_per_km_per_nm", raman_cross_section_per_km_per_nm)
    check_nonnegative("filter_bandwidth_nm", filter_bandwidth_nm)
    alpha_q = attenuation_per_km(loss_db_per_km)
    alpha_c = (
        alpha_q
        if classical_loss_db_per_km is None
        else attenuation_per_km(classical_loss_db_per_km)
    )
    return _lengths(length_km), alpha_q, alpha_c


def co_propagating_raman_power_w(
    launch_power_w: float,
    length_km: npt.ArrayLike,
    raman_cross_section_per_km_per_nm: float,
    filter_bandwidth_nm: float,
    loss_db_per_km: float,
    classical_loss_db_per_km: float | None = None,
) -> FloatArray:
    """Forward Raman noise power (W) reaching the quantum receiver at the far end.

    With equal attenuation alpha at both wavelengths this is Eraerds et al.'s
    P_out * beta * L * dlambda, with P_out = P_in e^{-alpha L}: it grows, peaks at L = 1/alpha and
    then decays. ``classical_loss_db_per_km`` lets the pump attenuate at its own rate (e.g. a
    1550 nm classical channel beside a 1310 nm quantum channel); ``loss_db_per_km`` is the
    attenuation at the quantum wavelength.
    """
    length, alpha_q, alpha_c = _checked_inputs(
        launch_power_w,
        length_km,
        raman_cross_section_per_km_per_nm,
        filter_bandwidth_nm,
        loss_db_per_km,
        classical_loss_db_per_km,
    )
    # Light scattered at z has travelled z as pump and L - z as noise:
    # integral of e^{-alpha_c z} e^{-alpha_q (L - z)} dz.
    span = np.exp(-alpha_q * length) * _effective_length_km(alpha_c - alpha_q, length)
    return np.asarray(
        launch_power_w * raman_cross_section_per_km_per_nm * filter_bandwidth_nm * span
    )


def counter_propagating_raman_power_w(
    launch_power_w: float,
    length_km: npt.ArrayLike,
    raman_cross_section_per_km_per_nm: float,
    filter_bandwidth_nm: float,
    loss_db_per_km: float,
    classical_loss_db_per_km: float | None = None,
) -> FloatArray:
    """Backward Raman noise power (W) at the quantum receiver, which sits at the pump's input.

    Equal attenuation gives P_in * beta * dlambda * (1 - e^{-2 alpha L}) / (2 alpha), i.e.
    Eraerds et al.'s P_out * beta * dlambda * sinh(alpha L) / alpha. It rises monotonically and
    saturates at beta * dlambda * P_in / (2 alpha) for long fibre.
    """
    length, alpha_q, alpha_c = _checked_inputs(
        launch_power_w,
        length_km,
        raman_cross_section_per_km_per_nm,
        filter_bandwidth_nm,
        loss_db_per_km,
        classical_loss_db_per_km,
    )
    # Scattered at z, the noise walks back z: integral of e^{-(alpha_c + alpha_q) z} dz.
    span = _effective_length_km(alpha_c + alpha_q, length)
    return np.asarray(
        launch_power_w * raman_cross_section_per_km_per_nm * filter_bandwidth_nm * span
    )


def photon_energy_j(wavelength_nm: float) -> float:
    """Energy h c / lambda of one photon, in J."""
    check_positive("wavelength_nm", wavelength_nm)
    return PLANCK_J_S * SPEED_OF_LIGHT_M_PER_S / (wavelength_nm * 1e-9)


def power_to_photon_rate(power_w: npt.ArrayLike, wavelength_nm: float) -> FloatArray:
    """Photon flux (photons/s) carried by ``power_w`` at ``wavelength_nm``."""
    return np.asarray(np.asarray(power_w, dtype=np.float64) / photon_energy_j(wavelength_nm))


def photon_rate_to_counts_per_gate(
    photon_rate_per_s: npt.ArrayLike,
    detector_efficiency: float,
    gate_width_s: float,
    receiver_loss_db: float = 0.0,
) -> FloatArray:
    """Mean detected noise counts in one gate: rate x receiver transmittance x eta x gate width.

    This is a mean photon number, not a probability; a threshold detector clicks with
    1 - exp(-mean) (see :mod:`qnetkit.physics.detectors`).
    """
    check_probability("detector_efficiency", detector_efficiency)
    check_nonnegative("gate_width_s", gate_width_s)
    check_nonnegative("receiver_loss_db", receiver_loss_db)
    receiver = 10.0 ** (-receiver_loss_db / 10.0)
    rate = np.asarray(photon_rate_per_s, dtype=np.float64)
    return np.asarray(rate * receiver * detector_efficiency * gate_width_s)


# -- the Raman spectrum: beta as a function of pump and quantum wavelengths ---------------------
BOLTZMANN_J_PER_K = 1.380649e-23
ROOM_TEMPERATURE_K = 300.0
_C_THZ_PER_INV_CM = 0.0299792458  # 1 cm^-1 of Raman shift is 29.98 GHz
_C_NM_THZ = SPEED_OF_LIGHT_M_PER_S * 1e-3  # lambda (nm) x f (THz)

# Hollenbeck & Cantrell, J. Opt. Soc. Am. B 19, 2886 (2002), Table 1: the 13 vibrational modes of
# the multiple-vibrational-mode fit to fused silica's Raman gain spectrum: position (cm^-1),
# amplitude, Gaussian FWHM (cm^-1), Lorentzian FWHM (cm^-1). Read second-hand, from the
# gnlse-python implementation of that model (WUST-FOG/gnlse-python, gnlse/raman_response.py).
_HC_MODES = np.array([
    (56.25, 1.00, 52.10, 17.37), (100.00, 11.40, 110.42, 38.81),
    (231.25, 36.67, 175.00, 58.33), (362.50, 67.67, 162.50, 54.17),
    (463.00, 74.00, 135.33, 45.11), (497.00, 4.50, 24.50, 8.17),
    (611.50, 6.80, 41.50, 13.83), (691.67, 4.60, 155.00, 51.67),
    (793.67, 4.20, 59.50, 19.83), (835.50, 4.50, 64.30, 21.43),
    (930.00, 2.70, 150.00, 50.00), (1080.00, 3.10, 91.00, 30.33),
    (1215.00, 3.00, 160.00, 53.33),
])

RAMAN_ANCHOR_PUMP_NM = 1550.12
RAMAN_ANCHOR_QUANTUM_NM = 1531.12
RAMAN_ANCHOR_BETA_PER_KM_PER_NM = 3.0e-9
"""The absolute scale: beta = 3e-9 /(km nm) for a quantum channel at 1531.12 nm beside a C-band
classical channel, the coefficient of Kumar, Qin, Alleaume, New J. Phys. 17, 043027 (2015),
Eq. (6) and its worked example (second-hand: as quoted by plutoniumm/qkd test/impairments.py;
``tests/physics/test_raman.py`` reproduces the paper's excess noise with it). The pump at
1550.12 nm (ITU C34, anti-Stokes detuning 2.40 THz) is this module's reading of that setting;
the paper's exact classical wavelength could not be confirmed here. It is the former network
default, which had no source attached."""

_MIN_SHIFT_THZ = 1e-3  # below 1 GHz the spectrum is flat (g ~ shift, thermal factor ~ 1/shift)


def raman_response_im(shift_thz: npt.ArrayLike) -> FloatArray:
    """Im of silica's Raman susceptibility at a frequency shift (THz, either sign), arbitrary units.

    Hollenbeck & Cantrell (2002), Eq. (10)-(11): h_R(t) = sum_i A_i exp(-gamma_i t)
    exp(-Gamma_i^2 t^2 / 4) sin(omega_i t), with Gamma_i = pi c (Gaussian FWHM), gamma_i = pi c
    (Lorentzian FWHM). Its Fourier transform's imaginary part, which the Raman gain spectrum is
    proportional to, is sum_i A_i pi/2 [V_i(Omega - omega_i) - V_i(Omega + omega_i)] with V_i the
    Voigt profile of Gaussian standard deviation Gamma_i / sqrt(2) and Lorentzian half width
    gamma_i. Odd in the shift; peaks at 13.2 THz (440 cm^-1).
    """
    k = np.abs(np.asarray(shift_thz, dtype=np.float64)) / _C_THZ_PER_INV_CM
    out = np.zeros_like(k)
    for position, amplitude, gauss_fwhm, lorentz_fwhm in _HC_MODES:
        sigma, half = gauss_fwhm / (2.0 * math.sqrt(2.0)), lorentz_fwhm / 2.0
        out += amplitude * (voigt_profile(k - position, sigma, half)
                            - voigt_profile(k + position, sigma, half))
    return np.asarray(out * np.sign(np.asarray(shift_thz, dtype=np.float64)))


def phonon_occupation(shift_thz: npt.ArrayLike,
                      temperature_k: float = ROOM_TEMPERATURE_K) -> FloatArray:
    """Bose-Einstein occupation n = 1 / (exp(h |shift| / k T) - 1) of the phonons at a shift."""
    check_positive("temperature_k", temperature_k)
    shift = np.maximum(np.abs(np.asarray(shift_thz, dtype=np.float64)), _MIN_SHIFT_THZ)
    energy_ratio = PLANCK_J_S * shift * 1e12 / (BOLTZMANN_J_PER_K * temperature_k)
    return np.asarray(1.0 / np.expm1(energy_ratio))


def spontaneous_raman_shape(
    pump_wavelength_nm: npt.ArrayLike, quantum_wavelength_nm: npt.ArrayLike,
    temperature_k: float = ROOM_TEMPERATURE_K,
) -> FloatArray:
    """Relative spontaneous Raman power per nm scattered from a pump into a quantum wavelength.

    With shift s = f_pump - f_quantum: g(|s|) (n + 1) on the Stokes side (quantum wavelength
    longer, s > 0) and g(|s|) n on the anti-Stokes side (s < 0), n the phonon occupation; so
    anti-Stokes / Stokes = exp(-h |s| / k T) at equal |s| (thermal factor), and both tend to the
    same limit g'(0) k T / h as s -> 0. g is :func:`raman_response_im`. The factor f_quantum^4
    turns photons per mode into power per nm: the gain itself grows with the frequency (Agrawal,
    Nonlinear Fiber Optics, Sec. 8.1), and photon energy h f and the width of 1 nm, c / lambda^2,
    add f^3. Arbitrary units; :func:`raman_cross_section_per_km_per_nm` gives the scale.
    """
    pump = np.asarray(pump_wavelength_nm, dtype=np.float64)
    quantum = np.asarray(quantum_wavelength_nm, dtype=np.float64)
    if np.any(~np.isfinite(pump)) or np.any(pump <= 0):
        raise ParameterError("pump_wavelength_nm", pump_wavelength_nm, "must be finite and > 0")
    if np.any(~np.isfinite(quantum)) or np.any(quantum <= 0):
        raise ParameterError("quantum_wavelength_nm", quantum_wavelength_nm,
                             "must be finite and > 0")
    f_quantum = _C_NM_THZ / quantum
    shift = _C_NM_THZ / pump - f_quantum
    size = np.maximum(np.abs(shift), _MIN_SHIFT_THZ)
    n = phonon_occupation(size, temperature_k)
    thermal = np.where(shift >= 0.0, n + 1.0, n)
    return np.asarray(raman_response_im(size) * thermal * f_quantum**4)


def raman_cross_section_per_km_per_nm(
    pump_wavelength_nm: npt.ArrayLike, quantum_wavelength_nm: npt.ArrayLike,
    temperature_k: float = ROOM_TEMPERATURE_K,
) -> FloatArray:
    """Effective Raman cross-section beta (1/(km nm)) of a pump into a quantum channel.

    beta = beta_anchor x shape(pump, quantum) / shape(1550.12 nm, 1531.12 nm) at 300 K, with
    :func:`spontaneous_raman_shape` (Hollenbeck & Cantrell 2002 response, Bose-Einstein
    factors) and the published anchor :data:`RAMAN_ANCHOR_BETA_PER_KM_PER_NM`. Values this gives
    (300 K) for a 1550.12 nm pump: 2.8-3.4e-9 for a quantum channel within 1 THz on either side,
    at most 6.1e-9 on the Stokes side (1660 nm, 12.8 THz; the gain itself peaks at 13.2 THz),
    1.4e-12 at 1310 nm (anti-Stokes, 35 THz). Order-of-magnitude check (derived; the efficiency
    is a typical figure for standard fibre, not a citation): a peak gain efficiency g_R / A_eff of
    0.5 /(W km) gives (n + 1) g_R / A_eff x h f x c / lambda^2 = 7e-9 /(km nm) per polarisation
    at the Stokes peak.
    """
    reference = spontaneous_raman_shape(RAMAN_ANCHOR_PUMP_NM, RAMAN_ANCHOR_QUANTUM_NM,
                                        ROOM_TEMPERATURE_K)
    shape = spontaneous_raman_shape(pump_wavelength_nm, quantum_wavelength_nm, temperature_k)
    return np.asarray(RAMAN_ANCHOR_BETA_PER_KM_PER_NM * shape / reference)


@dataclass(frozen=True)
class ClassicalChannel:
    """One classical (pump) channel in the fibre, seen from the quantum receiver.

    ``direction`` is ``"co"`` when the classical light travels the same way as the quantum
    signal (launched at the quantum transmitter) and ``"counter"`` when it is launched at the
    quantum receiver's end. ``raman_cross_section_per_km_per_nm`` is the effective cross-section
    beta for this pump into the quantum channel's wavelength (it depends on the detuning; read it
    off a measured Raman spectrum). ``loss_db_per_km`` is the attenuation at the classical
    wavelength; ``None`` means the same as the quantum channel.
    """

    launch_power_dbm: float
    raman_cross_section_per_km_per_nm: float
    direction: Direction = "co"
    loss_db_per_km: float | None = None

    @classmethod
    def at_wavelengths(cls, launch_power_dbm: float, pump_wavelength_nm: float,
                       quantum_wavelength_nm: float, direction: Direction = "co",
                       loss_db_per_km: float | None = None) -> ClassicalChannel:
        """A channel whose beta is read off the spectrum (:func:`raman_cross_section_per_km_per_nm`)
        for its own wavelength and the quantum channel's."""
        beta = float(raman_cross_section_per_km_per_nm(pump_wavelength_nm, quantum_wavelength_nm))
        return cls(launch_power_dbm, beta, direction, loss_db_per_km)

    def __post_init__(self) -> None:
        _check_finite("launch_power_dbm", self.launch_power_dbm)
        check_nonnegative(
            "raman_cross_section_per_km_per_nm", self.raman_cross_section_per_km_per_nm
        )
        if self.direction not in ("co", "counter"):
            raise ParameterError("direction", self.direction, "must be 'co' or 'counter'")
        if self.loss_db_per_km is not None:
            check_nonnegative("loss_db_per_km", self.loss_db_per_km)

    @property
    def launch_power_w(self) -> float:
        """Launch power in W."""
        return float(dbm_to_watt(self.launch_power_dbm))

    def noise_power_w(
        self, length_km: npt.ArrayLike, filter_bandwidth_nm: float, loss_db_per_km: float
    ) -> FloatArray:
        """Raman noise power (W) this channel puts into the quantum receiver's filter."""
        model = (
            co_propagating_raman_power_w
            if self.direction == "co"
            else counter_propagating_raman_power_w
        )
        return model(
            self.launch_power_w,
            length_km,
            self.raman_cross_section_per_km_per_nm,
            filter_bandwidth_nm,
            loss_db_per_km,
            self.loss_db_per_km,
        )


def raman_noise_power_w(
    channels: Sequence[ClassicalChannel],
    length_km: npt.ArrayLike,
    filter_bandwidth_nm: float,
    loss_db_per_km: float,
) -> FloatArray:
    """Total Raman noise power (W) at the quantum receiver from several classical channels."""
    length = _lengths(length_km)
    total = np.zeros_like(length)
    for channel in channels:
        total = total + channel.noise_power_w(length, filter_bandwidth_nm, loss_db_per_km)
    return np.asarray(total)


@dataclass(frozen=True)
class RamanNoiseModel:
    """Raman noise seen by one quantum channel: its wavelength, filter and fibre, plus pumps.

    ``loss_db_per_km`` is the fibre attenuation at the quantum wavelength;
    ``receiver_loss_db`` is any insertion loss between the fibre end and the detector
    (demultiplexer, filter) that the noise suffers like the signal.
    """

    quantum_wavelength_nm: float
    filter_bandwidth_nm: float
    loss_db_per_km: float = 0.2
    channels: tuple[ClassicalChannel, ...] = ()
    receiver_loss_db: float = 0.0

    def __post_init__(self) -> None:
        check_positive("quantum_wavelength_nm", self.quantum_wavelength_nm)
        check_nonnegative("filter_bandwidth_nm", self.filter_bandwidth_nm)
        check_nonnegative("loss_db_per_km", self.loss_db_per_km)
        check_nonnegative("receiver_loss_db", self.receiver_loss_db)
        for channel in self.channels:
            if not isinstance(channel, ClassicalChannel):
                raise ParameterError("channels", channel, "must hold ClassicalChannel items")

    def noise_power_w(self, length_km: npt.ArrayLike) -> FloatArray:
        """Noise power (W) at the fibre output, before the receiver loss."""
        return raman_noise_power_w(
            self.channels, length_km, self.filter_bandwidth_nm, self.loss_db_per_km
        )

    def photon_rate_per_s(self, length_km: npt.ArrayLike) -> FloatArray:
        """Noise photons per second at the fibre output, at the quantum wavelength."""
        return power_to_photon_rate(self.noise_power_w(length_km), self.quantum_wavelength_nm)

    def counts_per_gate(
        self, length_km: npt.ArrayLike, detector_efficiency: float, gate_width_s: float
    ) -> FloatArray:
        """Mean noise counts per detection gate, after the receiver loss and detector."""
        return photon_rate_to_counts_per_gate(
            self.photon_rate_per_s(length_km),
            detector_efficiency,
            gate_width_s,
            self.receiver_loss_db,
        )
