"""SQLite key store: the default for one server, or a few server processes on one host.

WAL journal with ``synchronous=NORMAL``: a committed transaction survives a crash or kill of
the process (not necessarily a power loss). Every write transaction starts with
``BEGIN IMMEDIATE``, which takes the database's single write lock up front, so several
processes on one file are serialised and never hand out a unit twice.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from qnetkit.kms.errors import StoreError
from qnetkit.kms.store._common import CursorTx, SqlKeyStore, ThreadConnections, Tx
from qnetkit.kms.store.schema import SQLITE

T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0


class SqliteKeyStore(SqlKeyStore):
    """Key store in one SQLite file; one connection per thread."""

    dialect = SQLITE
    # Transactions are sub-millisecond local file work: fine to run on the event loop.
    inline_safe = True

    def __init__(self, path: str, *, kme_id: str, kek: bytes) -> None:
        super().__init__(kme_id=kme_id, kek=kek)
        if not path or path == ":memory:" or path.startswith("file:"):
            # Each thread has its own connection: an in-memory database would not be shared.
            raise StoreError("the SQLite key store needs a file path")
        self.path = path
        self._conns: ThreadConnections[sqlite3.Connection] = ThreadConnections(
            self._connect, lambda c: c.close()
        )
        # Threads of one process queue here for the write lock instead of in SQLite's busy
        # handler, whose back-off sleeps (up to 100 ms) would dominate tail latency.
        self._write_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqliteKeyStore({self.path!r}, kme_id={self.kme_id!r})"

    def _connect(self) -> sqlite3.Connection:
        try:
            if not os.path.exists(self.path):
                # Owner-only from the first byte (SQLite gives its -wal/-shm the same mode).
                os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            # check_same_thread=False only so close() may close every thread's connection;
            # each connection is still used by its own thread alone.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.close()
                raise StoreError(f"SQLite store {self.path}: cannot switch to WAL mode")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Erased rows are overwritten with zeros in the file, not just unlinked.
            conn.execute("PRAGMA secure_delete = ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        return conn

    def _lock_for_migration(self, tx: Tx) -> None:
        pass  # BEGIN IMMEDIATE of the migration transaction already excludes other writers

    def _transaction(self, fn: Callable[[Tx], T], *, write: bool) -> T:
        if write:
            with self._write_lock:
                return self._run(fn, write=True)
        return self._run(fn, write=False)

    def _run(self, fn: Callable[[Tx], T], *, write: bool) -> T:
        conn = self._conns.get()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = fn(CursorTx(conn.cursor()))
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc
        return result

    def close(self) -> None:
        self._conns.close_all()
