"""Free-space and satellite-downlink link budget: geometric, atmospheric, pointing, optics losses.

Geometric capture of a diverging beam (Gaussian 1 - exp(-2 r^2 / w^2), or the top-hat
(D_R / (D_T + theta L))^2 form), zenith transmittance raised to the air mass, a spherical-Earth
slant range; preset after Liao et al., "Satellite-to-ground quantum key distribution",
Nature 549, 43 (2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.physics.validate import check_nonnegative, check_positive, check_probability

GeometricModel = Literal["gaussian", "tophat"]
AirMassModel = Literal["secant", "spherical"]

EARTH_RADIUS_KM = 6371.0
"""Mean Earth radius (IUGG)."""


def _array(name: str, values: npt.ArrayLike, *, low: float, high: float = math.inf) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if np.any(~np.isfinite(out)) or np.any(out < low) or np.any(out > high):
        raise ParameterError(name, values, f"must be finite and within [{low}, {high}]")
    return out


def _to_db(transmittance: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        return np.asarray(-10.0 * np.log10(transmittance))


def slant_range_km(
    altitude_km: float, elevation_deg: npt.ArrayLike, earth_radius_km: float = EARTH_RADIUS_KM
) -> FloatArray:
    """Distance from a ground station to a satellite at ``altitude_km`` seen at ``elevation_deg``.

    Spherical Earth: d = sqrt((R + h)^2 - R^2 cos^2 e) - R sin e (law of cosines in the
    Earth-centre, station, satellite triangle).
    """
    check_nonnegative("altitude_km", altitude_km)
    check_positive("earth_radius_km", earth_radius_km)
    elevation = np.radians(_array("elevation_deg", elevation_deg, low=0.0, high=90.0))
    r, rh = earth_radius_km, earth_radius_km + altitude_km
    return np.asarray(np.sqrt(rh**2 - (r * np.cos(elevation)) ** 2) - r * np.sin(elevation))


def elevation_deg_from_range(
    altitude_km: float, range_km: npt.ArrayLike, earth_radius_km: float = EARTH_RADIUS_KM
) -> FloatArray:
    """Elevation (deg) at which a satellite at ``altitude_km`` is ``range_km`` away.

    Inverse of :func:`slant_range_km`: sin e = ((R + h)^2 - R^2 - d^2) / (2 R d); ranges run from
    ``altitude_km`` (zenith) to the horizon distance sqrt((R + h)^2 - R^2).
    """
    check_positive("altitude_km", altitude_km)
    check_positive("earth_radius_km", earth_radius_km)
    r, rh = earth_radius_km, earth_radius_km + altitude_km
    horizon_km = math.sqrt(rh**2 - r**2)
    d = _array("range_km", range_km, low=altitude_km * (1.0 - 1e-12), high=horizon_km)
    sin_e = np.clip((rh**2 - r**2 - d**2) / (2.0 * r * d), 0.0, 1.0)
    # 1 - sin e = (d - h)(d + R + R + h) / (2 R d), exact near the zenith where arcsin is not.
    one_minus_sin = np.clip((d - altitude_km) * (d + r + rh) / (2.0 * r * d), 0.0, 1.0)
    cos_e = np.sqrt(one_minus_sin * (1.0 + sin_e))
    return np.asarray(np.degrees(np.arctan2(sin_e, cos_e)))


def air_mass(
    elevation_deg: npt.ArrayLike,
    model: AirMassModel = "secant",
    atmosphere_scale_height_km: float = 6.0,
    earth_radius_km: float = EARTH_RADIUS_KM,
) -> FloatArray:
    """Slant path through the atmosphere relative to the zenith path.

    ``"secant"`` is the plane-parallel 1 / sin(elevation) (= sec of the zenith angle), good above
    ~20 deg elevation and infinite at the horizon. ``"spherical"`` is the path through a
    homogeneous shell of thickness H on a spherical Earth,
    sqrt((R/H)^2 sin^2 e + 2 R/H + 1) - (R/H) sin e, which stays finite at the horizon.
    """
    elevation = np.radians(_array("elevation_deg", elevation_deg, low=0.0, high=90.0))
    if model == "secant":
        with np.errstate(divide="ignore"):
            return np.asarray(1.0 / np.sin(elevation))
    if model == "spherical":
        check_positive("atmosphere_scale_height_km", atmosphere_scale_height_km)
        ratio = earth_radius_km / atmosphere_scale_height_km
        s = np.sin(elevation)
        return np.asarray(np.sqrt((ratio * s) ** 2 + 2.0 * ratio + 1.0) - ratio * s)
    raise ParameterError("model", model, "must be 'secant' or 'spherical'")


def atmospheric_transmittance(
    zenith_transmittance: float,
    elevation_deg: npt.ArrayLike,
    model: AirMassModel = "secant",
    atmosphere_scale_height_km: float = 6.0,
) -> FloatArray:
    """Transmittance along the slant path: zenith transmittance raised to the air mass."""
    check_probability("zenith_transmittance", zenith_transmittance)
    mass = air_mass(elevation_deg, model, atmosphere_scale_height_km)
    return np.asarray(np.power(zenith_transmittance, mass))


def diffraction_limited_divergence_rad(wavelength_nm: float, waist_radius_m: float) -> float:
    """Full far-field divergence angle 2 lambda / (pi w0) of a Gaussian beam of waist w0."""
    check_positive("wavelength_nm", wavelength_nm)
    check_positive("waist_radius_m", waist_radius_m)
    return 2.0 * wavelength_nm * 1e-9 / (math.pi * waist_radius_m)


def beam_radius_m(
    range_km: npt.ArrayLike, beam_divergence_rad: float, waist_radius_m: float = 0.0
) -> FloatArray:
    """1/e^2 intensity radius of a Gaussian beam at ``range_km``.

    ``beam_divergence_rad`` is the FULL angle (1/e^2 points), so the far-field radius grows as
    (theta / 2) L; the waist adds in quadrature.
    """
    check_nonnegative("beam_divergence_rad", beam_divergence_rad)
    check_nonnegative("waist_radius_m", waist_radius_m)
    length_m = _array("range_km", range_km, low=0.0) * 1e3
    return np.asarray(np.hypot(waist_radius_m, 0.5 * beam_divergence_rad * length_m))


def gaussian_capture_fraction(aperture_diameter_m: float, beam_radius: npt.ArrayLike) -> FloatArray:
    """Fraction of a centred Gaussian beam (1/e^2 radius w) inside a circular aperture of
    radius r: 1 - exp(-2 r^2 / w^2)."""
    check_nonnegative("aperture_diameter_m", aperture_diameter_m)
    w = _array("beam_radius", beam_radius, low=0.0)
    r = 0.5 * aperture_diameter_m
    with np.errstate(divide="ignore"):
        ratio = np.where(w > 0.0, 2.0 * r**2 / np.where(w > 0.0, w, 1.0) ** 2, np.inf)
    return np.asarray(-np.expm1(-ratio))


def geometric_transmittance(
    range_km: npt.ArrayLike,
    beam_divergence_rad: float,
    rx_aperture_diameter_m: float,
    tx_aperture_diameter_m: float = 0.0,
    model: GeometricModel = "gaussian",
) -> FloatArray:
    """Share of the transmitted power the receiver telescope collects (no pointing jitter).

    ``beam_divergence_rad`` is the full angle. ``"gaussian"``: Gaussian beam of waist radius
    D_T / 2 and 1/e^2 radius w(L), captured as 1 - exp(-2 r^2 / w^2). ``"tophat"``: uniform spot
    of diameter D_T + theta L, so (D_R / (D_T + theta L))^2 capped at 1 — the usual link-budget
    form (for a small aperture it is half, i.e. 3 dB below, the Gaussian on-axis value).
    """
    check_nonnegative("rx_aperture_diameter_m", rx_aperture_diameter_m)
    check_nonnegative("tx_aperture_diameter_m", tx_aperture_diameter_m)
    check_nonnegative("beam_divergence_rad", beam_divergence_rad)
    length_m = _array("range_km", range_km, low=0.0) * 1e3
    if model == "gaussian":
        w = beam_radius_m(range_km, beam_divergence_rad, 0.5 * tx_aperture_diameter_m)
        return gaussian_capture_fraction(rx_aperture_diameter_m, w)
    if model == "tophat":
        spot_m = tx_aperture_diameter_m + beam_divergence_rad * length_m
        with np.errstate(divide="ignore"):
            ratio = np.where(spot_m > 0.0, rx_aperture_diameter_m / spot_m, np.inf)
        return np.asarray(np.minimum(1.0, ratio**2))
    raise ParameterError("model", model, "must be 'gaussian' or 'tophat'")


@dataclass(frozen=True)
class LinkBudget:
    """Loss terms (dB, positive = loss) of a free-space link at one or more ranges."""

    geometric_loss_db: FloatArray
    atmospheric_loss_db: FloatArray
    pointing_loss_db: float
    tx_optics_loss_db: float
    rx_optics_loss_db: float
    detector_loss_db: float

    @property
    def channel_loss_db(self) -> FloatArray:
        """Propagation only: geometric + atmospheric + pointing."""
        return np.asarray(self.geometric_loss_db + self.atmospheric_loss_db + self.pointing_loss_db)

    @property
    def total_loss_db(self) -> FloatArray:
        """Everything from the transmitter's source to a detector click."""
        return np.asarray(
            self.channel_loss_db
            + self.tx_optics_loss_db
            + self.rx_optics_loss_db
            + self.detector_loss_db
        )

    @property
    def transmittance(self) -> FloatArray:
        """End-to-end transmittance, 10^(-total / 10)."""
        return np.asarray(np.power(10.0, -self.total_loss_db / 10.0))


@dataclass(frozen=True)
class FreeSpaceLink:
    """Optical terminal pair and atmosphere of a free-space link.

    ``beam_divergence_rad`` is the full divergence angle. ``zenith_transmittance`` is the
    atmosphere's vertical transmittance at ``wavelength_nm`` (1 for a link above the
    atmosphere); it is raised to the air mass at the given elevation. Losses in dB are positive.
    """

    wavelength_nm: float
    beam_divergence_rad: float
    tx_aperture_diameter_m: float
    rx_aperture_diameter_m: float
    zenith_transmittance: float = 1.0
    pointing_loss_db: float = 0.0
    tx_optics_loss_db: float = 0.0
    rx_optics_loss_db: float = 0.0
    detector_loss_db: float = 0.0
    geometric_model: GeometricModel = "gaussian"
    air_mass_model: AirMassModel = "secant"
    atmosphere_scale_height_km: float = 6.0

    def __post_init__(self) -> None:
        check_positive("wavelength_nm", self.wavelength_nm)
        check_nonnegative("beam_divergence_rad", self.beam_divergence_rad)
        check_nonnegative("tx_aperture_diameter_m", self.tx_aperture_diameter_m)
        check_positive("rx_aperture_diameter_m", self.rx_aperture_diameter_m)
        check_probability("zenith_transmittance", self.zenith_transmittance)
        check_nonnegative("pointing_loss_db", self.pointing_loss_db)
        check_nonnegative("tx_optics_loss_db", self.tx_optics_loss_db)
        check_nonnegative("rx_optics_loss_db", self.rx_optics_loss_db)
        check_nonnegative("detector_loss_db", self.detector_loss_db)
        check_positive("atmosphere_scale_height_km", self.atmosphere_scale_height_km)
        if self.geometric_model not in ("gaussian", "tophat"):
            raise ParameterError(
                "geometric_model", self.geometric_model, "must be 'gaussian' or 'tophat'"
            )
        if self.air_mass_model not in ("secant", "spherical"):
            raise ParameterError(
                "air_mass_model", self.air_mass_model, "must be 'secant' or 'spherical'"
            )

    def geometric_loss_db(self, range_km: npt.ArrayLike) -> FloatArray:
        """Beam-spreading loss at ``range_km``."""
        return _to_db(
            geometric_transmittance(
                range_km,
                self.beam_divergence_rad,
                self.rx_aperture_diameter_m,
                self.tx_aperture_diameter_m,
                self.geometric_model,
            )
        )

    def atmospheric_loss_db(self, elevation_deg: npt.ArrayLike) -> FloatArray:
        """Absorption/scattering loss along the slant path at ``elevation_deg``."""
        return _to_db(
            atmospheric_transmittance(
                self.zenith_transmittance,
                elevation_deg,
                self.air_mass_model,
                self.atmosphere_scale_height_km,
            )
        )

    def budget(self, range_km: npt.ArrayLike, elevation_deg: npt.ArrayLike = 90.0) -> LinkBudget:
        """Every loss term at the given range(s) and elevation(s) (broadcast together).

        The default elevation of 90 deg applies ``zenith_transmittance`` once, which is how a
        horizontal terrestrial link is described: give its whole path transmittance there.
        """
        geometric, atmospheric = np.broadcast_arrays(
            self.geometric_loss_db(range_km), self.atmospheric_loss_db(elevation_deg)
        )
        return LinkBudget(
            geometric_loss_db=np.array(geometric),
            atmospheric_loss_db=np.array(atmospheric),
            pointing_loss_db=self.pointing_loss_db,
            tx_optics_loss_db=self.tx_optics_loss_db,
            rx_optics_loss_db=self.rx_optics_loss_db,
            detector_loss_db=self.detector_loss_db,
        )

    def total_loss_db(
        self, range_km: npt.ArrayLike, elevation_deg: npt.ArrayLike = 90.0
    ) -> FloatArray:
        """End-to-end loss (dB), optics and detector included."""
        return self.budget(range_km, elevation_deg).total_loss_db

    def transmittance(
        self, range_km: npt.ArrayLike, elevation_deg: npt.ArrayLike = 90.0
    ) -> FloatArray:
        """End-to-end transmittance, optics and detector included."""
        return self.budget(range_km, elevation_deg).transmittance


@dataclass(frozen=True)
class SatelliteDownlink:
    """A satellite at ``altitude_km`` sending to a ground station through ``link``."""

    link: FreeSpaceLink
    altitude_km: float
    earth_radius_km: float = EARTH_RADIUS_KM

    def __post_init__(self) -> None:
        check_positive("altitude_km", self.altitude_km)
        check_positive("earth_radius_km", self.earth_radius_km)

    def slant_range_km(self, elevation_deg: npt.ArrayLike) -> FloatArray:
        """Station-to-satellite distance at ``elevation_deg``."""
        return slant_range_km(self.altitude_km, elevation_deg, self.earth_radius_km)

    def elevation_deg(self, range_km: npt.ArrayLike) -> FloatArray:
        """Elevation at which the satellite is ``range_km`` away."""
        return elevation_deg_from_range(self.altitude_km, range_km, self.earth_radius_km)

    def budget_at_range(self, range_km: npt.ArrayLike) -> LinkBudget:
        """Loss terms at slant range(s), the elevation following from the orbit geometry."""
        return self.link.budget(range_km, self.elevation_deg(range_km))

    def budget_at_elevation(self, elevation_deg: npt.ArrayLike) -> LinkBudget:
        """Loss terms at elevation(s), the range following from the orbit geometry."""
        return self.link.budget(self.slant_range_km(elevation_deg), elevation_deg)

    def total_loss_db_at_range(self, range_km: npt.ArrayLike) -> FloatArray:
        """End-to-end loss (dB) at slant range(s)."""
        return self.budget_at_range(range_km).total_loss_db


MICIUS_ZENITH_TRANSMITTANCE = 0.54
"""Assumed (not published): 2.7 dB at zenith, i.e. ~7.9 dB along the ~20 deg elevation path at
1200 km, the top of the 3-8 dB "atmospheric absorption and turbulence" Liao et al. give there.
The top rather than the middle because their measured sifted rates imply a loss at the
pessimistic end of their own budget."""

MICIUS_POINTING_LOSS_DB = 3.0
"""Assumed (not published): Liao et al.'s bound, pointing loss "less than 3 dB"."""


def micius_downlink() -> SatelliteDownlink:
    """Micius-to-Xinglong decoy-state QKD downlink, after Liao et al., Nature 549, 43 (2017).

    Published: ~500 km orbit, 848.6 nm pulses, 300 mm Cassegrain transmitter, ~10 urad beam
    (about 10 m wide at 1200 km, hence the top-hat geometric model), 1 m Ritchey-Chretien
    receiver, ~16 % ground optical efficiency (telescope to fibre), 50 % detector efficiency.
    Assumed: :data:`MICIUS_ZENITH_TRANSMITTANCE` and :data:`MICIUS_POINTING_LOSS_DB`;
    transmitter optics are lossless here because the paper quotes its intensities at the
    telescope output.
    """
    link = FreeSpaceLink(
        wavelength_nm=848.6,
        beam_divergence_rad=10e-6,
        tx_aperture_diameter_m=0.30,
        rx_aperture_diameter_m=1.0,
        zenith_transmittance=MICIUS_ZENITH_TRANSMITTANCE,
        pointing_loss_db=MICIUS_POINTING_LOSS_DB,
        tx_optics_loss_db=0.0,
        rx_optics_loss_db=float(-10.0 * math.log10(0.16)),
        detector_loss_db=float(-10.0 * math.log10(0.50)),
        geometric_model="tophat",
        air_mass_model="secant",
    )
    return SatelliteDownlink(link=link, altitude_km=500.0)
