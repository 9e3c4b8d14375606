"""Benchmark: repeater chains of 2 to 128 links — wall time per delivered pair (medians of 3).

Default hardware (single-click heralding, 10 km per link, ideal memories, deterministic swaps),
three ways of running the same chain:

* ``closed``: SWAP-ASAP sampled in closed form (max of geometric link times), the default path;
* ``engine``: SWAP-ASAP through the event engine (forced by a 1 s cutoff that no pair reaches:
  same physics, every event executed; the path of chains with cutoffs or probabilistic swaps);
* ``nested``: the nested (doubling) protocol by recursive sampling.

Target (issue 14): the cost per delivered pair grows no worse than linearly in the links.
``growth`` is the wall per pair relative to 2 links, to compare with links/2. The engine also
executes more events per pair as chains grow (memories freed by swaps inside the chain make new
pairs until the delivery: about n log n events), so its wall per event is printed as well.
Also measures the 3-node, 10 km-per-hop chain in pairs per wall-second (target: >= 15,000, 100x
SeQUeNCe's 85-150), with default hardware and with textbook parameters.
Prints a table and writes benchmarks/results/repeater_chain_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from qnetkit.entanglement.chain import simulate_chain

ROOT = Path(__file__).resolve().parent
TEXTBOOK = {"link_success_prob": 0.1, "link_fidelity": 0.95, "attempt_s": 1e-4}
METHODS = {
    "closed": {},
    "engine": {"cutoff_s": 1.0},
    "nested": {"protocol": "nested"},
}


def measure(pairs: int, repeats: int, **options: Any) -> dict[str, float]:
    walls = []
    for seed in range(repeats):
        t0 = time.perf_counter()
        r = simulate_chain(pairs=pairs, seed=seed, **options)
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    return {
        "wall_s": wall,
        "wall_per_pair_us": wall / pairs * 1e6,
        "events_per_pair": r.events / pairs,
        "wall_per_event_us": wall / r.events * 1e6,
        "pairs_per_wall_s": pairs / wall,
        "mean_fidelity": r.mean_fidelity,
        "mean_waiting_time_s": r.mean_waiting_time_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64, 128])
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    print(f"{'links':>5} | {'closed us/pair':>14} {'growth':>7} | {'engine us/pair':>14} "
          f"{'growth':>7} {'ev/pair':>8} {'us/event':>8} | {'nested us/pair':>14} {'growth':>7}")
    for links in args.links:
        row: dict[str, Any] = {"links": links}
        for name, extra in METHODS.items():
            row[name] = measure(args.pairs, args.repeats, nodes=links + 1, **extra)
        rows.append(row)
    for row in rows:
        for name in METHODS:
            row[name]["growth_vs_2_links"] = (
                row[name]["wall_per_pair_us"] / rows[0][name]["wall_per_pair_us"]
            )
        c, e, n = row["closed"], row["engine"], row["nested"]
        print(f"{row['links']:5d} | {c['wall_per_pair_us']:14.2f} {c['growth_vs_2_links']:7.1f} | "
              f"{e['wall_per_pair_us']:14.2f} {e['growth_vs_2_links']:7.1f} "
              f"{e['events_per_pair']:8.1f} {e['wall_per_event_us']:8.3f} | "
              f"{n['wall_per_pair_us']:14.2f} {n['growth_vs_2_links']:7.1f}", flush=True)
    three_node = {}
    for label, extra in (("default_hardware", {}), ("textbook", TEXTBOOK)):
        for pairs in (1000, 100_000):
            m = measure(pairs, args.repeats, nodes=3, link_length_km=10.0, **extra)
            three_node[f"{label}_{pairs}_pairs"] = m
            print(f"3 nodes, 10 km per hop, {label}, {pairs} pairs: "
                  f"{m['pairs_per_wall_s']:,.0f} pairs per wall-second "
                  f"(F = {m['mean_fidelity']:.4f}, mean wait {m['mean_waiting_time_s']:.3e} s)")
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target": {"cost_per_pair": "no worse than linear in links",
                   "three_node_pairs_per_wall_s": 15_000},
        "pairs": args.pairs,
        "repeats": args.repeats,
        "rows": rows,
        "three_node_10km": three_node,
    }
    out = ROOT / "results" / "repeater_chain_scaling.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
