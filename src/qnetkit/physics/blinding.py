"""Bright-light blinding of avalanche photodiodes and the photocurrent monitor that sees it.

Model of Lydersen et al., Nat. Photon. 4, 686 (2010): continuous light of power P on an InGaAs
APD drives a photocurrent I = R P (responsivity R ~ 0.9 A/W at 1550 nm); above a power P_lin the
bias drops below breakdown and the APD leaves Geiger mode (it is *blinded*: it then clicks only on
bright classical trigger pulses). Countermeasure of Yuan, Dynes, Shields, Nat. Photon. 4, 800
(2010): alarm when the photocurrent exceeds a threshold current.
"""

from __future__ import annotations

from dataclasses import dataclass

from qnetkit.errors import ParameterError
from qnetkit.physics.validate import check_nonnegative, check_positive


@dataclass(frozen=True)
class BlindingMonitorParams:
    """Bob's APDs under bright light, and the photocurrent monitor that watches them.

    ``responsivity_a_per_w``: R of the InGaAs APD at 1550 nm (unity gain). ``background_current_a``:
    what the monitor reads without Eve: dark current plus the photocurrent of the honest signal
    (~1e7 photons/s at 1550 nm give ~1 pA, far below a nA dark current). ``linear_mode_power_w``:
    CW power at the APD above which it is blinded (Geiger mode lost). ``threshold_current_a``:
    the monitor alarms above it.

    Defaults are illustrative orders of magnitude, not a measured device (the 2010 demonstrations
    blinded commercial APDs with CW powers from microwatts to about a milliwatt): measure your own
    detector. They are chosen *safe*: R P_lin + background (9 uA) is above the threshold (1 uA),
    so every power that blinds the APD trips the monitor (:func:`undetected_blinding_window_w` is
    None). A threshold above R P_lin leaves a window of powers that blind undetected.
    """

    monitor_enabled: bool = True
    responsivity_a_per_w: float = 0.9
    background_current_a: float = 1e-9
    linear_mode_power_w: float = 1e-5
    threshold_current_a: float = 1e-6

    def __post_init__(self) -> None:
        if not isinstance(self.monitor_enabled, bool):
            raise ParameterError("monitor_enabled", self.monitor_enabled, "must be true or false")
        check_positive("responsivity_a_per_w", self.responsivity_a_per_w)
        check_nonnegative("background_current_a", self.background_current_a)
        check_positive("linear_mode_power_w", self.linear_mode_power_w)
        check_positive("threshold_current_a", self.threshold_current_a)
        if self.threshold_current_a <= self.background_current_a:
            # The monitor would alarm on every run, with or without Eve.
            raise ParameterError(
                "threshold_current_a",
                self.threshold_current_a,
                f"must exceed background_current_a={self.background_current_a!r}",
            )


def apd_photocurrent_a(cw_power_w: float, params: BlindingMonitorParams) -> float:
    """Current the monitor reads with CW light of ``cw_power_w`` on the APD: R P + background."""
    check_nonnegative("cw_power_w", cw_power_w)
    return params.responsivity_a_per_w * cw_power_w + params.background_current_a


def apd_is_blinded(cw_power_w: float, params: BlindingMonitorParams) -> bool:
    """Whether CW light of ``cw_power_w`` switches the APD out of Geiger mode (Lydersen 2010)."""
    check_nonnegative("cw_power_w", cw_power_w)
    return cw_power_w >= params.linear_mode_power_w


def monitor_alarms(cw_power_w: float, params: BlindingMonitorParams) -> bool:
    """Whether the photocurrent monitor trips: enabled and R P + background > threshold."""
    current = apd_photocurrent_a(cw_power_w, params)
    return params.monitor_enabled and current > params.threshold_current_a


def undetected_blinding_window_w(params: BlindingMonitorParams) -> tuple[float, float] | None:
    """CW powers [P_lin, P_alarm] that blind the APD without tripping the monitor, or None.

    P_alarm = (threshold - background) / R is the largest power the monitor tolerates. In this
    window an eavesdropper controls every click and the key is compromised; with the monitor off
    the window is unbounded (upper end ``inf``).
    """
    if not params.monitor_enabled:
        return (params.linear_mode_power_w, float("inf"))
    p_alarm = (
        params.threshold_current_a - params.background_current_a
    ) / params.responsivity_a_per_w
    if p_alarm < params.linear_mode_power_w:
        return None
    return (params.linear_mode_power_w, p_alarm)


__all__ = [
    "BlindingMonitorParams",
    "apd_is_blinded",
    "apd_photocurrent_a",
    "monitor_alarms",
    "undetected_blinding_window_w",
]
