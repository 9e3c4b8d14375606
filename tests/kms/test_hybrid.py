"""Hybrid QKD + ML-KEM-768 keys: KEM round trips, the HKDF combiner, known answers.

HKDF reference values: RFC 5869, Appendix A.1 (test case 1).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qnetkit.kms.errors import KmsError
from qnetkit.kms.hybrid import (
    CIPHERTEXT_BYTES,
    PUBLIC_KEY_BYTES,
    KemError,
    KemKeyPair,
    combine,
    decapsulate,
    encapsulate,
    generate_kem_keypair,
    kem_keypair_from_seed,
    load_kem_private_key,
    load_kem_public_key,
    save_kem_private_key,
    save_kem_public_key,
)
from qnetkit.kms.pki import OverwriteRefusedError


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 §2.2-2.3, written out with hmac/hashlib (independent of the implementation)."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


# RFC 5869 Appendix A.1
RFC5869_IKM = bytes([0x0B] * 22)
RFC5869_SALT = bytes(range(0x00, 0x0D))
RFC5869_INFO = bytes(range(0xF0, 0xFA))
RFC5869_OKM = bytes.fromhex(
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
)


def test_reference_hkdf_matches_rfc5869_case_1() -> None:
    assert hkdf_sha256(RFC5869_IKM, RFC5869_SALT, RFC5869_INFO, 42) == RFC5869_OKM


def test_library_hkdf_matches_rfc5869_case_1() -> None:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=42, salt=RFC5869_SALT, info=RFC5869_INFO)
    assert hkdf.derive(RFC5869_IKM) == RFC5869_OKM


# --------------------------------------------------------------------------- ML-KEM


@pytest.fixture(scope="module")
def keypair() -> KemKeyPair:
    return generate_kem_keypair()


def test_encapsulate_decapsulate_round_trip(keypair: KemKeyPair) -> None:
    pk = keypair.public_bytes()
    assert len(pk) == PUBLIC_KEY_BYTES
    ss, ct = encapsulate(pk)
    assert len(ss) == 32
    assert len(ct) == CIPHERTEXT_BYTES
    assert decapsulate(keypair, ct) == ss
    ss2, ct2 = encapsulate(pk)
    assert ss2 != ss and ct2 != ct  # fresh randomness per encapsulation


def test_wrong_keypair_gives_a_different_secret(keypair: KemKeyPair) -> None:
    ss, ct = encapsulate(keypair.public_bytes())
    other = generate_kem_keypair()
    # Implicit rejection: no error, just an unrelated 32-byte secret.
    wrong = decapsulate(other, ct)
    assert len(wrong) == 32
    assert wrong != ss


def test_tampered_ciphertext_gives_a_different_secret(keypair: KemKeyPair) -> None:
    ss, ct = encapsulate(keypair.public_bytes())
    bad = bytes([ct[0] ^ 1]) + ct[1:]
    assert decapsulate(keypair, bad) != ss


@pytest.mark.parametrize("n", [0, 1, CIPHERTEXT_BYTES - 1, CIPHERTEXT_BYTES + 1])
def test_decapsulate_rejects_wrong_length(keypair: KemKeyPair, n: int) -> None:
    with pytest.raises(KemError, match="ciphertext must be 1088 bytes"):
        decapsulate(keypair, b"\x00" * n)


def test_decapsulate_rejects_non_bytes(keypair: KemKeyPair) -> None:
    with pytest.raises(KemError, match="must be bytes"):
        decapsulate(keypair, "00" * CIPHERTEXT_BYTES)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, 32, PUBLIC_KEY_BYTES - 1, PUBLIC_KEY_BYTES + 1])
def test_encapsulate_rejects_wrong_length(n: int) -> None:
    with pytest.raises(KemError, match="public key must be 1184 bytes"):
        encapsulate(b"\x01" * n)


def test_encapsulate_rejects_unreduced_public_key() -> None:
    # 0xff..ff encodes coefficients 4095 >= q = 3329: fails the FIPS 203 modulus check.
    with pytest.raises(KemError, match="rejected"):
        encapsulate(b"\xff" * PUBLIC_KEY_BYTES)


def test_kem_errors_are_kms_errors() -> None:
    assert issubclass(KemError, KmsError)


def test_keypair_repr_hides_the_seed(keypair: KemKeyPair) -> None:
    seed = keypair.private_key.private_bytes_raw()
    text = repr(keypair)
    assert seed.hex()[:16] not in text
    assert "ML-KEM-768" in text


def test_seed_round_trip(keypair: KemKeyPair) -> None:
    again = kem_keypair_from_seed(keypair.private_key.private_bytes_raw())
    assert again.public_bytes() == keypair.public_bytes()
    with pytest.raises(KemError, match="64 bytes"):
        kem_keypair_from_seed(b"\x00" * 63)


def test_save_and_load_keys(tmp_path: Path, keypair: KemKeyPair) -> None:
    priv, pub = tmp_path / "kem.seed", tmp_path / "kem.pub"
    save_kem_private_key(keypair, priv)
    save_kem_public_key(keypair.public_bytes(), pub)
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert priv.stat().st_size == 64
    loaded = load_kem_private_key(priv)
    assert loaded.public_bytes() == keypair.public_bytes()
    assert load_kem_public_key(pub) == keypair.public_bytes()
    ss, ct = encapsulate(load_kem_public_key(pub))
    assert decapsulate(loaded, ct) == ss


def test_save_refuses_to_overwrite(tmp_path: Path, keypair: KemKeyPair) -> None:
    priv = tmp_path / "kem.seed"
    save_kem_private_key(keypair, priv)
    other = generate_kem_keypair()
    with pytest.raises(OverwriteRefusedError):
        save_kem_private_key(other, priv)
    with pytest.raises(FileExistsError):  # the same error, seen as an OSError
        save_kem_private_key(other, priv)
    assert load_kem_private_key(priv).public_bytes() == keypair.public_bytes()
    save_kem_private_key(other, priv, force=True)
    assert load_kem_private_key(priv).public_bytes() == other.public_bytes()
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.seed"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(KemError, match="64-byte seed, file has 10 bytes"):
        load_kem_private_key(bad)
    with pytest.raises(KemError, match="cannot read"):
        load_kem_private_key(tmp_path / "missing.seed")
    with pytest.raises(KemError, match="1184 bytes"):
        load_kem_public_key(bad)


# --------------------------------------------------------------------------- combiner

QKD = bytes(range(32))
PQC = bytes(range(100, 132))
CTX = {"key_id": "bc490419-7d60-487f-adc1-4ddcc177c139", "master_sae": "sae-A",
       "slave_saes": ["sae-C", "sae-B"], "size_bytes": 32}


def _combine(**over: object) -> bytes:
    args: dict[str, object] = {"qkd_key": QKD, "pqc_secret": PQC, **CTX, **over}
    return combine(**args)  # type: ignore[arg-type]


def _expected(qkd: bytes | None, pqc: bytes | None, mode: bytes, size: int) -> bytes:
    """The v1 construction of ``combine`` spelled out byte by byte."""

    def lp(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    ikm = (b"\x00" if qkd is None else b"\x01" + lp(qkd)) + (
        b"\x00" if pqc is None else b"\x01" + lp(pqc)
    )
    info = (
        lp(mode)
        + lp(b"bc490419-7d60-487f-adc1-4ddcc177c139")
        + lp(b"sae-A")
        + (2).to_bytes(4, "big")
        + lp(b"sae-B")  # slaves sorted
        + lp(b"sae-C")
        + size.to_bytes(4, "big")
    )
    return hkdf_sha256(ikm, b"qnetkit/kms/hybrid/v1", info, size)


@pytest.mark.parametrize(
    ("qkd", "pqc", "mode"),
    [(QKD, PQC, b"qkd+pqc"), (QKD, None, b"qkd-only"), (None, PQC, b"pqc-only")],
)
@pytest.mark.parametrize("size", [1, 32, 33, 100])
def test_combine_known_answer(qkd: bytes | None, pqc: bytes | None, mode: bytes,
                              size: int) -> None:
    out = _combine(qkd_key=qkd, pqc_secret=pqc, size_bytes=size)
    assert out == _expected(qkd, pqc, mode, size)


# combine() of QKD, PQC, CTX: the frozen v1 output, so KMEs of different versions agree.
PINNED_V1 = "58e81f7c5a6affbf952e663c7ee5346900fa88605d8e82ceb0e5f8b5b45218e6"


def test_combine_pinned_vector() -> None:
    assert _combine().hex() == PINNED_V1


def test_combine_is_deterministic() -> None:
    assert _combine() == _combine()


def test_slave_order_does_not_matter() -> None:
    assert _combine(slave_saes=["sae-B", "sae-C"]) == _combine(slave_saes=("sae-C", "sae-B"))


@pytest.mark.parametrize(
    "change",
    [
        {"qkd_key": bytes([QKD[0] ^ 1]) + QKD[1:]},
        {"pqc_secret": PQC[:-1] + bytes([PQC[-1] ^ 0x80])},
        {"qkd_key": QKD + b"\x00"},
        {"key_id": "bc490419-7d60-487f-adc1-4ddcc177c13a"},
        {"master_sae": "sae-B"},
        {"slave_saes": ["sae-C"]},
        {"slave_saes": ["sae-C", "sae-B", "sae-D"]},
        {"slave_saes": ["sae-A", "sae-B"]},
        {"qkd_key": PQC, "pqc_secret": QKD},  # swapped inputs
        {"qkd_key": None},
        {"pqc_secret": None},
    ],
)
def test_combine_changes_with_every_input(change: dict[str, object]) -> None:
    assert _combine(**change) != _combine()


def test_size_is_bound_into_the_key_not_just_a_truncation() -> None:
    assert len(_combine(size_bytes=16)) == 16
    assert _combine(size_bytes=16) != _combine(size_bytes=32)[:16]


def test_modes_never_collide_on_the_same_bytes() -> None:
    secret = os.urandom(32)
    qkd_only = _combine(qkd_key=secret, pqc_secret=None)
    pqc_only = _combine(qkd_key=None, pqc_secret=secret)
    assert qkd_only != pqc_only
    # A split of one string between the two inputs is not the same IKM either.
    assert _combine(qkd_key=secret[:16], pqc_secret=secret[16:]) != _combine(
        qkd_key=secret[:15], pqc_secret=secret[15:]
    )


@pytest.mark.parametrize("size", [1, 2, 31, 32, 64, 1000, 8160])
def test_output_length_is_exact(size: int) -> None:
    assert len(_combine(size_bytes=size)) == size


@pytest.mark.parametrize(
    ("over", "exc", "msg"),
    [
        ({"qkd_key": None, "pqc_secret": None}, ValueError, "need a QKD key"),
        ({"qkd_key": b""}, ValueError, "qkd_key is empty"),
        ({"pqc_secret": b""}, ValueError, "pqc_secret is empty"),
        ({"size_bytes": 0}, ValueError, "1..8160"),
        ({"size_bytes": 8161}, ValueError, "1..8160"),
        ({"size_bytes": True}, TypeError, "int"),
        ({"slave_saes": []}, ValueError, "at least one"),
        ({"slave_saes": ["sae-B", "sae-B"]}, ValueError, "repeated"),
        ({"slave_saes": "sae-B"}, TypeError, "not one string"),
        ({"key_id": ""}, ValueError, "key_id"),
        ({"master_sae": ""}, ValueError, "master_sae"),
        ({"qkd_key": "abc"}, TypeError, "bytes"),
    ],
)
def test_combine_rejects_bad_input(over: dict[str, object], exc: type[Exception],
                                   msg: str) -> None:
    with pytest.raises(exc, match=msg):
        _combine(**over)


def test_two_kmes_derive_the_same_hybrid_key(keypair: KemKeyPair) -> None:
    """KME A encapsulates to KME B; both hold the same QKD key; both derive one key."""
    qkd = os.urandom(32)
    ss_a, ct = encapsulate(keypair.public_bytes())
    ss_b = decapsulate(keypair, ct)
    key_a = _combine(qkd_key=qkd, pqc_secret=ss_a)
    key_b = _combine(qkd_key=qkd, pqc_secret=ss_b)
    assert key_a == key_b
    assert key_a != _combine(qkd_key=qkd, pqc_secret=None)
