"""Benchmark: the network twin at scale — wall time and memory for one simulated day.

Generated Waxman networks (``qnetkit network generate``) of 100, 300, 1,000 and 3,000 nodes
(~2.5 links per node), analytic links with random fiber cuts (MTBF 1,000 h on every link, MTTR 4 h),
random demands, one simulated day at 60 s steps. Each size runs in a fresh process so the
peak memory (ru_maxrss) is its own.
Target (issue 6): 1,000 nodes / ~2,500 links, one day with faults, < 60 s and < 2 GB.
Prints a table and writes benchmarks/results/network_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
from qnetkit.network.generate import generate
from qnetkit.network.simulate import simulate
from qnetkit.network.topology import parse_topology
n, seed = int(sys.argv[1]), int(sys.argv[2])
t0 = time.perf_counter()
doc = generate(n, "waxman", seed)
for link in doc["links"]:
    link["mtbf_h"] = 1000.0  # about 2.4 % of the links are cut at some time of the day
topo = parse_topology(doc, "generated")
t1 = time.perf_counter()
r = simulate(topo, duration_s=86400, seed=seed)
t2 = time.perf_counter()
s = r.summary()  # includes the diagnosis: reasons, headroom (max-flow), paths
t3 = time.perf_counter()
print(json.dumps({
    "nodes": len(topo.nodes), "links": len(topo.links), "demands": len(topo.demands),
    "generate_s": t1 - t0, "simulate_s": t2 - t1, "summary_s": t3 - t2,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "incidents": len(s["incidents"]),
    "served_fraction_mean": (sum(d["served_fraction"] for d in s["demands"])
                             / max(1, len(s["demands"]))),
}))
"""


def run(n: int, seed: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(seed)], capture_output=True,
                         text=True, check=True)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[100, 300, 1000, 3000])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rows = []
    print(f"{'nodes':>6} {'links':>6} {'demands':>7} {'simulate s':>10} {'summary s':>9} "
          f"{'peak MB':>8} {'incidents':>9} {'served':>7}")
    for n in args.nodes:
        r = run(n, args.seed)
        rows.append(r)
        print(f"{r['nodes']:6d} {r['links']:6d} {r['demands']:7d} {r['simulate_s']:10.2f} "
              f"{r['summary_s']:9.2f} {r['peak_rss_mb']:8.0f} {r['incidents']:9d} "
              f"{r['served_fraction_mean']:7.3f}",
              flush=True)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "target": {"nodes": 1000, "wall_s": 60, "memory_mb": 2048}, "rows": rows}
    out = ROOT / "results" / "network_scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
