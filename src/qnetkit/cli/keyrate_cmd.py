"""``qnetkit keyrate PROTOCOL``: one subcommand per protocol, one flag per physical parameter.

The flags are generated from each protocol's parameter dataclass, so a new field is a new flag.
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

from qnetkit._types import FloatArray
from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.output import emit_json
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import KeyRateCurve
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.plob import plob_bound
from qnetkit.keyrate.registry import PROTOCOL_NAMES, ProtocolSpec, get_protocol

MAX_SWEEP_POINTS = 100_000

app = typer.Typer(
    help="Secret key rate of a QKD protocol over fiber: one distance, a sweep, or the maximum.",
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


def _params_dict(params: Any) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def _point(curve: KeyRateCurve, i: int, has_mu: bool) -> dict[str, Any]:
    point: dict[str, Any] = {
        "length_km": float(curve.length_km[i]),
        "key_rate_per_pulse": float(curve.key_rate_per_pulse[i]),
        "qber": float(curve.qber[i]),
    }
    if has_mu and curve.mu is not None:
        point["mu"] = float(curve.mu[i])
    point["transmittance"] = float(curve.transmittance[i])
    point["plob_bound"] = float(plob_bound(curve.transmittance[i]))
    point["details"] = {name: float(values[i]) for name, values in curve.extra.items()}
    return point


def _fmt(value: float, spec: str) -> str:
    return "n/a" if not math.isfinite(value) else format(value, spec)


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
    if plot is not None and plot.suffix.lower() != ".png":
        raise CliUsageError(f"--plot {plot}: the file name must end in .png")
    if max_distance and sweep:
        raise CliUsageError("--max-distance and --sweep cannot be combined")
    lengths = parse_sweep(sweep) if sweep else None
    header = {"protocol": spec.name, "preset": preset or spec.default_preset}
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
        points = [_point(curve, i, spec.has_mu) for i in range(len(lengths))]
        if json_out:
            emit_json({**header, "params": _params_dict(params), "points": points})
            return
        table = Table(title=f"{spec.name} ({header['preset']}) — {spec.source}")
        table.add_column("length (km)", justify="right")
        table.add_column("key rate (bits/pulse)", justify="right")
        table.add_column("QBER", justify="right")
        if spec.has_mu:
            table.add_column("mu", justify="right")
        table.add_column("PLOB bound", justify="right")
        for p in points:
            row = [
                f"{p['length_km']:.1f}",
                f"{p['key_rate_per_pulse']:.4e}",
                _fmt(100 * p["qber"], ".3f") + (" %" if math.isfinite(p["qber"]) else ""),
            ]
            if spec.has_mu:
                row.append(_fmt(p.get("mu", math.nan), ".4f"))
            row.append(f"{p['plob_bound']:.4e}")
            table.add_row(*row)
        console.print(table)
        if plot is not None:
            console.print(f"plot written to {plot}")
        return

    curve = evaluate(np.array([length_km]))
    if plot is not None:
        _plot(spec, evaluate(np.linspace(0.0, max(2 * length_km, 1.0), 400)), plot)
    point = _point(curve, 0, spec.has_mu)
    if json_out:
        emit_json({**header, **point, "params": _params_dict(params)})
        return
    console.print(f"{spec.name} ({header['preset']}) at {length_km:g} km — {spec.source}")
    console.print(f"  key rate      {point['key_rate_per_pulse']:.4e} bits/pulse")
    qber = point["qber"]
    console.print(f"  QBER          {_fmt(100 * qber, '.3f')}{' %' if math.isfinite(qber) else ''}")
    if "mu" in point:
        console.print(f"  mu            {point['mu']:.4f}")
    console.print(
        f"  transmittance {point['transmittance']:.4e}  "
        f"(PLOB bound {point['plob_bound']:.4e} bits/use)"
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
            "plot",
            Path | None,
            None,
            "--plot",
            metavar="FILE.png",
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
