"""Shared core of the Monte-Carlo quantum stage: detection records, sampling, Bob's detector unit.

Detections of independent pulses are sampled in O(detections) (a binomial count on a uniformly
random subset of the pulses, then each detection's cell and outcome): exactly the per-pulse model
of ``qkd.quantum_decoy`` and ``qkd.quantum_bbm92``. Bob's detector pair is one non-paralysable
dead-time unit with first-order afterpulses (model stated in ``simulate_decoy_bb84``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numba import njit

from qnetkit._types import BoolArray, FloatArray, IntArray
from qnetkit.errors import ParameterError
from qnetkit.physics.blinding import BlindingMonitorParams
from qnetkit.physics.validate import check_nonnegative, check_probability

ByteArray = npt.NDArray[np.uint8]
SmallArray = npt.NDArray[np.int16]

DEFAULT_CHUNK_PULSES = 2**31
# "Last click" before the run: far enough in the past that no dead time applies.
NO_CLICK = -(2**62)


@dataclass(frozen=True)
class DetectorTimingParams:
    """Bob's detection unit, Monte-Carlo only: dead time, afterpulsing, APDs under bright light.

    ``blinding_monitor``: his APDs' linear-mode power and the photocurrent monitor that watches
    them (:class:`qnetkit.physics.blinding.BlindingMonitorParams`).
    """

    dead_time_s: float = 0.0
    afterpulse_prob: float = 0.0
    blinding_monitor: BlindingMonitorParams = field(default_factory=BlindingMonitorParams)

    def __post_init__(self) -> None:
        check_nonnegative("dead_time_s", self.dead_time_s)
        check_probability("afterpulse_prob", self.afterpulse_prob)
        if not isinstance(self.blinding_monitor, BlindingMonitorParams):
            raise ParameterError(
                "blinding_monitor", self.blinding_monitor, "must be BlindingMonitorParams"
            )


@dataclass(frozen=True, eq=False)
class AliceRecord:
    """Alice's data for the pulses Bob detected (sorted by pulse index), and what she sent.

    ``basis``: 0 = Z, 1 = X. ``pulses_per_class``: pulses of each intensity class sent in total.
    """

    pulse_index: IntArray
    basis: ByteArray
    bit: ByteArray
    intensity_class: ByteArray
    pulses_per_class: IntArray
    pulses: int


@dataclass(frozen=True, eq=False)
class BobRecord:
    """Bob's detections (sorted by pulse index); double clicks already squashed to a random bit.

    ``blinding_alarm``: his photocurrent monitor read a current above its threshold.
    """

    pulse_index: IntArray
    basis: ByteArray
    bit: ByteArray
    double_click: BoolArray
    pulses: int
    blinding_alarm: bool


# --------------------------------------------------------------------------- sampling core


def _sorted_distinct_uniform(rng: np.random.Generator, population: int, k: int) -> IntArray:
    """A uniformly random k-subset of range(population), sorted, in O(k) memory when k is small.

    Draws with replacement and redraws only the shortfall left by duplicates: the procedure is
    invariant under relabelling the population, so every k-subset is equally likely.
    """
    if k > population:
        raise ValueError(f"cannot choose {k} of {population}")
    if 2 * k > population:
        # Dense: choose the complement (the memory is O(population) = O(k) anyway).
        mask = np.ones(population, dtype=np.bool_)
        mask[_sorted_distinct_uniform(rng, population, population - k)] = False
        return np.flatnonzero(mask).astype(np.int64)
    out = _sorted_unique(rng.integers(0, population, size=k, dtype=np.int64))
    while out.size < k:
        extra = rng.integers(0, population, size=k - out.size, dtype=np.int64)
        out = _sorted_unique(np.concatenate([out, extra]))
    return out


def _sorted_unique(values: IntArray) -> IntArray:
    """Sorted distinct values (np.unique's hash path is several times slower for int64 here)."""
    values = np.sort(values)
    if values.size < 2:
        return values
    return np.asarray(values[np.concatenate([[True], values[1:] != values[:-1]])])


@dataclass(frozen=True, eq=False)
class _ChunkSample:
    counts: IntArray  # pulses per cell
    detected: IntArray  # detections per cell
    position: IntArray  # sorted positions of the detections within the chunk
    cell: SmallArray  # cell of each detection
    outcome: SmallArray  # outcome code of each detection


def _sample_chunk(
    rng: np.random.Generator, chunk: int, cell_probs: FloatArray, outcome_probs: FloatArray
) -> _ChunkSample:
    """Detections of ``chunk`` pulses, each in a cell drawn from ``cell_probs`` independently.

    ``outcome_probs[cell, o]`` is the per-pulse probability of detection outcome o (no-click
    excluded). Exactly the per-pulse model, without per-pulse draws: the number of detections is
    binomial, they sit on a uniform random subset of the chunk, each independently takes
    (cell, outcome) with probability proportional to cell_probs * outcome_probs, and the
    undetected pulses' cells are multinomial in proportion to cell_probs * P(no click | cell).
    (Equivalent to drawing multinomial cell counts and binomial detections per cell.)
    """
    joint = (cell_probs[:, None] * outcome_probs).ravel()
    p_detect = min(float(joint.sum()), 1.0)
    total = int(rng.binomial(chunk, p_detect))
    position = _sorted_distinct_uniform(rng, chunk, total)
    n_outcomes = outcome_probs.shape[1]
    if total:
        cdf = np.cumsum(joint)
        cdf /= cdf[-1]
        label = np.searchsorted(cdf, rng.random(total), side="right").astype(np.int64)
    else:
        label = np.empty(0, dtype=np.int64)
    # Table look-ups: int64 division costs several times more on millions of detections.
    cell = np.repeat(np.arange(cell_probs.size, dtype=np.int16), n_outcomes)[label]
    outcome = np.tile(np.arange(n_outcomes, dtype=np.int16), cell_probs.size)[label]
    detected = np.bincount(cell, minlength=cell_probs.size).astype(np.int64)
    silent = cell_probs * np.clip(1.0 - outcome_probs.sum(axis=1), 0.0, 1.0)
    counts = detected + rng.multinomial(chunk - total, _normalised(silent)).astype(np.int64)
    return _ChunkSample(counts, detected, position, cell, outcome)


def _joined(
    indices: list[IntArray], cells: list[SmallArray], kinds: list[SmallArray]
) -> tuple[IntArray, SmallArray, SmallArray]:
    """The chunks' detections as three flat arrays (empty ones if there were no chunks)."""
    return (
        np.concatenate([np.empty(0, dtype=np.int64), *indices]),
        np.concatenate([np.empty(0, dtype=np.int16), *cells]),
        np.concatenate([np.empty(0, dtype=np.int16), *kinds]),
    )


def _normalised(p: FloatArray) -> FloatArray:
    """Probability rows scaled to sum to 1 exactly (multinomial draws insist); zero rows uniform."""
    sums = p.sum(axis=-1, keepdims=True)
    return np.asarray(np.where(sums > 0, p / np.where(sums > 0, sums, 1.0), 1.0 / p.shape[-1]))


def _check_run(length_km: float, pulses: int, chunk_pulses: int) -> None:
    check_nonnegative("length_km", length_km)
    for name, value, least in (("pulses", pulses, 0), ("chunk_pulses", chunk_pulses, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ParameterError(name, value, f"must be an integer >= {least}")


# --------------------------------------------------------------------------- dead time


def _dead_time_kernel(
    index: IntArray,
    trigger: BoolArray,
    delay: IntArray,
    dead_pulses: float,
    last_click: int,
    pending_in: IntArray,
    chunk_end: int,
) -> tuple[BoolArray, IntArray, int, IntArray]:
    """Non-paralysable dead time and first-order afterpulses of one detection unit, in time order.

    ``index``: sorted candidate detections; a kept one with ``trigger`` set schedules an afterpulse
    ``delay`` pulses later. Afterpulses before ``chunk_end`` are played here (kept if the unit is
    live, and then they block it too); later ones are returned as pending for the next chunk.
    """
    n = index.shape[0]
    keep = np.zeros(n, dtype=np.bool_)
    pending = np.empty(n + pending_in.shape[0], dtype=np.int64)
    n_pending = pending_in.shape[0]
    pending[:n_pending] = pending_in
    afterpulses = np.empty(n + pending_in.shape[0], dtype=np.int64)
    n_after = 0
    last = last_click
    i = 0
    while True:
        # Few afterpulses are pending at once (each expires within a few dead times): scan.
        j_min = -1
        t_min = chunk_end
        for j in range(n_pending):
            if pending[j] < t_min:
                t_min = pending[j]
                j_min = j
        if i < n and (j_min < 0 or index[i] <= t_min):
            t = index[i]
            if t > last and t - last >= dead_pulses:
                keep[i] = True
                last = t
                if trigger[i]:
                    pending[n_pending] = t + delay[i]
                    n_pending += 1
            i += 1
        elif j_min >= 0:
            n_pending -= 1
            pending[j_min] = pending[n_pending]
            # An afterpulse in the gate of a kept detection is the same click: t > last.
            if t_min > last and t_min - last >= dead_pulses:
                afterpulses[n_after] = t_min
                n_after += 1
                last = t_min
        else:
            break
    return keep, afterpulses[:n_after].copy(), last, pending[:n_pending].copy()


_dead_time_and_afterpulses: Callable[
    [IntArray, BoolArray, IntArray, float, int, IntArray, int],
    tuple[BoolArray, IntArray, int, IntArray],
] = njit(cache=True)(_dead_time_kernel)


def _cells_of_undetected(rng: np.random.Generator, undetected: IntArray, k: int) -> IntArray:
    """Cells of k pulses drawn without replacement from the undetected pulses (counts per cell)."""
    position = _sorted_distinct_uniform(rng, int(undetected.sum()), k)
    cells = np.searchsorted(np.cumsum(undetected), position, side="right").astype(np.int64)
    return np.asarray(rng.permutation(cells))
