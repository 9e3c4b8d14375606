"""Parameter sweeps: path syntax, the product of values, local processes and a Dask cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qnetkit.network.sweep import Param, parse_param, run_sweep, set_field

QNETKIT = Path(sys.executable).with_name("qnetkit")

DOC = {
    "name": "line", "step_s": 300,
    "nodes": [{"id": "A"}, {"id": "B"}, {"id": "C"}],
    "links": [{"id": "AB", "a": "A", "b": "B", "length_km": 20},
              {"id": "BC", "a": "B", "b": "C", "length_km": 20}],
    "demands": [{"id": "AC", "a": "A", "b": "C", "rate_bps": 1e5}],
}


def test_parse_param_ranges_and_lists() -> None:
    assert parse_param("links[*].length_km=20:80:20").values == (20.0, 40.0, 60.0, 80.0)
    assert parse_param("demands[0].policy=refuse,fallback-pqc").values == (
        "refuse", "fallback-pqc")
    for bad in ("links[*].length_km", "links[x].a=1", "a=5:1:1", "a=1:5:0"):
        with pytest.raises(ValueError):
            parse_param(bad)


def test_set_field_wildcards_and_errors() -> None:
    doc = json.loads(json.dumps(DOC))
    set_field(doc, "links[*].length_km", 55.0)
    assert [ln["length_km"] for ln in doc["links"]] == [55.0, 55.0]
    set_field(doc, "links[1].qkd.pulse_rate_hz", 1e8)
    assert doc["links"][1]["qkd"] == {"pulse_rate_hz": 1e8} and "qkd" not in doc["links"][0]
    with pytest.raises(KeyError):
        set_field(doc, "links[5].length_km", 1.0)


def test_rate_falls_with_length_and_points_are_independent() -> None:
    rows = run_sweep(DOC, [Param("links[*].length_km", (20.0, 60.0, 100.0))],
                     duration_s=3600, seed=0, workers=2)
    bits = [r["secret_bits"] for r in rows]
    assert [r["links[*].length_km"] for r in rows] == [20.0, 60.0, 100.0]
    assert bits[0] > 5 * bits[1] > 25 * bits[2] > 0
    # The same point alone gives the same figures (no state shared between runs).
    again = run_sweep(DOC, [Param("links[*].length_km", (60.0,))], duration_s=3600, seed=0,
                      workers=1)
    assert again[0]["secret_bits"] == bits[1]


def test_invalid_point_fails_before_running() -> None:
    with pytest.raises(ValueError, match="length_km"):
        run_sweep(DOC, [Param("links[0].length_km", (10.0, -5.0))], duration_s=600, seed=0)


def test_sweep_on_a_local_dask_cluster(tmp_path: Path) -> None:
    from distributed import LocalCluster

    topo = tmp_path / "line.yaml"
    topo.write_text(yaml.safe_dump(DOC))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, protocol="tcp") as cluster:
        proc = subprocess.run(
            [str(QNETKIT), "sweep", str(topo), "--param", "links[*].length_km=20:60:20",
             "--param", "demands[0].rate_bps=1e5,1e7", "--duration", "2h",
             "--scheduler", cluster.scheduler_address, "--json"],
            capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["runs"]
    assert len(rows) == 6
    local = run_sweep(DOC, [parse_param("links[*].length_km=20:60:20"),
                            parse_param("demands[0].rate_bps=1e5,1e7")],
                      duration_s=7200, seed=0, workers=1)
    assert [r["secret_bits"] for r in rows] == [r["secret_bits"] for r in local]
    assert {r["demands[0].rate_bps"] for r in rows} == {1e5, 1e7}
