"""Vectorised one-dimensional maximisation: many independent golden-section searches at once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qnetkit.keyrate.common import FloatArray

_INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0


def golden_section_maximize(
    objective: Callable[[FloatArray], FloatArray],
    lower: FloatArray,
    upper: FloatArray,
    iterations: int = 60,
) -> tuple[FloatArray, FloatArray]:
    """Maximise ``objective`` elementwise on ``[lower, upper]``; returns (argmax, max).

    ``objective`` maps an array of candidate points (one per problem) to their values; each
    problem is assumed unimodal on its bracket. All problems advance together, so the cost is
    ``iterations`` vectorised evaluations regardless of how many problems there are.
    """
    a = np.array(lower, dtype=np.float64)
    b = np.array(upper, dtype=np.float64)
    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    fc = objective(c)
    fd = objective(d)
    for _ in range(iterations):
        # Ties go left so that flat zero regions converge to the bracket's lower side stably.
        left = fc >= fd
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = b - _INV_PHI * (b - a)
        new_d = a + _INV_PHI * (b - a)
        c_next = np.where(left, new_c, d)
        d_next = np.where(left, c, new_d)
        probe = np.where(left, c_next, d_next)
        f_probe = objective(probe)
        fc, fd = np.where(left, f_probe, fd), np.where(left, fc, f_probe)
        c, d = c_next, d_next
    x = 0.5 * (a + b)
    return x, objective(x)
