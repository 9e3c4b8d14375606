"""Monte-Carlo quantum stage of decoy-state BB84: Alice's phase-randomised weak coherent source.

Detector model of Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005) with Bob's two threshold detectors
explicit (Poisson splitting, double clicks squashed to a random bit), plus the dead time and
afterpulsing of ``qkd.quantum_common``. Sampling costs O(detections), not O(pulses).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qnetkit._types import FloatArray, IntArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params, decoy_bb84_transmittance
from qnetkit.physics.blinding import BlindingMonitorParams
from qnetkit.physics.detectors import threshold_pair_click_probabilities
from qnetkit.physics.validate import check_nonnegative, check_positive, check_probability
from qnetkit.qkd.attacks import (
    Attack,
    blinding_alarm,
    decoy_attacked_outcomes,
    per_detector_dark_prob,
)
from qnetkit.qkd.quantum_common import (
    DEFAULT_CHUNK_PULSES,
    NO_CLICK,
    AliceRecord,
    BobRecord,
    DetectorTimingParams,
    SmallArray,
    _cells_of_undetected,
    _check_run,
    _dead_time_and_afterpulses,
    _joined,
    _normalised,
    _sample_chunk,
)

# Decoy BB84 outcome codes of a detection, relative to the detector Alice's bit should fire
# (columns 1.. of the per-pulse outcome table); AFTERPULSE: a click no photon or dark count caused.
CORRECT, WRONG, DOUBLE, AFTERPULSE = 0, 1, 2, 3


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
