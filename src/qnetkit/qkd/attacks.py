"""Eavesdropper models for the Monte-Carlo quantum stage, and Bob's two-detector response.

Every attack acts on each pulse independently (a random ``fraction`` of pulses is attacked), so
it changes only the per-pulse outcome probabilities of Bob's detector pair; the simulator mixes
them with the honest ones and samples detections exactly as without Eve. Models: intercept-resend
(Bennett et al., J. Cryptology 5, 3 (1992)), photon-number splitting (Brassard, Lutkenhaus, Mor,
Sanders, PRL 85, 1330 (2000)) and detector blinding (Lydersen et al., Nat. Photon. 4, 686 (2010)):
whether blinding works and whether Bob's photocurrent monitor sees it follow from Eve's CW power
and Bob's APD and monitor (:mod:`qnetkit.physics.blinding`), not from the attack's name.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Literal, TypeGuard, get_args

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params, decoy_bb84_transmittance
from qnetkit.physics.blinding import BlindingMonitorParams, apd_is_blinded, monitor_alarms
from qnetkit.physics.sources import poisson_pmf
from qnetkit.physics.validate import check_nonnegative, check_positive, check_probability

AttackKind = Literal["intercept-resend", "pns", "blinding"]
ATTACK_KINDS: tuple[str, ...] = get_args(AttackKind)
# Bob's outcome per pulse, relative to the detector that Alice's bit should fire.
OUTCOMES = ("none", "correct", "wrong", "double")
# Photon-number sums stop where the Poisson tail is below this (it is then below float precision
# of the probabilities it is added to).
POISSON_TAIL = 1e-16
# CW power Eve shines on Bob's APDs when a blinding attack is named without one: ~1 mW, the CW
# power reported for the 2010 demonstration of Lydersen et al. (Merali, Nature News, 29 Aug 2010).
DEFAULT_BLINDING_POWER_W = 1e-3


@dataclass(frozen=True)
class Attack:
    """An eavesdropper attacking a random ``fraction`` of the pulses (or time bins).

    ``kind``: ``intercept-resend`` | ``pns`` (weak coherent source only) | ``blinding``.
    ``blinding_power_w``: for ``blinding`` only (and required there), the CW power Eve shines on
    Bob's APDs while she attacks. Above Bob's linear-mode power the APDs are blinded and Eve
    controls their clicks; below it they stay in Geiger mode and her light floods them. Whether
    Bob notices depends only on that power against his monitor (:func:`blinding_alarm`): a
    blinding power above the linear-mode power but below the monitor's alarm power is NOT
    detected, and the key Bob then accepts is fully known to Eve.
    """

    kind: AttackKind
    fraction: float = 1.0
    blinding_power_w: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ATTACK_KINDS:
            raise ParameterError("kind", self.kind, f"must be one of {', '.join(ATTACK_KINDS)}")
        check_probability("fraction", self.fraction)
        if self.kind == "blinding":
            if self.blinding_power_w is None:
                raise ParameterError(
                    "blinding_power_w", None, "a blinding attack needs its CW power at Bob (W)"
                )
            check_positive("blinding_power_w", self.blinding_power_w)
        elif self.blinding_power_w is not None:
            raise ParameterError(
                "blinding_power_w", self.blinding_power_w, f"only for blinding, not {self.kind}"
            )

    @property
    def cw_power_w(self) -> float:
        """CW power on Bob's APDs while the attack runs (0 unless blinding: single photons)."""
        if self.kind == "blinding" and self.fraction > 0.0 and self.blinding_power_w is not None:
            return self.blinding_power_w
        return 0.0


def _real(value: object) -> TypeGuard[numbers.Real]:
    # bool is an int subclass: True is no fraction. NumPy scalars register as numbers.Real.
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def as_attack(
    attack: object,
    fraction: object = None,
    blinding_power_w: object = None,
) -> Attack | None:
    """The attack named by the command-line options, as an :class:`Attack` (None: no Eve).

    ``attack`` is a name (``intercept-resend`` | ``pns`` | ``blinding``, as ``--attack``), an
    ``Attack`` or None; ``fraction`` (``--attack-fraction``, default 1) and ``blinding_power_w``
    (``--blinding-power-w``, default ``DEFAULT_BLINDING_POWER_W`` for a named blinding attack)
    replace the attack's own values when given. A wrong type or name is a ParameterError naming
    the option and its allowed values.
    """
    if isinstance(attack, str):
        if attack not in ATTACK_KINDS:
            raise ParameterError("attack", attack, f"must be one of {', '.join(ATTACK_KINDS)}")
        power = DEFAULT_BLINDING_POWER_W if attack == "blinding" else None
        base: Attack | None = Attack(attack, 1.0, power)  # type: ignore[arg-type]
    elif attack is None or isinstance(attack, Attack):
        base = attack
    else:
        raise ParameterError(
            "attack",
            attack,
            f"must be an attack name ({', '.join(ATTACK_KINDS)}), an Attack or None",
        )
    if fraction is not None:
        if base is None:
            raise ParameterError(
                "attack_fraction", fraction, f"needs an attack ({', '.join(ATTACK_KINDS)})"
            )
        if not _real(fraction) or not 0.0 <= float(fraction) <= 1.0:
            raise ParameterError("attack_fraction", fraction, "must be a number in [0, 1]")
        base = replace(base, fraction=float(fraction))
    if blinding_power_w is not None:
        if base is None or base.kind != "blinding":
            raise ParameterError(
                "blinding_power_w", blinding_power_w, "only with a blinding attack"
            )
        if not _real(blinding_power_w):
            raise ParameterError("blinding_power_w", blinding_power_w, "must be a number > 0 (W)")
        base = replace(base, blinding_power_w=float(blinding_power_w))
    return base


def blinding_alarm(attack: Attack | None, monitor: BlindingMonitorParams | None = None) -> bool:
    """Whether Bob's photocurrent monitor trips, from the photocurrent it reads.

    Physical model (:func:`qnetkit.physics.blinding.monitor_alarms`): I = R P + background with
    P Eve's CW power while she attacks, against the monitor's threshold (Yuan, Dynes, Shields,
    Nat. Photon. 4, 800 (2010)). Intercept-resend and PNS send at most the photons of Alice's
    pulses (P = 0 here), so they never trip it; nor does a blinding power below the alarm power.
    The monitor compares the current while the light is on, so an attacked ``fraction`` below
    one does not dilute it.
    """
    params = monitor if monitor is not None else BlindingMonitorParams()
    power = 0.0 if attack is None else attack.cw_power_w
    return monitor_alarms(power, params)


def blinding_succeeds(attack: Attack, monitor: BlindingMonitorParams | None) -> bool:
    """Whether Eve's CW power switches Bob's APDs to linear mode (Lydersen et al. 2010)."""
    params = monitor if monitor is not None else BlindingMonitorParams()
    return apd_is_blinded(attack.cw_power_w, params)


# --------------------------------------------------------------------------- Bob's detectors


def per_detector_dark_prob(background_prob: float) -> float:
    """Dark-count probability of each of two detectors whose combined background is Y0.

    Ma et al. (2005) give Y0 for Bob's whole detection unit: 1 - (1 - p)^2 = Y0, p ~ Y0 / 2.
    """
    check_probability("dark_count_prob", background_prob)
    # -expm1(log1p(-Y0)/2) = 1 - sqrt(1 - Y0) without cancellation for tiny Y0.
    return float(-math.expm1(0.5 * math.log1p(-background_prob))) if background_prob < 1 else 1.0


def pair_outcomes(
    quiet_correct: npt.ArrayLike, quiet_wrong: npt.ArrayLike, quiet_both: npt.ArrayLike
) -> FloatArray:
    """Outcome probabilities (none, correct only, wrong only, double) on the last axis.

    Inputs are the probabilities that the correct detector stays silent, that the wrong one does,
    and that both do (photons and dark counts included); the outcomes follow by inclusion-exclusion
    and are linear in them, so mixtures of inputs give mixtures of outcomes.
    """
    qc = np.asarray(quiet_correct, dtype=np.float64)
    qw = np.asarray(quiet_wrong, dtype=np.float64)
    qb = np.asarray(quiet_both, dtype=np.float64)
    out = np.stack(np.broadcast_arrays(qb, qw - qb, qc - qb, 1.0 - qc - qw + qb), axis=-1)
    # Inclusion-exclusion can leave -1e-17 where a probability is exactly 0.
    return np.asarray(np.clip(out, 0.0, 1.0))


def fock_quiet(
    photons: npt.ArrayLike, efficiency: float, to_correct: npt.ArrayLike, p_dark: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Silence probabilities of Bob's detectors for ``photons`` identical photons.

    Each photon independently reaches the correct detector with probability ``to_correct`` (the
    wrong one otherwise) and is detected with ``efficiency``; each detector darks with ``p_dark``.
    """
    n = np.asarray(photons, dtype=np.float64)
    q = np.asarray(to_correct, dtype=np.float64)
    silent = 1.0 - p_dark
    return (
        np.asarray(silent * (1.0 - efficiency * q) ** n),
        np.asarray(silent * (1.0 - efficiency * (1.0 - q)) ** n),
        np.asarray(silent**2 * (1.0 - efficiency) ** n),
    )


def _poisson_table(mu: float) -> tuple[FloatArray, FloatArray]:
    """Photon numbers 0..n_max and their Poisson probabilities, tail below POISSON_TAIL."""
    n_max = math.ceil(mu + 12.0 * math.sqrt(mu) + 40.0)
    n = np.arange(n_max + 1, dtype=np.float64)
    return n, poisson_pmf(n, mu)


# --------------------------------------------------------------------------- decoy BB84


def pns_forward_fraction(link: DecoyBB84Params, length_km: float, mu: float) -> float:
    """Fraction of multi-photon pulses Eve forwards so that Bob's gain at ``mu`` is unchanged.

    Eve blocks every pulse of 0 or 1 photons, keeps one photon of an n >= 2 pulse and forwards the
    other n - 1 losslessly with probability s, else blocks it; Bob's gain is then
    D (1 - s P(n>=2)) + s sum_{n>=2} P(n) [1 - (1-p)^2 (1-eta_Bob)^(n-1)], D = 1 - (1-p)^2 his
    dark-click probability. s solves gain = 1 - (1-p)^2 exp(-eta mu) (the honest gain), clipped to
    [0, 1]: s = 1 means the channel is too short for an invisible attack.
    """
    check_nonnegative("length_km", length_km)
    check_positive("mu", mu)
    p = per_detector_dark_prob(link.dark_count_prob)
    silent2 = (1.0 - p) ** 2
    eta = float(decoy_bb84_transmittance(link, length_km))
    honest = -math.expm1(math.log(silent2) - eta * mu) if p < 1 else 1.0
    dark_only = 1.0 - silent2
    n, pn = _poisson_table(mu)
    multi = n >= 2
    forwarded = float(
        np.sum(pn[multi] * (1.0 - silent2 * (1.0 - link.detector_efficiency) ** (n[multi] - 1)))
    )
    p_multi = float(np.sum(pn[multi]))
    denominator = forwarded - dark_only * p_multi
    if denominator <= 0.0:
        # Bob cannot see anything Eve forwards (eta_Bob = 0): every choice looks the same.
        return 1.0
    return float(np.clip((honest - dark_only) / denominator, 0.0, 1.0))


def blinding_trigger_prob(honest_gain: float, mu: float) -> float:
    """Probability that Eve's faked state is sent, chosen to reproduce Bob's honest gain.

    Eve sees a photon with probability 1 - exp(-mu) and her faked state fires Bob only when his
    basis matches hers (probability 1/2), so t (1 - exp(-mu)) / 2 = honest gain, capped at 1.
    """
    seen = -math.expm1(-mu)
    if seen <= 0.0:
        return 1.0
    return min(1.0, 2.0 * honest_gain / seen)


def decoy_attacked_outcomes(
    attack: Attack,
    intensities: tuple[float, ...],
    link: DecoyBB84Params,
    length_km: float,
    monitor: BlindingMonitorParams | None = None,
) -> FloatArray:
    """Bob's outcome probabilities on an attacked pulse, shape (classes, 2, 4).

    Axis 1 is 0 for matching Alice-Bob bases, 1 for different ones; axis 2 follows OUTCOMES.
    Eve picks her basis uniformly. Per kind:

    * intercept-resend: Eve measures at Alice's output with an ideal detector (a result iff the
      pulse has a photon, probability 1 - exp(-mu)) and resends one photon in her basis and
      result through the whole channel. Her basis is Alice's half of the time (photon carries
      Alice's bit, Bob errs only by misalignment); otherwise the photon is random for Bob in
      either basis, so sifted intercepted photons err with 1/4 + e_d/2.
    * pns: photon-number splitting as in :func:`pns_forward_fraction`; the forwarded n - 1
      photons carry Alice's state, so they err only by misalignment. Eve cannot tell decoy from
      signal pulses: the forward fraction set for the signal (first) intensity applies to all.
    * blinding: Eve measures as in intercept-resend and, with probability
      :func:`blinding_trigger_prob` (signal gain kept), sends a faked state that makes Bob's
      detector for her result click iff his basis is hers; blinded detectors have no dark counts.
      Sifted faked clicks therefore never err. That needs her CW power above the linear-mode
      power of Bob's APDs (``monitor``); below it they stay in Geiger mode and her light fires
      both in every gate (>~ 1 nW already puts ~10 photons at 1550 nm in a 1 ns gate): every
      attacked pulse is a double click, squashed to a random bit.
    """
    p = per_detector_dark_prob(link.dark_count_prob)
    e_d = link.misalignment_error
    eta_bob = link.detector_efficiency
    eta = float(decoy_bb84_transmittance(link, length_km))
    signal = intensities[0]
    out = np.zeros((len(intensities), 2, 4))
    for c, mu in enumerate(intensities):
        vacuum = math.exp(-mu)
        if attack.kind == "intercept-resend":
            # P(photon at the correct detector) for sifted photons: Eve's basis is Alice's w.p.
            # 1/2 (then 1 - e_d), else 1/2; the silence probabilities are linear in it.
            to_correct = np.array([0.5 * (1.0 - e_d) + 0.25, 0.5])
            resent = pair_outcomes(*fock_quiet(1.0, eta, to_correct, p))
            empty = pair_outcomes(*fock_quiet(0.0, eta, to_correct, p))
            out[c] = vacuum * empty + (1.0 - vacuum) * resent
        elif attack.kind == "pns":
            s = pns_forward_fraction(link, length_km, signal) if signal > 0 else 1.0
            n, pn = _poisson_table(mu)
            forwarded = np.where(n >= 2, s * pn, 0.0)
            blocked = 1.0 - float(np.sum(forwarded))
            for m, routing in enumerate((1.0 - e_d, 0.5)):
                quiet = fock_quiet(np.maximum(n - 1.0, 0.0), eta_bob, routing, p)
                mixed = [
                    blocked * (1.0 - p) ** k + float(np.sum(forwarded * q))
                    for k, q in zip((1, 1, 2), quiet, strict=True)
                ]
                out[c, m] = pair_outcomes(*mixed)
        elif not blinding_succeeds(attack, monitor):
            out[c] = (0.0, 0.0, 0.0, 1.0)
        else:
            silent2 = (1.0 - p) ** 2
            honest_signal = -math.expm1(math.log(silent2) - eta * signal) if p < 1 else 1.0
            t = blinding_trigger_prob(honest_signal, signal)
            fired = (1.0 - vacuum) * t * 0.5  # Eve saw a photon, sent, and Bob's basis is hers
            # Matching bases: Eve's basis is Bob's = Alice's, her result is Alice's bit.
            out[c, 0] = (1.0 - fired, fired, 0.0, 0.0)
            # Different bases: Eve's basis is Bob's, not Alice's: her result is random.
            out[c, 1] = (1.0 - fired, 0.5 * fired, 0.5 * fired, 0.0)
    return out


# --------------------------------------------------------------------------- BBM92


def bbm92_bob_arm_attacked(
    attack: Attack,
    n0: npt.NDArray[np.float64],
    n1: npt.NDArray[np.float64],
    rotated: npt.NDArray[np.float64],
    lam: float,
    eta_bob: float,
    p_dark: float,
    e_d: float,
    monitor: BlindingMonitorParams | None = None,
) -> FloatArray:
    """Bob's outcomes (none, only 0, only 1, double) when Eve attacks his arm of an SPDC link.

    Inputs: the pair numbers n0, n1 in Alice's two modes of her basis (the same numbers sit in
    Bob's correlated modes), and ``rotated[..., k]``: the probability that k of Bob's n0 + n1
    photons leave in mode 0 of the other basis. Output shape (2, *n0.shape, 4): [matching bases,
    different bases]. Eve measures all of Bob's photons at the source in a uniformly random basis
    with a photon-number-resolving detector and takes the majority bit (random on ties).

    * intercept-resend: she resends one photon of her bit through Bob's arm (misalignment flips
      it with e_d, dark counts as usual).
    * blinding: with the trigger probability that keeps Bob's click rate at the honest
      1 - (1-p)^2 / (1 + eta_B lam)^2, she fires Bob's detector of her bit iff his basis is hers;
      below the linear-mode power of ``monitor`` both of Bob's detectors fire instead (as in
      :func:`decoy_attacked_outcomes`).
    """
    if attack.kind == "pns":
        raise ParameterError("attack", attack.kind, "photon-number splitting needs a WCP source")
    total = n0 + n1
    k = np.arange(rotated.shape[-1], dtype=np.float64)
    # P(Eve's bit = 0): same basis as Alice sees (n0, n1); the other basis sees (k, n - k).
    same = np.where(n0 > n1, 1.0, np.where(n0 < n1, 0.0, 0.5))
    diff = 2.0 * k - total[..., None]
    other = np.sum(rotated * np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5)), axis=-1)
    seen = total > 0
    # Matching bases: Eve's basis is theirs w.p. 1/2 (bit from `same`); different bases: Eve's
    # basis is Bob's w.p. 1/2 (bit from `other`). Otherwise her photon is random for Bob.
    bit0 = np.stack([same, other])
    out = np.zeros((2, *n0.shape, 4))
    if attack.kind == "intercept-resend":
        flipped = (1.0 - e_d) * bit0 + e_d * (1.0 - bit0)
        to_mode0 = 0.5 * flipped + 0.25
        # Here "correct" means Bob's mode 0: fock_quiet's (correct, wrong) become (mode 0, mode 1).
        photon = pair_outcomes(*fock_quiet(1.0, eta_bob, to_mode0, p_dark))
        nothing = pair_outcomes(*fock_quiet(0.0, eta_bob, to_mode0, p_dark))
        return np.asarray(np.where(seen[None, ..., None], photon, nothing))
    if not blinding_succeeds(attack, monitor):
        out[..., 3] = 1.0
        return out
    honest_click = 1.0 - (1.0 - p_dark) ** 2 / (1.0 + eta_bob * lam) ** 2
    any_pair = 1.0 - 1.0 / (1.0 + lam) ** 2
    t = min(1.0, 2.0 * honest_click / any_pair) if any_pair > 0 else 1.0
    fire = np.where(seen, 0.5 * t, 0.0)
    out[..., 1] = fire * bit0
    out[..., 2] = fire * (1.0 - bit0)
    out[..., 0] = 1.0 - out[..., 1] - out[..., 2]
    return out
