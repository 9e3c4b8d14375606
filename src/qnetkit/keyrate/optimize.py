"""Vectorised maximisation of many independent problems at once: golden section, compass search."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray

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


# Compass search (finite-key decoy BB84 optimises five parameters per distance with it).
STEP_START = 0.4  # compass step in search units (log / logit)
STEP_POLISH = 0.05
STEP_MIN = 2e-3
COMPASS_MAX_POLLS = 150
N_STARTS = 4  # best grid points refined per problem
REL_IMPROVEMENT = 1e-12

RowObjective = Callable[[npt.NDArray[np.intp], FloatArray], FloatArray]
"""objective(rows, candidates): values (len(rows), C) of candidates (len(rows), C, dim)."""


def _improves(new: FloatArray, old: FloatArray) -> npt.NDArray[np.bool_]:
    """new beats old by more than rounding noise (any finite value beats -inf)."""
    margin = np.where(np.isfinite(old), REL_IMPROVEMENT * np.abs(old), 0.0)
    return np.asarray((new > old) & (new - np.where(np.isfinite(old), old, -np.inf) > margin))


def compass_search(
    objective: RowObjective,
    x: FloatArray,
    f: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    step: FloatArray,
) -> None:
    """Vectorised compass search with a momentum probe, one problem per row; in place.

    Each poll tries +-step along every coordinate plus two probes along the recent
    direction of travel (which follows a curved valley faster than coordinate moves).
    """
    dim = x.shape[1]
    directions = np.concatenate([np.eye(dim), -np.eye(dim)])
    momentum = np.zeros_like(x)
    for _ in range(COMPASS_MAX_POLLS):
        rows = np.nonzero(step >= STEP_MIN)[0]
        if rows.size == 0:
            break
        here = x[rows, None, :]
        moves = step[rows, None, None] * directions[None]
        probes = momentum[rows, None, :] * np.array([1.0, 2.0])[None, :, None]
        cand = np.clip(here + np.concatenate([moves, probes], axis=1), lo, hi)
        values = objective(rows, cand)
        best = np.argmax(values, axis=1)
        f_best = values[np.arange(rows.size), best]
        better = _improves(f_best, f[rows])
        moved = rows[better]
        new_x = cand[better, best[better]]
        momentum[moved] = 0.5 * momentum[moved] + (new_x - x[moved])
        x[moved] = new_x
        f[moved] = f_best[better]
        step[moved] = np.minimum(step[moved] * 1.5, STEP_START)
        stalled = rows[~better]
        step[stalled] *= 0.5
        momentum[stalled] = 0.0


def _adopt_neighbours(objective: RowObjective, x: FloatArray, f: FloatArray) -> bool:
    """Try each row's neighbours' optima at the row's own problem; True if any improved."""
    n = x.shape[0]
    rows = np.arange(n)
    left = np.maximum(rows - 1, 0)
    right = np.minimum(rows + 1, n - 1)
    cand = np.stack([x[left], x[right]], axis=1)
    values = objective(rows, cand)
    best = np.argmax(values, axis=1)
    f_best = values[rows, best]
    better = _improves(f_best, f)
    x[better] = cand[better, best[better]]
    f[better] = f_best[better]
    return bool(np.any(better))


def multistart_compass(
    objective: RowObjective, grid: FloatArray, n: int, lo: FloatArray, hi: FloatArray
) -> FloatArray:
    """Best coordinates (n, dim) of ``n`` problems ordered so that neighbours are alike.

    The best ``N_STARTS`` points of the start ``grid`` (n_start, dim) of each problem are refined
    by compass search (then restarted with a small step); afterwards each problem tries its
    neighbours' optima, which lifts a problem stuck in a worse local maximum.
    """
    rows = np.arange(n)
    values = objective(rows, np.broadcast_to(grid, (n, *grid.shape)))
    starts = min(N_STARTS, grid.shape[0])
    top = np.argsort(-values, axis=1, kind="stable")[:, :starts]
    owner = np.repeat(rows, starts)

    def owned(sub: npt.NDArray[np.intp], u: FloatArray) -> FloatArray:
        return objective(owner[sub], u)

    xs = grid[top].reshape(n * starts, -1).copy()
    fs = values[rows[:, None], top].reshape(-1).copy()
    compass_search(owned, xs, fs, lo, hi, np.full(n * starts, STEP_START))
    # A restart from the converged point frees searches stalled in a narrow valley.
    compass_search(owned, xs, fs, lo, hi, np.full(n * starts, STEP_POLISH))
    best = np.argmax(fs.reshape(n, starts), axis=1)
    x = xs.reshape(n, starts, -1)[rows, best].copy()
    f = fs.reshape(n, starts)[rows, best].copy()
    # Neighbouring problems (distances) have nearly the same optimum: hand optima on so a row
    # stuck below its neighbours catches up (this also keeps a sweep monotone).
    for _ in range(3):
        passes = 0
        while passes < n and _adopt_neighbours(objective, x, f):
            passes += 1
        if passes == 0:
            break
        compass_search(objective, x, f, lo, hi, np.full(n, STEP_POLISH))
    return np.asarray(x, dtype=np.float64)
