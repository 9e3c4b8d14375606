"""Node failures: scripted node-down/node-up events and random failures by MTBF/MTTR."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qnetkit.network.faults import node_outages
from qnetkit.network.topology import Topology, TopologyError, parse_topology


def _topo(scenario: list[dict[str, Any]] | None = None, **node_b: Any) -> Topology:
    return parse_topology({
        "name": "t", "step_s": 60,
        "nodes": [{"id": "a"}, {"id": "b", "kind": "trusted-relay", **node_b}, {"id": "c"}],
        "links": [{"id": "ab", "a": "a", "b": "b", "length_km": 10},
                  {"id": "bc", "a": "b", "b": "c", "length_km": 10}],
        "scenario": scenario or [],
    })


def _times(n: int, dt: float = 60.0) -> np.ndarray:
    return np.arange(n, dtype=float) * dt


def test_scripted_node_down_and_up_cover_the_steps_between() -> None:
    # Down at 130 s: from step 3 (180 s, the first step starting at or after it) until the
    # node-up at 300 s, step 5.
    topo = _topo([{"at_s": 130, "event": "node-down", "node": "b"},
                  {"at_s": 300, "event": "node-up", "node": "b"}])
    out = node_outages(topo, _times(10), seed=1)
    assert out.down.shape == (3, 10)
    assert np.flatnonzero(out.down[1]).tolist() == [3, 4]
    assert not out.down[0].any() and not out.down[2].any()
    assert out.incidents == [
        {"kind": "node-down", "link": "b", "node": True, "time_s": 130.0, "detected_s": 180.0,
         "detail": "scripted"},
        {"kind": "node-repair", "link": "b", "node": True, "time_s": 300.0, "detected_s": None,
         "detail": "scripted"},
    ]


def test_events_after_the_run_are_ignored() -> None:
    topo = _topo([{"at_s": 600, "event": "node-down", "node": "b"}])
    out = node_outages(topo, _times(10), seed=0)
    assert not out.down.any() and out.incidents == []


def test_random_failures_follow_the_per_node_stream() -> None:
    # Node b (index 1) draws from default_rng([seed, 1, 7]): exponential time to failure with
    # mean MTBF, then to repair with mean MTTR, alternating. Rebuild the first spans by hand.
    mtbf_h, mttr_h, seed, n = 2.0, 0.5, 42, 24 * 60
    out = node_outages(_topo(mtbf_h=mtbf_h, mttr_h=mttr_h), _times(n), seed=seed)
    rng = np.random.default_rng([seed, 1, 7])
    t = float(rng.exponential(mtbf_h * 3600))
    spans = []
    while t < n * 60:
        end = t + float(rng.exponential(mttr_h * 3600))
        spans.append((t, end))
        t = end + float(rng.exponential(mtbf_h * 3600))
    failures = [inc for inc in out.incidents if inc["kind"] == "node-down"]
    assert [inc["time_s"] for inc in failures] == [a for a, _ in spans]
    expected = np.zeros(n, dtype=bool)
    for a, b in spans:
        expected[int(a // 60):int(np.ceil(b / 60))] = True
    assert np.array_equal(out.down[1], expected)
    assert not out.down[0].any() and not out.down[2].any()
    # Over a day with MTBF 2 h and MTTR 0.5 h: several failures, down about a fifth of the time.
    assert len(spans) >= 4
    assert 0.05 < out.down[1].mean() < 0.45


def test_node_streams_do_not_touch_the_global_generator() -> None:
    # The links keep drawing from default_rng(seed): node failures must not consume from it.
    before = np.random.default_rng(3).random(4)
    node_outages(_topo(mtbf_h=1.0), _times(600), seed=3)
    assert np.array_equal(np.random.default_rng(3).random(4), before)
    # And the same seed gives the same outages.
    a = node_outages(_topo(mtbf_h=1.0), _times(600), seed=3).down
    b = node_outages(_topo(mtbf_h=1.0), _times(600), seed=3).down
    c = node_outages(_topo(mtbf_h=1.0), _times(600), seed=4).down
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize(("event", "message"), [
    ({"at_s": 0, "event": "node-down", "link": "ab"}, "names a node"),
    ({"at_s": 0, "event": "cut", "node": "b"}, "names a link"),
    ({"at_s": 0, "event": "cut", "link": "ab", "node": "b"}, "exactly one of link and node"),
    ({"at_s": 0, "event": "node-up"}, "exactly one of link and node"),
])
def test_scenario_event_names_the_right_kind_of_target(event: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(TopologyError) as err:
        _topo([event])
    assert any(path == "scenario[0]" and message in msg for path, msg in err.value.problems)


def test_unknown_node_in_scenario_is_reported_with_its_path() -> None:
    with pytest.raises(TopologyError) as err:
        _topo([{"at_s": 0, "event": "node-down", "node": "nowhere"}])
    assert ("scenario[0].node", "unknown node 'nowhere'") in err.value.problems


def test_node_mtbf_must_be_positive() -> None:
    with pytest.raises(TopologyError) as err:
        _topo(mtbf_h=0)
    assert any(path == "nodes[1].mtbf_h" for path, _ in err.value.problems)
