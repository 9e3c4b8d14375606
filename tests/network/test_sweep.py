"""Parameter sweeps: path syntax ([*] skips items without the parent), the product of values,
per-link and per-demand columns equal to a single run's summary, errors naming the item, local
processes and a Dask cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from qnetkit.network.simulate import simulate
from qnetkit.network.sweep import (
    DemandFigures,
    LinkFigures,
    Param,
    SweepError,
    SweepRow,
    parse_param,
    run_sweep,
    set_field,
    table_columns,
    variants,
)
from qnetkit.network.topology import parse_topology

QNETKIT = Path(sys.executable).with_name("qnetkit")

DOC = {
    "name": "line", "step_s": 300,
    "nodes": [{"id": "A"}, {"id": "B"}, {"id": "C"}],
    "links": [{"id": "AB", "a": "A", "b": "B", "length_km": 20},
              {"id": "BC", "a": "B", "b": "C", "length_km": 20}],
    "demands": [{"id": "AC", "a": "A", "b": "C", "rate_bps": 1e5}],
}


def _doc(**changes: object) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(DOC))
    doc.update(changes)
    return doc


# Only AB carries a classical DWDM channel (Raman noise in its quantum channel).
MIXED = _doc(links=[{"id": "AB", "a": "A", "b": "B", "length_km": 20,
                     "classical_channels": [{"launch_power_dbm": -10.0}]},
                    {"id": "BC", "a": "B", "b": "C", "length_km": 20}])


def test_parse_param_ranges_and_lists() -> None:
    assert parse_param("links[*].length_km=20:80:20").values == (20.0, 40.0, 60.0, 80.0)
    assert parse_param("demands[0].policy=refuse,fallback-pqc").values == (
        "refuse", "fallback-pqc")
    for bad in ("links[*].length_km", "links[x].a=1", "a=5:1:1", "a=1:5:0"):
        with pytest.raises(ValueError):
            parse_param(bad)


def test_set_field_wildcards_and_errors() -> None:
    doc = _doc()
    assert set_field(doc, "links[*].length_km", 55.0) == 2
    assert [ln["length_km"] for ln in doc["links"]] == [55.0, 55.0]
    set_field(doc, "links[1].qkd.pulse_rate_hz", 1e8)
    links = doc["links"]
    assert links[1]["qkd"] == {"pulse_rate_hz": 1e8} and "qkd" not in links[0]
    with pytest.raises(SweepError, match=r"links\[5\]: does not exist \(links has 2\)"):
        set_field(doc, "links[5].length_km", 1.0)


def test_star_sets_items_with_the_parent_and_skips_the_others() -> None:
    doc = json.loads(json.dumps(MIXED))
    assert set_field(doc, "links[*].classical_channels[*].launch_power_dbm", 3.0) == 1
    assert doc["links"][0]["classical_channels"] == [{"launch_power_dbm": 3.0}]
    assert "classical_channels" not in doc["links"][1]  # skipped, not given an empty list
    # A mapping whose model default is a mapping counts as present: every link gets qkd.
    assert set_field(doc, "links[*].qkd.pulse_rate_hz", 5e8) == 2
    assert [ln["qkd"] for ln in doc["links"]] == [{"pulse_rate_hz": 5e8}] * 2
    # `passes` defaults to None (a fiber, not a satellite link): no link has it.
    with pytest.raises(SweepError) as exc:
        set_field(doc, "links[*].passes.period_s", 100.0)
    assert str(exc.value) == ("links[*].passes.period_s: no item has this field (links[0] "
                              "(id 'AB') has no 'passes'; 1 more skipped)")
    assert "passes" not in doc["links"][0]
    # An index names one item: a missing list there is an error naming it by its id.
    with pytest.raises(SweepError) as exc:
        set_field(doc, "links[1].classical_channels[0].launch_power_dbm", 1.0)
    assert str(exc.value) == ("links[1].classical_channels[0].launch_power_dbm: links[1] "
                              "(id 'BC'): has no 'classical_channels'")


def test_yaml_aliases_are_not_shared_between_items() -> None:
    # `qkd: *qkd` makes one dict shared by both links; setting links[0] must not change links[1]
    # (copy.deepcopy keeps the sharing, which the first version of variants() relied on).
    text = yaml.safe_dump(_doc()).replace(
        "length_km: 20\n", "length_km: 20\n  qkd: &qkd {protocol: decoy-bb84}\n", 1)
    text = text.replace("b: C\n  id: BC\n", "b: C\n  id: BC\n  qkd: *qkd\n")
    doc = yaml.safe_load(text)
    assert doc["links"][0]["qkd"] is doc["links"][1]["qkd"]
    [(_, d)] = variants(doc, [Param("links[0].qkd.mu", (0.3,))])
    assert d["links"][0]["qkd"] == {"protocol": "decoy-bb84", "mu": 0.3}
    assert d["links"][1]["qkd"] == {"protocol": "decoy-bb84"}


def test_invalid_point_names_every_problem_and_the_item() -> None:
    with pytest.raises(SweepError) as exc:
        run_sweep(DOC, [Param("links[*].length_km", (10.0, -5.0))], duration_s=600, seed=0)
    lines = exc.value.lines
    assert len(lines) == 2, lines
    for ident, line in zip(("AB", "BC"), lines, strict=True):
        assert line.startswith(f"sweep point links[*].length_km=-5.0: links[{ident == 'BC':d}] "
                               f"(id '{ident}'): length_km: "), line
        assert "greater than 0" in line


def test_rows_carry_the_single_runs_per_link_and_per_demand_figures() -> None:
    param = Param("links[*].classical_channels[*].launch_power_dbm", (-10.0, 0.0))
    rows = run_sweep(MIXED, [param], duration_s=7200, seed=1, workers=1)
    assert [r.point for r in rows] == [{param.path: -10.0}, {param.path: 0.0}]
    for row, (_, doc) in zip(rows, variants(MIXED, [param]), strict=True):
        s = simulate(parse_topology(doc), duration_s=7200, seed=1).summary()
        flat = row.flat()
        for ln in s["links"]:
            assert flat[f"link:{ln['id']}:rate_bps"] == ln["mean_rate_bps"]
            assert flat[f"link:{ln['id']}:qber"] == ln["mean_qber"]
            assert flat[f"link:{ln['id']}:availability"] == ln["availability"]
        [d] = s["demands"]
        assert flat["demand:AC:served_fraction"] == d["served_fraction"]
        assert flat.get("demand:AC:met") == d.get("met")
        assert row.secret_bits == sum(ln["secret_bits"] for ln in s["links"])
    # Raman noise from the stronger launch power raises AB's QBER; BC has no channel.
    assert rows[1].per_link["AB"].qber > rows[0].per_link["AB"].qber  # type: ignore[operator]
    assert rows[1].per_link["BC"] == rows[0].per_link["BC"]


def test_initial_pools_reach_every_run() -> None:
    # 1 Mbit/s wanted over two 60 km hops that make far less: production serves a fraction;
    # a full pool (1e8 bits by default) adds its key on top.
    doc = _doc(demands=[{"id": "AC", "a": "A", "b": "C", "rate_bps": 1e6}])
    param = Param("links[*].length_km", (60.0,))
    [empty] = run_sweep(doc, [param], duration_s=3600, seed=0, workers=1)
    [full] = run_sweep(doc, [param], duration_s=3600, seed=0, workers=1, initial_pools="full")
    [(_, d)] = variants(doc, [param])
    s = simulate(parse_topology(d), duration_s=3600, seed=0, initial_pools="full").summary()
    assert full.per_demand["AC"].served_fraction_with_initial == \
        s["demands"][0]["served_fraction_with_initial"]
    with_initial = full.per_demand["AC"].served_fraction_with_initial
    assert with_initial is not None and with_initial > empty.per_demand["AC"].served_fraction


def test_rate_falls_with_length_and_points_are_independent() -> None:
    rows = run_sweep(DOC, [Param("links[*].length_km", (20.0, 60.0, 100.0))],
                     duration_s=3600, seed=0, workers=2)
    bits = [r.secret_bits for r in rows]
    assert [r.point["links[*].length_km"] for r in rows] == [20.0, 60.0, 100.0]
    assert bits[0] > 5 * bits[1] > 25 * bits[2] > 0
    # The same point alone gives the same figures (no state shared between runs).
    again = run_sweep(DOC, [Param("links[*].length_km", (60.0,))], duration_s=3600, seed=0,
                      workers=1)
    assert again[0].secret_bits == bits[1]


def _row(n_links: int) -> SweepRow:
    return SweepRow(point={"p": 1}, secret_bits=1.0, mean_availability=1.0, served_fraction=1.0,
                    min_served_fraction=1.0, fallback_s=0.0, incidents=0, wall_s=0.1,
                    per_link={f"L{i}": LinkFigures(1.0, 0.02, 1.0) for i in range(n_links)},
                    per_demand={"D": DemandFigures(0.5, met=False)})


def test_table_shows_per_link_columns_up_to_six_links() -> None:
    shown, footer = table_columns([_row(6)])
    # A terminal shows whether each link made key; rate and QBER are in the CSV and JSON.
    assert [k for k in shown[0] if k.startswith("link:")] == [
        f"link:L{i}:availability" for i in range(6)]
    assert "demand:D:served_fraction" in shown[0] and "demand:D:met" not in shown[0]
    assert "wall_s" not in shown[0]
    assert footer == ("not shown: per-link rate and QBER and per-demand met; the CSV (--out) "
                      "and JSON (--json) have every column")
    shown, footer = table_columns([_row(7)])
    assert not any(k.startswith("link:") for k in shown[0])
    assert footer is not None and "availability of 7 links" in footer
    assert len(_row(7).flat()) == 1 + 6 + 2 + 21 + 1


def test_sweep_on_a_local_dask_cluster(tmp_path: Path) -> None:
    from distributed import LocalCluster

    topo = tmp_path / "line.yaml"
    topo.write_text(yaml.safe_dump(DOC))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,  # type: ignore[no-untyped-call]
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
    # Rows come back in the order of the product, whatever order the cluster finished in.
    assert [r["secret_bits"] for r in rows] == [r.secret_bits for r in local]
    assert [r["link:AB:rate_bps"] for r in rows] == [r.per_link["AB"].rate_bps for r in local]
    assert [r["demands[0].rate_bps"] for r in rows] == [1e5, 1e7] * 3
