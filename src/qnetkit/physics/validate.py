"""Range checks for physical parameters, raising ParameterError with the field's name."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from qnetkit.errors import ParameterError


def check_probability(name: str, value: float) -> None:
    """Require 0 <= value <= 1."""
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ParameterError(name, value, "must be a probability in [0, 1]")


def check_open_probability(name: str, value: float) -> None:
    """Require 0 < value < 1 (a probability that may be neither impossible nor certain)."""
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 < value < 1.0):
        raise ParameterError(name, value, "must be in (0, 1)")


def check_nonnegative(name: str, value: float) -> None:
    """Require a finite value >= 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0.0):
        raise ParameterError(name, value, "must be a finite number >= 0")


def check_positive(name: str, value: float) -> None:
    """Require a finite value > 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0.0):
        raise ParameterError(name, value, "must be a finite number > 0")


def nonnegative_array(name: str, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``values`` as a float64 array; ParameterError names the first NaN, infinite or negative one.

    Used for lengths (km) and losses (dB) that every channel and key-rate function accepts as
    arrays: a negative length would otherwise become a gain, and NaN would propagate silently.
    """
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, values, "must be a number or an array of numbers") from exc
    bad = ~np.isfinite(out) | (out < 0.0)
    if np.any(bad):
        raise ParameterError(name, float(out[bad].flat[0]), "must be finite and >= 0")
    return out
