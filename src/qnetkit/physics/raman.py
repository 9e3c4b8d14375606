"""Spontaneous Raman noise from classical channels sharing a fibre with a quantum channel.

Model of Eraerds et al., New J. Phys. 12, 063027 (2010) and Patel et al., Phys. Rev. X 2, 041010
(2012): noise power in the quantum filter is the classical power times an effective Raman
cross-section beta (per km per nm) times the filter bandwidth, integrated along the fibre.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

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
