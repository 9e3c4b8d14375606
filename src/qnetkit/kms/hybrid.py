"""Hybrid keys: a QKD key and an ML-KEM-768 shared secret combined with HKDF-SHA256.

ML-KEM-768 is the FIPS 203 key-encapsulation mechanism (via ``cryptography``). The combiner
is concatenate-then-KDF: both secrets, each length-prefixed, go into HKDF (RFC 5869) as the
input keying material; the request context goes into ``info``. See :func:`combine`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.mlkem import (
    MLKEM768PrivateKey,
    MLKEM768PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qnetkit.kms.errors import KmsError
from qnetkit.kms.pki import write_new_file

# FIPS 203, Table 3 (ML-KEM-768): encapsulation key, ciphertext and shared-secret sizes;
# the private key is stored as the 64-byte seed (d || z) from which it is re-derived.
PUBLIC_KEY_BYTES = 1184
CIPHERTEXT_BYTES = 1088
SHARED_SECRET_BYTES = 32
SEED_BYTES = 64

SALT = b"qnetkit/kms/hybrid/v1"
MAX_OUTPUT_BYTES = 255 * 32  # RFC 5869 §2.3: L <= 255 * HashLen

_ABSENT = b"\x00"
_PRESENT = b"\x01"
_MAX_FIELD = 2**32 - 1


class KemError(KmsError):
    """An ML-KEM key, public key or ciphertext is malformed, or ML-KEM is unavailable."""


@dataclass(frozen=True, repr=False)
class KemKeyPair:
    """An ML-KEM-768 decapsulation key; its repr shows no secret."""

    private_key: MLKEM768PrivateKey

    def public_bytes(self) -> bytes:
        """The 1184-byte encapsulation (public) key."""
        return self.private_key.public_key().public_bytes_raw()

    def __repr__(self) -> str:
        return f"KemKeyPair(ML-KEM-768, public={self.public_bytes()[:8].hex()}...)"


def generate_kem_keypair() -> KemKeyPair:
    """A fresh ML-KEM-768 key pair (randomness from the OpenSSL DRBG)."""
    try:
        return KemKeyPair(MLKEM768PrivateKey.generate())
    except UnsupportedAlgorithm as exc:
        raise KemError(f"ML-KEM-768 is not available: {exc}") from None


def kem_keypair_from_seed(seed: bytes) -> KemKeyPair:
    """Re-derive a key pair from its 64-byte seed (FIPS 203 ``ML-KEM.KeyGen_internal``)."""
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
        n = len(seed) if isinstance(seed, bytes | bytearray) else type(seed).__name__
        raise KemError(f"ML-KEM-768 seed must be {SEED_BYTES} bytes, got {n}")
    try:
        return KemKeyPair(MLKEM768PrivateKey.from_seed_bytes(bytes(seed)))
    except UnsupportedAlgorithm as exc:
        raise KemError(f"ML-KEM-768 is not available: {exc}") from None
    except ValueError:
        raise KemError("ML-KEM-768 seed rejected") from None


def save_kem_private_key(keypair: KemKeyPair, path: Path, *, force: bool = False) -> None:
    """Write the 64-byte seed to ``path`` (raw bytes, mode 0600); refuses to overwrite."""
    write_new_file(Path(path), keypair.private_key.private_bytes_raw(), mode=0o600, force=force)


def load_kem_private_key(path: Path) -> KemKeyPair:
    """Read a key pair written by :func:`save_kem_private_key`."""
    try:
        seed = Path(path).read_bytes()
    except OSError as exc:
        raise KemError(f"ML-KEM private key {path}: cannot read ({exc.strerror})") from None
    if len(seed) != SEED_BYTES:
        raise KemError(
            f"ML-KEM private key {path}: expected a {SEED_BYTES}-byte seed, file has "
            f"{len(seed)} bytes"
        )
    return kem_keypair_from_seed(seed)


def save_kem_public_key(public_key: bytes, path: Path, *, force: bool = False) -> None:
    """Write the raw 1184-byte public key to ``path`` (mode 0644) after checking it."""
    _public_key(public_key)
    write_new_file(Path(path), bytes(public_key), mode=0o644, force=force)


def load_kem_public_key(path: Path) -> bytes:
    """Read and check a raw public key written by :func:`save_kem_public_key`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KemError(f"ML-KEM public key {path}: cannot read ({exc.strerror})") from None
    _public_key(data)
    return data


def _public_key(data: bytes) -> MLKEM768PublicKey:
    if not isinstance(data, bytes | bytearray):
        raise KemError(f"ML-KEM-768 public key must be bytes, not {type(data).__name__}")
    if len(data) != PUBLIC_KEY_BYTES:
        raise KemError(
            f"ML-KEM-768 public key must be {PUBLIC_KEY_BYTES} bytes, got {len(data)}"
        )
    try:
        return MLKEM768PublicKey.from_public_bytes(bytes(data))
    except UnsupportedAlgorithm as exc:
        raise KemError(f"ML-KEM-768 is not available: {exc}") from None
    except ValueError:
        # FIPS 203 §7.2 input check: every coefficient must be reduced modulo q.
        raise KemError("ML-KEM-768 public key rejected (not a valid encapsulation key)") from None


def encapsulate(public_key_bytes: bytes) -> tuple[bytes, bytes]:
    """``(shared_secret, ciphertext)`` for the holder of ``public_key_bytes``.

    The shared secret is 32 bytes, the ciphertext 1088 bytes.
    """
    return _public_key(public_key_bytes).encapsulate()


def decapsulate(keypair: KemKeyPair, ciphertext: bytes) -> bytes:
    """The 32-byte shared secret of ``ciphertext``.

    A ciphertext of the right length that was not made for this key does not raise: ML-KEM
    uses implicit rejection (FIPS 203 Algorithm 18) and returns an unrelated pseudorandom
    secret, so a mismatch shows up only when the combined keys are compared or used.
    """
    if not isinstance(ciphertext, bytes | bytearray):
        raise KemError(f"ML-KEM-768 ciphertext must be bytes, not {type(ciphertext).__name__}")
    if len(ciphertext) != CIPHERTEXT_BYTES:
        raise KemError(
            f"ML-KEM-768 ciphertext must be {CIPHERTEXT_BYTES} bytes, got {len(ciphertext)}"
        )
    try:
        return keypair.private_key.decapsulate(bytes(ciphertext))
    except ValueError:
        raise KemError("ML-KEM-768 ciphertext rejected") from None


# --------------------------------------------------------------------------- combiner


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


def _lp(data: bytes) -> bytes:
    if len(data) > _MAX_FIELD:
        raise ValueError("field longer than 2**32 - 1 bytes")
    return _u32(len(data)) + data


def _secret_field(name: str, value: bytes | None) -> bytes:
    if value is None:
        return _ABSENT
    if not isinstance(value, bytes | bytearray):
        raise TypeError(f"{name} must be bytes or None, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} is empty; pass None when there is no such secret")
    return _PRESENT + _lp(bytes(value))


def _text(name: str, value: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return _lp(value.encode("utf-8"))


def hybrid_mode(qkd_key: bytes | None, pqc_secret: bytes | None) -> str:
    """``"qkd+pqc"``, ``"qkd-only"`` or ``"pqc-only"`` (ValueError if both are None)."""
    if qkd_key is not None and pqc_secret is not None:
        return "qkd+pqc"
    if qkd_key is not None:
        return "qkd-only"
    if pqc_secret is not None:
        return "pqc-only"
    raise ValueError("combine: need a QKD key, a PQC secret, or both")


def combine(
    *,
    qkd_key: bytes | None,
    pqc_secret: bytes | None,
    key_id: str,
    master_sae: str,
    slave_saes: Sequence[str],
    size_bytes: int,
) -> bytes:
    """Derive a ``size_bytes`` key from a QKD key and/or an ML-KEM shared secret.

    Construction (version 1; both KMEs must compute it identically)::

        u32(n)   = n as 4-byte big-endian
        lp(x)    = u32(len(x)) || x
        field(s) = 0x00                    if s is None
                   0x01 || lp(s)           otherwise
        IKM  = field(qkd_key) || field(pqc_secret)
        info = lp(mode) || lp(key_id) || lp(master_sae)
               || u32(#slaves) || lp(slave_1) || ... || lp(slave_n)     (slaves sorted)
               || u32(size_bytes)
        key  = HKDF-SHA256(salt=b"qnetkit/kms/hybrid/v1", IKM, info, L=size_bytes)

    with strings UTF-8 encoded and ``mode`` one of ``"qkd+pqc"``, ``"qkd-only"``,
    ``"pqc-only"``. The encodings are prefix-free, so distinct inputs or contexts never give
    the same IKM or info (in particular the three modes cannot collide).

    Security: this is a concatenate-then-KDF combiner, the form NIST SP 800-56C Rev. 2 (§2)
    admits as a "hybrid" shared secret Z' = Z || T and that ETSI TS 103 744 calls the
    concatenate hybrid (CatKDF). With HKDF-Extract modelled as a random oracle or dual PRF,
    the output is pseudorandom as long as *either* secret is (KEM combiners: Giacon, Heuer and
    Poettering, PKC 2018; Bindel et al., PQCrypto 2019). This is an argument, not a FIPS
    validated construction: the length prefixes and markers mean IKM is not literally Z || T.
    A qkd-only or pqc-only key is only as strong as its one input. The ML-KEM ciphertext is
    not bound into the KDF (the generic IND-CCA combiners do bind it); here it travels between
    KMEs over mutually authenticated TLS.

    Raises ValueError for no secret, an empty secret, ``size_bytes`` outside
    1..8160 (RFC 5869 limit for SHA-256), empty IDs, no slave SAE or a repeated slave SAE.
    """
    mode = hybrid_mode(qkd_key, pqc_secret)
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int):
        raise TypeError("size_bytes must be an int")
    if not 1 <= size_bytes <= MAX_OUTPUT_BYTES:
        raise ValueError(f"size_bytes must be in 1..{MAX_OUTPUT_BYTES}, got {size_bytes}")
    if isinstance(slave_saes, str):
        raise TypeError("slave_saes must be a sequence of SAE IDs, not one string")
    slaves = sorted(slave_saes)
    if not slaves:
        raise ValueError("slave_saes must name at least one SAE")
    if len(set(slaves)) != len(slaves):
        raise ValueError("slave_saes contains a repeated SAE ID")

    ikm = _secret_field("qkd_key", qkd_key) + _secret_field("pqc_secret", pqc_secret)
    info = b"".join([
        _text("mode", mode),
        _text("key_id", key_id),
        _text("master_sae", master_sae),
        _u32(len(slaves)),
        *(_text("slave_saes[]", s) for s in slaves),
        _u32(size_bytes),
    ])
    return HKDF(algorithm=hashes.SHA256(), length=size_bytes, salt=SALT, info=info).derive(ikm)
