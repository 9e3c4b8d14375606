"""The SQL plumbing both back ends share: transactions, cursors, connections, column lists.

The store's SQL is written once, with ``?`` placeholders, in the subset both SQLite and
PostgreSQL understand; :class:`CursorTx` rewrites the placeholder for drivers that use another.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

from qnetkit.kms.errors import StoreError

Row = tuple[Any, ...]
T = TypeVar("T")
C = TypeVar("C")

IN_CHUNK = 500  # IDs per IN (...) list: well below SQLite's bound-parameter limit
AUDIT_PAGE = 1000

KEY_COLUMNS = (
    "key_id, peer_kme, origin, unit_ids, size_bits, master_sae, slave_saes, retrieved_by, "
    "sealed, state, synced, created_at_s, expires_at_s, simulated, retrieved_at"
)
AUDIT_COLUMNS = (
    "seq, time_s, action, kme, key_ids, master_sae, slave_saes, detail, prev_hash, hash"
)
BLOCK_COLUMNS = (
    "block_id, peer_kme, length_bytes, unit_bits, units, digest, confirm_tag, peer_tag, "
    "simulated, state, created_at_s, decided_at_s"
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


def chunks(ids: Sequence[str]) -> Iterator[tuple[str, Sequence[str]]]:
    """(placeholder list, IDs) pieces for ``IN (...)`` clauses."""
    for i in range(0, len(ids), IN_CHUNK):
        part = ids[i : i + IN_CHUNK]
        yield ", ".join("?" * len(part)), part
