"""`qnetkit network ...`, `qnetkit report` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

QNETKIT = Path(sys.executable).with_name("qnetkit")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(QNETKIT), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_bad_file_lists_every_problem_with_field_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "name": "bad",
        "nodes": [{"id": "A"}, {"id": "B"}, {"id": "A"}],
        "links": [{"id": "AB", "a": "A", "b": "B", "length_km": 10},
                  {"id": "BC", "a": "B", "b": "C", "length_km": 5},
                  {"id": "X", "a": "A", "b": "B", "length_km": 1},
                  {"id": "AB2", "a": "A", "b": "B", "length_km": -3}],
    }))
    r = run("network", "validate", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    # Every problem at once, one line each, with the field path in the file's terms.
    assert len(lines) == 3, lines
    assert any("links[3].length_km" in ln and "greater than 0" in ln for ln in lines)
    assert any("nodes[2].id" in ln and "duplicate" in ln for ln in lines)
    assert any("links[1].b" in ln and "unknown node 'C'" in ln for ln in lines)
    assert all(ln.startswith(f"qnetkit: error: {bad}: ") for ln in lines)
    r2 = run("network", "simulate", str(bad), "--duration", "1h")
    assert r2.returncode == 2 and "links[3].length_km" in r2.stderr and "Traceback" not in r2.stderr


def test_simulate_json_out_and_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run("network", "simulate", str(EXAMPLES / "metro.yaml"), "--duration", "1d",
            "--seed", "3", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["duration_s"] == 86400 and s["wall_s"] > 0
    for key in ("secret_bits", "mean_qber", "availability"):
        assert all(key in ln for ln in s["links"])
    for key in ("requested_bits", "delivered_bits", "served_fraction", "fallback_s"):
        assert all(key in d for d in s["demands"])
    assert {"fiber-cut", "eavesdropper"} <= {i["kind"] for i in s["incidents"]}
    for f in ("summary.json", "links.csv", "demands.csv", "incidents.csv"):
        assert (out / f).stat().st_size > 0
    assert sum(1 for _ in (out / "links.csv").open()) == 1 + 1440 * len(s["links"])
    again = run("network", "simulate", str(EXAMPLES / "metro.yaml"), "--duration", "1d",
                "--seed", "3", "--json")
    s2 = json.loads(again.stdout)
    assert [d["delivered_bits"] for d in s2["demands"]] == [d["delivered_bits"]
                                                            for d in s["demands"]]
    rep = run("report", str(out), "--out", str(tmp_path / "r.html"))
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") >= 2
    missing = run("report", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a run directory" in missing.stderr


def test_generate_then_simulate(tmp_path: Path) -> None:
    topo = tmp_path / "g.yaml"
    r = run("network", "generate", "--nodes", "60", "--model", "waxman", "--seed", "4",
            "--out", str(topo), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["nodes"] == 60 and info["links"] >= 59
    s = json.loads(run("network", "simulate", str(topo), "--duration", "2h", "--json").stdout)
    assert len(s["links"]) == info["links"]
    bad = run("network", "generate", "--nodes", "10", "--model", "tree", "--out",
              str(topo))
    assert bad.returncode == 2 and "--model" in bad.stderr


def test_bad_duration() -> None:
    r = run("network", "simulate", str(EXAMPLES / "metro.yaml"), "--duration", "soon")
    assert r.returncode == 2 and "duration" in r.stderr


def test_report_uses_the_topology_qber_levels(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "metro.yaml").read_text())
    doc["monitoring"] = {"qber_warning": 0.031, "qber_abort": 0.093}
    topo = tmp_path / "m.yaml"
    topo.write_text(yaml.safe_dump(doc))
    out = tmp_path / "run"
    assert run("network", "simulate", str(topo), "--duration", "2h", "--out", str(out)
               ).returncode == 0
    assert run("report", str(out), "--out", str(tmp_path / "r.html")).returncode == 0
    html = (tmp_path / "r.html").read_text()
    assert "warning 0.031" in html and "abort 0.093" in html


def test_unwritable_outputs_are_one_line_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = blocker / "out.yaml"  # below a regular file: can never be created
    cases = [
        ("network", "generate", "--nodes", "5", "--out", str(bad)),
        ("network", "generate", "--nodes", "5", "--out", str(tmp_path)),
        ("sweep", str(EXAMPLES / "metro.yaml"), "--param", "links[*].length_km=10:20:10",
         "--duration", "1h", "--out", str(blocker / "t.csv")),
        ("network", "examples", "--copy", str(blocker / "dir")),
    ]
    for args in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("qnetkit: error: ") and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert blocker.read_text() == "x"
