"""Benchmark: events per second of the qnetkit.sim event engine (schedule + execute).

Cases, each 1e6 executed events (one naive case 1e5), medians of 5 runs on one core. The headline
is events per CPU second (``time.process_time``): on a shared, loaded machine wall time mostly
measures the other tenants; wall-time medians are recorded beside it.

- hold model (the classic priority-queue benchmark): P processes, each callback reschedules
  itself after an exponential delay, so the agenda holds P events throughout (P = 1e3, 1e5);
- the same with a timeout armed and cancelled at every step (lazy deletion and compaction);
- preload: 1e6 events scheduled first, then run (agenda grows to 1e6);
- two naive alternatives on the hold model: a bare heapq loop over tuples (no Event objects,
  no cancel, no checks: the floor for a pure-Python heap engine) and a sorted list kept with
  bisect.insort (O(P) insertion).

Delays are drawn beforehand so the random generator's cost is not counted. Prints a table and
writes benchmarks/results/sim_engine.json. Run with `.venv/bin/python benchmarks/sim_engine.py`.
"""

from __future__ import annotations

import bisect
import heapq
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qnetkit.sim import Simulator

ROOT = Path(__file__).resolve().parents[1]
N_EVENTS = 1_000_000
REPEATS = 5


def _delays(n: int) -> list[float]:
    return list(np.random.default_rng(1).exponential(1.0, n).tolist())


def engine_hold(processes: int, cancel_timeouts: bool = False) -> Callable[[], int]:
    delays = _delays(N_EVENTS + processes)

    def case() -> int:
        sim = Simulator()
        it = iter(delays)
        schedule = sim.schedule
        state: dict[str, Any] = {"timeout": None}

        def noop() -> None:
            pass

        def proc() -> None:
            schedule(next(it), proc)
            if cancel_timeouts:
                # A request that completes before its timeout: arm the new one, drop the old.
                old = state["timeout"]
                state["timeout"] = schedule(1e9, noop)
                if old is not None:
                    old.cancel()

        for _ in range(processes):
            schedule(next(it), proc)
        return sim.run(max_events=N_EVENTS)

    return case


def engine_preload() -> Callable[[], int]:
    times = np.sort(np.random.default_rng(2).uniform(0.0, 1e3, N_EVENTS)).tolist()
    order = np.random.default_rng(3).permutation(N_EVENTS).tolist()

    def case() -> int:
        sim = Simulator()

        def noop() -> None:
            pass

        for i in order:  # scheduled in random order, so the heap does real work
            sim.schedule_at(times[i], noop)
        return sim.run()

    return case


def naive_heapq_hold(processes: int) -> Callable[[], int]:
    delays = _delays(N_EVENTS + processes)

    def case() -> int:
        heap: list[Any] = []  # (time, priority, seq, fn); Callable is not orderable for mypy
        it = iter(delays)
        clock = {"now": 0.0, "seq": 0}

        def push(delay: float, fn: Callable[[], None]) -> None:
            clock["seq"] += 1
            heapq.heappush(heap, (clock["now"] + delay, 0, clock["seq"], fn))

        def proc() -> None:
            push(next(it), proc)

        for _ in range(processes):
            push(next(it), proc)
        executed = 0
        while heap and executed < N_EVENTS:
            t, _, _, fn = heapq.heappop(heap)
            clock["now"] = t
            fn()
            executed += 1
        return executed

    return case


def naive_sorted_list_hold(processes: int, n_events: int = N_EVENTS) -> Callable[[], int]:
    delays = _delays(n_events + processes)

    def case() -> int:
        # Kept in descending (time, seq) order so the next event is a cheap pop() from the end.
        agenda: list[Any] = []  # (-time, -seq, fn)
        it = iter(delays)
        clock = {"now": 0.0, "seq": 0}

        def push(delay: float, fn: Callable[[], None]) -> None:
            clock["seq"] += 1
            bisect.insort(agenda, (-(clock["now"] + delay), -clock["seq"], fn))

        def proc() -> None:
            push(next(it), proc)

        for _ in range(processes):
            push(next(it), proc)
        executed = 0
        while agenda and executed < n_events:
            neg_t, _, fn = agenda.pop()
            clock["now"] = -neg_t
            fn()
            executed += 1
        return executed

    return case


def timed(case: Callable[[], int]) -> tuple[int, float, float]:
    """Events executed, wall seconds and CPU seconds of one call."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    executed = case()
    return executed, time.perf_counter() - wall0, time.process_time() - cpu0


def main() -> None:
    cases: list[tuple[str, Callable[[], Callable[[], int]], int]] = [
        ("engine, hold P=1e3", lambda: engine_hold(1_000), N_EVENTS),
        ("engine, hold P=1e5", lambda: engine_hold(100_000), N_EVENTS),
        ("engine, hold P=1e3 + timeout cancel/step", lambda: engine_hold(1_000, True), N_EVENTS),
        ("engine, preload 1e6 then run", engine_preload, N_EVENTS),
        ("naive bare heapq loop, hold P=1e3", lambda: naive_heapq_hold(1_000), N_EVENTS),
        ("naive bare heapq loop, hold P=1e5", lambda: naive_heapq_hold(100_000), N_EVENTS),
        ("naive sorted list (insort), hold P=1e3", lambda: naive_sorted_list_hold(1_000),
         N_EVENTS),
        # O(P) insertion: 1e5 events are enough to see it (1e6 would take minutes per run).
        ("naive sorted list (insort), hold P=1e5",
         lambda: naive_sorted_list_hold(100_000, 100_000), 100_000),
    ]
    made = [(name, make(), n) for name, make, n in cases]
    walls: dict[str, list[float]] = {name: [] for name, _, _ in made}
    cpus: dict[str, list[float]] = {name: [] for name, _, _ in made}
    # Repeats interleaved across cases, so a burst of load on a shared machine hits all alike.
    for _ in range(REPEATS):
        for name, case, n in made:
            executed, wall_s, cpu_s = timed(case)
            assert executed == n, (name, executed)
            walls[name].append(wall_s)
            cpus[name].append(cpu_s)
    rows = []
    for name, _, n in made:
        cpu = statistics.median(cpus[name])
        wall = statistics.median(walls[name])
        rows.append({"case": name, "events": n, "median_cpu_s": cpu, "median_wall_s": wall,
                     "events_per_cpu_s": n / cpu, "events_per_wall_s": n / wall,
                     "runs_cpu_s": cpus[name], "runs_wall_s": walls[name]})
    print(f"{'case':<44}{'CPU s':>8}{'wall s':>8}{'events/CPU s':>14}{'events/wall s':>15}")
    for r in rows:
        print(f"{r['case']:<44}{r['median_cpu_s']:>8.3f}{r['median_wall_s']:>8.3f}"
              f"{r['events_per_cpu_s']:>14,.0f}{r['events_per_wall_s']:>15,.0f}")
    out = ROOT / "benchmarks" / "results" / "sim_engine.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "sim_engine",
        "events_per_case": N_EVENTS,
        "repeats": REPEATS,
        "statistic": "median of CPU time (process_time) and of wall time, repeats interleaved",
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cpus": os.cpu_count()},
        "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
