"""Benchmark: the wall-clock bounds that used to be asserted inside unit tests.

Unit tests check behaviour only (a loaded machine must not fail them); the times are measured
here, as medians of repeated runs on one core, next to the bound the test once asserted. Prints a
table and writes benchmarks/results/timings.json. Run with `make bench` or
`.venv/bin/python benchmarks/timings.py`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One core: keep any BLAS/OpenMP pools from spreading over the machine.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from qnetkit import diskcache  # noqa: E402
from qnetkit.keyrate.decoy_bb84 import PRESETS as DECOY_PRESETS  # noqa: E402
from qnetkit.keyrate.finite_decoy_bb84 import PRESETS as FINITE_PRESETS  # noqa: E402
from qnetkit.keyrate.finite_decoy_bb84 import finite_decoy_bb84_key_rate  # noqa: E402
from qnetkit.ops.report import write_report  # noqa: E402
from qnetkit.qkd.channel import local_pair, run_parties  # noqa: E402
from qnetkit.qkd.quantum import DecoySourceParams, simulate_decoy_bb84  # noqa: E402
from qnetkit.qkd.reconciliation import ldpc_codes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def median_s(fn: Callable[[], object], repeats: int, setup: Callable[[], None] | None = None
             ) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` (``setup`` runs untimed before each)."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _make_run() -> Callable[..., Path]:
    """The synthetic run directory of tests/ops/test_report.py (same data the test reports on)."""
    path = ROOT / "tests" / "ops" / "test_report.py"
    spec = importlib.util.spec_from_file_location("_report_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_report_cases"] = module
    spec.loader.exec_module(module)
    return module.make_run  # type: ignore[no-any-return]


def report_case(tmp: Path) -> dict[str, Any]:
    run = _make_run()(tmp / "run", n_links=500, n_steps=1440, description="big")
    wall = median_s(lambda: write_report(run, tmp / "big.html"), 3)
    return {"case": "HTML report, 500 links x 1440 steps", "median_s": wall,
            "bound": "< 10 s", "met": wall < 10.0,
            "was_in": "tests/ops/test_report.py::test_big_run"}


def ldpc_cache_case(tmp: Path) -> dict[str, Any]:
    saved = os.environ.get(diskcache.ENV)

    def build() -> None:
        os.environ[diskcache.ENV] = "off"
        ldpc_codes.get_code(0.7, 2**14)

    def load() -> None:
        os.environ[diskcache.ENV] = str(tmp / "cache")
        ldpc_codes.get_code(0.7, 2**14)

    try:
        load()  # stores the entry once
        build_s = median_s(build, 5, setup=ldpc_codes.get_code.cache_clear)
        load_s = median_s(load, 5, setup=ldpc_codes.get_code.cache_clear)
    finally:
        ldpc_codes.get_code.cache_clear()
        if saved is None:
            os.environ.pop(diskcache.ENV, None)
        else:
            os.environ[diskcache.ENV] = saved
    return {"case": f"LDPC code r=0.7 n=2^14: load from disk cache (build {build_s:.3f} s)",
            "median_s": load_s, "build_s": build_s, "bound": "< build", "met": load_s < build_s,
            "was_in": "tests/qkd/test_ldpc_diskcache.py::test_cached_code_equals_the_built_one"}


def abort_case() -> dict[str, Any]:
    def once() -> None:
        a, b = local_pair()

        def alice() -> None:
            raise ValueError("alice broke")

        with contextlib.suppress(ValueError):
            run_parties(alice, lambda: b.recv("never-sent"), endpoints=(a, b))

    wall = median_s(once, 21)
    return {"case": "failing party unblocks its peer (abort frame)", "median_s": wall,
            "bound": "< 2 s", "met": wall < 2.0,
            "was_in": "tests/qkd/test_channel.py::test_a_failing_party_unblocks_its_peer_at_once"}


def quantum_case() -> dict[str, Any]:
    gys = DECOY_PRESETS["gys2004"]
    source = DecoySourceParams(intensities=(0.48, 0.1, 0.0), intensity_probs=(0.8, 0.1, 0.1))
    wall = median_s(
        lambda: simulate_decoy_bb84(gys, 100.0, 10**10, source, np.random.default_rng(1)), 3
    )
    return {"case": "decoy BB84 detections, 1e10 pulses at 100 km", "median_s": wall,
            "bound": "< 5 s", "met": wall < 5.0,
            "was_in": "tests/qkd/test_quantum.py::test_ten_billion_pulses_at_100_km"}


def finite_key_case() -> dict[str, Any]:
    lengths = np.linspace(0.0, 200.0, 100)
    lim = FINITE_PRESETS["lim2014"]
    wall = median_s(lambda: finite_decoy_bb84_key_rate(lim, lengths), 3)
    return {"case": "finite-key decoy BB84 (lim2014), 100-point sweep", "median_s": wall,
            "bound": "< 5 s", "met": wall < 5.0,
            "was_in": "tests/keyrate/test_finite_decoy_bb84.py::"
                      "test_sweep_is_monotone_and_zero_beyond_reach"}


def main() -> None:
    # Warm-up: numba compilation and first imports are not what the old bounds were about.
    finite_key_case()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = [report_case(tmp), ldpc_cache_case(tmp), abort_case(), quantum_case(),
                finite_key_case()]
    print(f"{'case':<66}{'median s':>10}  {'bound':<9}{'met':>5}")
    for r in rows:
        met = "yes" if r["met"] else "NO"
        print(f"{r['case']:<66}{r['median_s']:>10.4f}  {r['bound']:<9}{met:>5}")
    out = ROOT / "benchmarks" / "results" / "timings.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "timings",
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cpus": os.cpu_count()},
        "all_met": all(r["met"] for r in rows),
        "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
