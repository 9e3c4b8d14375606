"""The Python API takes the options of `qnetkit qkd run` by the same names, and checks them.

One builder (``make_link_config``) serves ``simulate_link(**options)`` and the command line; a
wrong name or type is a ParameterError at the boundary that names the option and its allowed
values, never an AttributeError from deep in the run.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import qnetkit.qkd as qkd
from qnetkit.cli import qkd_cmd
from qnetkit.errors import ParameterError
from qnetkit.keyrate.decoy_bb84 import PRESETS
from qnetkit.qkd.attacks import Attack
from qnetkit.qkd.link import LinkConfig, make_link_config, simulate_link
from qnetkit.qkd.quantum import DecoySourceParams, expected_gains_and_qber

GYS = PRESETS["gys2004"]
FAST: dict[str, Any] = {"length_km": 10.0, "pulses": 10**7}


def _same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    timed = {"wall_s", "stage_wall_s", "secret_bits_per_wall_s"}
    return {k: v for k, v in a.items() if k not in timed} == {
        k: v for k, v in b.items() if k not in timed
    }


def test_attack_by_name_and_fraction_is_the_attack_object() -> None:
    by_name = simulate_link(**FAST, seed=4, attack="intercept-resend", attack_fraction=0.3)
    by_object = simulate_link(**FAST, seed=4, attack=qkd.Attack("intercept-resend", 0.3))
    assert by_name.stats["attack"] == {
        "kind": "intercept-resend", "fraction": 0.3, "blinding_power_w": None
    }
    assert _same_run(by_name.stats, by_object.stats)
    # The attack really ran: the sifted QBER is the model's exact expectation for a 30 %
    # intercept-resend (Bennett et al. 1992: an intercepted sifted photon errs with 1/4 + e_d/2),
    # weighted over the intensity classes, within 5 binomial sigma.
    src = DecoySourceParams()
    exp = expected_gains_and_qber(GYS, 10.0, src, attack=Attack("intercept-resend", 0.3))
    weights = np.asarray(src.intensity_probs) * exp["sifted_gain"]
    expected = float(np.dot(weights, exp["qber"]) / weights.sum())
    s = by_name.stats
    sigma = np.sqrt(expected * (1 - expected) / s["qber_sample_bits"])
    assert s["qber"] == pytest.approx(expected, abs=5 * sigma)
    assert 0.09 < expected < 0.10


def test_a_config_attack_takes_the_fraction_and_a_name_takes_the_cli_defaults() -> None:
    cfg = LinkConfig(attack="blinding")  # type: ignore[arg-type]
    # --attack blinding without --blinding-power-w: the whole stream at 1 mW.
    assert cfg.attack == Attack("blinding", 1.0, blinding_power_w=1e-3)
    half = make_link_config(cfg, attack_fraction=0.5, blinding_power_w=2e-3)
    assert half.attack == Attack("blinding", 0.5, blinding_power_w=2e-3)
    assert make_link_config(half, attack=None).attack is None


def test_cli_builds_its_config_with_the_api_builder() -> None:
    flags: dict[str, Any] = {
        "protocol": "decoy-bb84", "preset": "gys2004", "length_km": 25.0, "pulses": "1e7",
        "reconciliation": "ldpc", "seed": 9, "attack": "pns", "attack_fraction": 0.5,
        "intensities": "0.5,0.1,0", "intensity_probs": "0.5,0.25,0.25", "basis_prob_z": 0.7,
        "dead_time_s": 1e-8, "detector_efficiency": 0.1, "dark_count_prob": 1e-5,
        "misalignment_error": 0.01, "loss_db_per_km": 0.2, "block_bits": "65536",
        "eps_sec": 1e-9, "key_bases": 2,
    }
    from_cli = qkd_cmd.build_config(**flags)
    from_api = make_link_config(
        **{**flags, "pulses": 10**7, "intensities": (0.5, 0.1, 0.0),
           "intensity_probs": [0.5, 0.25, 0.25], "block_bits": 65536}
    )
    assert from_cli == from_api
    assert from_api.link.detector_efficiency == 0.1 and from_api.link.loss_db_per_km == 0.2
    assert from_api.link.dark_count_prob == 1e-5 and from_api.link.misalignment_error == 0.01
    assert from_api.source.intensities == (0.5, 0.1, 0.0) and from_api.source.basis_prob_z == 0.7
    assert from_api.timing.dead_time_s == 1e-8 and from_api.attack == Attack("pns", 0.5)
    assert from_api.key_bases == 2 and from_api.block_bits == 65536


def test_counts_given_as_floats_are_stored_as_integers() -> None:
    cfg = LinkConfig(pulses=1e8, seed=np.int64(3))  # type: ignore[arg-type]
    assert cfg.pulses == 10**8 and type(cfg.pulses) is int and type(cfg.seed) is int


KINDS = "intercept-resend, pns, blinding"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attack": 3}, f"attack=3: must be an attack name ({KINDS}), an Attack or None"),
        ({"attack": "laser"}, f"attack='laser': must be one of {KINDS}"),
        ({"attack": "intercept-resend", "attack_fraction": "x"},
         "attack_fraction='x': must be a number in [0, 1]"),
        ({"attack": "intercept-resend", "attack_fraction": 1.5},
         "attack_fraction=1.5: must be a number in [0, 1]"),
        ({"attack_fraction": 0.3}, f"attack_fraction=0.3: needs an attack ({KINDS})"),
        ({"attack": "pns", "blinding_power_w": 1e-3},
         "blinding_power_w=0.001: only with a blinding attack"),
        ({"protocol": "bbm92", "attack": "pns"},
         "attack='pns': photon-number splitting needs a weak coherent source (decoy-bb84)"),
        ({"pulses": "1e6"}, "pulses='1e6': must be an integer >= 1"),
        ({"seed": "x"}, "seed='x': must be an integer >= 0"),
        ({"length_km": True}, "length_km=True: must be a finite number >= 0"),
        ({"link": "gys2004"}, "link='gys2004': must be a DecoyBB84Params"),
        ({"preset": "nope"}, "preset='nope': unknown preset (known: gys2004)"),
        ({"intensities": "0.4,0.17,0"},
         "intensities='0.4,0.17,0': must be a sequence of numbers, e.g. (0.4, 0.17, 0.0)"),
        ({"attak": "pns"}, "attak='pns': unknown option (known: protocol, length_km, pulses,"),
    ],
)
def test_a_wrong_option_is_a_parameter_error_naming_it(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)) as err:
        simulate_link(**options)
    assert err.value.name == message.split("=", 1)[0]
    with pytest.raises(ParameterError, match=re.escape(message)):
        make_link_config(**options)


def test_config_of_the_wrong_type_is_named() -> None:
    with pytest.raises(ParameterError, match=re.escape("config='fast': must be a LinkConfig")):
        simulate_link("fast")  # type: ignore[arg-type]


def test_keys_match_is_none_when_the_run_has_no_key() -> None:
    res = simulate_link(**FAST, seed=1, attack="intercept-resend")
    assert res.stats["aborted"] and res.alice_key.size == res.bob_key.size == 0
    assert res.keys_match is None and res.stats["keys_match"] is None
    assert "above the abort threshold" in res.stats["abort_reason"]
    # With no sifted bit no block runs: the run still says why it has no key.
    empty = simulate_link(length_km=10.0, pulses=10, seed=1).stats
    assert empty["aborted"] and empty["sifted_bits"] == 0 and empty["keys_match"] is None
    assert empty["abort_reason"] == "no key: 0 sifted bits, too few to post-process"
