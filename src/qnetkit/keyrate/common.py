"""Shared pieces of the key-rate engine: entropy, result container, vectorised helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.physics.validate import (
    check_nonnegative,
    check_positive,
    check_probability,
    nonnegative_array,
)


def as_float_array(values: npt.ArrayLike) -> FloatArray:
    """At least 1-d float64 copy of the input."""
    return np.atleast_1d(np.asarray(values, dtype=np.float64)).copy()


def as_length_array(length_km: npt.ArrayLike) -> FloatArray:
    """At least 1-d float64 copy of Alice-Bob lengths; ParameterError for NaN, inf or < 0 km."""
    return np.atleast_1d(nonnegative_array("length_km", length_km)).copy()


def binary_entropy(p: npt.ArrayLike) -> FloatArray:
    """Shannon binary entropy h(p) in bits, vectorised; h(0) = h(1) = 0, input clipped to [0, 1]."""
    x = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -x * np.log2(x) - (1.0 - x) * np.log2(1.0 - x)
    return np.asarray(np.where((x <= 0.0) | (x >= 1.0), 0.0, h))


@dataclass(frozen=True)
class KeyRateCurve:
    """Key rate of one protocol over a set of distances.

    ``key_rate_per_pulse`` is secret bits per emitted pulse (per channel use), already including
    basis sifting, and clipped at 0 where no key can be made. ``transmittance`` is the total
    Alice-to-Bob transmittance (channel and detection) that the PLOB bound is evaluated at.
    """

    protocol: str
    length_km: FloatArray
    key_rate_per_pulse: FloatArray
    qber: FloatArray
    transmittance: FloatArray
    mu: FloatArray | None = None
    extra: dict[str, FloatArray] = field(default_factory=dict)

    def point(self, i: int) -> dict[str, float | None]:
        """One distance as a plain dict (JSON-ready)."""
        out: dict[str, float | None] = {
            "length_km": float(self.length_km[i]),
            "key_rate_per_pulse": float(self.key_rate_per_pulse[i]),
            "qber": float(self.qber[i]),
            "mu": None if self.mu is None else float(self.mu[i]),
        }
        for name, values in self.extra.items():
            out[name] = float(values[i])
        return out


def check_link_params(
    *,
    loss_db_per_km: float,
    extra_loss_db: float,
    detector_efficiency: float,
    dark_count_prob: float,
    misalignment_error: float,
    ec_efficiency: float,
) -> None:
    """Range checks shared by every fiber link's parameters (ParameterError names the field)."""
    check_nonnegative("loss_db_per_km", loss_db_per_km)
    check_nonnegative("extra_loss_db", extra_loss_db)
    check_probability("detector_efficiency", detector_efficiency)
    check_probability("dark_count_prob", dark_count_prob)
    check_probability("misalignment_error", misalignment_error)
    check_positive("ec_efficiency", ec_efficiency)
    if ec_efficiency < 1.0:
        raise ParameterError("ec_efficiency", ec_efficiency, "must be >= 1 (Shannon limit)")
