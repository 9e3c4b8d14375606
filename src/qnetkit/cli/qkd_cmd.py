"""``qnetkit qkd ...``: run a simulated QKD link end to end, or one post-processing stage alone.

Flags and output only: the protocol is ``qkd.link``, the two-process runners ``qkd.tcp_run``, the
stage benchmarks ``qkd.bench`` (``reconcile_benchmark``/``amplify_benchmark`` re-exported here).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.output import emit_json
from qnetkit.qkd.attacks import ATTACK_KINDS, DEFAULT_BLINDING_POWER_W
from qnetkit.qkd.bench import amplify_benchmark, reconcile_benchmark
from qnetkit.qkd.channel import (
    DEFAULT_MAX_FRAME_BYTES,
    ChannelError,
    TcpListener,
    parse_address,
)
from qnetkit.qkd.link import (
    RECONCILIATION_METHODS,
    LinkConfig,
    LinkResult,
    make_link_config,
    simulate_link,
)
from qnetkit.qkd.tcp_run import run_alice_tcp, serve_bob

app = typer.Typer(
    help="Simulated QKD links: photons to identical secret keys at both ends.",
    no_args_is_help=True,
)
MIB = 2**20


def _count(name: str, text: str, low: int = 1) -> int:
    """Integers written as 100000000, 1e8 or 1_000_000."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise CliUsageError(f"--{name} {text!r}: not a number") from None
    if not math.isfinite(value) or value != math.floor(value) or value < low:
        raise CliUsageError(f"--{name} {text!r}: must be an integer >= {low}")
    return int(value)


def _floats(name: str, text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise CliUsageError(f"--{name} {text!r}: expected comma-separated numbers") from None
    return values


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr (only on a terminal, never on stdout)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f} %"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done)

        yield update


def build_config(
    *,
    protocol: str,
    preset: str,
    length_km: float,
    pulses: str,
    reconciliation: str,
    seed: int,
    attack: str | None,
    attack_fraction: float | None,
    intensities: str | None,
    intensity_probs: str | None,
    basis_prob_z: float | None,
    dead_time_s: float | None,
    detector_efficiency: float | None,
    dark_count_prob: float | None,
    misalignment_error: float | None,
    loss_db_per_km: float | None,
    block_bits: str | None,
    eps_sec: float | None,
    blinding_power_w: float | None = None,
    key_bases: int = 1,
) -> LinkConfig:
    """Turn the text flags into values and build the LinkConfig as the Python API does.

    Only the parsing of text (counts such as 1e8, comma-separated lists) is done here; every
    option goes by the same name to ``qkd.make_link_config``, the builder ``simulate_link``
    uses, so a run from the command line and one from Python with the same options are the
    same run. Its ParameterError is printed by ``cli.main`` as ``--flag value: reason``.
    """
    options: dict[str, Any] = {
        "protocol": protocol,
        "preset": preset,
        "length_km": length_km,
        "pulses": _count("pulses", pulses),
        "reconciliation": reconciliation,
        "seed": seed,
        "attack": attack,
        "attack_fraction": attack_fraction,
        "intensities": None if intensities is None else _floats("intensities", intensities),
        "intensity_probs": (
            None if intensity_probs is None else _floats("intensity-probs", intensity_probs)
        ),
        "basis_prob_z": basis_prob_z,
        "dead_time_s": dead_time_s,
        "detector_efficiency": detector_efficiency,
        "dark_count_prob": dark_count_prob,
        "misalignment_error": misalignment_error,
        "loss_db_per_km": loss_db_per_km,
        "block_bits": None if block_bits is None else _count("block-bits", block_bits, 4096),
        "eps_sec": eps_sec,
        "blinding_power_w": blinding_power_w,
        "key_bases": key_bases,
    }
    # An absent flag keeps the LinkConfig default, as an absent keyword does in Python.
    return make_link_config(**{k: v for k, v in options.items() if v is not None})


def _write_key(path: Path | None, key: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
    """Write the packed key to ``path``, never readable by others, not even for a moment.

    The bytes go to a new temporary file in the same directory, created 0600 with
    O_CREAT | O_EXCL (so the umask can only narrow it and no existing file is reused), then
    renamed over ``path`` (atomic: readers see the old file or the whole new one).
    """
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(np.packbits(key).tobytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CliUsageError(f"--key-out {str(path)!r}: {exc.strerror or exc}") from None


def _print_run(stats: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"QKD link, {stats['protocol']} over {stats['length_km']:g} km")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    eff = stats["ec_efficiency"]
    phase = stats["phase_error_bound"]
    lo, hi = stats["qber_ci95"]
    rows = [
        ("pulses", f"{stats['pulses']:.3g}"),
        ("sifted bits", f"{stats['sifted_bits']:,}"),
        ("QBER", f"{100 * stats['qber']:.2f} %"),
        ("QBER 95 % CI (Clopper-Pearson)", f"{100 * lo:.2f} - {100 * hi:.2f} %"),
        ("QBER sample bits", f"{stats['qber_sample_bits']:,}"),
        ("key bases", str(stats["key_bases"])),
        ("phase error bound", "-" if phase is None else f"{100 * phase:.2f} %"),
        ("leaked EC bits", f"{stats['leaked_ec_bits']:,}"),
        ("EC efficiency f", "-" if eff is None else f"{eff:.3f}"),
        ("secret key bits", f"{stats['secret_key_bits']:,}"),
        ("key rate per pulse", f"{stats['key_rate_per_pulse']:.3e}"),
        ("keys match", "- (no key)" if stats["keys_match"] is None else str(stats["keys_match"])),
        ("eps_sec per block / run", f"{stats['eps_sec_per_block']:.1e} / "
                                    f"{stats['eps_sec_run']:.1e}"),
        ("eps_cor run", f"{stats['eps_cor_run']:.1e}"),
        ("wall time", f"{stats['wall_s']:.2f} s"),
    ]
    if stats["secret_bits_per_wall_s"]:
        rows.append(("secret bits per wall-second", f"{stats['secret_bits_per_wall_s']:,.0f}"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def _exit_if_aborted(stats: dict[str, Any]) -> None:
    """A run that ended without a key exits 1 with its reason as one line on stderr.

    1, not 2: the input was valid (2 is for bad input) but the link refused to make a key,
    e.g. because the QBER was above the abort threshold. The report is on stdout already.
    """
    if stats["aborted"]:
        reason = " ".join(str(stats["abort_reason"]).split())  # one line, whatever the reason
        sys.stderr.write(f"qnetkit: aborted: {reason}\n")
        raise typer.Exit(1)


@app.command("run")
def run_cmd(
    length_km: float = typer.Option(10.0, "--length-km", help="fiber length (km)"),
    pulses: str = typer.Option("1e8", "--pulses", help="pulses Alice sends, e.g. 1e8"),
    preset: str = typer.Option("gys2004", "--preset", help="link preset (gys2004)"),
    protocol: str = typer.Option("decoy-bb84", "--protocol", help="decoy-bb84 | bbm92"),
    reconciliation: str = typer.Option(
        "cascade", "--reconciliation", help="cascade | cascade-original | ldpc"
    ),
    seed: int = typer.Option(0, "--seed", help="seed of the simulation's random streams"),
    attack: str | None = typer.Option(
        None, "--attack", help=f"eavesdropper: {' | '.join(ATTACK_KINDS)}"
    ),
    attack_fraction: float | None = typer.Option(
        None, "--attack-fraction", help="fraction of pulses attacked, with --attack (default 1)"
    ),
    intensities: str | None = typer.Option(
        None, "--intensities", help="signal,decoy,vacuum intensities (default 0.4,0.17,0)"
    ),
    intensity_probs: str | None = typer.Option(
        None, "--intensity-probs", help="their probabilities (default 0.25,0.5,0.25)"
    ),
    basis_prob_z: float | None = typer.Option(
        None, "--basis-prob-z", help="probability of the Z basis (0.5 = standard BB84)"
    ),
    dead_time_s: float | None = typer.Option(None, "--dead-time-s", help="detector dead time"),
    detector_efficiency: float | None = typer.Option(
        None, "--detector-efficiency", help="eta_Bob (overrides the preset)"
    ),
    dark_count_prob: float | None = typer.Option(
        None, "--dark-count-prob", help="Y0, both detectors (overrides the preset)"
    ),
    misalignment_error: float | None = typer.Option(
        None, "--misalignment-error", help="e_detector (overrides the preset)"
    ),
    loss_db_per_km: float | None = typer.Option(
        None, "--loss-db-per-km", help="fiber attenuation (overrides the preset)"
    ),
    block_bits: str | None = typer.Option(
        None, "--block-bits", help="sifted bits per post-processing block (default 2^22)"
    ),
    eps_sec: float | None = typer.Option(
        None, "--eps-sec", help="secrecy parameter per block (1e-10)"
    ),
    key_bases: int = typer.Option(
        1,
        "--key-bases",
        help="1: key from the more frequent basis, the other tested (Lim et al. 2014); "
        "2: both bases as key (asymptotic proof only, Lo-Chau-Ardehali 2005)",
    ),
    blinding_power_w: float | None = typer.Option(
        None,
        "--blinding-power-w",
        help="CW power Eve shines on Bob's APDs with --attack blinding "
        f"(default {DEFAULT_BLINDING_POWER_W:g} W)",
    ),
    max_frame_mib: float = typer.Option(
        DEFAULT_MAX_FRAME_BYTES / MIB,
        "--max-frame-mib",
        help="largest classical-channel frame accepted from --peer (MiB)",
    ),
    peer: str | None = typer.Option(
        None, "--peer", help="HOST:PORT of a `qnetkit qkd bob --listen` process"
    ),
    key_out: Path | None = typer.Option(
        None, "--key-out", help="write Alice's final key (packed bits) to this file"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Simulate a link: quantum stage, sifting, estimation, EC, verification, PA, auth."""
    if peer is not None:
        try:
            parse_address(peer)
        except ValueError as exc:
            raise CliUsageError(f"--peer {peer!r}: {exc}") from None
    config = build_config(
        protocol=protocol,
        preset=preset,
        length_km=length_km,
        pulses=pulses,
        reconciliation=reconciliation,
        seed=seed,
        attack=attack,
        attack_fraction=attack_fraction,
        intensities=intensities,
        intensity_probs=intensity_probs,
        basis_prob_z=basis_prob_z,
        dead_time_s=dead_time_s,
        detector_efficiency=detector_efficiency,
        dark_count_prob=dark_count_prob,
        misalignment_error=misalignment_error,
        loss_db_per_km=loss_db_per_km,
        block_bits=block_bits,
        eps_sec=eps_sec,
        blinding_power_w=blinding_power_w,
        key_bases=key_bases,
    )
    max_frame = _max_frame_bytes(max_frame_mib)
    with _progress(True) as progress:
        try:
            if peer is not None:
                stats, key = run_alice_tcp(config, peer, max_frame)
            else:
                result: LinkResult = simulate_link(config, progress=progress)
                stats, key = result.stats, result.alice_key
        except ChannelError as exc:
            raise CliUsageError(str(exc)) from None
    _write_key(key_out, key)
    if as_json:
        emit_json(stats)
    else:
        _print_run(stats)
    _exit_if_aborted(stats)


def _max_frame_bytes(mib: float) -> int:
    if not (math.isfinite(mib) and mib > 0):
        raise CliUsageError(f"--max-frame-mib {mib!r}: must be a number > 0")
    return max(1, int(mib * MIB))


@app.command("bob")
def bob_cmd(
    listen: str = typer.Option(..., "--listen", help="HOST:PORT to listen on"),
    max_frame_mib: float = typer.Option(
        DEFAULT_MAX_FRAME_BYTES / MIB,
        "--max-frame-mib",
        help="largest classical-channel frame accepted from Alice (MiB)",
    ),
    key_out: Path | None = typer.Option(
        None, "--key-out", help="write Bob's final key (packed bits) to this file"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Bob's side as a separate process: wait for Alice, run the protocol, report."""
    max_frame = _max_frame_bytes(max_frame_mib)
    try:
        listener = TcpListener(listen)
    except (ChannelError, ValueError) as exc:
        raise CliUsageError(f"--listen {listen!r}: {exc}") from None
    if not as_json:
        Console(stderr=True).print(f"bob: listening on {listen}")
    try:
        ep = listener.accept("bob", max_frame)
    finally:
        listener.close()
    try:
        res = serve_bob(ep)
    except ChannelError as exc:
        raise CliUsageError(str(exc)) from None
    finally:
        ep.close()
    _write_key(key_out, res.key)
    reasons = list(dict.fromkeys(res.stats["abort_reasons"]))
    aborted = res.key.size == 0
    summary = {
        "role": "bob",
        "secret_key_bits": int(res.key.size),
        "sifted_bits": res.stats["sifted_bits"],
        "leaked_ec_bits": res.stats["leaked_ec_bits"],
        "aborted": aborted,
        "abort_reason": (reasons[0] if reasons else "no sifted bits") if aborted else None,
        "abort_reasons": res.stats["abort_reasons"],
    }
    if as_json:
        emit_json(summary)
    else:
        Console().print(summary)
    _exit_if_aborted(summary)


@app.command("reconcile")
def reconcile_cmd(
    method: str = typer.Option("cascade", "--method", help="cascade | cascade-original | ldpc"),
    qber: float = typer.Option(0.03, "--qber", help="bit error rate of Bob's key"),
    bits: str = typer.Option("65536", "--bits", help="frame length (bits)"),
    frames: int = typer.Option(20, "--frames", help="frames to average over"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Reconcile random frames with a given QBER; report efficiency, FER and speed."""
    if method not in RECONCILIATION_METHODS:
        raise CliUsageError(
            f"--method {method!r}: must be one of {', '.join(RECONCILIATION_METHODS)}"
        )
    if not (0.0 < qber < 0.5):
        raise CliUsageError(f"--qber {qber!r}: must be in (0, 0.5)")
    if frames < 1:
        raise CliUsageError(f"--frames {frames!r}: must be >= 1")
    out = reconcile_benchmark(method, qber, _count("bits", bits, 64), frames, seed)
    if as_json:
        emit_json(out)
    else:
        Console().print(out)


@app.command("amplify")
def amplify_cmd(
    bits: str = typer.Option("1000000", "--bits", help="input block length (bits)"),
    output_bits: str = typer.Option(
        "400000", "--output-bits", help="output length (bits), at most --bits"
    ),
    repeat: int = typer.Option(5, "--repeat", help="blocks to time"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Time Toeplitz privacy amplification on random blocks."""
    n = _count("bits", bits)
    m = _count("output-bits", output_bits)
    if m > n:
        raise CliUsageError(f"--output-bits {output_bits!r}: must be <= --bits {n}")
    if repeat < 1:
        raise CliUsageError(f"--repeat {repeat!r}: must be >= 1")
    out = amplify_benchmark(n, m, repeat, seed)
    if as_json:
        emit_json(out)
    else:
        Console().print(out)


__all__ = ["amplify_benchmark", "app", "reconcile_benchmark"]
