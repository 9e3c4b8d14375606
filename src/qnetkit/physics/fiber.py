"""Optical fiber as a pure-loss channel: eta = 10^(-(alpha L + extra) / 10).

Standard exponential attenuation model (e.g. Agrawal, *Fiber-Optic Communication Systems*, ch. 2);
extra losses (connectors, splices, insertion of passive elements) add in dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.physics.validate import check_nonnegative, nonnegative_array


def db_to_transmittance(loss_db: npt.ArrayLike) -> FloatArray:
    """Convert a loss in dB (finite, >= 0: a passive channel) to a power transmittance in [0, 1]."""
    return np.asarray(np.power(10.0, -nonnegative_array("loss_db", loss_db) / 10.0))


def transmittance_to_db(transmittance: npt.ArrayLike) -> FloatArray:
    """Convert a transmittance in [0, 1] to a loss in dB (0 gives +inf)."""
    eta = np.asarray(transmittance, dtype=np.float64)
    bad = ~((eta >= 0.0) & (eta <= 1.0))  # also catches NaN
    if np.any(bad):
        raise ParameterError("transmittance", float(eta[bad].flat[0]), "must be in [0, 1]")
    with np.errstate(divide="ignore"):
        return np.asarray(-10.0 * np.log10(eta))


def fiber_loss_db(
    length_km: npt.ArrayLike, loss_db_per_km: float, extra_loss_db: float = 0.0
) -> FloatArray:
    """Total loss in dB of a span: attenuation times length plus lumped extra losses.

    ParameterError (naming the argument) for a negative, NaN or infinite length or loss.
    """
    length = nonnegative_array("length_km", length_km)
    check_nonnegative("loss_db_per_km", loss_db_per_km)
    check_nonnegative("extra_loss_db", extra_loss_db)
    return np.asarray(length * loss_db_per_km + extra_loss_db)


def fiber_transmittance(
    length_km: npt.ArrayLike, loss_db_per_km: float, extra_loss_db: float = 0.0
) -> FloatArray:
    """Power transmittance of a span (vectorised over length)."""
    return db_to_transmittance(fiber_loss_db(length_km, loss_db_per_km, extra_loss_db))


@dataclass(frozen=True)
class FiberSpan:
    """A fiber span with its attenuation and lumped losses (all in dB, positive = loss)."""

    length_km: float
    loss_db_per_km: float = 0.2
    connector_count: int = 0
    connector_loss_db: float = 0.3
    splice_count: int = 0
    splice_loss_db: float = 0.05
    insertion_loss_db: float = 0.0

    def __post_init__(self) -> None:
        check_nonnegative("length_km", self.length_km)
        check_nonnegative("loss_db_per_km", self.loss_db_per_km)
        check_nonnegative("connector_count", self.connector_count)
        check_nonnegative("connector_loss_db", self.connector_loss_db)
        check_nonnegative("splice_count", self.splice_count)
        check_nonnegative("splice_loss_db", self.splice_loss_db)
        check_nonnegative("insertion_loss_db", self.insertion_loss_db)

    @property
    def extra_loss_db(self) -> float:
        """Lumped losses: connectors, splices and inserted components."""
        return (
            self.connector_count * self.connector_loss_db
            + self.splice_count * self.splice_loss_db
            + self.insertion_loss_db
        )

    @property
    def total_loss_db(self) -> float:
        """Attenuation plus lumped losses."""
        return float(fiber_loss_db(self.length_km, self.loss_db_per_km, self.extra_loss_db))

    @property
    def transmittance(self) -> float:
        """Power transmittance of the whole span."""
        return float(db_to_transmittance(self.total_loss_db))
