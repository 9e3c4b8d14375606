"""The twin tells the truth: availability means key, pools are counted apart, alarms are
episodes, and an unmet demand says why (issue 13, items 1-4)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.registry import get_protocol
from qnetkit.network.diagnosis import clock
from qnetkit.network.routing import allocate
from qnetkit.network.simulate import parse_initial_fill, simulate
from qnetkit.network.topology import parse_topology

HOUR = 3600.0
# 8 classical channels at 0 dBm co-propagating on 45 km: the planner's DWDM fiber.
DWDM_8 = [{"launch_power_dbm": 0.0, "raman_cross_section_per_km_per_nm": 3e-9,
           "load_profile": "flat"}] * 8


def _topo(links: list[dict[str, Any]], demands: list[dict[str, Any]] | None = None,
          scenario: list[dict[str, Any]] | None = None, **kw: Any) -> Any:
    nodes = sorted({e for ln in links for e in (ln["a"], ln["b"])} |
                   {e for d in demands or [] for e in (d["a"], d["b"])})
    return parse_topology({"name": "t", "step_s": 60, "nodes": [{"id": n} for n in nodes],
                           "links": links, "demands": demands or [],
                           "scenario": scenario or [], **kw})


def _link(ident: str, a: str, b: str, km: float, **kw: Any) -> dict[str, Any]:
    return {"id": ident, "a": a, "b": b, "length_km": km, **kw}


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {x["id"]: x for x in items}


def test_raman_dead_link_is_unavailable_with_its_reason_and_an_incident() -> None:
    topo = _topo([_link("dwdm", "A", "B", 45, classical_channels=DWDM_8),
                  _link("dark", "B", "C", 45)])
    r = simulate(topo, duration_s=2 * HOUR, seed=0)
    links = _by_id(r.summary()["links"])
    dead, clean = links["dwdm"], links["dark"]
    # Connected and authenticated all the time (the old "100 % availability")...
    assert dead["connected_fraction"] == 1.0
    # ...but never making key: QBER above the 11 % abort level because of Raman noise.
    assert dead["availability"] == 0.0
    assert dead["secret_bits"] == 0.0
    assert dead["state"] == "no-key" and dead["physical_limit"] is True
    assert dead["mean_qber"] > 0.3
    assert dead["reason"] == f"Raman noise: QBER {100 * dead['mean_qber']:.0f} %"
    assert dead["unavailable_s"] == {"qber-abort": 2 * HOUR}
    assert any(i["kind"] == "no-key" and i["link"] == "dwdm" and
               i["detail"].startswith("Raman noise") for i in r.incidents)
    # The same fiber without classical traffic makes key every step.
    assert clean["availability"] == 1.0 and clean["state"] == "ok"
    assert clean["reason"] is None and clean["unavailable_s"] == {}


def test_link_beyond_the_loss_limit_says_by_how_much() -> None:
    topo = _topo([_link("far", "A", "B", 250)])
    link = simulate(topo, duration_s=HOUR, seed=0).summary()["links"][0]
    # The system's limit from the protocol's own curve (Ma et al. 2005 decoy BB84, default
    # preset, GYS devices of their Table I): its maximum distance on the link's 0.2 dB/km fiber.
    spec = get_protocol("decoy-bb84")
    params = spec.params_from(None, {"loss_db_per_km": 0.2})
    limit = 0.2 * max_distance_km(lambda d: spec.evaluate(params, d), tol_km=0.01)
    assert 25.0 < limit < 40.0
    assert link["state"] == "no-key"
    assert link["reason"] == (f"loss 50.0 dB, {50.0 - limit:.1f} dB above the system's limit "
                              f"({limit:.1f} dB)")


def test_availability_counts_steps_with_key_not_steps_connected() -> None:
    cut = [{"at_s": 2 * HOUR, "event": "cut", "link": "AB"},
           {"at_s": 4 * HOUR, "event": "repair", "link": "AB"}]
    r = simulate(_topo([_link("AB", "A", "B", 20)], scenario=cut), duration_s=10 * HOUR)
    link = r.summary()["links"][0]
    # 2 h cut + 10 min re-authentication out of 10 h.
    assert link["availability"] == pytest.approx((10 - 2 - 1 / 6) / 10)
    assert link["state"] == "partial"
    assert link["unavailable_s"] == {"cut": 2 * HOUR, "re-authenticating": 600.0}
    assert link["reason"] == "cut 02:00-04:00; no key 22 % of the time"
    assert link["physical_limit"] is False


def test_initial_fill_modes_and_production_first_accounting() -> None:
    assert parse_initial_fill("empty") == "empty" and parse_initial_fill("FULL") == "full"
    assert parse_initial_fill("600") == 600.0 and parse_initial_fill("600s") == 600.0
    for bad in ("half", "-5", "nan"):
        with pytest.raises(ValueError, match="--initial-pools"):
            parse_initial_fill(bad)
    links = [_link("AB", "A", "B", 20, pool_capacity_bits=5e8)]
    topo = _topo(links, [{"id": "d", "a": "A", "b": "B", "rate_bps": 1e3}])
    rate = simulate(topo, duration_s=60).link_rate_bps[0, 0]
    for fill, expected in (("empty", 0.0), ("full", 5e8), (60.0, 60.0 * rate)):
        r = simulate(topo, duration_s=HOUR, initial_pools=fill)
        s = r.summary()
        assert s["links"][0]["initial_pool_bits"] == pytest.approx(expected)
        assert s["pools"]["initial_fill"] == fill
        # A demand far below production is served by production: nothing from the fill.
        d = s["demands"][0]
        assert d["served_from_initial_bits"] == 0.0
        assert d["served_fraction"] == pytest.approx(1.0) and d["met"] is True
    # Allocation spends production first; the fill only for what production cannot cover.
    pool, initial = np.array([100.0, 50.0]), np.array([80.0, 0.0])
    got, old = allocate(60.0, [[0, 1]], pool, initial)
    # Hop 0 holds 20 bits of production: 40 of the 60 come from its initial fill.
    assert (got, old) == (50.0, 30.0)  # capped by hop 1 (50 bits); 30 of them from hop 0's fill
    assert list(pool) == [50.0, 0.0] and list(initial) == [50.0, 0.0]


def _two_dead_paths(power_dbm: float = 0.0) -> Any:
    """HQ to BRANCH over two fibers both carrying 8 DWDM channels (Raman), plus a cut."""
    dwdm = [{**ch, "launch_power_dbm": power_dbm} for ch in DWDM_8]
    return _topo(
        [_link("hq-dc2", "HQ", "DC2", 45, classical_channels=dwdm),
         _link("dc2-branch", "DC2", "BRANCH", 10),
         _link("hq-exchs", "HQ", "EXCHS", 10),
         _link("exchs-branch", "EXCHS", "BRANCH", 30)],
        [{"id": "hq-branch", "a": "HQ", "b": "BRANCH", "rate_bps": 1e4}],
        [{"at_s": 5.5 * HOUR, "event": "cut", "link": "exchs-branch"},
         {"at_s": 11 * HOUR, "event": "repair", "link": "exchs-branch"}])


def test_unmet_demand_names_the_zero_rate_links_on_both_paths() -> None:
    r = simulate(_two_dead_paths(), duration_s=12 * HOUR, initial_pools="full")
    d = r.summary()["demands"][0]
    # With full pools the demand lives on the dead link's initial fill for a while...
    assert d["served_from_initial_bits"] > 0
    assert d["served_fraction_with_initial"] > d["served_fraction"]
    # ...but the served fraction counts production only: the 5.5 h cut (and 10 min
    # re-authentication) of the only live path are lost, which is 47 % of 12 h.
    assert d["served_fraction"] == pytest.approx((12 - 5.5 - 1 / 6) / 12, abs=0.01)
    assert d["met"] is False
    assert d["reason"].startswith(
        "both paths contain a zero-rate link: hq-dc2 (Raman noise: QBER ")
    assert "exchs-branch (cut 05:30-11:00)" in d["reason"]
    assert "; served from the initial pool until " in d["reason"]
    # The routes over time: through DC2 or EXCHS, each with its trusted node.
    routes = {tuple(rt["trusted_nodes"]) for seg in d["paths"] for rt in seg["routes"]}
    assert routes == {("DC2",), ("EXCHS",)}


def test_empty_pools_serve_nothing_when_every_path_is_dead() -> None:
    topo = _two_dead_paths()
    links = [ln.model_dump() for ln in topo.links]
    links[3]["classical_channels"] = DWDM_8  # the second fiber carries DWDM as well
    data = {**topo.model_dump(), "links": links, "scenario": []}
    r = simulate(parse_topology(data), duration_s=3 * HOUR)
    d = r.summary()["demands"][0]
    assert d["delivered_bits"] == 0.0 and d["served_fraction"] == 0.0
    assert d["reason"].startswith("both paths contain a zero-rate link: ")
    assert "hq-dc2 (Raman noise: QBER " in d["reason"]
    assert "exchs-branch (Raman noise: QBER " in d["reason"]
    assert d["headroom"]["worst_hour_deliverable_bps"] == 0.0


def test_headroom_is_the_worst_hours_max_flow() -> None:
    links = [_link("AB", "A", "B", 20), _link("BC", "B", "C", 60)]
    r = simulate(_topo(links, [{"id": "AC", "a": "A", "b": "C", "rate_bps": 1e6}]),
                 duration_s=2 * HOUR)
    s = r.summary()
    d = s["demands"][0]
    bc = _by_id(s["links"])["BC"]["mean_rate_bps"]
    # A line: the deliverable rate is the slower hop's (60 km) production.
    assert bc < 1e6
    assert d["headroom"]["worst_hour_deliverable_bps"] == pytest.approx(bc, rel=1e-6)
    assert d["headroom"]["ratio"] == pytest.approx(bc / 1e6, rel=1e-6)
    assert d["reason"].startswith("short: in the worst hour (")
    assert d["met"] is False


def test_disconnected_sites_are_said_to_be_so() -> None:
    topo = _topo([_link("AB", "A", "B", 20), _link("CD", "C", "D", 20)],
                 [{"id": "AD", "a": "A", "b": "D", "rate_bps": 10}])
    d = simulate(topo, duration_s=HOUR).summary()["demands"][0]
    assert d["reason"] == "no path: A and D are not connected"
    assert d["paths"][0]["routes"] == []


def test_a_link_stuck_above_abort_is_one_alarm_episode() -> None:
    topo = _topo([_link("dwdm", "A", "B", 45, classical_channels=DWDM_8)])
    r = simulate(topo, duration_s=86400.0)
    aborts = [a for a in r.alarms if a["kind"] == "qber-abort"]
    assert len(aborts) == 1  # was 1,440 records, one per step
    ep = aborts[0]
    assert ep["start_s"] == 0.0 and ep["end_s"] is None and ep["active"] is True
    assert ep["steps"] == 1440 and ep["level"] == "critical"
    assert ep["peak_value"] == pytest.approx(float(r.link_qber[0].max()))
    assert len(r.alarms) <= 3  # one episode per kind


def test_alarm_episode_ends_when_the_eavesdropper_is_quarantined() -> None:
    eve = [{"at_s": HOUR, "event": "eavesdropper", "link": "AB"}]
    r = simulate(_topo([_link("AB", "A", "B", 20)], scenario=eve), duration_s=3 * HOUR)
    ep = next(a for a in r.alarms if a["kind"] == "qber-abort")
    assert ep["start_s"] == HOUR and ep["end_s"] == HOUR + 60 and ep["steps"] == 1
    assert ep["peak_value"] == pytest.approx(0.25, abs=0.02)
    link = r.summary()["links"][0]
    # Quarantined from the step whose QBER gave Eve away to the end of the run.
    assert link["unavailable_s"] == {"quarantined": 2 * HOUR}
    assert link["reason"].startswith("quarantined 01:00-03:00")


def test_clock_formats_run_time() -> None:
    assert clock(0) == "00:00" and clock(5.5 * HOUR) == "05:30"
    assert clock(86400 + 3 * HOUR) == "d2 03:00"


def test_a_trusted_node_down_takes_its_links_and_is_the_reason() -> None:
    # A-B-C with B a trusted relay down from 01:00 to 02:00; A-D-C is the other way round.
    links = [_link("AB", "A", "B", 10), _link("BC", "B", "C", 10),
             _link("AD", "A", "D", 30), _link("DC", "D", "C", 30)]
    scenario = [{"at_s": HOUR, "event": "node-down", "node": "B"},
                {"at_s": 2 * HOUR, "event": "node-up", "node": "B"}]
    r = simulate(_topo(links, [{"id": "AC", "a": "A", "b": "C", "rate_bps": 1e4}], scenario),
                 duration_s=4 * HOUR)
    s = r.summary()
    by = _by_id(s["links"])
    for ident in ("AB", "BC"):
        assert by[ident]["unavailable_s"] == {"node-down": HOUR, "re-authenticating": 600.0}
        assert by[ident]["reason"] == "node B down 01:00-02:00; no key 29 % of the time"
    assert by["AD"]["state"] == "ok" and by["DC"]["state"] == "ok"
    assert next(n for n in s["nodes"] if n["id"] == "B")["down_s"] == HOUR
    assert [i["kind"] for i in r.incidents if i.get("node")] == ["node-down", "node-repair"]
    d = s["demands"][0]
    # Rerouted through D while B was down: the demand is met, its routes show both relays.
    assert d["met"] is True
    relays = [tuple(rt["trusted_nodes"]) for seg in d["paths"] for rt in seg["routes"]]
    assert ("B",) in relays and ("D",) in relays
    during = [seg for seg in d["paths"] if seg["from_s"] <= 1.5 * HOUR < seg["to_s"]]
    assert [[rt["trusted_nodes"] for rt in seg["routes"]] for seg in during] == [[["D"]]]
