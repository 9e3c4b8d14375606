"""The SQL key store that SQLite and PostgreSQL share, assembled from its parts.

A back end supplies only connections and transactions (``_transaction``) and its row-locking
clauses; everything else is written once:

  sql.py    transactions, cursors, per-thread connections, column lists
  rows.py   row mapping (KeyRow, blocks) and small helpers
  core.py   schema migration, the audit chain, unit helpers
  units.py  blocks, key confirmation bookkeeping, the pool, reservation
  keys.py   assignment, retrieval (delivery semantics), expiry
"""

from __future__ import annotations

from qnetkit.kms.store.keys import KeyOps
from qnetkit.kms.store.rows import KeyRow, compose, units_per_key
from qnetkit.kms.store.sql import CursorTx, Row, ThreadConnections, Tx
from qnetkit.kms.store.units import UnitOps


class SqlKeyStore(UnitOps, KeyOps):
    """The :class:`~qnetkit.kms.store.base.KeyStore` logic over a SQL back end."""


__all__ = ["CursorTx", "KeyRow", "Row", "SqlKeyStore", "ThreadConnections", "Tx", "compose",
           "units_per_key"]
