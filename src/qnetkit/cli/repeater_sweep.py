"""``qnetkit repeater sweep``: a repeater chain over a grid of parameters and seeds, locally or on
a Dask cluster (``qnetkit.sim.parallel``), one row per run and the seed average per point."""

from __future__ import annotations

import csv
import itertools
import math
import sys
from pathlib import Path
from typing import Any

import typer

from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.output import emit_json

RESULT_FIELDS = ("delivered_pairs", "mean_fidelity", "fidelity_std", "mean_waiting_time_s",
                 "rate_pairs_per_s", "qber", "chsh", "secret_key_rate_bps", "events", "wall_s",
                 "pairs_per_wall_s")
AVERAGED = ("mean_fidelity", "rate_pairs_per_s", "secret_key_rate_bps")


def run_task(options: dict[str, Any]) -> dict[str, Any]:
    """One simulated chain (module level, so that worker processes and Dask can run it)."""
    from qnetkit.cli.repeater_cmd import run_chain

    return run_chain("simulate", options)


def _values(spec: str, option: str) -> tuple[str, tuple[Any, ...]]:
    from qnetkit.entanglement.chain import ChainConfig
    from qnetkit.network.sweep import parse_param

    try:
        p = parse_param(spec)
    except ValueError as exc:
        raise CliUsageError(str(exc).replace("--param", option)) from None
    fields = set(ChainConfig.__dataclass_fields__) - {"memory", "pairs", "seed"}
    if p.path not in fields:
        raise CliUsageError(f"{option} {spec!r}: {p.path!r} is not a chain option (one of "
                            f"{', '.join(sorted(fields))})")
    values = tuple(None if v == "none" else math.inf if v == "inf" else v for v in p.values)
    return p.path, values


def _summary_rows(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """Per point: the mean and the standard deviation over its seeds."""
    import numpy as np

    out: list[dict[str, Any]] = []
    for key, group in itertools.groupby(rows, key=lambda r: tuple(r[n] for n in names)):
        runs = list(group)
        row: dict[str, Any] = dict(zip(names, key, strict=True))
        row["seeds"] = len(runs)
        for field in AVERAGED:
            vals = np.array([r[field] for r in runs if r[field] is not None], dtype=float)
            row[field] = float(vals.mean()) if vals.size else None
            row[f"{field}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else None
        out.append(row)
    return out


def sweep(
    param: list[str] = typer.Option(..., "--param",
                                    help="OPTION=A,B,C or OPTION=START:STOP:STEP (repeat)"),
    set_: list[str] = typer.Option([], "--set", help="OPTION=VALUE fixed for every run (repeat)"),
    seeds: int = typer.Option(3, "--seeds", min=1, max=10_000, help="seeds 0..N-1 per point"),
    pairs: int = typer.Option(1000, "--pairs", min=1, help="pairs delivered per run"),
    workers: int = typer.Option(2, "--workers", min=1, help="local processes"),
    scheduler: str | None = typer.Option(None, "--scheduler",
                                         help="Dask scheduler, e.g. tcp://HOST:8786"),
    out: Path | None = typer.Option(None, "--out", help="CSV of every run"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Simulate a repeater chain over the product of --param values, each with --seeds seeds;
    options are those of `repeater chain` with '_' for '-' (memory_t2_s, nodes, scheme, ...)."""
    grid = [_values(p, "--param") for p in param]
    fixed: dict[str, Any] = {}
    for spec in set_:
        name, values = _values(spec, "--set")
        if len(values) != 1:
            raise CliUsageError(f"--set {spec!r}: one value (use --param for several)")
        fixed[name] = values[0]
    names = [name for name, _ in grid]
    if len(set(names)) != len(names) or set(names) & set(fixed):
        raise CliUsageError("each option may be given once, in --param or in --set")
    tasks = []
    for combo in itertools.product(*(values for _, values in grid)):
        for seed in range(seeds):
            tasks.append({**fixed, **dict(zip(names, combo, strict=True)), "pairs": pairs,
                          "seed": seed})
    if out is not None and out.is_dir():
        raise CliUsageError(f"--out {out}: is a directory")
    from qnetkit.sim.parallel import map_tasks

    try:
        results = map_tasks(run_task, tasks, workers=workers, scheduler=scheduler)
    except OSError as exc:
        raise CliUsageError(f"--scheduler {scheduler}: {exc}") from None
    rows = [{**{n: t[n] for n in names}, "seed": t["seed"],
             **{f: r.get(f) for f in RESULT_FIELDS}} for t, r in zip(tasks, results, strict=True)]
    points = _summary_rows(rows, names)
    if out is not None:
        try:
            with out.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
        except OSError as exc:
            raise CliUsageError(f"--out {out}: cannot write ({exc.strerror})") from None
    if as_json:
        emit_json({"fixed": fixed, "points": points, "runs": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"repeater sweep: {len(points)} points x {seeds} seeds, {pairs} pairs each")
    for col in [*names, "mean fidelity", "pairs/s", "key bit/s (BBM92)"]:
        table.add_column(col, justify="right")
    for p in points:
        cells = [str(p[n]) for n in names]
        for field in AVERAGED:
            v, sd = p[field], p[f"{field}_std"]
            cells.append("-" if v is None else f"{v:.4g}" + ("" if sd is None else f" ± {sd:.2g}"))
        table.add_row(*cells)
    Console(highlight=False, width=None if sys.stdout.isatty() else 130).print(table)
    print("± : standard deviation over the seeds; every run in --out / --json")


__all__ = ["run_task", "sweep"]
