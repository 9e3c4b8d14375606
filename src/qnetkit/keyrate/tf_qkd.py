"""Asymptotic twin-field QKD with phase post-selection and infinite decoys: sqrt(eta) scaling.

Protocol of Lucamarini, Yuan, Dynes, Shields, "Overcoming the rate-distance limit of quantum key
distribution without quantum repeaters", Nature 557, 400 (2018); rate in the decoy-state GLLP form.

Model (equations numbered here, T1-T6; each arm is L/2 long, Charlie sits in the middle):

* T1  arm transmittance, detector included:  t = eta_det * 10^(-(alpha L + extra) / 20)
* T2  phase-slice mismatch error, two models (``phase_slice_model``):
      "lucamarini2018" (default): the paper's Methods, E_M = 1/2 - sin(2 pi/M) / (4 pi/M), i.e.
      <sin^2(delta/2)> for a relative phase uniform over (-2 pi/M, 2 pi/M) (1.275 % at M = 16);
      "triangular": both phases uniform in the same slice make the relative phase triangular on
      (-2 pi/M, 2 pi/M), so e_M = (1 - sinc^2(pi/M)) / 2 (0.639 % at M = 16), the exact average.
      Combined with the optical misalignment e_opt as independent flips,
      e_d = e_opt + e_M - 2 e_opt e_M.
* T3  signal gain and QBER (two detectors, dark-count probability p each, exactly one click;
      mean photon numbers n_r = 2 mu t (1 - e_d) at the right and n_w = 2 mu t e_d at the wrong
      detector): P_r = [1 - (1-p) e^-n_r] (1-p) e^-n_w, P_w likewise, Q = P_r + P_w, E = P_w / Q.
* T4  one photon in the pair of pulses (probability 2 mu e^-2mu, infinite decoys):
      Y1 = (1-p) [t (1-p) + 2 p (1-t)],  e1 Y1 = (1-p) [t (1-p) e_d + p (1-t)],
      Q1 = 2 mu e^-2mu Y1.
* T5  R = (b / M) [Q1 (1 - h(e1)) - f Q h(E)], clipped at 0; 1/M is the probability that the
      phase slices match, b the probability that the X/Y bases match.
* T6  the PLOB comparison uses the fibre transmittance of the whole link without the detectors,
      eta = 10^(-(alpha L + extra) / 10): the paper compares with the *ideal* repeaterless bound.

The paper's Methods could not be read here. T2's default formula and the form of T5 (the QKD rate
of one arm, L/2, times d/M with E_M added to the QBER) are as quoted from them by a third party
(see tests/keyrate/test_tf_qkd.py); T1, T3 and T4 are this module's reconstruction, checked only
against the two crossover distances of the paper's text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve, as_length_array, binary_entropy, check_link_params
from qnetkit.keyrate.optimize import golden_section_maximize
from qnetkit.keyrate.plob import plob_bound
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import check_positive, check_probability

LOG10_MU_MIN = -6.0  # search range of the signal intensity per pulse (log10)
LOG10_MU_MAX = 1.0
_MU_GRID_PER_DECADE = 10
_GOLDEN_ITERATIONS = 48
_CROSSOVER_MAX_LOSS_DB = 400.0  # fibre loss scanned by plob_crossover_km
_CROSSOVER_GRID = 4001
PHASE_SLICE_MODELS = ("lucamarini2018", "triangular")


@dataclass(frozen=True)
class TFQKDParams:
    """Parameters of a symmetric twin-field QKD link (probabilities per pulse)."""

    loss_db_per_km: float = field(default=0.2, metadata={"help": "fibre attenuation (dB/km)"})
    extra_loss_db: float = field(
        default=0.0,
        metadata={"help": "lumped losses of the whole Alice-Bob link (dB), split equally per arm"},
    )
    detector_efficiency: float = field(
        default=0.25, metadata={"help": "eta_det: efficiency of Charlie's detectors"}
    )
    dark_count_prob: float = field(
        default=1e-8, metadata={"help": "p_dc: dark-count probability per pulse of each detector"}
    )
    misalignment_error: float = field(
        default=0.03,
        metadata={"help": "e_opt: optical/phase misalignment error of the interference"},
    )
    ec_efficiency: float = field(
        default=1.15, metadata={"help": "f_EC: error-correction inefficiency (>= 1)"}
    )
    phase_slices: int = field(
        default=16, metadata={"help": "M: number of phase slices for phase post-selection"}
    )
    phase_slice_model: str = field(
        default="lucamarini2018",
        metadata={
            "help": "phase-slice error E_M: lucamarini2018 (the paper's 1/2 - sin(2pi/M)/(4pi/M)) "
            "or triangular (exact average over one slice, about half as large)"
        },
    )
    basis_sifting: float = field(
        default=0.5,
        metadata={"help": "b: probability that Alice's and Bob's bases match (1/2 unbiased)"},
    )
    mu: float | None = field(
        default=None,
        metadata={"help": "signal intensity of each pulse (photons); omit to optimise"},
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
        if isinstance(self.phase_slices, bool) or not isinstance(self.phase_slices, int):
            raise ParameterError("phase_slices", self.phase_slices, "must be an integer >= 1")
        if self.phase_slices < 1:
            raise ParameterError("phase_slices", self.phase_slices, "must be an integer >= 1")
        if self.phase_slice_model not in PHASE_SLICE_MODELS:
            raise ParameterError(
                "phase_slice_model",
                self.phase_slice_model,
                f"must be one of {', '.join(PHASE_SLICE_MODELS)}",
            )
        check_probability("basis_sifting", self.basis_sifting)
        if self.mu is not None:
            check_positive("mu", self.mu)


PRESETS: dict[str, TFQKDParams] = {
    # Realistic curve of Lucamarini et al. 2018, Fig. 1a (text: beats the ideal repeaterless
    # bound "after 340 km"; this model, paper's E_M: 333.9 km). A CALIBRATION: the device values
    # (eta_det 0.25, p_dc 1e-8, e_opt 3 %, b 1/2) were assumed, not read from the paper, and the
    # crossover is the only paper number they were checked against; f 1.15 and M 16 are as
    # quoted from the paper. With the device values quoted (unconfirmed) for its Fig. 1
    # (eta_det 30 %, e_opt 1 %) the model crosses at 295 km instead.
    "lucamarini2018": TFQKDParams(),
    # Ideal curve of Fig. 1a (text: beats the repeaterless bounds "after 200 km"; this model,
    # paper's E_M: 227.4 km): perfect detectors, no dark counts or misalignment, f = 1, M = 16.
    "lucamarini2018-ideal": TFQKDParams(
        detector_efficiency=1.0, dark_count_prob=0.0, misalignment_error=0.0, ec_efficiency=1.0
    ),
}
DEFAULT_PRESET = "lucamarini2018"


def phase_slice_error(phase_slices: int, model: str = "lucamarini2018") -> float:
    """Error from the residual phase mismatch within matching slices, E_M (T2).

    "lucamarini2018": 1/2 - sin(2 pi/M) / (4 pi/M), Lucamarini et al. 2018, Methods (as quoted);
    "triangular": (1 - sinc^2(pi/M)) / 2, the exact average over two phases in one slice.
    """
    if isinstance(phase_slices, bool) or not isinstance(phase_slices, int) or phase_slices < 1:
        raise ParameterError("phase_slices", phase_slices, "must be an integer >= 1")
    if model == "lucamarini2018":
        a = 2.0 * math.pi / phase_slices
        return 0.5 - math.sin(a) / (2.0 * a)
    if model == "triangular":
        x = math.pi / phase_slices
        sinc = math.sin(x) / x
        return 0.5 * (1.0 - sinc * sinc)
    raise ParameterError("phase_slice_model", model, f"must be one of {PHASE_SLICE_MODELS}")


def interference_error(params: TFQKDParams) -> float:
    """Probability that a detected photon goes to the wrong detector, e_d (T2)."""
    e_m = phase_slice_error(params.phase_slices, params.phase_slice_model)
    e_opt = params.misalignment_error
    return e_opt + e_m - 2.0 * e_opt * e_m


def fibre_transmittance(params: TFQKDParams, length_km: npt.ArrayLike) -> FloatArray:
    """Alice-to-Bob fibre transmittance of the whole link, detectors excluded (T6)."""
    return fiber_transmittance(length_km, params.loss_db_per_km, params.extra_loss_db)


def arm_transmittance(params: TFQKDParams, length_km: npt.ArrayLike) -> FloatArray:
    """Transmittance of one arm (L/2 plus half the lumped loss) times eta_det (T1)."""
    return np.asarray(params.detector_efficiency * np.sqrt(fibre_transmittance(params, length_km)))


def tf_qkd_rate_at(
    params: TFQKDParams, arm: FloatArray, mu: FloatArray
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Unclipped key rate per pulse (T5) and its parts for arm transmittances and intensities."""
    p = params.dark_count_prob
    e_d = interference_error(params)
    detected = 2.0 * mu * arm
    # Click / no-click probabilities of the right and wrong detector (T3); expm1 keeps
    # 1 - e^-n accurate when n is tiny (high loss).
    n_right = detected * (1.0 - e_d)
    n_wrong = detected * e_d
    click_right = p - (1.0 - p) * np.expm1(-n_right)
    click_wrong = p - (1.0 - p) * np.expm1(-n_wrong)
    p_right = click_right * (1.0 - p) * np.exp(-n_wrong)
    p_wrong = click_wrong * (1.0 - p) * np.exp(-n_right)
    gain = p_right + p_wrong
    with np.errstate(divide="ignore", invalid="ignore"):
        qber = np.where(gain > 0.0, p_wrong / gain, 0.5)
    # One photon shared by the two pulses (T4).
    y1 = (1.0 - p) * (arm * (1.0 - p) + 2.0 * p * (1.0 - arm))
    y1_err = (1.0 - p) * (arm * (1.0 - p) * e_d + p * (1.0 - arm))
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.where(y1 > 0.0, y1_err / y1, 0.5)
    q1 = 2.0 * mu * np.exp(-2.0 * mu) * y1
    sift = params.basis_sifting / params.phase_slices
    rate = sift * (
        q1 * (1.0 - binary_entropy(e1)) - params.ec_efficiency * gain * binary_entropy(qber)
    )
    parts = {"gain": gain, "qber": qber, "y1": y1, "e1": e1, "q1": q1}
    return np.asarray(rate), parts


def optimal_mu(params: TFQKDParams, arm: FloatArray) -> FloatArray:
    """Intensity maximising the rate at each arm transmittance: log grid, then golden section."""
    n_grid = round((LOG10_MU_MAX - LOG10_MU_MIN) * _MU_GRID_PER_DECADE) + 1
    log_grid = np.linspace(LOG10_MU_MIN, LOG10_MU_MAX, n_grid)
    table, _ = tf_qkd_rate_at(params, arm[:, None], np.power(10.0, log_grid)[None, :])
    best = np.argmax(table, axis=1)
    step = log_grid[1] - log_grid[0]
    lower = np.maximum(log_grid[best] - step, LOG10_MU_MIN)
    upper = np.minimum(log_grid[best] + step, LOG10_MU_MAX)
    log_mu, _ = golden_section_maximize(
        lambda x: tf_qkd_rate_at(params, arm, np.power(10.0, x))[0],
        lower,
        upper,
        iterations=_GOLDEN_ITERATIONS,
    )
    return np.asarray(np.power(10.0, log_mu))


def tf_qkd_key_rate(params: TFQKDParams, length_km: npt.ArrayLike) -> KeyRateCurve:
    """Secret bits per pulse over the total Alice-Bob distance, mu optimised unless fixed."""
    lengths = as_length_array(length_km)
    eta = fibre_transmittance(params, lengths)
    arm = arm_transmittance(params, lengths)
    mu = optimal_mu(params, arm) if params.mu is None else np.full_like(arm, params.mu)
    rate, parts = tf_qkd_rate_at(params, arm, mu)
    return KeyRateCurve(
        protocol="tf-qkd",
        length_km=lengths,
        key_rate_per_pulse=np.maximum(rate, 0.0),
        qber=parts["qber"],
        transmittance=eta,
        mu=mu,
        extra={
            "gain": parts["gain"],
            "y1": parts["y1"],
            "e1": parts["e1"],
            "q1": parts["q1"],
            "arm_transmittance": arm,
            "transmittance_with_detector": np.asarray(params.detector_efficiency * eta),
        },
    )


def plob_crossover_km(params: TFQKDParams) -> float:
    """Distance beyond which the TF-QKD rate exceeds PLOB at the fibre transmittance (T6).

    First upward crossing of rate - PLOB; ``math.inf`` if the rate never exceeds the bound
    (or the fibre has no attenuation).
    """
    if params.loss_db_per_km <= 0.0:
        return math.inf
    lengths = np.linspace(0.0, _CROSSOVER_MAX_LOSS_DB / params.loss_db_per_km, _CROSSOVER_GRID)

    def excess(length: npt.ArrayLike) -> FloatArray:
        curve = tf_qkd_key_rate(params, length)
        bound = plob_bound(curve.transmittance)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(curve.key_rate_per_pulse / bound - 1.0)

    diff = excess(lengths)
    above = diff > 0.0
    upward = np.nonzero(~above[:-1] & above[1:])[0]
    if upward.size == 0:
        return math.inf
    i = int(upward[0])
    root = brentq(
        lambda x: float(excess(x)[0]), float(lengths[i]), float(lengths[i + 1]), xtol=1e-6
    )
    return float(root)
