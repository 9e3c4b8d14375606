"""Key stores: :func:`open_store` picks the back end from a URL.

``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a bare file path: SQLite.
``postgresql://...`` (or ``postgres://...``): PostgreSQL.
"""

from __future__ import annotations

import re

from qnetkit.kms.errors import StoreError
from qnetkit.kms.store.base import KeyStore

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")
# A libpq "host=... dbname=..." string would otherwise be taken for a SQLite file name.
_LIBPQ_KEYWORDS = re.compile(r"^\s*(host|hostaddr|dbname|user|port|service)\s*=")


def open_store(url: str, *, kme_id: str, kek: bytes) -> KeyStore:
    """Open (and create or upgrade, see ``migrate``) the key store at ``url``."""
    store: KeyStore
    # Back ends are imported here, not at module level: SQLite users need no psycopg, and
    # the audit module imports this package's base module.
    if url.startswith(POSTGRES_PREFIXES):
        from qnetkit.kms.store.postgres import PostgresKeyStore

        store = PostgresKeyStore(url, kme_id=kme_id, kek=kek)
    elif _LIBPQ_KEYWORDS.match(url):
        raise StoreError("give a PostgreSQL store as a postgresql://... URL")
    elif url.startswith(SQLITE_PREFIX) or "://" not in url:
        from qnetkit.kms.store.sqlite import SqliteKeyStore

        path = url[len(SQLITE_PREFIX) :] if url.startswith(SQLITE_PREFIX) else url
        store = SqliteKeyStore(path, kme_id=kme_id, kek=kek)
    else:
        scheme = url.split("://", 1)[0]
        raise StoreError(
            f"unknown key-store URL scheme {scheme!r}: use sqlite:///PATH or postgresql://..."
        )
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


__all__ = ["KeyStore", "open_store"]
