"""Properties every registered protocol must have, whatever its paper."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnetkit.errors import ParameterError
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.plob import plob_bound
from qnetkit.keyrate.registry import PROTOCOL_NAMES, get_protocol

# TF-QKD is measured at a middle node and is *meant* to beat the point-to-point bound.
REPEATERLESS = [n for n in PROTOCOL_NAMES if n not in ("plob", "tf-qkd")]


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_spec_is_complete(name: str) -> None:
    spec = get_protocol(name)
    assert spec.default_preset in spec.presets
    for field in dataclasses.fields(spec.params_type):
        assert field.default is not dataclasses.MISSING, f"{name}.{field.name} has no default"
        assert field.metadata.get("help"), f"{name}.{field.name} has no help text"


@pytest.mark.parametrize("name", [n for n in PROTOCOL_NAMES if n != "plob"])
def test_every_protocol_has_a_finite_maximum_distance(name: str) -> None:
    spec = get_protocol(name)
    reach = max_distance_km(partial(spec.evaluate, spec.presets[spec.default_preset]), tol_km=0.05)
    assert 10.0 < reach < 1000.0 and math.isfinite(reach)


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(REPEATERLESS),
    lengths=st.lists(st.floats(0.0, 400.0), min_size=2, max_size=8),
)
def test_repeaterless_protocols_stay_below_plob_and_fall_with_distance(
    name: str, lengths: list[float]
) -> None:
    spec = get_protocol(name)
    curve = spec.evaluate(spec.presets[spec.default_preset], np.sort(np.array(lengths)))
    rate = curve.key_rate_per_pulse
    assert np.all(rate >= 0.0)
    assert np.all(rate <= plob_bound(curve.transmittance))
    assert np.all(np.diff(rate) <= 1e-9 * rate[:-1] + 1e-300)


# --- input validation in the library (not only in the CLI) ----------------------------------

BAD_LENGTHS = [-200.0, -1e-9, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
@pytest.mark.parametrize("bad", BAD_LENGTHS)
def test_every_protocol_rejects_bad_lengths_by_name(name: str, bad: float) -> None:
    # Before: decoy BB84 at -200 km gave 103 bits/pulse and PLOB gave inf. Every registered
    # evaluator (what the CLI, the demo and the network twin call) must refuse, naming the field.
    spec = get_protocol(name)
    params = spec.presets[spec.default_preset]
    for lengths in ([10.0, bad], bad, np.array([[bad]])):
        with pytest.raises(ParameterError) as err:
            spec.evaluate(params, lengths)
        assert err.value.name == "length_km"


def _other_entry_points() -> list[tuple[str, Callable[[Any], object]]]:
    from qnetkit.keyrate import bbm92, decoy_bb84, finite_decoy_bb84, tf_qkd

    fk = finite_decoy_bb84
    return [
        (
            "finite asymptotic",
            partial(fk.finite_decoy_bb84_asymptotic_key_rate, fk.PRESETS["lim2014"]),
        ),
        (
            "finite transmittance",
            partial(fk.finite_decoy_bb84_transmittance, fk.PRESETS["lim2014"]),
        ),
        (
            "decoy transmittance",
            partial(decoy_bb84.decoy_bb84_transmittance, decoy_bb84.PRESETS["gys2004"]),
        ),
        ("tf fibre", partial(tf_qkd.fibre_transmittance, tf_qkd.PRESETS["lucamarini2018"])),
        ("tf arm", partial(tf_qkd.arm_transmittance, tf_qkd.PRESETS["lucamarini2018"])),
        ("bbm92 arms", lambda x: bbm92.arm_transmittances(x, 0.2, 0.0, 0.1, 0.0)),
    ]


@pytest.mark.parametrize("bad", BAD_LENGTHS)
def test_other_length_entry_points_reject_bad_lengths(bad: float) -> None:
    for label, function in _other_entry_points():
        with pytest.raises(ParameterError) as err:
            function([5.0, bad])
        assert err.value.name == "length_km", label


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_plob_bound_rejects_a_transmittance_outside_0_1(bad: float) -> None:
    with pytest.raises(ParameterError) as err:
        plob_bound([0.5, bad])
    assert err.value.name == "transmittance"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_rate": -1.0}, "min_rate"),
        ({"min_rate": math.nan}, "min_rate"),
        ({"upper_km": -5.0}, "upper_km"),
        ({"upper_km": math.inf}, "upper_km"),
        ({"upper_km": 0.5}, "upper_km"),
        ({"tol_km": 0.0}, "tol_km"),
    ],
)
def test_max_distance_rejects_bad_arguments(kwargs: dict[str, float], field: str) -> None:
    spec = get_protocol("plob")
    with pytest.raises(ParameterError) as err:
        max_distance_km(partial(spec.evaluate, spec.presets["ideal"]), **kwargs)
    assert err.value.name == field
