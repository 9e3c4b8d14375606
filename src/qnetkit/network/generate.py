"""Synthetic topologies for scaling studies: Waxman random graphs, grids and rings.

The Waxman model [B. M. Waxman, "Routing of multipoint connections", IEEE J. Sel. Areas Commun.
6, 1617 (1988)] joins two nodes at distance d with probability beta * exp(-d / (alpha * L)),
L the largest distance. Here the decay length alpha * L is tied to the mean node spacing, so
that links stay metro-sized (mostly < 100 km, where decoy BB84 still makes keys) at any size,
and beta is calibrated on the drawn positions so that the expected number of links is
``LINKS_PER_NODE`` per node (Waxman's parameters, solved for a target density instead of
guessed). Pairs beyond ``CUTOFF_LENGTHS`` decay lengths (weight < e^-8) are skipped, which makes
the construction O(n) with cell lists rather than O(n^2). Disconnected pieces are then joined
by their shortest gaps, so the graph is always connected.

Everything is drawn from one ``numpy.random.Generator(PCG64(seed))`` in a fixed order: the
same arguments give the same topology.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np
import yaml

from qnetkit._types import FloatArray, IntArray

Model = Literal["waxman", "grid", "ring"]

NODE_SPACING_KM = 15.0  # mean distance between neighbouring nodes when area_km is not given
ROUTE_FACTOR = 1.2  # fiber route length / straight-line distance
MIN_LENGTH_KM = 1.0
LINKS_PER_NODE = 2.5  # Waxman target: mean degree 5
DECAY_SPACINGS = 1.0  # Waxman decay length alpha * L, in mean node spacings
CUTOFF_LENGTHS = 8.0  # pairs farther than this many decay lengths are never joined
MTBF_FRACTION = 0.1  # share of links given a finite mean time between cuts
PULSE_RATE_HZ = 1e9


def _area(n_nodes: int, area_km: float | None) -> float:
    """Side of the square the nodes are placed in (default: NODE_SPACING_KM * sqrt(n))."""
    side = NODE_SPACING_KM * math.sqrt(n_nodes) if area_km is None else float(area_km)
    if not (math.isfinite(side) and side > 0):
        raise ValueError(f"area_km must be positive, got {area_km!r}")
    return side


def _cell_pairs(xy: FloatArray, cell_km: float) -> Iterator[tuple[IntArray, IntArray, FloatArray]]:
    """All pairs i < j closer than ``cell_km``, block by block in a fixed order: (i, j, d)."""
    cells = np.floor(xy / cell_km).astype(np.int64)
    buckets: dict[tuple[int, int], list[int]] = {}
    for idx, (cx, cy) in enumerate(cells.tolist()):
        buckets.setdefault((cx, cy), []).append(idx)
    members = {key: np.asarray(v, dtype=np.int64) for key, v in buckets.items()}
    for key in sorted(members):
        here = members[key]
        for dx, dy in ((0, 0), (1, -1), (1, 0), (1, 1), (0, 1)):  # half stencil: each pair once
            other = members.get((key[0] + dx, key[1] + dy))
            if other is None:
                continue
            ii = np.repeat(here, len(other))
            jj = np.tile(other, len(here))
            if (dx, dy) == (0, 0):
                keep = ii < jj
                ii, jj = ii[keep], jj[keep]
            d = np.hypot(*(xy[ii] - xy[jj]).T)
            close = d < cell_km
            yield ii[close], jj[close], d[close]


def _waxman_edges(xy: FloatArray, rng: np.random.Generator,
                  spacing_km: float) -> list[tuple[int, int]]:
    """Waxman edges with beta calibrated to LINKS_PER_NODE links per node (see module doc)."""
    n = len(xy)
    decay = DECAY_SPACINGS * spacing_km
    cutoff = CUTOFF_LENGTHS * decay
    total_weight = sum(float(np.exp(-d / decay).sum()) for _, _, d in _cell_pairs(xy, cutoff))
    beta = min(1.0, LINKS_PER_NODE * n / total_weight) if total_weight > 0 else 1.0
    edges: list[tuple[int, int]] = []
    for ii, jj, d in _cell_pairs(xy, cutoff):
        draw = rng.random(len(d))
        hit = draw < beta * np.exp(-d / decay)
        edges.extend(zip(ii[hit].tolist(), jj[hit].tolist(), strict=True))
    return edges


def _connect(xy: FloatArray, edges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join the pieces of the graph by their shortest gaps until it is connected."""
    g: nx.Graph = nx.Graph()
    g.add_nodes_from(range(len(xy)))
    g.add_edges_from(edges)
    added: list[tuple[int, int]] = []
    while True:
        comps = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: (-len(c), c))
        if len(comps) == 1:
            return added
        for comp in comps[1:]:
            inside = np.asarray(comp, dtype=np.int64)
            mask = np.ones(len(xy), dtype=bool)
            mask[inside] = False
            outside = np.flatnonzero(mask)
            d = np.hypot(xy[inside, None, 0] - xy[None, outside, 0],
                         xy[inside, None, 1] - xy[None, outside, 1])
            k = int(np.argmin(d))
            a, b = int(inside[k // len(outside)]), int(outside[k % len(outside)])
            if not g.has_edge(a, b):
                g.add_edge(a, b)
                added.append((min(a, b), max(a, b)))


def _grid(n: int, side: float) -> tuple[FloatArray, list[tuple[int, int]]]:
    """Row-major rows x cols grid (rows = floor(sqrt n)); the last row may be partial."""
    rows = max(1, math.isqrt(n))
    cols = math.ceil(n / rows)
    step = side / max(rows, cols)
    xy = np.asarray([((i % cols) * step, (i // cols) * step) for i in range(n)], dtype=float)
    edges = [(i, i + 1) for i in range(n - 1) if (i + 1) % cols != 0]
    edges += [(i, i + cols) for i in range(n - cols)]
    return xy, edges


def _ring(n: int, side: float, rng: np.random.Generator) -> tuple[FloatArray,
                                                                   list[tuple[int, int]]]:
    """Nodes on a circle (neighbour spacing side / sqrt n), neighbours joined, plus
    max(1, n // 10) short chords that skip 1-3 nodes."""
    circumference = side * math.sqrt(n) if n > 1 else side
    radius = circumference / (2 * math.pi)
    angle = 2 * math.pi * np.arange(n) / n
    xy = np.column_stack((radius * (1 + np.cos(angle)), radius * (1 + np.sin(angle))))
    edges = {(min(i, (i + 1) % n), max(i, (i + 1) % n)) for i in range(n) if n > 1}
    if n >= 5:
        want = max(1, n // 10)
        for _ in range(20 * want):
            if len(edges) >= n + want:
                break
            i = int(rng.integers(n))
            skip = int(rng.integers(2, min(4, n // 2) + 1))
            a, b = sorted((i, (i + skip) % n))
            edges.add((a, b))
    return xy, sorted(edges)


def _ids(prefix: str, count: int) -> list[str]:
    width = max(1, len(str(max(count - 1, 0))))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def generate(n_nodes: int, model: Model, seed: int, *, area_km: float | None = None,
             demands: int | None = None) -> dict[str, Any]:
    """A topology document (plain dict, YAML-ready) that ``parse_topology`` accepts.

    ``n_nodes`` nodes in a square of side ``area_km`` (default 15 km * sqrt(n): constant
    density), fiber links of length ROUTE_FACTOR * distance (at least 1 km) running decoy BB84
    at the ``gys2004`` preset [Gobby, Yuan, Shields, APL 84, 3762 (2004)], ``demands`` random
    demands (default n // 10, at least 1) of 1-10 kbit/s, every other one ``fallback-pqc``.
    """
    if n_nodes < 2:
        raise ValueError(f"need at least 2 nodes, got {n_nodes}")
    if model not in ("waxman", "grid", "ring"):
        raise ValueError(f"unknown model {model!r} (waxman, grid or ring)")
    rng = np.random.Generator(np.random.PCG64(seed))
    side = _area(n_nodes, area_km)
    if model == "waxman":
        xy = rng.random((n_nodes, 2)) * side
        edges = _waxman_edges(xy, rng, side / math.sqrt(n_nodes))
        edges += _connect(xy, edges)
    elif model == "grid":
        xy, edges = _grid(n_nodes, side)
    else:
        xy, edges = _ring(n_nodes, side, rng)
    edges = sorted(set(edges))

    n_demands = max(1, n_nodes // 10) if demands is None else int(demands)
    if n_demands < 0:
        raise ValueError(f"demands must be >= 0, got {demands}")
    node_ids = _ids("n", n_nodes)
    demand_list: list[dict[str, Any]] = []
    endpoints: set[int] = set()
    for k, demand_id in enumerate(_ids("d", n_demands)):
        a, b = (int(v) for v in rng.choice(n_nodes, size=2, replace=False))
        endpoints.update((a, b))
        demand_list.append({
            "id": demand_id, "a": node_ids[a], "b": node_ids[b],
            "rate_bps": float(round(float(rng.uniform(1000.0, 10000.0)), -2)),
            "priority": int(rng.integers(1, 11)),
            "policy": "fallback-pqc" if k % 2 == 0 else "refuse",
        })

    nodes = [{"id": node_ids[i], "kind": "kme" if i in endpoints else "trusted-relay",
              "x_km": round(float(xy[i, 0]), 3), "y_km": round(float(xy[i, 1]), 3)}
             for i in range(n_nodes)]
    links: list[dict[str, Any]] = []
    mtbf_draw = rng.random(len(edges))
    mtbf_hours = rng.uniform(1000.0, 20000.0, len(edges))
    for k, (link_id, (a, b)) in enumerate(zip(_ids("l", len(edges)), edges, strict=True)):
        dist = float(np.hypot(*(xy[a] - xy[b])))
        link: dict[str, Any] = {
            "id": link_id, "a": node_ids[a], "b": node_ids[b], "kind": "fiber",
            "length_km": round(max(MIN_LENGTH_KM, ROUTE_FACTOR * dist), 2),
            "qkd": {"protocol": "decoy-bb84", "preset": "gys2004",
                    "pulse_rate_hz": PULSE_RATE_HZ},
        }
        if mtbf_draw[k] < MTBF_FRACTION:
            link["mtbf_h"] = round(float(mtbf_hours[k]), 1)
        links.append(link)
    return {
        "name": f"{model}-{n_nodes}-seed{seed}",
        "description": f"synthetic {model} topology, {n_nodes} nodes, {len(links)} links",
        "source": "qnetkit.network.generate",
        "nodes": nodes,
        "links": links,
        "demands": demand_list,
    }


def write_topology(d: dict[str, Any], path: str | Path) -> Path:
    """Write a topology document as YAML (block style, keys in insertion order)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as fh:
        yaml.safe_dump(d, fh, sort_keys=False, default_flow_style=False, width=100)
    return out
