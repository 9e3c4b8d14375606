"""Encryption at rest of stored key material (AES-256-GCM under a key-encryption key).

Model. Every stored unit or key is sealed as ``nonce (12 random bytes) || ciphertext || tag``
with the row's ID as associated data, so a ciphertext copied into another row does not open.
The key-encryption key (KEK, 32 bytes) lives outside the database (a file or an environment
variable); a second key derived from it authenticates the audit hash chain.
"""

from __future__ import annotations

import base64
import binascii
import os
import string

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qnetkit.kms.errors import StoreError

KEK_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
AUDIT_KEY_INFO = b"qnetkit/kms/audit-chain/v1"
_URLSAFE = str.maketrans("-_", "+/")


class AtRestCipher:
    """Seals and opens key material under the KEK; the KEK never appears in a repr."""

    __slots__ = ("_aead",)

    def __init__(self, kek: bytes) -> None:
        if not isinstance(kek, bytes | bytearray) or len(kek) != KEK_BYTES:
            raise StoreError(f"the key-encryption key must be {KEK_BYTES} bytes")
        self._aead = AESGCM(bytes(kek))

    def __repr__(self) -> str:
        return "AtRestCipher(kek=<hidden>)"

    def seal(self, unit_or_key_id: str, material: bytes) -> bytes:
        """``nonce || AES-GCM(material)`` with the ID as associated data."""
        # A random 96-bit nonce per seal: far below the 2^32 messages-per-key bound for any
        # realistic store, and no counter state to keep consistent across processes.
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, bytes(material), unit_or_key_id.encode())

    def open(self, unit_or_key_id: str, blob: bytes) -> bytes:
        """The material sealed under this ID; StoreError if the KEK or the ID does not match."""
        blob = bytes(blob)
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise StoreError(f"sealed material of {unit_or_key_id} is truncated")
        try:
            return self._aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], unit_or_key_id.encode()
            )
        except InvalidTag:
            raise StoreError("key-encryption key does not match the store") from None


def _decode_text_kek(text: str, source: str) -> bytes:
    text = text.strip()
    if len(text) == 2 * KEK_BYTES and all(c in string.hexdigits for c in text):
        return bytes.fromhex(text)
    try:
        # The URL-safe alphabet is accepted too: both are common for secrets in env files.
        raw = base64.b64decode(text.translate(_URLSAFE).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) == KEK_BYTES:
        return raw
    # The message never quotes the content: it is (or is close to) the secret itself.
    raise StoreError(
        f"{source}: the key-encryption key must be 32 bytes given as 64 hex characters "
        "or as base64"
    )


def load_kek(*, file: str | None = None, env: str | None = None) -> bytes:
    """The 32-byte KEK from a file or from the environment variable named ``env``.

    Accepted: 64 hex characters, base64 of 32 bytes, or (file only) exactly 32 raw bytes.
    Exactly one of ``file`` and ``env`` must be given.
    """
    if (file is None) == (env is None):
        raise StoreError("give the key-encryption key either as a file or as an env variable")
    if file is not None:
        try:
            with open(file, "rb") as fh:
                data = fh.read(4096)
        except OSError as exc:
            raise StoreError(f"cannot read the key-encryption key file {file}: "
                             f"{exc.strerror}") from None
        if len(data) == KEK_BYTES:
            return data
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise StoreError(
                f"key-encryption key file {file}: {len(data)} bytes of binary data "
                f"(raw keys must be exactly {KEK_BYTES} bytes)"
            ) from None
        return _decode_text_kek(text, f"key-encryption key file {file}")
    assert env is not None
    value = os.environ.get(env)
    if value is None or not value.strip():
        raise StoreError(f"environment variable {env} (key-encryption key) is not set")
    return _decode_text_kek(value, f"environment variable {env}")


def audit_key(kek: bytes) -> bytes:
    """The HMAC key of the audit chain: HKDF-SHA256(kek, info=AUDIT_KEY_INFO), 32 bytes."""
    if len(kek) != KEK_BYTES:
        raise StoreError(f"the key-encryption key must be {KEK_BYTES} bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=AUDIT_KEY_INFO).derive(
        bytes(kek)
    )
