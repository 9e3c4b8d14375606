"""Maximum distance of a protocol: the root of its key rate (or of rate - threshold) in length."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve
from qnetkit.physics.validate import check_nonnegative, check_positive

Evaluator = Callable[[FloatArray], KeyRateCurve]


def max_distance_km(
    evaluate: Evaluator,
    min_rate: float = 0.0,
    upper_km: float = 5000.0,
    tol_km: float = 1e-3,
) -> float:
    """Largest length with key rate > ``min_rate`` (rates assumed non-increasing in length).

    Returns ``0.0`` if no key is possible even at zero length and ``math.inf`` if the rate is
    still above the threshold at ``upper_km`` (e.g. the PLOB bound, or no dark counts).
    """
    check_nonnegative("min_rate", min_rate)
    check_positive("upper_km", upper_km)
    check_positive("tol_km", tol_km)
    if upper_km <= 1.0:
        raise ParameterError("upper_km", upper_km, "must exceed 1 km (the first grid point)")
    grid = np.concatenate(([0.0], np.geomspace(1.0, upper_km, 48)))
    rates = evaluate(grid).key_rate_per_pulse
    above = rates > min_rate
    if not above[0]:
        return 0.0
    if above[-1]:
        return math.inf
    first_below = int(np.argmin(above))
    lo, hi = float(grid[first_below - 1]), float(grid[first_below])
    while hi - lo > tol_km:
        mid = 0.5 * (lo + hi)
        if evaluate(np.array([mid])).key_rate_per_pulse[0] > min_rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
