"""Peer benchmark: a linear repeater chain in SeQUeNCe with its default hardware.

Runs in a separate virtual environment that has SeQUeNCe (PyPI package ``sequence``, 1.3.x, which
needs Python >= 3.12), never in qnetkit's own environment:

    python3.12 -m venv /work/peer-venv && /work/peer-venv/bin/pip install sequence
    /work/peer-venv/bin/python benchmarks/peers/sequence_chain.py

The chain is the one SeQUeNCe's own ``generate-topology linear N`` builds (10 km per hop,
0.0002 dB/m, 1 ms classical delay, bell_diagonal formalism, its ``default_template``: memories
200 MHz, coherence time 2 s, efficiency 1, raw fidelity 0.9; single-heralded BSM with ideal
detectors), see benchmarks/peers/sequence-defaults.md for the file and line of each value.
Each router gets two
memories (SeQUeNCe's generator default of one cannot serve an interior node, which needs one memory
per side); router_0 asks router_{n-1} for entanglement with one memory and a target fidelity of 0.5
(at or below every fidelity the chain reaches, so no purification rule fires:
swap-as-soon-as-possible, the regime qnetkit's ``protocol="swap-asap"`` models).

Measured per run: delivered end-to-end pairs, their mean fidelity (SeQUeNCe's own bookkeeping of the
Bell-diagonal state when the initiator's application receives the pair), pairs per simulated second
(pairs / (time of the last delivery - request start)), wall seconds of ``Timeline.run``, events
executed, and the elementary-link figures (heralded attempts, successes) from which the link-level
success probability and attempt period are read off. Writes benchmarks/results/sequence_chain.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import sys
import time
import traceback
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sequence.app.request_app import RequestApp
from sequence.constants import BELL_DIAGONAL_STATE_FORMALISM, SECOND, SINGLE_HERALDED
from sequence.entanglement_management.generation import (
    EntanglementGenerationA,
    EntanglementGenerationB,
)
from sequence.entanglement_management.generation.single_heralded import SingleHeraldedA
from sequence.entanglement_management.purification import PurificationProtocol
from sequence.entanglement_management.swapping import EntanglementSwappingA, EntanglementSwappingB
from sequence.topology.router_net_topo import RouterNetTopo
from sequence.utils.graphs import build_linear
from sequence.utils.nx_converter import generate_config

ROOT = Path(__file__).resolve().parent.parent
START_S = 1.0  # request start (s), as in SeQUeNCe's tutorials
TARGET_FIDELITY = 0.5

# The generated BSM template is "single_heralded", and the bell_diagonal formalism needs the BDS
# variants of swapping and purification; SeQUeNCe's class-level defaults (Barrett-Kok, ket vectors)
# do not match the generated topology, so its own three-minute tutorial sets them the same way.
EntanglementGenerationA.set_global_type(SINGLE_HERALDED)
EntanglementGenerationB.set_global_type(SINGLE_HERALDED)
for _cls in (EntanglementSwappingA, EntanglementSwappingB, PurificationProtocol):
    _cls.set_formalism(BELL_DIAGONAL_STATE_FORMALISM)

# Count elementary-link outcomes (each is reported on both end routers of a link).
LINK_COUNTS = {"success": 0, "fail": 0}
_orig_succeed = SingleHeraldedA._entanglement_succeed
_orig_fail = SingleHeraldedA._entanglement_fail


def _count_succeed(self: SingleHeraldedA) -> None:
    LINK_COUNTS["success"] += 1
    _orig_succeed(self)


def _count_fail(self: SingleHeraldedA) -> None:
    LINK_COUNTS["fail"] += 1
    _orig_fail(self)


SingleHeraldedA._entanglement_succeed = _count_succeed  # type: ignore[method-assign]
SingleHeraldedA._entanglement_fail = _count_fail  # type: ignore[method-assign]


def run_chain(nodes: int, pairs: int, seed: int, max_sim_s: float) -> dict[str, Any]:
    """One SeQUeNCe run: ``pairs`` end-to-end pairs on an ``nodes``-router chain."""
    cfg, _ = generate_config(
        build_linear(nodes),
        cc_delay=1,
        memory_size=2,
        output_file="",
        output_directory="",
        formalism=BELL_DIAGONAL_STATE_FORMALISM,
        stop_time=START_S + max_sim_s,
    )
    for i, node in enumerate(cfg["nodes"]):
        node["seed"] = seed * 1000 + i  # a different random stream per repeat
    topo = RouterNetTopo(cfg)
    tl = topo.get_timeline()
    fidelities: list[float] = []
    times_ps: list[int] = []
    responder = f"router_{nodes - 1}"

    class CountingApp(RequestApp):  # type: ignore[misc]
        def get_memory(self, info: Any) -> None:
            if (
                info.state in ("ENTANGLED", "PURIFIED")
                and info.index in self.memo_to_reservation
                and info.remote_node == responder
                and info.fidelity >= self.memo_to_reservation[info.index].fidelity
            ):
                fidelities.append(float(info.fidelity))
                times_ps.append(tl.now())
                if len(fidelities) >= pairs:
                    tl.stop()
            super().get_memory(info)

    apps = {r.name: CountingApp(r) for r in topo.get_nodes_by_type(RouterNetTopo.QUANTUM_ROUTER)}
    LINK_COUNTS.update(success=0, fail=0)
    tl.init()
    apps["router_0"].start(
        responder=responder,
        start_t=int(START_S * SECOND),
        end_t=int((START_S + max_sim_s) * SECOND),
        memo_size=1,
        fidelity=TARGET_FIDELITY,
    )
    t0 = time.perf_counter()
    tl.run()
    wall_s = time.perf_counter() - t0
    sim_s = (times_ps[-1] - START_S * SECOND) / SECOND if times_ps else float("nan")
    # time between deliveries (the first from the request start): a renewal process, so the
    # rate's relative standard error is the intervals' coefficient of variation / sqrt(n)
    stamps = [START_S * SECOND, *times_ps]
    gaps = [(b - a) / SECOND for a, b in itertools.pairwise(stamps)]
    rate_rel_sem = (
        statistics.pstdev(gaps) / statistics.fmean(gaps) / len(gaps) ** 0.5
        if len(gaps) > 1
        else float("nan")
    )
    attempts = (LINK_COUNTS["success"] + LINK_COUNTS["fail"]) / 2
    successes = LINK_COUNTS["success"] / 2
    return {
        "nodes": nodes,
        "seed": seed,
        "delivered_pairs": len(fidelities),
        "mean_fidelity": statistics.fmean(fidelities) if fidelities else float("nan"),
        "fidelity_std": statistics.pstdev(fidelities) if len(fidelities) > 1 else 0.0,
        "sim_s": sim_s,
        "pairs_per_sim_s": len(fidelities) / sim_s if fidelities else 0.0,
        "rate_rel_sem": rate_rel_sem,
        "wall_s": wall_s,
        "pairs_per_wall_s": len(fidelities) / wall_s,
        "events": tl.run_counter,
        "us_per_event": wall_s / max(1, tl.run_counter) * 1e6,
        "link_attempts": attempts,
        "link_successes": successes,
        "link_success_prob": successes / attempts if attempts else float("nan"),
        # all links together: simulated time per attempt per link (links run in parallel)
        "link_attempt_period_s": (sim_s * (nodes - 1) / attempts) if attempts else float("nan"),
    }


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if k not in ("nodes", "seed")]
    row: dict[str, Any] = {"nodes": runs[0]["nodes"], "repeats": len(runs)}
    for k in keys:
        row[k] = statistics.median(r[k] for r in runs)
    # the fidelity's standard error over all delivered pairs, for the agreement check
    n_pairs = sum(r["delivered_pairs"] for r in runs)
    fid_std = statistics.median(r["fidelity_std"] for r in runs)
    row["fidelity_sem"] = fid_std / max(1, n_pairs) ** 0.5
    # pooled over the repeats: the rate from all pairs over all simulated time
    row["pooled_pairs_per_sim_s"] = n_pairs / sum(r["sim_s"] for r in runs)
    rel_sem = statistics.median(r["rate_rel_sem"] for r in runs)
    row["pooled_rate_rel_sem"] = rel_sem / len(runs) ** 0.5
    row["pooled_mean_fidelity"] = sum(
        r["mean_fidelity"] * r["delivered_pairs"] for r in runs
    ) / max(1, n_pairs)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[3, 5, 9])
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-sim-s", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "sequence_chain.json")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for n in args.nodes:
        runs = []
        for rep in range(args.repeats):
            try:
                r = run_chain(n, args.pairs, rep, args.max_sim_s)
            except Exception as exc:  # a peer crash is a result to record, not to hide
                errors.append(
                    {
                        "nodes": n,
                        "seed": rep,
                        "error": f"{type(exc).__name__}: {exc}",
                        "where": traceback.format_exc().strip().splitlines()[-3:],
                    }
                )
                print(f"nodes={n} seed={rep}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            runs.append(r)
            raw.append(r)
            print(json.dumps(r), file=sys.stderr)
        if runs:
            rows.append(median_row(runs))
    print(
        f"{'nodes':>5} {'pairs':>6} {'fidelity':>9} {'pairs/sim-s':>12} {'pairs/wall-s':>13}"
        f" {'events':>8} {'us/event':>9} {'p_link':>7} {'T_att ms':>9}"
    )
    for r in rows:
        print(
            f"{r['nodes']:>5} {r['delivered_pairs']:>6.0f} {r['mean_fidelity']:>9.4f}"
            f" {r['pairs_per_sim_s']:>12.2f} {r['pairs_per_wall_s']:>13.1f} {r['events']:>8.0f}"
            f" {r['us_per_event']:>9.1f} {r['link_success_prob']:>7.4f}"
            f" {r['link_attempt_period_s'] * 1e3:>9.3f}"
        )
    doc = {
        "peer": "SeQUeNCe",
        "sequence_version": version("sequence"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "setup": {
            "hop_km": 10.0,
            "attenuation_db_per_m": 0.0002,
            "cc_delay_ms": 1.0,
            "memo_size_per_router": 2,
            "request_memo_size": 1,
            "target_fidelity": TARGET_FIDELITY,
            "template": "nx_converter.default_template",
            "generation": SINGLE_HERALDED,
            "formalism": BELL_DIAGONAL_STATE_FORMALISM,
            "pairs_per_run": args.pairs,
        },
        "medians": rows,
        "runs": raw,
        "errors": errors,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
