"""Everything the SQLite and PostgreSQL key stores share: the whole store logic over SQL.

A back end supplies only connections and transactions (:meth:`SqlKeyStore._transaction`) and
its row-locking clauses; the SQL here is written once, with ``?`` placeholders, in the subset
both databases understand.

Sealing. Unit material is sealed under ``unit:<unit_id>``, key material under ``key:<key_id>``
(the prefix keeps the two apart: a key's ID is its first unit's ID). When units become a key
their material moves into the key row and the units' ``sealed`` is set to NULL, so exactly one
copy of any key material is stored, and erasing a key erases it everywhere.
"""

from __future__ import annotations

import functools
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from qnetkit.errors import ParameterError
from qnetkit.kms.atrest import AtRestCipher, audit_key
from qnetkit.kms.audit import GENESIS_HASH, canonical_json, record_hash
from qnetkit.kms.errors import InsufficientKeys, KeyNotFound, NotEntitled, StoreError, SyncConflict
from qnetkit.kms.store.base import (
    Assignment,
    AuditRecord,
    DeliveredKey,
    KeyUnit,
    PoolStatus,
)
from qnetkit.kms.store.schema import BOOTSTRAP, MIGRATIONS, SCHEMA_VERSION, Dialect, render

Row = tuple[Any, ...]
T = TypeVar("T")
C = TypeVar("C")

KEK_CHECK_ID = "meta:kek-check"
KEK_CHECK_PLAIN = b"qnetkit-kms"
IN_CHUNK = 500  # IDs per IN (...) list: well below SQLite's bound-parameter limit
AUDIT_PAGE = 1000

KEY_COLUMNS = (
    "key_id, peer_kme, origin, unit_ids, size_bits, master_sae, slave_saes, retrieved_by, "
    "sealed, state, synced, created_at_s, expires_at_s"
)
AUDIT_COLUMNS = (
    "seq, time_s, action, kme, key_ids, master_sae, slave_saes, detail, prev_hash, hash"
)


class Tx(Protocol):
    """One open database transaction (SQL with ``?`` placeholders)."""

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    def run(self, sql: str, params: Sequence[object] = ()) -> int: ...

    def run_many(self, sql: str, params: Sequence[Sequence[object]]) -> int: ...


class Cursor(Protocol):
    """The DB-API cursor methods the stores use (sqlite3 and psycopg cursors both fit)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...

    def executemany(self, sql: Any, params: Any, /) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@functools.lru_cache(maxsize=512)
def _with_placeholder(sql: str, placeholder: str) -> str:
    # The shared SQL contains no literal '?' (nor '%', which psycopg would interpret).
    return sql.replace("?", placeholder)


class CursorTx:
    """:class:`Tx` over a DB-API cursor whose driver uses ``placeholder`` for parameters."""

    def __init__(self, cursor: Cursor, placeholder: str = "?") -> None:
        self._cur = cursor
        self._ph = placeholder

    def _sql(self, sql: str) -> str:
        return sql if self._ph == "?" else _with_placeholder(sql, self._ph)

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self._cur.execute(self._sql(sql), params)
        return self._cur.fetchall()

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        self._cur.execute(self._sql(sql), params)
        return self._cur.rowcount

    def run_many(self, sql: str, params: Sequence[Sequence[object]]) -> int:
        self._cur.executemany(self._sql(sql), params)
        return self._cur.rowcount


class ThreadConnections(Generic[C]):
    """One database connection per thread; connections of finished threads are closed."""

    def __init__(self, connect: Callable[[], C], close: Callable[[C], None]) -> None:
        self._connect = connect
        self._close = close
        self._lock = threading.Lock()
        self._by_thread: dict[threading.Thread, C] = {}
        self._closed = False

    def get(self) -> C:
        me = threading.current_thread()
        with self._lock:
            if self._closed:
                raise StoreError("the key store is closed")
            conn = self._by_thread.get(me)
            if conn is not None:
                return conn
            dead = [t for t in self._by_thread if not t.is_alive()]
            stale = [self._by_thread.pop(t) for t in dead]
        for old in stale:
            self._close(old)
        conn = self._connect()
        with self._lock:
            self._by_thread[me] = conn
        return conn

    def discard(self) -> None:
        """Drop this thread's connection (after it broke); the next get() reconnects."""
        with self._lock:
            conn = self._by_thread.pop(threading.current_thread(), None)
        if conn is not None:
            self._close(conn)

    def close_all(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self._by_thread.values())
            self._by_thread.clear()
        for conn in conns:
            self._close(conn)


def compose(parts: Sequence[bytes], size_bits: int) -> bytes:
    """Key material from its units: concatenated, then truncated to ``size_bits``."""
    return b"".join(parts)[: size_bits // 8]


def units_per_key(size_bits: int, unit_bits: int) -> int:
    return -(-size_bits // unit_bits)


def _dump(items: Iterable[str]) -> str:
    return canonical_json(list(items))


def _load(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def _chunks(ids: Sequence[str]) -> Iterator[tuple[str, Sequence[str]]]:
    """(placeholder list, IDs) pieces for ``IN (...)`` clauses."""
    for i in range(0, len(ids), IN_CHUNK):
        part = ids[i : i + IN_CHUNK]
        yield ", ".join("?" * len(part)), part


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

    def __repr__(self) -> str:
        return f"KeyRow(key_id={self.key_id!r}, state={self.state!r})"

    @classmethod
    def from_row(cls, r: Row) -> KeyRow:
        return cls(
            key_id=r[0], peer_kme=r[1], origin=r[2], unit_ids=_load(r[3]), size_bits=int(r[4]),
            master_sae=r[5], slave_saes=_load(r[6]), retrieved_by=_load(r[7]),
            sealed=None if r[8] is None else bytes(r[8]), state=r[9], synced=bool(r[10]),
            created_at_s=float(r[11]), expires_at_s=float(r[12]),
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


def _check_request(number: int, size_bits: int, master_sae: str, slaves: Sequence[str]) -> None:
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


class SqlKeyStore(ABC):
    """The :class:`~qnetkit.kms.store.base.KeyStore` logic over a SQL back end."""

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
        records: Sequence[tuple[str, Sequence[str], str | None, Sequence[str], dict[str, object]]],
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
            rows.append((seq, time_s, action, self.kme_id, _dump(key_ids), master_sae,
                         _dump(slave_saes), canonical_json(detail), h, new))
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
                    key_ids=_load(r[4]), master_sae=r[5], slave_saes=_load(r[6]),
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

    # ---- units ------------------------------------------------------------------------

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

    def _existing_units(self, tx: Tx, unit_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for marks, part in _chunks(unit_ids):
            found.update(
                r[0] for r in tx.rows(f"SELECT unit_id FROM units WHERE unit_id IN ({marks})", part)
            )
        return found

    def ingest(self, peer_kme: str, units: Sequence[KeyUnit], *, now_s: float) -> int:
        """Add units shared with ``peer_kme``; units already present are skipped.

        All units of a peer have the size of the first one ever ingested (StoreError
        otherwise, and nothing is added). One audit record ("ingest") per call.
        """
        if peer_kme == self.kme_id:
            raise StoreError(f"KME {peer_kme} cannot share units with itself")
        sizes = {len(u.material) for u in units}
        if len(sizes) > 1 or 0 in sizes:
            raise StoreError(f"units from {peer_kme} must all have the same non-zero size")
        for u in units:
            if u.owner_kme not in (self.kme_id, peer_kme):
                raise StoreError(
                    f"unit {u.unit_id} is owned by {u.owner_kme}, which is neither this KME "
                    f"nor {peer_kme}"
                )

        def work(tx: Tx) -> int:
            bits = self._unit_bits(tx, peer_kme)
            if units:
                got = 8 * len(units[0].material)
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
            existing = self._existing_units(tx, [u.unit_id for u in units])
            fresh = {u.unit_id: u for u in units if u.unit_id not in existing}  # keeps order
            new = list(fresh.values())
            added = 0
            if new:
                # ON CONFLICT: another process may be ingesting the same block right now.
                added = tx.run_many(
                    "INSERT INTO units (unit_id, peer_kme, owner_kme, sealed, state, "
                    "created_at_s) VALUES (?, ?, ?, ?, 'available', ?) "
                    "ON CONFLICT (unit_id) DO NOTHING",
                    [
                        (u.unit_id, peer_kme, u.owner_kme,
                         self._cipher.seal("unit:" + u.unit_id, u.material), float(now_s))
                        for u in new
                    ],
                )
            detail: dict[str, object] = {
                "peer": peer_kme,
                "count": added,
                "offered": len(units),
                "first_unit": new[0].unit_id if new else None,
                "last_unit": new[-1].unit_id if new else None,
            }
            self._audit(tx, action="ingest", key_ids=[], master_sae=None, slave_saes=[],
                        detail=detail, now_s=now_s)
            return added

        return self._transaction(work, write=True)

    def pool_status(self, peer_kme: str) -> PoolStatus:
        """Units available for this KME to deliver as master toward ``peer_kme``."""

        def work(tx: Tx) -> PoolStatus:
            n = tx.rows(
                "SELECT COUNT(*) FROM units "
                "WHERE peer_kme = ? AND owner_kme = ? AND state = 'available'",
                (peer_kme, self.kme_id),
            )[0][0]
            return PoolStatus(available_units=int(n), unit_bits=self._unit_bits(tx, peer_kme))

        return self._transaction(work, write=False)

    def _erase_units_of(self, tx: Tx, key_ids: Sequence[str]) -> None:
        for marks, part in _chunks(key_ids):
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

    # ---- keys -------------------------------------------------------------------------

    def _insert_key(
        self, tx: Tx, a: Assignment, material: bytes | None, *, state: str, synced: bool,
        expires_at_s: float,
    ) -> None:
        sealed = None if material is None else self._cipher.seal("key:" + a.key_id, material)
        tx.run(
            f"INSERT INTO keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (a.key_id, a.peer_kme, a.origin, _dump(a.unit_ids), a.size_bits, a.master_sae,
             _dump(a.slave_saes), _dump([]), sealed, state, synced, float(a.created_at_s),
             float(expires_at_s)),
        )

    def _select_keys(self, tx: Tx, key_ids: Sequence[str], *, lock: bool) -> dict[str, KeyRow]:
        out: dict[str, KeyRow] = {}
        # Sorted, so that concurrent transactions lock rows in the same order.
        ordered = sorted(set(key_ids))
        for marks, part in _chunks(ordered):
            for r in tx.rows(
                f"SELECT {KEY_COLUMNS} FROM keys WHERE key_id IN ({marks}) ORDER BY key_id"
                + (self.for_update if lock else ""),
                part,
            ):
                row = KeyRow.from_row(r)
                out[row.key_id] = row
        return out

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
    ) -> list[tuple[Assignment, DeliveredKey]]:
        """Atomically take ``number`` keys of ``size_bits`` from units owned by this KME.

        Oldest units first; InsufficientKeys (nothing changed) if there are too few. With
        ``keep_material`` False the material is erased here at once ("erase" record).
        """
        slaves = tuple(slave_saes)
        _check_request(number, size_bits, master_sae, slaves)

        def work(tx: Tx) -> list[tuple[Assignment, DeliveredKey]]:
            unit_bits = self._known_unit_bits(tx, peer_kme)
            if unit_bits == 0:
                raise InsufficientKeys(f"no key material shared with {peer_kme} yet")
            per_key = units_per_key(size_bits, unit_bits)
            need = number * per_key
            rows = self._available_units(tx, peer_kme, need, hint)
            if len(rows) < need and hint:
                # A unit below the hint can be free again (another process rolled back).
                rows = self._available_units(tx, peer_kme, need, 0)
            if len(rows) >= need:
                last_seq[0] = max(int(r[2]) for r in rows[:need])
            if len(rows) < need:
                raise InsufficientKeys(
                    f"{number} key(s) of {size_bits} bits toward {peer_kme} need {need} units; "
                    f"{len(rows)} available"
                )
            out: list[tuple[Assignment, DeliveredKey]] = []
            for i in range(number):
                chunk = rows[i * per_key : (i + 1) * per_key]
                unit_ids = tuple(r[0] for r in chunk)
                a = Assignment(
                    key_id=unit_ids[0], peer_kme=peer_kme, unit_ids=unit_ids,
                    size_bits=size_bits, master_sae=master_sae, slave_saes=slaves,
                    created_at_s=float(now_s), origin="qkd",
                )
                material = compose(self._open_units(chunk), size_bits)
                self._use_units(tx, a.key_id, unit_ids, erased=not keep_material)
                self._insert_key(
                    tx, a, material if keep_material else None,
                    state="delivered" if keep_material else "erased", synced=False,
                    expires_at_s=now_s + ttl_s,
                )
                out.append((a, DeliveredKey(a.key_id, material)))
            key_ids = [a.key_id for a, _ in out]
            records: list[tuple[str, Sequence[str], str | None, Sequence[str],
                                dict[str, object]]] = [
                ("deliver", key_ids, master_sae, slaves,
                 {"size_bits": size_bits, "number": number, "peer": peer_kme})]
            if not keep_material:
                records.append(("erase", key_ids, master_sae, slaves,
                                {"reason": "no slave SAE at this KME"}))
            self._audit_batch(tx, records, now_s=now_s)
            return out

        # Units are taken in seq order and new units get larger seqs, so a scan may start
        # after the last unit this process took: on PostgreSQL this skips the dead index
        # entries of used units (a queue table's classic slowdown) until vacuum removes them.
        hint = self._reserve_hint.get(peer_kme, 0)
        last_seq = [hint]
        out = self._transaction(work, write=True)
        self._reserve_hint[peer_kme] = max(self._reserve_hint.get(peer_kme, 0), last_seq[0])
        return out

    def _available_units(self, tx: Tx, peer_kme: str, need: int, after_seq: int) -> list[Row]:
        return tx.rows(
            "SELECT unit_id, sealed, seq FROM units "
            "WHERE peer_kme = ? AND owner_kme = ? AND state = 'available' AND seq > ? "
            "ORDER BY seq LIMIT ?" + self.skip_locked,
            (peer_kme, self.kme_id, after_seq, need),
        )

    def _assign_units(self, tx: Tx, a: Assignment) -> tuple[str, list[bytes]] | None:
        """(link peer, unit plaintexts) for an assignment, or None if it is already applied.

        Raises SyncConflict if the assignment does not fit the units stored here.
        """
        rows: dict[str, Row] = {}
        for marks, part in _chunks(sorted(set(a.unit_ids))):
            for r in tx.rows(
                "SELECT unit_id, peer_kme, owner_kme, sealed, state, key_id FROM units "
                f"WHERE unit_id IN ({marks}) ORDER BY unit_id" + self.for_update,
                part,
            ):
                rows[r[0]] = r
        peers = set()
        for uid in a.unit_ids:
            unit = rows.get(uid)
            if unit is None:
                raise SyncConflict(f"unit {uid} of key {a.key_id} is unknown here")
            _, peer, owner, _, state, key_id = unit
            if state != "available":
                if key_id == a.key_id:
                    return None  # applied meanwhile by another process with the same key
                raise SyncConflict(f"unit {uid} of key {a.key_id} is already {state}")
            if owner != peer:
                raise SyncConflict(f"unit {uid} is not owned by {peer}, which delivered it")
            peers.add(peer)
        if len(peers) != 1:
            raise SyncConflict(f"the units of key {a.key_id} belong to different links")
        (peer,) = peers
        if a.peer_kme not in (peer, self.kme_id):
            raise SyncConflict(f"key {a.key_id} names link {a.peer_kme}; its units are of {peer}")
        unit_bits = self._known_unit_bits(tx, peer)
        if units_per_key(a.size_bits, unit_bits) != len(a.unit_ids):
            raise SyncConflict(
                f"key {a.key_id}: {len(a.unit_ids)} units of {unit_bits} bits do not make "
                f"{a.size_bits} bits"
            )
        return peer, self._open_units([(uid, rows[uid][3]) for uid in a.unit_ids])

    def assign(self, assignment: Assignment, *, now_s: float, ttl_s: float) -> None:
        """Record a key delivered by the peer KME (idempotent for the same assignment).

        The assignment may carry either end's view of ``peer_kme``; the key is stored with
        the link's peer as seen from here.
        """
        a = assignment
        if a.origin != "qkd" or not a.unit_ids or a.unit_ids[0] != a.key_id:
            raise SyncConflict(f"key {a.key_id} is not a key made of QKD units")
        if len(set(a.unit_ids)) != len(a.unit_ids):
            raise SyncConflict(f"key {a.key_id} names a unit twice")
        _check_request(1, a.size_bits, a.master_sae, a.slave_saes)

        def applied(tx: Tx) -> bool:
            row = self._select_keys(tx, [a.key_id], lock=False).get(a.key_id)
            if row is None:
                return False
            if not row.same_key(a):
                raise SyncConflict(f"key {a.key_id} is already recorded with other units or SAEs")
            return True

        def work(tx: Tx) -> None:
            if applied(tx):
                return
            found = self._assign_units(tx, a)
            if found is None:
                applied(tx)  # raises SyncConflict unless it is the same key
                return
            peer, parts = found
            stored = Assignment(
                key_id=a.key_id, peer_kme=peer, unit_ids=tuple(a.unit_ids),
                size_bits=a.size_bits, master_sae=a.master_sae, slave_saes=tuple(a.slave_saes),
                created_at_s=float(a.created_at_s), origin="qkd",
            )
            self._use_units(tx, a.key_id, a.unit_ids, erased=False)
            self._insert_key(tx, stored, compose(parts, a.size_bits), state="delivered",
                             synced=True, expires_at_s=now_s + ttl_s)
            self._audit(tx, action="assign", key_ids=[a.key_id], master_sae=a.master_sae,
                        slave_saes=a.slave_saes, detail={"size_bits": a.size_bits, "peer": peer},
                        now_s=now_s)

        self._transaction(work, write=True)

    def put_key(
        self, assignment: Assignment, material: bytes, *, now_s: float, ttl_s: float,
        synced: bool,
    ) -> None:
        """Store a key that is not made of QKD units (fallback-PQC, relayed keys).

        Audited as "deliver" when this KME originates it (``synced`` False: the peer must
        still be told) and as "assign" otherwise; ``detail.origin`` says which kind of key.
        Idempotent for the same assignment.
        """
        a = assignment
        _check_request(1, a.size_bits, a.master_sae, a.slave_saes)
        if a.unit_ids:
            raise ParameterError("unit_ids", list(a.unit_ids), "put_key stores keys without units")
        if len(material) * 8 != a.size_bits:
            raise ParameterError("material", f"<{len(material)} bytes>",
                                 f"must be {a.size_bits // 8} bytes")

        def work(tx: Tx) -> None:
            row = self._select_keys(tx, [a.key_id], lock=False).get(a.key_id)
            if row is not None:
                if not row.same_key(a):
                    raise SyncConflict(f"key {a.key_id} is already recorded differently")
                return
            self._insert_key(tx, a, material, state="delivered", synced=synced,
                             expires_at_s=now_s + ttl_s)
            self._audit(tx, action="assign" if synced else "deliver", key_ids=[a.key_id],
                        master_sae=a.master_sae, slave_saes=a.slave_saes,
                        detail={"size_bits": a.size_bits, "origin": a.origin,
                                "peer": a.peer_kme}, now_s=now_s)

        self._transaction(work, write=True)

    def retrieve(
        self, *, slave_sae: str, master_sae: str, key_ids: Sequence[str], now_s: float
    ) -> list[DeliveredKey]:
        """Hand keys to a slave SAE, all or nothing; erase each once every slave has it.

        KeyNotFound for an unknown, expired, erased or already retrieved key (or one named
        twice in the request); NotEntitled for a key of other SAEs.
        """
        ids = list(key_ids)
        if len(set(ids)) != len(ids):
            raise KeyNotFound("a key_ID is requested twice")
        if not ids:
            return []

        def work(tx: Tx) -> list[DeliveredKey]:
            rows = self._select_keys(tx, ids, lock=True)
            for kid in ids:
                row = rows.get(kid)
                if row is None or row.sealed is None or row.expires_at_s <= now_s:
                    raise KeyNotFound(f"key {kid} is unknown, expired or erased")
                if slave_sae not in row.slave_saes or master_sae != row.master_sae:
                    raise NotEntitled(f"SAE {slave_sae} is not entitled to key {kid}")
                if slave_sae in row.retrieved_by:
                    raise KeyNotFound(f"key {kid} was already retrieved by {slave_sae}")
            out: list[DeliveredKey] = []
            done: list[str] = []
            for kid in ids:
                row = rows[kid]
                assert row.sealed is not None
                out.append(DeliveredKey(kid, self._cipher.open("key:" + kid, row.sealed)))
                got = (*row.retrieved_by, slave_sae)
                if set(row.slave_saes) <= set(got):
                    done.append(kid)
                    tx.run("UPDATE keys SET retrieved_by = ?, state = 'erased', sealed = NULL "
                           "WHERE key_id = ?", (_dump(got), kid))
                else:
                    tx.run("UPDATE keys SET retrieved_by = ?, state = 'retrieved' "
                           "WHERE key_id = ?", (_dump(got), kid))
            self._erase_units_of(tx, done)
            self._audit(tx, action="retrieve", key_ids=ids, master_sae=master_sae,
                        slave_saes=[slave_sae], detail={"number": len(ids)}, now_s=now_s)
            if done:
                self._audit(tx, action="erase", key_ids=done, master_sae=master_sae,
                            slave_saes=[], detail={"reason": "retrieved by every slave SAE"},
                            now_s=now_s)
            return out

        return self._transaction(work, write=True)

    def lookup(self, key_id: str) -> Assignment | None:
        """The assignment of a key this KME delivered or was told about (no material)."""
        row = self._transaction(
            lambda tx: self._select_keys(tx, [key_id], lock=False).get(key_id), write=False
        )
        return None if row is None else row.assignment()

    def unsynced(self, limit: int = 500) -> list[Assignment]:
        """Keys this KME originated that the peer has not acknowledged, oldest first."""
        rows = self._transaction(
            lambda tx: tx.rows(
                f"SELECT {KEY_COLUMNS} FROM keys WHERE synced = ? ORDER BY seq LIMIT ?",
                (False, limit),
            ),
            write=False,
        )
        return [KeyRow.from_row(r).assignment() for r in rows]

    def mark_synced(self, key_ids: Sequence[str]) -> None:
        ids = sorted(set(key_ids))

        def work(tx: Tx) -> None:
            for marks, part in _chunks(ids):
                tx.run(f"UPDATE keys SET synced = ? WHERE key_id IN ({marks})", (True, *part))

        if ids:
            self._transaction(work, write=True)

    def expire(self, *, now_s: float) -> int:
        """Erase the material of keys past their expiry; one "expire" record per call.

        Units carry no TTL of their own: unused units stay available.
        """

        def work(tx: Tx) -> int:
            ids = [
                r[0] for r in tx.rows(
                    "SELECT key_id FROM keys WHERE state IN ('delivered', 'retrieved') "
                    "AND expires_at_s <= ? ORDER BY key_id" + self.for_update,
                    (float(now_s),),
                )
            ]
            if not ids:
                return 0
            for marks, part in _chunks(ids):
                tx.run(
                    f"UPDATE keys SET state = 'expired', sealed = NULL WHERE key_id IN ({marks})",
                    part,
                )
            self._erase_units_of(tx, ids)
            self._audit(tx, action="expire", key_ids=ids, master_sae=None, slave_saes=[],
                        detail={"number": len(ids)}, now_s=now_s)
            return len(ids)

        return self._transaction(work, write=True)
