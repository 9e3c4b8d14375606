"""Synthetic topologies: deterministic per seed, valid, connected, the intended shapes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from qnetkit.network.generate import ROUTE_FACTOR, generate, write_topology
from qnetkit.network.topology import load_topology, parse_topology


def _graph(d: dict[str, Any]) -> nx.Graph:
    g: nx.Graph = nx.Graph()
    g.add_nodes_from(n["id"] for n in d["nodes"])
    g.add_edges_from((ln["a"], ln["b"]) for ln in d["links"])
    return g


@pytest.fixture(scope="module")
def waxman1000() -> dict[str, Any]:
    return generate(1000, "waxman", 7)


def test_same_seed_same_topology() -> None:
    for model in ("waxman", "grid", "ring"):
        assert generate(120, model, 3) == generate(120, model, 3)


def test_other_seed_other_topology() -> None:
    a, b = generate(120, "waxman", 3), generate(120, "waxman", 4)
    assert a["nodes"] != b["nodes"] and a["links"] != b["links"]
    assert generate(120, "ring", 3)["links"] != generate(120, "ring", 4)["links"]
    assert generate(120, "grid", 3)["demands"] != generate(120, "grid", 4)["demands"]


@pytest.mark.parametrize("model", ["waxman", "grid", "ring"])
@pytest.mark.parametrize("n", [2, 3, 5, 17, 100])
def test_valid_and_connected(model: Any, n: int) -> None:
    d = generate(n, model, 1)
    topo = parse_topology(d, f"{model}-{n}")
    assert len(topo.nodes) == n
    assert nx.is_connected(_graph(d))
    assert len({(ln.a, ln.b) for ln in topo.links}) == len(topo.links)  # no parallel links
    assert all(ln.qkd.protocol == "decoy-bb84" and ln.qkd.preset == "gys2004"
               for ln in topo.links)


def test_waxman_density_and_lengths(waxman1000: dict[str, Any]) -> None:
    topo = parse_topology(waxman1000)
    per_node = len(topo.links) / len(topo.nodes)
    assert 2.0 <= per_node <= 3.0
    assert nx.is_connected(_graph(waxman1000))
    lengths = sorted(ln.length_km for ln in topo.links)
    assert lengths[0] >= 1.0
    assert sum(length < 100.0 for length in lengths) / len(lengths) > 0.9
    assert any(ln.mtbf_h is not None for ln in topo.links)
    assert sum(ln.mtbf_h is not None for ln in topo.links) < 0.3 * len(topo.links)


def test_length_is_route_factor_times_distance(waxman1000: dict[str, Any]) -> None:
    pos = {n["id"]: (n["x_km"], n["y_km"]) for n in waxman1000["nodes"]}
    for ln in waxman1000["links"][:200]:
        (xa, ya), (xb, yb) = pos[ln["a"]], pos[ln["b"]]
        expected = max(1.0, ROUTE_FACTOR * math.hypot(xa - xb, ya - yb))
        assert ln["length_km"] == pytest.approx(expected, abs=0.02)


def test_grid_shape() -> None:
    d = generate(100, "grid", 0)
    g = _graph(d)
    assert g.number_of_edges() == 2 * 10 * 9
    assert max(dict(g.degree()).values()) == 4 and min(dict(g.degree()).values()) == 2
    # 12 nodes: 3 rows of 4 -> 3*3 horizontal + 2*4 vertical links.
    assert len(generate(12, "grid", 0)["links"]) == 17
    lengths = {ln["length_km"] for ln in d["links"]}
    assert len(lengths) == 1  # a regular grid


def test_ring_shape() -> None:
    n = 50
    d = generate(n, "ring", 2)
    g = _graph(d)
    ids = [node["id"] for node in d["nodes"]]
    for i in range(n):
        assert g.has_edge(ids[i], ids[(i + 1) % n])
    assert g.number_of_edges() == n + n // 10  # the ring plus a few chords
    assert min(dict(g.degree()).values()) >= 2
    assert all(ln["length_km"] < 100.0 for ln in d["links"])
    assert len(generate(4, "ring", 2)["links"]) == 4  # too small for chords


def test_demands() -> None:
    d = generate(200, "waxman", 5)
    demands = d["demands"]
    assert len(demands) == 20
    assert all(x["a"] != x["b"] for x in demands)
    assert all(1000.0 <= x["rate_bps"] <= 10000.0 for x in demands)
    assert sum(x["policy"] == "fallback-pqc" for x in demands) == 10
    assert len(generate(5, "ring", 0)["demands"]) == 1
    assert len(generate(50, "grid", 0, demands=7)["demands"]) == 7
    assert generate(50, "grid", 0, demands=0)["demands"] == []
    endpoints = {x["a"] for x in demands} | {x["b"] for x in demands}
    kinds = {n["id"]: n["kind"] for n in d["nodes"]}
    assert all(kinds[e] == "kme" for e in endpoints)


def test_area_sets_the_scale() -> None:
    small = generate(100, "waxman", 1, area_km=50.0)
    xs = [n["x_km"] for n in small["nodes"]] + [n["y_km"] for n in small["nodes"]]
    assert min(xs) >= 0.0 and max(xs) <= 50.0
    parse_topology(small)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        generate(1, "ring", 0)
    with pytest.raises(ValueError, match="unknown model"):
        generate(10, "torus", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="area_km"):
        generate(10, "grid", 0, area_km=0.0)
    with pytest.raises(ValueError, match="demands"):
        generate(10, "grid", 0, demands=-1)


def test_write_and_load(tmp_path: Path) -> None:
    d = generate(60, "waxman", 9)
    path = write_topology(d, tmp_path / "sub" / "t.yaml")
    topo = load_topology(path)
    assert len(topo.nodes) == 60 and len(topo.links) == len(d["links"])
    assert topo.demands[0].rate_bps == d["demands"][0]["rate_bps"]
