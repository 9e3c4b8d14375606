"""Parameter estimation from observed counts: decoy-state bounds and the finite-key length.

Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014): vacuum and single-photon detections
Eqs. (2)-(3) with Hoeffding deviations, single-photon errors Eq. (4), phase-error bound with
the random-sampling term gamma Eq. (5), and the key length Eq. (1). Here each basis can serve
as key basis with the other as test basis (errors counted after reconciliation); for an
entanglement-based source (BBM92) the bound is the squashed one of Koashi and Preskill (2003):
every detection counts as a "single photon" and no vacuum term is credited.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qnetkit.keyrate.common import binary_entropy

EPS_TERMS = 21.0  # eps_sec is split over 21 error terms, Lim et al. Eq. (B4)


def binary_entropy_scalar(p: float) -> float:
    return float(binary_entropy(np.asarray(p)))


def gamma_deviation(eps: float, ratio: float, c: float, d: float) -> float:
    """gamma(a, b, c, d) of Lim et al. Eq. (B2): sampling deviation of a hidden error ratio."""
    if c <= 0.0 or d <= 0.0:
        return 0.5
    b = min(max(ratio, 1e-300), 0.5)
    spread = (c + d) * (1.0 - b) * b / (c * d)
    log_arg = math.log2((c + d) / (c * d * (1.0 - b) * b)) - 2.0 * math.log2(eps)
    return math.sqrt(max(spread / math.log(2.0) * log_arg, 0.0))


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


def _vacuum_and_single(
    counts: Sequence[float], classes: DecoyClasses, eps: float
) -> tuple[float, float]:
    mu1, mu2, mu3 = classes.intensities[:3]
    probs = classes.probabilities[:3]
    total = float(sum(counts))
    dev = math.sqrt(0.5 * total * math.log(EPS_TERMS / eps))
    w = [math.exp(k) / p for k, p in zip((mu1, mu2, mu3), probs, strict=True)]
    lo = [wk * (c - dev) for wk, c in zip(w, counts, strict=True)]
    hi = [wk * (c + dev) for wk, c in zip(w, counts, strict=True)]
    tau0 = sum(p * math.exp(-k) for k, p in zip((mu1, mu2, mu3), probs, strict=True))
    tau1 = sum(p * k * math.exp(-k) for k, p in zip((mu1, mu2, mu3), probs, strict=True))
    s0 = max(tau0 * (mu2 * lo[2] - mu3 * hi[1]) / (mu2 - mu3), 0.0)  # Eq. (2)
    denom = mu1 * (mu2 - mu3) - mu2**2 + mu3**2
    s1 = tau1 * mu1 * (lo[1] - hi[2] - (mu2**2 - mu3**2) / mu1**2 * (hi[0] - s0 / tau0)) / denom
    return s0, s1  # s1: Eq. (3)


def _single_errors(errors: Sequence[float], classes: DecoyClasses, eps: float) -> float:
    mu1, mu2, mu3 = classes.intensities[:3]
    probs = classes.probabilities[:3]
    total = float(sum(errors))
    dev = math.sqrt(0.5 * total * math.log(EPS_TERMS / eps))
    w = [math.exp(k) / p for k, p in zip((mu1, mu2, mu3), probs, strict=True)]
    tau1 = sum(p * k * math.exp(-k) for k, p in zip((mu1, mu2, mu3), probs, strict=True))
    return tau1 * (w[1] * (errors[1] + dev) - w[2] * (errors[2] - dev)) / (mu2 - mu3)  # Eq. (4)


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


def security_overhead_bits(eps_sec: float, bases: int) -> float:
    """6 log2(21/eps) per key basis (Lim et al. Eq. (1)), eps_sec shared between the bases."""
    return bases * 6.0 * math.log2(EPS_TERMS * bases / eps_sec)


def secret_key_length(
    bounds: Sequence[BasisBound], leaked_ec_bits: int, verification_bits: int, eps_sec: float
) -> int:
    """ell = sum of the bases' entropy - EC leakage - verification tag - security terms."""
    used = [b for b in bounds if b.key_bits > 0]
    if not used:
        return 0
    ell = (
        sum(b.entropy_bits for b in used)
        - leaked_ec_bits
        - verification_bits
        - security_overhead_bits(eps_sec / len(used), 1) * len(used)
    )
    return max(math.floor(ell), 0)
