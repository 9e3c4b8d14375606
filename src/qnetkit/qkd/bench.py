"""Throughput and efficiency benchmarks of the post-processing stages on random frames.

Reconciliation: efficiency f = leaked bits / (n h(QBER)) (f = 1 at the Shannon limit), frame
error rate and throughput; privacy amplification: throughput of the modified Toeplitz hash
(Hayashi, Tsurumaru, IEEE TIT 62, 2213 (2016)). Used by ``qnetkit qkd reconcile``/``amplify``
and ``benchmarks/postprocessing.py``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qnetkit.keyrate.common import binary_entropy
from qnetkit.qkd.channel import local_pair, run_parties
from qnetkit.qkd.link import make_reconciler
from qnetkit.qkd.privacy import modified_toeplitz_hash, random_bits


def reconcile_benchmark(
    method: str, qber: float, n: int, frames: int, seed: int
) -> dict[str, Any]:
    """Mean efficiency, frame error rate, throughput and round trips over random frames."""
    rng = np.random.default_rng(seed)
    effs: list[float] = []
    failures = 0
    uses = 0
    wall = 0.0
    for _ in range(frames):
        alice_key = rng.integers(0, 2, n, dtype=np.uint8)
        noise = (rng.random(n) < qber).astype(np.uint8)
        bob_key = alice_key ^ noise
        errors = int(noise.sum())
        reconciler = make_reconciler(method)
        a_ep, b_ep = local_pair()
        a_rng = np.random.default_rng(rng.integers(2**63))
        t = time.perf_counter()
        _, b_res = run_parties(
            lambda: reconciler.alice(a_ep, alice_key, qber, a_rng),  # noqa: B023
            lambda: reconciler.bob(b_ep, bob_key, qber),  # noqa: B023
            endpoints=(a_ep, b_ep),
        )
        wall += time.perf_counter() - t
        if not np.array_equal(b_res.key, alice_key):
            failures += 1
        h = float(binary_entropy(np.asarray(errors / n)))
        if h > 0:
            effs.append(b_ep.log.leaked_bits() / (n * h))
        uses += b_res.channel_uses
    return {
        "method": method,
        "qber": qber,
        "bits": n,
        "frames": frames,
        "ec_efficiency": float(np.mean(effs)) if effs else None,
        "frame_error_rate": failures / frames,
        "bits_per_s": n * frames / wall if wall > 0 else None,
        "channel_uses": uses / frames,
    }


def amplify_benchmark(n: int, m: int, repeat: int, seed: int) -> dict[str, Any]:
    """Input bits per second of the protocol's PA (modified Toeplitz, fresh seed per block)."""
    rng = np.random.default_rng(seed)
    key = rng.integers(0, 2, n, dtype=np.uint8)
    modified_toeplitz_hash(key, random_bits(rng, n - 1), m)  # warm-up (FFT plans)
    wall = 0.0
    for _ in range(repeat):
        key = rng.integers(0, 2, n, dtype=np.uint8)
        t = time.perf_counter()
        modified_toeplitz_hash(key, random_bits(rng, n - 1), m)
        wall += time.perf_counter() - t
    return {
        "bits": n,
        "output_bits": m,
        "repeat": repeat,
        "seconds_per_block": wall / repeat,
        "bits_per_s": n * repeat / wall,
    }
