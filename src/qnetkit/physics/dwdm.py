"""The ITU-T DWDM frequency grid, telecom bands and typical fibre attenuation per band.

Grid: ITU-T Recommendation G.694.1 (10/2020), "Spectral grids for WDM applications: DWDM
frequency grid", section 6: nominal central frequencies f = 193.1 THz + n x spacing, n an integer
and the spacing 12.5, 25, 50, 100 GHz or a multiple of 100 GHz. Channel names such as ``C34`` are
the usual vendor labels of the 100 GHz grid, C<nn> = 190.0 THz + nn x 0.1 THz (C34 = 193.4 THz =
1550.12 nm); they are a convention, not part of G.694.1.

Bands: ITU-T G-series Supplement 39, Table 6-1 (O 1260-1360 nm, E 1360-1460, S 1460-1530,
C 1530-1565, L 1565-1625, U 1625-1675).
"""

from __future__ import annotations

import math
import re

from qnetkit.errors import ParameterError
from qnetkit.physics.validate import check_positive

SPEED_OF_LIGHT_NM_THZ = 299_792.458
"""c in nm x THz: lambda (nm) = c / f (THz)."""
GRID_ANCHOR_THZ = 193.1
"""G.694.1 anchor frequency (n = 0)."""
GRID_SPACINGS_GHZ = (12.5, 25.0, 50.0, 100.0)
"""Fixed-grid spacings of G.694.1; any multiple of 100 GHz is allowed as well."""

BANDS_NM: dict[str, tuple[float, float]] = {
    "O": (1260.0, 1360.0),
    "E": (1360.0, 1460.0),
    "S": (1460.0, 1530.0),
    "C": (1530.0, 1565.0),
    "L": (1565.0, 1625.0),
    "U": (1625.0, 1675.0),
}

TYPICAL_LOSS_DB_PER_KM: dict[str, float] = {
    "O": 0.33, "E": 0.30, "S": 0.22, "C": 0.20, "L": 0.21, "U": 0.24,
}
"""Typical attenuation of standard single-mode fibre (ITU-T G.652.D, low water peak) by band,
rounded: about 0.33 dB/km at 1310 nm and 0.20 dB/km at 1550 nm are the usual cabled values;
the E, S, L and U values are interpolated from the same order of datasheet figures. A default for
a wavelength whose attenuation the topology does not give, not a measured value."""

_CHANNEL_NAME = re.compile(r"^C(\d{2})$")


def check_spacing_ghz(spacing_ghz: float) -> None:
    """G.694.1 spacings: 12.5, 25, 50, 100 GHz or a whole multiple of 100 GHz."""
    check_positive("grid_spacing_ghz", spacing_ghz)
    if spacing_ghz in GRID_SPACINGS_GHZ:
        return
    if math.isclose(spacing_ghz / 100.0, round(spacing_ghz / 100.0), abs_tol=1e-9):
        return
    raise ParameterError("grid_spacing_ghz", spacing_ghz,
                         "must be 12.5, 25, 50, 100 GHz or a multiple of 100 GHz (ITU-T G.694.1)")


def frequency_to_wavelength_nm(frequency_thz: float) -> float:
    """Vacuum wavelength (nm) of an optical frequency (THz)."""
    check_positive("frequency_thz", frequency_thz)
    return SPEED_OF_LIGHT_NM_THZ / frequency_thz


def wavelength_to_frequency_thz(wavelength_nm: float) -> float:
    """Optical frequency (THz) of a vacuum wavelength (nm)."""
    check_positive("wavelength_nm", wavelength_nm)
    return SPEED_OF_LIGHT_NM_THZ / wavelength_nm


def grid_frequency_thz(n: int, spacing_ghz: float = 100.0) -> float:
    """Central frequency of grid channel ``n``: 193.1 THz + n x spacing (G.694.1)."""
    check_spacing_ghz(spacing_ghz)
    return GRID_ANCHOR_THZ + n * spacing_ghz * 1e-3


def grid_wavelength_nm(n: int, spacing_ghz: float = 100.0) -> float:
    """Central wavelength (nm) of grid channel ``n`` (1552.52 nm for n = 0)."""
    return frequency_to_wavelength_nm(grid_frequency_thz(n, spacing_ghz))


def nearest_grid_channel(wavelength_nm: float, spacing_ghz: float = 100.0) -> int:
    """The grid index n whose central frequency is closest to ``wavelength_nm``."""
    check_spacing_ghz(spacing_ghz)
    offset = wavelength_to_frequency_thz(wavelength_nm) - GRID_ANCHOR_THZ
    return round(offset / (spacing_ghz * 1e-3))


def channel_name_frequency_thz(name: str) -> float:
    """Frequency of a 100 GHz channel label: ``C34`` is 190.0 + 3.4 = 193.4 THz."""
    match = _CHANNEL_NAME.match(name)
    if match is None:
        raise ParameterError("grid_channel", name, "a channel name is C followed by two digits")
    return 190.0 + int(match.group(1)) * 0.1


def consecutive_wavelengths_nm(first_frequency_thz: float, count: int,
                               spacing_ghz: float = 100.0) -> tuple[float, ...]:
    """Wavelengths of ``count`` channels on consecutive grid slots from ``first_frequency_thz``
    upwards in frequency (shorter wavelengths), ``spacing_ghz`` apart."""
    check_spacing_ghz(spacing_ghz)
    if count < 1:
        raise ParameterError("count", count, "must be >= 1")
    return tuple(frequency_to_wavelength_nm(first_frequency_thz + k * spacing_ghz * 1e-3)
                 for k in range(count))


def band_of(wavelength_nm: float) -> str | None:
    """Telecom band letter (O, E, S, C, L, U; G-series Suppl. 39), None outside 1260-1675 nm.
    A band's upper edge belongs to the next band up."""
    for band, (low, high) in BANDS_NM.items():
        if low <= wavelength_nm < high or (band == "U" and wavelength_nm == high):
            return band
    return None


def typical_loss_db_per_km(wavelength_nm: float) -> float:
    """Typical G.652.D attenuation in the band of ``wavelength_nm`` (see TYPICAL_LOSS_DB_PER_KM)."""
    band = band_of(wavelength_nm)
    if band is None:
        raise ParameterError("wavelength_nm", wavelength_nm, "must lie in 1260-1675 nm")
    return TYPICAL_LOSS_DB_PER_KM[band]
