"""SARG04 key rate (keyrate.sarg04) against the thresholds and comparisons its papers publish.

Sources and how they were read:
- Fung, Tamaki, Lo, PRA 73, 012337 (2006), abstract (read through a garbled public copy of
  arXiv:quant-ph/0510025, so SECOND-HAND in form): one-way bit-error thresholds 10.95 % (one-photon)
  and 2.71 % (two-photon); "SARG04 [with decoys] does not achieve a longer secure distance ... than
  BB84 [with decoys], assuming a typical experimental parameter set".
- Branciard, Gisin, Kraus, Scarani, PRA 72, 032301 (2005), abstract (first-hand): single-photon
  lower bound Q <~ 10.95 %.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import binary_entropy
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params, decoy_bb84_key_rate
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.registry import get_protocol
from qnetkit.keyrate.sarg04 import (
    PRESETS,
    SARG04Params,
    sarg04_key_rate,
    sarg04_rate_at,
    single_photon_phase_error,
    two_photon_phase_error,
)


def _threshold(phase_error) -> float:  # type: ignore[no-untyped-def]
    return float(brentq(lambda e: float(1 - binary_entropy(e) - binary_entropy(phase_error(e))),
                        1e-4, 0.2))


def test_two_photon_threshold_is_the_published_2_71_percent() -> None:
    # Fung-Tamaki-Lo 2006 abstract: one-way threshold 2.71 % for a two-photon source.
    assert _threshold(two_photon_phase_error) == pytest.approx(0.0271, abs=5e-5)
    # Without errors Eve still holds (2 - sqrt2)/4 of the phase of a two-photon pulse.
    assert float(two_photon_phase_error(0.0)) == pytest.approx(0.5 - math.sqrt(2) / 4)
    # The closed form equals the minimisation it replaces: min_x x e + (3 - 2x + sqrt(...))/6.
    xs = np.linspace(0.0, 40.0, 400001)
    for e in (0.005, 0.02, 0.05):
        brute = np.min(xs * e + (3 - 2 * xs + np.sqrt(6 - 6 * math.sqrt(2) * xs + 4 * xs**2)) / 6)
        assert float(two_photon_phase_error(e)) == pytest.approx(brute, abs=1e-7)


def test_single_photon_bound_is_below_the_published_threshold() -> None:
    # Our ep1 = 3/2 eb1 (exact for Pauli channels in the filter picture) gives 8.90 %; the papers'
    # tighter analyses reach 10.95 % (Branciard 2005 abstract, Fung-Tamaki-Lo abstract), so the
    # module errs on the safe side by 2 points of QBER.
    ours = _threshold(single_photon_phase_error)
    assert ours == pytest.approx(0.0890, abs=5e-4)
    assert ours < 0.1095


def test_decoy_sarg04_does_not_outreach_decoy_bb84_on_typical_hardware() -> None:
    # Fung-Tamaki-Lo 2006 abstract: with decoys, SARG04 does not reach further than BB84 on a
    # typical parameter set (here Ma et al.'s gys2004, the decoy-bb84 preset's hardware).
    sarg = max_distance_km(lambda L: sarg04_key_rate(PRESETS["gys2004-decoy"], L), upper_km=300.0)
    bb84 = max_distance_km(lambda L: decoy_bb84_key_rate(DecoyBB84Params(), L), upper_km=300.0)
    assert 50.0 < sarg < bb84
    near = sarg04_key_rate(PRESETS["gys2004-decoy"], [10.0])
    bb84_near = decoy_bb84_key_rate(DecoyBB84Params(), [10.0])
    assert near.key_rate_per_pulse[0] < bb84_near.key_rate_per_pulse[0]


def test_sarg04_qber_is_twice_the_optical_error() -> None:
    # SARG04's conclusive results: right with 1/4, wrong with e_d/2 -> E = 2 e_d / (1 + 2 e_d).
    p = SARG04Params(dark_count_prob=0.0, misalignment_error=0.01, mu=0.2)
    curve = sarg04_key_rate(p, [10.0])
    assert curve.qber[0] == pytest.approx(0.02 / 1.02, rel=1e-9)


def test_no_decoy_rate_scales_as_eta_to_three_halves() -> None:
    # Without decoys every 3+-photon pulse is Eve's: mu^3/6 must stay below mu eta, so the best
    # mu falls like sqrt(eta) and the rate like eta^(3/2) (BB84 without decoys: eta^2).
    p = SARG04Params(loss_db_per_km=0.2, detector_efficiency=1.0, dark_count_prob=0.0,
                     misalignment_error=0.0)
    curve = sarg04_key_rate(p, [100.0, 150.0])
    slope = np.diff(np.log(curve.key_rate_per_pulse)) / np.diff(np.log(curve.transmittance))
    assert float(slope[0]) == pytest.approx(1.5, abs=0.05)
    mu_slope = np.diff(np.log(curve.mu)) / np.diff(np.log(curve.transmittance))  # type: ignore[arg-type]
    assert float(mu_slope[0]) == pytest.approx(0.5, abs=0.05)


def test_no_decoy_rate_is_below_the_decoy_rate() -> None:
    p = dataclasses.replace(PRESETS["gys2004"], misalignment_error=0.01)
    L = np.array([0.0, 10.0, 20.0])
    none = sarg04_key_rate(p, L).key_rate_per_pulse
    decoy = sarg04_key_rate(dataclasses.replace(p, decoys="infinite"), L).key_rate_per_pulse
    assert np.all(none > 0) and np.all(none < decoy)
    eta = np.array([1e-2])
    _rate, parts = sarg04_rate_at(p, eta, np.array([0.1]))
    assert parts["q1"][0] + parts["q2"][0] <= parts["gain"][0]


@pytest.mark.parametrize(("field", "value"), [("misalignment_error", float("nan")),
                                              ("dark_count_prob", -1e-6), ("mu", 0.0),
                                              ("decoys", "vacuum+weak")])
def test_bad_parameters_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ParameterError, match=field):
        SARG04Params(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [-1.0, float("nan")])
def test_bad_length_names_the_field(length: float) -> None:
    with pytest.raises(ParameterError, match="length_km"):
        sarg04_key_rate(PRESETS["gys2004"], [length])


def test_registered() -> None:
    spec = get_protocol("sarg04")
    assert spec.params_type is SARG04Params and "Tamaki" in spec.source
    assert spec.evaluate(spec.params_from("gys2004-decoy", {}), [20.0]).protocol == "sarg04"
