"""The root finder and the vectorised optimiser on functions with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnetkit.keyrate.common import FloatArray, KeyRateCurve, binary_entropy
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.optimize import golden_section_maximize


def _linear(root: float) -> object:
    def evaluate(lengths: FloatArray) -> KeyRateCurve:
        rate = np.maximum(root - lengths, 0.0)
        return KeyRateCurve("test", lengths, rate, np.zeros_like(lengths), np.ones_like(lengths))

    return evaluate


@pytest.mark.parametrize("root", [0.5, 37.25, 142.2, 1234.5])
def test_root_is_found_to_tolerance(root: float) -> None:
    assert max_distance_km(_linear(root), tol_km=1e-4) == pytest.approx(root, abs=1e-4)  # type: ignore[arg-type]


def test_threshold_moves_the_root() -> None:
    assert max_distance_km(_linear(100.0), min_rate=10.0) == pytest.approx(90.0, abs=1e-3)  # type: ignore[arg-type]


def test_no_key_at_zero_and_unbounded() -> None:
    assert max_distance_km(_linear(0.0)) == 0.0  # type: ignore[arg-type]
    assert math.isinf(max_distance_km(_linear(1e9)))  # type: ignore[arg-type]


def test_golden_section_finds_many_maxima_at_once() -> None:
    targets = np.linspace(0.1, 9.0, 500)
    x, f = golden_section_maximize(
        lambda v: -((v - targets) ** 2), np.zeros(500), np.full(500, 10.0)
    )
    np.testing.assert_allclose(x, targets, atol=1e-8)
    assert np.all(f <= 0.0)


def test_binary_entropy_values() -> None:
    np.testing.assert_allclose(
        binary_entropy([0.0, 0.5, 1.0, 0.11]), [0.0, 1.0, 0.0, 0.4999], atol=1e-4
    )
