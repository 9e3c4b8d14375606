"""qnetkit.sim.engine: ordering, cancellation, run limits, errors and the heap's memory bound."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from qnetkit.errors import ParameterError
from qnetkit.sim import COMPACT_MIN_CANCELLED, Event, RandomStreams, Simulator


def recorder(sim: Simulator) -> tuple[list[tuple[float, Any]], Any]:
    """A log of (now_s, label) and a callback appending to it."""
    log: list[tuple[float, Any]] = []

    def note(label: Any) -> None:
        log.append((sim.now_s, label))

    return log, note


def test_order_is_time_then_priority_then_insertion() -> None:
    sim = Simulator()
    log, note = recorder(sim)
    sim.schedule(2.0, note, "t2")
    sim.schedule(1.0, note, "t1-p0-first")
    sim.schedule(1.0, note, "t1-p-1", priority=-1)
    sim.schedule(1.0, note, "t1-p0-second")
    sim.schedule(1.0, note, "t1-p5", priority=5)
    sim.schedule_at(1.0, note, "t1-p0-third")
    sim.schedule(0.5, note, "t0.5-p9", priority=9)
    assert sim.run() == 7
    assert log == [(0.5, "t0.5-p9"), (1.0, "t1-p-1"), (1.0, "t1-p0-first"),
                   (1.0, "t1-p0-second"), (1.0, "t1-p0-third"), (1.0, "t1-p5"), (2.0, "t2")]
    assert sim.now_s == 2.0
    assert sim.events_executed == 7


def test_many_random_events_follow_a_sort_by_time_priority_insertion() -> None:
    # Times drawn from a few values and priorities from a few more, so ties are frequent.
    rng = np.random.default_rng(7)
    times = rng.integers(0, 50, size=20_000) * 0.25
    priorities = rng.integers(-3, 4, size=20_000)
    sim = Simulator()
    ran: list[int] = []
    for i, (t, p) in enumerate(zip(times, priorities, strict=True)):
        sim.schedule_at(float(t), ran.append, i, priority=int(p))
    assert sim.run() == 20_000
    expected = sorted(range(20_000), key=lambda i: (times[i], priorities[i], i))
    assert ran == expected


def test_delays_are_relative_to_the_clock_inside_callbacks() -> None:
    sim = Simulator()
    log, note = recorder(sim)

    def chain(k: int) -> None:
        note(k)
        if k < 3:
            sim.schedule(0.25 * (k + 1), chain, k + 1)

    sim.schedule(1.0, chain, 0)
    sim.run()
    assert log == [(1.0, 0), (1.25, 1), (1.75, 2), (2.5, 3)]


def test_callback_scheduled_at_same_time_runs_after_those_already_waiting() -> None:
    sim = Simulator()
    log, note = recorder(sim)

    def first() -> None:
        note("first")
        sim.schedule(0.0, note, "zero-delay")

    sim.schedule(1.0, first)
    sim.schedule(1.0, note, "second")
    sim.run()
    assert [label for _, label in log] == ["first", "second", "zero-delay"]


def test_cancelled_event_never_runs() -> None:
    sim = Simulator()
    log, note = recorder(sim)
    keep = sim.schedule(1.0, note, "keep")
    drop = sim.schedule(2.0, note, "drop")
    assert sim.pending_events == 2
    drop.cancel()
    assert drop.cancelled and not drop.pending
    assert keep.pending and not keep.cancelled
    assert sim.pending_events == 1
    assert sim.run() == 1
    assert log == [(1.0, "keep")]
    assert sim.events_executed == 1
    assert sim.peek_s() is None


def test_cancel_after_run_or_twice_is_harmless() -> None:
    sim = Simulator()
    log, note = recorder(sim)
    event = sim.schedule(1.0, note, "x")
    sim.run()
    event.cancel()  # already ran: nothing to withdraw
    assert not event.cancelled and not event.pending
    assert sim.pending_events == 0 and sim.heap_size == 0
    other = sim.schedule(1.0, note, "y")
    other.cancel()
    other.cancel()
    assert sim.pending_events == 0
    assert sim.run() == 0
    assert log == [(1.0, "x")]


def test_callback_cancels_a_later_event_and_itself() -> None:
    sim = Simulator()
    log, note = recorder(sim)
    victim = sim.schedule(3.0, note, "victim")
    holder: dict[str, Event] = {}

    def killer() -> None:
        note("killer")
        victim.cancel()
        holder["self"].cancel()  # an event cancelling itself while running: no effect

    holder["self"] = sim.schedule(1.0, killer)
    assert sim.run() == 1
    assert log == [(1.0, "killer")]
    assert victim.cancelled and not holder["self"].cancelled


def test_until_s_is_inclusive_and_advances_the_clock() -> None:
    sim = Simulator()
    log, note = recorder(sim)
    for t in (1.0, 2.0, 2.0, 3.0):
        sim.schedule_at(t, note, t)
    assert sim.run(until_s=2.0) == 3  # both events at exactly until_s ran
    assert log == [(1.0, 1.0), (2.0, 2.0), (2.0, 2.0)]
    assert sim.now_s == 2.0
    assert sim.peek_s() == 3.0
    assert sim.run(until_s=2.5) == 0
    assert sim.now_s == 2.5  # clock moves to until_s even with no event in between
    assert sim.run(until_s=10.0) == 1
    assert sim.now_s == 10.0  # agenda drained before until_s: clock still goes to until_s
    assert sim.run(until_s=10.0) == 0  # until_s == now_s is allowed


def test_split_runs_equal_one_run() -> None:
    def model(sim: Simulator, log: list[tuple[float, int]]) -> None:
        rng = sim.streams.stream("arrivals")

        def arrival(k: int) -> None:
            log.append((sim.now_s, k))
            if k < 200:
                sim.schedule(float(rng.exponential(0.1)), arrival, k + 1)

        sim.schedule(0.0, arrival, 0)

    one, split = Simulator(seed=3), Simulator(seed=3)
    log_one: list[tuple[float, int]] = []
    log_split: list[tuple[float, int]] = []
    model(one, log_one)
    model(split, log_split)
    one.run(until_s=15.0)
    for t in np.linspace(0.5, 15.0, 30):
        split.run(until_s=float(t))
    assert log_split == log_one
    assert len(log_one) > 100  # the horizon holds a real stretch of the model
    assert split.now_s == one.now_s == 15.0


def test_max_events_and_stop() -> None:
    sim = Simulator()
    log, note = recorder(sim)
    for t in range(1, 6):
        sim.schedule(float(t), note, t)
    assert sim.run(max_events=0) == 0
    assert sim.run(max_events=2) == 2
    assert sim.now_s == 2.0  # stopped by the budget: the clock stays at the last event
    assert sim.pending_events == 3

    def halt() -> None:
        note("halt")
        sim.stop()

    sim.schedule_at(3.0, halt, priority=-1)
    assert sim.run(until_s=100.0) == 1
    assert log[-1] == (3.0, "halt")
    assert sim.now_s == 3.0  # stopped by a callback: the clock stays too
    sim.stop()  # outside run: no effect on the next one
    assert sim.run() == 3
    assert [label for _, label in log] == [1, 2, "halt", 3, 4, 5]
    assert sim.events_executed == 6


@pytest.mark.parametrize("delay_s", [-1.0, -1e-12, math.nan, math.inf, -math.inf])
def test_bad_delay_is_a_parameter_error(delay_s: float) -> None:
    sim = Simulator()
    with pytest.raises(ParameterError) as info:
        sim.schedule(delay_s, lambda: None)
    assert info.value.name == "delay_s"
    assert sim.heap_size == 0


def test_scheduling_in_the_past_and_bad_run_limits_are_parameter_errors() -> None:
    sim = Simulator()
    sim.run(until_s=5.0)
    for time_s in (4.999, math.nan, math.inf):
        with pytest.raises(ParameterError) as info:
            sim.schedule_at(time_s, lambda: None)
        assert info.value.name == "time_s"
    sim.schedule_at(5.0, lambda: None)  # exactly now is not the past
    for until_s in (4.0, math.nan):
        with pytest.raises(ParameterError) as info:
            sim.run(until_s=until_s)
        assert info.value.name == "until_s"
    with pytest.raises(ParameterError) as info:
        sim.run(max_events=-1)
    assert info.value.name == "max_events"
    assert sim.pending_events == 1 and sim.now_s == 5.0


def test_run_inside_a_callback_is_refused_and_errors_leave_the_engine_usable() -> None:
    sim = Simulator()
    sim.schedule(1.0, lambda: sim.run())

    def boom() -> None:
        raise KeyError("model bug")

    with pytest.raises(RuntimeError, match="inside a callback"):
        sim.run()
    sim.schedule(1.0, boom)
    later = sim.schedule(2.0, lambda: None)
    with pytest.raises(KeyError):
        sim.run()
    assert sim.now_s == 2.0 and later.pending
    assert sim.run() == 1
    assert sim.now_s == 3.0


def test_heap_stays_bounded_when_most_events_are_cancelled() -> None:
    # A timeout pattern: every step arms a far-future timeout and cancels the previous one.
    sim = Simulator()
    live = [sim.schedule(1.0, lambda: None) for _ in range(10)]
    largest = 0
    for _ in range(200_000):
        sim.schedule(1e6, lambda: None).cancel()
        largest = max(largest, sim.heap_size)
    assert largest <= 2 * len(live) + COMPACT_MIN_CANCELLED + 1
    assert sim.pending_events == 10
    assert sim.run() == 10


def test_compaction_keeps_order_even_in_the_middle_of_a_run() -> None:
    sim = Simulator()
    ran: list[int] = []
    events = [sim.schedule_at(float(1 + k % 97), ran.append, k) for k in range(20_000)]
    survivors = [k for k in range(20_000) if k % 10 == 0]

    def cancel_most() -> None:
        for k, event in enumerate(events):
            if k % 10:
                event.cancel()

    sim.schedule_at(0.5, cancel_most)
    assert sim.run() == 1 + len(survivors)
    assert ran == sorted(survivors, key=lambda k: (1 + k % 97, k))
    assert sim.heap_size == 0


def test_simulator_streams_follow_its_seed() -> None:
    a, b = Simulator(seed=11), Simulator(seed=12)
    ref = RandomStreams(11).stream("link").random(5)
    assert np.array_equal(a.streams.stream("link").random(5), ref)
    assert not np.array_equal(b.streams.stream("link").random(5), ref)
