"""Repeater chains: SWAP-ASAP and nested (doubling) protocols, simulated and in closed form.

A chain of ``nodes`` nodes (``nodes - 1`` elementary links of ``link_length_km`` each) delivers
``pairs`` end-to-end entangled pairs, each from empty memories (independent runs; the rate is
pairs over their summed waiting times, the rate of a chain that restarts after each delivery).

Elementary links come from the heralding physics of :mod:`qnetkit.physics.heralding`
(``scheme``: single-click, Cabrillo et al. 1999; double-click, Barrett & Kok 2005; SPDC with
multimode memories, Simon et al. 2007) or, textbook style, from ``link_success_prob`` (p per
attempt), ``link_fidelity`` (Werner pairs) and ``attempt_s``, each overriding its physical
counterpart. ``memories`` per node and side multiplex the attempts: a link succeeds in an
attempt when any of its ``m`` memory pairs does, ``1 - (1 - p)^m`` (the SPDC scheme already
counts its memory modes, ``modes = memories``). With purification the memories are shared by
the ``2^rounds`` pairs purified together, so ``memories >= 2^rounds`` and each uses
``memories // 2^rounds`` for multiplexing. Spare pairs of a multiplexed link are not kept
(a simplification: they could replace pairs lost to failed swaps).

Protocols (:mod:`.chain_swap_asap`, :mod:`.chain_nested` for the models and their sources):
``swap-asap`` swaps at a node as soon as it holds two pairs; ``nested`` is the doubling scheme
of Briegel, Duer, Cirac & Zoller, PRL 81, 5932 (1998) (``nodes - 1`` a power of two) with
``rounds`` of BBPSSW or DEJMPS purification at every nesting level (with ``swap-asap``,
purification acts on the elementary links). ``cutoff_s`` (and the memory's
``max_storage_s``) discards a pair whose oldest constituent is older than the cutoff.
Swaps succeed with ``swap_success_prob``; the memory decoheres stored qubits
(:func:`qnetkit.entanglement.operations.decohere`).

:func:`analytic_chain` gives the closed forms of :mod:`.chain_analytic` where they exist.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.entanglement.chain_analytic import (
    mean_max_geometric_attempts,
    sangouard_mean_time_s,
    two_link_cutoff_mean_attempts,
    two_link_mean_attempts,
    two_link_wait_pmf,
    werner_chain_fidelity,
)
from qnetkit.entanglement.chain_nested import ChainModel, Pairs, nested_pairs
from qnetkit.entanglement.chain_swap_asap import swap_asap_closed_form, swap_asap_engine
from qnetkit.entanglement.operations import bbpssw, decohere, dejmps, swap
from qnetkit.entanglement.states import werner
from qnetkit.errors import ParameterError
from qnetkit.physics.memory import QuantumMemory
from qnetkit.sim import RandomStreams

if TYPE_CHECKING:
    from qnetkit.physics.heralding import HeraldedLink

SCHEMES = ("single-click", "double-click", "spdc")
PROTOCOLS = ("swap-asap", "nested")
PURIFICATIONS = ("bbpssw", "dejmps")


@dataclass(frozen=True)
class ChainConfig:
    """One repeater chain and its run (module docstring). ``None`` means "from the physics"."""

    nodes: int = 3
    link_length_km: float = 10.0
    scheme: str = "single-click"
    memory: QuantumMemory = field(default_factory=QuantumMemory)
    #: Shortcut for ``memory`` with this T2 (its other fields kept); the CLI's ``--memory-t2-s``.
    memory_t2_s: float | None = None
    memories: int = 1
    protocol: str = "swap-asap"
    purify: str | None = None
    #: Purification rounds per nesting level; with ``purify`` set, 0 means 1.
    rounds: int = 0
    cutoff_s: float | None = None
    pairs: int = 1000
    seed: int = 0
    link_fidelity: float | None = None
    link_success_prob: float | None = None
    swap_success_prob: float = 1.0
    attempt_s: float | None = None
    loss_db_per_km: float = 0.2
    detector_efficiency: float | None = None
    dark_count_prob: float | None = None


@dataclass
class ChainResult:
    """Delivered pairs of a simulated chain; times are simulated seconds except ``wall_s``.

    ``events``: protocol events executed: heralded elementary pairs, swap and purification
    attempts, cutoff discards and deliveries (failed heralding attempts are not events: their
    number is drawn at once as a geometric variable).
    """

    delivered_pairs: int
    fidelities: FloatArray
    waiting_times_s: FloatArray
    final_states: FloatArray  # (pairs, 4) Bell-diagonal
    mean_fidelity: float
    fidelity_std: float
    mean_waiting_time_s: float
    rate_pairs_per_s: float
    events: int
    wall_s: float
    pairs_per_wall_s: float
    params: dict[str, Any]


@dataclass
class AnalyticChainResult:
    """Closed forms of a chain (``None`` where the model has none); ``*_model`` say which."""

    mean_waiting_time_s: float | None
    mean_attempts: float | None
    rate_pairs_per_s: float | None
    mean_fidelity: float | None
    fidelity_std: float | None
    final_state: FloatArray | None
    waiting_time_model: str
    fidelity_model: str
    params: dict[str, Any]
    #: Sangouard et al. 2011 (3/2)^n approximation, nested chains without purification.
    sangouard_waiting_time_s: float | None = None
    delivered_pairs: int | None = None
    events: int | None = None


def _config(config: ChainConfig | None, options: dict[str, Any]) -> ChainConfig:
    base = config if config is not None else ChainConfig()
    allowed = {f.name for f in dataclasses.fields(ChainConfig)}
    for name in options:
        if name not in allowed:
            raise ParameterError(name, options[name], f"unknown option; allowed: {sorted(allowed)}")
    cfg = dataclasses.replace(base, **options)
    _validate(cfg)
    return cfg


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _number(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> None:
    ok = isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
    v = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not ok or math.isnan(v) or v < low or v > high or (low_open and v == low):
        bound = "(" if low_open else "["
        raise ParameterError(name, value, f"must be a number in {bound}{low}, {high}]")


def _validate(c: ChainConfig) -> None:
    if not _is_int(c.nodes) or c.nodes < 2:
        raise ParameterError("nodes", c.nodes, "a chain needs an integer >= 2 nodes")
    if not _is_int(c.memories) or c.memories < 1:
        raise ParameterError("memories", c.memories, "must be an integer >= 1")
    if not _is_int(c.pairs) or c.pairs < 1:
        raise ParameterError("pairs", c.pairs, "must be an integer >= 1")
    if not _is_int(c.seed) or c.seed < 0:
        raise ParameterError("seed", c.seed, "must be an integer >= 0")
    if not _is_int(c.rounds) or c.rounds < 0:
        raise ParameterError("rounds", c.rounds, "must be an integer >= 0")
    if c.scheme not in SCHEMES:
        raise ParameterError("scheme", c.scheme, f"must be one of {', '.join(SCHEMES)}")
    if c.protocol not in PROTOCOLS:
        raise ParameterError("protocol", c.protocol, f"must be one of {', '.join(PROTOCOLS)}")
    if c.purify is not None and c.purify not in PURIFICATIONS:
        raise ParameterError("purify", c.purify, f"must be one of {', '.join(PURIFICATIONS)}")
    if c.rounds > 0 and c.purify is None:
        raise ParameterError("rounds", c.rounds, "purification rounds need purify=bbpssw|dejmps")
    if not isinstance(c.memory, QuantumMemory):
        raise ParameterError("memory", c.memory, "must be a qnetkit.physics.memory.QuantumMemory")
    _number("link_length_km", c.link_length_km, 0.0, math.inf)
    if math.isinf(c.link_length_km):
        raise ParameterError("link_length_km", c.link_length_km, "must be finite")
    _number("loss_db_per_km", c.loss_db_per_km, 0.0, math.inf)
    _number("swap_success_prob", c.swap_success_prob, 0.0, 1.0, low_open=True)
    optional = (
        ("link_success_prob", c.link_success_prob, 0.0, 1.0, True),
        ("link_fidelity", c.link_fidelity, 0.25, 1.0, False),
        ("detector_efficiency", c.detector_efficiency, 0.0, 1.0, True),
        ("dark_count_prob", c.dark_count_prob, 0.0, 1.0, False),
        ("attempt_s", c.attempt_s, 0.0, math.inf, True),
        ("cutoff_s", c.cutoff_s, 0.0, math.inf, True),
        ("memory_t2_s", c.memory_t2_s, 0.0, math.inf, True),
    )
    for name, value, low, high, low_open in optional:
        if value is not None:
            _number(name, value, low, high, low_open=low_open)
    if c.attempt_s is not None and math.isinf(c.attempt_s):
        raise ParameterError("attempt_s", c.attempt_s, "must be finite")
    links = c.nodes - 1
    if c.protocol == "nested" and links & (links - 1):
        raise ParameterError(
            "nodes", c.nodes, "the nested protocol needs nodes - 1 a power of two (2, 3, 5, 9, ...)"
        )
    rounds = _rounds(c)
    if rounds and c.memories < 2**rounds:
        raise ParameterError(
            "memories", c.memories, f"{rounds} purification round(s) need >= {2**rounds} memories"
        )


def _rounds(c: ChainConfig) -> int:
    if c.purify is None:
        return 0
    return max(c.rounds, 1)


def _memory(c: ChainConfig) -> QuantumMemory:
    if c.memory_t2_s is None:
        return c.memory
    return dataclasses.replace(c.memory, t2_s=float(c.memory_t2_s))


def _physical_link(c: ChainConfig, memory: QuantumMemory, modes: int) -> HeraldedLink:
    """The heralded link of the scheme (imported here: textbook runs need no physics)."""
    from qnetkit.physics import heralding

    kwargs: dict[str, Any] = {
        "loss_db_per_km": c.loss_db_per_km,
        "memory_efficiency": memory.efficiency,
    }
    if c.detector_efficiency is not None:
        kwargs["detector_efficiency"] = c.detector_efficiency
    if c.dark_count_prob is not None:
        kwargs["dark_count_prob"] = c.dark_count_prob
    if c.scheme == "single-click":
        return heralding.single_click_link(c.link_length_km, **kwargs)
    if c.scheme == "double-click":
        return heralding.double_click_link(c.link_length_km, **kwargs)
    return heralding.spdc_multiplexed_link(c.link_length_km, modes=modes, **kwargs)


def build_model(c: ChainConfig) -> tuple[ChainModel, dict[str, Any]]:
    """The samplers' model and the resolved parameters (``params`` of the results)."""
    memory = _memory(c)
    rounds = _rounds(c)
    mux = c.memories // 2**rounds  # memories per pair purified together (module docstring)
    textbook = None not in (c.link_success_prob, c.link_fidelity, c.attempt_s)
    if textbook:
        assert c.link_success_prob is not None and c.attempt_s is not None
        p, phys_state, attempt = float(c.link_success_prob), None, float(c.attempt_s)
    else:
        link = _physical_link(c, memory, mux)
        p = float(c.link_success_prob if c.link_success_prob is not None else link.success_prob)
        phys_state = np.asarray(link.bell_diagonal, dtype=np.float64)
        attempt = float(c.attempt_s if c.attempt_s is not None else link.attempt_s)
    if not p > 0.0:
        raise ParameterError("link_success_prob", p, "the link never succeeds (p = 0)")
    # SPDC links already count their memory modes (only when p is theirs); others multiplex here.
    spdc_own_p = not textbook and c.scheme == "spdc" and c.link_success_prob is None
    p_eff = p if spdc_own_p else -math.expm1(mux * math.log1p(-p)) if p < 1.0 else 1.0
    if c.link_fidelity is not None:
        state = werner(float(c.link_fidelity))
    else:
        assert phys_state is not None  # not textbook: the physics gave the state
        state = phys_state
    cutoff = min(math.inf if c.cutoff_s is None else float(c.cutoff_s), memory.max_storage_s)
    ideal = all(
        math.isinf(getattr(memory, f, math.inf)) for f in ("t1_s", "t2_s", "depolarizing_time_s")
    )
    model = ChainModel(
        links=c.nodes - 1,
        link_success_prob=p_eff,
        link_state=state,
        attempt_s=attempt,
        swap_success_prob=float(c.swap_success_prob),
        memory=None if ideal else memory,
        cutoff_s=cutoff,
        purify=c.purify,
        rounds=rounds,
    )
    params: dict[str, Any] = dataclasses.asdict(c)
    params["memory"] = dataclasses.asdict(memory)
    params.update(
        links=c.nodes - 1,
        rounds=rounds,
        link_model="textbook" if textbook else c.scheme,
        link_success_prob_per_memory=p,
        link_success_prob_effective=p_eff,
        multiplexing=mux,
        link_state=[float(x) for x in state],
        link_fidelity_resolved=float(state[0]),
        attempt_s=attempt,
        cutoff_s_effective=cutoff,
        chain_length_km=(c.nodes - 1) * float(c.link_length_km),
    )
    return model, params


def _closed_form_ok(c: ChainConfig, model: ChainModel) -> bool:
    return (
        c.protocol == "swap-asap"
        and model.swap_success_prob == 1.0
        and math.isinf(model.cutoff_s)
        and model.rounds == 0
    )


#: Elementary pairs (or lane-link cells) held in memory at once; larger runs go in chunks.
CHUNK_CELLS = 1 << 21


def _nested_work(model: ChainModel) -> float:
    """Expected elementary pairs per delivered pair of the recursion, at least (purification
    success taken as 1): each swap level doubles and divides by q, each round doubles."""
    levels = round(math.log2(model.links))
    return float((2.0 / model.swap_success_prob) ** levels * 2.0 ** (model.rounds * (levels + 1)))


def _in_chunks(
    sampler: Callable[[ChainModel, int, np.random.Generator], Pairs],
    model: ChainModel,
    n: int,
    rng: np.random.Generator,
    work_per_pair: float,
) -> Pairs:
    """Run ``sampler`` on chunks of runs so the arrays held at once stay bounded."""
    chunk = max(1, int(CHUNK_CELLS / max(work_per_pair, 1.0)))
    parts = [sampler(model, min(chunk, n - i), rng) for i in range(0, n, chunk)]
    if len(parts) == 1:
        return parts[0]
    return Pairs(
        np.concatenate([p.ready_s for p in parts]),
        np.concatenate([p.age_s for p in parts]),
        np.concatenate([p.coeffs for p in parts]),
        sum(p.events for p in parts),
    )


def simulate_chain(config: ChainConfig | None = None, **options: Any) -> ChainResult:
    """Monte-Carlo run of the chain (module docstring); same seed, same result.

    SWAP-ASAP with deterministic swaps, no cutoff and no purification is sampled in closed form
    (:func:`.chain_swap_asap.swap_asap_closed_form`); other SWAP-ASAP chains run the
    lane-vectorised event engine; nested chains the recursive sampler.
    """
    c = _config(config, options)
    model, params = build_model(c)
    rng = RandomStreams(c.seed).stream("repeater-chain")
    t0 = time.perf_counter()
    if c.protocol == "nested":
        sampler, work = nested_pairs, _nested_work(model)
        params["method"] = "nested recursive sampling (Brand et al. 2020 recursion)"
    elif _closed_form_ok(c, model):
        sampler, work = swap_asap_closed_form, float(model.links)
        params["method"] = "swap-asap closed form (max of geometric link times)"
    else:
        sampler, work = swap_asap_engine, float(model.links)
        params["method"] = "swap-asap event engine (vectorised over runs)"
    pairs = _in_chunks(sampler, model, c.pairs, rng, work)
    wall = time.perf_counter() - t0
    fids = np.asarray(pairs.coeffs[:, 0], dtype=np.float64)
    waits = np.asarray(pairs.ready_s, dtype=np.float64)
    total = float(waits.sum())
    return ChainResult(
        delivered_pairs=int(waits.size),
        fidelities=fids,
        waiting_times_s=waits,
        final_states=np.asarray(pairs.coeffs, dtype=np.float64),
        mean_fidelity=float(fids.mean()),
        fidelity_std=float(fids.std(ddof=1)) if fids.size > 1 else 0.0,
        mean_waiting_time_s=float(waits.mean()),
        rate_pairs_per_s=waits.size / total if total > 0 else math.inf,
        events=int(pairs.events),
        wall_s=wall,
        pairs_per_wall_s=waits.size / wall if wall > 0 else math.inf,
        params=params,
    )


def _ideal_state(model: ChainModel, levels: int | None) -> FloatArray:
    """Delivered state without decoherence: purify and swap along the protocol's tree."""

    def purified(state: FloatArray) -> FloatArray:
        for _ in range(model.rounds):
            state = (dejmps(state, state) if model.purify == "dejmps" else bbpssw(state))[1]
        return state

    state = purified(model.link_state)
    if levels is None:  # swap-asap: purified elementary pairs swapped together
        out = state
        for _ in range(model.links - 1):
            out = swap(out, state)
        return out
    for _ in range(levels):
        state = purified(swap(state, state))
    return state


def _cutoff_attempts(model: ChainModel) -> int | None:
    """The cutoff in whole attempts, when it is one (else None; inf cutoff: None)."""
    if math.isinf(model.cutoff_s):
        return None
    ratio = model.cutoff_s / model.attempt_s
    tau = round(ratio)
    return tau if abs(ratio - tau) <= 1e-9 * max(1.0, ratio) else None


def analytic_chain(config: ChainConfig | None = None, **options: Any) -> AnalyticChainResult:
    """Closed forms of the chain where they exist (module docstring of :mod:`.chain_analytic`).

    Waiting time: exact ``E[max of n geometric]`` for deterministic swaps (either protocol;
    with ``q = 1`` nesting changes nothing), exact ``E[max]/q`` for two links; for nested chains
    with ``q < 1`` and more levels the Sangouard et al. (3/2)^n approximation. None with
    cutoffs or purification. Fidelity: without decoherence the delivered state is
    deterministic (Werner closed form, or the exact swap/purification maps); None otherwise.
    """
    c = _config(config, options)
    model, params = build_model(c)
    n, p, q = model.links, model.link_success_prob, model.swap_success_prob
    levels = round(math.log2(n)) if c.protocol == "nested" else None
    attempts: float | None = None
    sangouard = None
    if c.protocol == "nested" and model.rounds == 0:
        sangouard = sangouard_mean_time_s(levels or 0, p, q, model.attempt_s)
    tau = _cutoff_attempts(model)
    if n == 2 and model.rounds == 0 and tau is not None:
        attempts = two_link_cutoff_mean_attempts(p, tau) / q
        wt_model = "exact: two links with a cutoff of tau attempts, Markov chain (chain_analytic)"
    elif model.rounds or math.isfinite(model.cutoff_s):
        wt_model = "none: cutoff or purification (simulate)"
    elif q == 1.0:
        attempts = mean_max_geometric_attempts(n, p)
        wt_model = "exact: E[max of n geometric] (Shchukin et al. PRA 100, 032322 (2019))"
    elif n == 1:
        attempts = 1.0 / p
        wt_model = "exact: geometric"
    elif n == 2:
        attempts = two_link_mean_attempts(p, q)
        wt_model = "exact: E[max of 2 geometric]/q (Shchukin et al. 2019, two segments)"
    elif sangouard is not None:
        attempts = sangouard / model.attempt_s
        wt_model = "approximation: (3/2)^n (Sangouard et al. RMP 83, 33 (2011)); small p and q"
    else:
        wt_model = "none: swap-asap with probabilistic swaps beyond two links (simulate)"
    mean_s = None if attempts is None else attempts * model.attempt_s
    state: FloatArray | None = None
    fid: float | None
    fid_std: float | None = 0.0
    if model.memory is not None and n == 2 and model.rounds == 0 and (
        tau is not None or math.isinf(model.cutoff_s)
    ):
        # The earlier pair waits k attempts (both qubits), the later none, then the swap.
        pmf = two_link_wait_pmf(model.link_success_prob, tau)
        waits_s = np.arange(pmf.size) * model.attempt_s
        states = swap(decohere(model.link_state, waits_s, model.memory), model.link_state)
        state = pmf @ states
        fid = float(state[0])
        fid_std = math.sqrt(max(float(pmf @ states[:, 0] ** 2) - fid**2, 0.0))
        fid_model = "exact: two links, sum over the earlier pair's geometric wait"
    elif model.memory is None:
        state = _ideal_state(model, levels)
        werner_in = np.allclose(model.link_state, werner(float(model.link_state[0])))
        if werner_in and model.rounds == 0:
            fid_model = "exact: Werner chain 1/4 + 3/4 w^n (Duer et al. PRA 59, 169 (1999))"
            fid = werner_chain_fidelity(float(model.link_state[0]), n)
        else:
            fid_model = "exact: swap/purification maps on the Bell-diagonal link state"
            fid = float(state[0])
    else:
        fid_model = "none: memory decoherence depends on the waiting times (simulate)"
        fid = fid_std = None
    return AnalyticChainResult(
        mean_waiting_time_s=mean_s,
        mean_attempts=attempts,
        rate_pairs_per_s=None if mean_s is None else 1.0 / mean_s,
        mean_fidelity=fid,
        fidelity_std=fid_std,
        final_state=state,
        waiting_time_model=wt_model,
        fidelity_model=fid_model,
        params=params,
        sangouard_waiting_time_s=sangouard,
    )


__all__ = [
    "PROTOCOLS",
    "PURIFICATIONS",
    "SCHEMES",
    "AnalyticChainResult",
    "ChainConfig",
    "ChainResult",
    "analytic_chain",
    "build_model",
    "simulate_chain",
]
