"""The core of the SQL key store: back-end hooks, schema migration, the audit chain.

Sealing. Unit material is sealed under ``unit:<unit_id>``, key material under ``key:<key_id>``
(the prefix keeps the two apart: a key's ID is its first unit's ID). When units become a key
their material moves into the key row and the units' ``sealed`` is set to NULL, so exactly one
copy of any key material is stored, and erasing a key erases it everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qnetkit.kms.atrest import AtRestCipher, audit_key
from qnetkit.kms.audit import GENESIS_HASH, canonical_json, record_hash
from qnetkit.kms.errors import StoreError
from qnetkit.kms.store.base import Assignment, AuditRecord
from qnetkit.kms.store.rows import dump, load
from qnetkit.kms.store.schema import BOOTSTRAP, MIGRATIONS, SCHEMA_VERSION, Dialect, render
from qnetkit.kms.store.sql import AUDIT_COLUMNS, AUDIT_PAGE, KEY_COLUMNS, Row, T, Tx, chunks

KEK_CHECK_ID = "meta:kek-check"
KEK_CHECK_PLAIN = b"qnetkit-kms"
BLOCK_DIGEST_INFO = b"qnetkit/kms/block-digest/v1"
AuditItem = tuple[str, Sequence[str], str | None, Sequence[str], dict[str, object]]


class StoreCore(ABC):
    """Back-end hooks, schema migration and the audit chain; the operations build on it."""

    dialect: Dialect
    #: Appended to SELECTs of rows about to be changed (PostgreSQL: `` FOR UPDATE``). SQLite
    #: needs none: ``BEGIN IMMEDIATE`` already serialises writers.
    for_update: str = ""
    #: Appended to the pool SELECT of :meth:`reserve` (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
    skip_locked: str = ""

    def __init__(self, *, kme_id: str, kek: bytes) -> None:
        if not kme_id:
            raise StoreError("the store needs the ID of its KME")
        self.kme_id = kme_id
        self._cipher = AtRestCipher(kek)
        self._audit_key = audit_key(kek)
        # A keyed digest of each block: tells a repeat of the same bytes from other bytes
        # under one block ID without storing an unkeyed hash of key material.
        self._digest_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                info=BLOCK_DIGEST_INFO).derive(bytes(kek))
        self._unit_bits_cache: dict[str, int] = {}
        self._reserve_hint: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kme_id={self.kme_id!r})"

    # ---- back-end hooks ---------------------------------------------------------------

    @abstractmethod
    def _transaction(self, fn: Callable[[Tx], T], *, write: bool) -> T:
        """Run ``fn`` in one transaction (a write transaction if ``write``) and commit.

        Any exception rolls everything back; database errors become StoreError.
        """

    @abstractmethod
    def _lock_for_migration(self, tx: Tx) -> None:
        """Keep concurrent migrate() calls of several processes apart."""

    @abstractmethod
    def close(self) -> None: ...

    # ---- schema -----------------------------------------------------------------------

    def migrate(self) -> None:
        """Create or upgrade the schema; check the KME ID and the KEK against the store."""

        def work(tx: Tx) -> None:
            self._lock_for_migration(tx)
            tx.run(render(BOOTSTRAP, self.dialect))
            tx.run(
                "INSERT INTO meta (id, schema_version, audit_seq, audit_hash) "
                "VALUES (1, 0, 0, ?) ON CONFLICT (id) DO NOTHING",
                (GENESIS_HASH,),
            )
            version, kme, check = tx.rows(
                "SELECT schema_version, kme_id, kek_check FROM meta WHERE id = 1"
            )[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store has schema version {version}; this qnetkit knows up to "
                    f"{SCHEMA_VERSION}"
                )
            for v in range(version, SCHEMA_VERSION):
                for stmt in MIGRATIONS[v]:
                    tx.run(render(stmt, self.dialect))
            if version != SCHEMA_VERSION:
                tx.run("UPDATE meta SET schema_version = ? WHERE id = 1", (SCHEMA_VERSION,))
            if kme is None:
                tx.run(
                    "UPDATE meta SET kme_id = ?, kek_check = ? WHERE id = 1",
                    (self.kme_id, self._cipher.seal(KEK_CHECK_ID, KEK_CHECK_PLAIN)),
                )
                return
            if kme != self.kme_id:
                raise StoreError(f"the store belongs to KME {kme}, not {self.kme_id}")
            # Fail at start-up, not at the first key request, when the KEK is wrong.
            self._cipher.open(KEK_CHECK_ID, check)

        self._transaction(work, write=True)

    # ---- audit ------------------------------------------------------------------------

    def _audit(
        self,
        tx: Tx,
        *,
        action: str,
        key_ids: Sequence[str],
        master_sae: str | None,
        slave_saes: Sequence[str],
        detail: dict[str, object],
        now_s: float,
    ) -> None:
        self._audit_batch(tx, [(action, key_ids, master_sae, slave_saes, detail)], now_s=now_s)

    def _audit_batch(
        self,
        tx: Tx,
        records: Sequence[AuditItem],
        *,
        now_s: float,
    ) -> None:
        """Append (action, key_ids, master, slaves, detail) records: one head lock, one
        batched insert, one head update, whatever the number of records."""
        # Locking the head row is what makes the chain linear across processes (PostgreSQL);
        # it is taken last so that the work before it runs concurrently.
        prev_seq, prev_hash = tx.rows(
            "SELECT audit_seq, audit_hash FROM meta WHERE id = 1" + self.for_update
        )[0]
        seq = int(prev_seq)
        h = str(prev_hash)
        time_s = float(now_s)
        rows = []
        for action, key_ids, master_sae, slave_saes, detail in records:
            seq += 1
            new = record_hash(
                self._audit_key, h, seq, time_s, action, self.kme_id, key_ids, master_sae,
                slave_saes, detail,
            )
            rows.append((seq, time_s, action, self.kme_id, dump(key_ids), master_sae,
                         dump(slave_saes), canonical_json(detail), h, new))
            h = new
        tx.run_many(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
        tx.run("UPDATE meta SET audit_seq = ?, audit_hash = ? WHERE id = 1", (seq, h))

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
        canonical_json(detail)  # fail before the transaction on a non-JSON detail
        self._transaction(
            lambda tx: self._audit(
                tx, action=action, key_ids=list(key_ids), master_sae=master_sae,
                slave_saes=list(slave_saes), detail=detail, now_s=now_s,
            ),
            write=True,
        )

    def audit_records(self, start_seq: int = 1) -> Iterator[AuditRecord]:
        """Records in seq order, read a page at a time (no transaction held in between)."""
        seq = start_seq
        while True:
            page = self._audit_page(seq)
            for r in page:
                yield AuditRecord(
                    seq=int(r[0]), time_s=float(r[1]), action=r[2], kme=r[3],
                    key_ids=load(r[4]), master_sae=r[5], slave_saes=load(r[6]),
                    detail=json.loads(r[7]), prev_hash=r[8], hash=r[9],
                )
            if len(page) < AUDIT_PAGE:
                return
            seq = int(page[-1][0]) + 1

    def _audit_page(self, start_seq: int) -> list[Row]:
        return self._transaction(
            lambda tx: tx.rows(
                f"SELECT {AUDIT_COLUMNS} FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?",
                (start_seq, AUDIT_PAGE),
            ),
            write=False,
        )

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the last record as recorded in the store's head row."""
        seq, h = self._transaction(
            lambda tx: tx.rows("SELECT audit_seq, audit_hash FROM meta WHERE id = 1")[0],
            write=False,
        )
        return int(seq), str(h)

    # ---- unit helpers shared by the unit and key operations ------------------------------

    def _block_digest(self, block_id: str, data: bytes) -> str:
        return hmac.new(self._digest_key, block_id.encode() + b"\x00" + data,
                        hashlib.sha256).hexdigest()

    @staticmethod
    def _unit_bits(tx: Tx, peer_kme: str) -> int:
        rows = tx.rows("SELECT unit_bits FROM peers WHERE peer_kme = ?", (peer_kme,))
        return int(rows[0][0]) if rows else 0

    def _known_unit_bits(self, tx: Tx, peer_kme: str) -> int:
        """_unit_bits, remembered once set: a peer's unit size never changes (hot path)."""
        bits = self._unit_bits_cache.get(peer_kme)
        if bits is None:
            bits = self._unit_bits(tx, peer_kme)
            if bits:
                self._unit_bits_cache[peer_kme] = bits
        return bits

    def _fix_unit_bits(self, tx: Tx, peer_kme: str, got: int) -> None:
        """Record ``got`` as the peer's unit size if none is yet; StoreError if it differs."""
        bits = self._unit_bits(tx, peer_kme)
        if bits == 0:
            tx.run(
                "INSERT INTO peers (peer_kme, unit_bits) VALUES (?, ?) "
                "ON CONFLICT (peer_kme) DO NOTHING",
                (peer_kme, got),
            )
            bits = self._unit_bits(tx, peer_kme)  # another process may have won
        if got != bits:
            raise StoreError(
                f"units from {peer_kme} have {bits} bits; refusing units of {got} bits"
            )

    def _erase_units_of(self, tx: Tx, key_ids: Sequence[str]) -> None:
        for marks, part in chunks(key_ids):
            tx.run(
                f"UPDATE units SET state = 'erased', sealed = NULL WHERE key_id IN ({marks})",
                part,
            )

    def _use_units(self, tx: Tx, key_id: str, unit_ids: Sequence[str], *, erased: bool) -> None:
        tx.run_many(
            "UPDATE units SET state = ?, sealed = NULL, key_id = ? WHERE unit_id = ?",
            [("erased" if erased else "used", key_id, uid) for uid in unit_ids],
        )

    def _open_units(self, rows: Sequence[Row]) -> list[bytes]:
        """Plaintexts of (unit_id, sealed) rows."""
        return [self._cipher.open("unit:" + r[0], r[1]) for r in rows]

    def _insert_key(
        self, tx: Tx, a: Assignment, material: bytes | None, *, state: str, synced: bool,
        expires_at_s: float, simulated: bool = False,
    ) -> None:
        sealed = None if material is None else self._cipher.seal("key:" + a.key_id, material)
        tx.run(
            f"INSERT INTO keys ({KEY_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (a.key_id, a.peer_kme, a.origin, dump(a.unit_ids), a.size_bits, a.master_sae,
             dump(a.slave_saes), dump([]), sealed, state, synced, float(a.created_at_s),
             float(expires_at_s), simulated, "{}"),
        )
