"""A quantum-repeater chain as a link of the twin: its secret-key rate from the entanglement model.

The chain (``qnetkit.entanglement.chain``) spans the link's length in ``nodes - 1`` equal
segments. Its pair rate and delivered state come from the closed forms where they exist
(``analytic_chain``: deterministic or two-segment swapping, no decoherence or cutoff) and
otherwise from a seeded simulation of ``repeater.pairs`` pairs; the key is QKD on those
pairs (BBM92, or device-independent E91, ``entanglement.applications``), asymptotic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qnetkit.entanglement.applications import entanglement_key_rate, qber_from_bell_diagonal
from qnetkit.entanglement.chain import analytic_chain, simulate_chain
from qnetkit.network.link_parts import RepeaterChainSpec
from qnetkit.physics.memory import QuantumMemory


@dataclass(frozen=True)
class RepeaterLinkRate:
    """What a repeater-chain link delivers, and which model gave it."""

    pairs_per_s: float
    fidelity: float
    qber: float  # Z-basis error rate of the delivered pairs (the key basis)
    secret_key_rate_bps: float
    model: str  # "analytic" or "simulated: N pairs, seed 0"


def chain_options(spec: RepeaterChainSpec, length_km: float,
                  loss_db_per_km: float) -> dict[str, Any]:
    """The ``qnetkit.entanglement.chain`` options of the link's chain (same names as its CLI)."""
    memory = QuantumMemory(efficiency=spec.memory_efficiency,
                           t2_s=spec.memory_t2_s if spec.memory_t2_s is not None else np.inf)
    return {
        "nodes": spec.nodes, "link_length_km": length_km / (spec.nodes - 1),
        "scheme": spec.scheme, "protocol": spec.protocol, "memories": spec.memories,
        "memory": memory, "purify": spec.purify, "rounds": spec.rounds,
        "cutoff_s": spec.cutoff_s, "link_fidelity": spec.link_fidelity,
        "link_success_prob": spec.link_success_prob,
        "swap_success_prob": spec.swap_success_prob, "attempt_s": spec.attempt_s,
        "loss_db_per_km": loss_db_per_km, "pairs": spec.pairs, "seed": 0,
    }


def repeater_link_rate(spec: RepeaterChainSpec, length_km: float,
                       loss_db_per_km: float) -> RepeaterLinkRate:
    """Pair rate, delivered state and secret-key rate of the chain (deterministic: seed 0)."""
    options = chain_options(spec, length_km, loss_db_per_km)
    exact = analytic_chain(**options)
    # Only exact closed forms stand in for the simulation (Sangouard's (3/2)^n is an
    # approximation outside its regime).
    if (exact.rate_pairs_per_s is not None and exact.final_state is not None
            and exact.waiting_time_model.startswith("exact")):
        rate, state, model = exact.rate_pairs_per_s, exact.final_state, "analytic"
    else:
        run = simulate_chain(**options)
        rate = run.rate_pairs_per_s
        state = run.final_states.mean(axis=0)  # the mixture the key is distilled from
        model = f"simulated: {run.delivered_pairs} pairs, seed 0"
    key = entanglement_key_rate(rate, state, spec.key_protocol)
    q_z, _ = qber_from_bell_diagonal(state)
    return RepeaterLinkRate(float(rate), float(state[0]), float(q_z),
                            float(key.secret_key_rate_bps), model)


__all__ = ["RepeaterLinkRate", "chain_options", "repeater_link_rate"]
