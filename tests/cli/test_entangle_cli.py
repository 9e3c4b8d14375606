"""`qnetkit entangle ...` as a user runs it: routing concurrent requests over shared memories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

QNETKIT = Path(sys.executable).with_name("qnetkit")
GRID = Path(__file__).resolve().parents[1] / "entanglement" / "data" / "entanglement-grid.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(QNETKIT), *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_simulate_json_reports_requests_and_nodes() -> None:
    r = run("entangle", "simulate", str(GRID), "--duration", "60s", "--seed", "2", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["duration_s"] == 60 and s["seed"] == 2 and s["events"] > 0
    reqs = {q["id"]: q for q in s["requests"]}
    assert set(reqs) == {"west-east", "north-south", "diagonal", "corner"}
    # The first three get all they asked for; the open-ended one is withdrawn at its end_s.
    for rid, wanted in (("west-east", 10000), ("north-south", 10000), ("diagonal", 1000)):
        assert reqs[rid]["state"] == "done" and reqs[rid]["delivered_pairs"] == wanted
    assert reqs["corner"]["state"] == "withdrawn" and reqs["corner"]["delivered_pairs"] > 0
    # west-east and north-south take the centre's four memories: the 4-hop requests go round.
    assert reqs["west-east"]["path"] == ["w", "c", "e"]
    assert reqs["north-south"]["path"] == ["n", "c", "s"]
    assert "c" not in reqs["diagonal"]["path"] and reqs["diagonal"]["hops"] == 4
    assert reqs["corner"]["queue_wait_s"] > 0  # no free path when it arrived
    for q in s["requests"]:
        assert 0.25 < q["mean_fidelity"] < 1 and q["mean_waiting_time_s"] > 0
    nodes = {n["id"]: n for n in s["nodes"]}
    assert nodes["c"]["peak_reserved"] == 4
    assert all(0 < n["storing_fraction"] < n["utilisation"] <= 1 for n in s["nodes"])
    again = run("entangle", "simulate", str(GRID), "--duration", "60s", "--seed", "2", "--json")
    s2 = json.loads(again.stdout)
    assert s2["requests"] == s["requests"] and s2["nodes"] == s["nodes"]


def test_simulate_prints_tables() -> None:
    r = run("entangle", "simulate", str(GRID), "--duration", "5s")
    assert r.returncode == 0, r.stderr
    for text in ("mean fidelity", "mean waiting", "utilisation", "west-east", "pairs delivered"):
        assert text in r.stdout


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    doc = yaml.safe_load(GRID.read_text())
    doc["nodes"][3]["memories"] = 1  # w: fewer than the request wants at its end
    doc["requests"][0]["multiplex"] = 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    r = run("entangle", "simulate", str(bad))
    assert r.returncode == 2
    assert r.stderr == (f"qnetkit: error: {bad}: requests[0].multiplex: 2 memories wanted at "
                        "end node 'w', which has 1\n")
    for args, needle in (
            (["--duration", "2x"], "--duration"),
            (["--duration", "3d"], "at most 1 day"),
            (["--seed", "-1"], "--seed")):
        r = run("entangle", "simulate", str(GRID), *args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
    r = run("entangle", "simulate", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot read" in r.stderr
    (tmp_path / "not.yaml").write_text("nodes: [")
    r = run("entangle", "simulate", str(tmp_path / "not.yaml"))
    assert r.returncode == 2 and "not valid YAML" in r.stderr and "Traceback" not in r.stderr


def test_generate_then_simulate(tmp_path: Path) -> None:
    out = tmp_path / "net.yaml"
    r = run("entangle", "generate", "--nodes", "40", "--requests", "5", "--seed", "1",
            "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "40 nodes" in r.stdout and "5 requests" in r.stdout
    r = run("entangle", "simulate", str(out), "--duration", "10s", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert len(s["requests"]) == 5 and s["delivered_pairs"] > 0
    r = run("entangle", "generate", "--nodes", "40", "--out", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr
