"""Two-process QKD link over TCP: Alice drives, Bob serves; each runs only its own party.

Alice sends the ``LinkConfig`` in the first message, both regenerate their own detection record
from the shared seed (simulation only) and run the protocol of ``qkd.link`` over the
authenticated channel; Bob reports his statistics (no key material) at the end. Across
processes the keys are compared through the verification hash (eps_cor), never directly.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from qnetkit._types import BitArray
from qnetkit.qkd.channel import DEFAULT_MAX_FRAME_BYTES, AuthKeyPool, Endpoint, tcp_connect
from qnetkit.qkd.link import (
    LinkConfig,
    PartyResult,
    alice_party,
    bob_party,
    preshared_auth_key,
    run_quantum_stage,
)
from qnetkit.qkd.summary import summarise


def run_alice_tcp(
    config: LinkConfig, peer: str, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> tuple[dict[str, Any], BitArray]:
    """Alice here, Bob in another process at ``peer``; the config travels in the first message."""
    start = time.perf_counter()
    ep = tcp_connect("alice", peer, max_frame_bytes=max_frame_bytes)
    try:
        ep.send("setup", {"config": config.to_dict()})
        alice_rec, _ = run_quantum_stage(config)
        quantum_wall = time.perf_counter() - start
        pool = AuthKeyPool(preshared_auth_key(config))
        res = alice_party(ep, config, alice_rec, pool)
        report = ep.recv("report").public
    finally:
        ep.close()
    wall = time.perf_counter() - start
    bob_view = dataclasses.replace(res, stats=report["stats"], stage_wall_s=report["stage_wall_s"])
    stats = summarise(config, res, bob_view, quantum_wall, wall, int(report["leaked_channel"]))
    # Across processes the keys are compared through verification (eps_cor), not directly;
    # with no key on either side there is nothing to compare (None, as in one process).
    stats["keys_match"] = None if report["key_bits"] == res.key.size == 0 else bool(
        report["key_bits"] == res.key.size and report["blocks_verified"] == res.stats["blocks"]
        - res.stats["blocks_aborted"]
    )
    stats["keys_compared_by"] = "verification hash (eps_cor) across processes"
    return stats, res.key


def serve_bob(ep: Endpoint) -> PartyResult:
    """Bob's side on an accepted connection: take Alice's config, run his party, report back.

    The caller owns ``ep`` (and closes it); a ``ChannelError`` propagates to it.
    """
    config = LinkConfig.from_dict(ep.recv("setup").public["config"])
    _, bob_rec = run_quantum_stage(config)
    pool = AuthKeyPool(preshared_auth_key(config))
    res = bob_party(ep, config, bob_rec, pool)
    with ep.stage("report"):
        ep.send(
            "report",
            {
                "stats": res.stats,
                "stage_wall_s": res.stage_wall_s,
                "key_bits": int(res.key.size),
                "blocks_verified": res.stats["blocks"] - res.stats["blocks_aborted"],
                "leaked_channel": ep.log.leaked_bits("reconciliation"),
            },
        )
    return res
