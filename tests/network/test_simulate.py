"""The network twin's acceptance: key conservation, cuts and rerouting, fallback time,
eavesdropper quarantine, seeded reproducibility."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qnetkit.network.simulate import simulate
from qnetkit.network.topology import parse_topology

HOUR = 3600.0


def _topo(links: list[dict[str, Any]], demands: list[dict[str, Any]],
          scenario: list[dict[str, Any]] | None = None, **kw: Any) -> Any:
    nodes = sorted({e for ln in links for e in (ln["a"], ln["b"])})
    return parse_topology({
        "name": "t", "step_s": 60,
        "nodes": [{"id": n} for n in nodes],
        "links": links, "demands": demands, "scenario": scenario or [], **kw,
    })


def line(pool_bits: float = 1e12, **link_kw: Any) -> list[dict[str, Any]]:
    return [{"id": "AB", "a": "A", "b": "B", "length_km": 20, "pool_capacity_bits": pool_bits,
             **link_kw},
            {"id": "BC", "a": "B", "b": "C", "length_km": 30, "pool_capacity_bits": pool_bits,
             **link_kw}]


def test_key_conservation_on_relay() -> None:
    # Demand far above what the links make: every relayed bit is limited by the hops.
    topo = _topo(line(), [{"id": "AC", "a": "A", "b": "C", "rate_bps": 5e7}])
    r = simulate(topo, duration_s=6 * HOUR, seed=0, initial_pools=3600.0)
    delivered = r.demand_delivered_bits[0].sum()
    relayed = r.relayed_bits_per_link
    assert relayed is not None
    # Every relayed bit consumed one bit on each hop (one-time pad hop by hop)...
    assert relayed[0] == pytest.approx(delivered, rel=1e-12)
    assert relayed[1] == pytest.approx(delivered, rel=1e-12)
    # ...and never more than the hops supplied (initial pool + production).
    initial = np.minimum(1e12, np.array([r.link_rate_bps[i, 0] for i in range(2)]) * 3600)
    produced = r.link_rate_bps.sum(axis=1) * r.step_s
    assert delivered <= (initial + produced).min() * (1 + 1e-12)
    # Pools balance exactly (no capacity cap reached here).
    end = r.link_pool_bits[:, -1]
    assert np.allclose(end, initial + produced - relayed, rtol=1e-9, atol=1.0)
    # The bottleneck hop (30 km, slower) is drained: served fraction below 1.
    assert delivered < 5e7 * 6 * HOUR
    assert end[1] < 1e-6 * initial[1] + 1.0


def test_cut_on_only_path_drops_refuse_demand_and_counts_fallback() -> None:
    pool = 2e8  # a few minutes of production: a 4 h cut drains it
    cut = [{"at_s": 2 * HOUR, "event": "cut", "link": "AB"},
           {"at_s": 6 * HOUR, "event": "repair", "link": "AB"}]
    demands = [{"id": "refuse", "a": "A", "b": "C", "rate_bps": 2e5, "policy": "refuse"},
               {"id": "pqc", "a": "A", "b": "C", "rate_bps": 2e5, "policy": "fallback-pqc",
                "priority": 2}]
    r = simulate(_topo(line(pool), demands, cut), duration_s=10 * HOUR, seed=0)
    s = {d["id"]: d for d in r.summary()["demands"]}
    # 4 h without the only path (plus re-authentication) out of 10 h: served about 58 %.
    assert 0.45 < s["refuse"]["served_fraction"] < 0.65
    assert s["refuse"]["fallback_s"] == 0.0
    # The fallback demand spends the outage in PQC: about 4 h 10 min, less what the pool held.
    assert 3.5 * HOUR < s["pqc"]["fallback_s"] < 4.3 * HOUR
    incident = next(i for i in r.incidents if i["kind"] == "fiber-cut")
    assert incident["detected_s"] == pytest.approx(2 * HOUR + 60)


def test_cut_with_alternative_path_reroutes() -> None:
    pool = 2e8
    links = [*line(pool),
             {"id": "AD", "a": "A", "b": "D", "length_km": 15, "pool_capacity_bits": pool},
             {"id": "DC", "a": "D", "b": "C", "length_km": 15, "pool_capacity_bits": pool}]
    cut = [{"at_s": 2 * HOUR, "event": "cut", "link": "AB"},
           {"at_s": 6 * HOUR, "event": "repair", "link": "AB"}]
    r = simulate(_topo(links, [{"id": "AC", "a": "A", "b": "C", "rate_bps": 2e5}], cut),
                 duration_s=10 * HOUR, seed=0)
    d = r.summary()["demands"][0]
    assert d["served_fraction"] > 0.999
    # During the cut, the A-D-C path carried it.
    relayed = r.relayed_bits_per_link
    assert relayed is not None and relayed[2] > 0 and relayed[3] > 0


def test_eavesdropper_detected_quarantined_and_avoided() -> None:
    links = [*line(2e8),
             {"id": "AD", "a": "A", "b": "D", "length_km": 15, "pool_capacity_bits": 2e8},
             {"id": "DC", "a": "D", "b": "C", "length_km": 15, "pool_capacity_bits": 2e8}]
    scen = [{"at_s": 3 * HOUR, "event": "eavesdropper", "link": "AD"},
            {"at_s": 5 * HOUR, "event": "eavesdropper-off", "link": "AD"}]
    r = simulate(_topo(links, [{"id": "AC", "a": "A", "b": "C", "rate_bps": 2e5}], scen),
                 duration_s=8 * HOUR, seed=0)
    eve = next(i for i in r.incidents if i["kind"] == "eavesdropper")
    assert eve["detected_s"] == pytest.approx(3 * HOUR + 60)  # the first block after it
    k0, k1 = int(3 * HOUR / 60) + 1, int(5 * HOUR / 60)
    assert not r.link_up[2, k0:k1].any()  # quarantined until cleared
    assert r.link_up[2, k1 + 11 :].all()  # back after re-authentication (10 min)
    assert r.link_qber[2, k0] == pytest.approx(0.25, abs=0.01)
    assert r.summary()["demands"][0]["served_fraction"] > 0.999
    assert any(a["kind"] == "qber-abort" and a["link"] == "AD" for a in r.alarms)


def test_seeded_faults_reproduce_and_differ() -> None:
    links = [dict(ln, mtbf_h=6.0, mttr_h=1.0) for ln in line(2e8)]
    topo = _topo(links, [{"id": "AC", "a": "A", "b": "C", "rate_bps": 2e5}])
    a = simulate(topo, duration_s=2 * 86400, seed=7)
    b = simulate(topo, duration_s=2 * 86400, seed=7)
    c = simulate(topo, duration_s=2 * 86400, seed=8)
    assert np.array_equal(a.link_up, b.link_up)
    assert np.array_equal(a.demand_delivered_bits, b.demand_delivered_bits)
    assert a.incidents == b.incidents
    assert not np.array_equal(a.link_up, c.link_up)
    # MTBF 6 h, MTTR 1 h: availability about 6/7 per link (renewal theory), within noise.
    assert 0.7 < a.link_up.mean() < 0.95


def test_ageing_and_raman_lower_the_rate() -> None:
    links = [{"id": "AB", "a": "A", "b": "B", "length_km": 20},
             {"id": "AB2", "a": "A", "b": "B", "length_km": 20,
              "ageing": {"efficiency_loss_per_day": 0.2}},
             {"id": "AB3", "a": "A", "b": "B", "length_km": 20,
              "classical_channels": [{"launch_power_dbm": -15, "load_profile": "business"}]}]
    r = simulate(_topo(links, []), duration_s=86400, seed=0)
    rate = r.link_rate_bps
    assert rate[1, -1] < 0.85 * rate[0, -1]  # 20 %/day efficiency loss, at the end of day 1
    noon, night = int(13 * HOUR / 60), int(2 * HOUR / 60)
    assert rate[2, noon] < rate[2, night] < rate[0, night]  # Raman follows the traffic
    assert r.link_qber[2, noon] > r.link_qber[0, noon]


def test_satellite_link_only_during_passes() -> None:
    links = [{"id": "SAT", "a": "G", "b": "S", "kind": "satellite", "length_km": 1200,
              "loss_db_per_km": 0.0, "extra_loss_db": 20.0,
              "passes": {"period_s": 6 * HOUR, "duration_s": 600, "first_s": HOUR}}]
    topo = parse_topology({"name": "s", "step_s": 60,
                           "nodes": [{"id": "G", "kind": "ground-station"},
                                     {"id": "S", "kind": "satellite"}],
                           "links": links})
    r = simulate(topo, duration_s=86400, seed=0)
    up = r.link_up[0]
    assert up.sum() == 4 * 10  # four 10-minute passes a day, 60 s steps
    assert up[60:70].all() and not up[70:420].any()
    assert r.link_rate_bps[0][up].min() > 0 and r.link_rate_bps[0][~up].max() == 0


def test_monte_carlo_link_engine_on_request() -> None:
    links = [{"id": "MC", "a": "A", "b": "B", "length_km": 10,
              "qkd": {"engine": "monte-carlo", "pulse_rate_hz": 1e8}},
             {"id": "AN", "a": "A", "b": "B", "length_km": 10,
              "qkd": {"pulse_rate_hz": 1e8}}]
    r = simulate(_topo(links, []), duration_s=2 * HOUR, seed=3)
    mc, an = r.link_rate_bps[:, 0]
    # The finite-key Monte-Carlo block makes less than the asymptotic analytic rate, but the
    # same order: it keys one basis only (the other is announced as test basis, Lim et al.
    # 2014), about half of the two-basis key; measured mc / an = 0.16 with seed 3.
    assert 0.1 * an < mc < an
    assert 0.02 < r.link_qber[0, 0] < 0.05


def test_higher_priority_is_served_first_when_key_is_short() -> None:
    demands = [{"id": "low", "a": "A", "b": "C", "rate_bps": 5e5, "priority": 1},
               {"id": "high", "a": "A", "b": "C", "rate_bps": 5e5, "priority": 9}]
    r = simulate(_topo(line(2e8), demands), duration_s=6 * HOUR, seed=0)
    s = {d["id"]: d["served_fraction"] for d in r.summary()["demands"]}
    assert s["high"] > 0.99 and 0.0 < s["low"] < 0.9


def test_pool_capacity_does_not_cap_throughput() -> None:
    # Pools of 2e7 bits with 60 s steps: capping before relaying limited any relay to
    # 2e7 / 60 s = 333 kbit/s (found by a sweep). Key made in a step is usable in that step;
    # the capacity only bounds what stays stored.
    links = line(2e7)
    r = simulate(_topo(links, [{"id": "AC", "a": "A", "b": "C", "rate_bps": 1e6}]),
                 duration_s=HOUR, seed=0)
    bottleneck = float(r.link_rate_bps[:, 0].min())
    assert bottleneck > 5e5
    served = r.summary()["demands"][0]["served_fraction"]
    assert served == pytest.approx(bottleneck / 1e6, rel=1e-9)
    assert r.link_pool_bits.max() <= 2e7
