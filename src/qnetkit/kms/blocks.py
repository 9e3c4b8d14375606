"""Key blocks shared by the two KMEs of a link: identity, key confirmation, units.

Identity. A block's ID comes from the link and the block's sequence number on it
(:func:`block_id_for_seq`, UUID v5), or else from its content (:func:`block_id_for_content`),
never from a file name: two different blocks cannot share an ID by accident, and a repeat of
other bytes under an existing ID is refused by the store.

Key confirmation. Before any unit of a block is served, the two KMEs prove to each other over
their authenticated channel that they hold the same bytes, without revealing them: each sends
``HMAC-SHA256(K, "qnetkit-confirm/v1" || block_id || length || sender)`` with
``K = HKDF-SHA256(block bytes, info="qnetkit block confirm")`` (RFC 5869), and checks the
peer's tag against its own computation. This is the key-confirmation step of authenticated
key exchange (the tag names its sender, so one end cannot just echo the other's tag).

Units. Both KMEs cut the same block into the same units: unit IDs are UUID v5 of the block
ID and the unit index, and units alternate between the two KMEs (by sorted KME ID), so the
two ends can deliver keys to their master SAEs concurrently without ever carving the same unit.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qnetkit.kms.store.base import BlockInfo, KeyUnit

#: Namespace of block IDs (a fixed random UUID: IDs of other tools never collide with ours).
BLOCK_NAMESPACE = uuid.UUID("6a7c3f0e-5b7d-4c8e-9f21-2d4b6e8a1c35")
CONFIRM_INFO = b"qnetkit block confirm"
CONFIRM_LABEL = b"qnetkit-confirm/v1"


def block_id_for_seq(kme_a: str, kme_b: str, seq: int) -> str:
    """The ID of block number ``seq`` of the link between two KMEs (same at both ends)."""
    if seq < 0:
        raise ValueError("a block sequence number is >= 0")
    first, second = sorted((kme_a, kme_b))
    return str(uuid.uuid5(BLOCK_NAMESPACE, f"link:{first}:{second}:seq:{seq}"))


def block_id_for_content(data: bytes) -> str:
    """An ID derived from the block's bytes (the same bytes give the same ID at both ends)."""
    digest = hashlib.sha256(b"qnetkit-block-id/v1\x00" + data).hexdigest()
    return str(uuid.uuid5(BLOCK_NAMESPACE, f"sha256:{digest}"))


def block_identity(kme_id: str, peer_kme: str, data: bytes, *, block_id: object = None,
                   block_seq: object = None) -> str:
    """The block ID from an explicit UUID, else from the link and a sequence number, else
    from the content; ValueError for a malformed or doubly given identity."""
    if block_id is not None and block_seq is not None:
        raise ValueError("give a block ID or a block sequence number, not both")
    if block_id is not None:
        if not isinstance(block_id, str):
            raise ValueError("a block ID is a UUID string")
        return str(uuid.UUID(block_id))
    if block_seq is not None:
        if isinstance(block_seq, bool) or not isinstance(block_seq, int):
            raise ValueError("a block sequence number is an integer")
        return block_id_for_seq(kme_id, peer_kme, block_seq)
    return block_id_for_content(data)


def confirm_tag(data: bytes, block_id: str, sender_kme: str) -> str:
    """Key-confirmation tag of a block as sent by ``sender_kme`` (hex; see module docstring)."""
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CONFIRM_INFO).derive(data)
    msg = (CONFIRM_LABEL + uuid.UUID(block_id).bytes + len(data).to_bytes(8, "big")
           + sender_kme.encode())
    return hmac.new(k, msg, hashlib.sha256).hexdigest()


def tags_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def split_block(
    block_id: str, data: bytes, *, unit_bits: int, kme_ids: tuple[str, str]
) -> list[KeyUnit]:
    """Units of ``unit_bits`` from ``data``; a short tail is dropped (both ends drop it)."""
    if unit_bits % 8 or unit_bits <= 0:
        raise ValueError("unit_bits must be a positive multiple of 8")
    ns = uuid.UUID(block_id)
    n = unit_bits // 8
    first, second = sorted(kme_ids)
    return [
        KeyUnit(
            unit_id=str(uuid.uuid5(ns, str(i))),
            material=data[i * n : (i + 1) * n],
            owner_kme=first if i % 2 == 0 else second,
        )
        for i in range(len(data) // n)
    ]


def prepare_block(
    block_id: str, data: bytes, *, unit_bits: int, kme_id: str, peer_kme: str,
    simulated: bool = False,
) -> tuple[BlockInfo, list[KeyUnit]]:
    """The block description (with both confirmation tags) and the units, as this KME sees
    them; ValueError for a bad block ID, unit size or an empty block."""
    block_id = str(uuid.UUID(block_id))
    units = split_block(block_id, data, unit_bits=unit_bits, kme_ids=(kme_id, peer_kme))
    if not units:
        raise ValueError(f"the block has {len(data)} bytes, less than one unit of {unit_bits} "
                         "bits")
    info = BlockInfo(
        block_id=block_id, peer_kme=peer_kme, length_bytes=len(data), unit_bits=unit_bits,
        units=len(units), confirm_tag=confirm_tag(data, block_id, kme_id),
        peer_tag=confirm_tag(data, block_id, peer_kme), simulated=simulated,
    )
    return info, units
