"""A repeater chain as a link of the twin (issue 14, item 6): its key rate comes from the
entanglement model, and pools, routing and the summary treat it like any link."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qnetkit.entanglement.applications import entanglement_key_rate
from qnetkit.entanglement.operations import swap
from qnetkit.network.examples import example_path
from qnetkit.network.linkmodel import LinkModel
from qnetkit.network.simulate import simulate
from qnetkit.network.topology import TopologyError, load_topology, parse_topology
from qnetkit.physics.heralding import double_click_link

HOUR = 3600.0


def _chain_link(**repeater: Any) -> dict[str, Any]:
    return {"id": "AB", "a": "A", "b": "B", "length_km": 300, "kind": "repeater-chain",
            "repeater": {"nodes": 9, "scheme": "double-click", **repeater}}


def _topo(*links: dict[str, Any], **kw: Any) -> Any:
    nodes = sorted({e for ln in links for e in (ln["a"], ln["b"])})
    return parse_topology({"name": "r", "nodes": [{"id": n} for n in nodes],
                           "links": list(links), **kw})


def _mean_max_geometric(links: int, p: float) -> float:
    """E[max of n geometric(p)] = sum_k>=0 1 - (1 - (1-p)^k)^n (Shchukin et al., PRA 100,
    032322 (2019): SWAP-ASAP with deterministic swaps waits for the slowest segment)."""
    k = np.arange(0, 200_000)
    return float(np.sum(1.0 - (1.0 - (1.0 - p) ** k) ** links))


def test_rate_is_the_chains_pair_rate_times_the_key_fraction() -> None:
    model = LinkModel.build(_topo(_chain_link()).links[0])
    chain = model.repeater
    assert chain is not None and chain.model == "analytic"
    # 8 segments of 37.5 km, Barrett-Kok heralding at the midpoint of each.
    seg = double_click_link(37.5)
    attempts = _mean_max_geometric(8, seg.success_prob)
    assert chain.pairs_per_s == pytest.approx(1.0 / (attempts * seg.attempt_s), rel=1e-6)
    # Ideal memories, deterministic swaps: the delivered state is the 8 segments' state
    # swapped together (Bell-diagonal swap map), whatever the order of the swaps.
    state = np.asarray(seg.bell_diagonal)
    for _ in range(7):
        state = swap(state, np.asarray(seg.bell_diagonal))
    assert chain.fidelity == pytest.approx(float(state[0]), abs=1e-12)
    key = entanglement_key_rate(chain.pairs_per_s, state, "bbm92")
    assert chain.secret_key_rate_bps == pytest.approx(float(key.secret_key_rate_bps), rel=1e-9)
    assert chain.secret_key_rate_bps > 0
    rate, qber = model.evaluate(np.zeros(3), np.ones(3), np.ones(3), np.zeros(3))
    assert list(rate) == [chain.secret_key_rate_bps] * 3 and list(qber) == [chain.qber] * 3


def test_memory_decoherence_lowers_the_key_and_multiplexing_raises_the_rate() -> None:
    ideal = LinkModel.build(_topo(_chain_link()).links[0]).repeater
    t2 = LinkModel.build(_topo(_chain_link(memory_t2_s=0.05)).links[0]).repeater
    mux = LinkModel.build(_topo(_chain_link(memory_t2_s=0.05, memories=10)).links[0]).repeater
    assert ideal is not None and t2 is not None and mux is not None
    assert t2.model.startswith("simulated: 2000 pairs")
    assert t2.fidelity < ideal.fidelity and t2.secret_key_rate_bps < ideal.secret_key_rate_bps
    # Ten memories per side: many more pairs per second, each waiting less (higher fidelity).
    assert mux.pairs_per_s > 5 * t2.pairs_per_s and mux.fidelity > t2.fidelity
    # Seeded: the same link gives the same figures.
    again = LinkModel.build(_topo(_chain_link(memory_t2_s=0.05)).links[0]).repeater
    assert again == t2


def test_a_repeater_link_needs_its_chain_and_only_it_takes_one() -> None:
    bad = _chain_link()
    del bad["repeater"]
    with pytest.raises(TopologyError, match="repeater-chain link needs 'repeater'"):
        _topo(bad)
    fiber = {**_chain_link(), "kind": "fiber"}
    with pytest.raises(TopologyError, match="repeater-chain link needs 'repeater'"):
        _topo(fiber)
    with pytest.raises(TopologyError, match=r"links\[0\].repeater.nodes"):
        _topo(_chain_link(nodes=1))


def test_example_network_mixes_trusted_hops_and_a_repeater_chain() -> None:
    topo = load_topology(example_path("repeater-vs-trusted"))
    r = simulate(topo, duration_s=14 * HOUR, seed=0)
    s = r.summary()
    links = {ln["id"]: ln for ln in s["links"]}
    rep = links["west-east-repeater"]
    assert rep["protocol"] == "bbm92 (repeater)" and rep["state"] == "ok"
    assert rep["secret_bits"] > 0
    # While the trusted path is cut (09:00-12:00) the demand lives on the repeater's key alone.
    d = s["demands"][0]
    during = [seg for seg in d["paths"] if seg["from_s"] <= 10 * HOUR < seg["to_s"]]
    assert [[rt["links"] for rt in seg["routes"]] for seg in during] == [[["west-east-repeater"]]]
    i = [ln.id for ln in topo.links].index("west-east-repeater")
    relayed = r.relayed_bits_per_link
    assert relayed is not None and relayed[i] > 0
