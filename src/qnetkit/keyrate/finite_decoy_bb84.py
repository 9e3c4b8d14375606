"""Finite-key decoy-state BB84 (biased bases, three intensities) with a weak coherent source.

Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014): key length Eq. (1) with the decoy and
phase-error bounds Eqs. (2)-(5), applied to the expected statistics of its Sec. IV fiber model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import (
    FloatArray,
    KeyRateCurve,
    as_float_array,
    binary_entropy,
    check_link_params,
)
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import check_nonnegative, check_positive, check_probability

PROTOCOL = "finite-decoy-bb84"
EPS_SPLIT = 21.0  # eps_sec is shared by 21 error terms, Lim et al. Eq. (B4)
KAPPA_ITERATIONS = 4  # fixed-point steps for eps_sec = kappa * ell (Lim et al. Sec. IV)

# Search box of the free parameters (natural units); see _NAMES for the search coordinates.
MU_MIN, MU_MAX = 1e-3, 1.5
P_MIN, P_MAX = 1e-4, 1.0 - 1e-4
PX_MIN, PX_MAX = 1e-3, 1.0 - 1e-7
P3_MIN = 1e-6  # smallest probability left for the third intensity


def _opt_positive(name: str, value: float | None) -> None:
    if value is not None:
        check_positive(name, value)


@dataclass(frozen=True)
class FiniteDecoyBB84Params:
    """A decoy-state BB84 link with finite block size; ``None`` marks a parameter to optimise.

    Defaults are the dedicated-fiber simulation of Lim et al. 2014, Sec. IV and Fig. 1.
    """

    loss_db_per_km: float = field(default=0.2, metadata={"help": "fiber attenuation (dB/km)"})
    extra_loss_db: float = field(
        default=0.0, metadata={"help": "lumped losses at Bob: connectors, components (dB)"}
    )
    detector_efficiency: float = field(
        default=0.1, metadata={"help": "eta_Bob: Bob's transmittance times detector efficiency"}
    )
    dark_count_prob: float = field(
        default=6e-7,
        metadata={
            "help": "p_dc: dark count probability per gate and per detector (2 detectors; "
            "Lim et al. 2014 use 6e-7)"
        },
    )
    afterpulse_prob: float = field(
        default=0.04, metadata={"help": "p_ap: afterpulse probability per detection"}
    )
    misalignment_error: float = field(
        default=5e-3, metadata={"help": "e_mis: probability a signal click is a bit error"}
    )
    ec_efficiency: float = field(
        default=1.16, metadata={"help": "f_EC: error-correction leakage over Shannon limit (>= 1)"}
    )
    n_x: float = field(
        default=1e7,
        metadata={"help": "block size: number of X-basis (key) detections, e.g. 1e4 .. 1e10"},
    )
    eps_sec: float | None = field(
        default=None,
        metadata={
            "help": "fixed secrecy parameter; omit to use eps_sec = kappa * key length "
            "(eps_sec_per_key_bit), as Lim et al. 2014 do"
        },
    )
    eps_cor: float = field(default=1e-15, metadata={"help": "correctness parameter"})
    eps_sec_per_key_bit: float = field(
        default=1e-15,
        metadata={
            "help": "kappa: secrecy per key bit, eps_sec = kappa * key length (Lim et al. 2014 "
            "use 1e-15); ignored when eps_sec is given"
        },
    )
    mu: float | None = field(
        default=None,
        metadata={"help": "mu_1: signal intensity (photons per pulse); omit to optimise"},
    )
    mu2: float | None = field(
        default=None,
        metadata={"help": "mu_2: first decoy intensity, mu_3 < mu_2 < mu - mu_3; omit to optimise"},
    )
    mu3: float = field(
        default=2e-4,
        metadata={"help": "mu_3: second (near-vacuum) decoy intensity, fixed (photons per pulse)"},
    )
    p_mu: float | None = field(
        default=None, metadata={"help": "probability of sending mu_1; omit to optimise"}
    )
    p_mu2: float | None = field(
        default=None, metadata={"help": "probability of sending mu_2; omit to optimise"}
    )
    p_x: float | None = field(
        default=None,
        metadata={"help": "q_x: probability of the X (key) basis, both sides; omit to optimise"},
    )

    def __post_init__(self) -> None:
        check_link_params(
            loss_db_per_km=self.loss_db_per_km,
            extra_loss_db=self.extra_loss_db,
            detector_efficiency=self.detector_efficiency,
            dark_count_prob=self.dark_count_prob,
            misalignment_error=self.misalignment_error,
            ec_efficiency=self.ec_efficiency,
        )
        if self.dark_count_prob > 0.5:
            raise ParameterError(
                "dark_count_prob", self.dark_count_prob, "must be <= 0.5 (two detectors)"
            )
        check_probability("afterpulse_prob", self.afterpulse_prob)
        check_positive("n_x", self.n_x)
        for name, eps in (("eps_sec", self.eps_sec), ("eps_cor", self.eps_cor)):
            if eps is None:
                continue
            check_probability(name, eps)
            if not 0.0 < eps < 1.0:
                raise ParameterError(name, eps, "must be in (0, 1)")
        check_nonnegative("eps_sec_per_key_bit", self.eps_sec_per_key_bit)
        if self.eps_sec_per_key_bit >= 1.0:
            raise ParameterError("eps_sec_per_key_bit", self.eps_sec_per_key_bit, "must be < 1")
        if self.eps_sec is None and self.eps_sec_per_key_bit <= 0.0:
            raise ParameterError(
                "eps_sec_per_key_bit",
                self.eps_sec_per_key_bit,
                "must be > 0 unless eps_sec is given",
            )
        check_nonnegative("mu3", self.mu3)
        if self.mu3 >= MU_MAX / 2.0:
            raise ParameterError("mu3", self.mu3, f"must be below {MU_MAX / 2.0}")
        _opt_positive("mu", self.mu)
        _opt_positive("mu2", self.mu2)
        if self.mu2 is not None and self.mu2 <= self.mu3:
            raise ParameterError("mu2", self.mu2, f"must exceed mu3={self.mu3}")
        if self.mu is None and self.mu2 is not None and self.mu2 + self.mu3 >= MU_MAX:
            raise ParameterError(
                "mu2", self.mu2, f"leaves no room for an optimised mu below {MU_MAX}"
            )
        if self.mu is not None and self.mu <= 2.0 * self.mu3:
            raise ParameterError("mu", self.mu, f"must exceed 2 * mu3={2.0 * self.mu3}")
        if self.mu is not None and self.mu2 is not None and self.mu <= self.mu2 + self.mu3:
            raise ParameterError(
                "mu", self.mu, f"must exceed mu2 + mu3={self.mu2 + self.mu3} (Lim et al.)"
            )
        for name, prob in (("p_mu", self.p_mu), ("p_mu2", self.p_mu2), ("p_x", self.p_x)):
            if prob is not None:
                check_probability(name, prob)
                if not 0.0 < prob < 1.0:
                    raise ParameterError(name, prob, "must be in (0, 1)")
        if self.p_mu is not None and self.p_mu2 is not None and self.p_mu + self.p_mu2 >= 1.0:
            raise ParameterError(
                "p_mu2", self.p_mu2, f"p_mu + p_mu2 must be < 1 (p_mu={self.p_mu})"
            )


PRESETS: dict[str, FiniteDecoyBB84Params] = {
    # Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014), Sec. IV, dedicated fiber (Fig. 1):
    # 0.2 dB/km, eta_Bob = 10 %, p_dc = 6e-7, p_ap = 4e-2, e_mis = 5e-3, f_EC = 1.16,
    # mu_3 = 2e-4, eps_cor = 1e-15, eps_sec = kappa * ell with kappa = 1e-15;
    # mu_1, mu_2, p_mu1, p_mu2, q_x optimised. Fig. 1 plots n_X = 1e4 .. 1e9; 1e7 is the default.
    "lim2014": FiniteDecoyBB84Params(),
}
DEFAULT_PRESET = "lim2014"


# --------------------------------------------------------------------------- channel model


@dataclass(frozen=True)
class _Protocol:
    """Values of the five protocol parameters, broadcastable arrays."""

    mu1: FloatArray
    mu2: FloatArray
    p1: FloatArray
    p2: FloatArray
    qx: FloatArray


def _click_and_error(
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


def _gamma(a: FloatArray, b: FloatArray, c: FloatArray, d: FloatArray) -> FloatArray:
    """Random-sampling deviation gamma(a, b, c, d) of Lim et al. Eq. (B2) (Fung, Ma, Chau 2010)."""
    bb = np.clip(b, 1e-300, 0.5)
    spread = (c + d) * (1.0 - bb) * bb / (c * d)
    log_arg = np.log2((c + d) / (c * d * (1.0 - bb) * bb)) - 2.0 * np.log2(a)
    return np.asarray(np.sqrt(np.maximum(spread / math.log(2.0) * log_arg, 0.0)))


def _weighted_sum(weights: list[FloatArray], values: list[FloatArray]) -> FloatArray:
    total = np.asarray(weights[0] * values[0])
    for w, v in zip(weights[1:], values[1:], strict=True):
        total = np.asarray(total + w * v)
    return total


@dataclass(frozen=True)
class _Result:
    rate: FloatArray  # ell / N, not clipped
    guide: FloatArray  # the rate, continued below zero for the optimiser (see _evaluate)
    qber: FloatArray
    n_pulses: FloatArray
    s_x0: FloatArray
    s_x1: FloatArray
    phase_error: FloatArray
    eps_sec: FloatArray


def _evaluate(
    params: FiniteDecoyBB84Params, eta_sys: FloatArray, proto: _Protocol, finite: bool = True
) -> _Result:
    """Key length per pulse for the expected statistics of the channel (arrays broadcast).

    With ``finite=False`` the Hoeffding deviations, gamma and the eps terms are dropped: the
    asymptotic limit of the same three-intensity bounds.
    """
    mu1, mu2, p1, p2, qx = proto.mu1, proto.mu2, proto.p1, proto.p2, proto.qx
    mu3 = params.mu3
    mu3_arr = np.full_like(mu1, mu3)
    intensities = [mu1, mu2, mu3_arr]
    probs = [p1, p2, np.asarray(1.0 - p1 - p2)]
    clicks: list[FloatArray] = []
    errors: list[FloatArray] = []
    for k in intensities:
        r_k, e_k = _click_and_error(params, eta_sys, k)
        clicks.append(r_k)
        errors.append(e_k)
    total_click = _weighted_sum(probs, clicks)  # sum_k p_k R_k
    qber = np.asarray(_weighted_sum(probs, errors) / total_click)  # E_X = m_X / n_X

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

    poisson0 = [np.exp(-k) for k in intensities]
    tau0 = _weighted_sum(probs, poisson0)
    tau1 = _weighted_sum(probs, [e * k for e, k in zip(poisson0, intensities, strict=True)])
    weights = [np.exp(k) / p for p, k in zip(probs, intensities, strict=True)]
    denom_1 = mu1 * (mu2 - mu3) - mu2**2 + mu3**2
    square_ratio = (mu2**2 - mu3**2) / mu1**2

    def vacuum_and_single(
        counts: list[FloatArray], dev: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        lo = [w * (c - dev) for w, c in zip(weights, counts, strict=True)]  # n^-_k
        hi = [w * (c + dev) for w, c in zip(weights, counts, strict=True)]  # n^+_k
        s0 = np.maximum(tau0 * (mu2 * lo[2] - mu3 * hi[1]) / (mu2 - mu3), 0.0)  # Eq. (2)
        s1 = tau1 * mu1 * (lo[1] - hi[2] - square_ratio * (hi[0] - s0 / tau0)) / denom_1
        return np.asarray(s0), np.asarray(s1)  # s1: Eq. (3)

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
            log_term = np.log(EPS_SPLIT / eps)
            dev_x = np.sqrt(0.5 * n_x * log_term)
            dev_z = np.sqrt(0.5 * n_z * log_term)
            dev_m = np.sqrt(0.5 * m_z * log_term)
        else:
            dev_x = dev_z = dev_m = np.zeros_like(ell)
        s_x0, s_x1 = vacuum_and_single(n_xk, dev_x)
        _, s_z1 = vacuum_and_single(n_zk, dev_z)
        v_z1 = tau1 * (weights[1] * (m_zk[1] + dev_m) - weights[2] * (m_zk[2] - dev_m))
        v_z1 = v_z1 / (mu2 - mu3)  # Eq. (4)
        ok = (s_x1 > 0.0) & (s_z1 > 0.0)
        s_x1_safe = np.where(ok, s_x1, 1.0)
        s_z1_safe = np.where(ok, s_z1, 1.0)
        bit_error_ratio = v_z1 / s_z1_safe
        deviation = np.zeros_like(bit_error_ratio)
        if finite:  # Eq. (5)
            b_clip = np.clip(bit_error_ratio, 0.0, 0.5)
            deviation = _gamma(eps / EPS_SPLIT, b_clip, s_z1_safe, s_x1_safe)
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

    return _Result(
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


# --------------------------------------------------------------------------- optimisation

# Free parameters and their search coordinates: log for intensities, logit for probabilities.
_NAMES = ("mu", "mu2", "p_mu", "p_mu2", "p_x")
_LOG_SCALE = {"mu": True, "mu2": True, "p_mu": False, "p_mu2": False, "p_x": False}
# Multi-start grid (natural units; repaired to satisfy the constraints), then compass search.
_START_GRID: dict[str, tuple[float, ...]] = {
    "mu": (0.25, 0.45, 0.7),
    "mu2": (0.04, 0.1, 0.2),
    "p_mu": (0.5, 0.7, 0.9),
    "p_mu2": (0.05, 0.15, 0.3),
    "p_x": (0.3, 0.6, 0.85, 0.97, 0.995),
}
STEP_START = 0.4  # compass step in log / logit units
STEP_POLISH = 0.05
STEP_MIN = 2e-3
COMPASS_MAX_POLLS = 150
N_STARTS = 4  # best grid points refined per distance
REL_IMPROVEMENT = 1e-12

Objective = Callable[[npt.NDArray[np.intp], FloatArray], FloatArray]


def _to_coord(name: str, value: npt.ArrayLike) -> FloatArray:
    v = np.asarray(value, dtype=np.float64)
    return np.asarray(np.log(v) if _LOG_SCALE[name] else np.log(v) - np.log1p(-v))


def _from_coord(name: str, u: FloatArray) -> FloatArray:
    return np.asarray(np.exp(u) if _LOG_SCALE[name] else 1.0 / (1.0 + np.exp(-u)))


def _improves(new: FloatArray, old: FloatArray) -> npt.NDArray[np.bool_]:
    """new beats old by more than rounding noise (any finite value beats -inf)."""
    margin = np.where(np.isfinite(old), REL_IMPROVEMENT * np.abs(old), 0.0)
    return np.asarray((new > old) & (new - np.where(np.isfinite(old), old, -np.inf) > margin))


class _Problem:
    """Maps search coordinates of the free parameters to protocol values and key rates."""

    def __init__(self, params: FiniteDecoyBB84Params, eta_sys: FloatArray, finite: bool) -> None:
        self.params = params
        self.eta = eta_sys
        self.finite = finite
        # Asymptotically a free p_x goes to 1: no sifting loss, Z statistics still exact.
        p_x = params.p_x if (finite or params.p_x is not None) else 1.0
        self.fixed: dict[str, float | None] = {
            "mu": params.mu,
            "mu2": params.mu2,
            "p_mu": params.p_mu,
            "p_mu2": params.p_mu2,
            "p_x": p_x,
        }
        self.free = tuple(n for n in _NAMES if self.fixed[n] is None)
        boxes = [self._box(n) for n in self.free]
        self.lo = np.array([_to_coord(n, b[0]) for n, b in zip(self.free, boxes, strict=True)])
        self.hi = np.array([_to_coord(n, b[1]) for n, b in zip(self.free, boxes, strict=True)])

    def _box(self, name: str) -> tuple[float, float]:
        """Search interval (natural units) of a free parameter."""
        mu3 = self.params.mu3
        if name == "mu":
            return max(MU_MIN, 2.0 * mu3 * (1.0 + 1e-6)), MU_MAX
        if name == "mu2":
            return max(mu3 * (1.0 + 1e-6), 1e-6), MU_MAX
        if name == "p_x":
            return PX_MIN, PX_MAX
        return P_MIN, P_MAX

    def protocol(self, u: FloatArray) -> tuple[_Protocol, npt.NDArray[np.bool_]]:
        """Protocol values for coordinates ``u`` (..., n_free) and their feasibility mask."""
        shape = u.shape[:-1]
        values: dict[str, FloatArray] = {}
        for name in _NAMES:
            fixed = self.fixed[name]
            if fixed is None:
                values[name] = _from_coord(name, u[..., self.free.index(name)])
            else:
                values[name] = np.full(shape, fixed)
        proto = _Protocol(
            mu1=values["mu"],
            mu2=values["mu2"],
            p1=values["p_mu"],
            p2=values["p_mu2"],
            qx=values["p_x"],
        )
        mu3 = self.params.mu3
        feasible = (
            (proto.mu1 > (proto.mu2 + mu3) * (1.0 + 1e-9))
            & (proto.mu2 > mu3)
            & (1.0 - proto.p1 - proto.p2 >= P3_MIN)
        )
        return proto, np.asarray(feasible)

    def evaluate(self, rows: npt.NDArray[np.intp], u: FloatArray) -> _Result:
        """Rates of candidates ``u`` (len(rows), C, n_free) at the distances ``rows``."""
        proto, _ = self.protocol(u)
        with np.errstate(all="ignore"):
            return _evaluate(self.params, self.eta[rows][:, None], proto, self.finite)

    def objective(self, rows: npt.NDArray[np.intp], u: FloatArray) -> FloatArray:
        """Rate continued below zero; -inf where a candidate breaks a protocol constraint."""
        _, feasible = self.protocol(u)
        guide = self.evaluate(rows, u).guide
        return np.asarray(np.where(feasible & np.isfinite(guide), guide, -np.inf))

    def start_grid(self) -> FloatArray:
        """Multi-start points (n_start, n_free), moved inside the constraints."""
        axes = [np.array(_START_GRID[n]) for n in self.free]
        mesh = [m.ravel() for m in np.meshgrid(*axes, indexing="ij")]
        v = {
            n: mesh[self.free.index(n)] if n in self.free else np.array(self.fixed[n], dtype=float)
            for n in _NAMES
        }
        mu3 = self.params.mu3
        mu1 = np.asarray(v["mu"], dtype=np.float64)
        mu2 = np.asarray(v["mu2"], dtype=np.float64)
        if "mu" in self.free:  # room above a fixed or gridded mu2
            mu1 = np.minimum(np.maximum(mu1, 1.3 * (mu2 + mu3)), MU_MAX)
        if "mu2" in self.free:  # mu3 < mu2 < mu1 - mu3
            mu2 = np.clip(mu2, mu3 + 0.1 * (mu1 - 2 * mu3), mu3 + 0.6 * (mu1 - 2 * mu3))
        p1 = np.asarray(v["p_mu"], dtype=np.float64)
        p2 = np.asarray(v["p_mu2"], dtype=np.float64)
        if "p_mu2" in self.free:
            p2 = np.minimum(p2, 0.5 * (1.0 - p1))
        elif "p_mu" in self.free:
            p1 = np.minimum(p1, 0.5 * (1.0 - p2))
        natural = {"mu": mu1, "mu2": mu2, "p_mu": p1, "p_mu2": p2, "p_x": v["p_x"]}
        columns = [np.broadcast_to(_to_coord(n, natural[n]), mesh[0].shape) for n in self.free]
        return np.clip(np.stack(columns, axis=-1), self.lo, self.hi)


def _compass(
    objective: Objective,
    x: FloatArray,
    f: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    step: FloatArray,
) -> None:
    """Vectorised compass search with a momentum probe, one problem per row; in place.

    Each poll tries +-step along every coordinate plus two probes along the recent
    direction of travel (which follows a curved valley faster than coordinate moves).
    """
    dim = x.shape[1]
    directions = np.concatenate([np.eye(dim), -np.eye(dim)])
    momentum = np.zeros_like(x)
    for _ in range(COMPASS_MAX_POLLS):
        rows = np.nonzero(step >= STEP_MIN)[0]
        if rows.size == 0:
            break
        here = x[rows, None, :]
        moves = step[rows, None, None] * directions[None]
        probes = momentum[rows, None, :] * np.array([1.0, 2.0])[None, :, None]
        cand = np.clip(here + np.concatenate([moves, probes], axis=1), lo, hi)
        values = objective(rows, cand)
        best = np.argmax(values, axis=1)
        f_best = values[np.arange(rows.size), best]
        better = _improves(f_best, f[rows])
        moved = rows[better]
        new_x = cand[better, best[better]]
        momentum[moved] = 0.5 * momentum[moved] + (new_x - x[moved])
        x[moved] = new_x
        f[moved] = f_best[better]
        step[moved] = np.minimum(step[moved] * 1.5, STEP_START)
        stalled = rows[~better]
        step[stalled] *= 0.5
        momentum[stalled] = 0.0


def _adopt_neighbours(objective: Objective, x: FloatArray, f: FloatArray) -> bool:
    """Try each row's neighbours' optima at the row's own distance; True if any improved."""
    n = x.shape[0]
    rows = np.arange(n)
    left = np.maximum(rows - 1, 0)
    right = np.minimum(rows + 1, n - 1)
    cand = np.stack([x[left], x[right]], axis=1)
    values = objective(rows, cand)
    best = np.argmax(values, axis=1)
    f_best = values[rows, best]
    better = _improves(f_best, f)
    x[better] = cand[better, best[better]]
    f[better] = f_best[better]
    return bool(np.any(better))


def _optimise(problem: _Problem) -> FloatArray:
    """Best coordinates per distance (rows sorted by increasing distance)."""
    n = problem.eta.shape[0]
    if not problem.free:
        return np.zeros((n, 0))
    rows = np.arange(n)
    grid = problem.start_grid()
    values = problem.objective(rows, np.broadcast_to(grid, (n, *grid.shape)))
    # The landscape has several local maxima: refine the best few starts of every row.
    starts = min(N_STARTS, grid.shape[0])
    top = np.argsort(-values, axis=1, kind="stable")[:, :starts]
    owner = np.repeat(rows, starts)

    def owned(sub: npt.NDArray[np.intp], u: FloatArray) -> FloatArray:
        return problem.objective(owner[sub], u)

    xs = grid[top].reshape(n * starts, -1).copy()
    fs = values[rows[:, None], top].reshape(-1).copy()
    _compass(owned, xs, fs, problem.lo, problem.hi, np.full(n * starts, STEP_START))
    # A restart from the converged point frees searches stalled in a narrow valley.
    _compass(owned, xs, fs, problem.lo, problem.hi, np.full(n * starts, STEP_POLISH))
    best = np.argmax(fs.reshape(n, starts), axis=1)
    x = xs.reshape(n, starts, -1)[rows, best].copy()
    f = fs.reshape(n, starts)[rows, best].copy()
    # Neighbouring distances have nearly the same optimum: hand optima on along the sweep so a
    # row stuck below its neighbours catches up (this also keeps the sweep monotone).
    for _ in range(3):
        passes = 0
        while passes < n and _adopt_neighbours(problem.objective, x, f):
            passes += 1
        if passes == 0:
            break
        _compass(problem.objective, x, f, problem.lo, problem.hi, np.full(n, STEP_POLISH))
    return np.asarray(x, dtype=np.float64)


def finite_decoy_bb84_transmittance(
    params: FiniteDecoyBB84Params, length_km: npt.ArrayLike
) -> FloatArray:
    """Total transmittance eta_ch * eta_Bob with eta_ch = 10^(-(alpha L + extra) / 10)."""
    channel = fiber_transmittance(length_km, params.loss_db_per_km, params.extra_loss_db)
    return np.asarray(params.detector_efficiency * channel, dtype=np.float64)


def _curve(
    params: FiniteDecoyBB84Params, length_km: npt.ArrayLike, finite: bool, protocol: str
) -> KeyRateCurve:
    lengths = as_float_array(length_km).ravel()
    eta = finite_decoy_bb84_transmittance(params, lengths)
    order = np.argsort(lengths, kind="stable")
    problem = _Problem(params, eta[order], finite)
    x = _optimise(problem)[:, None, :]
    rows = np.arange(lengths.size)
    proto, feasible = problem.protocol(x)
    result = problem.evaluate(rows, x)
    inverse = np.empty_like(order)
    inverse[order] = rows

    def back(values: FloatArray) -> FloatArray:
        flat = np.broadcast_to(values, (lengths.size, 1))[:, 0]
        return np.asarray(flat[inverse], dtype=np.float64)

    rate = back(np.where(feasible & np.isfinite(result.rate), result.rate, 0.0))
    extra = {
        "mu2": back(proto.mu2),
        "mu3": np.full(lengths.size, params.mu3),
        "p_mu": back(proto.p1),
        "p_mu2": back(proto.p2),
        "p_mu3": back(1.0 - proto.p1 - proto.p2),
        "p_x": back(proto.qx),
        "n_pulses": back(result.n_pulses),
        "s_x0": back(result.s_x0),
        "s_x1": back(result.s_x1),
        "phase_error": back(result.phase_error),
    }
    if finite:
        extra["eps_sec"] = back(result.eps_sec)
    return KeyRateCurve(
        protocol=protocol,
        length_km=lengths,
        key_rate_per_pulse=np.maximum(rate, 0.0),
        qber=back(result.qber),
        transmittance=eta,
        mu=back(proto.mu1),
        extra=extra,
    )


def finite_decoy_bb84_key_rate(
    params: FiniteDecoyBB84Params, length_km: npt.ArrayLike
) -> KeyRateCurve:
    """Secret bits per emitted pulse, ell / N, with the free parameters optimised per distance.

    N = n_x / (q_x^2 sum_k p_k R_k) is the expected number of pulses Alice sends to fill the
    block of n_x X-basis detections (Lim et al. 2014 rate R = ell / N).
    """
    return _curve(params, length_km, finite=True, protocol=PROTOCOL)


def finite_decoy_bb84_asymptotic_key_rate(
    params: FiniteDecoyBB84Params, length_km: npt.ArrayLike
) -> KeyRateCurve:
    """The n_x -> infinity limit of the same protocol (dashed curve of Lim et al. Fig. 1).

    No statistical deviations or eps terms; a free p_x is 1 (no sifting loss) and the free
    intensities and probabilities are optimised as before (three intensities are kept).
    """
    return _curve(params, length_km, finite=False, protocol=PROTOCOL + "-asymptotic")
