"""``qnetkit keyrate compare PROTOCOL...``: several protocols on one fiber channel, one PLOB line.

Every protocol is evaluated at the same lengths over the same fiber (``--channel-loss-db-per-km``,
``--extra-loss-db``) and, where given, with the same device values (``--detector-efficiency``,
``--dark-count-prob``, ``--misalignment-error``) in place of its preset's; a value a protocol has
no parameter for is listed as not applied. Its preset supplies everything else.

The PLOB repeaterless bound -log2(1 - eta) (Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun.
8, 15043 (2017), Eq. (19)) is drawn once, with one convention, stated in the table, the JSON and
the plot: by default eta is the channel transmittance 10^(-(alpha L + extra)/10) alone (the bound
on the channel the protocols share); ``--plob-includes-detector`` multiplies it by
``--detector-efficiency``. The bound is infinite at eta = 1 (0 km): it is capped at
``PLOB_CAP_BITS_PER_USE`` there (flagged ``clamped``), and capped points are left off the plot.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import typer

from qnetkit.cli.errors import CliUsageError

PLOB_SOURCE = "Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun. 8, 15043 (2017), Eq. (19)"
PLOT_POINTS = 301

# Shared flag -> the protocol parameter it sets.
_DEVICE_FLAGS = {
    "detector_efficiency": "--detector-efficiency",
    "dark_count_prob": "--dark-count-prob",
    "misalignment_error": "--misalignment-error",
}
_CHANNEL_FLAGS = {
    "loss_db_per_km": "--channel-loss-db-per-km",
    "extra_loss_db": "--extra-loss-db",
}


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One protocol of the comparison as the user named it (NAME or NAME:PRESET)."""

    label: str
    name: str
    preset: str | None


def _parse_entries(items: list[str]) -> list[_Entry]:
    from qnetkit.keyrate.registry import PROTOCOL_NAMES

    allowed = [n for n in PROTOCOL_NAMES if n != "plob"]
    entries: list[_Entry] = []
    for item in items:
        name, _, preset = item.partition(":")
        if name == "plob":
            raise CliUsageError(
                "plob: the PLOB bound is always drawn as the reference (see "
                "--plob-includes-detector); compare protocols: " + ", ".join(allowed)
            )
        if name not in allowed:
            raise CliUsageError(f"unknown protocol {name!r} (known: {', '.join(allowed)})")
        if any(e.label == item for e in entries):
            raise CliUsageError(f"{item}: named twice")
        entries.append(_Entry(label=item, name=name, preset=preset or None))
    return entries


def _check_finite_nonnegative(flag: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise CliUsageError(f"{flag} {value}: must be a finite number >= 0")


def split_shared_values(
    params_type: type[Any], given: dict[str, float]
) -> tuple[dict[str, float], list[str]]:
    """The shared values a protocol's parameters take, and the flags of those it has no field for.

    ``given`` maps parameter names (``loss_db_per_km``, ``detector_efficiency``, ...) to values.
    """
    fields = {f.name for f in dataclasses.fields(params_type)}
    flags = {**_CHANNEL_FLAGS, **_DEVICE_FLAGS}
    taken = {k: v for k, v in given.items() if k in fields}
    return taken, [flags.get(k, k) for k in given if k not in fields]


def _value(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def _plob_convention(
    includes_detector: bool, detector_efficiency: float | None, loss: float, extra: float
) -> dict[str, Any]:
    channel = f"10^(-({loss:g} dB/km x L + {extra:g} dB)/10)"
    if includes_detector:
        return {
            "convention": "channel-and-detector",
            "includes_detector": True,
            "detector_efficiency": detector_efficiency,
            "description": f"channel x detector efficiency {detector_efficiency:g}",
            "formula": f"-log2(1 - eta), eta = {detector_efficiency:g} x {channel}",
        }
    return {
        "convention": "channel",
        "includes_detector": False,
        "detector_efficiency": None,
        "description": "channel transmittance only, detector efficiency not included",
        "formula": f"-log2(1 - eta), eta = {channel}",
    }


def compare(
    protocols: list[str] = typer.Argument(
        ...,
        metavar="PROTOCOL[:PRESET]",
        help="protocols to compare, e.g. decoy-bb84 tf-qkd:lucamarini2018-ideal",
        show_default=False,
    ),
    channel_loss_db_per_km: float = typer.Option(
        0.2, "--channel-loss-db-per-km", help="fiber attenuation of the shared channel (dB/km)"
    ),
    extra_loss_db: float = typer.Option(
        0.0, "--extra-loss-db", help="lumped losses of the shared channel (dB)"
    ),
    detector_efficiency: float | None = typer.Option(
        None,
        "--detector-efficiency",
        help="detector efficiency for every protocol (default: each preset's)",
        show_default=False,
    ),
    dark_count_prob: float | None = typer.Option(
        None,
        "--dark-count-prob",
        help="dark-count probability per gate for every protocol (default: each preset's)",
        show_default=False,
    ),
    misalignment_error: float | None = typer.Option(
        None,
        "--misalignment-error",
        help="misalignment error for every protocol (default: each preset's)",
        show_default=False,
    ),
    sweep: str = typer.Option(
        "0:300:20", "--sweep", metavar="START:STOP:STEP", help="lengths of the table (km)"
    ),
    pulse_rate_hz: float | None = typer.Option(
        None,
        "--pulse-rate-hz",
        help="pulses per second: also give rates in bit/s (no preset states one)",
        show_default=False,
    ),
    plob_includes_detector: bool = typer.Option(
        False,
        "--plob-includes-detector",
        help="PLOB on channel x --detector-efficiency (default: the channel alone)",
    ),
    plot: Path | None = typer.Option(
        None, "--plot", metavar="FILE.png|svg", help="draw every protocol and the PLOB line"
    ),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
) -> None:
    """Several protocols on one fiber channel, with the PLOB bound under one stated convention."""
    # Imported here, when the command runs: keyrate_cmd imports this module for the command.
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from qnetkit.cli.keyrate_cmd import (
        check_plot_path,
        check_pulse_rate,
        fmt_bps,
        fmt_plob,
        fmt_qber,
        no_pulse_rate_note,
        parse_sweep,
        rate_bps,
        zero_rate_qber,
    )
    from qnetkit.cli.output import emit_json
    from qnetkit.keyrate.max_distance import max_distance_km
    from qnetkit.keyrate.plob import (
        PLOB_CAP_BITS_PER_USE,
        PLOBParams,
        plob_bound_capped,
        plob_key_rate,
    )
    from qnetkit.keyrate.registry import get_protocol

    _check_finite_nonnegative("--channel-loss-db-per-km", channel_loss_db_per_km)
    _check_finite_nonnegative("--extra-loss-db", extra_loss_db)
    check_pulse_rate(pulse_rate_hz)
    check_plot_path(plot)
    if plob_includes_detector and detector_efficiency is None:
        raise CliUsageError(
            "--plob-includes-detector needs --detector-efficiency (the one value to fold into "
            "the PLOB channel)"
        )
    entries = _parse_entries(protocols)
    lengths = parse_sweep(sweep)

    channel = {"loss_db_per_km": channel_loss_db_per_km, "extra_loss_db": extra_loss_db}
    devices = {
        "detector_efficiency": detector_efficiency,
        "dark_count_prob": dark_count_prob,
        "misalignment_error": misalignment_error,
    }
    given = {**channel, **{k: v for k, v in devices.items() if v is not None}}
    results: list[dict[str, Any]] = []
    evaluators = []
    for entry in entries:
        spec = get_protocol(entry.name)
        overrides, not_applied = split_shared_values(spec.params_type, given)
        try:
            params = spec.params_from(entry.preset, overrides)
        except KeyError as exc:
            raise CliUsageError(str(exc.args[0])) from None

        def evaluate(x: Any, spec: Any = spec, params: Any = params) -> Any:
            return spec.evaluate(params, x)

        curve = evaluate(lengths)
        reach = max_distance_km(evaluate)
        mu_fixed = getattr(params, "mu", None) is not None
        points = []
        for i, length in enumerate(lengths):
            rate = float(curve.key_rate_per_pulse[i])
            mu = None if curve.mu is None or not spec.has_mu else float(curve.mu[i])
            points.append(
                {
                    "length_km": float(length),
                    "key_rate_per_pulse": rate,
                    "key_rate_bps": rate_bps(rate, pulse_rate_hz),
                    "qber": zero_rate_qber(rate, float(curve.qber[i])),
                    "mu": mu if (mu_fixed or rate > 0) else None,
                }
            )
        results.append(
            {
                "label": entry.label,
                "protocol": spec.name,
                "preset": entry.preset or spec.default_preset,
                "source": spec.source,
                "params": {f.name: getattr(params, f.name) for f in dataclasses.fields(params)},
                "not_applied": not_applied,
                "max_distance_km": reach if math.isfinite(reach) else None,
                "points": points,
            }
        )
        evaluators.append(evaluate)

    plob_params = PLOBParams(
        loss_db_per_km=channel_loss_db_per_km,
        extra_loss_db=extra_loss_db,
        detector_efficiency=(
            detector_efficiency
            if plob_includes_detector and detector_efficiency is not None
            else 1.0
        ),
    )
    bound, clamped = plob_bound_capped(plob_key_rate(plob_params, lengths).transmittance)
    plob = {
        **_plob_convention(
            plob_includes_detector, detector_efficiency, channel_loss_db_per_km, extra_loss_db
        ),
        "source": PLOB_SOURCE,
        "cap_bits_per_use": PLOB_CAP_BITS_PER_USE,
        "points": [
            {
                "length_km": float(length),
                "bits_per_use": float(bound[i]),
                "bps": rate_bps(float(bound[i]), pulse_rate_hz),
                "clamped": bool(clamped[i]),
            }
            for i, length in enumerate(lengths)
        ],
    }
    plob_label = f"PLOB bound ({plob['description']})"

    if plot is not None:
        from qnetkit.ops.plots import plot_key_rate_comparison

        grid = (
            lengths
            if len(lengths) >= PLOT_POINTS
            else np.linspace(lengths[0], lengths[-1], PLOT_POINTS)
        )
        ref_bound, ref_clamped = plob_bound_capped(plob_key_rate(plob_params, grid).transmittance)
        try:
            plot_key_rate_comparison(
                [evaluate(grid) for evaluate in evaluators],
                [r["label"] for r in results],
                grid[~ref_clamped],
                ref_bound[~ref_clamped],
                plob_label,
                plot,
                title=(
                    f"Secret key rate on one channel: {channel_loss_db_per_km:g} dB/km fiber"
                    f"\nPLOB: {plob['description']}"
                ),
                pulse_rate_hz=pulse_rate_hz,
            )
        except OSError as exc:
            raise CliUsageError(f"--plot {plot}: cannot write ({exc.strerror})") from None

    if json_out:
        emit_json(
            {
                "channel": channel,
                "device_values": devices,
                "pulse_rate_hz": pulse_rate_hz,
                "protocols": results,
                "plob": plob,
            }
        )
        return

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
    console.print(
        f"One channel: {channel_loss_db_per_km:g} dB/km fiber, {extra_loss_db:g} dB extra loss. "
        f"Device values not given come from each preset."
    )
    console.print(f"PLOB: {plob['description']}: {plob['formula']} — {PLOB_SOURCE}")
    setup = Table(title="protocols")
    for column in ("protocol", "preset", "detector eff.", "dark count", "misalignment"):
        setup.add_column(column, justify="left" if column in ("protocol", "preset") else "right")
    setup.add_column("max distance (km)", justify="right")
    # A column only when some protocol lacks a parameter that was given (none does today).
    refused = any(r["not_applied"] for r in results)
    if refused:
        setup.add_column("not applied")
    for r in results:
        p = r["params"]
        reach_km = r["max_distance_km"]
        row = [
            r["label"],
            r["preset"],
            *(_value(p.get(name)) for name in _DEVICE_FLAGS),
            "unbounded" if reach_km is None else f"{reach_km:.1f}",
        ]
        if refused:
            row.append(", ".join(r["not_applied"]) or "-")
        setup.add_row(*row)
    console.print(setup)
    if not refused:
        console.print("Every protocol took every channel and device value given.")
    rates = Table(title="key rate by length")
    rates.add_column("length (km)", justify="right")
    rates.add_column("protocol")
    rates.add_column("key rate (bits/pulse)", justify="right")
    if pulse_rate_hz is not None:
        rates.add_column("key rate (bit/s)", justify="right")
    rates.add_column("QBER", justify="right")
    for i, length in enumerate(lengths):
        for r in results:
            q = r["points"][i]
            row = [f"{length:.1f}", r["label"], f"{q['key_rate_per_pulse']:.4e}"]
            if pulse_rate_hz is not None:
                row.append(fmt_bps(q["key_rate_bps"]))
            rates.add_row(*row, fmt_qber(q["qber"]))
        ref = plob["points"][i]
        row = [f"{length:.1f}", "PLOB", fmt_plob(ref["bits_per_use"], ref["clamped"])]
        if pulse_rate_hz is not None:
            row.append(("≥" if ref["clamped"] else "") + fmt_bps(ref["bps"]))
        rates.add_row(*row, "n/a", end_section=True)
    console.print(rates)
    if pulse_rate_hz is None:
        console.print(no_pulse_rate_note("no preset"))
    else:
        console.print(f"bit/s = bits/pulse x {pulse_rate_hz:g} pulses/s")
    if any(bool(c) for c in clamped):
        console.print(
            f"PLOB capped at {PLOB_CAP_BITS_PER_USE:g} bits/use where it diverges (0 km; ≥)"
        )
    if plot is not None:
        console.print(f"plot written to {plot}")
