"""Encryption at rest: AES-GCM sealing, KEK loading, the audit key derivation."""

from __future__ import annotations

import base64
import hmac
import os
from hashlib import sha256
from pathlib import Path

import pytest

from qnetkit.kms.atrest import AUDIT_KEY_INFO, AtRestCipher, audit_key, load_kek
from qnetkit.kms.errors import StoreError

KEK = bytes(range(32))


def test_seal_open_roundtrip_with_fresh_nonces() -> None:
    c = AtRestCipher(KEK)
    material = os.urandom(32)
    a, b = c.seal("u1", material), c.seal("u1", material)
    assert a != b and a[:12] != b[:12]
    assert len(a) == 12 + 32 + 16
    assert material not in a
    assert c.open("u1", a) == c.open("u1", b) == material


def test_ciphertext_moved_to_another_id_does_not_open() -> None:
    c = AtRestCipher(KEK)
    blob = c.seal("u1", b"secret-material!")
    with pytest.raises(StoreError, match="does not match"):
        c.open("u2", blob)


def test_wrong_kek_and_damage_are_store_errors() -> None:
    material = os.urandom(32)
    blob = AtRestCipher(KEK).seal("k", material)
    with pytest.raises(StoreError) as exc:
        AtRestCipher(bytes(32)).open("k", blob)
    assert str(exc.value) == "key-encryption key does not match the store"
    damaged = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(StoreError):
        AtRestCipher(KEK).open("k", damaged)
    with pytest.raises(StoreError, match="truncated"):
        AtRestCipher(KEK).open("k", blob[:20])


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33), bytes(64)])
def test_kek_must_be_32_bytes(bad: bytes) -> None:
    with pytest.raises(StoreError):
        AtRestCipher(bad)


def test_repr_hides_the_kek() -> None:
    assert KEK.hex() not in repr(AtRestCipher(KEK))
    assert str(KEK) not in repr(AtRestCipher(KEK))


@pytest.mark.parametrize(
    "content",
    [
        KEK.hex().encode(),
        KEK.hex().upper().encode() + b"\n",
        base64.b64encode(KEK) + b"\n",
        base64.urlsafe_b64encode(KEK),
        KEK,  # raw
        b"\n" * 32,  # raw bytes that happen to be whitespace are still a raw key
    ],
)
def test_load_kek_from_file(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "kek"
    f.write_bytes(content)
    want = content if len(content) == 32 else KEK
    assert load_kek(file=str(f)) == want


@pytest.mark.parametrize("value", [KEK.hex(), f"  {KEK.hex()}\n", base64.b64encode(KEK).decode()])
def test_load_kek_from_env(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("QNK_TEST_KEK", value)
    assert load_kek(env="QNK_TEST_KEK") == KEK


@pytest.mark.parametrize(
    "content",
    [
        b"",
        KEK.hex()[:-2].encode(),  # 31 bytes of hex
        ("z" * 64).encode(),
        base64.b64encode(bytes(27)),  # 36 characters: base64 of the wrong length
        bytes(range(200, 233)),  # 33 raw bytes
        bytes(16),
    ],
)
def test_load_kek_rejects_bad_files_without_echoing_them(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "kek"
    f.write_bytes(content)
    with pytest.raises(StoreError) as exc:
        load_kek(file=str(f))
    message = str(exc.value)
    assert str(f) in message
    if content:
        assert content.decode("latin-1") not in message and content.hex() not in message


def test_load_kek_argument_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("QNK_TEST_KEK", raising=False)
    with pytest.raises(StoreError, match="not set"):
        load_kek(env="QNK_TEST_KEK")
    with pytest.raises(StoreError):
        load_kek()
    with pytest.raises(StoreError):
        load_kek(file="x", env="y")
    with pytest.raises(StoreError, match="cannot read"):
        load_kek(file=str(tmp_path / "missing"))
    monkeypatch.setenv("QNK_TEST_KEK", "not a key")
    with pytest.raises(StoreError) as exc:
        load_kek(env="QNK_TEST_KEK")
    assert "not a key" not in str(exc.value)


def test_audit_key_is_hkdf_sha256() -> None:
    # RFC 5869 by hand: no salt means a zero salt of hash length; one output block.
    prk = hmac.new(bytes(32), KEK, sha256).digest()
    okm = hmac.new(prk, AUDIT_KEY_INFO + b"\x01", sha256).digest()
    assert AUDIT_KEY_INFO == b"qnetkit/kms/audit-chain/v1"
    assert audit_key(KEK) == okm
    assert audit_key(KEK) != KEK and audit_key(bytes(32)) != okm
