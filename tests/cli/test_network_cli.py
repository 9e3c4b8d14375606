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


def _sweep_topology(tmp_path: Path, n_links: int) -> Path:
    """A line of ``n_links`` 20 km links; only the first carries a classical channel."""
    nodes = [{"id": f"N{i}"} for i in range(n_links + 1)]
    links: list[dict[str, object]] = [
        {"id": f"L{i}", "a": f"N{i}", "b": f"N{i + 1}", "length_km": 20} for i in range(n_links)]
    links[0]["classical_channels"] = [{"launch_power_dbm": -10.0}]
    path = tmp_path / f"line{n_links}.yaml"
    path.write_text(yaml.safe_dump({
        "name": "line", "step_s": 600, "nodes": nodes, "links": links,
        "demands": [{"id": "ends", "a": "N0", "b": f"N{n_links}", "rate_bps": 1e5}]}))
    return path


def test_sweep_csv_and_json_have_per_link_and_per_demand_columns(tmp_path: Path) -> None:
    topo = _sweep_topology(tmp_path, 7)
    args = ("sweep", str(topo), "--param", "links[*].classical_channels[*].launch_power_dbm=-10,0",
            "--duration", "1h", "--workers", "1")
    r = run(*args, "--out", str(tmp_path / "t.csv"), "--json")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    with (tmp_path / "t.csv").open() as f:
        lines = f.read().splitlines()
    assert len(lines) == 1 + len(runs) == 3  # one row per run however many columns
    header = lines[0].split(",")
    assert header == list(runs[0])
    assert {f"link:L{i}:{k}" for i in range(7) for k in ("rate_bps", "qber", "availability")} \
        <= set(header)
    assert "demand:ends:served_fraction" in header
    # Only L0 has a classical channel: its QBER rises with the launch power, L1's does not move.
    assert runs[1]["link:L0:qber"] > runs[0]["link:L0:qber"]
    assert runs[1]["link:L1:qber"] == runs[0]["link:L1:qber"]
    # The same point simulated alone gives the same per-link figures.
    single = json.loads(run("network", "simulate", str(topo), "--duration", "1h", "--json").stdout)
    for ln in single["links"]:
        assert runs[0][f"link:{ln['id']}:rate_bps"] == ln["mean_rate_bps"]
        assert runs[0][f"link:{ln['id']}:availability"] == ln["availability"]
    table = run(*args)
    assert table.returncode == 0, table.stderr
    assert "per-link rate, QBER and availability of 7 links" in table.stdout
    assert "served_fraction" in table.stdout  # the per-demand column stays


def test_sweep_errors_name_the_item_and_bad_initial_pools(tmp_path: Path) -> None:
    topo = _sweep_topology(tmp_path, 2)
    r = run("sweep", str(topo), "--param", "links[*].length_km=10,-5", "--duration", "1h")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    for i, line in enumerate(lines):
        assert line.startswith(f"qnetkit: error: sweep point links[*].length_km=-5: links[{i}] "
                               f"(id 'L{i}'): length_km: "), line
    r = run("sweep", str(topo), "--param", "links[*].passes.period_s=100", "--duration", "1h")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "links[*].passes.period_s: no item has this field (links[0] (id 'L0')" in r.stderr
    for bad in ("lots", "-5", "nan"):
        r = run("sweep", str(topo), "--param", "links[*].length_km=10", "--duration", "1h",
                "--initial-pools", bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (bad, r.stderr)
        assert r.stderr.startswith(f"qnetkit: error: --initial-pools {bad!r}"), r.stderr
    ok = run("sweep", str(topo), "--param", "links[*].length_km=10", "--duration", "1h",
             "--initial-pools", "full", "--json", "--workers", "1")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["runs"][0]["demand:ends:served_fraction_with_initial"] > 0


def _misspelt_topology(tmp_path: Path) -> Path:
    bad = tmp_path / "misspelt.yaml"
    bad.write_text(yaml.safe_dump({
        "name": "m", "nodes": [{"id": "A"}, {"id": "B"}],
        "links": [{"id": "AB", "a": "A", "b": "B", "lenght_km": 10}]}))
    return bad


def test_validate_json_is_one_object_in_every_case(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: t\nnodes:\n  - {id: A\n")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x00\xff\xfe name")
    cases = {tmp_path / "missing.yaml": ("(file)", "cannot read: No such file or directory"),
             broken: ("line 4", "not valid YAML"),
             binary: ("(file)", "not valid YAML (not UTF-8 text)")}
    for path, (where, message) in cases.items():
        r = run("network", "validate", str(path), "--json")
        assert r.returncode == 2 and r.stderr == "", (path, r.stderr)
        assert json.loads(r.stdout) == {"ok": False, "file": str(path), "warnings": [],
                                        "problems": [{"path": where, "message": message}]}
    bad = _misspelt_topology(tmp_path)
    r = run("network", "validate", str(bad), "--json")
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["warnings"] == []
    problems = {p["path"]: p["message"] for p in out["problems"]}
    assert problems["links[0].length_km"] == "Field required"
    assert problems["links[0].lenght_km"].startswith("unknown field 'lenght_km'; allowed here: a, ")
    assert problems["links[0].lenght_km"].endswith(" (did you mean 'length_km'?)")
    ok = run("network", "validate", str(EXAMPLES / "metro.yaml"), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"ok": True, "file": str(EXAMPLES / "metro.yaml"),
                                     "name": "metro", "nodes": 7, "links": 8, "demands": 4,
                                     "scenario_events": 4, "problems": [], "warnings": []}


def test_validate_text_keeps_one_line_per_problem_and_prints_warnings(tmp_path: Path) -> None:
    bad = _misspelt_topology(tmp_path)
    r = run("network", "validate", str(bad))
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert any(ln.startswith(f"qnetkit: error: {bad}: links[0].lenght_km: unknown field "
                             "'lenght_km'; allowed here: a, ") and
               ln.endswith("(did you mean 'length_km'?)") for ln in lines), lines
    # A valid file whose 400 km fiber link cannot make key: ok (exit 0) with a warning on it.
    far = tmp_path / "far.yaml"
    far.write_text(yaml.safe_dump({
        "name": "far", "nodes": [{"id": "A"}, {"id": "B"}, {"id": "C"}],
        "links": [{"id": "AB", "a": "A", "b": "B", "length_km": 10},
                  {"id": "BC", "a": "B", "b": "C", "length_km": 400}]}))
    text = run("network", "validate", str(far))
    assert text.returncode == 0, text.stderr
    out = text.stdout.splitlines()
    assert out[0] == f"{far}: ok (3 nodes, 2 links, 0 demands, 0 scenario events)"
    assert len(out) >= 2 and all(ln.startswith("warning: links[1]") for ln in out[1:]), out
    js = run("network", "validate", str(far), "--json")
    assert js.returncode == 0
    warnings = json.loads(js.stdout)["warnings"]
    assert [f"warning: {w['path']}: {w['message']}" for w in warnings] == out[1:]


def test_schema_json_markdown_and_text() -> None:
    r = run("network", "schema", "--json")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$defs"]["Link"]["properties"]["length_km"]["exclusiveMinimum"] == 0
    assert schema["$defs"]["Link"]["additionalProperties"] is False
    md = run("network", "schema", "--markdown")
    page = Path(__file__).resolve().parents[2] / "docs" / "topology-reference.md"
    assert md.returncode == 0 and md.stdout == page.read_text()
    text = run("network", "schema")
    assert "  links[].qkd.pulse_rate_hz [Hz]: number > 0; default 1e+09\n" in text.stdout
    both = run("network", "schema", "--json", "--markdown")
    assert both.returncode == 2
    assert both.stderr == "qnetkit: error: give --json or --markdown, not both\n"


def test_simulate_initial_pools_and_the_served_fraction(tmp_path: Path) -> None:
    planner = Path(__file__).resolve().parents[1] / "network" / "data" / "planner-dwdm.yaml"
    bad = run("network", "simulate", str(planner), "--duration", "1h", "--initial-pools", "lots")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "qnetkit: error: --initial-pools 'lots': use empty, full or a number of seconds of "
        "production"]
    full = run("network", "simulate", str(planner), "--duration", "1h", "--initial-pools", "full",
               "--json")
    assert full.returncode == 0, full.stderr
    s = json.loads(full.stdout)
    assert s["pools"] == {"initial_fill": "full", "capacity_bits_default": 1e8,
                          "served_counts_initial": False}
    d = next(x for x in s["demands"] if x["id"] == "hq-branch")
    # Relayed over the two dead DWDM links out of the initial fill only: not served.
    assert d["served_fraction"] == 0.0 and d["served_fraction_with_initial"] > 0.0
    counted = run("network", "simulate", str(planner), "--duration", "1h", "--initial-pools",
                  "full", "--count-initial-fill", "--json")
    dc = next(x for x in json.loads(counted.stdout)["demands"] if x["id"] == "hq-branch")
    assert dc["served_fraction"] == d["served_fraction_with_initial"]
    text = run("network", "simulate", str(planner), "--duration", "1h")
    assert "hq-dc2: Raman noise: QBER 46 %" in text.stdout
    assert "hq-branch not met: both paths contain a zero-rate link: " in text.stdout
    assert "critical qber-abort          hq-dc2       from 0.00 h active, 60 steps" in text.stdout
