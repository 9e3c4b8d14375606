"""Threshold single-photon detectors: efficiency, dark counts, dead time, afterpulsing.

Standard threshold-detector model (e.g. Lo, Ma, Chen, PRL 94, 230504 (2005); Ma, Qi, Zhao, Lo,
PRA 72, 012326 (2005)): a click when at least one of the photons (each detected with
probability eta) or a dark count fires; non-paralysable dead time R / (1 + R tau).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.physics.validate import check_nonnegative, check_positive, check_probability


def _nonnegative(name: str, values: npt.ArrayLike) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if np.any(np.isnan(out)) or np.any(out < 0.0):
        raise ParameterError(name, values, "must be >= 0")
    return out


def _probabilities(name: str, values: npt.ArrayLike) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if np.any(~np.isfinite(out)) or np.any(out < 0.0) or np.any(out > 1.0):
        raise ParameterError(name, values, "must be probabilities in [0, 1]")
    return out


def click_probability_fock(
    n_photons: npt.ArrayLike, efficiency: float, dark_count_prob: float
) -> FloatArray:
    """P(click | n photons) = 1 - (1 - p_dark)(1 - eta)^n."""
    check_probability("efficiency", efficiency)
    check_probability("dark_count_prob", dark_count_prob)
    n = _nonnegative("n_photons", n_photons)
    return np.asarray(1.0 - (1.0 - dark_count_prob) * np.power(1.0 - efficiency, n))


def click_probability_coherent(
    mean_photon_number: npt.ArrayLike, efficiency: float, dark_count_prob: float
) -> FloatArray:
    """P(click) for a (phase-randomised) coherent state of mean mu: 1 - (1 - p_dark) e^{-eta mu}.

    The Poisson average of :func:`click_probability_fock`; a transmittance in front of the
    detector simply multiplies ``efficiency``.
    """
    check_probability("efficiency", efficiency)
    check_probability("dark_count_prob", dark_count_prob)
    mu = _nonnegative("mean_photon_number", mean_photon_number)
    return np.asarray(1.0 - (1.0 - dark_count_prob) * np.exp(-efficiency * mu))


def nonparalysable_count_rate(rate_per_s: npt.ArrayLike, dead_time_s: float) -> FloatArray:
    """Observed rate R / (1 + R tau) for a true click rate R and non-paralysable dead time tau."""
    check_nonnegative("dead_time_s", dead_time_s)
    rate = _nonnegative("rate_per_s", rate_per_s)
    return np.asarray(rate / (1.0 + rate * dead_time_s))


def paralysable_count_rate(rate_per_s: npt.ArrayLike, dead_time_s: float) -> FloatArray:
    """Observed rate R e^{-R tau} when every event, counted or not, restarts the dead time."""
    check_nonnegative("dead_time_s", dead_time_s)
    rate = _nonnegative("rate_per_s", rate_per_s)
    return np.asarray(rate * np.exp(-rate * dead_time_s))


def afterpulse_inflated_dark_prob(
    dark_count_prob: float, afterpulse_prob: float, click_prob: npt.ArrayLike
) -> FloatArray:
    """First-order afterpulsing: p_dark_eff = p_dark + p_ap * p_click, capped at 1.

    Valid while p_ap * p_click is small (no afterpulses of afterpulses).
    """
    check_probability("dark_count_prob", dark_count_prob)
    check_probability("afterpulse_prob", afterpulse_prob)
    clicks = _probabilities("click_prob", click_prob)
    return np.asarray(np.minimum(1.0, dark_count_prob + afterpulse_prob * clicks))


@dataclass(frozen=True)
class PairClickProbabilities:
    """Outcome probabilities of two threshold detectors watching one pulse (sum to 1)."""

    no_click: FloatArray
    only_a: FloatArray
    only_b: FloatArray
    double_click: FloatArray

    @property
    def single_click(self) -> FloatArray:
        """Exactly one detector fired."""
        return np.asarray(self.only_a + self.only_b)

    @property
    def any_click(self) -> FloatArray:
        """At least one detector fired."""
        return np.asarray(1.0 - self.no_click)


def threshold_pair_click_probabilities(
    mean_photon_number_a: npt.ArrayLike,
    mean_photon_number_b: npt.ArrayLike,
    efficiency_a: float,
    efficiency_b: float,
    dark_count_prob_a: float,
    dark_count_prob_b: float,
) -> PairClickProbabilities:
    """No / single / double click probabilities of two threshold detectors with Poisson input.

    Phase-randomised coherent light split over two detectors gives independent Poisson counts
    of means mu_a, mu_b at each, so the joint outcome factorises:
    P(no click at X) = (1 - p_dark_X) e^{-eta_X mu_X}. This is the input to the squashing
    model's double-click assignment (random bit for doubles).
    """
    for name, value in (
        ("efficiency_a", efficiency_a),
        ("efficiency_b", efficiency_b),
        ("dark_count_prob_a", dark_count_prob_a),
        ("dark_count_prob_b", dark_count_prob_b),
    ):
        check_probability(name, value)
    mu_a = _nonnegative("mean_photon_number_a", mean_photon_number_a)
    mu_b = _nonnegative("mean_photon_number_b", mean_photon_number_b)
    quiet_a = (1.0 - dark_count_prob_a) * np.exp(-efficiency_a * mu_a)
    quiet_b = (1.0 - dark_count_prob_b) * np.exp(-efficiency_b * mu_b)
    quiet_a, quiet_b = np.broadcast_arrays(quiet_a, quiet_b)
    return PairClickProbabilities(
        no_click=np.asarray(quiet_a * quiet_b),
        only_a=np.asarray((1.0 - quiet_a) * quiet_b),
        only_b=np.asarray(quiet_a * (1.0 - quiet_b)),
        double_click=np.asarray((1.0 - quiet_a) * (1.0 - quiet_b)),
    )


@dataclass(frozen=True)
class SinglePhotonDetector:
    """A gated threshold single-photon detector.

    ``dark_count_prob`` is per gate of ``gate_width_s``; ``afterpulse_prob`` is the chance that
    a click triggers a spurious click in a later gate (first-order model).
    """

    efficiency: float
    dark_count_prob: float = 0.0
    dead_time_s: float = 0.0
    afterpulse_prob: float = 0.0
    gate_width_s: float = 1e-9

    def __post_init__(self) -> None:
        check_probability("efficiency", self.efficiency)
        check_probability("dark_count_prob", self.dark_count_prob)
        check_nonnegative("dead_time_s", self.dead_time_s)
        check_probability("afterpulse_prob", self.afterpulse_prob)
        check_positive("gate_width_s", self.gate_width_s)

    @property
    def dark_count_rate_per_s(self) -> float:
        """Dark-count probability per gate expressed as a rate over the gate width."""
        return self.dark_count_prob / self.gate_width_s

    def click_probability_fock(self, n_photons: npt.ArrayLike) -> FloatArray:
        """P(click | n photons), afterpulsing excluded."""
        return click_probability_fock(n_photons, self.efficiency, self.dark_count_prob)

    def click_probability_coherent(
        self, mean_photon_number: npt.ArrayLike, transmittance: float = 1.0
    ) -> FloatArray:
        """P(click) for a coherent state of mean mu after a channel of ``transmittance``."""
        check_probability("transmittance", transmittance)
        return click_probability_coherent(
            mean_photon_number, self.efficiency * transmittance, self.dark_count_prob
        )

    def effective_dark_count_prob(self, click_prob: npt.ArrayLike) -> FloatArray:
        """Dark probability inflated by afterpulses of clicks occurring with ``click_prob``."""
        return afterpulse_inflated_dark_prob(self.dark_count_prob, self.afterpulse_prob, click_prob)

    def observed_count_rate(self, rate_per_s: npt.ArrayLike) -> FloatArray:
        """Counted rate after this detector's non-paralysable dead time."""
        return nonparalysable_count_rate(rate_per_s, self.dead_time_s)
