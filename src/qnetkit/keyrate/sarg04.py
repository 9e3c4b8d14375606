"""SARG04, weak coherent source: key from one- and two-photon pulses, with or without decoys.

Rate after Fung, Tamaki, Lo, PRA 73, 012337 (2006) (SARG04 + decoys) and Tamaki, Lo, PRA 73,
010302(R) (2006) (key from two-photon pulses):  R = Q1 [1 - h(ep1)] + Q2 [1 - h(ep2)] - f Q h(E),
per pulse, Q and Q_n counting conclusive (sifted) detections. Two-photon phase error: Tamaki-Lo's
bound (one-way threshold 2.71 %, reproduced); single-photon: ep1 = 3/2 eb1 (filter picture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve, as_length_array, binary_entropy, check_link_params
from qnetkit.keyrate.optimize import golden_section_maximize
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import check_positive

SARG04_DECOYS = ("none", "infinite")
MU_SEARCH_MAX = 1.5
MU_NO_KEY = 0.1  # intensity at which a no-key distance is reported (QBER column only)
# Error splits between the one- and two-photon pulses tried by the no-decoy bound (worst kept).
_SPLITS = np.linspace(0.0, 1.0, 21)


@dataclass(frozen=True)
class SARG04Params:
    """A SARG04 link: BB84's states, SARG04's sifting (Scarani et al., PRL 92, 057901 (2004))."""

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
        metadata={"help": "Y0: background click probability per pulse, all detectors"},
    )
    misalignment_error: float = field(
        default=0.033,
        metadata={"help": "e_d: probability a photon hits the wrong detector (BB84 sense)"},
    )
    ec_efficiency: float = field(
        default=1.22, metadata={"help": "f_EC: error-correction inefficiency (>= 1)"}
    )
    decoys: str = field(
        default="none",
        metadata={"help": "none (the deployed plug&play systems) | infinite (decoy SARG04)"},
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
        if self.decoys not in SARG04_DECOYS:
            raise ParameterError(
                "decoys", self.decoys, f"must be one of {', '.join(SARG04_DECOYS)}"
            )
        if self.mu is not None:
            check_positive("mu", self.mu)


PRESETS: dict[str, SARG04Params] = {
    # The device values of the decoy-bb84 preset gys2004 (Ma et al. 2005, Table I), so that the
    # two protocols are compared on the same hardware, as Fung, Tamaki, Lo (2006) do.
    "gys2004": SARG04Params(),
    "gys2004-decoy": SARG04Params(decoys="infinite"),
}
DEFAULT_PRESET = "gys2004-decoy"  # gys2004 without decoys makes no key: SARG04 QBER 6.2 %


def single_photon_phase_error(bit_error: npt.ArrayLike) -> FloatArray:
    """Phase error of SARG04's single-photon key, 3/2 of its bit error (capped at 1/2).

    Filter picture of Tamaki-Lo (2006): Bob's conclusive result is a filter diag(sin, cos)(pi/8)
    then a measurement; for any Pauli channel the filtered pair's phase error is exactly 3/2 of its
    bit error (derived here; the one-way threshold 8.90 % this gives lies below the 10.95 % of
    Branciard et al. 2005 and Tamaki-Lo, whose analyses use more of the data: conservative).
    """
    return np.asarray(np.minimum(1.5 * np.asarray(bit_error, dtype=np.float64), 0.5))


def two_photon_phase_error(bit_error: npt.ArrayLike) -> FloatArray:
    """Tamaki-Lo's bound on the two-photon phase error, min_x [x e + (3 - 2x + sqrt(6 - 6 sqrt2 x
    + 4x^2)) / 6], in closed form; (2 - sqrt2)/4 at e = 0 (Eve's share of a two-photon pulse).
    """
    e = np.clip(np.asarray(bit_error, dtype=np.float64), 0.0, 1.0 / 3.0)
    # Stationary point: with u = 4x - 3 sqrt2 and k = 1 - 3e, u = k sqrt(6 / (1 - k^2)).
    k = 1.0 - 3.0 * e
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k * np.sqrt(6.0 / (1.0 - k**2))
        bound = e * u / 4.0 + e * u / (4.0 * k) + 3.0 * math.sqrt(2.0) * e / 4.0
    limit = 0.5 - math.sqrt(2.0) / 4.0
    out = np.where(e > 0.0, bound + limit, limit)
    return np.asarray(np.minimum(np.where(k > 0.0, out, 0.5), 0.5))


def sarg04_transmittance(params: SARG04Params, length_km: npt.ArrayLike) -> FloatArray:
    """Total transmittance eta = eta_Bob * 10^(-(alpha L + extra)/10)."""
    channel = fiber_transmittance(length_km, params.loss_db_per_km, params.extra_loss_db)
    return np.asarray(params.detector_efficiency * channel)


def _sifted_yield(
    eta: FloatArray, n: int, y0: float, e_d: float
) -> tuple[FloatArray, FloatArray]:
    """Conclusive yield of an n-photon pulse and its error-weighted part.

    A signal click is conclusive in Bob's other basis half the time (always right) and, in the
    basis of the sent state, when the photon hit the wrong detector (always wrong): (1 + 2 e_d)/4,
    errors e_d/2. A background click is conclusive half the time, wrong half of that.
    Multi-photon clicks use the single-photon fractions, as Ma et al. (2005) do for BB84.
    """
    signal = 1.0 - (1.0 - eta) ** n
    background = y0 * (1.0 - signal)
    sifted = 0.25 * (1.0 + 2.0 * e_d) * signal + 0.5 * background
    errors = 0.5 * e_d * signal + 0.25 * background
    return sifted, errors


def sarg04_rate_at(
    params: SARG04Params, eta: FloatArray, mu: FloatArray
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Unclipped key rate per pulse and intermediate quantities for given eta and mu arrays."""
    y0 = params.dark_count_prob
    e_d = params.misalignment_error
    # Coherent state: Q = sum_n P(n) s_n = (1/4)(1 + 2 e_d)(1 - e^{-eta mu}) + (1/2) Y0 e^{-eta mu}.
    clicks = 1.0 - np.exp(-eta * mu)
    gain = 0.25 * (1.0 + 2.0 * e_d) * clicks + 0.5 * y0 * (1.0 - clicks)
    error_gain = 0.5 * e_d * clicks + 0.25 * y0 * (1.0 - clicks)
    qber = error_gain / gain
    p1 = mu * np.exp(-mu)
    p2 = 0.5 * mu**2 * np.exp(-mu)
    ec = params.ec_efficiency * gain * binary_entropy(qber)
    if params.decoys == "infinite":
        # Decoys measure every n-photon yield and error (Fung, Tamaki, Lo 2006, Sec. IV).
        s1, w1 = _sifted_yield(eta, 1, y0, e_d)
        s2, w2 = _sifted_yield(eta, 2, y0, e_d)
        q1, q2 = p1 * s1, p2 * s2
        e1, e2 = w1 / s1, w2 / s2
        rate = (q1 * (1.0 - binary_entropy(single_photon_phase_error(e1)))
                + q2 * (1.0 - binary_entropy(two_photon_phase_error(e2))) - ec)
    else:
        # No decoys (GLLP-style tagging): every pulse of three or more photons may have been
        # read by Eve and given a conclusive click; the remaining conclusive clicks come from one-
        # and two-photon pulses, as many as possible from two-photon ones (the worse phase error),
        # and carry all the errors, split between the two in the worst way.
        tagged = 1.0 - np.exp(-mu) * (1.0 + mu + 0.5 * mu**2)
        untagged = np.maximum(gain - tagged, 0.0)
        q2 = np.minimum(p2, untagged)
        q1 = untagged - q2
        split = _SPLITS[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            e1 = np.where(q1 > 0.0, split * error_gain / q1, 0.0)
            e2 = np.where(q2 > 0.0, (1.0 - split) * error_gain / q2, 0.0)
        private = (q1 * (1.0 - binary_entropy(single_photon_phase_error(np.minimum(e1, 0.5))))
                   + q2 * (1.0 - binary_entropy(two_photon_phase_error(np.minimum(e2, 0.5)))))
        rate = np.where(untagged > 0.0, private.min(axis=0) - ec, -ec)
    return np.asarray(rate), {"gain": gain, "qber": qber, "q1": q1, "q2": q2}


def sarg04_key_rate(params: SARG04Params, length_km: npt.ArrayLike) -> KeyRateCurve:
    """Key rate per pulse over distance, with mu optimised per distance unless fixed."""
    lengths = as_length_array(length_km)
    eta = sarg04_transmittance(params, lengths)
    if params.mu is None:
        # Optimise log(mu): the no-decoy optimum falls like sqrt(eta), over decades.
        log_mu, _ = golden_section_maximize(
            lambda lm: sarg04_rate_at(params, eta, np.exp(lm))[0],
            np.full_like(eta, math.log(1e-5)),
            np.full_like(eta, math.log(MU_SEARCH_MAX)),
        )
        mu = np.exp(log_mu)
        # Where no intensity gives key the search ends at its lower edge, where dark counts alone
        # set the QBER; report the no-key distances at a plain display intensity instead.
        none = sarg04_rate_at(params, eta, mu)[0] <= 0.0
        mu = np.where(none, MU_NO_KEY, mu)
    else:
        mu = np.full_like(eta, params.mu)
    rate, parts = sarg04_rate_at(params, eta, mu)
    return KeyRateCurve(
        protocol="sarg04",
        length_km=lengths,
        key_rate_per_pulse=np.maximum(rate, 0.0),
        qber=parts["qber"],
        transmittance=eta,
        mu=mu,
        extra={"gain": parts["gain"], "q1": parts["q1"], "q2": parts["q2"]},
    )
