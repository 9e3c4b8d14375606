"""Issue 13's acceptance: the planner's 5-site metro with 8 x 0 dBm of DWDM traffic on two
fibers (45 km and 30 km). The DWDM links make no key (Raman noise), the demand whose both
paths cross them is reported unmet with that reason, and a sweep over the launch power shows
its served fraction falling to 0 with empty initial pools."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from qnetkit.network.simulate import simulate
from qnetkit.network.topology import load_topology
from qnetkit.network.viability import validate_warnings

PLANNER = Path(__file__).parent / "data" / "planner-dwdm.yaml"
QNETKIT = Path(sys.executable).with_name("qnetkit")


def test_validate_warns_before_any_simulation() -> None:
    warnings = dict(validate_warnings(load_topology(PLANNER)))
    assert set(warnings) == {"links[1]", "links[4]"}
    assert warnings["links[1]"].startswith("hq-dc2 cannot make key: Raman noise: QBER 4")
    assert warnings["links[4]"].startswith("exchs-branch cannot make key: Raman noise: QBER 4")


def test_dwdm_links_are_unavailable_and_the_demand_unmet_with_its_reason() -> None:
    r = simulate(load_topology(PLANNER), duration_s=86400.0, seed=1)
    s = r.summary()
    links = {ln["id"]: ln for ln in s["links"]}
    for ident in ("hq-dc2", "exchs-branch"):
        ln = links[ident]
        # Was "100 % availability": connected all day, but never making key.
        assert ln["connected_fraction"] == 1.0
        assert ln["availability"] == 0.0 and ln["secret_bits"] == 0.0
        assert ln["state"] == "no-key" and ln["physical_limit"] is True
        assert 0.38 < ln["mean_qber"] < 0.5  # the planner saw 38-44 %
        assert ln["reason"] == f"Raman noise: QBER {100 * ln['mean_qber']:.0f} %"
    # One alarm episode per dead link, still active, not 1,440 records each.
    aborts = [a for a in s["alarms"] if a["kind"] == "qber-abort"]
    assert sorted(a["link"] for a in aborts) == ["exchs-branch", "hq-dc2"]
    assert all(a["steps"] == 1440 and a["active"] for a in aborts)
    demands = {d["id"]: d for d in s["demands"]}
    d = demands["hq-branch"]
    assert d["served_fraction"] == 0.0 and d["delivered_bits"] == 0.0 and d["met"] is False
    assert d["reason"] == (
        "both paths contain a zero-rate link: "
        f"exchs-branch ({links['exchs-branch']['reason']}), hq-dc2 ({links['hq-dc2']['reason']})")
    assert d["headroom"]["worst_hour_deliverable_bps"] == 0.0
    assert demands["hq-dc1"]["met"] is True


def test_full_pools_no_longer_pass_for_service() -> None:
    # The old default (pools start full) served the demand from key nobody made.
    s = simulate(load_topology(PLANNER), duration_s=2 * 3600.0, seed=1,
                 initial_pools="full").summary()
    d = next(x for x in s["demands"] if x["id"] == "hq-branch")
    assert d["served_fraction_with_initial"] == pytest.approx(1.0)
    assert d["served_from_initial_bits"] == d["delivered_bits"]
    assert d["served_fraction"] == 0.0 and d["met"] is False
    assert "; served from the initial pool until " in d["reason"]


def test_sweep_over_launch_power_falls_to_zero_with_empty_pools(tmp_path: Path) -> None:
    r = subprocess.run(
        [str(QNETKIT), "sweep", str(PLANNER), "--duration", "2h", "--workers", "1",
         "--initial-pools", "empty", "--json",
         "--param", "links[*].classical_channels[*].launch_power_dbm=-40,-30,-20,-10,0"],
        capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    power = "links[*].classical_channels[*].launch_power_dbm"
    served = {row[power]: row["demand:hq-branch:served_fraction"] for row in runs}
    availability = {row[power]: row["link:hq-dc2:availability"] for row in runs}
    assert sorted(served) == [-40, -30, -20, -10, 0]
    assert served[-40] == pytest.approx(1.0)  # quiet traffic: the demand is met
    assert served[0] == 0.0  # 8 x 0 dBm: nothing
    values = [served[p] for p in sorted(served)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert availability[-40] == 1.0 and availability[0] == 0.0
