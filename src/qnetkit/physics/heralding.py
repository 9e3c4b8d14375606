"""Heralded elementary links: single-click, double-click (Barrett-Kok), multiplexed SPDC.

Every scheme has the same geometry: two nodes ``length_km`` apart, a heralding station (a
50:50 beam splitter and two threshold detectors) at the midpoint. A photon travels L/2 to the
station, the herald travels L/2 back, so one attempt lasts ``L / v`` plus a local preparation
time (:func:`heralding_attempt_s`). Photon loss per half link is the fiber model's
``fiber_transmittance(L/2, loss_db_per_km)``; detector inefficiency is loss in front of an ideal
threshold detector, and ``dark_count_prob`` is each detector's dark-count probability per
detection window (``qnetkit.physics.detectors``).

Outcome accounting, shared by all schemes. A heralded attempt needs exactly one of the two
detectors to click (a click in each is rejected). With one photon per node side of a beam
splitter the outputs follow Hong-Ou-Mandel interference: indistinguishable photons (visibility
V = |<psi_a|psi_b>|^2 = 1) always leave by the same port, partly distinguishable ones with
probability ``(1 + V)/2``. The heralded spin (or memory) state is corrected by a local Pauli
chosen from the click pattern, which maps the heralded ``Psi+``/``Psi-`` to ``Phi+``. After the
correction:

* the intended single-excitation branch (photon from exactly one node, detected) gives
  ``Phi+`` with its coherence reduced by the overlap of the two photons and by optical phase
  noise: weight ``(1 + c)/2`` on ``Phi+``, ``(1 - c)/2`` on ``Phi-``;
* a single-excitation branch whose photon was lost and a dark count heralded instead gives the
  classical mixture ``(|01><01| + |10><10|)/2`` -> after correction ``(Phi+ + Phi-)/2``;
* branches with both or neither node excited (``|00>``, ``|11>``, and for SPDC any memory with
  two or more excitations) are orthogonal to the single-excitation subspace; after the
  correction ``|00>``/``|11>`` become ``|01>``/``|10>``, whose Bell-diagonal part is
  ``(Psi+ + Psi-)/2``. The same weight is used for the multi-excitation terms of SPDC.

``HeraldedLink.bell_diagonal`` is the Bell-diagonal part of the corrected state (its twirl),
ordered ``[A, B, C, D]`` = weights of ``Phi+, Psi-, Psi+, Phi-`` (Deutsch et al. 1996 order;
fidelity = A), the convention of ``qnetkit.entanglement.states``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qnetkit.errors import ParameterError
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.sources import thermal_pmf
from qnetkit.physics.validate import check_nonnegative, check_probability

__all__ = [
    "DEFAULT_DARK_COUNT_PROB",
    "DEFAULT_DETECTOR_EFFICIENCY",
    "FIBER_GROUP_INDEX",
    "FIBER_GROUP_VELOCITY_KM_PER_S",
    "SPEED_OF_LIGHT_KM_PER_S",
    "HeraldedLink",
    "double_click_link",
    "half_link_efficiency",
    "heralding_attempt_s",
    "phase_flip_prob_from_phase_std",
    "single_click_link",
    "spdc_multiplexed_link",
]

SPEED_OF_LIGHT_KM_PER_S = 299_792.458
#: Group index of standard single-mode fiber (Corning SMF-28, 1550 nm: 1.4682 on its datasheet).
FIBER_GROUP_INDEX = 1.468
#: Signal speed in fiber c / n_g = 2.0422e5 km/s (about 4.9 us per km).
FIBER_GROUP_VELOCITY_KM_PER_S = SPEED_OF_LIGHT_KM_PER_S / FIBER_GROUP_INDEX

#: Detector defaults (a superconducting-nanowire detector, per-window dark-count probability);
#: typical values, not taken from one paper.
DEFAULT_DETECTOR_EFFICIENCY = 0.9
DEFAULT_DARK_COUNT_PROB = 1e-7

SCHEMES = ("single-click", "double-click", "spdc")


@dataclass(frozen=True)
class HeraldedLink:
    """One elementary link's heralded entanglement generation.

    ``success_prob``: probability that one attempt heralds a pair; ``bell_diagonal``: the pair's
    state on success, ``(A, B, C, D)`` over ``(Phi+, Psi-, Psi+, Phi-)``; ``attempt_s``: time
    per attempt, classical round trip to the midpoint included; ``scheme``: the scheme's name.
    """

    success_prob: float
    bell_diagonal: tuple[float, float, float, float]
    attempt_s: float
    scheme: str

    def __post_init__(self) -> None:
        check_probability("success_prob", self.success_prob)
        if len(self.bell_diagonal) != 4:
            raise ParameterError("bell_diagonal", self.bell_diagonal, "must have 4 weights")
        for weight in self.bell_diagonal:
            check_probability("bell_diagonal", weight)
        if not math.isclose(sum(self.bell_diagonal), 1.0, rel_tol=0.0, abs_tol=1e-9):
            raise ParameterError("bell_diagonal", self.bell_diagonal, "weights must sum to 1")
        check_nonnegative("attempt_s", self.attempt_s)

    @property
    def fidelity(self) -> float:
        """Fidelity to ``Phi+`` of the heralded pair (the weight A)."""
        return self.bell_diagonal[0]

    @property
    def mean_attempts(self) -> float:
        """Expected attempts until success, ``1 / success_prob`` (inf if it never succeeds)."""
        return math.inf if self.success_prob == 0.0 else 1.0 / self.success_prob

    @property
    def rate_pairs_per_s(self) -> float:
        """Heralded pairs per second if attempts run back to back: ``p / attempt_s``."""
        if self.attempt_s == 0.0:
            return math.inf if self.success_prob > 0.0 else 0.0
        return self.success_prob / self.attempt_s


def heralding_attempt_s(length_km: float, preparation_s: float = 0.0) -> float:
    """Duration of one attempt with the heralding station at the midpoint.

    The photon needs ``L/2 / v`` to reach the station and the herald ``L/2 / v`` to come back,
    so ``attempt_s = preparation_s + L / v`` with ``v`` = :data:`FIBER_GROUP_VELOCITY_KM_PER_S`.
    """
    check_nonnegative("length_km", length_km)
    check_nonnegative("preparation_s", preparation_s)
    return preparation_s + length_km / FIBER_GROUP_VELOCITY_KM_PER_S


def half_link_efficiency(
    length_km: float,
    loss_db_per_km: float = 0.2,
    detector_efficiency: float = DEFAULT_DETECTOR_EFFICIENCY,
    memory_efficiency: float = 1.0,
) -> float:
    """``eta`` = transmittance of L/2 of fiber x detector efficiency x memory efficiency.

    The probability that a photon emitted at one node is detected at the midpoint.
    """
    check_probability("detector_efficiency", detector_efficiency)
    check_probability("memory_efficiency", memory_efficiency)
    check_nonnegative("length_km", length_km)
    t_half = float(fiber_transmittance(0.5 * length_km, loss_db_per_km))
    return t_half * detector_efficiency * memory_efficiency


def phase_flip_prob_from_phase_std(phase_std_rad: float) -> float:
    """Phase-flip probability of a Gaussian optical phase error of standard deviation sigma.

    The heralded state ``(|01> + e^{i phi}|10>)/sqrt(2)`` averaged over ``phi ~ N(0, sigma^2)``
    keeps the coherence ``E[cos phi] = exp(-sigma^2/2)``, i.e. a phase flip with probability
    ``(1 - exp(-sigma^2 / 2)) / 2``.
    """
    check_nonnegative("phase_std_rad", phase_std_rad)
    return 0.5 * (1.0 - math.exp(-0.5 * phase_std_rad**2))


def _check_common(
    length_km: float, detector_efficiency: float, dark_count_prob: float, visibility: float
) -> None:
    check_nonnegative("length_km", length_km)
    check_probability("detector_efficiency", detector_efficiency)
    check_probability("dark_count_prob", dark_count_prob)
    check_probability("visibility", visibility)


def _detector_outcomes(
    eta: float, dark_count_prob: float, visibility: float
) -> tuple[float, float, float, float]:
    """Single-detector herald probabilities for 0, 1 and 2 photons emitted (one per node).

    Returns ``(q, s0, s1, s2)``: ``q`` = no dark count in a detector; ``s0 = 2 p_d q`` (exactly
    one dark count); ``s1 = eta q + (1 - eta) s0`` (one photon, detected or lost);
    ``s2`` = two photons, one from each node: both arrive and bunch (probability
    ``eta^2 (1 + V)/2``), or exactly one arrives (``2 eta (1 - eta)``), then the other detector
    must stay dark (``q``); or both are lost and one dark count heralds.
    """
    q = 1.0 - dark_count_prob
    s0 = 2.0 * dark_count_prob * q
    s1 = eta * q + (1.0 - eta) * s0
    s2 = (eta**2 * 0.5 * (1.0 + visibility) + 2.0 * eta * (1.0 - eta)) * q + (1.0 - eta) ** 2 * s0
    return q, s0, s1, s2


def _bell_diagonal(
    entangled: float, coherence: float, mixed: float, orthogonal: float
) -> tuple[float, tuple[float, float, float, float]]:
    """Success probability and ``(A, B, C, D)`` from the weights of the three kinds of branch.

    ``entangled``: heralded intended state with coherence factor ``coherence``; ``mixed``:
    ``(Phi+ + Phi-)/2``; ``orthogonal``: ``(Psi+ + Psi-)/2`` (see the module docstring).
    """
    total = entangled + mixed + orthogonal
    if total <= 0.0:
        # never heralds (e.g. no photons and no dark counts): the state is immaterial; report
        # the limit of the ideal branch so that callers see p = 0 with a valid state
        return 0.0, (0.5 * (1.0 + coherence), 0.0, 0.0, 0.5 * (1.0 - coherence))
    a = (entangled * 0.5 * (1.0 + coherence) + 0.5 * mixed) / total
    d = (entangled * 0.5 * (1.0 - coherence) + 0.5 * mixed) / total
    b = c = 0.5 * orthogonal / total
    return total, (a, b, c, d)


def single_click_link(
    length_km: float,
    *,
    bright_state: float = 0.1,
    loss_db_per_km: float = 0.2,
    detector_efficiency: float = DEFAULT_DETECTOR_EFFICIENCY,
    dark_count_prob: float = DEFAULT_DARK_COUNT_PROB,
    memory_efficiency: float = 1.0,
    phase_noise: float = 0.0,
    visibility: float = 1.0,
    preparation_s: float = 0.0,
) -> HeraldedLink:
    """Single-click (single-photon interference) heralded link, Cabrillo et al. PRA 59, 1025 (1999).

    Each node prepares ``sqrt(1 - alpha)|0> + sqrt(alpha)|1>``; the bright state |1> emits a
    photon (``alpha`` = ``bright_state``, the bright-state population), detected at the
    midpoint with probability ``eta`` (:func:`half_link_efficiency`, ``memory_efficiency`` is
    the emission/collection efficiency). Branches (module docstring for the states):

    * one node bright, its photon detected: ``2 alpha (1 - alpha) eta q`` -> ``Psi+-``;
    * one node bright, photon lost, dark-count herald: ``2 alpha (1 - alpha)(1 - eta) s0``;
    * both bright: ``alpha^2 s2`` -> ``|11>``; none bright: ``(1 - alpha)^2 s0`` -> ``|00>``.

    With ``p_d = 0`` and ``V = 1`` this is ``p = 1 - (1 - alpha eta)^2 = alpha eta (2 - alpha
    eta)`` and ``F = 2 (1 - alpha)/(2 - alpha eta)``, which in the high-loss limit is the
    ``p = 2 alpha eta``, ``rho = (1 - alpha)|Psi+-><Psi+-| + alpha |11><11|`` (``F = 1 - alpha``)
    of Humphreys et al., Nature 558, 268 (2018) and Rozpedek et al., PRA 99, 052330 (2019)
    (single-click model); the full expression is derived here for threshold detectors.
    ``phase_noise``: probability of a phase flip of the heralded state from optical phase
    instability (see :func:`phase_flip_prob_from_phase_std`); ``visibility``: two-photon
    overlap V, the coherence is multiplied by ``sqrt(V)`` (one photon's overlap).
    """
    _check_common(length_km, detector_efficiency, dark_count_prob, visibility)
    check_probability("bright_state", bright_state)
    check_probability("phase_noise", phase_noise)
    eta = half_link_efficiency(length_km, loss_db_per_km, detector_efficiency, memory_efficiency)
    q, s0, _, s2 = _detector_outcomes(eta, dark_count_prob, visibility)
    alpha = bright_state
    one = 2.0 * alpha * (1.0 - alpha)
    coherence = math.sqrt(visibility) * (1.0 - 2.0 * phase_noise)
    prob, state = _bell_diagonal(
        entangled=one * eta * q,
        coherence=coherence,
        mixed=one * (1.0 - eta) * s0,
        orthogonal=alpha**2 * s2 + (1.0 - alpha) ** 2 * s0,
    )
    return HeraldedLink(prob, state, heralding_attempt_s(length_km, preparation_s), SCHEMES[0])


def double_click_link(
    length_km: float,
    *,
    loss_db_per_km: float = 0.2,
    detector_efficiency: float = DEFAULT_DETECTOR_EFFICIENCY,
    dark_count_prob: float = DEFAULT_DARK_COUNT_PROB,
    memory_efficiency: float = 1.0,
    visibility: float = 1.0,
    preparation_s: float = 0.0,
) -> HeraldedLink:
    """Double-click heralded link, Barrett & Kok, PRA 71, 060310(R) (2005).

    Each node prepares ``(|0> + |1>)/sqrt(2)`` (|1> emits); one photon is detected in a first
    round, both spins are flipped, and one photon must be detected in a second round. Without
    dark counts only the single-excitation half of the state can click once in each round:
    ``p = eta^2 / 2`` (Barrett & Kok: both photons must arrive, and a beam-splitter station
    identifies two of the four Bell states), and the |11> branch that spoils single-click is
    removed (after the flip it emits nothing). Optical phase drift slower than the two rounds
    cancels. With dark counts (per round, ``s0, s1, s2`` of the single-click analysis):

    * entangled: ``(eta q)^2 / 2``, coherence ``V`` (the photon overlap, once per round);
    * single-excitation with a lost photon and a dark herald in a round: ``(s1^2 - (eta q)^2)/2``
      -> ``(Phi+ + Phi-)/2``;
    * ``|00>`` / ``|11>`` (one round by dark counts only): ``2 x s0 s2 / 4`` -> ``(Psi+ + Psi-)/2``.

    Ideal detectors give ``F = (1 + V)/2``: the fidelity is limited by distinguishability and
    dark counts, not by the brightness.
    """
    _check_common(length_km, detector_efficiency, dark_count_prob, visibility)
    eta = half_link_efficiency(length_km, loss_db_per_km, detector_efficiency, memory_efficiency)
    q, s0, s1, s2 = _detector_outcomes(eta, dark_count_prob, visibility)
    entangled = 0.5 * (eta * q) ** 2
    prob, state = _bell_diagonal(
        entangled=entangled,
        coherence=visibility,
        mixed=0.5 * s1**2 - entangled,
        orthogonal=0.5 * s0 * s2,
    )
    return HeraldedLink(prob, state, heralding_attempt_s(length_km, preparation_s), SCHEMES[1])


def spdc_mode_success_prob(eta: float, mean_pair_number: float, dark_count_prob: float) -> float:
    """Herald probability of one mode: exactly one of the two detectors clicks.

    The photons sent from the two sources are, traced over the memories, independent thermal
    states of mean ``mu`` each; after loss ``eta`` they are thermal of mean ``eta mu``, and a
    balanced beam splitter maps two equal thermal states to two equal thermal states. A
    detector stays silent with probability ``Q = (1 - p_d)/(1 + eta mu)``, so
    ``p = 2 Q (1 - Q)`` (this includes every multi-pair term).
    """
    x = eta * mean_pair_number
    quiet = (1.0 - dark_count_prob) / (1.0 + x)
    loud = (x + dark_count_prob) / (1.0 + x)  # 1 - quiet, without cancellation for small x
    return 2.0 * quiet * loud


def spdc_multiplexed_link(
    length_km: float,
    *,
    modes: int,
    mean_pair_number: float = 0.01,
    loss_db_per_km: float = 0.2,
    detector_efficiency: float = DEFAULT_DETECTOR_EFFICIENCY,
    dark_count_prob: float = DEFAULT_DARK_COUNT_PROB,
    memory_efficiency: float = 1.0,
    phase_noise: float = 0.0,
    preparation_s: float = 0.0,
) -> HeraldedLink:
    """Photon-pair sources with multimode memories: Simon et al., PRL 98, 190503 (2007).

    Each node has, per mode (temporal, spectral or spatial; ``modes`` = M of them per attempt),
    an SPDC source emitting a two-mode squeezed state: n pairs with the thermal probability
    ``P(n) = mu^n / (1 + mu)^(n+1)`` (``qnetkit.physics.sources.thermal_pmf``,
    ``mu = mean_pair_number`` per mode). One photon of each pair is stored in the local
    memory, the other is sent to the midpoint, where one click heralds the single-excitation
    entangled state ``(|10> + |01>)/sqrt(2)`` of the two memories, as in DLCZ with the
    ensemble replaced by a pair source (Simon et al. 2007; the multiplexed variant of
    Collins et al., PRL 98, 060502 (2007)). Per mode (``eta`` = half-link transmittance x
    detector efficiency, ``q = 1 - p_d``):

    * ``p_mode`` = :func:`spdc_mode_success_prob` (all photon numbers);
    * entangled: ``2 P(1) P(0) eta q``; single excitation with a lost photon and a dark herald:
      ``2 P(1) P(0)(1 - eta) s0``; everything else (multi-pair emission, dark count on vacuum)
      counted orthogonal.

    Without dark counts ``F = (1 + eta mu)^2 / (1 + mu)^3``, which is ``1 - 3 mu`` at high loss:
    the multi-pair error (two pairs from one source, ``P(2) ~ mu^2`` thermal, or one pair from
    each) grows linearly with ``mu`` while the rate ``~ 2 eta mu`` does. Modes are independent
    and the first heralded mode is kept, so ``success_prob = 1 - (1 - eta_m p_mode)^M`` with
    the memories' ``memory_efficiency`` ``eta_m`` (the stored excitation must be recalled; as
    in the post-selected schemes of Simon et al. it costs rate, not fidelity).
    """
    if not (isinstance(modes, int) and not isinstance(modes, bool) and modes >= 1):
        raise ParameterError("modes", modes, "must be an integer >= 1")
    _check_common(length_km, detector_efficiency, dark_count_prob, 1.0)
    check_nonnegative("mean_pair_number", mean_pair_number)
    check_probability("memory_efficiency", memory_efficiency)
    check_probability("phase_noise", phase_noise)
    eta = half_link_efficiency(length_km, loss_db_per_km, detector_efficiency)
    mu = mean_pair_number
    q = 1.0 - dark_count_prob
    s0 = 2.0 * dark_count_prob * q
    p_mode = spdc_mode_success_prob(eta, mu, dark_count_prob)
    p0, p1 = (float(v) for v in thermal_pmf([0, 1], mu))
    one_excitation = 2.0 * p1 * p0  # exactly one node holds one pair
    entangled = one_excitation * eta * q
    mixed = one_excitation * (1.0 - eta) * s0
    orthogonal = max(0.0, p_mode - entangled - mixed)
    _, state = _bell_diagonal(entangled, 1.0 - 2.0 * phase_noise, mixed, orthogonal)
    per_mode = memory_efficiency * p_mode
    # 1 - (1 - p)^M without cancellation for small p
    success = -math.expm1(modes * math.log1p(-per_mode)) if per_mode < 1.0 else 1.0
    return HeraldedLink(success, state, heralding_attempt_s(length_km, preparation_s), SCHEMES[2])
