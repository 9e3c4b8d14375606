"""The key-store schema, one logical schema for SQLite and PostgreSQL, as numbered migrations.

Tables
  meta   one row (id = 1): schema_version, the KME the store belongs to, a KEK check value
         and the audit head (audit_seq, audit_hash), updated with every audit append.
  peers  per peer KME, the unit size in bits (fixed by the first unit ingested).
  units  key material as ingested: available -> used (its material moved into a key, so
         ``sealed`` is NULL) -> erased (its key was erased or expired). ``seq`` orders the
         pool oldest first.
  keys   delivered keys: delivered -> retrieved (by some slaves) -> erased (all slaves) or
         expired; ``sealed`` is NULL once the material is gone.
  audit  the hash-chained audit log.

JSON lists and dicts are stored as canonical JSON *text* on both back ends (not jsonb, which
would renormalise them) so a record reads back exactly as it was hashed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """Column types that differ between the back ends."""

    name: str
    serial_pk: str
    bigint: str
    double: str
    blob: str
    boolean: str


SQLITE = Dialect(
    name="sqlite",
    serial_pk="INTEGER PRIMARY KEY AUTOINCREMENT",  # AUTOINCREMENT: seq values never reused
    bigint="INTEGER",
    double="REAL",
    blob="BLOB",
    boolean="INTEGER",
)
POSTGRES = Dialect(
    name="postgresql",
    serial_pk="BIGSERIAL PRIMARY KEY",
    bigint="BIGINT",
    double="DOUBLE PRECISION",
    blob="BYTEA",
    boolean="BOOLEAN",
)

# The meta table is created before any migration runs: it holds the schema version.
BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    kme_id TEXT,
    kek_check {blob},
    audit_seq {bigint} NOT NULL,
    audit_hash TEXT NOT NULL
)
"""

# MIGRATIONS[i] brings the schema from version i to version i + 1. Never edit a released
# entry: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE peers (
            peer_kme TEXT PRIMARY KEY,
            unit_bits INTEGER NOT NULL CHECK (unit_bits > 0)
        )
        """,
        """
        CREATE TABLE units (
            seq {serial_pk},
            unit_id TEXT NOT NULL UNIQUE,
            peer_kme TEXT NOT NULL,
            owner_kme TEXT NOT NULL,
            sealed {blob},
            state TEXT NOT NULL CHECK (state IN ('available', 'used', 'erased')),
            key_id TEXT,
            created_at_s {double} NOT NULL
        )
        """,
        "CREATE INDEX units_pool ON units (peer_kme, owner_kme, state, seq)",
        "CREATE INDEX units_key ON units (key_id)",
        """
        CREATE TABLE keys (
            seq {serial_pk},
            key_id TEXT NOT NULL UNIQUE,
            peer_kme TEXT NOT NULL,
            origin TEXT NOT NULL,
            unit_ids TEXT NOT NULL,
            size_bits INTEGER NOT NULL,
            master_sae TEXT NOT NULL,
            slave_saes TEXT NOT NULL,
            retrieved_by TEXT NOT NULL,
            sealed {blob},
            state TEXT NOT NULL
                CHECK (state IN ('delivered', 'retrieved', 'erased', 'expired')),
            synced {boolean} NOT NULL,
            created_at_s {double} NOT NULL,
            expires_at_s {double} NOT NULL
        )
        """,
        "CREATE INDEX keys_unsynced ON keys (synced, seq)",
        "CREATE INDEX keys_expiry ON keys (state, expires_at_s)",
        """
        CREATE TABLE audit (
            seq {bigint} PRIMARY KEY,
            time_s {double} NOT NULL,
            action TEXT NOT NULL,
            kme TEXT NOT NULL,
            key_ids TEXT NOT NULL,
            master_sae TEXT,
            slave_saes TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )
        """,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def render(sql: str, dialect: Dialect) -> str:
    """A schema statement with the dialect's column types filled in."""
    return sql.format(
        serial_pk=dialect.serial_pk,
        bigint=dialect.bigint,
        double=dialect.double,
        blob=dialect.blob,
        boolean=dialect.boolean,
    )
