"""PostgreSQL key store: several stateless server processes on one database.

Reservation locks the pool's oldest available units with ``FOR UPDATE SKIP LOCKED`` (two
transactions never take the same unit, and neither waits for the other); every write
transaction then locks the audit head row ``FOR UPDATE`` to append its records, which keeps
the hash chain linear across processes. Rows are always locked in the order data rows (sorted
by ID), then the head row, so transactions cannot deadlock on each other; should PostgreSQL
still report a deadlock or a serialisation failure, the transaction is retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import errors as pg_errors

from qnetkit.kms.errors import StoreError
from qnetkit.kms.store._common import CursorTx, Row, SqlKeyStore, ThreadConnections, Tx
from qnetkit.kms.store.schema import POSTGRES

T = TypeVar("T")

LOCK_TIMEOUT_MS = 10_000  # as long as SQLite's busy timeout
CONNECT_TIMEOUT_S = 10
RETRIES = 5
# pg_advisory_xact_lock key of migrate() ("qnkms" in ASCII): concurrent start-ups wait.
MIGRATION_LOCK = 0x716E6B6D73


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    return " ".join(f"{k}={v}" for k, v in info.items() if k != "password")


class PostgresKeyStore(SqlKeyStore):
    """Key store in a PostgreSQL database; one connection per thread."""

    dialect = POSTGRES
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, *, kme_id: str, kek: bytes) -> None:
        super().__init__(kme_id=kme_id, kek=kek)
        self._dsn = dsn
        self._conns: ThreadConnections[psycopg.Connection[Row]] = ThreadConnections(
            self._connect, lambda c: c.close()
        )

    def __repr__(self) -> str:
        return f"PostgresKeyStore({_safe_dsn(self._dsn)!r}, kme_id={self.kme_id!r})"

    def _connect(self) -> psycopg.Connection[Row]:
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                application_name="qnetkit-kms",
            )
            conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL ({_safe_dsn(self._dsn)}): {exc}"
            ) from exc
        return conn

    def _lock_for_migration(self, tx: Tx) -> None:
        tx.rows("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def _transaction(self, fn: Callable[[Tx], T], *, write: bool) -> T:
        for attempt in range(RETRIES):
            conn = self._conns.get()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    return fn(CursorTx(cur, "%s"))
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
                if attempt == RETRIES - 1:
                    raise StoreError(f"PostgreSQL store: {exc}") from exc
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    self._conns.discard()  # reconnect on the next call
                raise StoreError(f"PostgreSQL store: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._conns.close_all()
