"""Expected key length of finite-key decoy BB84 on the fiber model of Lim et al. 2014, Sec. IV.

Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014): detection and error probabilities
of the dedicated-fiber model (Sec. IV), expected counts once the block of n_X key detections is
full, and the key length Eq. (1) with the bounds of ``keyrate.lim2014`` (Eqs. (2)-(5)), with
eps_sec = kappa * ell solved by a fixed-point iteration. Vectorised over distances and candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.keyrate.common import binary_entropy
from qnetkit.keyrate.lim2014 import (
    EPS_SPLIT,
    DecoyIntensities,
    gamma,
    hoeffding_deviation,
    weighted_sum,
)

if TYPE_CHECKING:
    from qnetkit.keyrate.finite_decoy_bb84 import FiniteDecoyBB84Params

KAPPA_ITERATIONS = 4  # fixed-point steps for eps_sec = kappa * ell (Lim et al. Sec. IV)


@dataclass(frozen=True)
class DecoyProtocol:
    """Values of the five protocol parameters, broadcastable arrays."""

    mu1: FloatArray
    mu2: FloatArray
    p1: FloatArray
    p2: FloatArray
    qx: FloatArray


def click_and_error(
    params: FiniteDecoyBB84Params, eta_sys: FloatArray, k: FloatArray | float
) -> tuple[FloatArray, FloatArray]:
    """Per-pulse detection probability R_k and bit-error probability e_k (Lim et al. Sec. IV).

    D_k = 1 - (1 - 2 p_dc) exp(-eta_sys k), R_k = D_k (1 + p_ap) and
    e_k = p_dc + e_mis (1 - exp(-eta_sys k)) + p_ap D_k / 2. (The paper prints eta_ch in the
    e_mis term; eta_sys is used here, so that e_mis is the error rate of signal clicks.)
    """
    pdc = params.dark_count_prob
    signal = -np.expm1(-eta_sys * k)
    d_k = 1.0 - (1.0 - 2.0 * pdc) * (1.0 - signal)
    r_k = d_k * (1.0 + params.afterpulse_prob)
    e_k = pdc + params.misalignment_error * signal + 0.5 * params.afterpulse_prob * d_k
    return np.asarray(r_k), np.asarray(e_k)


@dataclass(frozen=True)
class KeyLengthResult:
    rate: FloatArray  # ell / N, not clipped
    guide: FloatArray  # the rate, continued below zero for the optimiser (see expected_key_length)
    qber: FloatArray
    n_pulses: FloatArray
    s_x0: FloatArray
    s_x1: FloatArray
    phase_error: FloatArray
    eps_sec: FloatArray


def expected_key_length(
    params: FiniteDecoyBB84Params, eta_sys: FloatArray, proto: DecoyProtocol, finite: bool = True
) -> KeyLengthResult:
    """Key length per pulse for the expected statistics of the channel (arrays broadcast).

    With ``finite=False`` the Hoeffding deviations, gamma and the eps terms are dropped: the
    asymptotic limit of the same three-intensity bounds.
    """
    mu1, mu2, p1, p2, qx = proto.mu1, proto.mu2, proto.p1, proto.p2, proto.qx
    intensities = [mu1, mu2, np.full_like(mu1, params.mu3)]
    probs = [p1, p2, np.asarray(1.0 - p1 - p2)]
    clicks: list[FloatArray] = []
    errors: list[FloatArray] = []
    for k in intensities:
        r_k, e_k = click_and_error(params, eta_sys, k)
        clicks.append(r_k)
        errors.append(e_k)
    total_click = weighted_sum(probs, clicks)  # sum_k p_k R_k
    qber = np.asarray(weighted_sum(probs, errors) / total_click)  # E_X = m_X / n_X

    # Expected counts once the block of n_x X-basis detections is full: both chose X with
    # probability q_x^2, both Z with (1 - q_x)^2 (only ratios matter asymptotically).
    n_x = params.n_x
    z_ratio = ((1.0 - qx) / qx) ** 2 if finite else np.ones_like(qx)
    n_xk = [n_x * p * r / total_click for p, r in zip(probs, clicks, strict=True)]
    n_zk = [z_ratio * n for n in n_xk]
    m_zk = [z_ratio * n_x * p * e / total_click for p, e in zip(probs, errors, strict=True)]
    n_z = z_ratio * n_x
    m_z = z_ratio * n_x * qber
    n_pulses = np.asarray(n_x / (qx**2 * total_click))
    leak_ec = n_x * params.ec_efficiency * binary_entropy(qber)
    decoys = DecoyIntensities(intensities, probs)  # Lim et al. Eqs. (2)-(4)

    kappa = params.eps_sec_per_key_bit
    use_kappa = finite and params.eps_sec is None
    ell = np.full(np.broadcast(qber, n_pulses).shape, n_x)
    eps = np.full_like(ell, params.eps_sec if finite and params.eps_sec is not None else np.nan)
    shortfall = np.zeros_like(ell)
    s_x0 = s_x1 = phase_error = ell
    # eps_sec = kappa * ell is implicit in ell; iterate from ell = n_x (an upper bound).
    for _ in range(KAPPA_ITERATIONS if use_kappa else 1):
        if use_kappa:
            eps = np.minimum(kappa * np.maximum(ell, 1.0), 0.5)
        if finite:
            dev_x = hoeffding_deviation(n_x, eps)
            dev_z = hoeffding_deviation(n_z, eps)
            dev_m = hoeffding_deviation(m_z, eps)
        else:
            dev_x = dev_z = dev_m = np.zeros_like(ell)
        s_x0, s_x1 = decoys.vacuum_and_single(n_xk, dev_x)
        _, s_z1 = decoys.vacuum_and_single(n_zk, dev_z)
        v_z1 = decoys.single_errors(m_zk, dev_m)
        ok = (s_x1 > 0.0) & (s_z1 > 0.0)
        s_x1_safe = np.where(ok, s_x1, 1.0)
        s_z1_safe = np.where(ok, s_z1, 1.0)
        bit_error_ratio = v_z1 / s_z1_safe
        deviation = np.zeros_like(bit_error_ratio)
        if finite:  # Eq. (5)
            b_clip = np.clip(bit_error_ratio, 0.0, 0.5)
            deviation = gamma(eps / EPS_SPLIT, b_clip, s_z1_safe, s_x1_safe)
        bound = np.maximum(bit_error_ratio, 0.0) + deviation
        phase_error = np.asarray(np.where(ok, np.minimum(bound, 0.5), 0.5))
        single = np.where(ok, s_x1, 0.0) * (1.0 - binary_entropy(phase_error))
        # Where the single photons give no key, a continuous deficit (< 0, in units of the
        # block) of how far off they are guides the optimiser; zero wherever they give key.
        negative_yields = np.maximum(-s_x1, 0.0) / n_x + np.maximum(-s_z1, 0.0) / n_z
        shortfall = -n_x * np.where(
            ok, np.minimum(np.maximum(bound - 0.5, 0.0), 1.0), 1.0 + negative_yields
        )
        ell = s_x0 + single - leak_ec  # Eq. (1), without the floor
        if finite:
            ell = ell - 6.0 * np.log2(EPS_SPLIT / eps) - math.log2(2.0 / params.eps_cor)
    shape = np.broadcast(ell, qber).shape

    def full(values: FloatArray) -> FloatArray:
        return np.asarray(np.broadcast_to(values, shape), dtype=np.float64)

    return KeyLengthResult(
        rate=full(ell / n_pulses),
        # Below zero the deficit is measured per block (ell / n_x), not per pulse: dividing a
        # deficit by N would reward wasting pulses instead of approaching a positive key.
        guide=full(np.where(ell > 0.0, ell / n_pulses, (ell + shortfall) / n_x)),
        qber=full(qber),
        n_pulses=full(n_pulses),
        s_x0=full(s_x0),
        s_x1=full(s_x1),
        phase_error=full(phase_error),
        eps_sec=full(eps),
    )
