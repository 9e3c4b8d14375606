"""``qnetkit repeater ...``: entanglement over repeater chains, simulated or in closed form.

Flags and output only. Every flag of ``chain`` and ``analytic`` goes, under the same name with
``_`` for ``-``, to :func:`qnetkit.entanglement.chain.simulate_chain` / ``analytic_chain``, so
``qnetkit repeater chain --nodes 3 --link-fidelity 0.95`` is ``simulate_chain(nodes=3,
link_fidelity=0.95)``, run for run; an absent flag keeps the API's default, as an absent keyword
does. The values are judged there, not here: its ``ParameterError`` is printed by ``cli.main``
as one line ``--flag value: reason`` with exit status 2.

The figures of merit of an application come from :mod:`qnetkit.entanglement.applications` on
the mean delivered state: QBER (Z basis, the key basis; the X one beside it) and CHSH are
linear in the state, so the mean state's are the mean over the pairs; the key rate is BBM92's
(Shor-Preskill form) at the delivery rate in simulated time. ``compare`` is
:func:`qnetkit.entanglement.compare.compare_architectures` over a distance grid.

The heavy modules (NumPy, the entanglement package, matplotlib) are imported inside the
commands: registering the group costs ``qnetkit --version`` nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.output import emit_json

app = typer.Typer(
    help="Entanglement over quantum repeater chains: simulation, closed forms, comparison.",
    no_args_is_help=True,
)

KEY_PROTOCOL = "bbm92"
PLOT_SUFFIXES = (".png", ".svg")
COMPARE_PLOT_POINTS = 121

# Result fields of both commands, in print order; a closed form has no wall time.
CHAIN_FIELDS = (
    "delivered_pairs",
    "mean_fidelity",
    "fidelity_std",
    "mean_waiting_time_s",
    "rate_pairs_per_s",
    "events",
)
WALL_FIELDS = ("wall_s", "pairs_per_wall_s")
# Only the closed forms have these: which model gave each figure.
ANALYTIC_EXTRA = (
    "mean_attempts",
    "waiting_time_model",
    "fidelity_model",
    "sangouard_waiting_time_s",
)


def _count(name: str, text: str, low: int = 1) -> int:
    """Integers written as 1000, 1e3 or 1_000."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise CliUsageError(f"--{name} {text!r}: not a number") from None
    if not math.isfinite(value) or value != math.floor(value) or value < low:
        raise CliUsageError(f"--{name} {text!r}: must be an integer >= {low}")
    return int(value)


def chain_options(**flags: Any) -> dict[str, Any]:
    """The keyword arguments of ``simulate_chain``/``analytic_chain`` from the parsed flags.

    Only text is parsed here (``--pairs 1e4``); a flag left out is left out, so the API's default
    applies. The API checks every value (ranges, memories for the purification rounds, ...).
    """
    if flags.get("pairs") is not None:
        flags["pairs"] = _count("pairs", flags["pairs"])
    return {k: v for k, v in flags.items() if v is not None}


def application_figures(mean_state: Any, rate_pairs_per_s: float | None) -> dict[str, Any]:
    """QBER (Z and X), CHSH and BBM92 key rate of the mean delivered state; None without one."""
    out: dict[str, Any] = {
        "qber": None,
        "qber_x": None,
        "chsh": None,
        "secret_key_rate_bps": None,
        "key_protocol": KEY_PROTOCOL,
    }
    if mean_state is None:
        return out
    import numpy as np

    from qnetkit.entanglement.applications import entanglement_key_rate

    # The rate only scales the key; any finite rate gives the state's QBER and CHSH.
    known_rate = rate_pairs_per_s is not None and math.isfinite(rate_pairs_per_s)
    rate = float(rate_pairs_per_s) if known_rate else 0.0  # type: ignore[arg-type]
    key = entanglement_key_rate(rate, np.asarray(mean_state, dtype=float), protocol=KEY_PROTOCOL)
    out["qber"] = float(key.qber)
    out["qber_x"] = float(key.qber_x)
    out["chsh"] = float(key.chsh)
    out["secret_key_rate_bps"] = float(key.secret_key_rate_bps) if known_rate else None
    return out


def _plain(value: Any) -> Any:
    """Params as JSON values: NumPy scalars and arrays to numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalar or array
        return value.tolist()
    return value


def run_chain(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """One chain, simulated (``kind == "simulate"``) or in closed form, as the JSON fields."""
    import numpy as np

    from qnetkit.entanglement.chain import analytic_chain, simulate_chain

    out: dict[str, Any] = {"mode": "simulated" if kind == "simulate" else "analytic"}
    if kind == "simulate":
        result: Any = simulate_chain(**options)
        states = np.asarray(result.final_states, dtype=float)
        mean_state = states.mean(axis=0) if states.shape[0] else None
        waits = np.asarray(result.waiting_times_s, dtype=float)
        wait_std = float(waits.std(ddof=1)) if waits.size > 1 else None
    else:
        result = analytic_chain(**options)
        mean_state = result.final_state
        wait_std = None
    for name in CHAIN_FIELDS:
        out[name] = _plain(getattr(result, name))
    # The spread of the waiting times: their standard error is waiting_time_std_s / sqrt(pairs).
    out["waiting_time_std_s"] = wait_std
    out.update(application_figures(mean_state, out["rate_pairs_per_s"]))
    if kind == "simulate":
        for name in WALL_FIELDS:
            out[name] = _plain(getattr(result, name))
    else:
        for name in ANALYTIC_EXTRA:
            out[name] = _plain(getattr(result, name))
    out["params"] = _plain(dict(result.params))
    return out


def _fmt(value: Any, spec: str, unit: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) + unit


def _print_chain(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    params = out["params"]
    link = "textbook links" if params["link_model"] == "textbook" else f"{params['scheme']} links"
    table = Table(
        title=f"Repeater chain ({out['mode']}): {params['nodes']} nodes, "
        f"{params['chain_length_km']:g} km, {link}, {params['protocol']}"
    )
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("delivered pairs", _fmt(out["delivered_pairs"], ",")),
        ("mean fidelity", _fmt(out["mean_fidelity"], ".5f")),
        ("fidelity std", _fmt(out["fidelity_std"], ".5f")),
        ("mean waiting time", _fmt(out["mean_waiting_time_s"], ".4e", " s")),
        ("waiting time std", _fmt(out["waiting_time_std_s"], ".4e", " s")),
        ("rate (simulated time)", _fmt(out["rate_pairs_per_s"], ".4e", " pairs/s")),
        ("QBER Z / X", f"{_fmt(out['qber'], '.4f')} / {_fmt(out['qber_x'], '.4f')}"),
        ("CHSH", _fmt(out["chsh"], ".4f")),
        ("secret key rate (BBM92)", _fmt(out["secret_key_rate_bps"], ".4e", " bit/s")),
        ("events", _fmt(out["events"], ",")),
    ]
    if out["mode"] == "simulated":
        rows += [
            ("wall time", _fmt(out["wall_s"], ".3f", " s")),
            ("pairs per wall-second", _fmt(out["pairs_per_wall_s"], ",.0f")),
            ("method", str(params.get("method", "-"))),
        ]
    else:
        rows += [
            ("waiting-time model", str(out["waiting_time_model"])),
            ("fidelity model", str(out["fidelity_model"])),
        ]
    for name, value in rows:
        # Text, not markup: model names carry brackets ("E[max of n geometric]").
        table.add_row(name, Text(value))
    Console().print(table)


def _chain_command(kind: str, doc: str) -> Callable[..., None]:
    """``chain`` and ``analytic`` take the same flags: one signature, two commands."""

    def command(
        nodes: int | None = typer.Option(
            None, "--nodes", help="nodes including both ends (2 = one link) (default 3)"
        ),
        link_length_km: float | None = typer.Option(
            None, "--link-length-km", help="fiber length of each elementary link (km) (default 10)"
        ),
        scheme: str | None = typer.Option(
            None,
            "--scheme",
            help="heralding: single-click | double-click | spdc (default single-click)",
        ),
        memory_t2_s: float | None = typer.Option(
            None,
            "--memory-t2-s",
            help="memory coherence time T2 (s); inf = no dephasing (default inf)",
        ),
        memories: int | None = typer.Option(
            None, "--memories", help="memories per node and side (multiplexing) (default 1)"
        ),
        protocol: str | None = typer.Option(
            None, "--protocol", help="swap-asap | nested (default swap-asap)"
        ),
        purify: str | None = typer.Option(
            None, "--purify", help="purification: bbpssw | dejmps (default none)"
        ),
        rounds: int | None = typer.Option(
            None,
            "--rounds",
            help="purification rounds per level, needing 2^R memories (default 1 with --purify)",
        ),
        cutoff_s: float | None = typer.Option(
            None, "--cutoff-s", help="discard a stored pair older than this (s) (default none)"
        ),
        pairs: str | None = typer.Option(
            None, "--pairs", help="end-to-end pairs to deliver, e.g. 1e4 (default 1000)"
        ),
        seed: int | None = typer.Option(
            None, "--seed", help="seed of the random streams (default 0)"
        ),
        link_fidelity: float | None = typer.Option(
            None, "--link-fidelity", help="textbook: Werner elementary pairs of this fidelity"
        ),
        link_success_prob: float | None = typer.Option(
            None, "--link-success-prob", help="textbook: link success probability per attempt"
        ),
        swap_success_prob: float | None = typer.Option(
            None, "--swap-success-prob", help="success probability of a swap (default 1)"
        ),
        attempt_s: float | None = typer.Option(
            None,
            "--attempt-s",
            help="duration of one attempt (s) (default the heralding round trip)",
        ),
        loss_db_per_km: float | None = typer.Option(
            None, "--loss-db-per-km", help="fiber attenuation (dB/km) (default 0.2)"
        ),
        detector_efficiency: float | None = typer.Option(
            None,
            "--detector-efficiency",
            help="heralding detector efficiency (default the scheme's)",
        ),
        dark_count_prob: float | None = typer.Option(
            None,
            "--dark-count-prob",
            help="dark counts per detector and attempt (default the scheme's)",
        ),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        options = chain_options(
            nodes=nodes,
            link_length_km=link_length_km,
            scheme=scheme,
            memory_t2_s=memory_t2_s,
            memories=memories,
            protocol=protocol,
            purify=purify,
            rounds=rounds,
            cutoff_s=cutoff_s,
            pairs=pairs,
            seed=seed,
            link_fidelity=link_fidelity,
            link_success_prob=link_success_prob,
            swap_success_prob=swap_success_prob,
            attempt_s=attempt_s,
            loss_db_per_km=loss_db_per_km,
            detector_efficiency=detector_efficiency,
            dark_count_prob=dark_count_prob,
        )
        out = run_chain(kind, options)
        if as_json:
            emit_json(out)
        else:
            _print_chain(out)

    command.__doc__ = doc
    return command


app.command("chain")(
    _chain_command(
        "simulate",
        "Simulate a repeater chain: fidelity, waiting time, rate, QBER, CHSH, key rate.",
    )
)
app.command("analytic")(
    _chain_command(
        "analytic",
        "The same chain from closed forms and exact recursions where they exist (no wall time).",
    )
)


def check_plot_path(plot: Path | None) -> None:
    """``--plot`` names a .png or .svg file (matplotlib picks the format from the suffix)."""
    if plot is not None and plot.suffix.lower() not in PLOT_SUFFIXES:
        raise CliUsageError(f"--plot {plot}: the file name must end in .png or .svg")


def compare_grid(length_km: float, step_km: float | None) -> list[float]:
    """Total distances of the table: 0, step, 2 step, ... up to and including ``length_km``."""
    if not (math.isfinite(length_km) and length_km > 0):
        raise CliUsageError(f"--length-km {length_km!r}: must be a finite number > 0")
    step = length_km / 10 if step_km is None else step_km
    if not (math.isfinite(step) and 0 < step <= length_km):
        raise CliUsageError(f"--step-km {step_km!r}: must be a number in (0, --length-km]")
    count = math.floor(length_km / step + 1e-9)
    grid = [i * step for i in range(count + 1)]
    if length_km - grid[-1] > 1e-9 * length_km:
        grid.append(length_km)
    return grid


def _print_compare(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"Key rate against total distance: {out['nodes']} nodes ({out['hops']} hops), "
        f"clock {out['clock_rate_hz']:.3g} Hz"
    )
    for name in ("total km", "direct", "trusted nodes", "repeater chain", "PLOB bound"):
        table.add_column(name, justify="right")
    for row in out["rows"]:
        plob = _fmt(row["plob_bps"], ".3e") + (" (capped)" if row["plob_capped"] else "")
        table.add_row(
            f"{row['length_km']:g}",
            _fmt(row["direct_bps"], ".3e"),
            _fmt(row["trusted_node_bps"], ".3e"),
            _fmt(row["repeater_bps"], ".3e"),
            plob,
        )
    console = Console()
    console.print(table)
    console.print("secret bit/s between the end users; '-': no closed form at that distance")
    crossover = out["crossover_km"]
    console.print(
        "repeater above PLOB from: "
        + ("never on this grid" if crossover is None else f"{crossover:.1f} km")
    )
    console.print(Text(f"repeater: {out['repeater_note']}"))


def _plot_compare(result: Any, plot: Path) -> None:
    """Rates of the three architectures and the PLOB bound (bit/s on the right-hand axis)."""
    import numpy as np

    from qnetkit.keyrate.common import KeyRateCurve
    from qnetkit.ops.plots import plot_key_rate_comparison

    clock = result.clock_rate_hz
    lengths = result.column("length_km")
    curves = [
        KeyRateCurve(
            protocol=name,
            length_km=lengths,
            key_rate_per_pulse=np.nan_to_num(result.column(column) / clock, nan=0.0),
            qber=np.full_like(lengths, np.nan),
            transmittance=np.full_like(lengths, np.nan),
        )
        for name, column in (
            ("direct", "direct_bps"),
            ("trusted", "trusted_node_bps"),
            ("repeater", "repeater_bps"),
        )
    ]
    plob = np.where(
        np.array([r.plob_capped for r in result.rows]), np.nan, result.column("plob_bits_per_use")
    )
    labels = [
        "direct decoy BB84",
        f"trusted nodes ({result.hops} hops)",
        f"repeater chain ({result.nodes} nodes)",
    ]
    try:
        plot_key_rate_comparison(
            curves,
            labels,
            lengths,
            plob,
            "PLOB bound (fiber only)",
            plot,
            title="Trusted nodes vs repeater chain vs direct QKD vs PLOB",
            pulse_rate_hz=clock,
        )
    except OSError as exc:
        raise CliUsageError(f"--plot {plot}: cannot write ({exc.strerror})") from None


@app.command("compare")
def compare_cmd(
    length_km: float = typer.Option(..., "--length-km", help="largest total distance (km)"),
    step_km: float | None = typer.Option(
        None, "--step-km", help="distance between table rows (km) (default length / 10)"
    ),
    nodes: int = typer.Option(5, "--nodes", help="nodes of the trusted and repeater chains"),
    clock_rate_hz: float = typer.Option(
        1e9, "--clock-rate-hz", help="pulses (channel uses) per second of direct QKD and PLOB"
    ),
    scheme: str | None = typer.Option(None, "--scheme", help="repeater heralding scheme"),
    memory_t2_s: float | None = typer.Option(None, "--memory-t2-s", help="repeater memory T2 (s)"),
    memories: int | None = typer.Option(None, "--memories", help="repeater memories per side"),
    protocol: str | None = typer.Option(None, "--protocol", help="swap-asap | nested"),
    purify: str | None = typer.Option(None, "--purify", help="bbpssw | dejmps"),
    rounds: int | None = typer.Option(None, "--rounds", help="purification rounds"),
    link_fidelity: float | None = typer.Option(
        None, "--link-fidelity", help="textbook: Werner elementary pairs"
    ),
    link_success_prob: float | None = typer.Option(
        None, "--link-success-prob", help="textbook: link success probability per attempt"
    ),
    swap_success_prob: float | None = typer.Option(
        None, "--swap-success-prob", help="swap success probability"
    ),
    attempt_s: float | None = typer.Option(None, "--attempt-s", help="attempt duration (s)"),
    detector_efficiency: float | None = typer.Option(
        None, "--detector-efficiency", help="repeater heralding detector efficiency"
    ),
    dark_count_prob: float | None = typer.Option(
        None, "--dark-count-prob", help="repeater dark counts per detector and attempt"
    ),
    plot: Path | None = typer.Option(None, "--plot", help="also draw the curves (.png or .svg)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Trusted nodes vs repeater chain vs direct QKD vs the PLOB bound, against total distance.

    The repeater column is ``repeater analytic`` (its flags, same names) with links of
    total / (nodes - 1) km; empty where it has no closed form (a cutoff, purification).
    """
    check_plot_path(plot)
    grid = compare_grid(length_km, step_km)
    repeater = chain_options(
        scheme=scheme,
        memory_t2_s=memory_t2_s,
        memories=memories,
        protocol=protocol,
        purify=purify,
        rounds=rounds,
        link_fidelity=link_fidelity,
        link_success_prob=link_success_prob,
        swap_success_prob=swap_success_prob,
        attempt_s=attempt_s,
        detector_efficiency=detector_efficiency,
        dark_count_prob=dark_count_prob,
    )
    from qnetkit.entanglement.compare import compare_architectures

    result = compare_architectures(
        grid, nodes=nodes, clock_rate_hz=clock_rate_hz, repeater_options=repeater
    )
    out = _plain(result.to_dict())
    if plot is not None:
        import numpy as np

        fine = compare_architectures(
            np.linspace(0.0, length_km, COMPARE_PLOT_POINTS),
            nodes=nodes,
            clock_rate_hz=clock_rate_hz,
            repeater_options=repeater,
        )
        _plot_compare(fine, plot)
        out["plot"] = str(plot)
    if as_json:
        emit_json(out)
    else:
        _print_compare(out)
        if plot is not None:
            from rich.console import Console

            Console().print(f"plot written to {plot}")


# Registered last: the sweep runs `run_chain` of this module in every task.
from qnetkit.cli.repeater_sweep import sweep as _sweep  # noqa: E402

app.command("sweep")(_sweep)
