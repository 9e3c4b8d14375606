"""Photon sources: phase-randomised weak coherent pulses (Poisson) and SPDC pair sources.

SPDC pairs follow the two-mode-squeezed-vacuum statistics of Ma, Fung and Lo, Phys. Rev. A 76,
012307 (2007), Eq. (1): P(n) = (n + 1) lambda^n / (1 + lambda)^(n + 2), mean pair number 2 lambda
(Kok and Braunstein, Phys. Rev. A 61, 042304 (2000)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.physics.validate import check_nonnegative, check_probability


def _counts(n: npt.ArrayLike) -> FloatArray:
    values = np.asarray(n, dtype=np.float64)
    if np.any(values < 0) or np.any(values != np.floor(values)):
        raise ParameterError("n", n, "must be integers >= 0")
    return values


def _means(name: str, mean: npt.ArrayLike) -> FloatArray:
    values = np.asarray(mean, dtype=np.float64)
    if np.any(~np.isfinite(values)) or np.any(values < 0.0):
        raise ParameterError(name, mean, "must be finite and >= 0")
    return values


def _xlogy(n: FloatArray, x: FloatArray) -> FloatArray:
    """n log x with 0 log 0 = 0, so vacuum-only sources give P(0) = 1 exactly."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(n == 0, 0.0, n * np.log(x)))


def poisson_pmf(n: npt.ArrayLike, mean_photon_number: npt.ArrayLike) -> FloatArray:
    """P(n | mu) = e^{-mu} mu^n / n!, broadcast over ``n`` and ``mean_photon_number``."""
    k = _counts(n)
    mu = _means("mean_photon_number", mean_photon_number)
    return np.asarray(np.exp(_xlogy(k, mu) - mu - gammaln(k + 1.0)))


def poisson_vacuum_probability(mean_photon_number: npt.ArrayLike) -> FloatArray:
    """P(0 | mu) = e^{-mu}."""
    return np.asarray(np.exp(-_means("mean_photon_number", mean_photon_number)))


def poisson_single_photon_probability(mean_photon_number: npt.ArrayLike) -> FloatArray:
    """P(1 | mu) = mu e^{-mu}."""
    mu = _means("mean_photon_number", mean_photon_number)
    return np.asarray(mu * np.exp(-mu))


def poisson_multiphoton_probability(mean_photon_number: npt.ArrayLike) -> FloatArray:
    """P(n >= 2 | mu) = 1 - e^{-mu}(1 + mu), computed without cancellation for small mu."""
    mu = _means("mean_photon_number", mean_photon_number)
    # 1 - e^{-mu}(1 + mu) = -expm1(-mu) - mu e^{-mu}; for tiny mu use the series mu^2/2 - mu^3/3.
    direct = -np.expm1(-mu) - mu * np.exp(-mu)
    series = mu**2 / 2.0 - mu**3 / 3.0 + mu**4 / 8.0
    return np.asarray(np.where(mu < 1e-3, series, direct))


def thermal_pmf(n: npt.ArrayLike, mean_photon_number: npt.ArrayLike) -> FloatArray:
    """Single-mode thermal (Bose-Einstein) statistics lambda^n / (1 + lambda)^(n + 1).

    This is the photon number in ONE arm of a single-mode two-mode-squeezed vacuum (trace out the
    partner), with mean lambda = sinh^2 r: the unheralded statistics of one SPDC output mode.
    """
    k = _counts(n)
    lam = _means("mean_photon_number", mean_photon_number)
    return np.asarray(np.exp(_xlogy(k, lam) - (k + 1.0) * np.log1p(lam)))


def spdc_pair_pmf(n: npt.ArrayLike, lambda_: npt.ArrayLike) -> FloatArray:
    """Pair-number statistics of a polarisation-entangled SPDC source.

    Ma, Fung, Lo, PRA 76, 012307 (2007), Eq. (1): P(n) = (n + 1) lambda^n / (1 + lambda)^(n + 2),
    two thermal modes (H and V) of mean lambda each, so the mean pair number is 2 lambda.
    """
    k = _counts(n)
    lam = _means("lambda_", lambda_)
    return np.asarray((k + 1.0) * np.exp(_xlogy(k, lam) - (k + 2.0) * np.log1p(lam)))


@dataclass(frozen=True)
class Intensity:
    """One intensity class of a decoy-state source: its label, mean photon number and odds."""

    name: str
    mean_photon_number: float
    probability: float

    def __post_init__(self) -> None:
        check_nonnegative(f"{self.name}.mean_photon_number", self.mean_photon_number)
        check_probability(f"{self.name}.probability", self.probability)


@dataclass(frozen=True)
class WeakCoherentSource:
    """Phase-randomised attenuated laser sending signal, decoy and vacuum intensities.

    Each pulse is a Poisson mixture of Fock states with mean ``*_mean_photon_number``; the three
    probabilities are the odds of choosing each class and must sum to 1. Decoy-state analysis
    needs signal > decoy >= vacuum.
    """

    signal_mean_photon_number: float
    decoy_mean_photon_number: float
    signal_probability: float
    decoy_probability: float
    vacuum_probability: float
    vacuum_mean_photon_number: float = 0.0

    def __post_init__(self) -> None:
        check_nonnegative("signal_mean_photon_number", self.signal_mean_photon_number)
        check_nonnegative("decoy_mean_photon_number", self.decoy_mean_photon_number)
        check_nonnegative("vacuum_mean_photon_number", self.vacuum_mean_photon_number)
        check_probability("signal_probability", self.signal_probability)
        check_probability("decoy_probability", self.decoy_probability)
        check_probability("vacuum_probability", self.vacuum_probability)
        if not self.signal_mean_photon_number > self.decoy_mean_photon_number:
            raise ParameterError(
                "decoy_mean_photon_number",
                self.decoy_mean_photon_number,
                "must be below signal_mean_photon_number",
            )
        if not self.decoy_mean_photon_number >= self.vacuum_mean_photon_number:
            raise ParameterError(
                "vacuum_mean_photon_number",
                self.vacuum_mean_photon_number,
                "must not exceed decoy_mean_photon_number",
            )
        total = self.signal_probability + self.decoy_probability + self.vacuum_probability
        if not math.isclose(total, 1.0, rel_tol=0.0, abs_tol=1e-9):
            raise ParameterError("probabilities", total, "signal + decoy + vacuum must sum to 1")

    @property
    def intensities(self) -> tuple[Intensity, Intensity, Intensity]:
        """The three classes, signal first."""
        return (
            Intensity("signal", self.signal_mean_photon_number, self.signal_probability),
            Intensity("decoy", self.decoy_mean_photon_number, self.decoy_probability),
            Intensity("vacuum", self.vacuum_mean_photon_number, self.vacuum_probability),
        )

    @property
    def mean_photon_number(self) -> float:
        """Mean photon number per pulse averaged over the classes."""
        return sum(i.probability * i.mean_photon_number for i in self.intensities)

    def photon_number_distribution(self, n: npt.ArrayLike) -> FloatArray:
        """P(n) of a pulse whose class Bob does not know: the probability-weighted Poisson mix."""
        return np.asarray(
            sum(i.probability * poisson_pmf(n, i.mean_photon_number) for i in self.intensities)
        )

    def multiphoton_probability(self) -> float:
        """Probability that a pulse (any class) carries two or more photons."""
        return float(
            sum(
                i.probability * poisson_multiphoton_probability(i.mean_photon_number)
                for i in self.intensities
            )
        )


@dataclass(frozen=True)
class SPDCSource:
    """Polarisation-entangled SPDC pair source (two-mode squeezed vacuum in H and V).

    ``mean_pair_number`` is 2 lambda of Ma, Fung and Lo (2007): per pump pulse, averaged over
    the multi-pair distribution.
    """

    mean_pair_number: float

    def __post_init__(self) -> None:
        check_nonnegative("mean_pair_number", self.mean_pair_number)

    @classmethod
    def from_squeezing(cls, squeezing_r: float) -> SPDCSource:
        """Source with lambda = sinh^2 r for squeezing parameter r."""
        check_nonnegative("squeezing_r", squeezing_r)
        return cls(mean_pair_number=2.0 * math.sinh(squeezing_r) ** 2)

    @property
    def lambda_(self) -> float:
        """Half the mean pair number: the mean of each thermal polarisation mode."""
        return 0.5 * self.mean_pair_number

    def pair_number_distribution(self, n: npt.ArrayLike) -> FloatArray:
        """P(n pairs) = (n + 1) lambda^n / (1 + lambda)^(n + 2)."""
        return spdc_pair_pmf(n, self.lambda_)

    def vacuum_probability(self) -> float:
        """P(0) = 1 / (1 + lambda)^2."""
        return float(1.0 / (1.0 + self.lambda_) ** 2)

    def single_pair_probability(self) -> float:
        """P(1) = 2 lambda / (1 + lambda)^3."""
        return float(2.0 * self.lambda_ / (1.0 + self.lambda_) ** 3)

    def multi_pair_probability(self) -> float:
        """P(n >= 2) = 1 - P(0) - P(1) = lambda^2 (3 + lambda) / (1 + lambda)^3."""
        lam = self.lambda_
        return float(lam**2 * (3.0 + lam) / (1.0 + lam) ** 3)
