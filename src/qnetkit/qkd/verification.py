"""Error verification: Alice and Bob compare a universal hash of their reconciled keys.

The hash is the Poly1305 polynomial evaluation (Bernstein 2005) under a fresh random key that
Alice draws after reconciliation: for keys of L bytes, two different keys collide with
probability at most 8 ceil(L/16) / 2^106, which is the epsilon_cor of the protocol (Lim et al.
2014, Sec. II). The 128-bit tag is key-derived and is booked as leaked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.poly1305 import Poly1305

from qnetkit._types import BitArray
from qnetkit.qkd.channel import Endpoint

TAG_BITS = 128


def verification_tag(key: BitArray, hash_key: bytes) -> bytes:
    """Poly1305 of the packed key bits followed by the bit length."""
    mac = Poly1305(hash_key)
    mac.update(np.packbits(key).tobytes())
    mac.update(int(key.size).to_bytes(8, "big"))
    return mac.finalize()


def collision_probability(key_bits: int) -> float:
    """epsilon_cor: Poly1305's bound for two different messages of this length."""
    blocks = math.ceil((key_bits + 7) // 8 + 8) / 16
    return min(1.0, 8.0 * math.ceil(blocks) / 2.0**106)


@dataclass
class VerificationResult:
    """Whether the tags agreed, the tag bits leaked and the correctness parameter reached."""

    passed: bool
    leaked_bits: int
    eps_cor: float


def _tag_bits(tag: bytes) -> BitArray:
    return np.unpackbits(np.frombuffer(tag, dtype=np.uint8))


def verify_alice(ep: Endpoint, key: BitArray, rng: np.random.Generator) -> VerificationResult:
    """Alice sends the hash key (public) and her tag (leaked); Bob answers pass or fail."""
    hash_key = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    tag = verification_tag(key, hash_key)
    ep.send("verify.tag", {"hash_key": hash_key}, leaked=_tag_bits(tag))
    passed = bool(ep.recv("verify.result").public["passed"])
    return VerificationResult(passed, TAG_BITS, collision_probability(key.size))


def verify_bob(ep: Endpoint, key: BitArray) -> VerificationResult:
    msg = ep.recv("verify.tag")
    mine = _tag_bits(verification_tag(key, msg.public["hash_key"]))
    passed = bool(np.array_equal(mine, msg.leaked))
    ep.send("verify.result", {"passed": passed})
    return VerificationResult(passed, TAG_BITS, collision_probability(key.size))
