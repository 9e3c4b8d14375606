"""The demo's repeater section: trusted nodes, a repeater chain and direct QKD from 200 to
400 km, and one repeater segment in a network run with its report.

Every architecture runs on the same 0.21 dB/km fiber (decoy BB84 at the ``gys2004`` preset
for direct and trusted-node QKD, 1 GHz clock; ``entanglement.compare``). The repeater is the
twin's own repeater-chain link (``network.repeater_link``): 9 stations, Barrett-Kok
heralding, 10 memories per side, BBM92 on the delivered pairs, with two memory coherence
times: 10 ms (the order of today's memories in networked experiments, an assumption) and
1 s (projected). PLOB is the repeaterless bound of the whole distance at the same clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.entanglement.compare import compare_architectures
from qnetkit.network.link_parts import RepeaterChainSpec
from qnetkit.network.repeater_link import repeater_link_rate

DISTANCES_KM = (200.0, 250.0, 300.0, 350.0, 400.0)
STATIONS = 9
MEMORIES = 10
T2_TODAY_S = 0.01
T2_PROJECTED_S = 1.0
LOSS_DB_PER_KM = 0.21  # the gys2004 fiber of the direct and trusted-node columns


@dataclass(frozen=True)
class RepeaterStudy:
    """Rates in bit/s at each total distance, per architecture."""

    length_km: FloatArray
    direct_bps: FloatArray
    trusted_bps: FloatArray
    repeater_today_bps: FloatArray
    repeater_projected_bps: FloatArray
    plob_bps: FloatArray

    def rows(self) -> list[dict[str, float]]:
        return [{"length_km": float(self.length_km[i]), "direct_bps": float(self.direct_bps[i]),
                 "trusted_nodes_bps": float(self.trusted_bps[i]),
                 "repeater_t2_10ms_bps": float(self.repeater_today_bps[i]),
                 "repeater_t2_1s_bps": float(self.repeater_projected_bps[i]),
                 "plob_bps": float(self.plob_bps[i])} for i in range(self.length_km.size)]


def _repeater_rates(t2_s: float) -> Any:
    spec = RepeaterChainSpec(nodes=STATIONS, scheme="double-click", memories=MEMORIES,
                             memory_t2_s=t2_s)

    def rates(lengths: FloatArray) -> FloatArray:
        return np.array([repeater_link_rate(spec, float(length), LOSS_DB_PER_KM)
                         .secret_key_rate_bps for length in lengths])

    return rates


def repeater_study() -> RepeaterStudy:
    lengths = np.array(DISTANCES_KM)
    today = compare_architectures(lengths, nodes=STATIONS,
                                  repeater_key_rate_bps=_repeater_rates(T2_TODAY_S))
    projected = _repeater_rates(T2_PROJECTED_S)(lengths)
    return RepeaterStudy(
        length_km=lengths, direct_bps=today.column("direct_bps"),
        trusted_bps=today.column("trusted_node_bps"),
        repeater_today_bps=today.column("repeater_bps"),
        repeater_projected_bps=np.asarray(projected), plob_bps=today.column("plob_bps"))


def write_repeater_section(out: Path) -> dict[str, Any]:
    """The comparison (table, plot) and a day of ``examples/repeater-vs-trusted.yaml`` with
    the comparison in its report. Returns what the demo prints and its JSON carries."""
    from qnetkit.network.examples import example_path
    from qnetkit.network.simulate import simulate, write_run
    from qnetkit.network.topology import load_topology
    from qnetkit.ops.plots import plot_rates_vs_distance
    from qnetkit.ops.report import ReportSection, write_report

    study = repeater_study()
    plot = plot_rates_vs_distance(
        study.length_km,
        [("direct QKD (decoy BB84)", study.direct_bps),
         (f"trusted nodes ({STATIONS - 1} hops)", study.trusted_bps),
         ("repeater chain, T2 = 10 ms", study.repeater_today_bps),
         ("repeater chain, T2 = 1 s", study.repeater_projected_bps)],
        out / "repeater-compare.png",
        title=(f"{STATIONS}-station repeater (double-click, {MEMORIES} memories/side, BBM92) vs "
               "trusted nodes vs direct QKD, 0.21 dB/km, 1 GHz"),
        reference=("PLOB bound (whole distance, 1 GHz)", study.plob_bps))
    topo = load_topology(example_path("repeater-vs-trusted"))
    result = simulate(topo, duration_s=86400.0, seed=1)
    run_dir = write_run(result, out / "repeater-run")
    headers = ("total km", "direct bit/s", "trusted nodes bit/s", "repeater T2 10 ms bit/s",
               "repeater T2 1 s bit/s", "PLOB bit/s")
    rows = tuple(tuple(f"{v:.3g}" for v in (r["length_km"], r["direct_bps"],
                                            r["trusted_nodes_bps"], r["repeater_t2_10ms_bps"],
                                            r["repeater_t2_1s_bps"], r["plob_bps"]))
                 for r in study.rows())
    section = ReportSection(
        title="Repeater chain vs trusted nodes vs direct QKD",
        note=(__doc__ or "").split("\n\n", 1)[1].replace("\n", " ").strip(),
        image_png=plot, headers=headers, rows=rows)
    report = write_report(run_dir, out / "repeater-report.html", sections=[section])
    s = result.summary()
    link = next(ln for ln in s["links"] if ln["id"] == "west-east-repeater")
    return {"rows": study.rows(), "plot": str(plot), "run_dir": str(run_dir),
            "report": str(report), "repeater_link": link, "demands": s["demands"]}


__all__ = ["RepeaterStudy", "repeater_study", "write_repeater_section"]
