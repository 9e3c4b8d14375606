"""Closed forms for repeater chains: mean waiting times and the fidelity without decoherence.

* :func:`mean_max_geometric_attempts`: mean number of attempts until all ``n`` independent links
  (success probability ``p`` per attempt) have succeeded, ``E[max(K_1..K_n)]``. This is the mean
  waiting time of SWAP-ASAP (and of nested chains) with deterministic swapping and memories that
  wait (Shchukin, Schmidt & van Loock, PRA 100, 032322 (2019), Sec. II; for two links
  ``(3 - 2p) / (p (2 - p))``, their two-segment result). The textbook form
  ``sum_k (-1)^(k+1) C(n,k) / (1 - (1-p)^k)`` cancels catastrophically for large ``n``, so we
  solve the same Markov chain on "links still missing" (the method of Shchukin et al.):
  ``E_m (1 - (1-p)^m) = 1 + sum_(j=1)^(m-1) C(m,j) (1-p)^j p^(m-j) E_j``, all terms positive.
* :func:`two_link_mean_attempts`: two links and a swap of success probability ``q``, failure
  restarting both: ``E = E[max(K_1, K_2)] / q`` (exact; Shchukin et al. 2019, two segments).
* :func:`two_link_cutoff_mean_attempts`, :func:`two_link_wait_pmf`: two links with a cutoff;
  the distribution of the earlier pair's wait (for the fidelity under memory decoherence).
* :func:`sangouard_mean_time_s`: the nested (doubling) chain with ``2^levels`` links,
  ``T = (3/2)^levels * attempt_s / (p * q^levels)`` (Sangouard, Simon, de Riedmatten & Gisin,
  RMP 83, 33 (2011), Sec. III.B, the "(3/2)^n" formula with ``L0/c`` the attempt time,
  ``P0 = p`` and ``P1 = ... = Pn = q``). Regime: an approximation for small probabilities: the
  factor 3/2 is the mean of the later of two exponential waiting times over the mean of one,
  exact only when every level's waiting time is exponential (``p -> 0`` and, above the first
  level, ``q -> 0``). For ``q = 1`` and four links it gives 2.25/p against the exact 25/12 p^-1.
* :func:`werner_chain_fidelity`: ``n`` Werner pairs of fidelity ``F`` swapped together without
  decoherence: ``F_n = 1/4 + (3/4) ((4F - 1)/3)^n`` (Werner parameters multiply under
  swapping; Duer, Briegel, Cirac & Zoller, PRA 59, 169 (1999), Sec. IV).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.stats import binom

#: Terms of :func:`two_link_wait_pmf` at most (a tail beyond is renormalised away; p >= 2e-5).
MAX_WAIT_TERMS = 2_000_000


def mean_max_geometric_attempts(links: int, p: float) -> float:
    """``E[max of links iid Geometric(p)]`` (attempts, support 1, 2, ...), module docstring."""
    if links < 1 or not 0.0 < p <= 1.0:
        raise ValueError("need links >= 1 and 0 < p <= 1")
    e = np.zeros(links + 1)
    log_fail = math.log1p(-p) if p < 1.0 else -math.inf
    for m in range(1, links + 1):
        j = np.arange(1, m)
        # P(j links still missing after one attempt | m missing) = Binomial(m, 1-p) at j.
        stay = float(binom.pmf(j, m, 1.0 - p) @ e[1:m]) if m > 1 else 0.0
        e[m] = (1.0 + stay) / -math.expm1(m * log_fail)
    return float(e[links])


def two_link_mean_attempts(p: float, q: float) -> float:
    """Two links, one swap of success probability ``q``; a failed swap restarts both links."""
    return mean_max_geometric_attempts(2, p) / q


def two_link_cutoff_mean_attempts(p: float, tau: int) -> float:
    """Two links, deterministic swap, a pair discarded after waiting more than ``tau`` attempts.

    Markov chain (method of Shchukin et al. 2019) on "both links trying" and "one pair stored,
    waiting k attempts": ``E = (1 + 2(1-p)(1 - (1-p)^tau)) / (1 - (1-p)^2 - 2p(1-p)^(tau+1))``
    attempts (derived here; ``tau -> inf`` gives ``(3-2p)/(p(2-p))``, ``tau = 0`` gives
    ``1/p^2``: both links must succeed in the same attempt).
    """
    f = 1.0 - p
    return float((1.0 + 2.0 * f * (1.0 - f**tau)) / (1.0 - f * f - 2.0 * p * f ** (tau + 1)))


def two_link_wait_pmf(p: float, tau: int | None = None) -> npt.NDArray[np.float64]:
    """Distribution of the wait (in attempts) of the earlier pair of two links, ``k = 0, 1, ...``.

    ``P(0) = p/(2-p)``, ``P(k) = 2p(1-p)^k/(2-p)`` (the difference of two independent geometric
    variables); with a cutoff of ``tau`` attempts, conditioned on ``k <= tau`` (rounds with a
    longer wait are discarded and restart, memorylessly). Truncated where the tail is < 1e-16.
    """
    if tau is not None:
        kmax = tau
    elif p >= 1.0:
        kmax = 0
    else:
        kmax = min(MAX_WAIT_TERMS, math.ceil(math.log(1e-16) / math.log1p(-p)))
    k = np.arange(kmax + 1, dtype=np.float64)
    pmf = 2.0 * p * (1.0 - p) ** k / (2.0 - p)
    pmf[0] = p / (2.0 - p)
    return np.asarray(pmf / pmf.sum())


def sangouard_mean_time_s(levels: int, p: float, q: float, attempt_s: float) -> float:
    """Sangouard et al. RMP 83, 33 (2011) (3/2)^n approximation (module docstring)."""
    return float(1.5**levels * attempt_s / (p * q**levels))


def werner_chain_fidelity(fidelity: float, links: int) -> float:
    """Fidelity of ``links`` Werner pairs swapped together, no decoherence (module docstring)."""
    w = (4.0 * fidelity - 1.0) / 3.0
    return float(0.25 + 0.75 * w**links)


__all__ = [
    "mean_max_geometric_attempts",
    "sangouard_mean_time_s",
    "two_link_cutoff_mean_attempts",
    "two_link_mean_attempts",
    "two_link_wait_pmf",
    "werner_chain_fidelity",
]
