"""The `qnetkit keyrate` command as a user runs it: a real process, stdout, stderr, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

QNETKIT = Path(sys.executable).with_name("qnetkit")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(QNETKIT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_max_distance_json_matches_ma_2005() -> None:
    # Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005): infinite decoys, GYS parameters, ~142 km.
    proc = run("keyrate", "decoy-bb84", "--preset", "gys2004", "--max-distance", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["protocol"] == "decoy-bb84"
    assert out["max_distance_km"] == pytest.approx(142.0, abs=1.0)
    assert out["params"]["misalignment_error"] == 0.033


def test_vacuum_weak_max_distance_depends_on_nu() -> None:
    reach = {}
    for nu in ("0.05", "0.2"):
        proc = run(
            "keyrate",
            "decoy-bb84",
            "--decoys",
            "vacuum+weak",
            "--nu",
            nu,
            "--max-distance",
            "--json",
        )
        assert proc.returncode == 0, proc.stderr
        reach[nu] = json.loads(proc.stdout)["max_distance_km"]
    assert 135.0 < reach["0.2"] < reach["0.05"] < 142.5


def test_vacuum_weak_at_fixed_mu_matches_ma_2005_figure_2() -> None:
    # Ma et al. 2005, Fig. 2: mu = 0.48, nu = 0.05 -> maximal secure distance 140.55 km.
    proc = run(
        "keyrate",
        "decoy-bb84",
        "--decoys",
        "vacuum+weak",
        "--nu",
        "0.05",
        "--mu",
        "0.48",
        "--max-distance",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["max_distance_km"] == pytest.approx(140.55, abs=0.2)


def test_single_point_json_has_the_documented_keys() -> None:
    proc = run("keyrate", "decoy-bb84", "--length-km", "50", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    out = json.loads(proc.stdout)
    for key in ("protocol", "length_km", "key_rate_per_pulse", "qber", "mu", "params"):
        assert key in out
    assert out["length_km"] == 50.0
    assert 1e-4 < out["key_rate_per_pulse"] < 1e-3
    assert out["key_rate_per_pulse"] < out["plob_bound"]


def test_override_flag_changes_the_result() -> None:
    base = json.loads(run("keyrate", "decoy-bb84", "--length-km", "50", "--json").stdout)
    worse = json.loads(
        run(
            "keyrate", "decoy-bb84", "--length-km", "50", "--misalignment-error", "0.06", "--json"
        ).stdout
    )
    assert worse["params"]["misalignment_error"] == 0.06
    assert worse["key_rate_per_pulse"] < base["key_rate_per_pulse"]


def test_sweep_json_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "rate.png"
    proc = run("keyrate", "decoy-bb84", "--sweep", "0:150:10", "--plot", str(png), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [p["length_km"] for p in out["points"]] == [float(x) for x in range(0, 151, 10)]
    rates = [p["key_rate_per_pulse"] for p in out["points"]]
    assert rates == sorted(rates, reverse=True)
    assert rates[-1] == 0.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_human_sweep_prints_a_table() -> None:
    proc = run("keyrate", "decoy-bb84", "--sweep", "0:100:50")
    assert proc.returncode == 0, proc.stderr
    assert "length (km)" in proc.stdout
    assert "100.0" in proc.stdout


def test_plob_has_no_finite_maximum_unless_thresholded() -> None:
    out = json.loads(run("keyrate", "plob", "--max-distance", "--json").stdout)
    assert out["max_distance_km"] is None and out["bounded"] is False
    out = json.loads(
        run("keyrate", "plob", "--max-distance", "--min-rate", "1e-10", "--json").stdout
    )
    # -log2(1 - eta) = 1e-10 at eta ~ 6.93e-11 -> 101.6 dB -> 507.9 km at 0.2 dB/km.
    assert out["max_distance_km"] == pytest.approx(507.9, abs=0.2)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["keyrate", "nosuch"], "nosuch"),
        (["keyrate", "decoy-bb84", "--preset", "nosuch"], "nosuch"),
        (["keyrate", "decoy-bb84", "--length-km", "-5"], "-5"),
        (["keyrate", "decoy-bb84", "--dark-count-prob", "1.5"], "1.5"),
        (["keyrate", "decoy-bb84", "--misalignment-error", "-0.1"], "-0.1"),
        (["keyrate", "decoy-bb84", "--sweep", "0:10"], "0:10"),
        (["keyrate", "decoy-bb84", "--sweep", "10:0:1"], "10:0:1"),
        (["keyrate", "decoy-bb84", "--sweep", "a:b:c"], "a:b:c"),
        (["keyrate", "decoy-bb84", "--decoys", "seven"], "seven"),
        (["keyrate", "decoy-bb84", "--length-km", "far"], "length-km"),
        (["keyrate", "decoy-bb84", "--plot", "x.jpg"], "x.jpg"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_help_lists_protocols() -> None:
    proc = run("keyrate", "--help")
    assert proc.returncode == 0
    for name in ("decoy-bb84", "finite-decoy-bb84", "bbm92", "e91", "plob", "tf-qkd"):
        assert name in proc.stdout
