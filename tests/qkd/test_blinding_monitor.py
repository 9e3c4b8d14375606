"""Detector blinding against a physical photocurrent monitor (issue 12, item 11).

Model of Lydersen et al., Nat. Photon. 4, 686 (2010): CW light of power P on Bob's InGaAs APDs
gives a photocurrent I = R P plus the background (dark) current, R ~ 0.9 A/W at 1550 nm; above
a linear-mode power the APDs are blinded and Eve controls their clicks. The monitor (Yuan, Dynes,
Shields, Nat. Photon. 4, 800 (2010)) alarms when I exceeds its threshold. So the alarm follows
from Eve's power, not from the attack's name: intercept-resend and PNS never trip it, a blinding
power above the alarm power does, and one between the linear-mode and the alarm power is NOT
detected, and Bob accepts a key Eve controls. GYS preset of Ma et al. 2005 Table I; seeded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnetkit.errors import ParameterError
from qnetkit.keyrate.decoy_bb84 import PRESETS
from qnetkit.physics.blinding import (
    BlindingMonitorParams,
    apd_is_blinded,
    apd_photocurrent_a,
    monitor_alarms,
    undetected_blinding_window_w,
)
from qnetkit.qkd.attacks import Attack, blinding_alarm
from qnetkit.qkd.link import LinkConfig, simulate_link
from qnetkit.qkd.quantum import (
    DecoySourceParams,
    DetectorTimingParams,
    expected_gains_and_qber,
    simulate_decoy_bb84,
)

GYS = PRESETS["gys2004"]
SOURCE = DecoySourceParams(intensities=(0.48, 0.1, 0.0), intensity_probs=(0.8, 0.1, 0.1))
DEFAULT = BlindingMonitorParams()
# A lax monitor: alarm at 100 uA, i.e. above (1e-4 - 1e-9) / 0.9 = 111 uW, while the APDs are
# blinded from 10 uW on: powers in between blind them unseen.
LAX = BlindingMonitorParams(threshold_current_a=1e-4)
# A monitor as sensitive as it can be: 1 nA above the background.
SENSITIVE = BlindingMonitorParams(threshold_current_a=2e-9)


def test_photocurrent_is_responsivity_times_power_plus_background() -> None:
    # I = R P + I_bg with R = 0.9 A/W (InGaAs at 1550 nm, the figure the issue quotes).
    assert apd_photocurrent_a(1e-3, DEFAULT) == pytest.approx(0.9e-3 + 1e-9, rel=1e-12)
    assert apd_photocurrent_a(0.0, DEFAULT) == DEFAULT.background_current_a
    assert apd_is_blinded(1e-5, DEFAULT) and not apd_is_blinded(9.9e-6, DEFAULT)
    # The monitor compares that current with its threshold (1 uA): alarm power 1.11 uW.
    alarm_power = (1e-6 - 1e-9) / 0.9
    assert not monitor_alarms(0.999 * alarm_power, DEFAULT)
    assert monitor_alarms(1.001 * alarm_power, DEFAULT)
    assert not monitor_alarms(1.0, BlindingMonitorParams(monitor_enabled=False))


def test_undetected_window_is_empty_by_default_and_opens_with_a_lax_threshold() -> None:
    # Safe default: every power that blinds (>= 10 uW -> >= 9 uA) is above the 1 uA threshold.
    assert undetected_blinding_window_w(DEFAULT) is None
    lo, hi = undetected_blinding_window_w(LAX) or (math.nan, math.nan)
    assert lo == 1e-5 and hi == pytest.approx((1e-4 - 1e-9) / 0.9, rel=1e-12)
    assert undetected_blinding_window_w(BlindingMonitorParams(monitor_enabled=False)) == (
        1e-5,
        math.inf,
    )


def test_monitor_parameters_are_validated() -> None:
    with pytest.raises(ParameterError, match="threshold_current_a"):
        BlindingMonitorParams(threshold_current_a=1e-9)  # at the background: always alarms
    with pytest.raises(ParameterError, match="responsivity_a_per_w"):
        BlindingMonitorParams(responsivity_a_per_w=0.0)
    with pytest.raises(ParameterError, match="blinding_power_w"):
        Attack("blinding", blinding_power_w=-1.0)


@pytest.mark.parametrize("kind", ["intercept-resend", "pns"])
def test_non_blinding_attacks_never_trip_even_a_sensitive_monitor(kind: str) -> None:
    attack = Attack(kind)  # type: ignore[arg-type]
    assert not blinding_alarm(attack, SENSITIVE)
    _, bob = simulate_decoy_bb84(
        GYS,
        50.0,
        10**7,
        SOURCE,
        np.random.default_rng(1),
        attack=attack,
        timing=DetectorTimingParams(blinding_monitor=SENSITIVE),
    )
    assert not bob.blinding_alarm


def test_blinding_above_the_alarm_power_trips_the_monitor() -> None:
    for power_w in (1e-3, 1e-5, 2e-6):  # blinding, at the linear-mode power, and not blinding
        attack = Attack("blinding", blinding_power_w=power_w)
        assert blinding_alarm(attack, DEFAULT)
    res = simulate_link(
        LinkConfig(pulses=10**7, seed=1, attack=Attack("blinding", blinding_power_w=1e-3))
    )
    assert res.stats["aborted"] and "blinding" in res.stats["abort_reason"]


def test_blinding_below_the_alarm_power_is_not_detected_and_compromises_the_key() -> None:
    """50 uW: above the APDs' 10 uW linear-mode power, below the lax monitor's 111 uW.

    Bob's monitor stays quiet, every click is Eve's faked state in her basis and result, so
    the sifted key has no errors at all and the link hands out a key Eve knows completely.
    """
    attack = Attack("blinding", blinding_power_w=5e-5)
    assert not blinding_alarm(attack, LAX)
    cfg = LinkConfig(
        pulses=10**8, seed=2, attack=attack, timing=DetectorTimingParams(blinding_monitor=LAX)
    )
    s = simulate_link(cfg).stats
    assert not s["aborted"] and s["keys_match"]
    assert s["secret_key_bits"] > 1000  # a "secret" key, entirely known to Eve
    assert s["qber"] == 0.0 and s["qber_errors"] == 0
    # The same attack against the default (safe) monitor is caught.
    assert blinding_alarm(attack, DEFAULT)


def test_blinding_below_the_linear_mode_power_floods_the_detectors() -> None:
    """0.1 uW: below the default alarm power (1.1 uW) and the linear-mode power (10 uW).

    The APDs stay in Geiger mode and Eve's CW light fires both in every gate: each attacked
    pulse is a double click squashed to a random bit, so the sifted QBER is 1/2 exactly.
    """
    attack = Attack("blinding", blinding_power_w=1e-7)
    assert not blinding_alarm(attack, DEFAULT)
    expected = expected_gains_and_qber(GYS, 25.0, SOURCE, attack=attack, monitor=DEFAULT)
    assert np.all(expected["qber"] == 0.5) and np.all(expected["double_click"] == 1.0)
    alice, bob = simulate_decoy_bb84(
        GYS, 25.0, 10**5, SOURCE, np.random.default_rng(3), attack=attack
    )
    assert not bob.blinding_alarm
    assert bob.double_click.all() and alice.pulse_index.size == 10**5
    s = simulate_link(LinkConfig(pulses=10**6, seed=3, attack=attack)).stats
    assert s["aborted"] and "abort threshold" in s["abort_reason"]


def test_monitor_travels_with_the_config() -> None:
    """Two-process mode sends the config as JSON: Bob's monitor must arrive unchanged."""
    cfg = LinkConfig(
        attack=Attack("blinding", blinding_power_w=5e-5),
        timing=DetectorTimingParams(blinding_monitor=LAX),
    )
    assert LinkConfig.from_dict(cfg.to_dict()) == cfg
