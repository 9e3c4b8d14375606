"""``qnetkit network ...``, ``qnetkit report`` and ``qnetkit sweep``: the network digital twin."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def _viability_warnings(topo: object) -> list[tuple[str, str]]:
    """Physical warnings on a valid topology (a link that cannot make key, ...), as (path,
    message) pairs; none while ``qnetkit.network.viability`` is not there."""
    from qnetkit.network.topology import Topology

    assert isinstance(topo, Topology)
    try:
        from qnetkit.network.viability import validate_warnings
    except ModuleNotFoundError as exc:
        if exc.name != "qnetkit.network.viability":
            raise  # the module is there but broken: not something to hide
        return []
    return [(str(path), str(msg)) for path, msg in validate_warnings(topo)]


def _pairs(items: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"path": path, "message": msg} for path, msg in items]


@app.command()
def validate(file: Path = typer.Argument(..., help="topology YAML"), as_json: bool = JSON) -> None:
    """Check a topology file: every problem (exit 2), or ok and any physical warnings.

    With --json, one JSON object in every case: ok, problems and warnings as path and message.
    """
    from qnetkit.network.topology import TopologyError, load_topology

    if not as_json:
        topo = _load(file)
    else:
        try:
            topo = load_topology(file)
        except TopologyError as exc:
            # Unreadable, not YAML or invalid: the same shape, so a script reads one object.
            emit_json({"ok": False, "file": str(file), "problems": _pairs(exc.problems),
                       "warnings": []})
            raise typer.Exit(2) from None
    warnings = _viability_warnings(topo)
    info = {"name": topo.name, "nodes": len(topo.nodes), "links": len(topo.links),
            "demands": len(topo.demands), "scenario_events": len(topo.scenario)}
    if as_json:
        emit_json({"ok": True, "file": str(file), **info, "problems": [],
                   "warnings": _pairs(warnings)})
        return
    print(f"{file}: ok ({info['nodes']} nodes, {info['links']} links, "
          f"{info['demands']} demands, {info['scenario_events']} scenario events)")
    for path, msg in warnings:
        print(f"warning: {path}: {msg}")


@app.command()
def schema(
    as_json: bool = typer.Option(False, "--json", help="the JSON Schema (draft 2020-12)"),
    markdown: bool = typer.Option(False, "--markdown",
                                  help="the reference page (docs/topology-reference.md)"),
) -> None:
    """Every field of a topology file: path, type, default, unit and meaning."""
    from qnetkit.network.schema_doc import reference_markdown, reference_text, topology_schema

    if as_json and markdown:
        raise CliUsageError("give --json or --markdown, not both")
    if as_json:
        emit_json(topology_schema())
    elif markdown:
        sys.stdout.write(reference_markdown())
    else:
        sys.stdout.write(reference_text())


@app.command()
def simulate(
    file: Path = typer.Argument(..., help="topology YAML"),
    duration: str = typer.Option("1d", "--duration", help="e.g. 90m, 6h, 1d, 3d"),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="run directory (time series, summary)"),
    initial_pools: str | None = typer.Option(
        None, "--initial-pools", metavar="empty|full|SECONDS",
        help="key in the pools at the start (default: the file's pools.initial_fill, 'empty')"),
    count_initial_fill: bool = typer.Option(
        False, "--count-initial-fill",
        help="count key of the initial fill in the served fraction (it is not by default)"),
    as_json: bool = JSON,
) -> None:
    """Simulate the network: key generation, relay, routing, faults; summary and time series."""
    from qnetkit.network.simulate import parse_initial_fill, write_run
    from qnetkit.network.simulate import simulate as run
    from qnetkit.network.topology import parse_duration_s

    try:
        duration_s = parse_duration_s(duration)
    except ValueError as exc:
        raise CliUsageError(f"--duration: {exc}") from None
    if not 0 < duration_s <= 366 * 86400:
        raise CliUsageError("--duration must be between 1 s and 366 days")
    try:
        fill = None if initial_pools is None else parse_initial_fill(initial_pools)
    except ValueError as exc:
        raise CliUsageError(str(exc)) from None
    topo = _load(file)
    with _progress("simulating") as progress:
        result = run(topo, duration_s=duration_s, seed=seed, initial_pools=fill,
                     count_initial_fill=count_initial_fill, progress=progress)
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


def _print_summary(s: dict[str, Any], out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    pools = s["pools"]
    fill = pools["initial_fill"]
    fill_text = fill if isinstance(fill, str) else f"{fill:g} s of production"
    links = Table(title=f"{s['topology']}: links over {float(s['duration_s']) / 3600:.1f} h "
                        f"(pools start {fill_text})")
    for col in ("link", "km", "protocol", "mean key rate", "mean QBER", "making key",
                "state", "published"):
        links.add_column(col, justify="right")
    rows = s["links"]
    # Links without key first: a planner must see them, whatever the number of links.
    order = {"no-key": 0, "partial": 1, "ok": 2}
    shown = sorted(rows, key=lambda r: (order[r["state"]], -r["mean_rate_bps"]))[:25]
    for r in shown:
        pub = r["published_rate_bps"]
        state = r["state"] if r["state"] == "ok" else f"[bold red]{r['state']}[/]"
        links.add_row(r["id"], f"{r['length_km']:.1f}", r["protocol"],
                      _bps(r["mean_rate_bps"]),
                      "-" if r["mean_qber"] is None else f"{100 * r['mean_qber']:.2f} %",
                      f"{100 * r['availability']:.1f} %", state,
                      "-" if pub is None else _bps(pub))
    console.print(links)
    if len(rows) > len(shown):
        console.print(f"({len(rows) - len(shown)} more links in the summary)")
    for r in rows:
        if r["state"] != "ok":
            console.print(f"  [bold red]{r['id']}[/]: {r['reason']}", soft_wrap=True)
    dem = Table(title="Demands (served: key made during the run"
                + (", initial fill included)" if pools["served_counts_initial"] else ")"))
    for col in ("demand", "sites", "wanted", "served", "from initial fill", "fallback",
                "policy", "met"):
        dem.add_column(col, justify="right")
    demands = s["demands"]
    for d in demands[:25]:
        initial = d["served_from_initial_bits"] / d["requested_bits"] if d["requested_bits"] \
            else 0.0
        dem.add_row(d["id"], f"{d['a']}-{d['b']}", _bps(d["rate_bps"]),
                    f"{100 * d['served_fraction']:.1f} %", f"{100 * initial:.1f} %",
                    f"{d['fallback_s'] / 60:.0f} min", d["policy"],
                    "yes" if d["met"] else "[bold red]no[/]")
    console.print(dem)
    if len(demands) > 25:
        console.print(f"({len(demands) - 25} more demands in the summary)")
    unmet = [d for d in demands if not d["met"]]
    for d in unmet[:10]:
        console.print(f"  [bold red]{d['id']}[/] not met: {d['reason']}", soft_wrap=True)
    if len(unmet) > 10:
        console.print(f"  ({len(unmet) - 10} more unmet demands in the summary)")
    incidents = s["incidents"]
    for inc in incidents[:20]:
        det = "-" if inc["detected_s"] is None else f"{inc['detected_s'] / 3600:.2f} h"
        console.print(f"  {inc['time_s'] / 3600:6.2f} h  {inc['kind']:<15} {inc['link']:<12} "
                      f"detected {det}  {inc['detail']}")
    _print_alarms(console, s["alarms"])
    if out is not None:
        console.print(f"run directory: {out.resolve()}  (qnetkit report {out} --out report.html)")


def _print_alarms(console: Any, alarms: list[dict[str, Any]]) -> None:
    """Alarm episodes: a count, then the active ones and the most severe ones."""
    if not alarms:
        console.print("alarms: none")
        return
    active = [a for a in alarms if a["active"]]
    console.print(f"alarms: {len(alarms)} episode{'' if len(alarms) == 1 else 's'}, "
                  f"{len(active)} still active")
    rank = sorted(alarms, key=lambda a: (not a["active"], a["level"] != "critical",
                                         -a["steps"]))
    for a in rank[:8]:
        end = "active" if a["active"] else f"to {a['end_s'] / 3600:.2f} h"
        console.print(f"  {a['level']:<8} {a['kind']:<19} {a['link']:<12} from "
                      f"{a['start_s'] / 3600:.2f} h {end}, {a['steps']} steps, "
                      f"peak {a['peak_value']:.4g}")


def _bps(v: float) -> str:
    from qnetkit.network.diagnosis import format_bps

    return format_bps(v)


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
    initial_pools: str | None = typer.Option(
        None, "--initial-pools", metavar="empty|full|SECONDS",
        help="key in the pools at the start of every run (default: the file's "
             "pools.initial_fill, 'empty')"),
    as_json: bool = JSON,
) -> None:
    """Run the simulation over a grid of parameter values; one row per run."""
    import csv

    import yaml

    from qnetkit.network.simulate import parse_initial_fill
    from qnetkit.network.sweep import SweepError, all_columns, parse_param, run_sweep, table_columns
    from qnetkit.network.topology import parse_duration_s

    try:
        params = [parse_param(p) for p in param]
        duration_s = parse_duration_s(duration)
        fill = None if initial_pools is None else parse_initial_fill(initial_pools)
    except ValueError as exc:
        raise CliUsageError(str(exc)) from None
    _load(file)  # the base file itself must be valid
    doc = yaml.safe_load(file.read_text())
    if out is not None:
        _check_writable(out, "--out")  # before the runs, not after them
    try:
        with _progress("sweep") as progress:
            rows = run_sweep(doc, params, duration_s=duration_s, seed=seed, workers=workers,
                             scheduler=scheduler, initial_pools=fill, progress=progress)
    except SweepError as exc:
        # Every problem of the first bad point, one line each, like `network validate`.
        for line in exc.lines[:-1]:
            sys.stderr.write(f"qnetkit: error: {line}\n")
        raise CliUsageError(exc.lines[-1]) from None
    except (ValueError, KeyError) as exc:
        raise CliUsageError(str(exc).strip("'\"")) from None
    except OSError as exc:
        raise CliUsageError(f"--scheduler {scheduler}: {exc}") from None
    if out is not None:
        with out.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=all_columns(rows), restval="")
            w.writeheader()
            w.writerows(r.flat() for r in rows)
    if as_json:
        emit_json({"runs": [r.flat() for r in rows]})
        return
    from rich.console import Console
    from rich.table import Table

    shown, footer = table_columns(rows)
    table = Table(title=f"sweep of {file.name}: {len(rows)} runs")
    for col in shown[0]:
        # "demand dc1-dc2 served_fraction": spaces let a narrow column wrap the header whole.
        table.add_column(col.replace(":", " "), justify="right", overflow="fold")
    for r in shown:
        table.add_row(*("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
                        for v in r.values()))
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    console.print(table)
    if footer:
        console.print(footer)
