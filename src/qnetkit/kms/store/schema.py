"""The key-store schema, one logical schema for SQLite and PostgreSQL, as numbered migrations.

Tables
  meta   one row (id = 1): schema_version, the KME the store belongs to, a KEK check value
         and the audit head (audit_seq, audit_hash), updated with every audit append.
  peers  per peer KME, the unit size in bits (fixed by the first unit ingested).
  units  key material as ingested: available -> used (its material moved into a key, so
         ``sealed`` is NULL) -> erased (its key was erased or expired). ``seq`` orders the
         pool oldest first.
  keys   delivered keys: delivered -> retrieved (by some or all slaves; kept for the re-fetch
         window) -> erased, or expired; ``sealed`` is NULL once the material is gone.
  audit  the hash-chained audit log.
  blocks (v2) ingested blocks: pending -> confirmed (units moved into ``units``) or
         quarantined; a keyed digest of the bytes and the two key-confirmation tags.
  pending_units (v2) sealed units of pending blocks, never served from here.

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
    false: str  # the literal of a false boolean (column defaults)


SQLITE = Dialect(
    name="sqlite",
    serial_pk="INTEGER PRIMARY KEY AUTOINCREMENT",  # AUTOINCREMENT: seq values never reused
    bigint="INTEGER",
    double="REAL",
    blob="BLOB",
    boolean="INTEGER",
    false="0",
)
POSTGRES = Dialect(
    name="postgresql",
    serial_pk="BIGSERIAL PRIMARY KEY",
    bigint="BIGINT",
    double="DOUBLE PRECISION",
    blob="BYTEA",
    boolean="BOOLEAN",
    false="FALSE",
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
    (
        # v2: block identity and key confirmation, simulated material, the re-fetch window.
        """
        CREATE TABLE blocks (
            block_id TEXT PRIMARY KEY,
            peer_kme TEXT NOT NULL,
            length_bytes {bigint} NOT NULL,
            unit_bits INTEGER NOT NULL,
            units INTEGER NOT NULL,
            digest TEXT NOT NULL,
            confirm_tag TEXT NOT NULL,
            peer_tag TEXT NOT NULL,
            simulated {boolean} NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'quarantined')),
            created_at_s {double} NOT NULL,
            decided_at_s {double}
        )
        """,
        "CREATE INDEX blocks_state ON blocks (state, peer_kme, created_at_s)",
        """
        CREATE TABLE pending_units (
            unit_id TEXT PRIMARY KEY,
            block_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            owner_kme TEXT NOT NULL,
            sealed {blob} NOT NULL
        )
        """,
        "CREATE INDEX pending_units_block ON pending_units (block_id, idx)",
        "ALTER TABLE units ADD COLUMN block_id TEXT",
        "ALTER TABLE units ADD COLUMN simulated {boolean} NOT NULL DEFAULT {false}",
        "ALTER TABLE keys ADD COLUMN simulated {boolean} NOT NULL DEFAULT {false}",
        # JSON {slave SAE: first retrieval time}; '{{}}' is '{}' after str.format.
        "ALTER TABLE keys ADD COLUMN retrieved_at TEXT NOT NULL DEFAULT '{{}}'",
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
        false=dialect.false,
    )
