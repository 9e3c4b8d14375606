"""Alice's and Bob's protocol steps on one block of sifted bits, each seeing only its own data.

Per block: QBER sampling, test-basis announcement, reconciliation, error counting, decoy/finite-key
estimation (Lim et al. 2014), verification, privacy amplification (modified Toeplitz hashing) and
Wegman-Carter authentication paid back from the new key. Sifting precedes the blocks.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qnetkit._types import BitArray
from qnetkit.qkd.channel import AuthKeyPool, Endpoint
from qnetkit.qkd.estimation import (
    BasisBound,
    DecoyClasses,
    basis_eps_sec,
    decoy_basis_bound,
    entangled_basis_bound,
    gllp_basis_bound,
    secret_key_length,
)
from qnetkit.qkd.link_config import LinkConfig, key_basis
from qnetkit.qkd.privacy import ToeplitzAmplifier
from qnetkit.qkd.quantum import AliceRecord, BobRecord
from qnetkit.qkd.reconciliation.base import Reconciler
from qnetkit.qkd.verification import verify_alice, verify_bob

STAGES = (
    "quantum",
    "sifting",
    "estimation",
    "reconciliation",
    "verification",
    "privacy-amplification",
    "authentication",
)


class BlockAbortError(Exception):
    """A block (or the run) stops with a reason both parties know."""


@dataclass
class _Timer:
    wall: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def add(self, stage: str, start: float) -> None:
        self.wall[stage] += time.perf_counter() - start


def _block_slices(n: int, block_bits: int) -> list[slice]:
    if n == 0:
        return []
    blocks = max(1, math.ceil(n / block_bits))
    edges = np.linspace(0, n, blocks + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _counts(basis: BitArray, cls: BitArray, mask: npt.NDArray[np.bool_], classes: int) -> Any:
    """Counts per (basis, intensity class) of the events selected by mask, int64[2, classes]."""
    idx = basis[mask].astype(np.int64) * classes + cls[mask].astype(np.int64)
    return np.bincount(idx, minlength=2 * classes).reshape(2, classes)


def _bounds(
    config: LinkConfig, counts: Any, errors: Any, classes: int, gain: float
) -> list[BasisBound]:
    """One bound per key basis, each at basis_eps_sec (the same split on every path)."""
    n_b, m_b = counts.sum(axis=1), errors.sum(axis=1)
    kb = key_basis(config)
    key_bases = (0, 1) if kb is None else (kb,)
    eps = basis_eps_sec(config.eps_sec, len(key_bases))
    if config.protocol == "bbm92":
        return [
            entangled_basis_bound(int(n_b[b]), int(n_b[1 - b]), int(m_b[1 - b]), eps)
            for b in key_bases
        ]
    if classes == 1:  # no decoys: GLLP with every multi-photon pulse tagged
        mu = config.source.intensities[0]
        multi = -math.expm1(-mu) - mu * math.exp(-mu)
        tagged = multi / gain if gain > 0 else 1.0
        return [
            gllp_basis_bound(int(n_b[b]), int(n_b[1 - b]), int(m_b[1 - b]), tagged, eps)
            for b in key_bases
        ]
    decoy = DecoyClasses(config.source.intensities, config.source.intensity_probs)
    return [
        decoy_basis_bound(
            [int(c) for c in counts[b]],
            [int(c) for c in counts[1 - b]],
            [int(e) for e in errors[1 - b]],
            decoy,
            eps,
        )
        for b in key_bases
    ]


def _test_mask(config: LinkConfig, basis: BitArray) -> npt.NDArray[np.bool_] | None:
    """The test-basis bits of a block (announced, never key); None when both bases are key."""
    kb = key_basis(config)
    return None if kb is None else np.asarray(basis != kb)


def _classes(config: LinkConfig) -> int:
    return 1 if config.protocol == "bbm92" else len(config.source.intensities)


# --------------------------------------------------------------------------- the two parties


def _sift_alice(ep: Endpoint, rec: AliceRecord) -> tuple[BitArray, BitArray, BitArray, int]:
    msg = ep.recv("sift.detections")
    idx = np.asarray(msg.public["pulse_index"], dtype=np.int64)
    bob_basis = np.unpackbits(msg.public["basis"], count=idx.size)
    pos = np.searchsorted(rec.pulse_index, idx)
    pos = np.minimum(pos, max(rec.pulse_index.size - 1, 0))
    if idx.size and not np.array_equal(rec.pulse_index[pos], idx):
        raise BlockAbortError("sifting failed: Bob announced pulses Alice has no record of")
    a_basis = rec.basis[pos]
    a_cls = rec.intensity_class[pos]
    ep.send(
        "sift.bases",
        {"basis": np.packbits(a_basis), "intensity_class": a_cls.astype(np.uint8)},
    )
    keep = a_basis == bob_basis
    return rec.bit[pos][keep], a_basis[keep], a_cls[keep], int(idx.size)


def _sift_bob(ep: Endpoint, rec: BobRecord) -> tuple[BitArray, BitArray, BitArray, int]:
    ep.send(
        "sift.detections",
        {"pulse_index": rec.pulse_index, "basis": np.packbits(rec.basis)},
    )
    msg = ep.recv("sift.bases")
    n = rec.pulse_index.size
    a_basis = np.unpackbits(msg.public["basis"], count=n)
    a_cls = np.asarray(msg.public["intensity_class"], dtype=np.uint8)
    keep = a_basis == rec.basis
    return rec.bit[keep], rec.basis[keep], a_cls[keep], int(n)


def _empty_stats() -> dict[str, Any]:
    return {
        "sifted_bits": 0,
        "sample_bits": 0,
        "sample_errors": 0,
        "test_bits": 0,
        "test_errors": 0,
        "reconciled_bits": 0,
        "gain": 0.0,
        "last_ec_qber": None,
        "leaked_ec_bits": 0,
        "ec_channel_uses": 0,
        "errors_corrected": 0,
        "verification_bits": 0,
        "auth_bits_consumed": 0,
        "secret_key_bits": 0,
        "pa_output_bits": 0,
        "blocks": 0,
        "blocks_aborted": 0,
        "abort_reasons": [],
        "phase_error_bounds": [],
        "s1_bits": 0.0,
        "eps_cor": 0.0,
    }



def _drop_sample(
    key: BitArray, basis: BitArray, cls: BitArray, sample: npt.NDArray[np.int64]
) -> tuple[BitArray, BitArray, BitArray]:
    """The sampled positions are public now: both parties discard them (never key, never EC)."""
    keep = np.ones(key.size, dtype=bool)
    keep[sample] = False
    return key[keep], basis[keep], cls[keep]


def _check_sample_qber(config: LinkConfig, qber_est: float) -> None:
    if qber_est > config.abort_qber:
        raise BlockAbortError(
            f"QBER {100 * qber_est:.1f} % in the sample is above the abort threshold "
            f"{100 * config.abort_qber:.1f} %"
        )

def _alice_block(
    ep: Endpoint,
    config: LinkConfig,
    key: BitArray,
    basis: BitArray,
    cls: BitArray,
    rng: np.random.Generator,
    pool: AuthKeyPool,
    reconciler: Reconciler,
    stats: dict[str, Any],
    timer: _Timer,
) -> BitArray:
    n_cls = _classes(config)
    t = time.perf_counter()
    with ep.stage("estimation"):
        k = min(config.qber_sample_bits, key.size // 10)
        sample = np.sort(rng.choice(key.size, size=k, replace=False)) if k else np.zeros(0, int)
        ep.send("pe.sample", {"positions": sample.astype(np.int64)}, leaked=key[sample])
        qber_est = float(ep.recv("pe.qber").public["qber"])
    key, basis, cls = _drop_sample(key, basis, cls, sample)
    timer.add("estimation", t)
    _check_sample_qber(config, qber_est)
    # Counts per (basis, class) of key and test bits alike, before the test bits leave.
    counts = _counts(basis, cls, np.ones(key.size, dtype=bool), n_cls)
    test = _test_mask(config, basis)
    test_errors = np.zeros((2, n_cls), dtype=np.int64)
    if test is not None:
        t = time.perf_counter()
        with ep.stage("estimation"):
            # Lim et al. 2014: the test basis is announced. Alice's bits are independent per
            # pulse and test bits never become key, so this reveals nothing of the key bits.
            ep.send("pe.test_bits", {"bits": np.packbits(key[test])})
            reply = ep.recv("pe.test_errors").public["errors"]
            test_errors = np.asarray(reply, dtype=np.int64).reshape(2, n_cls)
        timer.add("estimation", t)
        key, basis, cls = key[~test], basis[~test], cls[~test]
    t = time.perf_counter()
    with ep.stage("reconciliation"):
        rec = reconciler.alice(ep, key, _ec_qber(config, stats, qber_est, k), rng)
    timer.add("reconciliation", t)
    stats["leaked_ec_bits"] += rec.leaked_bits
    stats["ec_channel_uses"] += rec.channel_uses
    t = time.perf_counter()
    with ep.stage("estimation"):
        errors = np.asarray(ep.recv("pe.errors").public["errors"], dtype=np.int64)
    stats["last_ec_qber"] = float(errors.sum()) / key.size if key.size else None
    errors = errors.reshape(2, n_cls) + test_errors
    bounds = _bounds(config, counts, errors, n_cls, stats["gain"])
    timer.add("estimation", t)
    t = time.perf_counter()
    with ep.stage("verification"):
        ver = verify_alice(ep, key, rng)
    timer.add("verification", t)
    stats["verification_bits"] += ver.leaked_bits
    stats["eps_cor"] += ver.eps_cor
    if not ver.passed:
        raise BlockAbortError("verification failed: the keys still differ after reconciliation")
    return _finish_alice(ep, config, key, bounds, rec.leaked_bits, ver.leaked_bits, rng, pool,
                         stats, timer)


def _finish_alice(
    ep: Endpoint,
    config: LinkConfig,
    key: BitArray,
    bounds: list[BasisBound],
    leaked_ec: int,
    verification_bits: int,
    rng: np.random.Generator,
    pool: AuthKeyPool,
    stats: dict[str, Any],
    timer: _Timer,
) -> BitArray:
    ell = secret_key_length(bounds, leaked_ec, verification_bits, config.eps_sec)
    _record_bounds(stats, bounds)
    t = time.perf_counter()
    with ep.stage("privacy-amplification"):
        ep.send("pa.length", {"ell": ell})
        if ell <= 0:
            timer.add("privacy-amplification", t)
            raise BlockAbortError(_no_key_reason(bounds, leaked_ec))
        final = ToeplitzAmplifier().alice(ep, key, ell, rng).key
    timer.add("privacy-amplification", t)
    return _authenticate(ep, final, pool, stats, timer)


def _bob_block(
    ep: Endpoint,
    config: LinkConfig,
    key: BitArray,
    basis: BitArray,
    cls: BitArray,
    pool: AuthKeyPool,
    reconciler: Reconciler,
    stats: dict[str, Any],
    timer: _Timer,
) -> BitArray:
    n_cls = _classes(config)
    t = time.perf_counter()
    with ep.stage("estimation"):
        msg = ep.recv("pe.sample")
        sample = np.asarray(msg.public["positions"], dtype=np.int64)
        sample_errors = int(np.count_nonzero(key[sample] != msg.leaked))
        qber_est = sample_errors / sample.size if sample.size else 0.0
        ep.send("pe.qber", {"qber": qber_est})
    stats["sample_bits"] += int(sample.size)
    stats["sample_errors"] += sample_errors
    key, basis, cls = _drop_sample(key, basis, cls, sample)
    timer.add("estimation", t)
    _check_sample_qber(config, qber_est)
    counts = _counts(basis, cls, np.ones(key.size, dtype=bool), n_cls)
    test = _test_mask(config, basis)
    test_errors = np.zeros((2, n_cls), dtype=np.int64)
    if test is not None:
        t = time.perf_counter()
        with ep.stage("estimation"):
            packed = ep.recv("pe.test_bits").public["bits"]
            alice_bits = np.unpackbits(packed, count=int(np.count_nonzero(test)))
            wrong = np.zeros(key.size, dtype=bool)
            wrong[test] = alice_bits != key[test]
            test_errors = _counts(basis, cls, wrong, n_cls)
            ep.send("pe.test_errors", {"errors": test_errors.ravel().astype(np.int64)})
        timer.add("estimation", t)
        stats["test_bits"] += int(np.count_nonzero(test))
        stats["test_errors"] += int(np.count_nonzero(wrong))
        key, basis, cls = key[~test], basis[~test], cls[~test]
    t = time.perf_counter()
    with ep.stage("reconciliation"):
        rec = reconciler.bob(ep, key, _ec_qber(config, stats, qber_est, int(sample.size)))
    timer.add("reconciliation", t)
    stats["leaked_ec_bits"] += rec.leaked_bits
    stats["ec_channel_uses"] += rec.channel_uses
    stats["reconciled_bits"] += int(key.size)
    flipped = rec.key != key
    stats["last_ec_qber"] = float(np.count_nonzero(flipped)) / key.size if key.size else None
    stats["errors_corrected"] += int(np.count_nonzero(flipped))
    t = time.perf_counter()
    with ep.stage("estimation"):
        # Error positions are independent of the key bits in BB84, so their counts are public.
        errors = _counts(basis, cls, flipped, n_cls)
        ep.send("pe.errors", {"errors": errors.ravel().astype(np.int64)})
    bounds = _bounds(config, counts, errors + test_errors, n_cls, stats["gain"])
    timer.add("estimation", t)
    t = time.perf_counter()
    with ep.stage("verification"):
        ver = verify_bob(ep, rec.key)
    timer.add("verification", t)
    stats["verification_bits"] += ver.leaked_bits
    stats["eps_cor"] += ver.eps_cor
    if not ver.passed:
        raise BlockAbortError("verification failed: the keys still differ after reconciliation")
    _record_bounds(stats, bounds)
    t = time.perf_counter()
    with ep.stage("privacy-amplification"):
        ell = int(ep.recv("pa.length").public["ell"])
        if ell <= 0:
            timer.add("privacy-amplification", t)
            raise BlockAbortError(_no_key_reason(bounds, rec.leaked_bits))
        final = ToeplitzAmplifier().bob(ep, rec.key).key
    timer.add("privacy-amplification", t)
    return _authenticate(ep, final, pool, stats, timer)


def _ec_qber(config: LinkConfig, stats: dict[str, Any], sample_qber: float, sample: int) -> float:
    """The QBER the reconciler plans with (both parties compute the same value).

    The previous block's exact error rate when there is one (as deployed systems do); else the
    sample's estimate, lowered by one standard error for LDPC, whose blind rounds adapt upward
    cheaply while a too-high first rate wastes syndrome bits.
    """
    last = stats.get("last_ec_qber")
    if last is not None:
        return max(float(last), 1e-3)
    if config.reconciliation == "ldpc" and sample > 0:
        sample_qber -= math.sqrt(max(sample_qber * (1 - sample_qber), 1e-6) / sample)
    return max(sample_qber, 1e-3)


def _record_bounds(stats: dict[str, Any], bounds: list[BasisBound]) -> None:
    main = max(bounds, key=lambda b: b.key_bits)
    stats["phase_error_bounds"].append(main.phase_error)
    stats["s1_bits"] += sum(b.s1 for b in bounds)


def _no_key_reason(bounds: list[BasisBound], leaked_ec: int) -> str:
    main = max(bounds, key=lambda b: b.key_bits)
    return (
        f"no secret key: estimated phase error {100 * main.phase_error:.1f} % and "
        f"{main.s1:.0f} single-photon bits leave no key after {leaked_ec} leaked EC bits"
    )


def _authenticate(
    ep: Endpoint, final: BitArray, pool: AuthKeyPool, stats: dict[str, Any], timer: _Timer
) -> BitArray:
    t = time.perf_counter()
    with ep.stage("authentication"):
        used = ep.authenticate(pool)
    # Wegman-Carter: what authentication consumed is paid back from the new key.
    if used > final.size:
        timer.add("authentication", t)
        raise BlockAbortError("block key shorter than the authentication key it consumed")
    pool.replenish(np.packbits(final[:used]).tobytes())
    timer.add("authentication", t)
    stats["auth_bits_consumed"] += used
    stats["pa_output_bits"] += int(final.size)
    return final[used:]
