"""Repeater chains: closed forms, input checks, reproducibility (qnetkit.entanglement.chain).

Monte-Carlo against the closed forms is in test_chain_mc.py.
"""

from __future__ import annotations

import math
from itertools import pairwise, product

import numpy as np
import pytest

from qnetkit.entanglement.chain import ChainConfig, analytic_chain, simulate_chain
from qnetkit.entanglement.chain_analytic import (
    mean_max_geometric_attempts,
    sangouard_mean_time_s,
    two_link_cutoff_mean_attempts,
    two_link_wait_pmf,
    werner_chain_fidelity,
)
from qnetkit.entanglement.operations import swap
from qnetkit.entanglement.states import werner
from qnetkit.errors import ParameterError
from qnetkit.physics.memory import QuantumMemory

TEXTBOOK = {"link_success_prob": 0.1, "link_fidelity": 0.95, "attempt_s": 1e-4}


def _alternating_sum(n: int, p: float) -> float:
    """Textbook E[max of n geometric]: sum_k (-1)^(k+1) C(n,k) / (1 - (1-p)^k) (small n only)."""
    return sum((-1) ** (k + 1) * math.comb(n, k) / (1.0 - (1.0 - p) ** k) for k in range(1, n + 1))


@pytest.mark.parametrize("p", [0.01, 0.1, 0.37, 0.9, 1.0])
def test_two_links_mean_attempts_is_shchukin_closed_form(p: float) -> None:
    # Shchukin, Schmidt & van Loock, PRA 100, 032322 (2019), two segments, deterministic swap:
    # E[max(K1, K2)] = (3 - 2p) / (p (2 - p)).
    expected = (3 - 2 * p) / (p * (2 - p))
    assert mean_max_geometric_attempts(2, p) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("n", "p"), list(product([1, 3, 4, 8, 12], [0.05, 0.3, 0.8])))
def test_markov_chain_equals_inclusion_exclusion(n: int, p: float) -> None:
    assert mean_max_geometric_attempts(n, p) == pytest.approx(_alternating_sum(n, p), rel=1e-9)


def test_mean_max_grows_like_harmonic_number_for_small_p() -> None:
    # Continuous limit: E[max of n exponentials] = H_n / p (exact for p -> 0).
    p = 1e-6
    for n in (2, 16, 128):
        h = sum(1.0 / k for k in range(1, n + 1))
        assert mean_max_geometric_attempts(n, p) * p == pytest.approx(h, rel=1e-4)


def test_two_link_cutoff_limits() -> None:
    p = 0.2
    assert two_link_cutoff_mean_attempts(p, 0) == pytest.approx(1 / p**2)
    assert two_link_cutoff_mean_attempts(p, 10_000) == pytest.approx((3 - 2 * p) / (p * (2 - p)))
    # A longer cutoff never makes the wait longer.
    values = [two_link_cutoff_mean_attempts(p, tau) for tau in range(0, 30)]
    assert all(a > b for a, b in pairwise(values))


def test_two_link_wait_pmf() -> None:
    p = 0.3
    pmf = two_link_wait_pmf(p)
    assert pmf.sum() == pytest.approx(1.0)
    assert pmf[0] == pytest.approx(p / (2 - p))
    assert pmf[3] == pytest.approx(2 * p * (1 - p) ** 3 / (2 - p))
    cut = two_link_wait_pmf(p, tau=2)
    assert cut.size == 3
    assert cut == pytest.approx(pmf[:3] / pmf[:3].sum())


@pytest.mark.parametrize(("fid", "n"), [(0.95, 1), (0.95, 2), (0.9, 7), (0.8, 64)])
def test_werner_chain_fidelity_matches_repeated_swaps(fid: float, n: int) -> None:
    # Duer et al., PRA 59, 169 (1999): Werner parameters multiply under swapping.
    state = werner(fid)
    out = state
    for _ in range(n - 1):
        out = swap(out, state)
    assert werner_chain_fidelity(fid, n) == pytest.approx(float(out[0]), abs=1e-12)
    assert werner_chain_fidelity(fid, 2) == pytest.approx(fid**2 + (1 - fid) ** 2 / 3)


def test_sangouard_formula() -> None:
    # RMP 83, 33 (2011), Sec. III.B: T = (3/2)^n L0/c / (P0 P1..Pn); 4 links (n = 2 levels).
    assert sangouard_mean_time_s(2, 0.01, 0.5, 1e-4) == pytest.approx(2.25 * 1e-4 / (0.01 * 0.25))


def test_analytic_chain_textbook_values() -> None:
    a = analytic_chain(nodes=3, **TEXTBOOK)
    p = 0.1
    assert a.mean_waiting_time_s == pytest.approx(1e-4 * (3 - 2 * p) / (p * (2 - p)))
    assert a.rate_pairs_per_s == pytest.approx(1.0 / a.mean_waiting_time_s)
    assert a.mean_fidelity == pytest.approx(0.95**2 + 0.05**2 / 3)
    assert a.fidelity_std == 0.0
    assert a.final_state is not None and a.final_state[0] == pytest.approx(a.mean_fidelity)
    # Two links with a probabilistic swap: the failed swap restarts both links.
    b = analytic_chain(nodes=3, swap_success_prob=0.5, **TEXTBOOK)
    assert b.mean_waiting_time_s == pytest.approx(2 * a.mean_waiting_time_s)
    # Nested, 4 links, q < 1: the (3/2)^n approximation, flagged as such.
    c = analytic_chain(nodes=5, protocol="nested", swap_success_prob=0.5, **TEXTBOOK)
    assert c.mean_waiting_time_s == pytest.approx(2.25 * 1e-4 / (0.1 * 0.25))
    assert c.waiting_time_model.startswith("approximation")
    # With q = 1 nesting changes nothing: the delivery is the last link's success.
    d = analytic_chain(nodes=5, protocol="nested", **TEXTBOOK)
    assert d.mean_attempts == pytest.approx(_alternating_sum(4, 0.1))


def test_multiplexing_raises_the_per_attempt_success() -> None:
    a = analytic_chain(nodes=2, memories=4, **TEXTBOOK)
    assert a.params["link_success_prob_effective"] == pytest.approx(1 - 0.9**4)
    assert a.mean_attempts == pytest.approx(1 / (1 - 0.9**4))


def test_purified_nested_fidelity_beats_plain() -> None:
    # DEJMPS at each level (two rounds' worth of memories) raises the delivered fidelity.
    kw = dict(nodes=5, protocol="nested", link_success_prob=0.3, link_fidelity=0.9, attempt_s=1e-4)
    plain = analytic_chain(**kw)
    pur = analytic_chain(purify="dejmps", rounds=1, memories=2, **kw)
    assert plain.mean_fidelity == pytest.approx(werner_chain_fidelity(0.9, 4))
    assert pur.mean_fidelity is not None and plain.mean_fidelity is not None
    assert pur.mean_fidelity > plain.mean_fidelity + 0.05
    assert pur.mean_waiting_time_s is None  # no closed form with purification


def test_same_seed_same_result_different_seeds_differ() -> None:
    kw = dict(nodes=4, swap_success_prob=0.7, cutoff_s=2e-3, memory=QuantumMemory(t2_s=0.05),
              pairs=300, **TEXTBOOK)
    a, b = simulate_chain(seed=5, **kw), simulate_chain(seed=5, **kw)
    c = simulate_chain(seed=6, **kw)
    np.testing.assert_array_equal(a.waiting_times_s, b.waiting_times_s)
    np.testing.assert_array_equal(a.final_states, b.final_states)
    assert a.events == b.events
    assert not np.array_equal(a.waiting_times_s, c.waiting_times_s)
    # The same through a ChainConfig.
    cfg = ChainConfig(seed=5, **kw)
    np.testing.assert_array_equal(simulate_chain(cfg).waiting_times_s, a.waiting_times_s)


def test_result_fields_are_consistent() -> None:
    r = simulate_chain(nodes=3, pairs=500, memory=QuantumMemory(t2_s=0.01), **TEXTBOOK)
    assert r.delivered_pairs == 500 == r.fidelities.size == r.final_states.shape[0]
    assert r.final_states.sum(axis=1) == pytest.approx(np.ones(500))
    assert r.mean_fidelity == pytest.approx(r.fidelities.mean())
    assert r.rate_pairs_per_s == pytest.approx(1.0 / r.mean_waiting_time_s)
    assert r.fidelity_std > 0  # the memory decoheres for random waits
    assert r.events == 500 * 3  # two link successes and one swap per delivery
    assert r.params["nodes"] == 3 and r.params["link_model"] == "textbook"


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"nodes": 1}, "nodes"),
        ({"nodes": 2.5}, "nodes"),
        ({"link_success_prob": 1.5}, "link_success_prob"),
        ({"link_success_prob": 0.0}, "link_success_prob"),
        ({"swap_success_prob": -0.1}, "swap_success_prob"),
        ({"link_fidelity": 0.2}, "link_fidelity"),
        ({"link_fidelity": 1.01}, "link_fidelity"),
        ({"attempt_s": -1e-3}, "attempt_s"),
        ({"cutoff_s": -1.0}, "cutoff_s"),
        ({"link_length_km": -5.0}, "link_length_km"),
        ({"memories": 0}, "memories"),
        ({"pairs": 0}, "pairs"),
        ({"seed": -1}, "seed"),
        ({"scheme": "teleport"}, "scheme"),
        ({"protocol": "greedy"}, "protocol"),
        ({"purify": "magic"}, "purify"),
        ({"rounds": 2}, "rounds"),
        ({"protocol": "nested", "nodes": 4}, "nodes"),
        ({"purify": "dejmps", "rounds": 2, "memories": 2}, "memories"),
        ({"memory_t2_s": 0.0}, "memory_t2_s"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_raises_parameter_error_naming_it(options: dict[str, object], name: str) -> None:
    for fn in (simulate_chain, analytic_chain):
        with pytest.raises(ParameterError) as info:
            fn(**options)
        assert info.value.name == name
        assert repr(options[name]) in str(info.value)


def test_memory_t2_shortcut() -> None:
    r = simulate_chain(nodes=3, pairs=200, memory_t2_s=0.01, **TEXTBOOK)
    assert r.params["memory"]["t2_s"] == 0.01
    ideal = simulate_chain(nodes=3, pairs=200, **TEXTBOOK)
    assert r.mean_fidelity < ideal.mean_fidelity


def test_default_hardware_chain_runs_on_heralding_physics() -> None:
    r = simulate_chain(pairs=200)
    assert r.params["link_model"] == "single-click"
    assert r.params["chain_length_km"] == 20.0
    # The physical link's state and attempt time are those of the heralding model.
    from qnetkit.physics.heralding import heralding_attempt_s, single_click_link

    link = single_click_link(10.0)
    assert r.params["link_state"] == pytest.approx(list(link.bell_diagonal))
    assert r.params["attempt_s"] == pytest.approx(heralding_attempt_s(10.0))
    a = analytic_chain()
    assert a.mean_fidelity == pytest.approx(float(swap(link.bell_diagonal, link.bell_diagonal)[0]))
