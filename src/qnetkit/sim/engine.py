"""A discrete-event engine: a binary-heap agenda in simulated seconds with cancellable events.

Model (the textbook next-event time advance, e.g. Law, *Simulation Modeling and Analysis*,
5th ed., section 1.3): the simulator holds a clock ``now_s`` and an agenda of future events.
``run`` repeatedly removes the earliest event, sets the clock to its time and calls its
callback; nothing happens between events, so simulated time jumps from one event to the next.

Ordering is total and deterministic: events run in increasing ``time_s``, ties by increasing
``priority`` (smaller runs first), remaining ties in the order they were scheduled (a per
simulator insertion counter). With seeded random streams this makes every run reproducible.

Costs (n = events in the agenda): ``schedule``/``schedule_at`` O(log n) (``heapq.heappush``),
executing the next event O(log n) (``heappop``), ``Event.cancel`` O(1) amortised by lazy
deletion: the event is only flagged and is dropped when it reaches the top of the heap. So that
a model which cancels most of what it schedules (timeouts that rarely fire) cannot grow the heap
without bound, the heap is compacted (filtered and re-heapified, O(n)) whenever cancelled entries
outnumber live ones and exceed ``COMPACT_MIN_CANCELLED``; the heap therefore never holds more
than ``2 * live + COMPACT_MIN_CANCELLED`` entries, and the O(n) rebuild is paid for by the at
least n/2 cancellations since the previous one.

Use it only where events interleave (shared memories, concurrent requests, classical messages
in flight). Independent trials with closed-form waiting times (a geometric number of heralding
attempts, say) are far cheaper sampled directly and vectorised with NumPy.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

from qnetkit.errors import ParameterError
from qnetkit.sim.streams import RandomStreams

__all__ = ["COMPACT_MIN_CANCELLED", "Event", "Simulator"]

# Below this many cancelled entries a rebuild is not worth its O(n): they cost a few hundred
# bytes each and are dropped anyway when they surface at the top of the heap.
COMPACT_MIN_CANCELLED = 1024

_INF = math.inf


class Event:
    """One scheduled callback. Returned by ``Simulator.schedule``; keep it only to cancel it.

    ``time_s`` is the simulated time (s) it runs at, ``priority`` its tie-break (smaller first).
    ``cancelled`` is True once ``cancel()`` took it off the agenda before it ran; cancelling an
    event that already ran (or was already cancelled) does nothing and leaves ``cancelled`` as it
    was, so the flag always means "withdrawn, never ran".
    """

    __slots__ = ("_sim", "args", "callback", "cancelled", "priority", "time_s")

    def __init__(self, sim: Simulator, time_s: float, priority: int,
                 callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self._sim: Simulator | None = sim  # set while on the agenda, None once run or cancelled
        self.time_s = time_s
        self.priority = priority
        self.callback = callback
        self.args = args
        self.cancelled = False

    @property
    def pending(self) -> bool:
        """True while the event is on the agenda (neither run nor cancelled)."""
        return self._sim is not None

    def cancel(self) -> None:
        """Withdraw the event if it has not run yet; O(1) (the heap entry is deleted lazily)."""
        sim = self._sim
        if sim is None:
            return
        self._sim = None
        self.cancelled = True
        self.args = ()  # release the arguments now; the heap entry lingers until dropped
        sim._cancelled_in_heap += 1
        # Compact when dead entries dominate (module docstring: bounds memory, amortised O(1)).
        if (sim._cancelled_in_heap > COMPACT_MIN_CANCELLED
                and 2 * sim._cancelled_in_heap > len(sim._heap)):
            sim._compact()

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else ("pending" if self.pending else "done")
        name = getattr(self.callback, "__qualname__", repr(self.callback))
        return f"Event(time_s={self.time_s!r}, priority={self.priority}, {name}, {state})"


class Simulator:
    """Event engine with a clock in seconds and named, seeded random streams.

    ``now_s`` starts at 0 and only moves forward. ``streams.stream(name)`` gives the
    reproducible generator for a named source of randomness (see ``RandomStreams``);
    ``events_executed`` counts callbacks run over the simulator's life.
    """

    def __init__(self, seed: int = 0) -> None:
        self.now_s: float = 0.0
        self.streams = RandomStreams(seed)
        self.events_executed: int = 0
        # Entries (time_s, priority, seq, event); seq is unique, so the Event is never compared.
        self._heap: list[tuple[float, int, int, Event]] = []
        self._seq = 0
        self._cancelled_in_heap = 0
        self._stop_requested = False
        self._running = False

    # -- scheduling ---------------------------------------------------------------------------

    def schedule(self, delay_s: float, callback: Callable[..., object], *args: Any,
                 priority: int = 0) -> Event:
        """Run ``callback(*args)`` ``delay_s`` seconds from now (``delay_s`` finite, >= 0).

        The callback's return value is ignored. Returns the ``Event``, to cancel it.
        """
        # One chained comparison rejects negative, NaN and infinite delays alike.
        if not 0.0 <= delay_s < _INF:
            raise ParameterError("delay_s", delay_s, "must be a finite number of seconds >= 0")
        # _push inlined: this is the hot path of every model (one Python call fewer per event).
        time_s = self.now_s + delay_s
        event = Event(self, time_s, priority, callback, args)
        seq = self._seq
        self._seq = seq + 1
        heapq.heappush(self._heap, (time_s, priority, seq, event))
        return event

    def schedule_at(self, time_s: float, callback: Callable[..., object], *args: Any,
                    priority: int = 0) -> Event:
        """Run ``callback(*args)`` at simulated time ``time_s`` (finite, not before ``now_s``)."""
        if not self.now_s <= time_s < _INF:
            raise ParameterError("time_s", time_s,
                                 f"must be finite and not before now_s={self.now_s!r}")
        return self._push(float(time_s), priority, callback, args)

    def _push(self, time_s: float, priority: int, callback: Callable[..., object],
              args: tuple[Any, ...]) -> Event:
        event = Event(self, time_s, priority, callback, args)
        seq = self._seq
        self._seq = seq + 1
        heapq.heappush(self._heap, (time_s, priority, seq, event))
        return event

    # -- running ------------------------------------------------------------------------------

    def run(self, until_s: float | None = None, max_events: int | None = None) -> int:
        """Execute events in order; return how many ran in this call.

        Stops at the first of: the agenda is empty; the next event is later than ``until_s``
        (events at exactly ``until_s`` DO run, so ``run(until_s=t)`` leaves nothing at or before
        ``t``); ``max_events`` have run; a callback called ``stop()``. When it stops because of
        ``until_s`` or an empty agenda, the clock is advanced to ``until_s`` (if given), so
        ``run(until_s=t1); run(until_s=t2)`` is the same as ``run(until_s=t2)``. Otherwise the
        clock stays at the last executed event. Callbacks may schedule and cancel events; an
        exception raised by a callback propagates, with that event consumed (and not counted).
        """
        if self._running:
            raise RuntimeError("Simulator.run() called from inside a callback")
        if until_s is None:
            limit_s = _INF
        elif self.now_s <= until_s < _INF or until_s == _INF:
            limit_s = float(until_s)
        else:
            raise ParameterError("until_s", until_s,
                                 f"must be a time not before now_s={self.now_s!r}")
        if max_events is None:
            budget = -1  # never reached by the countdown below
        elif max_events >= 0:
            budget = int(max_events)
        else:
            raise ParameterError("max_events", max_events, "must be >= 0")

        heap = self._heap  # compaction rebuilds this list in place, so the alias stays valid
        pop = heapq.heappop
        executed = 0
        drained = False  # True when nothing is left at or before limit_s
        self._stop_requested = False
        self._running = True
        try:
            while budget != 0:
                if not heap:
                    drained = True
                    break
                entry = pop(heap)
                event = entry[3]
                if event._sim is None:  # cancelled while waiting (lazy deletion)
                    self._cancelled_in_heap -= 1
                    continue
                time_s = entry[0]
                if time_s > limit_s:
                    heapq.heappush(heap, entry)  # not due yet: put it back, once per run()
                    drained = True
                    break
                event._sim = None
                self.now_s = time_s
                event.callback(*event.args)
                executed += 1
                budget -= 1
                if self._stop_requested:
                    break
            if drained and limit_s != _INF:
                self.now_s = limit_s
        finally:
            self._running = False
            self._stop_requested = False
            self.events_executed += executed
        return executed

    def stop(self) -> None:
        """End the current ``run`` once the executing callback returns (no effect outside run)."""
        if self._running:
            self._stop_requested = True

    # -- inspection ---------------------------------------------------------------------------

    @property
    def pending_events(self) -> int:
        """Events on the agenda that will still run (cancelled ones excluded)."""
        return len(self._heap) - self._cancelled_in_heap

    @property
    def heap_size(self) -> int:
        """Entries held in the heap, cancelled ones not yet dropped included (memory bound)."""
        return len(self._heap)

    def peek_s(self) -> float | None:
        """Time (s) of the next event that will run, or None if the agenda is empty."""
        heap = self._heap
        while heap and heap[0][3]._sim is None:  # drop cancelled entries from the top
            heapq.heappop(heap)
            self._cancelled_in_heap -= 1
        return heap[0][0] if heap else None

    def _compact(self) -> None:
        """Drop every cancelled entry and restore the heap property, in place (O(n))."""
        self._heap[:] = [entry for entry in self._heap if entry[3]._sim is not None]
        heapq.heapify(self._heap)
        self._cancelled_in_heap = 0
