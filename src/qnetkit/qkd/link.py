"""A whole QKD link: Monte-Carlo quantum stage, then Alice's and Bob's post-processing.

Alice and Bob run as two parties (threads in one process, or two processes over TCP) that see
only their own detection records and the authenticated classical channel. Stages per block:
sifting, QBER sampling, test-basis announcement, reconciliation, error counting, decoy/finite-key
estimation (Lim et al. 2014), verification, privacy amplification, authentication. Randomness:
one seed, split into independent streams (the quantum channel, Alice's protocol choices, the
pre-shared authentication key); in simulation only, the pre-shared key comes from the seeded
stream.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import BBM92Params
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params
from qnetkit.physics.blinding import BlindingMonitorParams
from qnetkit.physics.validate import check_positive, check_probability
from qnetkit.qkd.attacks import Attack
from qnetkit.qkd.channel import (
    AuthKeyPool,
    Endpoint,
    local_pair,
    run_parties,
)
from qnetkit.qkd.estimation import (
    BasisBound,
    DecoyClasses,
    basis_eps_sec,
    decoy_basis_bound,
    entangled_basis_bound,
    gllp_basis_bound,
    secret_key_length,
)
from qnetkit.qkd.privacy import ToeplitzAmplifier
from qnetkit.qkd.quantum import (
    AliceRecord,
    BobRecord,
    DecoySourceParams,
    DetectorTimingParams,
    simulate_bbm92,
    simulate_decoy_bb84,
)
from qnetkit.qkd.reconciliation.base import Reconciler
from qnetkit.qkd.summary import summarise
from qnetkit.qkd.verification import verify_alice, verify_bob

BitArray = npt.NDArray[np.uint8]
ProtocolName = Literal["decoy-bb84", "bbm92"]
RECONCILIATION_METHODS = ("cascade", "cascade-original", "ldpc")
STAGES = (
    "quantum",
    "sifting",
    "estimation",
    "reconciliation",
    "verification",
    "privacy-amplification",
    "authentication",
)


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


@dataclass(frozen=True)
class LinkConfig:
    """Everything both parties must agree on before the run (sent by Alice in two-process mode).

    ``key_bases``: 1 (default) = one key basis, the one chosen more often (Z on a tie, always Z
    for BBM92), the other a test basis whose bits are announced to count its errors: the
    protocol of Lim et al. 2014 (key X, test Z) and Tomamichel, Lim, Gisin, Renner, Nat.
    Commun. 3, 634 (2012), whose finite-key proofs cover it. 2 = both bases carry key, each
    basis' phase error estimated from the other basis' errors at eps_sec / 2 each: the
    "efficient BB84" of Lo, Chau, Ardehali, J. Cryptology 18, 133 (2005), proved only
    asymptotically; no finite-key proof of that use is cited here, so it is opt-in.
    ``eps_sec`` is per block; the run summary composes it over the blocks.
    """

    protocol: ProtocolName = "decoy-bb84"
    length_km: float = 10.0
    pulses: int = 10**8
    link: DecoyBB84Params = field(default_factory=DecoyBB84Params)
    source: DecoySourceParams = field(default_factory=DecoySourceParams)
    timing: DetectorTimingParams = field(default_factory=DetectorTimingParams)
    entangled: BBM92Params = field(default_factory=BBM92Params)
    reconciliation: str = "cascade"
    attack: Attack | None = None
    block_bits: int = 2**22
    qber_sample_bits: int = 1024
    abort_qber: float = 0.11
    eps_sec: float = 1e-10
    key_bases: int = 1
    auth_key_bits: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in ("decoy-bb84", "bbm92"):
            raise ParameterError("protocol", self.protocol, "must be decoy-bb84 or bbm92")
        if not (isinstance(self.length_km, int | float) and math.isfinite(self.length_km)):
            raise ParameterError("length_km", self.length_km, "must be a finite number >= 0")
        if self.length_km < 0:
            raise ParameterError("length_km", self.length_km, "must be >= 0")
        if int(self.pulses) != self.pulses or self.pulses <= 0:
            raise ParameterError("pulses", self.pulses, "must be a positive integer")
        if self.reconciliation not in RECONCILIATION_METHODS:
            raise ParameterError(
                "reconciliation",
                self.reconciliation,
                f"must be one of {', '.join(RECONCILIATION_METHODS)}",
            )
        if self.protocol == "decoy-bb84" and len(self.source.intensities) not in (1, 3):
            raise ParameterError(
                "intensities",
                self.source.intensities,
                "give 3 (signal, decoy, vacuum: decoy-state bounds of Lim et al. 2014) or 1 "
                "(no decoys: GLLP bound)",
            )
        if self.block_bits < 4096:
            raise ParameterError("block_bits", self.block_bits, "must be >= 4096")
        if self.qber_sample_bits < 0:
            raise ParameterError("qber_sample_bits", self.qber_sample_bits, "must be >= 0")
        check_probability("abort_qber", self.abort_qber)
        check_positive("eps_sec", self.eps_sec)
        if self.eps_sec >= 1:
            raise ParameterError("eps_sec", self.eps_sec, "must be in (0, 1)")
        if self.key_bases not in (1, 2):
            raise ParameterError("key_bases", self.key_bases, "must be 1 or 2")
        if self.auth_key_bits < 512 or self.auth_key_bits % 8:
            raise ParameterError(
                "auth_key_bits", self.auth_key_bits, "must be a multiple of 8 and >= 512"
            )
        if self.seed < 0:
            raise ParameterError("seed", self.seed, "must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkConfig:
        d = dict(data)
        d["link"] = DecoyBB84Params(**d["link"])
        src = dict(d["source"])
        src["intensities"] = tuple(src["intensities"])
        src["intensity_probs"] = tuple(src["intensity_probs"])
        d["source"] = DecoySourceParams(**src)
        timing = dict(d["timing"])
        if isinstance(timing.get("blinding_monitor"), dict):
            timing["blinding_monitor"] = BlindingMonitorParams(**timing["blinding_monitor"])
        d["timing"] = DetectorTimingParams(**timing)
        d["entangled"] = BBM92Params(**d["entangled"])
        d["attack"] = Attack(**d["attack"]) if d.get("attack") else None
        return cls(**d)


@dataclass
class PartyResult:
    """One party's outcome: its final key and the statistics it can see."""

    key: BitArray = field(repr=False)  # key material: never printed
    stats: dict[str, Any]
    stage_wall_s: dict[str, float]


@dataclass
class LinkResult:
    """Outcome of ``simulate_link``: both final keys and the run's statistics."""

    alice_key: BitArray = field(repr=False)  # key material: never printed
    bob_key: BitArray = field(repr=False)  # key material: never printed
    stats: dict[str, Any]

    @property
    def keys_match(self) -> bool:
        return bool(np.array_equal(self.alice_key, self.bob_key))

    def to_json(self) -> dict[str, Any]:
        """The statistics, with no key material."""
        return dict(self.stats)


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


# --------------------------------------------------------------------------- helpers


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


def key_basis(config: LinkConfig) -> int | None:
    """The one key basis (0 = Z, 1 = X), fixed before the run; None when both bases carry key.

    The basis chosen more often gives more detections; choosing it from the basis probabilities
    rather than from the observed counts keeps the choice independent of the data.
    """
    if config.key_bases == 2:
        return None
    if config.protocol == "bbm92":
        return 0
    return 0 if config.source.basis_prob_z >= 0.5 else 1


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
    keep = np.ones(key.size, dtype=bool)
    keep[sample] = False
    key, basis, cls = key[keep], basis[keep], cls[keep]
    timer.add("estimation", t)
    if qber_est > config.abort_qber:
        raise BlockAbortError(
            f"QBER {100 * qber_est:.1f} % in the sample is above the abort threshold "
            f"{100 * config.abort_qber:.1f} %"
        )
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
    keep = np.ones(key.size, dtype=bool)
    keep[sample] = False
    key, basis, cls = key[keep], basis[keep], cls[keep]
    timer.add("estimation", t)
    if qber_est > config.abort_qber:
        raise BlockAbortError(
            f"QBER {100 * qber_est:.1f} % in the sample is above the abort threshold "
            f"{100 * config.abort_qber:.1f} %"
        )
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
    **overrides: Any,
) -> LinkResult:
    """Run a whole link in this process (Alice in a thread, Bob here) and return both keys.

    ``simulate_link(length_km=25, pulses=10**8, reconciliation="ldpc", seed=3)`` works too:
    keyword overrides replace fields of ``config`` (default ``LinkConfig()``).
    """
    cfg = replace(config or LinkConfig(), **overrides) if overrides else (config or LinkConfig())
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
