"""Benchmark: 1,000-point distance sweeps with the intensity optimised at every point.

Target (issue 3): under 1 s on one core for decoy-state BB84. Prints a table and writes
benchmarks/results/keyrate.json. Run with `make bench` or `.venv/bin/python benchmarks/keyrate.py`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

# One core: keep any BLAS/OpenMP pools from spreading over the machine.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from qnetkit.keyrate.registry import PROTOCOL_NAMES, get_protocol  # noqa: E402

POINTS = 1000
REPEATS = 5
TARGET_S = 1.0


def _time(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    cases: list[tuple[str, str, Any]] = []
    for name in PROTOCOL_NAMES:
        spec = get_protocol(name)
        params = spec.presets[spec.default_preset]
        cases.append((name, spec.default_preset, params))
        if name == "decoy-bb84":
            cases.append(
                (name, "gys2004 vacuum+weak nu=0.1", replace(params, decoys="vacuum+weak"))
            )
    rows = []
    for name, label, params in cases:
        spec = get_protocol(name)
        reach = 200.0 if name != "tf-qkd" else 500.0
        lengths = np.linspace(0.0, reach, POINTS)
        spec.evaluate(params, lengths[:10])  # warm-up (imports, caches)
        repeats = REPEATS if name != "finite-decoy-bb84" else 1
        wall = _time(lambda s=spec, p=params, x=lengths: s.evaluate(p, x), repeats)
        rows.append(
            {
                "protocol": name,
                "params": label,
                "points": POINTS,
                "mu_optimised": bool(spec.has_mu and getattr(params, "mu", None) is None),
                "wall_s": wall,
                "us_per_point": wall / POINTS * 1e6,
            }
        )
    print(f"{'protocol':<20}{'case':<30}{'points':>8}{'wall (s)':>12}{'us/point':>12}")
    for r in rows:
        print(
            f"{r['protocol']:<20}{r['params']:<30}{r['points']:>8}{r['wall_s']:>12.4f}"
            f"{r['us_per_point']:>12.1f}"
        )
    decoy = [r for r in rows if r["protocol"] == "decoy-bb84"]
    ok = all(r["wall_s"] < TARGET_S for r in decoy)
    print(
        f"target: decoy-bb84 {POINTS}-point optimised sweep < {TARGET_S} s -> "
        f"{'met' if ok else 'NOT met'}"
    )
    out = Path(__file__).resolve().parent / "results" / "keyrate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "keyrate",
                "machine": {
                    "python": platform.python_version(),
                    "processor": platform.machine(),
                    "cpus": os.cpu_count(),
                },
                "target_s": TARGET_S,
                "target_met": ok,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
