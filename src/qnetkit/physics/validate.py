"""Range checks for physical parameters, raising ParameterError with the field's name."""

from __future__ import annotations

import math

from qnetkit.errors import ParameterError


def check_probability(name: str, value: float) -> None:
    """Require 0 <= value <= 1."""
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ParameterError(name, value, "must be a probability in [0, 1]")


def check_nonnegative(name: str, value: float) -> None:
    """Require a finite value >= 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0.0):
        raise ParameterError(name, value, "must be a finite number >= 0")


def check_positive(name: str, value: float) -> None:
    """Require a finite value > 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0.0):
        raise ParameterError(name, value, "must be a finite number > 0")
