"""``qnetkit keyrate PROTOCOL``: one subcommand per protocol, one flag per physical parameter.

The flags are generated from each protocol's parameter dataclass, so a new field is a new flag.
``qnetkit keyrate compare`` (``cli.keyrate_compare``) puts several protocols on one channel.

Rates are printed per pulse and, given ``--pulse-rate-hz``, in bit/s (rate per pulse times
pulses per second). Where the rate is 0 (no key) the QBER, and an optimised intensity, have no
meaning: tables show "-", JSON null. PLOB values go through ``plob_bound_capped`` so that the
infinite bound of a lossless channel (0 km) never reaches a table, JSON or a plot.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from qnetkit._types import FloatArray
from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.keyrate_compare import compare
from qnetkit.cli.output import emit_json
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.plob import PLOB_CAP_BITS_PER_USE, plob_bound_capped
from qnetkit.keyrate.registry import PROTOCOL_NAMES, ProtocolSpec, get_protocol

MAX_SWEEP_POINTS = 100_000
PLOT_SUFFIXES = (".png", ".svg")


class _ProtocolGroup(TyperGroup):
    """``qnetkit keyrate NAME``: an unknown NAME is a one-line error naming the known ones."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            known = ", ".join(c for c in self.list_commands(ctx) if c != "compare")
            raise CliUsageError(
                f"unknown protocol {name!r} (known: {known}; 'compare' puts several on one channel)"
            )
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_ProtocolGroup,
    help=(
        "Secret key rate of a QKD protocol over fiber: one distance, a sweep, or the maximum; "
        "'compare' draws several protocols on one channel."
    ),
    no_args_is_help=True,
)


def parse_sweep(text: str) -> FloatArray:
    """``START:STOP:STEP`` in km, inclusive of STOP when it lies on the grid."""
    parts = text.split(":")
    if len(parts) != 3:
        raise CliUsageError(f"--sweep {text!r}: expected START:STOP:STEP, e.g. 0:200:10")
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise CliUsageError(f"--sweep {text!r}: START, STOP and STEP must be numbers") from None
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise CliUsageError(f"--sweep {text!r}: values must be finite")
    if start < 0:
        raise CliUsageError(f"--sweep {text!r}: START must be >= 0 km")
    if step <= 0:
        raise CliUsageError(f"--sweep {text!r}: STEP must be > 0")
    if stop < start:
        raise CliUsageError(f"--sweep {text!r}: STOP must be >= START")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_SWEEP_POINTS:
        raise CliUsageError(f"--sweep {text!r}: {count} points, at most {MAX_SWEEP_POINTS}")
    return np.asarray(start + step * np.arange(count), dtype=np.float64)


def check_pulse_rate(pulse_rate_hz: float | None) -> None:
    """``--pulse-rate-hz`` must be a finite rate > 0 (or absent)."""
    if pulse_rate_hz is not None and not (math.isfinite(pulse_rate_hz) and pulse_rate_hz > 0):
        raise CliUsageError(f"--pulse-rate-hz {pulse_rate_hz}: must be a finite rate > 0")


def check_plot_path(plot: Path | None) -> None:
    """``--plot`` names a .png or .svg file (matplotlib picks the format from the suffix)."""
    if plot is not None and plot.suffix.lower() not in PLOT_SUFFIXES:
        raise CliUsageError(f"--plot {plot}: the file name must end in .png or .svg")


def zero_rate_qber(rate: float, qber: float) -> float | None:
    """The QBER to report: None where no key is made (the model's QBER there means nothing)."""
    return None if rate <= 0.0 or not math.isfinite(qber) else qber


def rate_bps(rate_per_pulse: float, pulse_rate_hz: float | None) -> float | None:
    """Secret bits per second: bits per pulse times pulses per second (None without a rate)."""
    return None if pulse_rate_hz is None else rate_per_pulse * pulse_rate_hz


def fmt_bps(value: float | None) -> str:
    """A bit rate for people: 222.6 kbit/s, 1.2 Mbit/s; "-" when unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0.0:
        return "0 bit/s"
    exponent = min(max(math.floor(math.log10(abs(value)) / 3), 0), 4)
    return f"{value / 10 ** (3 * exponent):.4g} {('', 'k', 'M', 'G', 'T')[exponent]}bit/s"


def fmt_qber(qber: float | None) -> str:
    return "-" if qber is None else f"{100 * qber:.3f} %"


def fmt_plob(value: float, clamped: bool) -> str:
    return f"≥{value:.4e} (cap)" if clamped else f"{value:.4e}"


def no_pulse_rate_note(what: str) -> str:
    return f"bit/s: give --pulse-rate-hz ({what} states no pulse rate)"


def _params_dict(params: Any) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def _point(
    spec: ProtocolSpec, curve: KeyRateCurve, i: int, mu_fixed: bool, pulse_rate_hz: float | None
) -> dict[str, Any]:
    rate = float(curve.key_rate_per_pulse[i])
    bound, clamped = plob_bound_capped(curve.transmittance[i])
    if spec.name == "plob":
        # The "plob" protocol's rate is the bound itself: capped like the PLOB column.
        rate = float(bound[0])
    point: dict[str, Any] = {
        "length_km": float(curve.length_km[i]),
        "key_rate_per_pulse": rate,
        "key_rate_bps": rate_bps(rate, pulse_rate_hz),
        "qber": zero_rate_qber(rate, float(curve.qber[i])),
    }
    if spec.has_mu and curve.mu is not None:
        # An optimised intensity where no key is made is the optimiser's fallback, not a choice.
        point["mu"] = float(curve.mu[i]) if mu_fixed or rate > 0 else None
    point["transmittance"] = float(curve.transmittance[i])
    point["plob_bound"] = float(bound[0])
    point["plob_clamped"] = bool(clamped[0])
    point["details"] = {name: float(values[i]) for name, values in curve.extra.items()}
    return point


def _rate_cell(spec: ProtocolSpec, point: dict[str, Any]) -> str:
    if spec.name == "plob":
        return fmt_plob(point["key_rate_per_pulse"], point["plob_clamped"])
    return f"{point['key_rate_per_pulse']:.4e}"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def _evaluator(spec: ProtocolSpec, params: Any) -> Callable[[FloatArray], KeyRateCurve]:
    return lambda lengths: spec.evaluate(params, lengths)


def run_keyrate(
    spec: ProtocolSpec,
    *,
    preset: str | None,
    length_km: float,
    max_distance: bool,
    min_rate: float,
    sweep: str | None,
    pulse_rate_hz: float | None,
    plot: Path | None,
    json_out: bool,
    overrides: dict[str, Any],
) -> None:
    """Evaluate one protocol as the flags ask and print the result."""
    try:
        params = spec.params_from(preset, overrides)
    except KeyError as exc:
        raise CliUsageError(str(exc.args[0])) from None
    if not math.isfinite(length_km) or length_km < 0:
        raise CliUsageError(f"--length-km {length_km}: must be a finite distance >= 0")
    if not math.isfinite(min_rate) or min_rate < 0:
        raise CliUsageError(f"--min-rate {min_rate}: must be a finite rate >= 0")
    check_pulse_rate(pulse_rate_hz)
    check_plot_path(plot)
    if max_distance and sweep:
        raise CliUsageError("--max-distance and --sweep cannot be combined")
    lengths = parse_sweep(sweep) if sweep else None
    header = {"protocol": spec.name, "preset": preset or spec.default_preset}
    # No preset states a pulse rate today: bit/s needs --pulse-rate-hz.
    rate_header = {"pulse_rate_hz": pulse_rate_hz}
    mu_fixed = getattr(params, "mu", None) is not None
    evaluate = _evaluator(spec, params)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)

    if max_distance:
        dist = max_distance_km(evaluate, min_rate=min_rate)
        if plot is not None:
            upper = dist * 1.1 if math.isfinite(dist) and dist > 0 else 500.0
            _plot(spec, evaluate(np.linspace(0.0, upper, 400)), plot)
        if json_out:
            emit_json(
                {
                    **header,
                    "max_distance_km": dist if math.isfinite(dist) else None,
                    "min_rate": min_rate,
                    "bounded": math.isfinite(dist),
                    "params": _params_dict(params),
                }
            )
        elif math.isfinite(dist):
            console.print(
                f"{spec.name} ({header['preset']}): maximum distance "
                f"{dist:.2f} km (rate > {min_rate:g} bits/pulse)"
            )
        else:
            console.print(
                f"{spec.name} ({header['preset']}): no finite maximum distance: the "
                f"rate stays above {min_rate:g} at every length (try --min-rate)"
            )
        return

    if lengths is not None:
        curve = evaluate(lengths)
        if plot is not None:
            _plot(spec, curve, plot)
        points = [_point(spec, curve, i, mu_fixed, pulse_rate_hz) for i in range(len(lengths))]
        if json_out:
            emit_json({**header, **rate_header, "params": _params_dict(params), "points": points})
            return
        table = Table(title=f"{spec.name} ({header['preset']}) — {spec.source}")
        table.add_column("length (km)", justify="right")
        table.add_column("key rate (bits/pulse)", justify="right")
        if pulse_rate_hz is not None:
            table.add_column("key rate (bit/s)", justify="right")
        table.add_column("QBER", justify="right")
        if spec.has_mu:
            table.add_column("mu", justify="right")
        table.add_column("PLOB bound", justify="right")
        for p in points:
            row = [f"{p['length_km']:.1f}", _rate_cell(spec, p)]
            if pulse_rate_hz is not None:
                row.append(fmt_bps(p["key_rate_bps"]))
            row.append(fmt_qber(p["qber"]))
            if spec.has_mu:
                row.append(_fmt(p.get("mu"), ".4f"))
            row.append(fmt_plob(p["plob_bound"], p["plob_clamped"]))
            table.add_row(*row)
        console.print(table)
        if pulse_rate_hz is None:
            console.print(no_pulse_rate_note(f"preset {header['preset']}"))
        else:
            console.print(f"bit/s = bits/pulse x {pulse_rate_hz:g} pulses/s")
        if any(p["plob_clamped"] for p in points):
            console.print(
                f"PLOB capped at {PLOB_CAP_BITS_PER_USE:g} bits/use (≥: infinite at 0 km)"
            )
        if plot is not None:
            console.print(f"plot written to {plot}")
        return

    curve = evaluate(np.array([length_km]))
    if plot is not None:
        _plot(spec, evaluate(np.linspace(0.0, max(2 * length_km, 1.0), 400)), plot)
    point = _point(spec, curve, 0, mu_fixed, pulse_rate_hz)
    if json_out:
        emit_json({**header, **rate_header, **point, "params": _params_dict(params)})
        return
    console.print(f"{spec.name} ({header['preset']}) at {length_km:g} km — {spec.source}")
    console.print(f"  key rate      {_rate_cell(spec, point)} bits/pulse")
    if pulse_rate_hz is None:
        note = no_pulse_rate_note(f"preset {header['preset']}")
        console.print(f"                {note}")
    else:
        console.print(
            f"                {fmt_bps(point['key_rate_bps'])} at {pulse_rate_hz:g} pulses/s"
        )
    console.print(f"  QBER          {fmt_qber(point['qber'])}")
    if "mu" in point:
        console.print(f"  mu            {_fmt(point['mu'], '.4f')}")
    console.print(
        f"  transmittance {point['transmittance']:.4e}  "
        f"(PLOB bound {fmt_plob(point['plob_bound'], point['plob_clamped'])} bits/use)"
    )
    if plot is not None:
        console.print(f"plot written to {plot}")


def _plot(spec: ProtocolSpec, curve: KeyRateCurve, path: Path) -> None:
    from qnetkit.ops.plots import plot_key_rates

    try:
        plot_key_rates(
            [curve],
            path,
            title=f"{spec.name}: secret key rate vs distance",
            plob_from=[(f"{spec.name} channel", curve)],
        )
    except OSError as exc:
        raise CliUsageError(f"--plot {path}: cannot write ({exc.strerror})") from None


def _cli_type(annotation: Any) -> Any:
    """The flag type for a dataclass field type: every flag is optional (None = preset)."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        annotation = inner[0]
    return annotation | None


def _option(name: str, annotation: Any, default: Any, flag: str, **info: Any) -> inspect.Parameter:
    """A keyword-only parameter that typer turns into the option ``flag``."""
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=annotation,
        default=typer.Option(default, flag, **info),
    )


def _flag_help(f: dataclasses.Field[Any], preset: str, value: Any) -> str:
    # Parentheses, not brackets: typer renders help as rich markup and would drop "[...]".
    shown = "optimised" if value is None else value
    return f"{f.metadata.get('help', f.name)} (preset {preset}: {shown})"


def _make_command(name: str) -> Callable[..., None]:
    spec = get_protocol(name)
    hints = typing.get_type_hints(spec.params_type)
    field_names = [f.name for f in dataclasses.fields(spec.params_type)]
    presets = ", ".join(sorted(spec.presets))
    common = [
        _option(
            "preset",
            str | None,
            None,
            "--preset",
            help=f"parameter preset (default {spec.default_preset}; known: {presets})",
        ),
        _option("length_km", float, 50.0, "--length-km", help="fiber length Alice-Bob (km)"),
        _option(
            "max_distance", bool, False, "--max-distance", help="print the maximum distance instead"
        ),
        _option(
            "min_rate",
            float,
            0.0,
            "--min-rate",
            help="with --max-distance: rate threshold in bits/pulse (default 0)",
        ),
        _option(
            "sweep",
            str | None,
            None,
            "--sweep",
            metavar="START:STOP:STEP",
            help="table over distance (km)",
        ),
        _option(
            "pulse_rate_hz",
            float | None,
            None,
            "--pulse-rate-hz",
            help="pulses per second: also print the key rate in bit/s (no preset states one)",
            show_default=False,
        ),
        _option(
            "plot",
            Path | None,
            None,
            "--plot",
            metavar="FILE.png|svg",
            help="draw rate vs distance with the PLOB line",
        ),
        _option("json_out", bool, False, "--json", help="print one JSON object on stdout"),
    ]
    preset_values = spec.presets[spec.default_preset]
    physical = [
        _option(
            f.name,
            _cli_type(hints[f.name]),
            None,
            "--" + f.name.replace("_", "-"),
            help=_flag_help(f, spec.default_preset, getattr(preset_values, f.name)),
            show_default=False,
        )
        for f in dataclasses.fields(spec.params_type)
    ]

    def command(**kwargs: Any) -> None:
        overrides = {k: kwargs.pop(k) for k in field_names}
        try:
            run_keyrate(spec, overrides=overrides, **kwargs)
        except ParameterError as exc:
            flag = "--" + exc.name.replace("_", "-")
            raise CliUsageError(f"{flag} {exc.value!r}: {exc.reason}") from None

    parameters = common + physical
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = f"{spec.summary}. Source: {spec.source}."
    return command


for _name in PROTOCOL_NAMES:
    app.command(_name)(_make_command(_name))
app.command("compare")(compare)
