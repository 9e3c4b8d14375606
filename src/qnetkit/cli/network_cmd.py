"""``qnetkit network ...``, ``qnetkit report`` and ``qnetkit sweep``: the network digital twin."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.output import emit_json

app = typer.Typer(help="QKD networks: validate, generate and simulate topologies.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="print one JSON object")


def _load(path: Path):  # type: ignore[no-untyped-def]
    from qnetkit.network.topology import TopologyError, load_topology

    try:
        return load_topology(path)
    except TopologyError as exc:
        # Every problem, one line each; exit 2 like any bad input.
        for path_, msg in exc.problems[:-1]:
            sys.stderr.write(f"qnetkit: error: {exc.source}: {path_}: {msg}\n")
        last_path, last_msg = exc.problems[-1]
        raise CliUsageError(f"{exc.source}: {last_path}: {last_msg}") from None


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _check_writable(path: Path, option: str) -> None:
    """Fail early, in one line, when ``path`` cannot be written; leaves no file behind."""
    if path.is_dir():
        raise CliUsageError(f"{option} {path}: is a directory")
    existed = path.exists()
    try:
        with path.open("a"):  # appending nothing: an existing file keeps its content
            pass
    except OSError as exc:
        raise CliUsageError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None
    if not existed:
        path.unlink()


@app.command()
def validate(file: Path = typer.Argument(..., help="topology YAML"), as_json: bool = JSON) -> None:
    """Check a topology file; print every problem (exit 2) or a one-line summary."""
    topo = _load(file)
    info = {"name": topo.name, "nodes": len(topo.nodes), "links": len(topo.links),
            "demands": len(topo.demands), "scenario_events": len(topo.scenario)}
    if as_json:
        emit_json({"ok": True, **info})
    else:
        print(f"{file}: ok ({info['nodes']} nodes, {info['links']} links, "
              f"{info['demands']} demands, {info['scenario_events']} scenario events)")


@app.command()
def simulate(
    file: Path = typer.Argument(..., help="topology YAML"),
    duration: str = typer.Option("1d", "--duration", help="e.g. 90m, 6h, 1d, 3d"),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="run directory (time series, summary)"),
    as_json: bool = JSON,
) -> None:
    """Simulate the network: key generation, relay, routing, faults; summary and time series."""
    from qnetkit.network.simulate import simulate as run
    from qnetkit.network.simulate import write_run
    from qnetkit.network.topology import parse_duration_s

    try:
        duration_s = parse_duration_s(duration)
    except ValueError as exc:
        raise CliUsageError(f"--duration: {exc}") from None
    if not 0 < duration_s <= 366 * 86400:
        raise CliUsageError("--duration must be between 1 s and 366 days")
    topo = _load(file)
    with _progress("simulating") as progress:
        result = run(topo, duration_s=duration_s, seed=seed, progress=progress)
    if out is not None:
        try:
            write_run(result, out)
        except OSError as exc:
            raise CliUsageError(f"--out {out}: {exc.strerror}") from None
    summary = result.summary()
    if as_json:
        emit_json({k: v for k, v in summary.items() if k not in ("nodes",)})
        return
    _print_summary(summary, out)


def _print_summary(s: dict[str, object], out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    links = Table(title=f"{s['topology']}: links over {float(s['duration_s']) / 3600:.1f} h")  # type: ignore[arg-type]
    for col in ("link", "km", "protocol", "mean key rate", "mean QBER", "availability",
                "published"):
        links.add_column(col, justify="right")
    rows = s["links"]
    assert isinstance(rows, list)
    shown = sorted(rows, key=lambda r: -r["mean_rate_bps"])[:25]
    for r in shown:
        pub = r["published_rate_bps"]
        links.add_row(r["id"], f"{r['length_km']:.1f}", r["protocol"],
                      _bps(r["mean_rate_bps"]),
                      "-" if r["mean_qber"] is None else f"{100 * r['mean_qber']:.2f} %",
                      f"{100 * r['availability']:.1f} %", "-" if pub is None else _bps(pub))
    console.print(links)
    if len(rows) > len(shown):
        console.print(f"({len(rows) - len(shown)} more links in the summary)")
    dem = Table(title="Demands")
    for col in ("demand", "sites", "wanted", "served", "fallback", "policy"):
        dem.add_column(col, justify="right")
    demands = s["demands"]
    assert isinstance(demands, list)
    for d in demands[:25]:
        dem.add_row(d["id"], f"{d['a']}-{d['b']}", _bps(d["rate_bps"]),
                    f"{100 * d['served_fraction']:.1f} %", f"{d['fallback_s'] / 60:.0f} min",
                    d["policy"])
    console.print(dem)
    incidents = s["incidents"]
    assert isinstance(incidents, list)
    for inc in incidents[:20]:
        det = "-" if inc["detected_s"] is None else f"{inc['detected_s'] / 3600:.2f} h"
        console.print(f"  {inc['time_s'] / 3600:6.2f} h  {inc['kind']:<15} {inc['link']:<12} "
                      f"detected {det}  {inc['detail']}")
    if out is not None:
        console.print(f"run directory: {out.resolve()}  (qnetkit report {out} --out report.html)")


def _bps(v: float) -> str:
    for unit, scale in (("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.1f} bit/s"


@app.command()
def generate(
    nodes: int = typer.Option(..., "--nodes", min=2, max=100_000),
    model: str = typer.Option("waxman", "--model", help="waxman, grid or ring"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="topology YAML to write"),
    as_json: bool = JSON,
) -> None:
    """A synthetic topology (Waxman random graph, grid or ring) with random demands."""
    from qnetkit.network.generate import generate as gen
    from qnetkit.network.generate import write_topology

    if model not in ("waxman", "grid", "ring"):
        raise CliUsageError("--model must be waxman, grid or ring")
    _check_writable(out, "--out")
    data = gen(nodes, model, seed)  # type: ignore[arg-type]
    write_topology(data, out)
    info = {"out": str(out), "nodes": len(data["nodes"]), "links": len(data["links"]),
            "demands": len(data.get("demands", []))}
    if as_json:
        emit_json(info)
    else:
        print(f"{out}: {info['nodes']} nodes, {info['links']} links, {info['demands']} demands")


@app.command()
def examples(
    copy: Path | None = typer.Option(None, "--copy", help="copy the examples into this directory"),
    names: list[str] = typer.Argument(None, help="example names (default: all)"),
    force: bool = typer.Option(False, "--force", help="overwrite files that exist"),
    as_json: bool = JSON,
) -> None:
    """List the example topologies shipped with qnetkit, or copy them out to edit."""
    from qnetkit.network.examples import ExampleError, copy_examples, example_path, list_examples
    from qnetkit.network.topology import load_topology

    try:
        if copy is not None:
            written = copy_examples(copy, names or None, force=force)
            if as_json:
                emit_json({"copied": [str(p) for p in written]})
            else:
                for p in written:
                    print(p)
            return
        chosen = [example_path(n) for n in (names or list_examples())]
    except ExampleError as exc:
        raise CliUsageError(str(exc)) from None
    rows = []
    for path in chosen:
        topo = load_topology(path)
        rows.append({"name": path.stem, "path": str(path), "nodes": len(topo.nodes),
                     "links": len(topo.links), "description": " ".join(topo.description.split())})
    if as_json:
        emit_json({"examples": rows})
    else:
        for r in rows:
            print(f"{r['name']:<18} {r['nodes']:>3} nodes {r['links']:>3} links  {r['path']}")


def report(
    run_dir: Path = typer.Argument(..., help="run directory of `qnetkit network simulate`"),
    out: Path = typer.Option(Path("report.html"), "--out"),
) -> None:
    """A self-contained HTML report of a network run (plots, tables, incidents)."""
    from qnetkit.ops.report import ReportError, write_report

    try:
        path = write_report(run_dir, out)
    except ReportError as exc:
        raise CliUsageError(str(exc)) from None
    print(f"report: {path.resolve()}")


def sweep(
    file: Path = typer.Argument(..., help="topology YAML"),
    param: list[str] = typer.Option(..., "--param",
                                    help="PATH=START:STOP:STEP or PATH=A,B,C (repeat)"),
    duration: str = typer.Option("1d", "--duration"),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers", min=1, help="local processes"),
    scheduler: str | None = typer.Option(None, "--scheduler",
                                         help="Dask scheduler, e.g. tcp://HOST:8786"),
    out: Path | None = typer.Option(None, "--out", help="CSV table of all runs"),
    as_json: bool = JSON,
) -> None:
    """Run the simulation over a grid of parameter values; one row per run."""
    import csv

    import yaml

    from qnetkit.network.sweep import parse_param, run_sweep
    from qnetkit.network.topology import parse_duration_s

    try:
        params = [parse_param(p) for p in param]
        duration_s = parse_duration_s(duration)
    except ValueError as exc:
        raise CliUsageError(str(exc)) from None
    _load(file)  # the base file itself must be valid
    doc = yaml.safe_load(file.read_text())
    if out is not None:
        _check_writable(out, "--out")  # before the runs, not after them
    try:
        with _progress("sweep") as progress:
            rows = run_sweep(doc, params, duration_s=duration_s, seed=seed, workers=workers,
                             scheduler=scheduler, progress=progress)
    except (ValueError, KeyError) as exc:
        raise CliUsageError(str(exc).strip("'\"")) from None
    except OSError as exc:
        raise CliUsageError(f"--scheduler {scheduler}: {exc}") from None
    if out is not None:
        with out.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if as_json:
        emit_json({"runs": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep of {file.name}: {len(rows)} runs")
    for col in rows[0]:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()))
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
