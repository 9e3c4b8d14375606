"""Repeaterless bound: secret-key capacity of a pure-loss channel, -log2(1 - eta).

Pirandola, Laurenza, Ottaviani, Banchi, "Fundamental limits of repeaterless quantum
communications", Nat. Commun. 8, 15043 (2017), Eq. (19); ~1.44 eta bits per use at high loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qnetkit._types import BoolArray, FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve, as_length_array
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import check_nonnegative, check_probability


def plob_bound(transmittance: npt.ArrayLike) -> FloatArray:
    """Secret bits per channel use that no repeaterless protocol can beat: -log2(1 - eta).

    ``transmittance`` must lie in [0, 1] (ParameterError otherwise, NaN included); 1 gives inf.
    """
    eta = np.asarray(transmittance, dtype=np.float64)
    bad = ~((eta >= 0.0) & (eta <= 1.0))
    if np.any(bad):
        raise ParameterError("transmittance", float(eta[bad].flat[0]), "must be in [0, 1]")
    with np.errstate(divide="ignore"):
        # log1p keeps full precision at high loss, where eta is tiny.
        return np.asarray(-np.log1p(-eta) / np.log(2.0))


#: The largest PLOB value shown in tables, JSON and plots, in bits per channel use. The bound
#: -log2(1 - eta) diverges as eta -> 1 (a lossless channel: 0 km without detector loss); it
#: reaches 10 bits/use at eta = 1 - 2^-10, i.e. 0.0042 dB or 21 m of 0.2 dB/km fiber, so only
#: the first metres of a channel are capped. A display choice, not physics.
PLOB_CAP_BITS_PER_USE = 10.0


def plob_bound_capped(
    transmittance: npt.ArrayLike, cap_bits_per_use: float = PLOB_CAP_BITS_PER_USE
) -> tuple[FloatArray, BoolArray]:
    """``plob_bound`` clamped at ``cap_bits_per_use``, and where it was clamped.

    Same formula and source as :func:`plob_bound` (Pirandola et al. 2017, Eq. (19)); the cap
    only replaces the infinite value at eta = 1 (and the huge ones next to it) by a stated
    finite one, so that a table, a JSON document or a log-scale plot never holds inf.
    """
    check_nonnegative("cap_bits_per_use", cap_bits_per_use)
    bound = np.atleast_1d(plob_bound(transmittance))
    clamped = np.asarray(bound > cap_bits_per_use)
    return np.asarray(np.minimum(bound, cap_bits_per_use)), clamped


@dataclass(frozen=True)
class PLOBParams:
    """A pure-loss fiber channel; detector efficiency counts as loss of the same channel."""

    loss_db_per_km: float = field(default=0.2, metadata={"help": "fiber attenuation (dB/km)"})
    extra_loss_db: float = field(default=0.0, metadata={"help": "lumped losses (dB)"})
    detector_efficiency: float = field(
        default=1.0, metadata={"help": "detection efficiency folded into the channel loss"}
    )

    def __post_init__(self) -> None:
        check_nonnegative("loss_db_per_km", self.loss_db_per_km)
        check_nonnegative("extra_loss_db", self.extra_loss_db)
        check_probability("detector_efficiency", self.detector_efficiency)


PRESETS: dict[str, PLOBParams] = {
    "ideal": PLOBParams(),
    # The channel of the gys2004 decoy-BB84 preset (0.21 dB/km, eta_Bob 4.5 %).
    "gys2004": PLOBParams(loss_db_per_km=0.21, detector_efficiency=0.045),
}
DEFAULT_PRESET = "ideal"


def plob_key_rate(params: PLOBParams, length_km: npt.ArrayLike) -> KeyRateCurve:
    """The PLOB bound over distance as a key-rate curve (QBER not applicable: NaN)."""
    lengths = as_length_array(length_km)
    eta = params.detector_efficiency * fiber_transmittance(
        lengths, params.loss_db_per_km, params.extra_loss_db
    )
    return KeyRateCurve(
        protocol="plob",
        length_km=lengths,
        key_rate_per_pulse=plob_bound(eta),
        qber=np.full_like(lengths, np.nan),
        transmittance=np.asarray(eta),
    )
