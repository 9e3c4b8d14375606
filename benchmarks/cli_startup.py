"""Benchmark: start-up time of the command line (`qnetkit --version`, `qnetkit --help`).

Target: `qnetkit --version` in under 0.3 s (whole process, median of repeated runs). The version
is answered before typer, NumPy, SciPy or FastAPI are imported (`qnetkit.cli.main.main`); what
`--version` imports is checked by tests/cli/test_help.py, the time is measured here. Prints a
table and writes benchmarks/results/cli_startup.json. Run with `make bench` or
`.venv/bin/python benchmarks/cli_startup.py`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 15
TARGET_S = 0.3
ROOT = Path(__file__).resolve().parents[1]


def median_s(cmd: list[str], repeats: int = REPEATS) -> float:
    """Median wall time of running ``cmd`` to completion (after one untimed warm-up run)."""
    subprocess.run(cmd, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    script = Path(sys.executable).parent / "qnetkit"
    qnetkit = [str(script)] if script.exists() else [sys.executable, "-m", "qnetkit.cli.main"]
    cases = [
        ("python -c pass (interpreter alone)", [sys.executable, "-c", "pass"]),
        ("qnetkit --version", [*qnetkit, "--version"]),
        ("qnetkit --help", [*qnetkit, "--help"]),
    ]
    rows = [{"command": label, "median_s": median_s(cmd), "runs": REPEATS}
            for label, cmd in cases]
    print(f"{'command':<40}{'median s':>10}{'runs':>6}")
    for r in rows:
        print(f"{r['command']:<40}{r['median_s']:>10.3f}{r['runs']:>6}")
    version_s = rows[1]["median_s"]
    assert isinstance(version_s, float)
    met = version_s < TARGET_S
    print(f"target: qnetkit --version < {TARGET_S} s -> {'met' if met else 'NOT met'}")
    out = ROOT / "benchmarks" / "results" / "cli_startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "cli_startup",
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cpus": os.cpu_count()},
        "target_s": TARGET_S,
        "target_met": met,
        "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
