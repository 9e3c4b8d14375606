"""Monte-Carlo quantum stage: the detection records of decoy-state BB84 and BBM92 links.

Decoy BB84 uses the detector model of Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005) with Bob's two
threshold detectors explicit (Poisson splitting, double clicks squashed to a random bit); BBM92
the SPDC model of Ma, Fung, Lo, PRA 76, 012307 (2007). Sampling costs O(detections), not O(pulses).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numba import njit

from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import BBM92Params, arm_transmittances, bbm92_key_rate
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params, decoy_bb84_transmittance
from qnetkit.physics.blinding import BlindingMonitorParams
from qnetkit.physics.detectors import threshold_pair_click_probabilities
from qnetkit.physics.validate import check_nonnegative, check_positive, check_probability
from qnetkit.qkd.attacks import (
    Attack,
    bbm92_bob_arm_attacked,
    blinding_alarm,
    decoy_attacked_outcomes,
    pair_outcomes,
    per_detector_dark_prob,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
SmallArray = npt.NDArray[np.int16]

DEFAULT_CHUNK_PULSES = 2**31
# Decoy BB84 outcome codes of a detection, relative to the detector Alice's bit should fire
# (columns 1.. of the per-pulse outcome table); AFTERPULSE: a click no photon or dark count caused.
CORRECT, WRONG, DOUBLE, AFTERPULSE = 0, 1, 2, 3
# "Last click" before the run: far enough in the past that no dead time applies.
NO_CLICK = -(2**62)
# Pair numbers per thermal mode are summed up to where the geometric tail is below this.
PAIR_TAIL = 1e-16
MAX_PAIRS_PER_MODE = 120


@dataclass(frozen=True)
class DecoySourceParams:
    """Alice's phase-randomised weak coherent source: intensity classes and basis choice.

    ``intensities`` are mean photon numbers per pulse, signal first (it must be the largest);
    ``intensity_probs`` the probability of sending each; both users pick the Z (key) basis with
    ``basis_prob_z``.
    """

    # Defaults: near the finite-key optimum of Lim et al. 2014 (Sec. IV) for blocks of ~1e5-1e6
    # detections per basis (signal rare, decoy frequent), found with qnetkit.keyrate's
    # finite_decoy_bb84 optimiser for the gys2004 link; the third class is the vacuum.
    intensities: tuple[float, ...] = (0.4, 0.17, 0.0)
    intensity_probs: tuple[float, ...] = (0.25, 0.5, 0.25)
    basis_prob_z: float = 0.5
    rep_rate_hz: float = 1e9

    def __post_init__(self) -> None:
        if not 1 <= len(self.intensities) <= 255:
            raise ParameterError("intensities", self.intensities, "need 1 to 255 classes")
        if len(self.intensity_probs) != len(self.intensities):
            raise ParameterError(
                "intensity_probs", self.intensity_probs, "need one probability per intensity"
            )
        for i, (mu, prob) in enumerate(zip(self.intensities, self.intensity_probs, strict=True)):
            check_nonnegative(f"intensities[{i}]", mu)
            check_probability(f"intensity_probs[{i}]", prob)
        total = math.fsum(self.intensity_probs)
        if not math.isclose(total, 1.0, rel_tol=0.0, abs_tol=1e-9):
            raise ParameterError("intensity_probs", self.intensity_probs, "must sum to 1")
        signal = self.intensities[0]
        check_positive("intensities[0]", signal)
        if any(mu >= signal for mu in self.intensities[1:]):
            raise ParameterError(
                "intensities", self.intensities, "the signal (first) must exceed every other"
            )
        check_probability("basis_prob_z", self.basis_prob_z)
        check_positive("rep_rate_hz", self.rep_rate_hz)


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


# --------------------------------------------------------------------------- decoy BB84


def _decoy_outcomes(
    link: DecoyBB84Params,
    length_km: float,
    source: DecoySourceParams,
    attack: Attack | None,
    monitor: BlindingMonitorParams | None = None,
) -> FloatArray:
    """Per-pulse outcome probabilities, shape (classes, 2, 4): [same bases, different], OUTCOMES.

    Poisson splitting: with matching bases the correct detector sees eta mu (1 - e_d) photons on
    average and the wrong one eta mu e_d; with different bases each sees eta mu / 2.
    """
    p = per_detector_dark_prob(link.dark_count_prob)
    eta = float(decoy_bb84_transmittance(link, length_km))
    mu = np.asarray(source.intensities, dtype=np.float64)
    e_d = link.misalignment_error
    out = np.empty((mu.size, 2, 4))
    for m, (right, wrong) in enumerate(
        ((eta * mu * (1 - e_d), eta * mu * e_d), (0.5 * eta * mu, 0.5 * eta * mu))
    ):
        pair = threshold_pair_click_probabilities(right, wrong, 1.0, 1.0, p, p)
        out[:, m] = np.stack([pair.no_click, pair.only_a, pair.only_b, pair.double_click], -1)
    if attack is not None and attack.fraction > 0.0:
        attacked = decoy_attacked_outcomes(attack, source.intensities, link, length_km, monitor)
        out = (1.0 - attack.fraction) * out + attack.fraction * attacked
    return out


def expected_gains_and_qber(
    link: DecoyBB84Params,
    length_km: float,
    source: DecoySourceParams,
    *,
    attack: Attack | None = None,
    monitor: BlindingMonitorParams | None = None,
) -> dict[str, FloatArray]:
    """Exact expectations of the Monte-Carlo model, per intensity class.

    ``gain``: P(Bob clicks) per pulse; ``qber``: error rate of sifted (same-basis) clicks, a double
    click counting 1/2; ``sifted_gain``: P(same bases and a click); ``double_click``: P(double);
    ``click_prob``: P(click) of any pulse. Ma et al. (2005) Eqs. (10)-(11) are the same model with
    Y0 added instead of two detectors' dark counts combined (a difference of order Y0 eta mu).
    """
    check_nonnegative("length_km", length_km)
    outcomes = _decoy_outcomes(link, length_km, source, attack, monitor)
    pz = source.basis_prob_z
    same = pz**2 + (1.0 - pz) ** 2
    click = 1.0 - outcomes[..., 0]
    gain = same * click[:, 0] + (1.0 - same) * click[:, 1]
    errors = outcomes[:, 0, 2] + 0.5 * outcomes[:, 0, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        qber = np.where(click[:, 0] > 0, errors / click[:, 0], 0.5)
    return {
        "gain": np.asarray(gain),
        "qber": np.asarray(qber),
        "sifted_gain": np.asarray(same * click[:, 0]),
        "double_click": np.asarray(same * outcomes[:, 0, 3] + (1 - same) * outcomes[:, 1, 3]),
        "click_prob": np.asarray(np.dot(source.intensity_probs, gain)),
    }


def simulate_decoy_bb84(
    link: DecoyBB84Params,
    length_km: float,
    pulses: int,
    source: DecoySourceParams,
    rng: np.random.Generator,
    *,
    timing: DetectorTimingParams | None = None,
    attack: Attack | None = None,
    chunk_pulses: int = DEFAULT_CHUNK_PULSES,
    progress: Callable[[int], None] | None = None,
) -> tuple[AliceRecord, BobRecord]:
    """Detection records of ``pulses`` decoy-BB84 pulses over ``length_km`` of fiber.

    Per pulse: intensity class and both bases drawn independently, Bob's two threshold detectors
    click with Poisson-split light (:func:`expected_gains_and_qber`), double clicks give a random
    bit (squashing); ``link.mu`` is ignored (the intensities are ``source``'s). Exactly this
    per-pulse model is sampled in O(detections) time per chunk of ``chunk_pulses`` pulses, see
    :func:`_sample_chunk`. Dead time: Bob's detector pair is one unit, blocked for
    ``dead_time_s * rep_rate_hz`` pulses after any click (non-paralysable). Afterpulses (first
    order, afterpulses cause none): a click of a photon or dark count triggers, with
    ``afterpulse_prob``, a click of random bit at a delay of the dead time plus a geometric number
    of pulses of mean one dead time (at least one pulse); the pulse it falls on keeps Alice's and
    Bob's choices for it. ``progress`` gets the number of pulses done after each chunk.
    """
    _check_run(length_km, pulses, chunk_pulses)
    timing = timing if timing is not None else DetectorTimingParams()
    outcomes = _decoy_outcomes(link, length_km, source, attack, timing.blinding_monitor)
    classes = len(source.intensities)
    basis_p = np.array([source.basis_prob_z, 1.0 - source.basis_prob_z])
    cell_probs = _normalised(
        (
            np.asarray(source.intensity_probs)[:, None, None]
            * basis_p[None, :, None]
            * basis_p[None, None, :]
        ).ravel()
    )
    # Cell = (class, Alice's basis, Bob's basis), row-major; outcomes depend on bases via a != b.
    relation = np.array([[0, 1], [1, 0]])
    per_cell = outcomes[:, relation, :].reshape(-1, 4)
    detection_probs = per_cell[:, 1:]

    dead_pulses = timing.dead_time_s * source.rep_rate_hz
    p_after = timing.afterpulse_prob
    use_timing = dead_pulses > 0.0 or p_after > 0.0
    min_delay = max(math.ceil(dead_pulses), 1)
    delay_p = 1.0 / max(dead_pulses, 1.0)
    last_click = NO_CLICK
    pending = np.empty(0, dtype=np.int64)

    indices: list[IntArray] = []
    cells: list[SmallArray] = []
    kinds: list[SmallArray] = []
    pulses_per_class = np.zeros(classes, dtype=np.int64)
    for start in range(0, int(pulses), int(chunk_pulses)):
        chunk = min(int(chunk_pulses), int(pulses) - start)
        s = _sample_chunk(rng, chunk, cell_probs, detection_probs)
        index = start + s.position
        cell, kind = s.cell, s.outcome
        if use_timing:
            trigger = rng.random(index.size) < p_after
            delay = min_delay + rng.geometric(delay_p, index.size).astype(np.int64) - 1
            keep, after, last_click, pending = _dead_time_and_afterpulses(
                index, trigger, delay, dead_pulses, last_click, pending, start + chunk
            )
            index, cell, kind = index[keep], cell[keep], kind[keep]
            if after.size:
                # An afterpulse never falls on a detected pulse (that gate clicked or was dead),
                # so its pulse is one of the chunk's undetected ones, chosen at random.
                index = np.concatenate([index, after])
                after_cell = _cells_of_undetected(rng, s.counts - s.detected, after.size)
                cell = np.concatenate([cell, after_cell.astype(np.int16)])
                kind = np.concatenate([kind, np.full(after.size, AFTERPULSE, dtype=np.int16)])
                order = np.argsort(index, kind="stable")
                index, cell, kind = index[order], cell[order], kind[order]
        indices.append(index)
        cells.append(cell)
        kinds.append(kind)
        pulses_per_class += s.counts.reshape(classes, 4).sum(axis=1)
        if progress is not None:
            progress(start + chunk)

    index, cell, kind = _joined(indices, cells, kinds)
    alice_bit = rng.integers(0, 2, index.size, dtype=np.uint8)
    bob_bit = alice_bit ^ (kind == WRONG).astype(np.uint8)
    # Squashing: a double click (and an afterpulse) gives Bob a uniformly random bit.
    random = kind >= DOUBLE
    bob_bit[random] = rng.integers(0, 2, int(np.count_nonzero(random)), dtype=np.uint8)
    cell_ids = np.arange(4 * classes)
    alice = AliceRecord(
        pulse_index=index,
        basis=((cell_ids // 2) % 2).astype(np.uint8)[cell],
        bit=alice_bit,
        intensity_class=(cell_ids // 4).astype(np.uint8)[cell],
        pulses_per_class=pulses_per_class,
        pulses=int(pulses),
    )
    bob = BobRecord(
        pulse_index=index.copy(),
        basis=(cell_ids % 2).astype(np.uint8)[cell],
        bit=bob_bit,
        double_click=kind == DOUBLE,
        pulses=int(pulses),
        blinding_alarm=blinding_alarm(attack, timing.blinding_monitor),
    )
    return alice, bob


# --------------------------------------------------------------------------- BBM92


def _add_photon(amplitudes: FloatArray, sign: float, count: int) -> FloatArray:
    """Create one photon in mode (c0 + sign c1)/sqrt 2 on a state given over |k, n - k>.

    Dividing by sqrt(count) (the new occupation of the created mode) keeps the state normalised,
    so amplitudes stay in [-1, 1] and the recursion loses no precision.
    """
    n = amplitudes.size - 1
    k = np.arange(n + 2, dtype=np.float64)
    out = np.zeros(n + 2)
    out[1:] += np.sqrt(k[1:]) * amplitudes
    out[:-1] += sign * np.sqrt(n + 1 - k[:-1]) * amplitudes
    return out / math.sqrt(2.0 * count)


@functools.lru_cache(maxsize=4)
def _rotation_table(n_max: int) -> FloatArray:
    """P(k photons in mode 0 of the other basis | Fock state |n0, n1> of this one), k <= 2 n_max.

    The 45-degree basis change is a balanced beam splitter, so this includes two-photon
    interference (|1, 1> never gives one photon per mode).
    """
    table = np.zeros((n_max + 1, n_max + 1, 2 * n_max + 1))
    column = np.ones(1)
    for n1 in range(n_max + 1):
        if n1:
            column = _add_photon(column, -1.0, n1)
        state = column
        for n0 in range(n_max + 1):
            if n0:
                state = _add_photon(state, 1.0, n0)
            table[n0, n1, : state.size] = state**2
    table.setflags(write=False)
    return table


def _bbm92_lambda(link: BBM92Params, length_km: float) -> float:
    """lambda = mu / 2 of the link, or the rate-optimal one at this distance if mu is omitted."""
    if link.mu is not None:
        return 0.5 * link.mu
    mu = bbm92_key_rate(link, [length_km]).mu
    if mu is None:  # bbm92_key_rate always reports the pair number it used
        raise RuntimeError("bbm92_key_rate returned no mu")
    return 0.5 * float(mu[0])


def _bbm92_joint(
    link: BBM92Params,
    length_km: float,
    lam: float,
    attack: Attack | None,
    monitor: BlindingMonitorParams | None = None,
) -> FloatArray:
    """P(Alice's outcome a, Bob's outcome b) per time bin, shape (2, 3, 3).

    Axis 0: same bases, different bases; outcomes: only detector 0, only detector 1, double.
    The source is two independent thermal modes of mean lambda (Ma-Fung-Lo 2007 Eq. (1)); in a
    common Z or X basis Alice's mode i holds as many photons as Bob's mode i. Misalignment flips
    Bob's modes with probability e_d per time bin, which reproduces Ma-Fung-Lo's QBER exactly.
    """
    eta_a, eta_b = (
        float(x)
        for x in arm_transmittances(
            length_km,
            link.loss_db_per_km,
            link.extra_loss_db,
            link.detector_efficiency,
            link.source_position,
        )
    )
    p = per_detector_dark_prob(link.dark_count_prob)
    e_d = link.misalignment_error
    ratio = lam / (1.0 + lam)
    n_max = 1 if ratio == 0.0 else max(1, math.ceil(math.log(PAIR_TAIL) / math.log(ratio)))
    if n_max > MAX_PAIRS_PER_MODE:
        raise ParameterError("mu", 2.0 * lam, "too many pairs per pulse for the simulation")
    n = np.arange(n_max + 1, dtype=np.float64)
    thermal = np.exp(n * math.log(ratio) - math.log1p(lam)) if ratio > 0 else (n == 0) * 1.0
    weight = thermal[:, None] * thermal[None, :]
    n0, n1 = np.meshgrid(n, n, indexing="ij")
    silent = 1.0 - p

    alice = pair_outcomes(
        silent * (1 - eta_a) ** n0, silent * (1 - eta_a) ** n1, silent**2 * (1 - eta_a) ** (n0 + n1)
    )
    rotated = _rotation_table(n_max)
    k = np.arange(rotated.shape[-1], dtype=np.float64)
    total = (n0 + n1)[..., None]
    # Silence of Bob's detectors 0 and 1 before misalignment: [same basis, other basis].
    quiet_b0 = silent * (1 - eta_b) ** n0, silent * np.sum(rotated * (1 - eta_b) ** k, -1)
    quiet_b1 = (
        silent * (1 - eta_b) ** n1,
        # Clip the exponent: entries with k > n0 + n1 have zero probability anyway.
        silent * np.sum(rotated * (1 - eta_b) ** np.maximum(total - k, 0.0), -1),
    )
    both = silent**2 * (1 - eta_b) ** (n0 + n1)
    bob = np.stack(
        [
            pair_outcomes(
                (1 - e_d) * quiet_b0[m] + e_d * quiet_b1[m],
                (1 - e_d) * quiet_b1[m] + e_d * quiet_b0[m],
                both,
            )
            for m in range(2)
        ]
    )
    if attack is not None and attack.fraction > 0.0:
        attacked = bbm92_bob_arm_attacked(attack, n0, n1, rotated, lam, eta_b, p, e_d, monitor)
        bob = (1.0 - attack.fraction) * bob + attack.fraction * attacked
    return np.asarray(np.einsum("ij,ija,mijb->mab", weight, alice[..., 1:], bob[..., 1:]))


def expected_bbm92_coincidences(
    link: BBM92Params,
    length_km: float,
    *,
    attack: Attack | None = None,
    monitor: BlindingMonitorParams | None = None,
) -> dict[str, FloatArray]:
    """Exact expectations of the BBM92 Monte-Carlo model per time bin.

    ``coincidence``: P(both click) with [same, different] bases; ``qber``: sifted error rate
    (a double click on either side counts 1/2); ``mu``: the mean pair number used.
    """
    check_nonnegative("length_km", length_km)
    lam = _bbm92_lambda(link, length_km)
    joint = _bbm92_joint(link, length_km, lam, attack, monitor)
    coincidence = joint.sum(axis=(1, 2))
    same = joint[0]
    errors = same[0, 1] + same[1, 0] + 0.5 * (same[2].sum() + same[:2, 2].sum())
    qber = errors / coincidence[0] if coincidence[0] > 0 else 0.5
    return {
        "coincidence": np.asarray(coincidence),
        "qber": np.asarray(qber),
        "mu": np.asarray(2.0 * lam),
    }


def simulate_bbm92(
    link: BBM92Params,
    length_km: float,
    pulses: int,
    rng: np.random.Generator,
    *,
    attack: Attack | None = None,
    chunk_pulses: int = DEFAULT_CHUNK_PULSES,
    progress: Callable[[int], None] | None = None,
    basis_prob_z: float = 0.5,
    monitor: BlindingMonitorParams | None = None,
) -> tuple[AliceRecord, BobRecord]:
    """Coincidence records of ``pulses`` SPDC time bins of a BBM92 link of total ``length_km``.

    Model of :func:`_bbm92_joint` (thermal pairs, threshold detectors with dark counts, double
    clicks squashed to a random bit on each side); mu is ``link.mu`` or, if omitted, the rate-
    optimal value of ``keyrate.bbm92``. Only coincidences (both sides click) are recorded, so both
    records list the same time bins; they are sampled per basis cell in O(coincidences).
    ``monitor``: Bob's APDs under bright light and his photocurrent monitor (default params).
    """
    _check_run(length_km, pulses, chunk_pulses)
    check_probability("basis_prob_z", basis_prob_z)
    if attack is not None and attack.kind == "pns":
        raise ParameterError("attack", attack.kind, "photon-number splitting needs a WCP source")
    joint = _bbm92_joint(link, length_km, _bbm92_lambda(link, length_km), attack, monitor)
    basis_p = np.array([basis_prob_z, 1.0 - basis_prob_z])
    cell_probs = _normalised((basis_p[:, None] * basis_p[None, :]).ravel())
    per_cell = joint[np.array([0, 1, 1, 0])].reshape(4, 9)

    indices: list[IntArray] = []
    cells: list[SmallArray] = []
    kinds: list[SmallArray] = []
    for start in range(0, int(pulses), int(chunk_pulses)):
        chunk = min(int(chunk_pulses), int(pulses) - start)
        s = _sample_chunk(rng, chunk, cell_probs, per_cell)
        indices.append(start + s.position)
        cells.append(s.cell)
        kinds.append(s.outcome)
        if progress is not None:
            progress(start + chunk)
    index, cell, kind = _joined(indices, cells, kinds)
    codes = np.arange(9)
    alice_out, bob_out = (codes // 3).astype(np.uint8)[kind], (codes % 3).astype(np.uint8)[kind]

    def squash(outcome: ByteArray) -> ByteArray:
        """Detector 0 -> bit 0, detector 1 -> bit 1, double click -> uniformly random bit."""
        bit = outcome.copy()
        double = outcome == 2
        bit[double] = rng.integers(0, 2, int(np.count_nonzero(double)), dtype=np.uint8)
        return bit

    alice = AliceRecord(
        pulse_index=index,
        basis=np.array([0, 0, 1, 1], dtype=np.uint8)[cell],
        bit=squash(alice_out),
        intensity_class=np.zeros(index.size, dtype=np.uint8),
        pulses_per_class=np.array([int(pulses)], dtype=np.int64),
        pulses=int(pulses),
    )
    bob = BobRecord(
        pulse_index=index.copy(),
        basis=np.array([0, 1, 0, 1], dtype=np.uint8)[cell],
        bit=squash(bob_out),
        double_click=bob_out == 2,
        pulses=int(pulses),
        blinding_alarm=blinding_alarm(attack, monitor),
    )
    return alice, bob
