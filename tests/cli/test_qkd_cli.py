"""`qnetkit qkd ...` as a user runs it: real processes, stdout JSON, exit codes, TCP peers."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qnetkit.cli import qkd_cmd

QNETKIT = Path(sys.executable).with_name("qnetkit")


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(QNETKIT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_run_json_has_every_field_and_matching_keys() -> None:
    proc = run("qkd", "run", "--preset", "gys2004", "--length-km", "10", "--pulses", "1e8",
               "--reconciliation", "cascade", "--seed", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # exactly one JSON object on stdout
    for key in ("pulses", "sifted_bits", "qber", "phase_error_bound", "leaked_ec_bits",
                "ec_efficiency", "secret_key_bits", "key_rate_per_pulse", "keys_match",
                "aborted", "abort_reason", "wall_s", "stage_wall_s", "secret_bits_per_wall_s"):
        assert key in out
    assert out["pulses"] == 10**8 and out["keys_match"] is True and out["aborted"] is False
    assert 0.025 < out["qber"] < 0.04  # gys2004: e_detector 3.3 % plus dark counts
    assert out["secret_key_bits"] > 10_000
    assert set(out["stage_wall_s"]) >= {"quantum", "sifting", "reconciliation",
                                        "privacy-amplification", "authentication"}
    # The QBER is an estimate: its sample size and exact 95 % interval come with it.
    lo, hi = out["qber_ci95"]
    assert out["qber_sample_bits"] == out["sifted_bits"] and lo < out["qber"] < hi
    assert out["eps_sec_run"] == out["blocks"] * out["eps_sec_per_block"]
    assert out["eps_qkd_run"] == pytest.approx(out["eps_sec_run"] + out["eps_cor_run"])


def test_human_output_shows_the_qber_interval_and_sample() -> None:
    # 1e8 pulses: at 1e7 the finite-key bound leaves no key, and a run without key exits 1.
    proc = run("qkd", "run", "--length-km", "10", "--pulses", "1e8", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "QBER 95 % CI" in proc.stdout and "QBER sample bits" in proc.stdout
    assert "eps_sec per block / run" in proc.stdout


def test_aborted_run_exits_1_with_its_reason_and_no_keys_match() -> None:
    # Full intercept-resend (Bennett et al., J. Cryptology 5, 3 (1992)): sifted intercepted
    # photons err with 1/4 + e_d/2 = 26.65 % at gys2004's e_d = 3.3 %, above the 11 % abort.
    args = ("qkd", "run", "--length-km", "10", "--pulses", "1e7", "--seed", "1",
            "--attack", "intercept-resend", "--attack-fraction", "1")
    proc = run(*args, "--json")
    assert proc.returncode == 1, proc.stderr  # 1: valid input, no key (2 is for bad input)
    out = json.loads(proc.stdout)  # the report is still one JSON object on stdout
    assert out["aborted"] is True and out["secret_key_bits"] == 0
    assert out["keys_match"] is None  # no keys: nothing matched, nothing differed
    reason = out["abort_reason"]
    assert reason.startswith("QBER ") and "above the abort threshold 11.0 %" in reason
    sample_qber = float(reason.split("QBER ")[1].split(" %")[0]) / 100
    assert sample_qber == pytest.approx(0.25 + 0.5 * 0.033, abs=0.04)  # 1024-bit sample
    assert proc.stderr.splitlines() == [f"qnetkit: aborted: {reason}"]
    human = run(*args)
    assert human.returncode == 1
    assert human.stderr.splitlines() == [f"qnetkit: aborted: {reason}"]
    assert "keys match" in human.stdout and "- (no key)" in human.stdout


def test_cli_and_python_api_take_the_same_options_and_give_the_same_run() -> None:
    # The README's promise: `simulate_link(attack="intercept-resend", attack_fraction=0.3)` is
    # `qnetkit qkd run --attack intercept-resend --attack-fraction 0.3`, run for run.
    from qnetkit.qkd import Attack, simulate_link

    proc = run("qkd", "run", "--length-km", "10", "--pulses", "1e7", "--seed", "4",
               "--attack", "intercept-resend", "--attack-fraction", "0.3", "--json")
    cli = json.loads(proc.stdout)
    by_name = simulate_link(length_km=10, pulses=10**7, seed=4, attack="intercept-resend",
                            attack_fraction=0.3).stats
    by_object = simulate_link(length_km=10, pulses=10**7, seed=4,
                              attack=Attack("intercept-resend", fraction=0.3)).stats
    assert cli["attack"] == {"kind": "intercept-resend", "fraction": 0.3, "blinding_power_w": None}
    for key in ("attack", "pulses", "sifted_bits", "qber", "qber_errors", "qber_sample_bits",
                "phase_error_bound", "leaked_ec_bits", "secret_key_bits", "keys_match",
                "aborted", "abort_reason"):
        assert cli[key] == by_name[key] == by_object[key], key
    # A 30 % attack lifts the QBER from gys2004's ~3.4 % by ~0.3 x 1/4 of the sifted clicks
    # (tests/qkd/test_link.py checks the exact expectation): far from the honest value.
    assert 0.08 < cli["qber"] < 0.11 and cli["sifted_bits"] > 20_000
    assert proc.returncode == (1 if cli["aborted"] else 0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--length-km", "-5"), "length"),
        (("--pulses", "lots"), "--pulses"),
        (("--pulses", "0"), "--pulses"),
        (("--reconciliation", "turbo"), "--reconciliation"),
        (("--attack", "laser"), "--attack"),
        (("--attack", "intercept-resend", "--attack-fraction", "1.5"), "fraction"),
        (("--preset", "nope"), "--preset"),
        (("--intensities", "0.1,0.5,0"), "intensities"),
        (("--peer", "nowhere"), "nowhere"),
        (("--key-bases", "3"), "--key-bases"),
        (("--blinding-power-w", "1e-3"), "--blinding-power-w"),
        (("--attack-fraction", "0.3"), "--attack-fraction 0.3: needs an attack"),
        (("--protocol", "bbm92", "--attack", "pns"), "--attack 'pns': photon-number splitting"),
        (("--attack", "blinding", "--blinding-power-w", "-1"), "--blinding-power-w"),
        (("--max-frame-mib", "0"), "--max-frame-mib"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: tuple[str, ...], needle: str) -> None:
    proc = run("qkd", "run", "--pulses", "1e6", *args) if "--pulses" not in args else run(
        "qkd", "run", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_over_tcp_give_the_one_process_key(tmp_path: Path) -> None:
    port = _free_port()
    bob = subprocess.Popen(
        [str(QNETKIT), "qkd", "bob", "--listen", f"127.0.0.1:{port}", "--json",
         "--key-out", str(tmp_path / "bob.key")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        alice = run("qkd", "run", "--peer", f"127.0.0.1:{port}", "--length-km", "10",
                    "--pulses", "1e8", "--seed", "5", "--json",
                    "--key-out", str(tmp_path / "alice.key"))
        bob_out, bob_err = bob.communicate(timeout=120)
    finally:
        bob.kill()
    assert alice.returncode == 0, alice.stderr
    assert bob.returncode == 0, bob_err
    local = run("qkd", "run", "--length-km", "10", "--pulses", "1e8", "--seed", "5", "--json",
                "--key-out", str(tmp_path / "local.key"))
    a_key = (tmp_path / "alice.key").read_bytes()
    assert len(a_key) > 1000
    assert a_key == (tmp_path / "bob.key").read_bytes() == (tmp_path / "local.key").read_bytes()
    remote, single = json.loads(alice.stdout), json.loads(local.stdout)
    assert remote["keys_match"] is True
    assert remote["secret_key_bits"] == single["secret_key_bits"]
    assert remote["leaked_ec_bits"] == single["leaked_ec_bits"]
    assert json.loads(bob_out)["secret_key_bits"] == single["secret_key_bits"]


def test_aborted_run_over_tcp_exits_1_on_both_sides_with_no_keys_match() -> None:
    port = _free_port()
    bob = subprocess.Popen(
        [str(QNETKIT), "qkd", "bob", "--listen", f"127.0.0.1:{port}", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        alice = run("qkd", "run", "--peer", f"127.0.0.1:{port}", "--pulses", "1e7", "--seed",
                    "1", "--attack", "intercept-resend", "--json")
        bob_out, bob_err = bob.communicate(timeout=120)
    finally:
        bob.kill()
    assert alice.returncode == 1 and bob.returncode == 1, (alice.stderr, bob_err)
    remote, bob_view = json.loads(alice.stdout), json.loads(bob_out)
    # Across processes as in one: no keys, so keys_match is null, not "true" for two empties.
    assert remote["keys_match"] is None and remote["aborted"] is True
    assert bob_view["aborted"] is True and bob_view["abort_reason"] == remote["abort_reason"]
    assert "above the abort threshold" in remote["abort_reason"]
    assert alice.stderr.splitlines() == [f"qnetkit: aborted: {remote['abort_reason']}"]
    assert bob_err.splitlines() == [f"qnetkit: aborted: {remote['abort_reason']}"]


def test_reconcile_and_amplify_commands() -> None:
    proc = run("qkd", "reconcile", "--method", "cascade", "--qber", "0.03", "--bits", "16384",
               "--frames", "4", "--seed", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["frame_error_rate"] == 0.0
    assert 1.0 < out["ec_efficiency"] < 1.15 and out["channel_uses"] > 1
    proc = run("qkd", "amplify", "--bits", "1e6", "--output-bits", "4e5", "--repeat", "2",
               "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bits_per_s"] > 1e6
    bad = run("qkd", "reconcile", "--qber", "0.7")
    assert bad.returncode == 2 and "--qber" in bad.stderr


def test_demo_runs_keyrates_and_whole_links(tmp_path: Path) -> None:
    # A relative --out, as `make demo` gives it.
    proc = subprocess.run([str(QNETKIT), "demo", "--out", "out", "--json"], capture_output=True,
                          text=True, timeout=300, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    def no_infinity(token: str) -> None:
        raise AssertionError(f"{token} in the demo's JSON")

    out = json.loads(proc.stdout, parse_constant=no_infinity)
    assert (tmp_path / out["plot"]).stat().st_size > 10_000
    assert out["protocols"]["decoy-bb84"]["max_distance_km"] == pytest.approx(142.2, abs=0.5)
    # PLOB is infinite at 0 km (-log2(0)): the demo gives its stated cap, marked as clamped.
    plob0 = out["protocols"]["plob"]["points"][0]
    assert plob0 == {"length_km": 0.0, "key_rate_per_pulse": 10.0, "clamped": True}
    links = out["qkd_links"]
    assert [r["length_km"] for r in links] == [10.0, 50.0]
    assert all(r["keys_match"] and r["secret_key_bits"] > 50_000 for r in links)
    # The 10 km link's final keys, ingested into KMEs A and B, reach both SAEs over ETSI 014.
    kms = out["kms"]
    assert kms["units_per_kme"] == links[0]["secret_key_bits"] // 256
    assert kms["keys_delivered"] == 8 and kms["keys_identical_at_both_saes"] is True
    assert kms["stored_key_count_before"] == (kms["units_per_kme"] + 1) // 2
    # The main job: the metro network over a day, with its report.
    net = out["network"]
    assert (tmp_path / net["report"]).stat().st_size > 50_000
    kinds = {i["kind"] for i in net["incidents"]}
    assert {"fiber-cut", "repair", "eavesdropper", "quarantine"} <= kinds
    assert all(0 < d["served_fraction"] <= 1 for d in net["demands"])
    # The repeater section: 200-400 km, trusted nodes vs repeater (two memories) vs direct.
    rep = out["repeater"]
    rows = {r["length_km"]: r for r in rep["rows"]}
    assert sorted(rows) == [200.0, 250.0, 300.0, 350.0, 400.0]
    for r in rows.values():
        assert r["direct_bps"] == 0.0  # beyond decoy BB84's reach on this fiber (142 km)
        assert r["repeater_t2_1s_bps"] > r["repeater_t2_10ms_bps"] > 0
        assert r["trusted_nodes_bps"] > r["repeater_t2_1s_bps"]
    # The repeaterless bound wins at 200 km and loses at 400 km to the repeater.
    assert rows[200.0]["plob_bps"] > rows[200.0]["repeater_t2_1s_bps"]
    assert rows[400.0]["plob_bps"] < rows[400.0]["repeater_t2_10ms_bps"]
    assert rep["repeater_link"]["availability"] == 1.0 and rep["repeater_link"]["secret_bits"] > 0
    html = (tmp_path / rep["report"]).read_text()
    assert "Repeater chain vs trusted nodes vs direct QKD" in html and "data:image/png" in html


# --------------------------------------------------------------------------- --key-out


_WATCH: dict[str, Any] = {
    "dir": None, "key": b"", "busy": False, "data_modes": [], "open_flags": []
}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Before each file operation of the writer, note the mode of every file holding key bytes."""
    folder = _WATCH["dir"]
    if folder is None or _WATCH["busy"] or event not in ("open", "os.chmod", "os.rename"):
        return
    _WATCH["busy"] = True  # scanning raises audit events of its own
    try:
        if event == "open" and str(args[0]).startswith(folder):
            _WATCH["open_flags"].append(args[2])
        for entry in os.scandir(folder):
            st = entry.stat(follow_symlinks=False)
            with open(entry.path, "rb") as fh:
                data = fh.read()
            if data and _WATCH["key"].startswith(data):
                _WATCH["data_modes"].append((event, entry.name, stat.S_IMODE(st.st_mode)))
    finally:
        _WATCH["busy"] = False


sys.addaudithook(_audit)  # hooks stay for the process; inert unless _WATCH["dir"] is set


def test_key_file_never_exists_with_looser_mode_than_0600(tmp_path: Path) -> None:
    """Under umask 0 a plain write + chmod leaves the key world-readable in between.

    The audit hook (PEP 578, raised by the real os calls) looks at the directory before every
    open, chmod and rename of the writer: every file that holds key bytes must already be 0600,
    and the file must have been created with O_CREAT | O_EXCL (never reusing an existing one).
    """
    key = np.random.default_rng(0).integers(0, 2, 4096, dtype=np.uint8)
    packed = np.packbits(key).tobytes()
    fresh, existing = tmp_path / "alice.key", tmp_path / "bob.key"
    existing.write_bytes(b"an older file, world-readable")
    existing.chmod(0o644)
    old_umask = os.umask(0)
    _WATCH.update(dir=str(tmp_path), key=packed, data_modes=[], open_flags=[])
    try:
        qkd_cmd._write_key(fresh, key)
        qkd_cmd._write_key(existing, key)  # replaced whole, not rewritten in place
    finally:
        _WATCH["dir"] = None
        os.umask(old_umask)
    for target in (fresh, existing):
        assert target.read_bytes() == packed
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _WATCH["data_modes"], "the hook saw no file operation"
    assert {mode for _, _, mode in _WATCH["data_modes"]} == {0o600}, _WATCH["data_modes"]
    excl = os.O_CREAT | os.O_EXCL
    assert any(flags is not None and flags & excl == excl for flags in _WATCH["open_flags"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.key", "bob.key"]  # no temp


def test_key_out_under_umask_0_is_0600(tmp_path: Path) -> None:
    out = tmp_path / "k.key"
    proc = subprocess.run(
        [str(QNETKIT), "qkd", "run", "--pulses", "1e8", "--seed", "2", "--json",
         "--key-out", str(out)],
        capture_output=True, text=True, timeout=300, check=False, umask=0,
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.stat().st_size == json.loads(proc.stdout)["secret_key_bits"] // 8 + (
        json.loads(proc.stdout)["secret_key_bits"] % 8 > 0)
