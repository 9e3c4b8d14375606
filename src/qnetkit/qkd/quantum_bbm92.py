"""Monte-Carlo quantum stage of BBM92: coincidences of an entangled-pair (SPDC) source.

The SPDC model of Ma, Fung, Lo, PRA 76, 012307 (2007): two thermal modes per time bin, threshold
detectors with dark counts on both sides, misalignment flipping Bob's modes, double clicks
squashed to a random bit. Only coincidences are sampled, in O(coincidences).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from qnetkit._types import FloatArray, IntArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import BBM92Params, arm_transmittances, bbm92_key_rate
from qnetkit.physics.blinding import BlindingMonitorParams
from qnetkit.physics.validate import check_nonnegative, check_probability
from qnetkit.qkd.attacks import (
    Attack,
    bbm92_bob_arm_attacked,
    blinding_alarm,
    pair_outcomes,
    per_detector_dark_prob,
)
from qnetkit.qkd.quantum_common import (
    DEFAULT_CHUNK_PULSES,
    AliceRecord,
    BobRecord,
    ByteArray,
    SmallArray,
    _check_run,
    _joined,
    _normalised,
    _sample_chunk,
)

# Pair numbers per thermal mode are summed up to where the geometric tail is below this.
PAIR_TAIL = 1e-16
MAX_PAIRS_PER_MODE = 120


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
