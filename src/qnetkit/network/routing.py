"""Key-aware routing over the trusted-node graph.

Paths are chosen by available key, not hop count: the cost of a hop is 1/(pool + rate·τ), so
hops with little stored key and little production are avoided (τ = 10 min of production).
Up to ``k`` link-disjoint-ish candidates per demand: the best path, then the best path
without the previous one's bottleneck hop. Candidates are re-planned when links go down or
up and periodically as pools change (congestion).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import networkx as nx
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
HORIZON_S = 600.0


def build_graph(ends: Sequence[tuple[str, str]], up: npt.NDArray[np.bool_], pool: FloatArray,
                rate_bps: FloatArray) -> nx.Graph:
    """Graph of the links that are up, edge attribute ``w`` = cost, ``i`` = link index.

    Parallel links between two nodes keep the one with more key (the other stays usable
    through the next re-plan).
    """
    g = nx.Graph()
    for i, (a, b) in enumerate(ends):
        if not up[i]:
            continue
        supply = float(pool[i]) + float(rate_bps[i]) * HORIZON_S
        if supply <= 0.0:
            continue
        w = 1.0 / supply
        if g.has_edge(a, b) and g[a][b]["w"] <= w:
            continue
        g.add_edge(a, b, w=w, i=i)
    return g


def candidate_paths(g: nx.Graph, a: str, b: str, k: int = 3) -> list[list[int]]:
    """Up to ``k`` paths from a to b as lists of link indices (cheapest first)."""
    if a not in g or b not in g:
        return []
    paths: list[list[int]] = []
    h = g
    for _ in range(k):
        try:
            nodes = nx.dijkstra_path(h, a, b, weight="w")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            break
        links = [int(h[u][v]["i"]) for u, v in itertools.pairwise(nodes)]
        if links in paths:
            break
        paths.append(links)
        # The next candidate avoids this path's bottleneck (its most expensive hop).
        worst = max(itertools.pairwise(nodes), key=lambda e: h[e[0]][e[1]]["w"])
        if h is g:
            h = g.copy()
        h.remove_edge(*worst)
    return paths


def allocate(need_bits: float, paths: Sequence[Sequence[int]], pool: FloatArray) -> float:
    """Take up to ``need_bits`` of end-to-end key over the paths, splitting when one path is
    not enough. Hop-by-hop one-time pad: every relayed bit consumes one bit on every hop of
    its path (``pool`` is debited in place). Returns the bits delivered."""
    delivered = 0.0
    for path in paths:
        if delivered >= need_bits:
            break
        idx = np.fromiter(path, dtype=np.int64)
        take = min(need_bits - delivered, float(pool[idx].min()))
        if take <= 0.0:
            continue
        pool[idx] -= take
        delivered += take
    return delivered
