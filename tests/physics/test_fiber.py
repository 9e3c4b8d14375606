"""Fiber pure-loss channel: dB conversions, span budgets, monotonicity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnetkit.errors import ParameterError
from qnetkit.physics.fiber import (
    FiberSpan,
    db_to_transmittance,
    fiber_loss_db,
    fiber_transmittance,
    transmittance_to_db,
)


def test_db_conversions_exact_points() -> None:
    np.testing.assert_allclose(
        db_to_transmittance([0.0, 3.0, 10.0, 20.0, 30.0]),
        [1.0, 0.501187, 0.1, 0.01, 0.001],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        transmittance_to_db([1.0, 0.5, 0.1, 1e-3]), [0.0, 3.0103, 10.0, 30.0], rtol=1e-5, atol=1e-12
    )


def test_standard_fiber_50_km_is_10_db() -> None:
    # 0.2 dB/km, the usual telecom SMF figure at 1550 nm, over 50 km: 10 dB, eta = 0.1.
    assert float(fiber_loss_db(50.0, 0.2)) == pytest.approx(10.0, rel=1e-12)
    assert float(fiber_transmittance(50.0, 0.2)) == pytest.approx(0.1, rel=1e-12)


def test_fiber_functions_are_vectorised_over_length() -> None:
    length = np.array([0.0, 25.0, 50.0, 100.0])
    np.testing.assert_allclose(fiber_loss_db(length, 0.2, 1.0), [1.0, 6.0, 11.0, 21.0])
    np.testing.assert_allclose(
        fiber_transmittance(length, 0.2), [1.0, 10**-0.5, 0.1, 0.01], rtol=1e-12
    )


def test_span_extra_losses_add_in_db() -> None:
    span = FiberSpan(
        length_km=50.0,
        loss_db_per_km=0.2,
        connector_count=2,
        connector_loss_db=0.3,
        splice_count=4,
        splice_loss_db=0.05,
        insertion_loss_db=1.0,
    )
    assert span.extra_loss_db == pytest.approx(0.6 + 0.2 + 1.0)
    assert span.total_loss_db == pytest.approx(11.8)
    assert span.transmittance == pytest.approx(10 ** (-1.18), rel=1e-12)


def test_span_defaults_have_no_lumped_loss() -> None:
    span = FiberSpan(length_km=50.0)
    assert span.extra_loss_db == 0.0
    assert span.transmittance == pytest.approx(0.1)


@pytest.mark.parametrize("field", ["length_km", "loss_db_per_km", "connector_loss_db"])
def test_span_rejects_negative_values_by_name(field: str) -> None:
    kwargs: dict[str, float] = {"length_km": 10.0, field: -1.0}
    with pytest.raises(ParameterError) as err:
        FiberSpan(**kwargs)  # type: ignore[arg-type]
    assert err.value.name == field


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 500.0), st.floats(0.0, 500.0), st.floats(0.0, 1.0))
def test_transmittance_monotone_in_length(a: float, b: float, alpha: float) -> None:
    lo, hi = sorted((a, b))
    t_lo, t_hi = fiber_transmittance([lo, hi], alpha)
    assert 0.0 <= t_hi <= t_lo <= 1.0


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 200.0))
def test_db_roundtrip(loss_db: float) -> None:
    assert float(transmittance_to_db(db_to_transmittance(loss_db))) == pytest.approx(
        loss_db, abs=1e-9
    )


# --- every channel function refuses bad lengths and losses, naming the argument ---------------

BAD = [-200.0, -1e-9, float("nan"), float("inf"), float("-inf")]


def _channel_length_functions() -> list[tuple[str, object]]:
    from qnetkit.physics import freespace, raman

    micius = freespace.micius_downlink()
    model = raman.RamanNoiseModel(
        quantum_wavelength_nm=1310.0,
        filter_bandwidth_nm=0.6,
        channels=(raman.ClassicalChannel(0.0, 5e-9),),
    )
    return [
        ("length_km", lambda x: fiber_loss_db(x, 0.2)),
        ("length_km", lambda x: fiber_transmittance(x, 0.2, 1.0)),
        ("length_km", lambda x: raman.co_propagating_raman_power_w(1e-3, x, 5e-9, 0.6, 0.2)),
        ("length_km", lambda x: raman.counter_propagating_raman_power_w(1e-3, x, 5e-9, 0.6, 0.2)),
        ("length_km", lambda x: model.counts_per_gate(x, 0.1, 1e-9)),
        ("length_km", model.noise_power_w),
        ("range_km", lambda x: freespace.geometric_transmittance(x, 0.3, 1.0, 10e-6)),
        ("range_km", lambda x: freespace.beam_radius_m(x, 10e-6)),
        ("range_km", micius.link.transmittance),
        ("range_km", micius.budget_at_range),
    ]


@pytest.mark.parametrize("bad", BAD)
def test_channel_functions_reject_bad_lengths_by_name(bad: float) -> None:
    for name, function in _channel_length_functions():
        with pytest.raises(ParameterError) as err:
            function(np.array([10.0, bad]))  # type: ignore[operator]
        assert err.value.name == name, function


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: fiber_loss_db(10.0, -0.2), "loss_db_per_km"),
        (lambda: fiber_loss_db(10.0, float("nan")), "loss_db_per_km"),
        (lambda: fiber_transmittance(10.0, 0.2, -3.0), "extra_loss_db"),
        (lambda: fiber_transmittance(10.0, 0.2, float("inf")), "extra_loss_db"),
        (lambda: db_to_transmittance([3.0, -3.0]), "loss_db"),
        (lambda: db_to_transmittance(float("nan")), "loss_db"),
        (lambda: transmittance_to_db([0.5, 1.5]), "transmittance"),
        (lambda: transmittance_to_db(float("nan")), "transmittance"),
    ],
)
def test_fiber_functions_reject_out_of_range_parameters(call: object, name: str) -> None:
    # Before: a negative attenuation or lumped loss turned the fibre into an amplifier.
    with pytest.raises(ParameterError) as err:
        call()  # type: ignore[operator]
    assert err.value.name == name
