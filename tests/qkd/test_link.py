"""The whole link: identical keys at both ends, exact leakage, aborts with reasons, attacks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qnetkit.keyrate.common import binary_entropy
from qnetkit.keyrate.decoy_bb84 import PRESETS, decoy_bb84_key_rate
from qnetkit.qkd import link as link_mod
from qnetkit.qkd.attacks import Attack
from qnetkit.qkd.estimation import DecoyClasses, decoy_basis_bound
from qnetkit.qkd.link import LinkConfig, simulate_link
from qnetkit.qkd.quantum import DecoySourceParams, expected_gains_and_qber
from qnetkit.qkd.reconciliation.base import ReconciliationResult

GYS = PRESETS["gys2004"]


def _cfg(**kw: object) -> LinkConfig:
    base = {"length_km": 10.0, "pulses": 10**8, "seed": 1}
    base.update(kw)
    return LinkConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("e_det", [0.005, 0.033, 0.06])
def test_keys_match_over_seeds_and_qbers(seed: int, e_det: float) -> None:
    link = dataclasses.replace(GYS, misalignment_error=e_det)
    # At 6 % QBER the finite-key bound needs a bigger block before it yields key.
    res = simulate_link(_cfg(seed=seed, link=link, pulses=4 * 10**8 if e_det > 0.05 else 10**8))
    s = res.stats
    assert not s["aborted"], s["abort_reason"]
    assert s["keys_match"] and res.keys_match
    assert s["secret_key_bits"] > 1000
    assert s["qber"] == pytest.approx(e_det, abs=0.012)
    # Leakage accounting is exact: the reconcilers' own count equals the channel's log.
    assert s["leaked_ec_bits"] == s["channel_leaked_ec_bits"] > 0


def test_ldpc_pipeline_keys_match() -> None:
    res = simulate_link(_cfg(reconciliation="ldpc", seed=4))
    assert res.stats["keys_match"] and not res.stats["aborted"]
    assert res.stats["leaked_ec_bits"] == res.stats["channel_leaked_ec_bits"]


def test_same_seed_same_key_different_seed_different_key() -> None:
    a = simulate_link(_cfg(seed=7))
    b = simulate_link(_cfg(seed=7))
    c = simulate_link(_cfg(seed=8))
    assert np.array_equal(a.alice_key, b.alice_key)
    n = min(a.alice_key.size, c.alice_key.size)
    assert not np.array_equal(a.alice_key[:n], c.alice_key[:n])
    # Final keys look uniform.
    assert abs(a.alice_key.mean() - 0.5) < 5 / np.sqrt(a.alice_key.size)


def test_verification_catches_a_bit_left_by_reconciliation(monkeypatch: pytest.MonkeyPatch) -> None:
    real = link_mod.make_reconciler

    class Sloppy:
        def __init__(self) -> None:
            self.inner = real("cascade")
            self.name = "sloppy"

        def alice(self, ep, key, qber, rng):  # type: ignore[no-untyped-def]
            return self.inner.alice(ep, key, qber, rng)

        def bob(self, ep, key, qber):  # type: ignore[no-untyped-def]
            r = self.inner.bob(ep, key, qber)
            bad = r.key.copy()
            bad[len(bad) // 2] ^= 1  # one residual error
            return ReconciliationResult(bad, r.leaked_bits, r.channel_uses, True)

    monkeypatch.setattr(link_mod, "make_reconciler", lambda method: Sloppy())
    res = simulate_link(_cfg(seed=3))
    s = res.stats
    assert s["aborted"] and s["secret_key_bits"] == 0
    assert "verification failed" in s["abort_reason"]
    assert res.alice_key.size == res.bob_key.size == 0


def test_full_intercept_resend_gives_25_percent_and_aborts() -> None:
    res = simulate_link(_cfg(attack=Attack(kind="intercept-resend", fraction=1.0)))
    s = res.stats
    assert s["aborted"] and s["secret_key_bits"] == 0
    assert "QBER" in s["abort_reason"] and "abort threshold" in s["abort_reason"]
    sample_qber = float(s["abort_reason"].split("QBER ")[1].split(" %")[0]) / 100
    assert sample_qber == pytest.approx(0.25 + 0.5 * GYS.misalignment_error, abs=0.04)


def _expected_sifted_qber(attack: Attack | None) -> float:
    src = DecoySourceParams()
    exp = expected_gains_and_qber(GYS, 10.0, src, attack=attack)
    weights = np.asarray(src.intensity_probs) * exp["sifted_gain"]
    return float(np.dot(weights, exp["qber"]) / weights.sum())


@pytest.mark.parametrize("fraction", [0.1, 0.3])
def test_partial_intercept_resend_raises_qber_as_theory_says(fraction: float) -> None:
    # Theory: intercepted pulses err with 1/4 in the sifted key, weighted by their share of
    # Bob's sifted clicks (Eve resends one photon); the expectation is the exact mixture.
    attack = Attack(kind="intercept-resend", fraction=fraction)
    base = simulate_link(_cfg(seed=11)).stats
    hit = simulate_link(_cfg(seed=11, attack=attack)).stats
    expected = _expected_sifted_qber(attack)
    sigma = np.sqrt(expected * (1 - expected) / hit["sifted_bits"])
    assert hit["qber"] == pytest.approx(expected, abs=5 * sigma)
    assert base["qber"] == pytest.approx(_expected_sifted_qber(None), abs=0.002)
    assert hit["qber"] - base["qber"] > 0.25 * fraction * 0.5


def test_pns_attack_on_decoy_source_leaves_no_key() -> None:
    res = simulate_link(_cfg(length_km=50.0, pulses=2 * 10**8, attack=Attack(kind="pns")))
    s = res.stats
    assert s["secret_key_bits"] == 0 and s["aborted"]
    assert "phase error" in s["abort_reason"] or "single-photon" in s["abort_reason"]


def test_source_without_decoys_uses_gllp_and_pns_leaves_no_key() -> None:
    # A weak single-intensity source (mu ~ transmittance) gives key under GLLP at 5 km;
    # Eve's photon-number splitting (she blocks single photons) then leaves none.
    weak = DecoySourceParams(intensities=(0.02,), intensity_probs=(1.0,))
    honest = simulate_link(_cfg(length_km=5.0, pulses=10**9, source=weak)).stats
    assert honest["keys_match"] and honest["secret_key_bits"] > 20_000
    attacked = simulate_link(
        _cfg(length_km=5.0, pulses=10**9, source=weak, attack=Attack(kind="pns"))
    ).stats
    # Eve cannot keep Bob's gain at 5 km, so dark counts dominate: the QBER or the GLLP bound
    # stops the run, whichever comes first.
    assert attacked["secret_key_bits"] == 0 and attacked["aborted"]
    assert attacked["sifted_bits"] < 0.1 * honest["sifted_bits"]
    # The usual mu = 0.48 without decoys: multi-photon pulses outnumber detections: no key.
    strong = DecoySourceParams(intensities=(0.48,), intensity_probs=(1.0,))
    assert simulate_link(_cfg(source=strong)).stats["secret_key_bits"] == 0


def test_two_intensities_are_rejected() -> None:
    from qnetkit.errors import ParameterError

    two = DecoySourceParams(intensities=(0.5, 0.1), intensity_probs=(0.5, 0.5))
    with pytest.raises(ParameterError, match="intensities"):
        LinkConfig(source=two)


def test_blinding_attack_is_detected_by_the_monitor() -> None:
    res = simulate_link(_cfg(attack=Attack(kind="blinding", fraction=1.0, blinding_power_w=1e-3)))
    assert res.stats["aborted"] and "blinding" in res.stats["abort_reason"]


def _asymptotic_rate(f_ec: float) -> float:
    """The same protocol's rate per pulse for an infinite block: expected counts, no deviations.

    Counts follow the exact expectations of the detector model; the bounds are Lim et al.
    2014 Eqs. (2)-(5) with vanishing statistical terms; one key basis (Z, p_Z = 1/2), the X
    basis announced as test basis, so only the key basis is reconciled (the link's default).
    """
    src = DecoySourceParams()
    exp = expected_gains_and_qber(GYS, 10.0, src)
    pulses = 1e18
    per_basis = pulses * np.asarray(src.intensity_probs) * exp["sifted_gain"] / 2
    errors = per_basis * exp["qber"]
    classes = DecoyClasses(src.intensities, src.intensity_probs)
    bound = decoy_basis_bound(list(per_basis), list(per_basis), list(errors), classes, 0.5)
    key_bits = per_basis.sum()
    qber = errors.sum() / key_bits
    leak = f_ec * key_bits * float(binary_entropy(np.asarray(qber)))
    return (bound.entropy_bits - leak) / pulses


def test_rate_per_pulse_approaches_the_analytic_rate() -> None:
    small = simulate_link(_cfg(seed=2, pulses=10**8)).stats
    large = simulate_link(_cfg(seed=2, pulses=10**9)).stats
    asymptotic = _asymptotic_rate(large["ec_efficiency"])
    assert small["key_rate_per_pulse"] < large["key_rate_per_pulse"] < asymptotic
    gap_small = 1 - small["key_rate_per_pulse"] / asymptotic
    gap_large = 1 - large["key_rate_per_pulse"] / asymptotic
    assert gap_large < 0.75 * gap_small
    # Ma et al. 2005 (infinite decoys, optimal mu, signal-only key) is a ceiling above both.
    ceiling_params = dataclasses.replace(GYS, ec_efficiency=large["ec_efficiency"])
    ceiling = float(decoy_bb84_key_rate(ceiling_params, np.array([10.0])).key_rate_per_pulse[0])
    assert asymptotic < ceiling


def test_bbm92_link_produces_matching_keys() -> None:
    res = simulate_link(_cfg(protocol="bbm92", pulses=10**9, length_km=20.0))
    s = res.stats
    assert s["keys_match"] and s["secret_key_bits"] > 0, s["abort_reason"]
    assert s["qber"] < 0.08


def test_bad_config_is_a_parameter_error() -> None:
    from qnetkit.errors import ParameterError

    with pytest.raises(ParameterError, match="length_km"):
        LinkConfig(length_km=-1)
    with pytest.raises(ParameterError, match="reconciliation"):
        LinkConfig(reconciliation="turbo")
    with pytest.raises(ParameterError, match="pulses"):
        LinkConfig(pulses=0)


def test_results_never_print_key_material() -> None:
    res = simulate_link(_cfg(seed=9))
    text = repr(res) + str(res.to_json())
    assert "alice_key" not in text and "bob_key" not in text
    assert str(res.alice_key[:64].tolist()) not in text
