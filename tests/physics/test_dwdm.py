"""The ITU-T G.694.1 DWDM grid, channel names and telecom bands.

Reference values: G.694.1 section 6 (f = 193.1 THz + n x spacing); the 100 GHz channel table
printed by every DWDM vendor (C21 = 192.1 THz = 1560.61 nm, C34 = 193.4 THz = 1550.12 nm,
C59 = 195.9 THz = 1530.33 nm); bands from ITU-T G-series Supplement 39, Table 6-1.
"""

from __future__ import annotations

import pytest

from qnetkit.errors import ParameterError
from qnetkit.physics.dwdm import (
    band_of,
    channel_name_frequency_thz,
    check_spacing_ghz,
    consecutive_wavelengths_nm,
    frequency_to_wavelength_nm,
    grid_frequency_thz,
    grid_wavelength_nm,
    nearest_grid_channel,
    typical_loss_db_per_km,
    wavelength_to_frequency_thz,
)


@pytest.mark.parametrize(("n", "spacing", "thz", "nm"), [
    (0, 100.0, 193.1, 1552.52),
    (3, 100.0, 193.4, 1550.12),
    (-10, 100.0, 192.1, 1560.61),
    (28, 100.0, 195.9, 1530.33),
    (1, 50.0, 193.15, 1552.12),
])
def test_grid_frequencies_and_wavelengths(n: int, spacing: float, thz: float, nm: float) -> None:
    assert grid_frequency_thz(n, spacing) == pytest.approx(thz, abs=1e-9)
    assert grid_wavelength_nm(n, spacing) == pytest.approx(nm, abs=0.005)
    assert nearest_grid_channel(nm, spacing) == n


@pytest.mark.parametrize(("name", "nm"), [("C21", 1560.61), ("C34", 1550.12), ("C59", 1530.33)])
def test_channel_names(name: str, nm: float) -> None:
    assert frequency_to_wavelength_nm(channel_name_frequency_thz(name)) == pytest.approx(nm,
                                                                                         abs=0.005)


def test_conversions_invert() -> None:
    assert wavelength_to_frequency_thz(frequency_to_wavelength_nm(190.0)) == pytest.approx(190.0)
    # 1310 nm is 228.85 THz: 35.4 THz above 1550 nm's 193.41 THz.
    assert wavelength_to_frequency_thz(1310.0) - wavelength_to_frequency_thz(1550.0) == (
        pytest.approx(35.435, abs=1e-3))


def test_consecutive_channels_go_up_in_frequency() -> None:
    got = consecutive_wavelengths_nm(193.4, 3, 100.0)
    assert got == pytest.approx((1550.12, 1549.32, 1548.51), abs=0.005)
    with pytest.raises(ParameterError) as err:
        consecutive_wavelengths_nm(193.4, 0)
    assert err.value.name == "count"


@pytest.mark.parametrize("spacing", [12.5, 25.0, 50.0, 100.0, 200.0, 400.0])
def test_g694_spacings_are_accepted(spacing: float) -> None:
    check_spacing_ghz(spacing)


@pytest.mark.parametrize("spacing", [30.0, 150.0, 0.0, -50.0])
def test_other_spacings_are_refused(spacing: float) -> None:
    with pytest.raises(ParameterError) as err:
        check_spacing_ghz(spacing)
    assert err.value.name == "grid_spacing_ghz"


@pytest.mark.parametrize(("nm", "band"), [
    (1260.0, "O"), (1310.0, "O"), (1360.0, "E"), (1490.0, "S"), (1530.0, "C"), (1550.0, "C"),
    (1565.0, "L"), (1625.0, "U"), (1675.0, "U"), (1200.0, None), (1700.0, None),
])
def test_bands(nm: float, band: str | None) -> None:
    assert band_of(nm) == band


def test_typical_loss_by_band() -> None:
    assert typical_loss_db_per_km(1310.0) == 0.33
    assert typical_loss_db_per_km(1550.12) == 0.20
    with pytest.raises(ParameterError):
        typical_loss_db_per_km(900.0)
