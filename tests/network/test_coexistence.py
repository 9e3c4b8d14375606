"""Classical channels beside a QKD link: wavelengths, grid channels, counts, the quantum band.

The planner's case (issue 13): eight 0 dBm classical channels co-propagating on a 45 km link.
Setup chosen here as the nearest realistic one: the quantum channel on ITU channel C34
(1550.12 nm) behind a 0.6 nm (100 GHz) filter, the eight classical channels on the next eight
100 GHz slots above it (grid n = 4..11, 193.5-194.2 THz, 1549.32-1543.73 nm), standard fibre at
0.2 dB/km, the decoy-BB84 system at its default preset (eta_Bob 0.045, Y0 1.7e-6, e_d 3.3 %,
1 GHz, 1 ns gates). Then the same link with the quantum channel moved to 1310 nm (0.33 dB/km).
Raman noise: Eraerds et al., NJP 12, 063027 (2010) forward model with beta from
``physics.raman``'s spectrum; QBER: Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005),
E Q = Y0 / 2 + e_d (1 - exp(-eta mu)), Q = Y0 + 1 - exp(-eta mu).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from qnetkit.network.linkmodel import (
    LinkModel,
    classical_channels,
    pump_loss_db_per_km,
    raman_counts_per_gate,
)
from qnetkit.network.topology import Link, TopologyError, parse_topology
from qnetkit.physics.raman import DB_TO_NEPER, photon_energy_j, raman_cross_section_per_km_per_nm

EIGHT = {"count": 8, "grid_channel": 4, "launch_power_dbm": 0.0, "direction": "co",
         "load_profile": "flat"}
ETA_BOB, Y0_DARK, E_DET, GATE_S = 0.045, 1.7e-6, 0.033, 1e-9
ONE, ZERO = np.ones(1), np.zeros(1)


def _link(**fields: Any) -> Link:
    return Link.model_validate({"id": "l", "a": "a", "b": "b", "length_km": 45.0, **fields})


def _problems(**fields: Any) -> list[tuple[str, str]]:
    with pytest.raises(TopologyError) as err:
        parse_topology({"name": "t", "nodes": [{"id": "a"}, {"id": "b"}],
                        "links": [{"id": "l", "a": "a", "b": "b", "length_km": 45.0, **fields}]})
    return err.value.problems


def _qber(y0: float, eta: float, mu: float) -> float:
    gain = 1.0 - math.exp(-eta * mu)
    return (0.5 * y0 + E_DET * gain) / (y0 + gain)


def test_planner_case_c_band_has_no_key() -> None:
    link = _link(quantum_wavelength_nm=1550.12, classical_channels=[EIGHT])
    pumps = classical_channels(link, link.classical_channels[0])
    wavelengths = [299_792.458 / (193.1 + 0.1 * n) for n in range(4, 12)]
    betas = raman_cross_section_per_km_per_nm(wavelengths, 1550.12)
    assert [p.raman_cross_section_per_km_per_nm for p in pumps] == pytest.approx(list(betas))
    assert float(betas.sum()) == pytest.approx(2.488e-8, rel=1e-3)  # 2.9-3.4e-9 each
    # Equal attenuation: forward noise P_in e^{-alpha L} L sum(beta) dlambda (Eraerds Eq.).
    noise_w = 1e-3 * 10 ** (-0.2 * 45 / 10) * 45.0 * float(betas.sum()) * 0.6
    counts = noise_w / photon_energy_j(1550.12) * ETA_BOB * GATE_S
    assert counts == pytest.approx(0.02970, rel=1e-3)
    model = LinkModel.build(link)
    assert len(model.raman) == 1 and model.raman[0][0] == "flat"
    assert model.raman[0][1] == pytest.approx(counts, rel=1e-9)
    rate, qber = model.evaluate(np.zeros(1), ONE, ONE, ZERO)
    assert model.mu is not None
    eta = ETA_BOB * 10 ** (-0.2 * 45 / 10)
    assert float(qber[0]) == pytest.approx(_qber(Y0_DARK + counts, eta, model.mu), rel=1e-6)
    assert float(qber[0]) == pytest.approx(0.4609, abs=5e-4)  # far above 11 %
    assert float(rate[0]) == 0.0
    # Without the classical channels the same link makes 316 kbit/s at QBER 3.3 %.
    rate0, qber0 = model.without_raman().evaluate(np.zeros(1), ONE, ONE, ZERO)
    assert float(qber0[0]) == pytest.approx(0.0333, abs=5e-4)
    assert float(rate0[0]) == pytest.approx(3.158e5, rel=1e-3)


def test_planner_case_o_band_makes_key() -> None:
    link = _link(quantum_wavelength_nm=1310.0, loss_db_per_km=0.33, classical_channels=[EIGHT])
    pumps = classical_channels(link, link.classical_channels[0])
    # The C-band pumps attenuate at the C-band's typical 0.20 dB/km, the quantum light at 0.33.
    assert {p.loss_db_per_km for p in pumps} == {0.20}
    betas = np.array([p.raman_cross_section_per_km_per_nm for p in pumps])
    assert float(betas.sum()) == pytest.approx(1.19e-11, rel=0.01)  # 35 THz anti-Stokes
    a_q, a_c = 0.33 * DB_TO_NEPER, 0.20 * DB_TO_NEPER
    span_km = math.exp(-a_q * 45) * (1 - math.exp(-(a_c - a_q) * 45)) / (a_c - a_q)
    counts = 1e-3 * float(betas.sum()) * 0.6 * span_km / photon_energy_j(1310.0) * ETA_BOB * GATE_S
    assert counts == pytest.approx(6.90e-6, rel=2e-3)
    model = LinkModel.build(link)
    assert model.raman[0][1] == pytest.approx(counts, rel=1e-9)
    rate, qber = model.evaluate(np.zeros(1), ONE, ONE, ZERO)
    assert model.mu is not None
    eta = ETA_BOB * 10 ** (-0.33 * 45 / 10)
    assert float(qber[0]) == pytest.approx(_qber(Y0_DARK + counts, eta, model.mu), rel=1e-6)
    assert float(qber[0]) == pytest.approx(0.0386, abs=5e-4)
    assert float(rate[0]) == pytest.approx(6.818e4, rel=2e-3)
    rate0, _ = model.without_raman().evaluate(np.zeros(1), ONE, ONE, ZERO)
    assert 0.8 * float(rate0[0]) < float(rate[0]) < float(rate0[0])


def test_noise_scales_with_filter_count_and_power() -> None:
    base = _link(quantum_wavelength_nm=1550.12, classical_channels=[EIGHT])
    narrow = _link(quantum_wavelength_nm=1550.12, filter_bandwidth_nm=0.15,
                   classical_channels=[EIGHT])
    one = _link(quantum_wavelength_nm=1550.12, classical_channels=[{**EIGHT, "count": 1}])
    hot = _link(quantum_wavelength_nm=1550.12,
                classical_channels=[{**EIGHT, "count": 1, "launch_power_dbm": 10.0}])

    def counts(ln: Link) -> float:
        return raman_counts_per_gate(ln, ln.classical_channels[0], ETA_BOB, GATE_S)

    assert counts(narrow) == pytest.approx(counts(base) / 4, rel=1e-12)
    assert counts(hot) == pytest.approx(10 * counts(one), rel=1e-12)
    # Eight channels: more than 8 x the nearest one (beta grows slowly away from the pump).
    assert 8 * counts(one) < counts(base) < 9 * counts(one)


def test_channel_without_wavelength_keeps_the_published_c_band_coefficient() -> None:
    # As before wavelengths could be given: beta = 3e-9 /(km nm), the quantum's attenuation.
    link = _link(classical_channels=[{"launch_power_dbm": 0.0, "count": 2}])
    pumps = classical_channels(link, link.classical_channels[0])
    assert [(p.raman_cross_section_per_km_per_nm, p.loss_db_per_km) for p in pumps] == [
        (3e-9, None), (3e-9, None)]
    # An explicit value overrides the spectrum too.
    link = _link(classical_channels=[{"grid_channel": "C30",
                                      "raman_cross_section_per_km_per_nm": 1e-9}])
    assert classical_channels(link, link.classical_channels[0])[0] \
        .raman_cross_section_per_km_per_nm == 1e-9


def test_grid_channel_forms_and_pump_attenuation() -> None:
    by_name = _link(classical_channels=[{"grid_channel": "C30"}])
    by_index = _link(classical_channels=[{"grid_channel": -1}])
    by_wavelength = _link(classical_channels=[{"wavelength_nm": 1553.33}])
    got = [ln.classical_channels[0].wavelengths_nm() for ln in (by_name, by_index, by_wavelength)]
    assert got[0] == pytest.approx((1553.33,), abs=0.005)
    assert got[0] == pytest.approx(got[1]) and got[0] == pytest.approx(got[2], abs=0.005)
    fifty = _link(classical_channels=[{"grid_channel": 2, "count": 3, "grid_spacing_ghz": 50}])
    assert fifty.classical_channels[0].wavelengths_nm() == pytest.approx(
        (1551.72, 1551.32, 1550.92), abs=0.005)
    # An O-band classical channel beside a C-band quantum one: 0.33 dB/km for the pump.
    link = _link(loss_db_per_km=0.19, classical_channels=[{"wavelength_nm": 1310.0}])
    assert pump_loss_db_per_km(link, 1310.0) == 0.33
    assert pump_loss_db_per_km(link, 1545.0) == 0.19


@pytest.mark.parametrize(("fields", "message"), [
    ({"quantum_wavelength_nm": 1450.0}, "neither the O-band (1260-1360 nm) nor the C-band"),
    ({"quantum_wavelength_nm": 1550.12, "classical_channels": [{"grid_channel": 3}]},
     "classical_channels[0] at 1550.12 nm lies within the quantum channel's filter"),
    ({"classical_channels": [{"launch_power_dbm": 0}, {"wavelength_nm": 1549.9}]},
     "classical_channels[1] at 1549.90 nm lies within"),
    ({"quantum_wavelength_nm": 1310.0, "classical_channels": [{"launch_power_dbm": 0}]},
     "classical_channels[0] needs wavelength_nm or grid_channel"),
])
def test_link_coexistence_errors(fields: dict[str, Any], message: str) -> None:
    problems = _problems(**fields)
    assert any(path == "links[0]" and message in msg for path, msg in problems), problems


@pytest.mark.parametrize(("channel", "path"), [
    ({"wavelength_nm": 1550.0, "grid_channel": 3}, "links[0].classical_channels[0]"),
    ({"grid_channel": "X21"}, "links[0].classical_channels[0].grid_channel"),
    ({"grid_channel": 4, "grid_spacing_ghz": 30}, "links[0].classical_channels[0]"),
    ({"grid_channel": 900}, "links[0].classical_channels[0]"),
    ({"count": 0, "grid_channel": 4}, "links[0].classical_channels[0].count"),
    ({"wavelength_nm": 1700.0}, "links[0].classical_channels[0].wavelength_nm"),
])
def test_channel_errors_name_the_field(channel: dict[str, Any], path: str) -> None:
    problems = _problems(quantum_wavelength_nm=1310.0, loss_db_per_km=0.33,
                         classical_channels=[channel])
    assert any(p.startswith(path) for p, _ in problems), problems
