"""Cutting an ingested key block into units that both KMEs of a link agree on.

Both KMEs receive the same block (same block ID, same bytes), so the unit IDs
(UUID v5 of the block ID and the unit index) and the owners agree without any message.
Units alternate between the two KMEs (by sorted KME ID), so the two ends can deliver keys
to their master SAEs concurrently without ever carving the same unit.
"""

from __future__ import annotations

import uuid

from qnetkit.kms.store.base import KeyUnit


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
