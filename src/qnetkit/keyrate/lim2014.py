"""The finite-key decoy bounds of Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014).

One implementation, vectorised over NumPy arrays, shared by the analytic key-rate engine
(``keyrate.finite_decoy_bb84``, expected counts of a channel model) and by the link's
post-processing (``qkd.estimation``, observed counts): Hoeffding deviation (Eqs. (2)-(4), under
the n^± and m^± definitions), vacuum and single-photon detections Eqs. (2)-(3), single-photon
errors Eq. (4), and the random-sampling deviation gamma of Eq. (B2) used in Eq. (5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from qnetkit._types import FloatArray

Values = FloatArray | float

EPS_SPLIT = 21.0
"""eps_sec is shared by 21 equal error terms: eps_sec = 21 eps, Lim et al. Eq. (B4)."""


def gamma(a: Values, b: Values, c: Values, d: Values) -> FloatArray:
    """Random-sampling deviation gamma(a, b, c, d) of Lim et al. Eq. (B2) (Fung, Ma, Chau 2010).

    sqrt((c + d)(1 - b) b / (c d ln 2) * log2((c + d) / (c d (1 - b) b a^2))); b is clipped to
    (0, 1/2] so that a zero observed error ratio still gives a finite, positive deviation.
    """
    bb = np.clip(b, 1e-300, 0.5)
    spread = (c + d) * (1.0 - bb) * bb / (c * d)
    log_arg = np.log2((c + d) / (c * d * (1.0 - bb) * bb)) - 2.0 * np.log2(a)
    return np.asarray(np.sqrt(np.maximum(spread / math.log(2.0) * log_arg, 0.0)))


def hoeffding_deviation(total: Values, eps: Values) -> FloatArray:
    """sqrt(n / 2 ln(21 / eps_sec)): the deviation in n^±_k and m^±_k of Lim et al. Eqs. (2)-(4)."""
    return np.asarray(np.sqrt(0.5 * total * np.log(EPS_SPLIT / eps)))


def weighted_sum(weights: Sequence[Values], values: Sequence[Values]) -> FloatArray:
    """sum_k w_k v_k, added in order (the order fixes the rounding of both callers)."""
    total = np.asarray(weights[0] * values[0])
    for w, v in zip(weights[1:], values[1:], strict=True):
        total = np.asarray(total + w * v)
    return total


class DecoyIntensities:
    """Intensities mu1 > mu2 + mu3, mu2 > mu3 >= 0 and their probabilities (arrays broadcast).

    Holds the per-class weights e^k / p_k and the photon-number probabilities
    tau_n = sum_k p_k e^-k k^n / n! for n = 0, 1 that Eqs. (2)-(4) use.
    """

    def __init__(self, intensities: Sequence[Values], probabilities: Sequence[Values]) -> None:
        if len(intensities) != 3 or len(probabilities) != 3:
            raise ValueError("Lim et al. 2014 bounds need exactly three intensities")
        self.mu1, self.mu2, self.mu3 = intensities
        poisson0 = [np.exp(-k) for k in intensities]
        self.tau0 = weighted_sum(probabilities, poisson0)
        self.tau1 = weighted_sum(
            probabilities, [e * k for e, k in zip(poisson0, intensities, strict=True)]
        )
        self.weights = [np.exp(k) / p for p, k in zip(probabilities, intensities, strict=True)]

    def vacuum_and_single(
        self, counts: Sequence[Values], deviation: Values
    ) -> tuple[FloatArray, FloatArray]:
        """Lower bounds s_0 (Eq. (2), floored at 0) and s_1 (Eq. (3)) from per-class counts."""
        mu1, mu2, mu3 = self.mu1, self.mu2, self.mu3
        lo = [w * (c - deviation) for w, c in zip(self.weights, counts, strict=True)]  # n^-_k
        hi = [w * (c + deviation) for w, c in zip(self.weights, counts, strict=True)]  # n^+_k
        s0 = np.maximum(self.tau0 * (mu2 * lo[2] - mu3 * hi[1]) / (mu2 - mu3), 0.0)
        denom = mu1 * (mu2 - mu3) - mu2**2 + mu3**2
        square_ratio = (mu2**2 - mu3**2) / mu1**2
        s1 = self.tau1 * mu1 * (lo[1] - hi[2] - square_ratio * (hi[0] - s0 / self.tau0)) / denom
        return np.asarray(s0), np.asarray(s1)

    def single_errors(self, errors: Sequence[Values], deviation: Values) -> FloatArray:
        """Upper bound v_1 on the bit errors of single-photon detections, Eq. (4)."""
        w = self.weights
        v1 = self.tau1 * (w[1] * (errors[1] + deviation) - w[2] * (errors[2] - deviation))
        return np.asarray(v1 / (self.mu2 - self.mu3))
