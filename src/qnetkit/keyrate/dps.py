"""Differential-phase-shift QKD (DPS-QKD) with a weak coherent pulse train, individual attacks.

Rate against general individual attacks of Waks, Takesue, Yamamoto, PRA 73, 012344 (2006), as used
by the NTT DPS experiments (e.g. Takesue et al., Nat. Photon. 1, 343 (2007)):
R = Q [ (1 - 2 mu) tau(e) - f h(e) ] per pulse, tau(e) = -log2(1 - e^2 - (1 - 6e)^2 / 2) the
collision-entropy bound and 2 mu the share of bits a beam-splitting Eve learns outright.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.keyrate.common import KeyRateCurve, as_length_array, binary_entropy, check_link_params
from qnetkit.keyrate.optimize import golden_section_maximize
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import check_open_probability

# The beam-splitting term (1 - 2 mu) leaves no key at mu >= 1/2.
MU_SEARCH_MAX = 0.5
# Above e = 1/6 the collision bound's (1 - 6e)^2 term turns round; no key survives there anyway.
E_COLLISION_MAX = 1.0 / 6.0


@dataclass(frozen=True)
class DPSParams:
    """A DPS-QKD link: phase-modulated coherent pulse train, one-bit-delay interferometer at Bob."""

    loss_db_per_km: float = field(default=0.2, metadata={"help": "fiber attenuation (dB/km)"})
    extra_loss_db: float = field(
        default=0.0, metadata={"help": "lumped losses: connectors, splices, components (dB)"}
    )
    detector_efficiency: float = field(
        default=0.06,
        metadata={"help": "eta_Bob: interferometer transmittance times detector efficiency"},
    )
    dark_count_prob: float = field(
        default=5.6e-8,
        metadata={"help": "Y0: background click probability per time slot, both detectors"},
    )
    misalignment_error: float = field(
        default=0.02,
        metadata={"help": "e_d: interference error, (1 - visibility) / 2"},
    )
    ec_efficiency: float = field(
        default=1.22, metadata={"help": "f_EC: error-correction inefficiency (>= 1)"}
    )
    mu: float | None = field(
        default=None, metadata={"help": "mean photon number per pulse (< 0.5); omit to optimise"}
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
        if self.mu is not None:
            # (1 - 2 mu) must stay positive: mu in (0, 1/2).
            check_open_probability("mu", 2.0 * self.mu)


PRESETS: dict[str, DPSParams] = {
    # Namekata et al., Opt. Express 19, 10632 (2011), abstract: 2-GHz sinusoidally gated InGaAs
    # APDs, efficiency 6 %, dark count 2.8e-8 per gate (two detectors: 5.6e-8 per slot). Fiber
    # loss 0.2 dB/km, interference error 2 % and f_EC 1.22 are assumed, not from that paper.
    "namekata2011": DPSParams(),
}
DEFAULT_PRESET = "namekata2011"


def collision_entropy_bound(qber: npt.ArrayLike) -> FloatArray:
    """tau(e) = -log2(1 - e^2 - (1 - 6e)^2 / 2): bits per sifted bit left after an individual
    attack (Waks et al. 2006); 1 at e = 0, 0 beyond e = 1/6."""
    e = np.clip(np.asarray(qber, dtype=np.float64), 0.0, E_COLLISION_MAX)
    collision = 1.0 - e**2 - 0.5 * (1.0 - 6.0 * e) ** 2
    return np.asarray(-np.log2(collision))


def dps_transmittance(params: DPSParams, length_km: npt.ArrayLike) -> FloatArray:
    """Total transmittance eta = eta_Bob * 10^(-(alpha L + extra)/10)."""
    channel = fiber_transmittance(length_km, params.loss_db_per_km, params.extra_loss_db)
    return np.asarray(params.detector_efficiency * channel)


def dps_rate_at(
    params: DPSParams, eta: FloatArray, mu: FloatArray
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Unclipped key rate per pulse, with gain and QBER, for given eta and mu arrays.

    Every click is a sifted bit (no basis choice): Q = 1 - (1 - Y0) e^{-mu eta}, errors from the
    interference error on signal clicks and half of the background ones.
    """
    signal = 1.0 - np.exp(-mu * eta)
    y0 = params.dark_count_prob
    gain = signal + y0 * (1.0 - signal)
    qber = (params.misalignment_error * signal + 0.5 * y0 * (1.0 - signal)) / gain
    tau = np.where(qber < E_COLLISION_MAX, collision_entropy_bound(qber), 0.0)
    rate = gain * ((1.0 - 2.0 * mu) * tau - params.ec_efficiency * binary_entropy(qber))
    return np.asarray(rate), {"gain": gain, "qber": qber, "tau": np.asarray(tau)}


def dps_key_rate(params: DPSParams, length_km: npt.ArrayLike) -> KeyRateCurve:
    """Key rate per pulse over distance, with mu optimised per distance unless fixed."""
    lengths = as_length_array(length_km)
    eta = dps_transmittance(params, lengths)
    if params.mu is None:
        mu, _ = golden_section_maximize(
            lambda m: dps_rate_at(params, eta, m)[0],
            np.full_like(eta, 1e-4),
            np.full_like(eta, MU_SEARCH_MAX),
        )
    else:
        mu = np.full_like(eta, params.mu)
    rate, parts = dps_rate_at(params, eta, mu)
    return KeyRateCurve(
        protocol="dps",
        length_km=lengths,
        key_rate_per_pulse=np.maximum(rate, 0.0),
        qber=parts["qber"],
        transmittance=eta,
        mu=mu,
        extra={"gain": parts["gain"], "tau": parts["tau"]},
    )
