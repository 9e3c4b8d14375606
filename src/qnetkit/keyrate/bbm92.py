"""Entanglement-based BBM92 with a pulsed SPDC source (thermal multi-pair statistics).

Model of Ma, Fung, Lo, "Quantum key distribution with entangled photon sources", PRA 76, 012307
(2007), arXiv:quant-ph/0703122: closed-form overall gain and QBER, one-way (Koashi-Preskill) rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve, as_length_array, binary_entropy, check_link_params
from qnetkit.keyrate.optimize import golden_section_maximize
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import check_positive, nonnegative_array

E0 = 0.5  # error rate of a background (random) click
SIFTING = 0.5  # q: BBM92 keeps the rounds where Alice and Bob chose the same of two bases
# Bracket of the per-distance search over the pair number, in lambda = mu / 2 (searched in log).
LAMBDA_SEARCH_MIN = 1e-7
LAMBDA_SEARCH_MAX = 2.0
GRID_POINTS = 41  # log grid over [LAMBDA_SEARCH_MIN, LAMBDA_SEARCH_MAX] before refinement
SEARCH_ITERATIONS = 64


def check_source_position(value: float) -> None:
    """Require 0 <= value <= 1 (fraction of the Alice-Bob distance between Alice and the source)."""
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ParameterError(
            "source_position", value, "must be in [0, 1] (0 = at Alice, 0.5 = middle, 1 = at Bob)"
        )


@dataclass(frozen=True)
class BBM92Params:
    """Parameters of a BBM92 link with the SPDC source between Alice and Bob (per-pulse values).

    Both users have the same detection system (efficiency, background, intrinsic error).
    """

    loss_db_per_km: float = field(default=0.21, metadata={"help": "fiber attenuation (dB/km)"})
    extra_loss_db: float = field(
        default=0.0,
        metadata={
            "help": "lumped losses of the whole Alice-Bob link (dB), split between the two arms "
            "in the ratio of their lengths"
        },
    )
    detector_efficiency: float = field(
        default=0.045,
        metadata={"help": "eta_det: each user's internal transmittance times detector efficiency"},
    )
    dark_count_prob: float = field(
        default=1.7e-6,
        metadata={"help": "Y0: background (dark + stray) click probability per pulse, each side"},
    )
    misalignment_error: float = field(
        default=0.033,
        metadata={"help": "e_d: intrinsic detector error (a photon hits the wrong detector)"},
    )
    ec_efficiency: float = field(
        default=1.22, metadata={"help": "f_EC: error-correction inefficiency (>= 1)"}
    )
    source_position: float = field(
        default=0.5,
        metadata={"help": "source distance from Alice as a fraction of L (0 Alice, 0.5 middle)"},
    )
    mu: float | None = field(
        default=None,
        metadata={
            "help": "mean photon-pair number per pulse, mu = 2*lambda of Ma-Fung-Lo; "
            "omit to optimise per distance"
        },
    )

    def __post_init__(self) -> None:
        validate_link(
            self.loss_db_per_km,
            self.extra_loss_db,
            self.detector_efficiency,
            self.dark_count_prob,
            self.misalignment_error,
            self.ec_efficiency,
            self.source_position,
            self.mu,
        )


def validate_link(
    loss_db_per_km: float,
    extra_loss_db: float,
    detector_efficiency: float,
    dark_count_prob: float,
    misalignment_error: float,
    ec_efficiency: float,
    source_position: float,
    mu: float | None,
) -> None:
    """Range checks shared by the BBM92 and E91 parameter sets."""
    check_link_params(
        loss_db_per_km=loss_db_per_km,
        extra_loss_db=extra_loss_db,
        detector_efficiency=detector_efficiency,
        dark_count_prob=dark_count_prob,
        misalignment_error=misalignment_error,
        ec_efficiency=ec_efficiency,
    )
    check_source_position(source_position)
    if mu is not None:
        check_positive("mu", mu)


PRESETS: dict[str, BBM92Params] = {
    # GYS detection and fiber [Gobby, Yuan, Shields, APL 84, 3762 (2004)], as tabulated in
    # Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), Table I, on both users' sides; source in the middle.
    "gys2004": BBM92Params(),
    # The same, with the source in Alice's lab (her arm has no fiber).
    "gys2004-alice": BBM92Params(source_position=0.0),
}
DEFAULT_PRESET = "gys2004"


def arm_transmittances(
    length_km: npt.ArrayLike,
    loss_db_per_km: float,
    extra_loss_db: float,
    detector_efficiency: float,
    source_position: float,
) -> tuple[FloatArray, FloatArray]:
    """eta_A, eta_B: fiber transmittance of each arm times the user's detection efficiency.

    Alice's arm is ``source_position * L`` long, Bob's ``(1 - source_position) * L``; lumped losses
    are split in the same ratio, so eta_A * eta_B does not depend on where the source sits.
    """
    lengths = nonnegative_array("length_km", length_km)
    check_source_position(source_position)
    x = source_position
    eta_a = detector_efficiency * fiber_transmittance(
        x * lengths, loss_db_per_km, x * extra_loss_db
    )
    eta_b = detector_efficiency * fiber_transmittance(
        (1.0 - x) * lengths, loss_db_per_km, (1.0 - x) * extra_loss_db
    )
    return np.asarray(eta_a), np.asarray(eta_b)


def pdc_gain_and_qber(
    lam: npt.ArrayLike,
    eta_a: npt.ArrayLike,
    eta_b: npt.ArrayLike,
    y0_a: float,
    y0_b: float,
    e_d: float,
) -> tuple[FloatArray, FloatArray]:
    """Overall gain Q_lambda and QBER E_lambda of the SPDC source (Ma, Fung, Lo 2007).

    With P(n) = (n+1) lambda^n / (1+lambda)^(n+2) (mean pair number 2 lambda), threshold detectors
    and background Y0 on each side, the paper's closed forms are

        Q = 1 - (1-Y0A)/(1+eta_A lam)^2 - (1-Y0B)/(1+eta_B lam)^2
              + (1-Y0A)(1-Y0B)/(1+eta_A lam+eta_B lam-eta_A eta_B lam)^2,
        E Q = e0 Q - 2 (e0-e_d) lam (1+lam) eta_A eta_B
              / [(1+eta_A lam)(1+eta_B lam)(1+eta_A lam+eta_B lam-eta_A eta_B lam)].

    Q is evaluated here in an algebraically equal form made of non-negative terms only, so that it
    keeps full relative precision at high loss (the textbook form cancels terms of order 1).
    In E the background adds random (e0) coincidences but leaves the error of signal-signal
    coincidences alone; without background both forms are exact for two two-mode squeezed vacua
    with threshold detectors and random assignment of double clicks (checked in the tests).
    """
    lam_ = np.asarray(lam, dtype=np.float64)
    ea = np.asarray(eta_a, dtype=np.float64)
    eb = np.asarray(eta_b, dtype=np.float64)
    a_ = ea * lam_
    b_ = eb * lam_
    c_ = ea * eb * lam_
    d_ = a_ + b_ - c_
    s = (1.0 + a_) * (1.0 + b_)
    r = 1.0 + d_
    u = 1.0 / (1.0 + a_) ** 2
    v = 1.0 / (1.0 + b_) ** 2
    w = 1.0 / r**2
    # 1 - u - v + w = (1-u)(1-v) + (w - uv), and w - uv = (s^2 - r^2)/(r s)^2 with s - r = AB + C.
    both = a_ * (2.0 + a_) * u * b_ * (2.0 + b_) * v + (a_ * b_ + c_) * (s + r) * w / s**2
    # u - w and v - w, each a product of non-negative factors (D - A = eta_B lam (1 - eta_A)).
    u_minus_w = lam_ * eb * (1.0 - ea) * (2.0 + a_ + d_) * u * w
    v_minus_w = lam_ * ea * (1.0 - eb) * (2.0 + b_ + d_) * v * w
    gain = both + y0_a * u_minus_w + y0_b * v_minus_w + y0_a * y0_b * w
    correlated = (1.0 + lam_) * c_ / (s * r)  # lam (1+lam) eta_A eta_B / [(1+A)(1+B)(1+D)]
    with np.errstate(divide="ignore", invalid="ignore"):
        qber = np.where(gain > 0.0, E0 - 2.0 * (E0 - e_d) * correlated / gain, E0)
    return np.asarray(gain), np.asarray(qber)


def one_way_rate(gain: FloatArray, qber: FloatArray, ec_efficiency: float) -> FloatArray:
    """Koashi-Preskill one-way rate of a basis-independent source, before clipping.

    R = q Q [1 - f h(E) - h(E)] with q = 1/2 (Ma, Fung, Lo 2007, one-way post-processing).
    """
    h = binary_entropy(qber)
    return np.asarray(SIFTING * gain * (1.0 - ec_efficiency * h - h))


def optimise_lambda(
    objective_of_lambda: Callable[[FloatArray], FloatArray], size: int
) -> FloatArray:
    """Vectorised search over log(lambda) for ``size`` independent problems: grid, then golden.

    The rate has two local maxima in lambda far from the source: a slightly negative plateau
    at vanishing lambda (background dominates) and the true peak, so a coarse log grid picks
    the right bracket before golden-section refinement; all distances advance together.
    """

    def objective(log_lam: FloatArray) -> FloatArray:
        return np.asarray(objective_of_lambda(np.exp(log_lam)), dtype=np.float64)

    lo, hi = math.log(LAMBDA_SEARCH_MIN), math.log(LAMBDA_SEARCH_MAX)
    grid = np.linspace(lo, hi, GRID_POINTS)
    table = np.stack([objective(np.full(size, g)) for g in grid])
    best = np.argmax(table, axis=0)
    step = grid[1] - grid[0]
    log_lam, _ = golden_section_maximize(
        objective,
        np.maximum(grid[best] - step, lo),
        np.minimum(grid[best] + step, hi),
        iterations=SEARCH_ITERATIONS,
    )
    return np.asarray(np.exp(log_lam))


def bbm92_rate_at(
    params: BBM92Params, eta_a: FloatArray, eta_b: FloatArray, lam: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Unclipped rate per pulse, gain and QBER for given arm transmittances and lambda arrays."""
    y0 = params.dark_count_prob
    gain, qber = pdc_gain_and_qber(lam, eta_a, eta_b, y0, y0, params.misalignment_error)
    return one_way_rate(gain, qber, params.ec_efficiency), gain, qber


def bbm92_key_rate(params: BBM92Params, length_km: npt.ArrayLike) -> KeyRateCurve:
    """BBM92 key rate per source pulse over the total Alice-Bob distance.

    The pair number mu = 2 lambda is optimised per distance unless ``params.mu`` is fixed.
    ``transmittance`` is eta_A * eta_B, the end-to-end transmittance of the link.
    """
    lengths = as_length_array(length_km)
    eta_a, eta_b = arm_transmittances(
        lengths,
        params.loss_db_per_km,
        params.extra_loss_db,
        params.detector_efficiency,
        params.source_position,
    )
    if params.mu is None:
        lam = optimise_lambda(lambda x: bbm92_rate_at(params, eta_a, eta_b, x)[0], lengths.size)
    else:
        lam = np.full_like(lengths, 0.5 * params.mu)
    rate, gain, qber = bbm92_rate_at(params, eta_a, eta_b, lam)
    return KeyRateCurve(
        protocol="bbm92",
        length_km=lengths,
        key_rate_per_pulse=np.maximum(rate, 0.0),
        qber=qber,
        transmittance=np.asarray(eta_a * eta_b),
        mu=np.asarray(2.0 * lam),
        extra={"gain": gain, "eta_alice": eta_a, "eta_bob": eta_b},
    )
