"""The `qnetkit keyrate` command as a user runs it: a real process, stdout, stderr, exit status."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

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
        (["keyrate", "decoy-bb84", "--pulse-rate-hz", "0"], "must be a finite rate > 0"),
        (["keyrate", "decoy-bb84", "--pulse-rate-hz", "-1e9"], "finite rate > 0"),
        (["keyrate", "compare", "nosuch"], "known: decoy-bb84, finite-decoy-bb84"),
        (["keyrate", "compare", "plob"], "always drawn"),
        (["keyrate", "compare", "decoy-bb84:nosuch"], "nosuch"),
        (["keyrate", "compare", "decoy-bb84", "--sweep", "10:0:1"], "10:0:1"),
        (["keyrate", "compare", "decoy-bb84", "--sweep", "0:10"], "0:10"),
        (["keyrate", "compare", "decoy-bb84", "--channel-loss-db-per-km", "-1"], "-1"),
        (["keyrate", "compare", "decoy-bb84", "--detector-efficiency", "1.5"], "1.5"),
        (["keyrate", "compare", "decoy-bb84", "--plob-includes-detector"], "--detector-eff"),
        (["keyrate", "compare", "decoy-bb84", "--plot", "x.pdf"], "x.pdf"),
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


def test_unknown_protocol_names_the_known_ones() -> None:
    proc = run("keyrate", "nosuch")
    assert proc.returncode == 2
    # Before: "No such command 'nosuch'." with no list.
    assert "known: decoy-bb84, finite-decoy-bb84, bbm92, e91, plob, tf-qkd" in proc.stderr


def test_pulse_rate_gives_bit_per_s() -> None:
    # decoy-bb84, preset gys2004, 50 km: bit/s is bits/pulse x pulses/s.
    proc = run("keyrate", "decoy-bb84", "--length-km", "50", "--pulse-rate-hz", "1e9", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["pulse_rate_hz"] == 1e9
    assert 1e-4 < out["key_rate_per_pulse"] < 1e-3
    assert out["key_rate_bps"] == pytest.approx(out["key_rate_per_pulse"] * 1e9, rel=1e-12)
    # Without a pulse rate (no preset states one) there is no bit/s, and the text says so.
    bare = json.loads(run("keyrate", "decoy-bb84", "--length-km", "50", "--json").stdout)
    assert bare["pulse_rate_hz"] is None and bare["key_rate_bps"] is None
    text = run("keyrate", "decoy-bb84", "--length-km", "50").stdout
    assert "give --pulse-rate-hz" in text


def test_pulse_rate_column_in_the_sweep_table() -> None:
    out = json.loads(
        run("keyrate", "dps", "--sweep", "0:100:50", "--pulse-rate-hz", "2e9", "--json").stdout
    )
    bps = [p["key_rate_bps"] for p in out["points"]]
    assert bps == [pytest.approx(2e9 * p["key_rate_per_pulse"]) for p in out["points"]]
    proc = run("keyrate", "dps", "--sweep", "0:100:50", "--pulse-rate-hz", "2e9")
    assert "key rate (bit/s)" in proc.stdout
    # 100 km: shown in kbit/s with 4 significant digits.
    assert f"{bps[-1] / 1e3:.4g} kbit/s" in proc.stdout


def _row(stdout: str, first_cell: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in\n{stdout}")


def test_zero_rate_rows_show_a_dash_not_50_percent() -> None:
    # gys2004 reaches 142 km (Ma et al. 2005): at 200 km there is no key, and the model's
    # QBER there (~50 %) means nothing. Before: "49.992 %" and mu 0.0001 were printed.
    proc = run("keyrate", "decoy-bb84", "--sweep", "100:200:100")
    assert proc.returncode == 0, proc.stderr
    live, dead = _row(proc.stdout, "100.0"), _row(proc.stdout, "200.0")
    assert live[2].endswith("%") and float(live[2].rstrip(" %")) < 11
    assert dead[1] == "0.0000e+00" and dead[2] == "-" and dead[3] == "-"
    assert "49.9" not in proc.stdout
    out = json.loads(run("keyrate", "decoy-bb84", "--length-km", "200", "--json").stdout)
    assert out["key_rate_per_pulse"] == 0.0
    assert out["qber"] is None and out["mu"] is None
    text = run("keyrate", "decoy-bb84", "--length-km", "200").stdout
    assert "QBER          -" in text
    # A fixed intensity stays what the user gave, key or not.
    fixed = json.loads(
        run("keyrate", "decoy-bb84", "--length-km", "200", "--mu", "0.48", "--json").stdout
    )
    assert fixed["mu"] == 0.48 and fixed["qber"] is None


def test_plob_column_is_capped_at_zero_km() -> None:
    # tf-qkd's transmittance leaves the detectors out: eta = 1 at 0 km, where -log2(1 - eta)
    # is infinite. Before: "inf" in the table, null in JSON.
    out = json.loads(run("keyrate", "tf-qkd", "--sweep", "0:10:10", "--json").stdout)
    first, second = out["points"]
    assert first["plob_bound"] == 10.0 and first["plob_clamped"] is True
    assert second["plob_clamped"] is False
    assert second["plob_bound"] == pytest.approx(-math.log2(1 - 10 ** (-0.2 * 10 / 10)))
    table = run("keyrate", "tf-qkd", "--sweep", "0:10:10").stdout
    assert _row(table, "0.0")[-1] == "≥1.0000e+01 (cap)"
    assert "PLOB capped at 10 bits/use" in table


def _compare(*args: str) -> dict[str, Any]:
    proc = run("keyrate", "compare", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_compare_puts_two_protocols_on_one_channel_with_the_channel_plob() -> None:
    out = _compare("decoy-bb84", "tf-qkd", "--sweep", "0:150:50", "--pulse-rate-hz", "1e9")
    curves = {p["label"]: p for p in out["protocols"]}
    assert list(curves) == ["decoy-bb84", "tf-qkd"]
    for curve in curves.values():
        # One channel: gys2004's 0.21 dB/km is replaced by the shared default 0.2 dB/km.
        assert curve["params"]["loss_db_per_km"] == 0.2
        assert [p["length_km"] for p in curve["points"]] == [0.0, 50.0, 100.0, 150.0]
        assert curve["not_applied"] == []
        for p in curve["points"]:
            assert p["key_rate_bps"] == pytest.approx(p["key_rate_per_pulse"] * 1e9)
    # Device values not given stay each preset's.
    assert curves["decoy-bb84"]["params"]["detector_efficiency"] == 0.045
    assert curves["tf-qkd"]["params"]["detector_efficiency"] == 0.25
    # Same numbers as the single-protocol command on that channel.
    single = json.loads(
        run(
            "keyrate", "decoy-bb84", "--loss-db-per-km", "0.2", "--length-km", "50", "--json"
        ).stdout
    )
    assert curves["decoy-bb84"]["points"][1]["key_rate_per_pulse"] == pytest.approx(
        single["key_rate_per_pulse"], rel=1e-12
    )
    # decoy-bb84 reaches 142.2 km at 0.21 dB/km, so 142.2 x 0.21 / 0.2 = 149.3 km here: no key
    # at 150 km, QBER null; tf-qkd still has key there.
    assert curves["decoy-bb84"]["max_distance_km"] == pytest.approx(149.3, abs=0.2)
    assert curves["decoy-bb84"]["points"][3]["key_rate_per_pulse"] == 0.0
    assert curves["decoy-bb84"]["points"][3]["qber"] is None
    assert curves["tf-qkd"]["points"][3]["key_rate_per_pulse"] > 0
    plob = out["plob"]
    assert plob["convention"] == "channel" and plob["includes_detector"] is False
    at = {p["length_km"]: p for p in plob["points"]}
    # 0 km: -log2(1 - 1) is infinite; shown at the stated cap, flagged.
    assert at[0.0]["bits_per_use"] == plob["cap_bits_per_use"] == 10.0
    assert at[0.0]["clamped"] is True
    # Pirandola et al., Nat. Commun. 8, 15043 (2017), Eq. (19): -log2(1 - eta) with the
    # channel transmittance alone, eta = 10^(-0.2 x 50 / 10) = 0.1 -> 0.152 bits/use.
    eta = 10 ** (-0.2 * 50 / 10)
    assert at[50.0]["bits_per_use"] == pytest.approx(-math.log2(1 - eta), rel=1e-12)
    assert at[50.0]["bits_per_use"] == pytest.approx(0.152003, abs=1e-6)
    assert at[50.0]["clamped"] is False
    assert at[50.0]["bps"] == pytest.approx(at[50.0]["bits_per_use"] * 1e9)


def test_compare_plob_with_the_detector() -> None:
    out = _compare(
        "decoy-bb84",
        "tf-qkd",
        "--sweep",
        "0:100:50",
        "--detector-efficiency",
        "0.25",
        "--plob-includes-detector",
    )
    plob = out["plob"]
    assert plob["convention"] == "channel-and-detector"
    assert plob["includes_detector"] is True and plob["detector_efficiency"] == 0.25
    at = {p["length_km"]: p for p in plob["points"]}
    # eta = eta_det x 10^(-0.2 x 50 / 10): finite even at 0 km (eta = 0.25 < 1), not clamped.
    assert at[0.0]["bits_per_use"] == pytest.approx(-math.log2(1 - 0.25))
    assert at[0.0]["clamped"] is False
    eta = 0.25 * 10 ** (-0.2 * 50 / 10)
    assert at[50.0]["bits_per_use"] == pytest.approx(-math.log2(1 - eta), rel=1e-12)
    for curve in out["protocols"]:
        assert curve["params"]["detector_efficiency"] == 0.25


def test_compare_applies_the_shared_device_values() -> None:
    out = _compare(
        "bbm92",
        "dps",
        "--sweep",
        "50:50:1",
        "--channel-loss-db-per-km",
        "0.25",
        "--dark-count-prob",
        "1e-7",
        "--misalignment-error",
        "0.01",
    )
    assert out["channel"] == {"loss_db_per_km": 0.25, "extra_loss_db": 0.0}
    for curve in out["protocols"]:
        assert curve["params"]["loss_db_per_km"] == 0.25
        assert curve["params"]["dark_count_prob"] == 1e-7
        assert curve["params"]["misalignment_error"] == 0.01
    eta = 10 ** (-0.25 * 50 / 10)
    assert out["plob"]["points"][0]["bits_per_use"] == pytest.approx(-math.log2(1 - eta))


def test_compare_table_has_dashes_and_no_inf() -> None:
    proc = run("keyrate", "compare", "decoy-bb84", "tf-qkd", "--sweep", "0:200:200")
    assert proc.returncode == 0, proc.stderr
    assert "channel transmittance only" in proc.stdout
    assert "inf" not in proc.stdout and "nan" not in proc.stdout.lower()
    dead = next(
        [c.strip() for c in line.strip("│ ").split("│")]
        for line in proc.stdout.splitlines()
        if "200.0" in line and "decoy-bb84" in line
    )
    assert dead[2] == "0.0000e+00" and dead[3] == "-"
    assert "give --pulse-rate-hz" in proc.stdout


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "PLOB bound (channel transmittance only, detector efficiency not included)"),
        (
            ["--detector-efficiency", "0.25", "--plob-includes-detector"],
            "PLOB bound (channel x detector efficiency 0.25)",
        ),
    ],
)
def test_compare_svg_plot_states_the_plob_convention(
    tmp_path: Path, extra: list[str], needle: str
) -> None:
    svg = tmp_path / "compare.svg"
    proc = run(
        "keyrate",
        "compare",
        "decoy-bb84",
        "tf-qkd",
        "--sweep",
        "0:300:50",
        "--plot",
        str(svg),
        *extra,
    )
    assert proc.returncode == 0, proc.stderr
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml")
    # Legend and title are <text> elements (svg.fonttype none), so the convention is readable.
    assert f">{needle}</text>" in text
    assert f">PLOB: {needle[len('PLOB bound (') : -1]}</text>" in text
    assert ">decoy-bb84</text>" in text and ">tf-qkd</text>" in text


def test_compare_png_plot_is_written(tmp_path: Path) -> None:
    png = tmp_path / "compare.png"
    proc = run("keyrate", "compare", "sarg04", "dps", "--pulse-rate-hz", "1e9", "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {png}" in proc.stdout


def test_shared_values_a_protocol_cannot_take_are_listed() -> None:
    # Every registered protocol has the shared fields; PLOBParams (channel and detector only)
    # stands in for one that lacks some: they are reported by flag, not silently dropped.
    from qnetkit.cli.keyrate_compare import split_shared_values
    from qnetkit.keyrate.plob import PLOBParams

    given = {
        "loss_db_per_km": 0.2,
        "extra_loss_db": 1.0,
        "detector_efficiency": 0.5,
        "dark_count_prob": 1e-7,
        "misalignment_error": 0.01,
    }
    taken, refused = split_shared_values(PLOBParams, given)
    assert taken == {"loss_db_per_km": 0.2, "extra_loss_db": 1.0, "detector_efficiency": 0.5}
    assert refused == ["--dark-count-prob", "--misalignment-error"]


def test_plob_protocol_at_zero_km_is_capped_not_infinite() -> None:
    # The "plob" protocol's rate is -log2(1 - eta) itself, infinite at eta = 1: capped and
    # flagged, so bit/s is a number too (no traceback, no inf, no null).
    proc = run("keyrate", "plob", "--length-km", "0", "--pulse-rate-hz", "1e9", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["key_rate_per_pulse"] == out["plob_bound"] == 10.0
    assert out["plob_clamped"] is True
    assert out["key_rate_bps"] == 1e10
