"""Benchmark: entanglement routing at scale — wall time and memory for 60 simulated seconds.

Generated random geometric networks (``qnetkit.entanglement.routing_generate``: Euclidean
minimum spanning tree plus each node's 2 nearest neighbours, ~25 km spacing, ~1.4 links per
node) of 100, 300 and 1,000 nodes; 8 memories per node (T2 = 1 s, efficiency 0.9),
double-click heralding on every link, cutoff 0.1 s; 100 requests between nodes 2 to 5 hops
apart. 60 simulated seconds, SWAP-ASAP, fewest-hops path choice. Two workloads:

* ``finite``: each request wants 200 pairs, arrivals uniform over the first 30 s (requests come
  and go; few are served at the same moment);
* ``continuous``: every request arrives in the first second and wants pairs for the whole run
  (up to 100 requests served at once for 60 s, the others queued; millions of pairs).

The cost is events (about 4.5 per delivered pair at ~3.6 hops), not nodes. Each size runs in a
fresh process so the peak memory (ru_maxrss) is its own; wall time is the median of --repeats
runs (the continuous workload once; generation and validation counted apart from the
simulation, which includes the states' evaluation).
Target (issue 14): 1,000 nodes, 100 concurrent requests, 60 simulated s: < 60 s wall, < 4 GB.
Prints a table and writes benchmarks/results/entangle_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
from qnetkit.entanglement.routing import simulate_routing
from qnetkit.entanglement.routing_generate import generate_network
from qnetkit.entanglement.routing_topology import parse_network
n, requests, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
duration, continuous = float(sys.argv[4]), sys.argv[5] == "continuous"
t0 = time.perf_counter()
options = {"pairs": None, "arrival_window_s": 1.0} if continuous else {}
net = parse_network(generate_network(n, requests, seed, **options), "generated")
t1 = time.perf_counter()
r = simulate_routing(net, duration_s=duration, seed=seed)
t2 = time.perf_counter()
s = r.summary()
done = [q for q in s["requests"] if q["state"] == "done"]
served = [q for q in s["requests"] if q["path"]]
fids = [q["mean_fidelity"] for q in served if q["delivered_pairs"]]
print(json.dumps({
    "nodes": len(net.nodes), "links": len(net.links), "requests": len(net.requests),
    "generate_s": t1 - t0, "simulate_s": t2 - t1, "events": r.events,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "delivered_pairs": s["delivered_pairs"], "requests_done": len(done),
    "lost_pairs": sum(q["lost_pairs"] for q in s["requests"]),
    "requests_served": len(served),
    "mean_hops": sum(q["hops"] for q in served) / max(1, len(served)),
    "mean_fidelity": sum(fids) / max(1, len(fids)),
    "max_queue_wait_s": max((q["queue_wait_s"] or 0.0) for q in s["requests"]),
}))
"""


def run(n: int, requests: int, seed: int, duration_s: float, workload: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(requests), str(seed),
                          str(duration_s), workload], capture_output=True, text=True, check=True)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--continuous-nodes", type=int, nargs="*", default=[100, 1000])
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    print(f"{'workload':>10} {'nodes':>6} {'links':>6} {'simulate s':>10} {'events':>9} "
          f"{'us/event':>8} {'peak MB':>8} {'pairs':>8} {'served':>6} {'done':>5} {'hops':>5} "
          f"{'F':>6}")
    plan = [("finite", n, args.repeats) for n in args.nodes] + \
        [("continuous", n, 1) for n in args.continuous_nodes]
    for workload, n, repeats in plan:
        runs = [run(n, args.requests, args.seed, args.duration_s, workload)
                for _ in range(repeats)]
        r = {"workload": workload, **runs[0]}
        r["simulate_s"] = statistics.median(x["simulate_s"] for x in runs)
        r["simulate_s_runs"] = [x["simulate_s"] for x in runs]
        r["peak_rss_mb"] = max(x["peak_rss_mb"] for x in runs)
        rows.append(r)
        print(f"{workload:>10} {r['nodes']:6d} {r['links']:6d} {r['simulate_s']:10.2f} "
              f"{r['events']:9d} {1e6 * r['simulate_s'] / r['events']:8.1f} "
              f"{r['peak_rss_mb']:8.0f} {r['delivered_pairs']:8d} {r['requests_served']:6d} "
              f"{r['requests_done']:5d} "
              f"{r['mean_hops']:5.2f} {r['mean_fidelity']:6.3f}", flush=True)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "workload": {"requests": args.requests, "duration_s": args.duration_s,
                           "seed": args.seed, "repeats": args.repeats,
                           "generator": "routing_generate.generate_network defaults; "
                                        "continuous: pairs=None, arrival_window_s=1"},
              "target": {"nodes": 1000, "requests": 100, "wall_s": 60, "memory_mb": 4096},
              "rows": rows}
    out = ROOT / "results" / "entangle_scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
