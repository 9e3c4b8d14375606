"""Device-independent E91: key rate from the CHSH value, collective attacks.

Acin, Brunner, Gisin, Massar, Pironio, Scarani, PRL 98, 230501 (2007): r = 1 - h(Q) - h((1 +
sqrt((S/2)^2 - 1))/2); over distance, S and Q come from the SPDC link of Ma, Fung, Lo (2007).

Assumptions of the distance model (state them wherever the numbers are used):

* The state on which the coincidences are measured is Werner-like (depolarised): every error
  source - misalignment e_d, background clicks, multi-pair emission - acts as white noise, so the
  QBER Q is the same in every basis and the CHSH value is S = 2 sqrt(2) (1 - 2Q).  Q is the BBM92
  QBER E_lambda of :mod:`qnetkit.keyrate.bbm92`, so dark counts and multi-pairs raise Q and lower S.
* Fair sampling: S and Q are estimated on the rounds where both users clicked (post-selection on
  coincidences), exactly as in the BBM92 model.  This is *not* loophole-free device independence:
  without post-selection, assigning an outcome to no-click rounds, a CHSH-based protocol needs a
  detection efficiency of about 92.4 % per side (Pironio et al., NJP 11, 045021 (2009)), far above
  fiber links.  The rate here is therefore the DI bound *given* fair sampling.
* Key from the (A0, B0) rounds with an error-correction inefficiency f: r = 1 - f h(Q) - chi(S);
  a fraction ``sifting_factor`` of the coincidences is used for the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import (
    BBM92Params,
    arm_transmittances,
    optimise_lambda,
    pdc_gain_and_qber,
)
from qnetkit.keyrate.common import KeyRateCurve, as_length_array, binary_entropy
from qnetkit.physics.validate import check_probability

TSIRELSON = 2.0 * math.sqrt(2.0)
_CHSH_SLACK = 1e-12  # rounding allowance above the Tsirelson bound


def _holevo_term(chsh_value: FloatArray) -> FloatArray:
    """Eve's information chi(S) = h((1 + sqrt((S/2)^2 - 1))/2); 1 bit for S <= 2 (no violation)."""
    excess = np.clip((chsh_value / 2.0) ** 2 - 1.0, 0.0, 1.0)
    return binary_entropy(0.5 * (1.0 + np.sqrt(excess)))


def _di_rate(chsh_value: FloatArray, qber: FloatArray, ec_efficiency: float) -> FloatArray:
    return np.asarray(1.0 - ec_efficiency * binary_entropy(qber) - _holevo_term(chsh_value))


def di_key_rate_from_chsh(
    chsh_value: npt.ArrayLike, qber: npt.ArrayLike, *, ec_efficiency: float = 1.0
) -> FloatArray:
    """Secret bits per key round of DI-QKD against collective attacks (Acin et al. 2007).

    r = 1 - f h(Q) - h((1 + sqrt((S/2)^2 - 1))/2), not clipped (negative = no key); the paper's
    formula is f = 1. For S <= 2 (no Bell violation) Eve's term is 1 bit and r = -f h(Q) <= 0.
    Broadcasts ``chsh_value`` against ``qber``; S must lie in [0, 2 sqrt(2)], Q in [0, 1].
    """
    s = np.asarray(chsh_value, dtype=np.float64)
    q = np.asarray(qber, dtype=np.float64)
    if not np.all(np.isfinite(s)) or np.any(s < 0.0) or np.any(s > TSIRELSON + _CHSH_SLACK):
        raise ParameterError("chsh_value", chsh_value, "must be in [0, 2*sqrt(2)] (Tsirelson)")
    if not np.all(np.isfinite(q)) or np.any(q < 0.0) or np.any(q > 1.0):
        raise ParameterError("qber", qber, "must be a probability in [0, 1]")
    if not (math.isfinite(ec_efficiency) and ec_efficiency >= 1.0):
        raise ParameterError("ec_efficiency", ec_efficiency, "must be >= 1 (Shannon limit)")
    return np.atleast_1d(_di_rate(np.minimum(s, TSIRELSON), q, ec_efficiency))


def werner_chsh(qber: npt.ArrayLike) -> FloatArray:
    """CHSH value of a Werner-like state with QBER Q: S = 2 sqrt(2) (1 - 2Q), floored at 0."""
    q = np.asarray(qber, dtype=np.float64)
    if not np.all((q >= 0.0) & (q <= 1.0)):  # also catches NaN
        raise ParameterError("qber", qber, "must be a probability in [0, 1]")
    return np.asarray(np.maximum(TSIRELSON * (1.0 - 2.0 * q), 0.0))


@dataclass(frozen=True)
class E91Params(BBM92Params):
    """A DI-E91 link: the SPDC link of BBM92 plus the share of coincidences used for the key."""

    sifting_factor: float = field(
        default=0.5,
        metadata={
            "help": "fraction of coincidences in the key setting pair (A0, B0); 1/2 as in BBM92, "
            "-> 1 asymptotically with biased setting choices"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_probability("sifting_factor", self.sifting_factor)


PRESETS: dict[str, E91Params] = {
    # The link of the bbm92 "gys2004" preset: GYS detection and fiber [Gobby, Yuan, Shields,
    # APL 84, 3762 (2004); Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), Table I], source in the middle.
    "gys2004": E91Params(),
    # Ideal detectors and no background: only misalignment, multi-pairs and loss remain.
    "ideal-detectors": E91Params(detector_efficiency=1.0, dark_count_prob=0.0),
}
DEFAULT_PRESET = "gys2004"


def e91_rate_at(
    params: E91Params, eta_a: FloatArray, eta_b: FloatArray, lam: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Unclipped rate per pulse, gain, QBER and CHSH value for given transmittances and lambda."""
    y0 = params.dark_count_prob
    gain, qber = pdc_gain_and_qber(lam, eta_a, eta_b, y0, y0, params.misalignment_error)
    chsh = werner_chsh(qber)
    rate = params.sifting_factor * gain * _di_rate(chsh, qber, params.ec_efficiency)
    return np.asarray(rate), gain, qber, chsh


def e91_key_rate(params: E91Params, length_km: npt.ArrayLike) -> KeyRateCurve:
    """DI-E91 key rate per source pulse over the total Alice-Bob distance (fair sampling).

    The pair number mu = 2 lambda is optimised per distance for the DI rate (it prefers fewer
    pairs than BBM92, since multi-pairs cost twice: in h(Q) and through S) unless fixed.
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
        lam = optimise_lambda(lambda x: e91_rate_at(params, eta_a, eta_b, x)[0], lengths.size)
    else:
        lam = np.full_like(lengths, 0.5 * params.mu)
    rate, gain, qber, chsh = e91_rate_at(params, eta_a, eta_b, lam)
    return KeyRateCurve(
        protocol="e91",
        length_km=lengths,
        key_rate_per_pulse=np.maximum(rate, 0.0),
        qber=qber,
        transmittance=np.asarray(eta_a * eta_b),
        mu=np.asarray(2.0 * lam),
        extra={"chsh": chsh, "gain": gain, "eta_alice": eta_a, "eta_bob": eta_b},
    )
