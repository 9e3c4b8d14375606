"""Eavesdropper models in the Monte-Carlo quantum stage.

Intercept-resend (Bennett et al. 1992): 25 % errors on sifted intercepted photons. PNS
(Brassard, Lutkenhaus, Mor, Sanders, PRL 85, 1330 (2000)) keeps the signal gain but not the
decoy gains, which the decoy-state bound of Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), Eq. (34)
catches. Blinding (Lydersen et al., Nat. Photon. 4, 686 (2010)): no extra errors, but Bob's
photocurrent monitor trips (1 mW CW on Bob's APDs, above their linear-mode power; the physical
monitor itself is tested in test_blinding_monitor.py). GYS preset of Ma et al. Table I
throughout; seeded.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import PRESETS as BBM92_PRESETS
from qnetkit.keyrate.decoy_bb84 import PRESETS as DECOY_PRESETS
from qnetkit.keyrate.decoy_bb84 import decoy_bb84_transmittance
from qnetkit.physics.blinding import BlindingMonitorParams
from qnetkit.qkd.attacks import Attack, pns_forward_fraction
from qnetkit.qkd.quantum import (
    AliceRecord,
    BobRecord,
    DecoySourceParams,
    DetectorTimingParams,
    expected_bbm92_coincidences,
    expected_gains_and_qber,
    simulate_bbm92,
    simulate_decoy_bb84,
)

GYS = DECOY_PRESETS["gys2004"]
GYS_PAIRS = replace(BBM92_PRESETS["gys2004"], mu=0.1)
SOURCE = DecoySourceParams(intensities=(0.48, 0.1, 0.0), intensity_probs=(0.8, 0.1, 0.1))
SIGMAS = 4.5
BLIND_W = 1e-3  # CW blinding power at Bob's APDs: above the default linear-mode power (10 uW)
MONITOR_OFF = BlindingMonitorParams(monitor_enabled=False)


def _within(measured: float, expected: float, sem: float, extra: float = 0.0) -> bool:
    return abs(measured - expected) <= SIGMAS * sem + extra


def _gain(alice: AliceRecord, cls: int) -> tuple[float, float]:
    sent = int(alice.pulses_per_class[cls])
    gain = np.count_nonzero(alice.intensity_class == cls) / sent
    return gain, math.sqrt(gain * (1 - gain) / sent)


def _qber(alice: AliceRecord, bob: BobRecord, cls: int | None = 0) -> tuple[float, float]:
    same = alice.basis == bob.basis
    if cls is not None:
        same &= alice.intensity_class == cls
    n = int(same.sum())
    qber = float(np.mean(alice.bit[same] != bob.bit[same]))
    return qber, math.sqrt(qber * (1 - qber) / n)


def test_attack_is_validated() -> None:
    with pytest.raises(ParameterError):
        Attack("man-in-the-middle")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        Attack("pns", fraction=1.5)
    with pytest.raises(ParameterError):
        Attack("blinding", fraction=-0.1, blinding_power_w=BLIND_W)
    with pytest.raises(ParameterError, match="blinding_power_w"):
        Attack("blinding")  # its power decides whether it blinds and whether Bob sees it
    with pytest.raises(ParameterError, match="blinding_power_w"):
        Attack("intercept-resend", blinding_power_w=BLIND_W)
    assert Attack("pns").fraction == 1.0


# --------------------------------------------------------------------------- intercept-resend


def _intercept_resend_qber(length_km: float, fraction: float, mu: float) -> float:
    """Detection-weighted QBER, from first principles (Ma et al. Eqs. (10)-(11) for the rest).

    Intercepted pulse: Eve gets a photon with probability 1 - e^{-mu} and resends one photon,
    so Bob's gain is about (1 - e^{-mu}) eta + Y0 and its sifted errors 1/4 + e_d/2 (her basis
    is wrong half of the time: then Bob's result is random). Untouched pulses: Ma's formulas.
    """
    eta = float(decoy_bb84_transmittance(GYS, length_km))
    y0, e_d = GYS.dark_count_prob, GYS.misalignment_error
    q_h = y0 + 1 - math.exp(-eta * mu)
    eq_h = 0.5 * y0 + e_d * (1 - math.exp(-eta * mu))
    photon = (1 - math.exp(-mu)) * eta
    q_ir = y0 + photon
    eq_ir = 0.5 * y0 + (0.25 + 0.5 * e_d) * photon
    return ((1 - fraction) * eq_h + fraction * eq_ir) / ((1 - fraction) * q_h + fraction * q_ir)


def test_full_intercept_resend_gives_25_percent() -> None:
    length = 10.0
    attack = Attack("intercept-resend")
    alice, bob = simulate_decoy_bb84(
        GYS, length, 10**8, SOURCE, np.random.default_rng(1), attack=attack
    )
    qber, sem = _qber(alice, bob)
    expected = float(expected_gains_and_qber(GYS, length, SOURCE, attack=attack)["qber"][0])
    assert _within(qber, expected, sem)
    assert _within(qber, _intercept_resend_qber(length, 1.0, 0.48), sem, 1e-3)
    # 25 % plus half the misalignment error and a little background.
    assert 0.25 < qber < 0.25 + GYS.misalignment_error / 2 + 0.005
    assert not bob.blinding_alarm


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_partial_intercept_resend(fraction: float) -> None:
    """QBER ~ baseline + 25 % x (share of sifted clicks that were intercepted).

    Intercepted pulses reach Bob with gain (1 - e^{-mu}) eta < 1 - e^{-eta mu}, so that share is
    a little below ``fraction``: the naive f x 25 % + baseline overestimates by up to ~0.02.
    """
    length = 10.0
    attack = Attack("intercept-resend", fraction=fraction)
    alice, bob = simulate_decoy_bb84(
        GYS, length, 10**8, SOURCE, np.random.default_rng(2), attack=attack
    )
    qber, sem = _qber(alice, bob)
    expected = float(expected_gains_and_qber(GYS, length, SOURCE, attack=attack)["qber"][0])
    assert _within(qber, expected, sem)
    assert _within(qber, _intercept_resend_qber(length, fraction, 0.48), sem, 1e-3)
    baseline = float(expected_gains_and_qber(GYS, length, SOURCE)["qber"][0])
    naive = baseline + fraction * 0.25
    assert naive - 0.03 < qber < naive


# --------------------------------------------------------------------------- PNS


def test_pns_forward_fraction() -> None:
    # At short distance Eve cannot reproduce the loss and the gain: she forwards everything.
    # With GYS numbers and mu = 0.48 that holds up to ~32 km (forwarding every multi-photon
    # pulse losslessly then gives Bob no more than the honest gain).
    assert pns_forward_fraction(GYS, 0.0, 0.48) == 1.0
    assert pns_forward_fraction(GYS, 30.0, 0.48) == 1.0
    fractions = [pns_forward_fraction(GYS, km, 0.48) for km in (35.0, 50.0, 80.0, 120.0)]
    assert all(0.0 < s < 1.0 for s in fractions)
    assert fractions == sorted(fractions, reverse=True)
    # With s < 1 the attacked signal gain equals the honest one exactly.
    honest = expected_gains_and_qber(GYS, 50.0, SOURCE)
    attacked = expected_gains_and_qber(GYS, 50.0, SOURCE, attack=Attack("pns"))
    assert float(attacked["gain"][0]) == pytest.approx(float(honest["gain"][0]), rel=1e-9)


def _y1_lower_bound(q_mu: float, q_nu: float, y0: float, mu: float, nu: float) -> float:
    """Vacuum + weak decoy bound on the single-photon yield, Ma et al. 2005 Eq. (34)."""
    return (mu / (mu * nu - nu**2)) * (
        q_nu * math.exp(nu) - q_mu * math.exp(mu) * nu**2 / mu**2 - (mu**2 - nu**2) / mu**2 * y0
    )


def test_pns_keeps_signal_gain_but_decoys_expose_it() -> None:
    length, pulses = 50.0, 5 * 10**8
    rng = np.random.default_rng(3)
    honest_a, _ = simulate_decoy_bb84(GYS, length, pulses, SOURCE, rng)
    alice, bob = simulate_decoy_bb84(GYS, length, pulses, SOURCE, rng, attack=Attack("pns"))
    expected_honest = expected_gains_and_qber(GYS, length, SOURCE)
    expected_pns = expected_gains_and_qber(GYS, length, SOURCE, attack=Attack("pns"))
    signal, signal_sem = _gain(alice, 0)
    assert _within(signal, float(expected_honest["gain"][0]), signal_sem)
    decoy, decoy_sem = _gain(alice, 1)
    assert _within(decoy, float(expected_pns["gain"][1]), decoy_sem)
    assert float(expected_honest["gain"][1]) - decoy > 20 * decoy_sem  # drops ~4x
    vacuum, vacuum_sem = _gain(alice, 2)
    assert _within(vacuum, GYS.dark_count_prob, vacuum_sem)
    # Forwarded photons carry Alice's state: no extra errors in the signal.
    qber, sem = _qber(alice, bob)
    assert _within(qber, float(expected_honest["qber"][0]), sem)
    # The decoy estimate of Y1 from the sampled gains: positive honestly, none left under PNS.
    mu, nu = SOURCE.intensities[:2]
    y0 = GYS.dark_count_prob
    honest_y1 = _y1_lower_bound(_gain(honest_a, 0)[0], _gain(honest_a, 1)[0], y0, mu, nu)
    assert honest_y1 > 0.5 * float(decoy_bb84_transmittance(GYS, length))
    assert _y1_lower_bound(signal, decoy, y0, mu, nu) < 0.0


def test_pns_is_invisible_without_decoys() -> None:
    source = DecoySourceParams(intensities=(0.48,), intensity_probs=(1.0,))
    alice, bob = simulate_decoy_bb84(
        GYS, 60.0, 3 * 10**8, source, np.random.default_rng(4), attack=Attack("pns")
    )
    honest = expected_gains_and_qber(GYS, 60.0, source)
    gain, gain_sem = _gain(alice, 0)
    assert _within(gain, float(honest["gain"][0]), gain_sem)
    qber, sem = _qber(alice, bob)
    assert _within(qber, float(honest["qber"][0]), sem)


def test_pns_needs_a_weak_coherent_source() -> None:
    with pytest.raises(ParameterError):
        simulate_bbm92(GYS_PAIRS, 10.0, 1000, np.random.default_rng(0), attack=Attack("pns"))


# --------------------------------------------------------------------------- blinding


def test_blinding_keeps_errors_low_and_trips_the_monitor() -> None:
    length = 25.0
    attack = Attack("blinding", blinding_power_w=BLIND_W)
    alice, bob = simulate_decoy_bb84(
        GYS, length, 2 * 10**8, SOURCE, np.random.default_rng(5), attack=attack
    )
    assert bob.blinding_alarm
    honest = expected_gains_and_qber(GYS, length, SOURCE)
    # Faked states fire only in Eve's basis: sifted clicks are all correct, no double clicks.
    qber, _ = _qber(alice, bob)
    assert qber == 0.0
    assert not bob.double_click.any()
    # Eve tunes her faked-state rate so the signal gain looks honest.
    gain, gain_sem = _gain(alice, 0)
    assert _within(gain, float(honest["gain"][0]), gain_sem)
    # Without the monitor nothing in Bob's data gives Eve away.
    _, unmonitored = simulate_decoy_bb84(
        GYS,
        length,
        10**6,
        SOURCE,
        np.random.default_rng(5),
        attack=attack,
        timing=DetectorTimingParams(blinding_monitor=MONITOR_OFF),
    )
    assert not unmonitored.blinding_alarm


def test_partial_blinding_lowers_the_qber() -> None:
    length = 25.0
    attack = Attack("blinding", fraction=0.5, blinding_power_w=BLIND_W)
    alice, bob = simulate_decoy_bb84(
        GYS, length, 2 * 10**8, SOURCE, np.random.default_rng(6), attack=attack
    )
    assert bob.blinding_alarm
    qber, sem = _qber(alice, bob)
    expected = float(expected_gains_and_qber(GYS, length, SOURCE, attack=attack)["qber"][0])
    baseline = float(expected_gains_and_qber(GYS, length, SOURCE)["qber"][0])
    assert _within(qber, expected, sem)
    assert qber < 0.7 * baseline
    unattacked = Attack("blinding", 0.0, BLIND_W)
    _, quiet = simulate_decoy_bb84(
        GYS, length, 10**5, SOURCE, np.random.default_rng(6), attack=unattacked
    )
    assert not quiet.blinding_alarm


# --------------------------------------------------------------------------- BBM92


def test_bbm92_intercept_resend_on_bobs_arm() -> None:
    length, pulses = 20.0, 2 * 10**9
    attack = Attack("intercept-resend")
    alice, bob = simulate_bbm92(GYS_PAIRS, length, pulses, np.random.default_rng(7), attack=attack)
    qber, sem = _qber(alice, bob, None)
    expected = expected_bbm92_coincidences(GYS_PAIRS, length, attack=attack)
    assert _within(qber, float(expected["qber"]), sem)
    assert 0.25 < qber < 0.32
    honest = float(expected_bbm92_coincidences(GYS_PAIRS, length)["qber"])
    assert qber > honest + 0.15
    assert not bob.blinding_alarm


def test_bbm92_blinding() -> None:
    length, pulses = 20.0, 2 * 10**9
    attack = Attack("blinding", blinding_power_w=BLIND_W)
    alice, bob = simulate_bbm92(GYS_PAIRS, length, pulses, np.random.default_rng(8), attack=attack)
    assert bob.blinding_alarm
    qber, sem = _qber(alice, bob, None)
    expected = expected_bbm92_coincidences(GYS_PAIRS, length, attack=attack)
    honest = expected_bbm92_coincidences(GYS_PAIRS, length)
    assert _within(qber, float(expected["qber"]), sem)
    # Only Alice's multi-pair and dark-count errors remain.
    assert qber < float(honest["qber"])
    rate = alice.pulse_index.size / pulses
    assert rate == pytest.approx(float(honest["coincidence"][0]), rel=0.2)
    _, unmonitored = simulate_bbm92(
        GYS_PAIRS,
        length,
        10**6,
        np.random.default_rng(8),
        attack=attack,
        monitor=MONITOR_OFF,
    )
    assert not unmonitored.blinding_alarm


def test_bbm92_intercept_resend_single_pair_limit() -> None:
    """Few pairs, no background: each sifted coincidence errs with 1/4 + e_d/2 (Eve's basis is
    wrong half of the time, then Bob's bit is random; else only misalignment flips it)."""
    link = replace(GYS_PAIRS, dark_count_prob=0.0, detector_efficiency=0.5, mu=0.002)
    alice, bob = simulate_bbm92(
        link, 0.0, 2 * 10**8, np.random.default_rng(9), attack=Attack("intercept-resend")
    )
    qber, sem = _qber(alice, bob, None)
    # Multi-pair corrections are of order lambda = mu / 2.
    assert _within(qber, 0.25 + link.misalignment_error / 2, sem, 0.002)
