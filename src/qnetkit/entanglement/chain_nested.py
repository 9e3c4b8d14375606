"""Nested (doubling) repeater chains by vectorised recursive sampling; shared pair samplers.

Model (Briegel, Duer, Cirac & Zoller, PRL 81, 5932 (1998), the doubling scheme): a pair over
``2^l`` links is made from two pairs over ``2^(l-1)`` links, produced in parallel and
independently, by an entanglement swap at the middle node once the later of the two is ready;
with ``rounds`` purification rounds per nesting level, each pair of a level is first purified
``rounds`` times by recurrence (two pairs of the same span, produced in parallel, make one;
BBPSSW or DEJMPS). A failed swap or purification discards both pairs and both are made again
from that time on. This is the recursion of Brand, Coopmans & Elkouss, "Efficient computation
of the waiting time and fidelity in quantum repeater chains", IEEE JSAC 38, 619 (2020), Sec. III
(GEN, SWAP, DIST with restarts); we sample it instead of computing its distribution:
``n`` independent pairs at once, each level a few NumPy calls over all of them, with a loop
over the retries of the lanes that failed (their count shrinks geometrically).

Per pair we keep the time it became ready (s, from the start of its production), the age of its
oldest constituent elementary pair at that time (for the cutoff) and its Bell-diagonal state.
The earlier of two pairs waits in memory for the later: its two qubits are stored that long
(``operations.decohere``; exact for dephasing, twirled for amplitude damping). Cutoff (Li,
Coopmans, Emonts, Goodenough, Elkouss & Wehner, IEEE TQE 2, 4100115 (2021), the memory
cut-off): a pair is discarded once its oldest constituent is older than ``cutoff_s``; the
discarded side is made again from that moment while the other side goes on.

Classical messages announcing swap or purification outcomes are not waited for (as in the
(3/2)^n formula of Sangouard et al. 2011 and in Shchukin et al. 2019): one attempt's duration
``attempt_s`` already holds the heralding round trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.entanglement.operations import bbpssw, decohere, dejmps, swap
from qnetkit.errors import ParameterError

if TYPE_CHECKING:
    from qnetkit.physics.memory import QuantumMemory

#: Upper bound on retry/regeneration loop passes of one combination step: reached only when a
#: cutoff (or a tiny probability) makes delivery practically impossible.
MAX_LOOP_PASSES = 200_000


@dataclass(frozen=True)
class ChainModel:
    """Resolved, validated inputs of the samplers (built by :mod:`.chain`)."""

    links: int
    link_success_prob: float  # per attempt, after multiplexing over the memories
    link_state: FloatArray  # (4,) Bell-diagonal state of a fresh elementary pair
    attempt_s: float
    swap_success_prob: float
    memory: QuantumMemory | None  # None: ideal memory (no decoherence)
    cutoff_s: float  # math.inf: none
    purify: str | None
    rounds: int


@dataclass
class Pairs:
    """A batch of pairs: ready time (s from the start of their production), age, state."""

    ready_s: FloatArray
    age_s: FloatArray
    coeffs: FloatArray
    events: int = 0


Sampler = Callable[[int], Pairs]


def wait_in_memory(model: ChainModel, coeffs: FloatArray, t_s: FloatArray) -> FloatArray:
    """State after both qubits of each pair were stored ``t_s`` (identity for an ideal memory)."""
    if model.memory is None:
        return coeffs
    return decohere(coeffs, t_s, model.memory)


def elementary_pairs(model: ChainModel, n: int, rng: np.random.Generator) -> Pairs:
    """``n`` elementary pairs: the number of attempts until the first success is geometric."""
    attempts = rng.geometric(model.link_success_prob, size=n).astype(np.float64)
    coeffs = np.broadcast_to(model.link_state, (n, 4)).copy()
    return Pairs(attempts * model.attempt_s, np.zeros(n), coeffs, events=n)


def purified_link_sampler(model: ChainModel, rng: np.random.Generator) -> Sampler:
    """Sampler of elementary pairs after ``model.rounds`` purification rounds (0: raw pairs)."""
    return lambda n: _sample(model, 0, model.rounds, n, rng)


def nested_pairs(model: ChainModel, n: int, rng: np.random.Generator) -> Pairs:
    """``n`` end-to-end pairs of the nested protocol (``model.links`` a power of two)."""
    levels = round(math.log2(model.links))
    return _sample(model, levels, model.rounds, n, rng)


def _sample(model: ChainModel, level: int, rounds: int, n: int, rng: np.random.Generator) -> Pairs:
    if rounds > 0:
        return _combine(
            model, lambda k: _sample(model, level, rounds - 1, k, rng), "purify", n, rng
        )
    if level > 0:
        return _combine(
            model, lambda k: _sample(model, level - 1, model.rounds, k, rng), "swap", n, rng
        )
    return elementary_pairs(model, n, rng)


def _enforce_cutoff(model: ChainModel, child: Sampler, a: Pairs, b: Pairs) -> int:
    """Regenerate, in place, whichever pair of each lane outlived the cutoff while waiting."""
    cut = model.cutoff_s
    events = 0
    for _ in range(MAX_LOOP_PASSES):
        oldest_a = a.ready_s - a.age_s
        oldest_b = b.ready_s - b.age_s
        # The earlier pair waits for the later one; it is discarded when its oldest
        # constituent passes the cutoff before the other pair is ready.
        exp_a = np.flatnonzero((a.ready_s <= b.ready_s) & (b.ready_s > oldest_a + cut))
        exp_b = np.flatnonzero((b.ready_s < a.ready_s) & (a.ready_s > oldest_b + cut))
        if exp_a.size == 0 and exp_b.size == 0:
            return events
        for idx, side, oldest in ((exp_a, a, oldest_a), (exp_b, b, oldest_b)):
            if idx.size:
                fresh = child(idx.size)
                side.ready_s[idx] = oldest[idx] + cut + fresh.ready_s
                side.age_s[idx] = fresh.age_s
                side.coeffs[idx] = fresh.coeffs
                events += fresh.events + idx.size  # the discards count as events
    raise ParameterError("cutoff_s", cut, "too short: pairs keep expiring before use")


def _swap_all_attempts(
    model: ChainModel, child: Sampler, n: int, rng: np.random.Generator
) -> Pairs:
    """Swap step with its retries drawn at once.

    The swap succeeds with a fixed probability, so the number of attempts of each lane is
    geometric and known in advance: all attempts' pairs are sampled in one call, the failed
    attempts only add their duration (their pairs are discarded), and the last one gives the
    state. Same distribution as retrying lane by lane, with O(levels) NumPy calls.
    """
    tries = rng.geometric(model.swap_success_prob, size=n)
    total = int(tries.sum())
    a, b = child(total), child(total)
    events = a.events + b.events + total
    if np.isfinite(model.cutoff_s):
        events += _enforce_cutoff(model, child, a, b)
    t = np.maximum(a.ready_s, b.ready_s)
    last = np.cumsum(tries) - 1
    start = last - tries + 1
    ready = np.add.reduceat(t, start)  # durations of all attempts, the successful one last
    ca = wait_in_memory(model, a.coeffs[last], t[last] - a.ready_s[last])
    cb = wait_in_memory(model, b.coeffs[last], t[last] - b.ready_s[last])
    oldest = np.minimum(a.ready_s - a.age_s, b.ready_s - b.age_s)[last]
    return Pairs(ready, t[last] - oldest, swap(ca, cb), events)


def _combine(
    model: ChainModel, child: Sampler, op: str, n: int, rng: np.random.Generator
) -> Pairs:
    """Two pairs from ``child`` in parallel, then ``op`` (swap or purify); retry the failures."""
    if op == "swap":
        return _swap_all_attempts(model, child, n, rng)
    ready = np.empty(n)
    age = np.empty(n)
    coeffs = np.empty((n, 4))
    pending = np.arange(n)
    offset = np.zeros(n)
    events = 0
    for _ in range(MAX_LOOP_PASSES):
        if pending.size == 0:
            return Pairs(ready, age, coeffs, events)
        k = pending.size
        a, b = child(k), child(k)
        events += a.events + b.events + k
        if np.isfinite(model.cutoff_s):
            events += _enforce_cutoff(model, child, a, b)
        t = np.maximum(a.ready_s, b.ready_s)
        ca = wait_in_memory(model, a.coeffs, t - a.ready_s)
        cb = wait_in_memory(model, b.coeffs, t - b.ready_s)
        if op == "swap":
            prob: FloatArray | float = model.swap_success_prob
            out = swap(ca, cb)
        elif model.purify == "dejmps":
            prob, out = dejmps(ca, cb)
        else:
            prob, out = bbpssw(ca, cb)
        ok = rng.random(k) < prob
        done = pending[ok]
        ready[done] = offset[ok] + t[ok]
        age[done] = t[ok] - np.minimum(a.ready_s - a.age_s, b.ready_s - b.age_s)[ok]
        coeffs[done] = out[ok]
        offset = (offset + t)[~ok]
        pending = pending[~ok]
    raise ParameterError(
        "swap_success_prob" if op == "swap" else "purify",
        model.swap_success_prob if op == "swap" else model.purify,
        "success too rare: no pair after the retry limit",
    )


__all__ = [
    "ChainModel",
    "Pairs",
    "elementary_pairs",
    "nested_pairs",
    "purified_link_sampler",
    "wait_in_memory",
]
