"""Parameter estimation from observed counts: decoy-state bounds and the finite-key length.

Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014): vacuum and single-photon detections
Eqs. (2)-(3) with Hoeffding deviations, single-photon errors Eq. (4), phase-error bound with
the random-sampling term gamma Eq. (5), and the key length Eq. (1). One basis is the key basis
and the other the test basis (optionally both serve as key, each tested by the other; see
:func:`basis_eps_sec` for the eps split and what covers it); for an
entanglement-based source (BBM92) the bound is the squashed one of Koashi and Preskill (2003):
every detection counts as a "single photon" and no vacuum term is credited.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qnetkit.keyrate.common import binary_entropy
from qnetkit.keyrate.lim2014 import EPS_SPLIT, DecoyIntensities, gamma, hoeffding_deviation

# eps_sec is split over 21 error terms, Lim et al. Eq. (B4); the one constant of keyrate.lim2014.
EPS_TERMS = EPS_SPLIT


def binary_entropy_scalar(p: float) -> float:
    return float(binary_entropy(np.asarray(p)))


def gamma_deviation(eps: float, ratio: float, c: float, d: float) -> float:
    """gamma(a, b, c, d) of Lim et al. Eq. (B2) (``keyrate.lim2014.gamma``); 0.5 if c or d is 0."""
    if c <= 0.0 or d <= 0.0:
        return 0.5
    return float(gamma(eps, ratio, c, d))


@dataclass(frozen=True)
class DecoyClasses:
    """Intensities and their probabilities, signal first; Lim et al. need three, mu1 > mu2 + mu3."""

    intensities: tuple[float, ...]
    probabilities: tuple[float, ...]


@dataclass(frozen=True)
class BasisBound:
    """Bounds for one key basis: vacuum and single-photon detections and the phase error."""

    key_bits: int
    s0: float
    s1: float
    phase_error: float
    entropy_bits: float  # s0 + s1 (1 - h(phase_error)), floored at 0


def _decoys(classes: DecoyClasses) -> DecoyIntensities:
    return DecoyIntensities(classes.intensities[:3], classes.probabilities[:3])


def _vacuum_and_single(
    counts: Sequence[float], classes: DecoyClasses, eps: float
) -> tuple[float, float]:
    """s_0, s_1 of Lim et al. Eqs. (2)-(3) (``keyrate.lim2014``) from observed counts."""
    dev = hoeffding_deviation(float(sum(counts)), eps)
    s0, s1 = _decoys(classes).vacuum_and_single([float(c) for c in counts], dev)
    return float(s0), float(s1)


def _single_errors(errors: Sequence[float], classes: DecoyClasses, eps: float) -> float:
    """v_1 of Lim et al. Eq. (4) (``keyrate.lim2014``) from observed error counts."""
    dev = hoeffding_deviation(float(sum(errors)), eps)
    return float(_decoys(classes).single_errors([float(e) for e in errors], dev))


def decoy_basis_bound(
    key_counts: Sequence[int],
    test_counts: Sequence[int],
    test_errors: Sequence[int],
    classes: DecoyClasses,
    eps_sec: float,
) -> BasisBound:
    """Lim et al. bounds for a key basis from its per-intensity counts and the test basis'."""
    if len(classes.intensities) != 3:
        raise ValueError("decoy estimation needs exactly three intensities (Lim et al. 2014)")
    s_x0, s_x1 = _vacuum_and_single(key_counts, classes, eps_sec)
    _, s_z1 = _vacuum_and_single(test_counts, classes, eps_sec)
    key_bits = int(sum(key_counts))
    if s_x1 <= 0.0 or s_z1 <= 0.0:
        return BasisBound(key_bits, s_x0, max(s_x1, 0.0), 0.5, s_x0)
    v_z1 = max(_single_errors(test_errors, classes, eps_sec), 0.0)
    ratio = v_z1 / s_z1
    phase = min(ratio + gamma_deviation(eps_sec / EPS_TERMS, ratio, s_z1, s_x1), 0.5)  # Eq. (5)
    entropy = s_x0 + s_x1 * (1.0 - binary_entropy_scalar(phase))
    return BasisBound(key_bits, s_x0, s_x1, phase, max(entropy, 0.0))


def entangled_basis_bound(
    key_bits: int, test_bits: int, test_errors: int, eps_sec: float
) -> BasisBound:
    """Squashed entanglement-based bound: all key detections count, phase error from the test."""
    if key_bits <= 0 or test_bits <= 0:
        return BasisBound(key_bits, 0.0, float(key_bits), 0.5, 0.0)
    ratio = test_errors / test_bits
    phase = min(
        ratio + gamma_deviation(eps_sec / EPS_TERMS, ratio, float(test_bits), float(key_bits)),
        0.5,
    )
    entropy = key_bits * (1.0 - binary_entropy_scalar(phase))
    return BasisBound(key_bits, 0.0, float(key_bits), phase, max(entropy, 0.0))


def gllp_basis_bound(
    key_bits: int, test_bits: int, test_errors: int, tagged_fraction: float, eps_sec: float
) -> BasisBound:
    """Without decoys: GLLP (Gottesman, Lo, Lütkenhaus, Preskill, QIC 4, 325 (2004)).

    Every multi-photon pulse is assumed tagged (known to Eve, e.g. by photon-number splitting):
    a fraction Delta = P(n >= 2) / Q_mu of the detections. The untagged rest carries all the
    observed errors, so its phase error is (e + gamma) / (1 - Delta).
    """
    untagged = max(1.0 - tagged_fraction, 0.0)
    if key_bits <= 0 or test_bits <= 0 or untagged <= 0.0:
        return BasisBound(key_bits, 0.0, 0.0, 0.5, 0.0)
    ratio = test_errors / test_bits
    dev = gamma_deviation(eps_sec / EPS_TERMS, ratio, float(test_bits), float(key_bits))
    phase = min((ratio + dev) / untagged, 0.5)
    s1 = key_bits * untagged
    entropy = s1 * (1.0 - binary_entropy_scalar(phase))
    return BasisBound(key_bits, 0.0, s1, phase, max(entropy, 0.0))


def basis_eps_sec(eps_sec: float, key_bases: int) -> float:
    """The secrecy parameter each key basis' bound and overhead use: eps_sec / key_bases.

    With one key basis (the default of ``qkd.link``) this is eps_sec itself: the protocol of
    Lim et al. 2014 (key basis X, phase error from the test basis Z). With two key bases each
    basis' Lim bound runs at eps_sec / 2 and the two shares are added (Lo, Chau, Ardehali,
    J. Cryptology 18, 133 (2005) use both bases asymptotically; no finite-key proof is cited
    for it here). Every estimation path (decoy, GLLP, BBM92) takes its eps from this one split.
    """
    if key_bases not in (1, 2):
        raise ValueError(f"key_bases must be 1 or 2, not {key_bases!r}")
    return eps_sec / key_bases


def security_overhead_bits(eps_sec: float, bases: int) -> float:
    """6 log2(21/eps) per key basis (Lim et al. Eq. (1)) at eps = basis_eps_sec(eps_sec, bases)."""
    return bases * 6.0 * math.log2(EPS_TERMS / basis_eps_sec(eps_sec, bases))


def secret_key_length(
    bounds: Sequence[BasisBound], leaked_ec_bits: int, verification_bits: int, eps_sec: float
) -> int:
    """ell = sum of the key bases' entropy - EC leakage - verification tag - security terms.

    ``bounds`` holds one bound per key basis, each computed at basis_eps_sec(eps_sec,
    len(bounds)): the split follows the number of key bases, not which of them saw detections.
    """
    if not any(b.key_bits > 0 for b in bounds):
        return 0
    ell = (
        sum(b.entropy_bits for b in bounds)
        - leaked_ec_bits
        - verification_bits
        - security_overhead_bits(eps_sec, len(bounds))
    )
    return max(math.floor(ell), 0)
