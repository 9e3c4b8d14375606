"""Finite-key decoy-state BB84 (biased bases, three intensities) with a weak coherent source.

Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014): key length Eq. (1) with the decoy and
phase-error bounds Eqs. (2)-(5), applied to the expected statistics of its Sec. IV fiber model
(``finite_decoy_model``); here the parameters, presets and the per-distance optimisation of the
intensities, their probabilities and the basis bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve, as_length_array, check_link_params
from qnetkit.keyrate.finite_decoy_model import (
    DecoyProtocol,
    KeyLengthResult,
    expected_key_length,
)
from qnetkit.keyrate.optimize import multistart_compass
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import (
    check_nonnegative,
    check_open_probability,
    check_positive,
    check_probability,
)

PROTOCOL = "finite-decoy-bb84"

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
        if self.eps_sec is not None:
            check_open_probability("eps_sec", self.eps_sec)
        check_open_probability("eps_cor", self.eps_cor)
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
                check_open_probability(name, prob)
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


def _to_coord(name: str, value: npt.ArrayLike) -> FloatArray:
    v = np.asarray(value, dtype=np.float64)
    return np.asarray(np.log(v) if _LOG_SCALE[name] else np.log(v) - np.log1p(-v))


def _from_coord(name: str, u: FloatArray) -> FloatArray:
    return np.asarray(np.exp(u) if _LOG_SCALE[name] else 1.0 / (1.0 + np.exp(-u)))


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

    def protocol(self, u: FloatArray) -> tuple[DecoyProtocol, npt.NDArray[np.bool_]]:
        """Protocol values for coordinates ``u`` (..., n_free) and their feasibility mask."""
        shape = u.shape[:-1]
        values: dict[str, FloatArray] = {}
        for name in _NAMES:
            fixed = self.fixed[name]
            if fixed is None:
                values[name] = _from_coord(name, u[..., self.free.index(name)])
            else:
                values[name] = np.full(shape, fixed)
        proto = DecoyProtocol(
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

    def evaluate(self, rows: npt.NDArray[np.intp], u: FloatArray) -> KeyLengthResult:
        """Rates of candidates ``u`` (len(rows), C, n_free) at the distances ``rows``."""
        proto, _ = self.protocol(u)
        with np.errstate(all="ignore"):
            return expected_key_length(self.params, self.eta[rows][:, None], proto, self.finite)

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


def _optimise(problem: _Problem) -> FloatArray:
    """Best coordinates per distance (rows sorted by increasing distance)."""
    n = problem.eta.shape[0]
    if not problem.free:
        return np.zeros((n, 0))
    return multistart_compass(problem.objective, problem.start_grid(), n, problem.lo, problem.hi)


def finite_decoy_bb84_transmittance(
    params: FiniteDecoyBB84Params, length_km: npt.ArrayLike
) -> FloatArray:
    """Total transmittance eta_ch * eta_Bob with eta_ch = 10^(-(alpha L + extra) / 10)."""
    channel = fiber_transmittance(length_km, params.loss_db_per_km, params.extra_loss_db)
    return np.asarray(params.detector_efficiency * channel, dtype=np.float64)


def _curve(
    params: FiniteDecoyBB84Params, length_km: npt.ArrayLike, finite: bool, protocol: str
) -> KeyRateCurve:
    lengths = as_length_array(length_km).ravel()
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
