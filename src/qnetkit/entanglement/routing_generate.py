"""Generated quantum networks with concurrent requests, for scale tests and examples.

Model (a random geometric graph, not a calibrated network): ``nodes`` points uniform in a square
of side ``spacing_km x sqrt(nodes)`` (so the density, and the typical link length, do not
change with the size). The nodes are joined by their Euclidean minimum spanning tree (so the
graph is connected, with short links) and every node to its ``neighbours`` nearest nodes
(about ``neighbours + 1`` links per node on average). Requests join a random node to a random node
between ``min_hops`` and ``max_hops`` hops away (metro-scale demands: a random pair of a large
network is tens of hops apart, where swapped Werner pairs have fidelity near 1/4), arriving
uniformly over ``[0, arrival_window_s]``.

``qnetkit.network.generate`` builds QKD topologies; entanglement sits below ``network`` in the
layers, hence this small generator of its own. The output is a document for
:func:`qnetkit.entanglement.routing_topology.parse_network`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from qnetkit.errors import ParameterError

__all__ = ["generate_network"]


def _hops_from(src: int, adjacency: list[list[int]], max_hops: int) -> dict[int, int]:
    dist = {src: 0}
    frontier = deque([src])
    while frontier:
        u = frontier.popleft()
        if dist[u] == max_hops:
            continue
        for v in adjacency[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                frontier.append(v)
    return dist


def _spanning_tree(xy: np.ndarray) -> set[tuple[int, int]]:
    """Euclidean minimum spanning tree (Prim, O(n^2) vectorised): connected, short links."""
    n = len(xy)
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = np.hypot(*(xy - xy[0]).T)
    parent = np.zeros(n, dtype=np.int64)
    edges: set[tuple[int, int]] = set()
    for _ in range(n - 1):
        cand = np.where(in_tree, np.inf, best)
        v = int(np.argmin(cand))
        u = int(parent[v])
        edges.add((min(u, v), max(u, v)))
        in_tree[v] = True
        d = np.hypot(*(xy - xy[v]).T)
        closer = d < best
        best = np.where(closer, d, best)
        parent = np.where(closer, v, parent)
    return edges


def generate_network(
    nodes: int,
    requests: int,
    seed: int = 0,
    *,
    spacing_km: float = 25.0,
    neighbours: int = 2,
    memories: int = 8,
    t2_s: float | None = 1.0,
    efficiency: float = 0.9,
    scheme: str = "double-click",
    pairs: int | None = 200,
    multiplex: int = 1,
    cutoff_s: float | None = 0.1,
    min_hops: int = 2,
    max_hops: int = 5,
    arrival_window_s: float = 30.0,
) -> dict[str, Any]:
    """A network document (module docstring: the model), reproducible from ``seed``."""
    if nodes < 3:
        raise ParameterError("nodes", nodes, "must be >= 3")
    if requests < 0:
        raise ParameterError("requests", requests, "must be >= 0")
    if not 1 <= min_hops <= max_hops:
        raise ParameterError("min_hops", min_hops, "must be >= 1 and <= max_hops")
    rng = np.random.default_rng(seed)
    side_km = spacing_km * math.sqrt(nodes)
    xy = rng.uniform(0.0, side_km, size=(nodes, 2))
    edges = _spanning_tree(xy)
    for i in range(nodes):
        d = np.hypot(*(xy - xy[i]).T)
        d[i] = np.inf
        for j in np.argsort(d)[:neighbours]:
            edges.add((min(i, int(j)), max(i, int(j))))
    adjacency: list[list[int]] = [[] for _ in range(nodes)]
    for u, v in sorted(edges):
        adjacency[u].append(v)
        adjacency[v].append(u)
    ids = [f"n{i}" for i in range(nodes)]
    reqs: list[dict[str, Any]] = []
    while len(reqs) < requests:
        a = int(rng.integers(nodes))
        dist = _hops_from(a, adjacency, max_hops)
        far = sorted(v for v, h in dist.items() if h >= min_hops)
        if not far:
            continue
        b = far[int(rng.integers(len(far)))]
        req: dict[str, Any] = {"id": f"r{len(reqs)}", "a": ids[a], "b": ids[b]}
        if pairs is not None:  # else served for the whole run
            req["pairs"] = pairs
        req["multiplex"] = multiplex
        req["start_s"] = round(float(rng.uniform(0.0, arrival_window_s)), 6)
        reqs.append(req)
    node_docs = []
    for i in range(nodes):
        doc: dict[str, Any] = {"id": ids[i], "memories": memories, "efficiency": efficiency,
                               "x_km": round(float(xy[i, 0]), 3),
                               "y_km": round(float(xy[i, 1]), 3)}
        if t2_s is not None:
            doc["t2_s"] = t2_s
        node_docs.append(doc)
    links = [{"a": ids[u], "b": ids[v], "scheme": scheme,
              "length_km": round(max(0.1, float(np.hypot(*(xy[u] - xy[v])))), 3)}
             for u, v in sorted(edges)]
    out: dict[str, Any] = {
        "name": f"generated-{nodes}",
        "description": (f"random geometric network, {nodes} nodes, {len(links)} links, "
                        f"{requests} requests (seed {seed})"),
        "nodes": node_docs, "links": links, "requests": reqs,
    }
    if cutoff_s is not None:
        out["cutoff_s"] = cutoff_s
    return out
