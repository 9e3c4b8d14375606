"""Entanglement routing with concurrent requests: queueing, memory allocation, path choice,
delivered states and waiting times against closed forms."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qnetkit.entanglement.operations import decohere_pair
from qnetkit.entanglement.routing import simulate_routing
from qnetkit.entanglement.routing_generate import generate_network
from qnetkit.entanglement.routing_topology import RoutingFileError, load_network, parse_network
from qnetkit.errors import ParameterError
from qnetkit.physics.heralding import FIBER_GROUP_VELOCITY_KM_PER_S
from qnetkit.physics.memory import QuantumMemory

DATA = Path(__file__).parent / "data"


def _node(nid: str, memories: int = 2, **kw: Any) -> dict[str, Any]:
    return {"id": nid, "memories": memories, **kw}


def _link(a: str, b: str, km: float = 10.0, p: float = 0.1, f: float = 0.95,
          **kw: Any) -> dict[str, Any]:
    return {"a": a, "b": b, "length_km": km, "success_prob": p, "fidelity": f, **kw}


def _cross(middle_memories: int, pairs: int = 40) -> dict[str, Any]:
    """A-M-C and D-M-E: two requests whose only paths share the middle node M."""
    return {
        "name": "cross",
        "nodes": [_node("A"), _node("C"), _node("D"), _node("E"),
                  _node("M", middle_memories)],
        "links": [_link("A", "M"), _link("M", "C"), _link("D", "M"), _link("M", "E")],
        "requests": [{"id": "r1", "a": "A", "b": "C", "pairs": pairs},
                     {"id": "r2", "a": "D", "b": "E", "pairs": pairs}],
    }


def test_one_memory_per_side_serves_the_two_requests_one_after_the_other() -> None:
    res = simulate_routing(parse_network(_cross(2)), duration_s=10.0, seed=4)
    r1, r2 = res.request("r1"), res.request("r2")
    assert r1.state == r2.state == "done"
    assert r1.delivered_pairs == r2.delivered_pairs == 40
    assert r1.path == ["A", "M", "C"] and r2.path == ["D", "M", "E"]
    # r2 waited in the queue until r1 freed M's two memories, and not a moment longer.
    assert r1.queue_wait_s == 0.0
    assert r1.finished_s is not None and r2.finished_s is not None
    assert r2.queue_wait_s == pytest.approx(r1.finished_s, abs=1e-15)
    assert r2.delivery_times_s[0] > r1.finished_s
    m = res.node("M")
    assert m.peak_reserved == 2
    # M's two memories were held from 0 until r2 finished: utilisation = f2 / duration.
    assert m.utilisation == pytest.approx(r2.finished_s / 10.0, rel=1e-12)
    # The ends each held one memory of two for their own request's service time.
    assert res.node("A").utilisation == pytest.approx(r1.finished_s / 2 / 10.0, rel=1e-12)
    assert res.node("D").utilisation == pytest.approx(
        (r2.finished_s - r1.finished_s) / 2 / 10.0, rel=1e-12)
    # The first waiting time of r2 includes its time in the queue.
    assert r2.waiting_times_s[0] == pytest.approx(r2.delivery_times_s[0], abs=1e-15)


def test_two_memories_per_side_serve_the_two_requests_concurrently() -> None:
    res = simulate_routing(parse_network(_cross(4)), duration_s=10.0, seed=4)
    r1, r2 = res.request("r1"), res.request("r2")
    assert r1.delivered_pairs == r2.delivered_pairs == 40
    assert r1.queue_wait_s == r2.queue_wait_s == 0.0
    assert r1.finished_s is not None and r2.finished_s is not None
    # Served at the same time: each one's deliveries start before the other has finished.
    assert r2.delivery_times_s[0] < r1.finished_s and r1.delivery_times_s[0] < r2.finished_s
    m = res.node("M")
    assert m.peak_reserved == 4
    assert m.utilisation == pytest.approx(
        (2 * r1.finished_s + 2 * r2.finished_s) / (4 * 10.0), rel=1e-12)


def test_queued_request_does_not_block_one_whose_path_is_free() -> None:
    doc = _cross(2)
    doc["nodes"] += [_node("F"), _node("G")]
    doc["links"].append(_link("F", "G"))
    doc["requests"].append({"id": "r3", "a": "F", "b": "G", "pairs": 5, "start_s": 0.0})
    res = simulate_routing(parse_network(doc), duration_s=10.0, seed=1)
    assert res.request("r2").queue_wait_s == pytest.approx(res.request("r1").finished_s)
    assert res.request("r3").queue_wait_s == 0.0  # back-filled past r2, which waits for M


def test_path_choice_takes_the_free_path_and_follows_the_policy() -> None:
    # A-B-C: 2 hops, 100 km; A-D-E-C: 3 hops, 30 km.
    doc: dict[str, Any] = {
        "name": "paths",
        "nodes": [_node("A", 4), _node("B"), _node("C", 4), _node("D"), _node("E")],
        "links": [_link("A", "B", 50), _link("B", "C", 50), _link("A", "D", 10),
                  _link("D", "E", 10), _link("E", "C", 10)],
        "requests": [{"id": "first", "a": "A", "b": "C", "pairs": 20},
                     {"id": "second", "a": "A", "b": "C", "pairs": 20}],
    }
    res = simulate_routing(parse_network(doc), duration_s=5.0, seed=2)
    assert res.request("first").path == ["A", "B", "C"]
    # B's memories are taken: the second request goes round, at once, rather than queueing.
    assert res.request("second").path == ["A", "D", "E", "C"]
    assert res.request("second").queue_wait_s == 0.0
    doc["path_policy"] = "shortest-km"
    res = simulate_routing(parse_network(doc), duration_s=5.0, seed=2)
    assert res.request("first").path == ["A", "D", "E", "C"]
    assert res.request("second").path == ["A", "B", "C"]


@pytest.mark.parametrize("gate_depolarizing", [0.0, 0.02])
def test_delivered_fidelity_is_the_werner_swap_closed_form_without_decoherence(
        gate_depolarizing: float) -> None:
    # Duer, Briegel, Cirac & Zoller, PRA 59, 169 (1999), Sec. IV: swapping Werner pairs
    # multiplies their Werner parameters w = (4F - 1)/3; a depolarising gate (probability p)
    # in each of the n - 1 swaps multiplies it by (1 - p) once more.
    fids = [0.97, 0.95, 0.9, 0.99]
    nodes = [_node(x) for x in "ABCDE"]
    links = [_link(a, b, 15.0, 0.3, f) for (a, b), f in zip(["AB", "BC", "CD", "DE"], fids,
                                                                 strict=True)]
    doc = {"name": "chain", "nodes": nodes, "links": links,
           "swap": {"gate_depolarizing": gate_depolarizing},
           "requests": [{"id": "r", "a": "A", "b": "E", "pairs": 300}]}
    res = simulate_routing(parse_network(doc), duration_s=60.0, seed=7)
    r = res.request("r")
    assert r.delivered_pairs == 300
    w = np.prod([(4 * f - 1) / 3 for f in fids]) * (1 - gate_depolarizing) ** 3
    expected = 0.25 + 0.75 * w
    np.testing.assert_allclose(r.fidelities, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.states[:, 1:], (1 - expected) / 3, rtol=0, atol=1e-12)


def test_failed_swaps_lose_both_pairs() -> None:
    # A-B-C with a Bell measurement that succeeds with probability 1/2 (linear optics): the
    # failures before n successes are negative-binomial, mean n (1-q)/q = n, variance
    # n (1-q)/q^2 = 2n; each failure loses two pairs. The delivered states are unaffected.
    doc = {"name": "bsm", "nodes": [_node(x) for x in "ABC"],
           "links": [_link("A", "B", 10.0, 0.3, 0.95), _link("B", "C", 10.0, 0.3, 0.92)],
           "swap": {"success_prob": 0.5},
           "requests": [{"id": "r", "a": "A", "b": "C", "pairs": 2000}]}
    r = simulate_routing(parse_network(doc), duration_s=60.0, seed=5).request("r")
    n = r.delivered_pairs
    assert n == 2000 and r.lost_pairs % 2 == 0
    assert abs(r.lost_pairs / 2 - n) < 4 * math.sqrt(2 * n)
    w = (4 * 0.95 - 1) / 3 * (4 * 0.92 - 1) / 3
    np.testing.assert_allclose(r.fidelities, 0.25 + 0.75 * w, rtol=0, atol=1e-12)


def test_single_link_waiting_time_is_geometric() -> None:
    # One memory per side: pair j is heralded N_j attempts after pair j-1, N_j ~ Geometric(p),
    # so the waiting time has mean attempt_s / p and standard deviation
    # attempt_s sqrt(1 - p) / p.
    p, attempt_s = 0.2, 1e-3
    doc = {"name": "one", "nodes": [_node("A", 1), _node("B", 1)],
           "links": [_link("A", "B", 10.0, p, 0.9, attempt_s=attempt_s)],
           "requests": [{"id": "r", "a": "A", "b": "B"}]}
    res = simulate_routing(parse_network(doc), duration_s=60.0, seed=11)
    waits = res.request("r").waiting_times_s
    n = len(waits)
    assert n > 10_000
    mean, sd = attempt_s / p, attempt_s * math.sqrt(1 - p) / p
    assert abs(waits.mean() - mean) < 4 * sd / math.sqrt(n)
    # Whole numbers of attempts, at least one.
    attempts = waits / attempt_s
    np.testing.assert_allclose(attempts, np.round(attempts), atol=1e-6)
    assert attempts.min() == pytest.approx(1.0)
    # The memories are held the whole run and store a qubit for one attempt per pair (emission
    # to herald; the pair is used at once).
    node = res.node("A")
    assert node.utilisation == pytest.approx(1.0, rel=1e-12)
    assert node.storing_fraction == pytest.approx(n * attempt_s / 60.0, rel=1e-9)


def test_stored_pairs_dephase_for_the_herald_time() -> None:
    # A Werner pair whose qubits both wait attempt_s in memories of T2: Nielsen & Chuang
    # Sec. 8.3.6 phase damping, coherences times exp(-t/T2) per qubit:
    # F = (1 + w + 2 w exp(-2 t / T2)) / 4.
    t2, attempt_s, f = 0.01, 2e-3, 0.96
    doc = {"name": "one", "nodes": [_node("A", 1, t2_s=t2), _node("B", 1, t2_s=t2)],
           "links": [_link("A", "B", 10.0, 0.5, f, attempt_s=attempt_s)],
           "requests": [{"id": "r", "a": "A", "b": "B", "pairs": 50}]}
    r = simulate_routing(parse_network(doc), duration_s=10.0, seed=3).request("r")
    w = (4 * f - 1) / 3
    np.testing.assert_allclose(r.fidelities, (1 + w + 2 * w * math.exp(-2 * attempt_s / t2)) / 4,
                               rtol=0, atol=1e-12)


def test_swapped_pair_decoheres_as_an_eager_computation_would() -> None:
    # A-B-C with T2 memories and the classical delay of the swap outcome: the state of every
    # delivered pair equals decohere(link, age) for each input up to the swap, the swap, then
    # decoherence up to delivery (here recomputed from the recorded times in the simplest
    # case, p = 1: both links herald after one attempt, so the swap is at attempt_s).
    t2, km, attempt_s = 0.05, 30.0, 1e-3
    doc = {"name": "two", "nodes": [_node(x, 2, t2_s=t2) for x in "ABC"],
           "links": [_link("A", "B", km, 1.0, 0.97, attempt_s=attempt_s),
                     _link("B", "C", km, 1.0, 0.93, attempt_s=attempt_s)],
           "requests": [{"id": "r", "a": "A", "b": "C", "pairs": 3}]}
    r = simulate_routing(parse_network(doc), duration_s=1.0, seed=0).request("r")
    mem = QuantumMemory(t2_s=t2)
    from qnetkit.entanglement.operations import swap
    from qnetkit.entanglement.states import werner
    age = attempt_s  # emission to herald, when the swap is made
    swapped = swap(decohere_pair(werner(0.97), age, age, mem, mem),
                   decohere_pair(werner(0.93), age, age, mem, mem))
    delay = km / FIBER_GROUP_VELOCITY_KM_PER_S  # the outcome reaches A and C from B
    expected = decohere_pair(swapped, delay, delay, mem, mem)
    np.testing.assert_allclose(r.states[0], expected, rtol=0, atol=1e-12)
    assert r.delivery_times_s[0] == pytest.approx(attempt_s + delay, abs=1e-15)


def test_cutoff_below_the_herald_time_loses_every_pair() -> None:
    doc = {"name": "cut", "cutoff_s": 5e-4, "nodes": [_node("A", 1), _node("B", 1)],
           "links": [_link("A", "B", 10.0, 0.5, 0.9, attempt_s=1e-3)],
           "requests": [{"id": "r", "a": "A", "b": "B"}]}
    r = simulate_routing(parse_network(doc), duration_s=1.0, seed=0).request("r")
    assert r.delivered_pairs == 0 and r.lost_pairs > 100
    doc["cutoff_s"] = 2e-3
    r = simulate_routing(parse_network(doc), duration_s=1.0, seed=0).request("r")
    assert r.lost_pairs == 0 and r.delivered_pairs > 100


def test_cutoff_discards_pairs_at_their_deadline() -> None:
    # Deterministic (p = 1): A-B heralds 1 ms after each emission, B-C 1 s after; cutoff 0.5 s.
    # A-B pairs expire 0.5 s after emission and are re-made at once (expiries at 0.5, 1.0, ...,
    # 9.5 s: 19 in a 9.9 s run); B-C pairs are past the cutoff when heralded (at 1, 2, ..., 9 s:
    # 9). No pair is ever delivered. A's memory stores a qubit the whole run; C's from each
    # emission to its herald (0-9 s; the attempt still under way at the end stores nothing yet).
    doc = {"name": "cut", "cutoff_s": 0.5,
           "nodes": [_node("A", 1), _node("B", 2), _node("C", 1)],
           "links": [_link("A", "B", 10.0, 1.0, 0.9, attempt_s=1e-3),
                     _link("B", "C", 10.0, 1.0, 0.9, attempt_s=1.0)],
           "requests": [{"id": "r", "a": "A", "b": "C"}]}
    res = simulate_routing(parse_network(doc), duration_s=9.9, seed=0)
    r = res.request("r")
    assert r.delivered_pairs == 0 and r.lost_pairs == 19 + 9
    assert res.node("A").storing_fraction == pytest.approx(1.0, rel=1e-12)
    assert res.node("C").storing_fraction == pytest.approx(9.0 / 9.9, rel=1e-12)
    assert res.node("B").storing_fraction == pytest.approx((9.9 + 9.0) / (2 * 9.9), rel=1e-12)


def test_withdrawn_request_frees_its_memories_for_the_queue() -> None:
    doc = _cross(2)
    doc["requests"][0] = {"id": "r1", "a": "A", "b": "C", "end_s": 0.5}
    doc["requests"][1]["start_s"] = 0.1
    res = simulate_routing(parse_network(doc), duration_s=5.0, seed=0)
    assert res.request("r1").state == "withdrawn"
    assert res.request("r2").queue_wait_s == pytest.approx(0.4)
    assert res.request("r2").state == "done"


def test_min_fidelity_counts_pairs_below_it() -> None:
    doc = _cross(4)
    doc["requests"][0]["min_fidelity"] = 0.95  # 0.95 x 0.95 swapped is below
    doc["requests"][1]["min_fidelity"] = 0.85
    res = simulate_routing(parse_network(doc), duration_s=5.0, seed=0)
    assert res.request("r1").below_min_fidelity == 40
    assert res.request("r2").below_min_fidelity == 0


def test_runs_are_reproducible_from_the_seed() -> None:
    net = load_network(DATA / "entanglement-grid.yaml")
    a = simulate_routing(net, duration_s=5.0, seed=5).summary()
    b = simulate_routing(net, duration_s=5.0, seed=5).summary()
    c = simulate_routing(net, duration_s=5.0, seed=6).summary()
    for s in (a, b, c):
        s.pop("wall_s")
    assert a == b
    assert a["requests"] != c["requests"]
    assert a["delivered_pairs"] > 1000


def test_states_evaluated_in_small_chunks_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pairs still stored when a chunk is evaluated are carried into the next one: chunks of 7
    # records (most swaps then take an input from an earlier chunk) give the same states.
    from qnetkit.entanglement import routing_states

    net = load_network(DATA / "entanglement-grid.yaml")
    whole = simulate_routing(net, duration_s=5.0, seed=9)
    monkeypatch.setattr(routing_states, "CHUNK_RECORDS", 7)
    chunked = simulate_routing(net, duration_s=5.0, seed=9)
    for a, b in zip(whole.requests, chunked.requests, strict=True):
        assert a.delivered_pairs == b.delivered_pairs > 0
        np.testing.assert_allclose(a.states, b.states, rtol=0, atol=1e-14)


def test_generated_network_routes_its_requests() -> None:
    doc = generate_network(60, 12, seed=3, pairs=20, cutoff_s=None)
    net = parse_network(doc)
    assert len(net.nodes) == 60 and len(net.requests) == 12
    res = simulate_routing(net, duration_s=40.0, seed=3)
    assert all(r.state == "done" and r.delivered_pairs == 20 for r in res.requests)
    assert all(len(r.path) - 1 >= 2 for r in res.requests)  # at least min_hops apart
    assert generate_network(60, 12, seed=3, pairs=20, cutoff_s=None) == doc


def _problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RoutingFileError) as info:
        parse_network(doc, "f.yaml")
    return info.value.problems


def test_bad_input_names_the_field() -> None:
    doc = _cross(2)
    doc["requests"][0]["multiplex"] = 3
    assert _problems(doc) == [
        ("requests[0].multiplex", "3 memories wanted at end node 'A', which has 2"),
        ("requests[0].multiplex", "3 memories wanted at end node 'C', which has 2")]
    doc = _cross(1)
    (where, msg), = _problems(doc)[:1]
    assert where == "requests[0]" and "inner nodes have 2 memories" in msg
    doc = _cross(2)
    doc["links"].append(_link("M", "A"))
    doc["requests"][1]["b"] = "Z"
    assert _problems(doc) == [("links[4]", "a second link between 'M' and 'A'"),
                              ("requests[1].b", "unknown node 'Z'")]
    doc = _cross(2)
    doc["nodes"][0]["memorys"] = 3
    (where, msg), = _problems(doc)
    assert where == "nodes[0].memorys" and "allowed here: id, memories" in msg
    doc = _cross(2)
    doc["requests"][0]["end_s"] = 0.0
    assert _problems(doc)[0][0] == "requests[0].end_s"


def test_a_hopeless_link_costs_no_events_and_bad_durations_are_refused() -> None:
    # 9,000 km of fiber: about 1e-7 success probability per attempt. The number of attempts is
    # drawn at once (one event per success), so a run that sees no success runs no events for
    # it rather than one per 44 ms attempt.
    doc = _cross(2)
    doc["links"][0] = {"a": "A", "b": "M", "length_km": 9000, "scheme": "double-click"}
    doc["requests"] = doc["requests"][:1]
    res = simulate_routing(parse_network(doc), duration_s=60.0)
    assert res.request("r1").state == "serving" and res.request("r1").delivered_pairs == 0
    assert res.events < 100
    with pytest.raises(ParameterError, match="duration_s"):
        simulate_routing(parse_network(_cross(2)), duration_s=0.0)


def test_the_run_leaves_the_garbage_collector_as_it_found_it() -> None:
    # The event loop pauses the cyclic collector for speed; it must be restored afterwards,
    # enabled or not, and the run's results must not depend on it.
    import gc

    net = parse_network(_cross(2))
    assert gc.isenabled()
    a = simulate_routing(net, duration_s=10.0, seed=4)
    assert gc.isenabled()
    gc.disable()
    try:
        b = simulate_routing(net, duration_s=10.0, seed=4)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert a.request("r1").delivery_times_s == b.request("r1").delivery_times_s
    assert a.request("r1").delivered_pairs == 40
    assert a.events == b.events > 80
