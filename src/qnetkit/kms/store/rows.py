"""Row mapping of the key store: database rows to typed records, and small shared helpers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qnetkit.errors import ParameterError
from qnetkit.kms.audit import canonical_json
from qnetkit.kms.store.base import Assignment, BlockInfo
from qnetkit.kms.store.sql import Row


def compose(parts: Sequence[bytes], size_bits: int) -> bytes:
    """Key material from its units: concatenated, then truncated to ``size_bits``."""
    return b"".join(parts)[: size_bits // 8]


def units_per_key(size_bits: int, unit_bits: int) -> int:
    return -(-size_bits // unit_bits)


def dump(items: Iterable[str]) -> str:
    return canonical_json(list(items))


def load(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


@dataclass(frozen=True)
class KeyRow:
    """A row of ``keys`` (the sealed material stays sealed and out of reprs)."""

    key_id: str
    peer_kme: str
    origin: str
    unit_ids: tuple[str, ...]
    size_bits: int
    master_sae: str
    slave_saes: tuple[str, ...]
    retrieved_by: tuple[str, ...]
    sealed: bytes | None
    state: str
    synced: bool
    created_at_s: float
    expires_at_s: float
    simulated: bool
    retrieved_at_s: dict[str, float]  # slave SAE -> when it first retrieved the key

    def __repr__(self) -> str:
        return f"KeyRow(key_id={self.key_id!r}, state={self.state!r})"

    @classmethod
    def from_row(cls, r: Row) -> KeyRow:
        return cls(
            key_id=r[0], peer_kme=r[1], origin=r[2], unit_ids=load(r[3]), size_bits=int(r[4]),
            master_sae=r[5], slave_saes=load(r[6]), retrieved_by=load(r[7]),
            sealed=None if r[8] is None else bytes(r[8]), state=r[9], synced=bool(r[10]),
            created_at_s=float(r[11]), expires_at_s=float(r[12]), simulated=bool(r[13]),
            retrieved_at_s={str(k): float(v) for k, v in json.loads(r[14]).items()},
        )

    def assignment(self) -> Assignment:
        return Assignment(
            key_id=self.key_id, peer_kme=self.peer_kme, unit_ids=self.unit_ids,
            size_bits=self.size_bits, master_sae=self.master_sae, slave_saes=self.slave_saes,
            created_at_s=self.created_at_s, origin=self.origin,
        )

    def same_key(self, a: Assignment) -> bool:
        """Whether ``a`` describes this key (peer_kme differs between the two ends' views)."""
        return (self.unit_ids, self.size_bits, self.master_sae, self.slave_saes, self.origin) == (
            tuple(a.unit_ids), a.size_bits, a.master_sae, tuple(a.slave_saes), a.origin,
        )


def block_from_row(r: Row) -> tuple[BlockInfo, str]:
    """(block, its stored digest) from a ``blocks`` row in BLOCK_COLUMNS order."""
    return BlockInfo(
        block_id=r[0], peer_kme=r[1], length_bytes=int(r[2]), unit_bits=int(r[3]),
        units=int(r[4]), confirm_tag=r[6], peer_tag=r[7], simulated=bool(r[8]), state=r[9],
        created_at_s=float(r[10]),
    ), str(r[5])


def check_request(number: int, size_bits: int, master_sae: str, slaves: Sequence[str]) -> None:
    if number < 1:
        raise ParameterError("number", number, "must be at least 1")
    if size_bits < 8 or size_bits % 8:
        raise ParameterError("size_bits", size_bits, "must be a positive multiple of 8")
    if not slaves:
        raise ParameterError("slave_saes", list(slaves), "at least one slave SAE is needed")
    if len(set(slaves)) != len(slaves):
        raise ParameterError("slave_saes", list(slaves), "a slave SAE is named twice")
    if not master_sae:
        raise ParameterError("master_sae", master_sae, "must not be empty")
