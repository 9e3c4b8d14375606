"""`qnetkit repeater sweep`: parameter x seed studies of a repeater chain, local or on Dask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qnetkit.entanglement.chain import simulate_chain

QNETKIT = Path(sys.executable).with_name("qnetkit")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(QNETKIT), "repeater", "sweep", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_runs_are_the_api_runs_and_points_average_their_seeds(tmp_path: Path) -> None:
    args = ["--param", "memory_t2_s=0.01,1", "--set", "scheme=double-click",
            "--set", "link_length_km=25", "--seeds", "3", "--pairs", "500", "--json"]
    parallel = run(*args, "--workers", "2", "--out", str(tmp_path / "runs.csv"))
    assert parallel.returncode == 0, parallel.stderr
    out = json.loads(parallel.stdout)
    assert out["fixed"] == {"scheme": "double-click", "link_length_km": 25}
    runs = out["runs"]
    assert [(r["memory_t2_s"], r["seed"]) for r in runs] == [
        (0.01, 0), (0.01, 1), (0.01, 2), (1, 0), (1, 1), (1, 2)]
    for r in runs:
        api = simulate_chain(scheme="double-click", link_length_km=25,
                             memory_t2_s=r["memory_t2_s"], pairs=500, seed=r["seed"])
        assert r["mean_fidelity"] == api.mean_fidelity
        assert r["rate_pairs_per_s"] == api.rate_pairs_per_s
    # Different seeds differ; a longer memory keeps a higher fidelity.
    assert len({r["mean_fidelity"] for r in runs[:3]}) == 3
    points = out["points"]
    assert [p["memory_t2_s"] for p in points] == [0.01, 1]
    for p, group in zip(points, (runs[:3], runs[3:]), strict=True):
        vals = np.array([r["mean_fidelity"] for r in group])
        assert p["seeds"] == 3
        assert p["mean_fidelity"] == pytest.approx(vals.mean(), rel=1e-12)
        assert p["mean_fidelity_std"] == pytest.approx(vals.std(ddof=1), rel=1e-12)
    assert points[1]["mean_fidelity"] > points[0]["mean_fidelity"]
    # One worker gives the same rows in the same order; the CSV has every run.
    serial = json.loads(run(*args, "--workers", "1").stdout)
    assert [r["mean_fidelity"] for r in serial["runs"]] == [r["mean_fidelity"] for r in runs]
    assert len((tmp_path / "runs.csv").read_text().splitlines()) == 1 + 6


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "t2=1,2"], "--param 't2=1,2': 't2' is not a chain option (one of "),
    (["--param", "nodes=3", "--set", "scheme=single-click,double-click"],
     "--set 'scheme=single-click,double-click': one value (use --param for several)"),
    (["--param", "nodes=3", "--set", "nodes=5"],
     "each option may be given once, in --param or in --set"),
    (["--param", "nodes"], "--param 'nodes': expected PATH=VALUES"),
])
def test_bad_sweeps_exit_2_with_one_line(args: list[str], message: str) -> None:
    r = run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"qnetkit: error: {message}")


def test_a_bad_value_names_the_option() -> None:
    r = run("--param", "swap_success_prob=0.5,1.5", "--seeds", "1", "--pairs", "10",
            "--workers", "1")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("qnetkit: error: --swap-success-prob 1.5")
