"""``qnetkit entangle ...``: entanglement routing with concurrent requests on a network file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.output import emit_json

app = typer.Typer(help="Entanglement distribution: routing concurrent pair requests over shared "
                       "quantum memories.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="print one JSON object")
MAX_DURATION_S = 86400.0


def _load(path: Path):  # type: ignore[no-untyped-def]
    from qnetkit.entanglement.routing_topology import RoutingFileError, load_network

    try:
        return load_network(path)
    except RoutingFileError as exc:
        _raise_problems(exc.source, exc.problems)


def _raise_problems(source: str, problems: list[tuple[str, str]]) -> NoReturn:
    # Every problem, one line each (the last through CliUsageError); exit 2 like any bad input.
    for where, msg in problems[:-1]:
        sys.stderr.write(f"qnetkit: error: {source}: {where}: {msg}\n")
    where, msg = problems[-1]
    raise CliUsageError(f"{source}: {where}: {msg}") from None


def simulate(
    file: Path = typer.Argument(..., help="entanglement network YAML (nodes, links, requests)"),
    duration: str = typer.Option("60s", "--duration",
                                 help="simulated time, e.g. 60s, 5m (at most 1d)"),
    seed: int = typer.Option(0, "--seed", min=0),
    as_json: bool = JSON,
) -> None:
    """Route the file's requests over shared memories: per request delivered pairs, fidelity and
    waiting time; per node memory utilisation."""
    from qnetkit.entanglement.routing import simulate_routing
    from qnetkit.entanglement.routing_topology import RoutingFileError
    from qnetkit.network.topology import parse_duration_s

    try:
        duration_s = parse_duration_s(duration)
    except ValueError as exc:
        raise CliUsageError(f"--duration: {exc}") from None
    if not 0 < duration_s <= MAX_DURATION_S:
        raise CliUsageError("--duration must be more than 0 s and at most 1 day")
    net = _load(file)
    try:
        result = simulate_routing(net, duration_s=duration_s, seed=seed)
    except RoutingFileError as exc:
        _raise_problems(str(file), exc.problems)
    summary = result.summary()
    if as_json:
        emit_json(summary)
        return
    _print_summary(summary)


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    reqs = Table(title=f"{s['network']}: requests over {s['duration_s']:g} s "
                       f"(path policy {s['path_policy']}, seed {s['seed']})")
    for col in ("request", "ends", "hops", "state", "pairs", "mean fidelity",
                "mean waiting", "queued", "lost"):
        reqs.add_column(col, justify="right")
    rows = s["requests"]
    for r in rows[:40]:
        wanted = "" if r["pairs_wanted"] is None else f"/{r['pairs_wanted']}"
        fid = "-" if r["mean_fidelity"] is None else f"{r['mean_fidelity']:.4f}"
        if r["below_min_fidelity"]:
            fid += f" ({r['below_min_fidelity']} low)"
        wait = "-" if r["mean_waiting_time_s"] is None else _seconds(r["mean_waiting_time_s"])
        queued = "-" if r["queue_wait_s"] is None else _seconds(r["queue_wait_s"])
        reqs.add_row(r["id"], f"{r['a']}-{r['b']}", str(r["hops"]) if r["path"] else "-",
                     r["state"], f"{r['delivered_pairs']}{wanted}", fid, wait, queued,
                     str(r["lost_pairs"]))
    console.print(reqs)
    if len(rows) > 40:
        console.print(f"({len(rows) - 40} more requests in --json)")
    nodes = sorted(s["nodes"], key=lambda n: -n["utilisation"])
    tab = Table(title="Memories of the nodes requests used (busiest first)")
    for col in ("node", "memories", "utilisation", "storing a qubit", "peak held"):
        tab.add_column(col, justify="right")
    for n in nodes[:25]:
        tab.add_row(n["id"], str(n["memories"]), f"{100 * n['utilisation']:.1f} %",
                    f"{100 * n['storing_fraction']:.1f} %", str(n["peak_reserved"]))
    console.print(tab)
    if len(nodes) > 25:
        console.print(f"({len(nodes) - 25} more nodes in --json)")
    console.print(f"{s['delivered_pairs']} pairs delivered; {s['events']} events in "
                  f"{s['wall_s']:.2f} s wall")


def _seconds(v: float) -> str:
    if v >= 1.0:
        return f"{v:.2f} s"
    if v >= 1e-3:
        return f"{1e3 * v:.2f} ms"
    return f"{1e6 * v:.1f} us"


def generate(
    nodes: int = typer.Option(..., "--nodes", min=3, max=100_000),
    requests: int = typer.Option(100, "--requests", min=0, max=100_000),
    seed: int = typer.Option(0, "--seed", min=0),
    out: Path = typer.Option(..., "--out", help="network YAML to write"),
) -> None:
    """Write a random geometric network with requests (for scale runs; not a real network)."""
    import yaml

    from qnetkit.entanglement.routing_generate import generate_network

    doc = generate_network(nodes, requests, seed)
    if out.is_dir():
        raise CliUsageError(f"--out {out}: is a directory")
    try:
        out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    except OSError as exc:
        raise CliUsageError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {out}: {len(doc['nodes'])} nodes, {len(doc['links'])} links, "
          f"{len(doc['requests'])} requests")


app.command("simulate")(simulate)
app.command("generate")(generate)
