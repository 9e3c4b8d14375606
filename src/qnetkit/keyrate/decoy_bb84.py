"""Asymptotic decoy-state BB84 with a weak coherent source (GLLP rate).

Model and estimators after Ma, Qi, Zhao, Lo, "Practical decoy state for quantum key
distribution", PRA 72, 012326 (2005): gains and QBERs Eqs. (10)-(11), GLLP rate Eq. (1),
infinite decoys (Y1, e1 known exactly) and vacuum + one weak decoy (Eqs. (32)-(35)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve, as_length_array, binary_entropy, check_link_params
from qnetkit.keyrate.optimize import golden_section_maximize
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import check_positive, check_probability

DECOY_METHODS = ("infinite", "vacuum+weak")
E0 = 0.5  # error rate of a background (random) click
MU_SEARCH_MAX = 1.5


@dataclass(frozen=True)
class DecoyBB84Params:
    """Parameters of a decoy-state BB84 link (per-pulse probabilities)."""

    loss_db_per_km: float = field(default=0.21, metadata={"help": "fiber attenuation (dB/km)"})
    extra_loss_db: float = field(
        default=0.0, metadata={"help": "lumped losses: connectors, splices, components (dB)"}
    )
    detector_efficiency: float = field(
        default=0.045,
        metadata={"help": "eta_Bob: Bob's internal transmittance times detector efficiency"},
    )
    dark_count_prob: float = field(
        default=1.7e-6,
        metadata={
            "help": "Y0: background (dark + stray) click probability per pulse, all detectors"
        },
    )
    misalignment_error: float = field(
        default=0.033,
        metadata={"help": "e_detector: probability a signal photon hits the wrong detector"},
    )
    ec_efficiency: float = field(
        default=1.22, metadata={"help": "f_EC: error-correction inefficiency (>= 1)"}
    )
    sifting_factor: float = field(
        default=0.5,
        metadata={"help": "q: fraction of pulses kept after basis sifting (1/2 for BB84)"},
    )
    decoys: str = field(
        default="infinite", metadata={"help": "decoy method: infinite | vacuum+weak"}
    )
    nu: float = field(
        default=0.1, metadata={"help": "weak decoy intensity (photons per pulse), vacuum+weak only"}
    )
    mu: float | None = field(
        default=None, metadata={"help": "signal intensity (photons per pulse); omit to optimise"}
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
        check_probability("sifting_factor", self.sifting_factor)
        if self.decoys not in DECOY_METHODS:
            raise ParameterError(
                "decoys", self.decoys, f"must be one of {', '.join(DECOY_METHODS)}"
            )
        check_positive("nu", self.nu)
        if self.mu is not None:
            check_positive("mu", self.mu)
            if self.decoys == "vacuum+weak" and self.nu >= self.mu:
                raise ParameterError(
                    "nu", self.nu, f"weak decoy must be below the signal mu={self.mu}"
                )
        elif self.decoys == "vacuum+weak" and self.nu >= MU_SEARCH_MAX:
            raise ParameterError("nu", self.nu, f"weak decoy must be below {MU_SEARCH_MAX}")


PRESETS: dict[str, DecoyBB84Params] = {
    # Gobby, Yuan, Shields, APL 84, 3762 (2004), as tabulated in Ma et al. 2005, Table I.
    "gys2004": DecoyBB84Params(),
}
DEFAULT_PRESET = "gys2004"


def _gain_and_error(
    eta: FloatArray, intensity: FloatArray | float, y0: float, e_det: float
) -> tuple[FloatArray, FloatArray]:
    """Overall gain Q and error-weighted gain E*Q of a coherent state, Ma et al. Eqs. (10)-(11)."""
    detected = 1.0 - np.exp(-eta * intensity)
    gain = y0 + detected
    error_gain = E0 * y0 + e_det * detected
    return gain, error_gain


def decoy_bb84_rate_at(
    params: DecoyBB84Params, eta: FloatArray, mu: FloatArray
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Unclipped key rate per pulse and intermediate quantities for given eta and mu arrays."""
    y0 = params.dark_count_prob
    e_det = params.misalignment_error
    q_mu, eq_mu = _gain_and_error(eta, mu, y0, e_det)
    e_mu = eq_mu / q_mu
    if params.decoys == "infinite":
        # Ma et al. Eq. (6) and (8): with infinitely many decoys Y1 and e1 are known exactly.
        y1 = y0 + eta - y0 * eta
        e1 = (E0 * y0 + e_det * eta) / y1
    else:
        nu = params.nu
        q_nu, eq_nu = _gain_and_error(eta, nu, y0, e_det)
        # The vacuum decoy measures Y0 directly (asymptotically).
        y1 = (mu / (mu * nu - nu**2)) * (
            q_nu * np.exp(nu) - q_mu * np.exp(mu) * nu**2 / mu**2 - (mu**2 - nu**2) / mu**2 * y0
        )
        y1 = np.maximum(y1, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            e1 = np.where(y1 > 0.0, (eq_nu * np.exp(nu) - E0 * y0) / (y1 * nu), E0)
        e1 = np.clip(e1, 0.0, E0)
    q1 = y1 * mu * np.exp(-mu)
    rate = params.sifting_factor * (
        -q_mu * params.ec_efficiency * binary_entropy(e_mu) + q1 * (1.0 - binary_entropy(e1))
    )
    return np.asarray(rate), {"gain": q_mu, "qber": e_mu, "y1": y1, "e1": e1}


def decoy_bb84_transmittance(params: DecoyBB84Params, length_km: npt.ArrayLike) -> FloatArray:
    """Total transmittance eta = eta_Bob * 10^(-(alpha L + extra)/10)."""
    channel = fiber_transmittance(length_km, params.loss_db_per_km, params.extra_loss_db)
    return np.asarray(params.detector_efficiency * channel)


def decoy_bb84_key_rate(params: DecoyBB84Params, length_km: npt.ArrayLike) -> KeyRateCurve:
    """Key rate per pulse over distance, with mu optimised per distance unless fixed."""
    lengths = as_length_array(length_km)
    eta = decoy_bb84_transmittance(params, lengths)
    if params.mu is None:
        lower = params.nu * (1.0 + 1e-6) if params.decoys == "vacuum+weak" else 1e-4
        mu, _ = golden_section_maximize(
            lambda m: decoy_bb84_rate_at(params, eta, m)[0],
            np.full_like(eta, lower),
            np.full_like(eta, MU_SEARCH_MAX),
        )
    else:
        mu = np.full_like(eta, params.mu)
    rate, parts = decoy_bb84_rate_at(params, eta, mu)
    return KeyRateCurve(
        protocol="decoy-bb84",
        length_km=lengths,
        key_rate_per_pulse=np.maximum(rate, 0.0),
        qber=parts["qber"],
        transmittance=eta,
        mu=mu,
        extra={"gain": parts["gain"], "y1": parts["y1"], "e1": parts["e1"]},
    )
