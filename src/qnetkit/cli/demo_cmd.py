"""``qnetkit demo``: every protocol at its preset over distance, as a table and a plot."""

from __future__ import annotations

import math
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.output import emit_json
from qnetkit.keyrate.common import KeyRateCurve
from qnetkit.keyrate.max_distance import max_distance_km
from qnetkit.keyrate.plob import PLOB_CAP_BITS_PER_USE
from qnetkit.keyrate.registry import PROTOCOL_NAMES, get_protocol

TABLE_KM = np.arange(0.0, 501.0, 50.0)
# Monte-Carlo links run by the demo: (length_km, pulses) with the gys2004 link.
DEMO_LINKS = ((10.0, 4 * 10**8), (50.0, 2 * 10**9))


def _link_runs() -> tuple[list[dict[str, object]], tuple[bytes, bytes]]:
    """Whole simulated links (qnetkit.qkd): both ends' keys are produced and compared.

    Also returns the first link's two final keys (as bytes) for the key-manager step.
    """
    from qnetkit.qkd.link import LinkConfig, simulate_link

    rows: list[dict[str, object]] = []
    first: tuple[bytes, bytes] | None = None
    for km, pulses in DEMO_LINKS:
        result = simulate_link(LinkConfig(length_km=km, pulses=pulses, seed=1))
        stats = result.stats
        if first is None:
            first = (np.packbits(result.alice_key).tobytes(),
                     np.packbits(result.bob_key).tobytes())
        rows.append(
            {
                k: stats[k]
                for k in (
                    "length_km",
                    "pulses",
                    "sifted_bits",
                    "qber",
                    "ec_efficiency",
                    "secret_key_bits",
                    "key_rate_per_pulse",
                    "keys_match",
                    "wall_s",
                )
            }
        )
    assert first is not None
    return rows, first


def _network_run(out: Path) -> dict[str, object]:
    """The main job: the metro example for one simulated day, a run directory and a report."""
    from qnetkit.network.examples import example_path
    from qnetkit.network.simulate import simulate, write_run
    from qnetkit.network.topology import load_topology
    from qnetkit.ops.report import write_report

    metro = example_path("metro")
    topo = load_topology(metro)
    result = simulate(topo, duration_s=86400.0, seed=1)
    run_dir = write_run(result, out / "metro-run")
    report = write_report(run_dir, out / "report.html")
    s = result.summary()
    return {"topology": str(metro), "run_dir": str(run_dir), "report": str(report),
            "wall_s": result.wall_s, "links": s["links"], "demands": s["demands"],
            "incidents": s["incidents"]}


def _print_network(console: Console, net: dict[str, object]) -> None:
    t = Table(title="Network twin: examples/metro.yaml over one simulated day (fiber cut 8-11 h, "
              "eavesdropper at 14 h, detector ageing)")
    for col in ("demand", "sites", "wanted", "served", "fallback", "policy"):
        t.add_column(col, justify="right")
    demands = net["demands"]
    assert isinstance(demands, list)
    for d in demands:
        t.add_row(d["id"], f"{d['a']}-{d['b']}", f"{d['rate_bps'] / 1e3:.0f} kbit/s",
                  f"{100 * d['served_fraction']:.1f} %", f"{d['fallback_s'] / 60:.0f} min",
                  d["policy"])
    console.print(t)
    incidents = net["incidents"]
    assert isinstance(incidents, list)
    for inc in incidents:
        det = "" if inc["detected_s"] is None else f", detected {inc['detected_s'] / 3600:.2f} h"
        console.print(f"  {inc['time_s'] / 3600:5.2f} h  {inc['kind']} on {inc['link']}{det}")
    console.print(f"report: {Path(str(net['report'])).resolve()}")


def _print_repeater(console: Console, rep: dict[str, Any]) -> None:
    t = Table(title="Repeater chain (9 stations, double-click, 10 memories/side, BBM92) vs "
              "trusted nodes vs direct QKD: secret bit/s, 0.21 dB/km, 1 GHz")
    for col in ("km", "direct", "trusted nodes", "repeater T2 10 ms", "repeater T2 1 s",
                "PLOB"):
        t.add_column(col, justify="right")
    for r in rep["rows"]:
        t.add_row(f"{r['length_km']:.0f}", *(
            "-" if r[k] <= 0 else f"{r[k]:.3g}"
            for k in ("direct_bps", "trusted_nodes_bps", "repeater_t2_10ms_bps",
                      "repeater_t2_1s_bps", "plob_bps")))
    console.print(t)
    link = rep["repeater_link"]
    console.print(f"network run: examples/repeater-vs-trusted.yaml, repeater link "
                  f"{link['id']} {link['mean_rate_bps']:.0f} bit/s, making key "
                  f"{100 * link['availability']:.0f} %; report: {rep['report']}")


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="output directory"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
) -> None:
    """The main job end to end: key-rate table and plot, two simulated QKD links, keys delivered
    through two ETSI 014 key managers, and one day of the metro network with an HTML report."""
    started = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliUsageError(f"--out {out}: cannot create directory ({exc.strerror})") from None
    fine = np.linspace(0.0, 600.0, 601)
    table_curves: dict[str, KeyRateCurve] = {}
    plot_curves: list[KeyRateCurve] = []
    labels: list[str] = []
    reach: dict[str, float] = {}
    presets: dict[str, str] = {}
    for name in PROTOCOL_NAMES:
        spec = get_protocol(name)
        params = spec.presets[spec.default_preset]
        presets[name] = spec.default_preset
        table_curves[name] = spec.evaluate(params, TABLE_KM)
        if name != "plob":  # drawn as the dashed reference lines instead
            plot_curves.append(spec.evaluate(params, fine))
            labels.append(f"{name} ({spec.default_preset})")
        reach[name] = max_distance_km(partial(spec.evaluate, params))

    from qnetkit.ops.plots import plot_key_rates

    plob = get_protocol("plob")
    references = [
        ("0.2 dB/km fiber, ideal detectors", plob.evaluate(plob.presets["ideal"], fine)),
        (
            "gys2004 channel: 0.21 dB/km, eta_Bob 4.5 %",
            plob.evaluate(plob.presets["gys2004"], fine),
        ),
    ]
    png = plot_key_rates(
        plot_curves,
        out / "keyrate.png",
        title="qnetkit: secret key rate vs distance (presets)",
        plob_from=references,
        labels=labels,
    )
    links, (alice_key, bob_key) = _link_runs()
    from qnetkit.ops.kms_demo import deliver_link_keys

    kms = deliver_link_keys(out / "kms", alice_key, bob_key)
    network = _network_run(out)
    from qnetkit.ops.repeater_demo import write_repeater_section

    repeater = write_repeater_section(out)
    wall_s = time.perf_counter() - started
    if json_out:
        emit_json(
            {
                "plot": str(png),
                "qkd_links": links,
                "kms": {k: v for k, v in kms.items() if k != "key_ids"},
                "network": network,
                "repeater": {k: v for k, v in repeater.items() if k != "demands"},
                "wall_s": wall_s,
                "protocols": {
                    name: {
                        "preset": presets[name],
                        "max_distance_km": reach[name] if math.isfinite(reach[name]) else None,
                        "points": [
                            {"length_km": float(km),
                             "key_rate_per_pulse": float(min(r, PLOB_CAP_BITS_PER_USE)),
                             "clamped": bool(r > PLOB_CAP_BITS_PER_USE)}
                            for km, r in zip(
                                TABLE_KM, table_curves[name].key_rate_per_pulse, strict=True
                            )
                        ],
                    }
                    for name in PROTOCOL_NAMES
                },
            }
        )
        return
    # Wide enough for every column when stdout is a file or a pipe (rich assumes 80 then).
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 130)
    table = Table(title="Secret key rate (bits per pulse) at each protocol's preset")
    table.add_column("km", justify="right")
    for name in PROTOCOL_NAMES:
        table.add_column(f"{name}\n({presets[name]})", justify="right")
    for i, km in enumerate(TABLE_KM):
        row = [f"{km:.0f}"]
        for name in PROTOCOL_NAMES:
            rate = table_curves[name].key_rate_per_pulse[i]
            # PLOB is infinite at 0 km: shown at its stated cap, never as "inf".
            row.append(f">={PLOB_CAP_BITS_PER_USE:.0f} (cap)" if rate > PLOB_CAP_BITS_PER_USE
                       else f"{rate:.2e}" if rate > 0 else "-")
        table.add_row(*row)
    table.add_row(
        *(
            ["max km"]
            + [
                f"{reach[n]:.1f}" if math.isfinite(reach[n]) else "unbounded"
                for n in PROTOCOL_NAMES
            ]
        )
    )
    console.print(table)
    links_table = Table(
        title="Simulated QKD links (decoy BB84, gys2004 link, Cascade, finite key): photons to "
        "identical keys"
    )
    for col in ("km", "pulses", "sifted bits", "QBER", "EC f", "secret bits", "bits/pulse",
                "keys match", "wall s"):
        links_table.add_column(col, justify="right")
    for r in links:
        links_table.add_row(
            f"{r['length_km']:.0f}",
            f"{r['pulses']:.0e}",
            f"{r['sifted_bits']:,}",
            f"{100 * float(r['qber']):.2f} %",  # type: ignore[arg-type]
            f"{r['ec_efficiency']:.3f}",
            f"{r['secret_key_bits']:,}",
            f"{r['key_rate_per_pulse']:.2e}",
            str(r["keys_match"]),
            f"{r['wall_s']:.2f}",
        )
    console.print(links_table)
    console.print(
        f"Key delivery (ETSI GS QKD 014 over mTLS): the {links[0]['length_km']:.0f} km link's "
        f"keys went into KMEs A and B ({kms['units_per_kme']} units of 256 bits each); sae-a "
        f"took {kms['keys_delivered']} keys at A, sae-b fetched the same key IDs at B: "
        f"identical = {kms['keys_identical_at_both_saes']}"
    )
    _print_network(console, network)
    _print_repeater(console, repeater)
    console.print(f"plot: {png.resolve()}  ({wall_s:.2f} s)")
