"""Properties every registered protocol must have, whatever its paper."""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
