"""The key-store interface shared by the SQLite and PostgreSQL back ends.

Model. Key material arrives in *units* (fixed-size pieces, e.g. 256 bits, each with a UUID
key ID that both KMEs of a link share because both ingest the same blocks). A unit is
``owned`` by the KME that may hand it to a master SAE, so the two ends of a link never carve
the same unit. A delivered *key* is made of one or more units of one link (concatenated, then
truncated to the requested size); its key_ID is the ID of its first unit.

Units arrive in *blocks*. A block is ingested as ``pending``: its units are held apart and
cannot be served until the two KMEs have confirmed that they hold the same bytes (key
confirmation, :mod:`qnetkit.kms.blocks`); then it is ``confirmed`` and its units join the
pool, or ``quarantined`` (its material erased, never served).

Life cycle of a unit: (pending) -> available -> used (part of a key) -> erased.
Life cycle of a key:  delivered (to the master SAE at the master's KME, or assigned by the
peer KME at the slave's KME) -> retrieved (by every slave SAE; kept for the re-fetch window)
-> erased; or -> expired after its TTL. Every state change appends a record to the
hash-chained audit log in the same transaction, so the audit trail and the key state can
never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class KeyUnit:
    """One unit of shared key material as ingested (same ID and bytes at both KMEs)."""

    unit_id: str  # UUID string
    material: bytes = field(repr=False)
    owner_kme: str  # the KME that may deliver this unit to a master SAE


@dataclass(frozen=True)
class BlockInfo:
    """A block of shared key material (no material): its identity, size, confirmation tags.

    ``confirm_tag`` is this KME's key-confirmation tag, ``peer_tag`` the one expected from
    the peer (hex); both are computed from the block at ingest (:mod:`qnetkit.kms.blocks`).
    ``simulated`` marks material from a simulation, not from a QKD link.
    """

    block_id: str
    peer_kme: str
    length_bytes: int
    unit_bits: int
    units: int
    confirm_tag: str
    peer_tag: str
    simulated: bool = False
    state: str = "pending"  # pending | confirmed | quarantined
    created_at_s: float = 0.0


@dataclass(frozen=True)
class Assignment:
    """Which units form a delivered key and which SAEs own it (no key material).

    This is also what a master KME sends its peer so that dec_keys works at the other end.
    ``origin`` is "qkd" for keys made of QKD units and "pqc" for fallback keys that carry
    no units (their material is stored with :meth:`KeyStore.put_key`).
    """

    key_id: str
    peer_kme: str
    unit_ids: tuple[str, ...]
    size_bits: int
    master_sae: str
    slave_saes: tuple[str, ...]
    created_at_s: float
    origin: str = "qkd"


@dataclass(frozen=True)
class DeliveredKey:
    key_id: str
    material: bytes = field(repr=False)


@dataclass(frozen=True)
class AuditRecord:
    """One audit-log record. ``detail`` is a small JSON-able dict; never key material."""

    seq: int
    time_s: float
    # ingest | ingest-block | confirm | quarantine | deliver | assign | retrieve | refetch |
    # erase | expire | relay | fallback-pqc | refuse
    action: str
    kme: str
    key_ids: tuple[str, ...]
    master_sae: str | None
    slave_saes: tuple[str, ...]
    detail: dict[str, object]
    prev_hash: str  # hex
    hash: str  # hex


@dataclass(frozen=True)
class PoolStatus:
    available_units: int
    unit_bits: int


class KeyStore(Protocol):
    """Transactional, thread-safe key store. One instance per server process."""

    kme_id: str

    def migrate(self) -> None:
        """Create or upgrade the schema (idempotent)."""

    def close(self) -> None: ...

    def ingest(self, peer_kme: str, units: Sequence[KeyUnit], *, now_s: float,
               simulated: bool = False) -> int:
        """Add *confirmed* units shared with ``peer_kme`` straight to the pool.

        Units already present are skipped. Returns the number of units added. One audit
        record ("ingest") per call. A KME never calls this with fresh material: it uses
        :meth:`ingest_block`, whose units join the pool only at :meth:`confirm_block`.
        """

    def ingest_block(self, block: BlockInfo, units: Sequence[KeyUnit], *, data: bytes,
                     now_s: float) -> int:
        """Hold a block's units as pending until the peer confirms the same bytes.

        Returns the number of units added (0 for a repeat of the same bytes). Raises
        BlockConflict for other bytes under an existing block ID, or a quarantined block.
        """

    def get_block(self, block_id: str) -> BlockInfo | None: ...

    def pending_blocks(self, peer_kme: str | None = None, limit: int = 100) -> list[BlockInfo]:
        """Blocks awaiting key confirmation, oldest first."""

    def confirm_block(self, block_id: str, *, now_s: float) -> int:
        """Move a pending block's units into the pool (idempotent); returns units moved."""

    def quarantine_block(self, block_id: str, *, reason: str, now_s: float) -> bool:
        """Never serve this block: erase its pending units; False if it was confirmed."""

    def pool_status(self, peer_kme: str, *, allow_simulated: bool = False) -> PoolStatus:
        """Units available for this KME to deliver as master toward ``peer_kme``."""

    def reserve(
        self,
        *,
        peer_kme: str,
        master_sae: str,
        slave_saes: Sequence[str],
        number: int,
        size_bits: int,
        now_s: float,
        ttl_s: float,
        keep_material: bool,
        allow_simulated: bool = False,
    ) -> list[tuple[Assignment, DeliveredKey]]:
        """Atomically take ``number`` keys of ``size_bits`` from units owned by this KME.

        Each key uses ceil(size_bits / unit_bits) available units of ``peer_kme`` (oldest
        first). Raises InsufficientKeys (and changes nothing) if there are not enough.
        Keys are recorded as delivered to ``master_sae`` and marked "unsynced" for the
        peer. ``keep_material`` is True when a slave SAE is served by this same KME (so
        dec_keys here needs the bytes); otherwise the material is erased here at once.
        Never returns a unit twice, even with many processes sharing one database. Units of
        simulated blocks are taken only with ``allow_simulated``.
        """

    def assign(self, assignment: Assignment, *, now_s: float, ttl_s: float) -> None:
        """Record a key delivered by the peer KME (idempotent for the same assignment).

        Marks the units used and keeps the key's material for the slave SAEs.
        Raises SyncConflict if a unit is unknown or used by a different key.
        """

    def put_key(
        self, assignment: Assignment, material: bytes, *, now_s: float, ttl_s: float,
        synced: bool,
    ) -> None:
        """Store a key that is not made of QKD units (fallback-PQC, relayed keys)."""

    def retrieve(
        self, *, slave_sae: str, master_sae: str, key_ids: Sequence[str], now_s: float,
        refetch_window_s: float = 0.0, allow_simulated: bool = False,
        before_commit: Callable[[], None] | None = None,
    ) -> list[DeliveredKey]:
        """Hand keys to a slave SAE, all or nothing.

        KeyNotFound if an ID is unknown, expired, erased, or was retrieved by this SAE more
        than ``refetch_window_s`` ago (within the window the same SAE gets the same bytes
        again); NotEntitled if ``slave_sae`` is not among the key's slaves or ``master_sae``
        is not its master; SimulatedKeyRefused for a simulated key without
        ``allow_simulated``. ``before_commit`` runs inside the transaction, last. When
        every slave has retrieved a key its material is erased once the re-fetch window has
        passed (at once if it is 0).
        """

    def lookup(self, key_id: str) -> Assignment | None:
        """The assignment of a key this KME delivered or was told about (no material)."""

    def lookup_many(self, key_ids: Sequence[str]) -> dict[str, Assignment]:
        """Assignments of the given key IDs that are known here (one query)."""

    def unsynced(self, limit: int = 500) -> list[Assignment]:
        """Keys delivered here as master that the peer KME has not acknowledged yet."""

    def mark_synced(self, key_ids: Sequence[str]) -> None: ...

    def expire(self, *, now_s: float) -> int:
        """Erase keys (and unused units older than their TTL, if any) past expiry."""

    def audit_append(
        self,
        *,
        action: str,
        key_ids: Sequence[str],
        master_sae: str | None,
        slave_saes: Sequence[str],
        detail: dict[str, object],
        now_s: float,
    ) -> None:
        """Append an audit record for an event that is not a store mutation (relay, ...)."""

    def audit_records(self, start_seq: int = 1) -> Iterator[AuditRecord]: ...

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the last record as recorded in the store's head row."""
