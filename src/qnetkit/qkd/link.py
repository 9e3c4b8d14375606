"""A whole QKD link: Monte-Carlo quantum stage, then Alice's and Bob's post-processing.

Alice and Bob run as two parties (threads in one process, or two processes over TCP) that see
only their own detection records and the authenticated classical channel. Stages per block:
sifting, QBER sampling, test-basis announcement, reconciliation, error counting, decoy/finite-key
estimation (Lim et al. 2014), verification, privacy amplification, authentication. Randomness:
one seed, split into independent streams (the quantum channel, Alice's protocol choices, the
pre-shared authentication key); in simulation only, the pre-shared key comes from the seeded
stream.

The configuration lives in ``qkd.link_config``, the per-block protocol steps in
``qkd.link_steps``; their public names are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from qnetkit._types import BitArray
from qnetkit.errors import ParameterError
from qnetkit.qkd.channel import (
    AuthKeyPool,
    Endpoint,
    local_pair,
    run_parties,
)
from qnetkit.qkd.link_config import (
    RECONCILIATION_METHODS,
    LinkConfig,
    LinkResult,
    PartyResult,
    ProtocolName,
    key_basis,
)
from qnetkit.qkd.link_options import LINK_EXTRA_OPTIONS, LINK_OPTIONS, make_link_config
from qnetkit.qkd.link_steps import (
    STAGES,
    BlockAbortError,
    _alice_block,
    _block_slices,
    _bob_block,
    _empty_stats,
    _sift_alice,
    _sift_bob,
    _Timer,
)
from qnetkit.qkd.link_steps import _bounds as _bounds  # re-exported: tests check it directly
from qnetkit.qkd.quantum import (
    AliceRecord,
    BobRecord,
    simulate_bbm92,
    simulate_decoy_bb84,
)
from qnetkit.qkd.reconciliation.base import Reconciler
from qnetkit.qkd.summary import summarise

__all__ = [
    "LINK_EXTRA_OPTIONS",
    "LINK_OPTIONS",
    "RECONCILIATION_METHODS",
    "STAGES",
    "BitArray",
    "BlockAbortError",
    "LinkConfig",
    "LinkResult",
    "PartyResult",
    "ProtocolName",
    "alice_party",
    "bob_party",
    "key_basis",
    "make_link_config",
    "make_reconciler",
    "preshared_auth_key",
    "run_quantum_stage",
    "simulate_link",
]


def make_reconciler(method: str) -> Reconciler:
    """The reconciler registered under ``method`` (cascade | cascade-original | ldpc)."""
    if method == "cascade":
        from qnetkit.qkd.reconciliation.cascade import CascadeReconciler

        return CascadeReconciler(variant="optimized")
    if method == "cascade-original":
        from qnetkit.qkd.reconciliation.cascade import CascadeReconciler

        return CascadeReconciler(variant="original")
    if method == "ldpc":
        from qnetkit.qkd.reconciliation.ldpc import LdpcReconciler

        ldpc: Reconciler = LdpcReconciler()
        return ldpc
    raise ParameterError(
        "reconciliation", method, f"must be one of {', '.join(RECONCILIATION_METHODS)}"
    )


# --------------------------------------------------------------------------- seeding


@dataclass(frozen=True)
class _Streams:
    quantum: int
    alice: int
    auth: int


def _streams(seed: int) -> _Streams:
    children = np.random.SeedSequence(seed).spawn(3)
    return _Streams(*(int(c.generate_state(1, np.uint64)[0]) for c in children))


def preshared_auth_key(config: LinkConfig) -> bytes:
    """SIMULATION ONLY: the pre-shared authentication key drawn from the run's seeded stream."""
    rng = np.random.default_rng(_streams(config.seed).auth)
    return rng.integers(0, 256, config.auth_key_bits // 8, dtype=np.uint8).tobytes()


def run_quantum_stage(
    config: LinkConfig, progress: Callable[[int], None] | None = None
) -> tuple[AliceRecord, BobRecord]:
    """The simulated quantum channel: both parties' detection records from the seed."""
    rng = np.random.default_rng(_streams(config.seed).quantum)
    if config.protocol == "bbm92":
        return simulate_bbm92(
            config.entangled,
            config.length_km,
            config.pulses,
            rng,
            attack=config.attack,
            progress=progress,
            monitor=config.timing.blinding_monitor,
        )
    return simulate_decoy_bb84(
        config.link,
        config.length_km,
        config.pulses,
        config.source,
        rng,
        timing=config.timing,
        attack=config.attack,
        progress=progress,
    )


def alice_party(
    ep: Endpoint,
    config: LinkConfig,
    rec: AliceRecord,
    pool: AuthKeyPool,
    progress: Callable[[int], None] | None = None,
) -> PartyResult:
    """Alice's post-processing of her record; returns her final key and statistics."""
    return _party(ep, config, rec, pool, progress)


def bob_party(
    ep: Endpoint,
    config: LinkConfig,
    rec: BobRecord,
    pool: AuthKeyPool,
    progress: Callable[[int], None] | None = None,
) -> PartyResult:
    """Bob's post-processing of his record; returns his final key and statistics."""
    return _party(ep, config, rec, pool, progress)


def _party(
    ep: Endpoint,
    config: LinkConfig,
    rec: AliceRecord | BobRecord,
    pool: AuthKeyPool,
    progress: Callable[[int], None] | None,
) -> PartyResult:
    stats = _empty_stats()
    timer = _Timer()
    keys: list[BitArray] = []
    is_alice = isinstance(rec, AliceRecord)
    t = time.perf_counter()
    with ep.stage("sifting"):
        if isinstance(rec, AliceRecord):
            alarm = bool(ep.recv("sift.alarm").public["blinding_alarm"])
            if not alarm:
                key, basis, cls, detections = _sift_alice(ep, rec)
        else:
            alarm = bool(rec.blinding_alarm)
            ep.send("sift.alarm", {"blinding_alarm": alarm})
            if not alarm:
                key, basis, cls, detections = _sift_bob(ep, rec)
    timer.add("sifting", t)
    if alarm:
        stats["abort_reasons"].append(
            "detector blinding detected: Bob's photocurrent monitor tripped; no key is produced"
        )
        return PartyResult(np.zeros(0, dtype=np.uint8), stats, timer.wall)
    stats["sifted_bits"] = int(key.size)
    stats["gain"] = detections / config.pulses  # public: Bob announced every detection
    rng = np.random.default_rng(_streams(config.seed).alice)
    reconciler = make_reconciler(config.reconciliation)
    for sl in _block_slices(key.size, config.block_bits):
        stats["blocks"] += 1
        try:
            if is_alice:
                out = _alice_block(
                    ep, config, key[sl], basis[sl], cls[sl], rng, pool, reconciler, stats, timer
                )
            else:
                out = _bob_block(
                    ep, config, key[sl], basis[sl], cls[sl], pool, reconciler, stats, timer
                )
            keys.append(out)
        except BlockAbortError as exc:
            # Both parties reach every abort from information they share, so they stay in step.
            stats["blocks_aborted"] += 1
            stats["abort_reasons"].append(str(exc))
        if progress is not None:
            progress(int(sl.stop - sl.start))
    final = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint8)
    stats["secret_key_bits"] = int(final.size)
    return PartyResult(final, stats, timer.wall)


def simulate_link(
    config: LinkConfig | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    **options: Any,
) -> LinkResult:
    """Run a whole link in this process (Alice in a thread, Bob here) and return both keys.

    The options are those of ``qnetkit qkd run``, by the same names and values (dashes become
    underscores), applied to ``config`` (default ``LinkConfig()``) by ``make_link_config``, the
    function the command line builds its configuration with; the same options and seed give
    the same run. An eavesdropper is given by name or as an ``Attack``::

        simulate_link(length_km=25, pulses=10**8, reconciliation="ldpc", seed=3)
        simulate_link(pulses=10**7, seed=4, attack="intercept-resend", attack_fraction=0.3)
        simulate_link(pulses=10**7, seed=4, attack=Attack("intercept-resend", fraction=0.3))

    A wrong name or type (``attack=3``, ``attack="laser"``, ``attack_fraction="x"``, an unknown
    option) raises ``qnetkit.errors.ParameterError`` naming the option and its allowed values,
    before anything runs. ``LinkResult.keys_match`` is None when the run produced no key.
    """
    cfg = make_link_config(config, **options)
    start = time.perf_counter()
    q_progress = None if progress is None else (lambda done: progress("quantum", done, cfg.pulses))
    alice_rec, bob_rec = run_quantum_stage(cfg, q_progress)
    quantum_wall = time.perf_counter() - start
    a_ep, b_ep = local_pair()
    auth_key = preshared_auth_key(cfg)
    a_pool, b_pool = AuthKeyPool(auth_key), AuthKeyPool(auth_key)
    total = int(np.count_nonzero(alice_rec.basis == bob_rec.basis)) if bob_rec.basis.size else 0
    done = [0]

    def pp(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress("post-processing", done[0], total)

    # An AuthenticationError (tampered transcript) ends the run: no key from it is trusted.
    a_res, b_res = run_parties(
        lambda: alice_party(a_ep, cfg, alice_rec, a_pool),
        lambda: bob_party(b_ep, cfg, bob_rec, b_pool, pp),
        endpoints=(a_ep, b_ep),
    )
    wall = time.perf_counter() - start
    stats = summarise(
        cfg, a_res, b_res, quantum_wall, wall, b_ep.log.leaked_bits("reconciliation")
    )
    return LinkResult(a_res.key, b_res.key, stats)
