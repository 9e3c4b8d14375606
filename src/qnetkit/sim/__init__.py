"""Discrete-event simulation: an event engine in simulated seconds and seeded random streams.

``Simulator`` (``engine``) is a heap-ordered agenda of cancellable events, ties broken by
(time, priority, insertion order); ``RandomStreams`` (``streams``) hands out one independent,
reproducible NumPy generator per named source of randomness.

The engine is for what needs events to interleave: memories shared between requests,
concurrent requests, classical messages in flight. Where no interleaving matters, sample the
waiting times in closed form or vectorise many independent trials with NumPy/Numba instead of
stepping events one at a time.

Layer: below ``qkd`` and ``entanglement``, above ``keyrate``; imports neither.
"""

from __future__ import annotations

from qnetkit.sim.engine import COMPACT_MIN_CANCELLED, Event, Simulator
from qnetkit.sim.streams import RandomStreams, stream_seed_sequence

__all__ = ["COMPACT_MIN_CANCELLED", "Event", "RandomStreams", "Simulator", "stream_seed_sequence"]
