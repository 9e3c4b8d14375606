"""The key store, one suite for both back ends (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from qnetkit.errors import ParameterError
from qnetkit.kms.atrest import AtRestCipher, audit_key
from qnetkit.kms.audit import verify_chain
from qnetkit.kms.errors import InsufficientKeys, KeyNotFound, NotEntitled, StoreError, SyncConflict
from qnetkit.kms.store import open_store
from qnetkit.kms.store.base import Assignment, KeyStore, KeyUnit
from qnetkit.kms.store.postgres import PostgresKeyStore
from qnetkit.kms.store.schema import SCHEMA_VERSION
from qnetkit.kms.store.sqlite import SqliteKeyStore

Raw = Callable[..., list[tuple[Any, ...]]]
TTL = 3600.0


def make_units(n: int, owner: str = "A", nbytes: int = 32) -> list[KeyUnit]:
    return [KeyUnit(str(uuid.uuid4()), os.urandom(nbytes), owner) for _ in range(n)]


def reserve(
    store: KeyStore, *, number: int = 1, size_bits: int = 256, slaves: Sequence[str] = ("s1",),
    keep: bool = True, now_s: float = 10.0, ttl_s: float = TTL, peer: str = "B",
    master: str = "m1",
) -> list[tuple[Assignment, bytes]]:
    got = store.reserve(peer_kme=peer, master_sae=master, slave_saes=slaves, number=number,
                        size_bits=size_bits, now_s=now_s, ttl_s=ttl_s, keep_material=keep)
    return [(a, k.material) for a, k in got]


def chain_ok(store: KeyStore, kek: bytes) -> bool:
    verdict = verify_chain(store.audit_records(), audit_key(kek), store.audit_head())
    assert verdict.ok, verdict.reason
    return True


@pytest.fixture
def store(store_url: str, kek: bytes) -> Iterator[KeyStore]:
    s = open_store(store_url, kme_id="A", kek=kek)
    yield s
    s.close()


@pytest.fixture
def peer_store(url_factory: Callable[[], str], kek: bytes) -> Iterator[KeyStore]:
    """The other end of the link (KME B), in its own database."""
    s = open_store(url_factory(), kme_id="B", kek=kek)
    yield s
    s.close()


# ---- ingest --------------------------------------------------------------------------------


def test_ingest_is_idempotent(store: KeyStore, kek: bytes) -> None:
    units = make_units(5)
    assert store.ingest("B", units, now_s=1.0) == 5
    assert store.ingest("B", units, now_s=2.0) == 0
    assert store.ingest("B", units[3:] + make_units(2), now_s=3.0) == 2
    status = store.pool_status("B")
    assert (status.available_units, status.unit_bits) == (7, 256)
    records = list(store.audit_records())
    assert [r.action for r in records] == ["ingest"] * 3
    assert [r.detail["count"] for r in records] == [5, 0, 2]
    assert records[0].detail["first_unit"] == units[0].unit_id
    assert records[0].detail["last_unit"] == units[-1].unit_id
    assert chain_ok(store, kek)


def test_ingest_rejects_other_unit_sizes_and_owners(store: KeyStore) -> None:
    store.ingest("B", make_units(2), now_s=1.0)
    with pytest.raises(StoreError):
        store.ingest("B", make_units(2, nbytes=16), now_s=2.0)
    with pytest.raises(StoreError):
        store.ingest("C", make_units(1) + make_units(1, nbytes=16), now_s=2.0)
    with pytest.raises(StoreError):
        store.ingest("B", make_units(1, owner="C"), now_s=2.0)
    assert store.pool_status("B").available_units == 2
    assert store.pool_status("C").unit_bits == 0
    # Another peer may use another unit size.
    assert store.ingest("C", make_units(3, nbytes=16), now_s=3.0) == 3
    assert store.pool_status("C").unit_bits == 128


def test_pool_counts_only_units_this_kme_owns(store: KeyStore) -> None:
    store.ingest("B", make_units(3, owner="A") + make_units(4, owner="B"), now_s=1.0)
    assert store.pool_status("B").available_units == 3
    assert store.pool_status("C").available_units == 0


# ---- reserve -------------------------------------------------------------------------------


def test_reserve_takes_oldest_units_of_owner_and_peer(store: KeyStore) -> None:
    first = make_units(2, owner="A")
    store.ingest("C", make_units(3, owner="A"), now_s=1.0)  # other link
    store.ingest("B", make_units(2, owner="B") + first[:1], now_s=2.0)
    store.ingest("B", first[1:] + make_units(5, owner="A"), now_s=3.0)
    got = reserve(store, number=2)
    assert [a.unit_ids for a, _ in got] == [(first[0].unit_id,), (first[1].unit_id,)]
    assert [a.key_id for a, _ in got] == [first[0].unit_id, first[1].unit_id]
    assert [m for _, m in got] == [first[0].material, first[1].material]
    assert store.pool_status("B").available_units == 5
    assert store.pool_status("C").available_units == 3


def test_reserve_composes_and_truncates(store: KeyStore) -> None:
    units = make_units(6)
    store.ingest("B", units, now_s=1.0)
    ((a, m),) = reserve(store, size_bits=512)
    assert a.unit_ids == (units[0].unit_id, units[1].unit_id)
    assert m == units[0].material + units[1].material
    ((a, m),) = reserve(store, size_bits=128)
    assert a.unit_ids == (units[2].unit_id,) and m == units[2].material[:16]
    ((a, m),) = reserve(store, size_bits=264)  # 33 bytes: two units, cut after one byte
    assert a.unit_ids == (units[3].unit_id, units[4].unit_id)
    assert m == (units[3].material + units[4].material)[:33]
    assert a.size_bits == 264 and a.slave_saes == ("s1",) and a.master_sae == "m1"
    assert store.pool_status("B").available_units == 1


def test_insufficient_keys_changes_nothing(store: KeyStore, raw: Raw, store_url: str) -> None:
    with pytest.raises(InsufficientKeys):
        reserve(store)  # nothing shared with B yet
    store.ingest("B", make_units(3), now_s=1.0)
    head = store.audit_head()
    with pytest.raises(InsufficientKeys):
        reserve(store, number=2, size_bits=512)  # needs 4 units
    assert store.pool_status("B").available_units == 3
    assert store.audit_head() == head
    assert raw(store_url, "SELECT COUNT(*) FROM keys")[0][0] == 0
    assert len(reserve(store, number=3)) == 3


@pytest.mark.parametrize(
    ("number", "size_bits", "slaves"),
    [(0, 256, ("s1",)), (1, 100, ("s1",)), (1, 0, ("s1",)), (1, 256, ()), (1, 256, ("s", "s"))],
)
def test_reserve_rejects_bad_requests(
    store: KeyStore, number: int, size_bits: int, slaves: tuple[str, ...]
) -> None:
    store.ingest("B", make_units(4), now_s=1.0)
    with pytest.raises(ParameterError):
        reserve(store, number=number, size_bits=size_bits, slaves=slaves)
    assert store.pool_status("B").available_units == 4


def test_material_dropped_at_master_when_not_kept(
    store: KeyStore, raw: Raw, store_url: str, kek: bytes
) -> None:
    store.ingest("B", make_units(2), now_s=1.0)
    ((a, m),) = reserve(store, keep=False)
    assert len(m) == 32
    with pytest.raises(KeyNotFound):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=11.0)
    assert store.lookup(a.key_id) == a
    assert [x.key_id for x in store.unsynced()] == [a.key_id]  # the peer still needs it
    assert raw(store_url, "SELECT sealed, state FROM keys") == [(None, "erased")]
    assert raw(store_url, "SELECT state FROM units WHERE sealed IS NULL") == [("erased",)]
    assert [r.action for r in store.audit_records()][-2:] == ["deliver", "erase"]
    assert chain_ok(store, kek)


# ---- assign / retrieve ---------------------------------------------------------------------


def test_assign_at_peer_then_retrieve_gives_the_same_key(
    store: KeyStore, peer_store: KeyStore, kek: bytes
) -> None:
    units = make_units(6)
    store.ingest("B", units, now_s=1.0)
    peer_store.ingest("A", units, now_s=1.0)
    got = reserve(store, number=2, size_bits=384, keep=False)
    for a, _ in got:
        peer_store.assign(a, now_s=12.0, ttl_s=TTL)
    head = peer_store.audit_head()
    peer_store.assign(got[0][0], now_s=13.0, ttl_s=TTL)  # idempotent: no change, no record
    assert peer_store.audit_head() == head
    keys = peer_store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id for a, _ in got],
                               now_s=14.0)
    assert [k.material for k in keys] == [m for _, m in got]
    seen_at_b = peer_store.lookup(got[0][0].key_id)
    assert seen_at_b is not None and seen_at_b.peer_kme == "A"
    assert seen_at_b.unit_ids == got[0][0].unit_ids
    assert peer_store.unsynced() == []  # keys told by the peer are not ours to sync
    assert peer_store.pool_status("A").available_units == 0  # units owned by A: none for B
    assert [r.action for r in peer_store.audit_records()] == [
        "ingest", "assign", "assign", "retrieve", "erase",
    ]
    assert chain_ok(peer_store, kek)


def test_assign_accepts_the_receivers_view_of_peer_kme(
    store: KeyStore, peer_store: KeyStore
) -> None:
    units = make_units(1)
    store.ingest("B", units, now_s=1.0)
    peer_store.ingest("A", units, now_s=1.0)
    ((a, m),) = reserve(store, keep=False)
    peer_store.assign(
        Assignment(a.key_id, "A", a.unit_ids, a.size_bits, a.master_sae, a.slave_saes,
                   a.created_at_s),
        now_s=12.0, ttl_s=TTL,
    )
    (k,) = peer_store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=13.0)
    assert k.material == m


def test_assign_conflicts(store: KeyStore, peer_store: KeyStore) -> None:
    units = make_units(4)
    store.ingest("B", units, now_s=1.0)
    peer_store.ingest("A", units + make_units(1, owner="B"), now_s=1.0)
    own_unit = make_units(1, owner="B")
    peer_store.ingest("A", own_unit, now_s=1.0)
    (a, _), (b, _) = reserve(store, number=2)
    peer_store.assign(a, now_s=2.0, ttl_s=TTL)
    head = peer_store.audit_head()
    bad = [
        Assignment(str(uuid.uuid4()), "B", (str(uuid.uuid4()),), 256, "m1", ("s1",), 1.0),
        Assignment(a.key_id, "B", a.unit_ids, 256, "m1", ("s2",), 1.0),  # other slaves
        Assignment(b.key_id, "B", (b.key_id, a.unit_ids[0]), 512, "m1", ("s1",), 1.0),
        Assignment(own_unit[0].unit_id, "B", (own_unit[0].unit_id,), 256, "m1", ("s1",), 1.0),
        Assignment(b.key_id, "B", b.unit_ids, 512, "m1", ("s1",), 1.0),  # 1 unit is 256 bits
        Assignment(b.key_id, "C", b.unit_ids, 256, "m1", ("s1",), 1.0),  # another link
        Assignment(units[3].unit_id, "B", (units[2].unit_id,), 256, "m1", ("s1",), 1.0),
    ]
    for x in bad:
        with pytest.raises(SyncConflict):
            peer_store.assign(x, now_s=3.0, ttl_s=TTL)
    assert peer_store.audit_head() == head
    peer_store.assign(b, now_s=4.0, ttl_s=TTL)


def test_retrieve_twice_is_key_not_found(store: KeyStore) -> None:
    store.ingest("B", make_units(2), now_s=1.0)
    ((a, m),) = reserve(store)
    (k,) = store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=11.0)
    assert k.material == m and k.key_id == a.key_id
    with pytest.raises(KeyNotFound):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=12.0)
    with pytest.raises(KeyNotFound):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[str(uuid.uuid4())], now_s=12.0)


def test_retrieve_checks_entitlement_all_or_nothing(store: KeyStore) -> None:
    store.ingest("B", make_units(3), now_s=1.0)
    (a, ma), (b, _) = reserve(store, number=2)
    ((c, _),) = reserve(store, slaves=("s9",))
    with pytest.raises(NotEntitled):
        store.retrieve(slave_sae="s2", master_sae="m1", key_ids=[a.key_id], now_s=11.0)
    with pytest.raises(NotEntitled):
        store.retrieve(slave_sae="s1", master_sae="m2", key_ids=[a.key_id], now_s=11.0)
    with pytest.raises(NotEntitled):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id, c.key_id], now_s=11.0)
    with pytest.raises(KeyNotFound):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id, a.key_id], now_s=11.0)
    (k,) = store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=11.0)
    assert k.material == ma  # the failed calls took nothing
    with pytest.raises(KeyNotFound):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[b.key_id, a.key_id], now_s=12.0)
    assert len(store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[b.key_id], now_s=12.0)) == 1


def test_multi_slave_key_erased_after_every_slave(
    store: KeyStore, raw: Raw, store_url: str, kek: bytes
) -> None:
    store.ingest("B", make_units(1), now_s=1.0)
    ((a, m),) = reserve(store, slaves=("s1", "s2", "s3"))
    for i, sae in enumerate(("s2", "s1")):
        (k,) = store.retrieve(slave_sae=sae, master_sae="m1", key_ids=[a.key_id], now_s=11.0 + i)
        assert k.material == m
        assert raw(store_url, "SELECT state FROM keys") == [("retrieved",)]
    with pytest.raises(KeyNotFound):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=13.0)
    (k,) = store.retrieve(slave_sae="s3", master_sae="m1", key_ids=[a.key_id], now_s=14.0)
    assert k.material == m
    assert raw(store_url, "SELECT state, sealed FROM keys") == [("erased", None)]
    assert raw(store_url, "SELECT state, sealed FROM units") == [("erased", None)]
    records = list(store.audit_records())
    assert [r.action for r in records][-2:] == ["retrieve", "erase"]
    assert records[-1].key_ids == (a.key_id,)
    assert chain_ok(store, kek)


def test_expire(store: KeyStore, raw: Raw, store_url: str, kek: bytes) -> None:
    store.ingest("B", make_units(4), now_s=1.0)
    ((a, _),) = reserve(store, now_s=10.0, ttl_s=10.0)
    ((b, _),) = reserve(store, now_s=10.0, ttl_s=100.0)
    ((c, _),) = reserve(store, now_s=10.0, ttl_s=5.0, keep=False)
    assert store.expire(now_s=19.0) == 0
    with pytest.raises(KeyNotFound):  # past its expiry even before expire() runs
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=20.0)
    assert store.expire(now_s=20.0) == 1
    assert store.expire(now_s=21.0) == 0
    states: dict[str, str] = dict(raw(store_url, "SELECT key_id, state FROM keys"))
    assert states == {a.key_id: "expired", b.key_id: "delivered", c.key_id: "erased"}
    assert raw(store_url, "SELECT state, sealed FROM units WHERE key_id = ?", (a.key_id,)) == [
        ("erased", None)
    ]
    (rec,) = [r for r in store.audit_records() if r.action == "expire"]
    assert rec.key_ids == (a.key_id,) and rec.time_s == 20.0
    assert store.lookup(a.key_id) == a
    assert chain_ok(store, kek)


def test_lookup_unsynced_mark_synced(store: KeyStore) -> None:
    store.ingest("B", make_units(5), now_s=1.0)
    got = reserve(store, number=2) + reserve(store, number=1, now_s=11.0)
    ids = [a.key_id for a, _ in got]
    assert [a.key_id for a in store.unsynced()] == ids
    assert [a.key_id for a in store.unsynced(limit=2)] == ids[:2]
    assert store.lookup(ids[2]) == got[2][0]
    assert store.lookup(str(uuid.uuid4())) is None
    store.mark_synced([*ids[:2], str(uuid.uuid4())])
    assert [a.key_id for a in store.unsynced()] == ids[2:]
    store.mark_synced([])
    store.mark_synced(ids)
    assert store.unsynced() == []


def test_put_key(store: KeyStore, kek: bytes) -> None:
    a = Assignment(str(uuid.uuid4()), "B", (), 256, "m1", ("s1",), 5.0, origin="pqc")
    material = os.urandom(32)
    store.put_key(a, material, now_s=5.0, ttl_s=TTL, synced=False)
    store.put_key(a, material, now_s=6.0, ttl_s=TTL, synced=False)  # idempotent
    assert store.unsynced() == [a] and store.lookup(a.key_id) == a
    with pytest.raises(SyncConflict):
        store.put_key(Assignment(a.key_id, "B", (), 256, "m2", ("s1",), 5.0, origin="pqc"),
                      material, now_s=6.0, ttl_s=TTL, synced=False)
    with pytest.raises(ParameterError):
        store.put_key(Assignment(str(uuid.uuid4()), "B", (), 512, "m1", ("s1",), 5.0),
                      material, now_s=6.0, ttl_s=TTL, synced=True)
    (k,) = store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=7.0)
    assert k.material == material
    relayed = Assignment(str(uuid.uuid4()), "C", (), 256, "m1", ("s1",), 5.0, origin="relay")
    store.put_key(relayed, material, now_s=8.0, ttl_s=TTL, synced=True)
    assert [x.key_id for x in store.unsynced()] == [a.key_id]
    records = list(store.audit_records())
    assert [(r.action, r.detail.get("origin")) for r in records] == [
        ("deliver", "pqc"), ("retrieve", None), ("erase", None), ("assign", "relay"),
    ]
    assert chain_ok(store, kek)


def test_audit_append(store: KeyStore, kek: bytes) -> None:
    store.audit_append(action="relay", key_ids=["k1"], master_sae="m1", slave_saes=["s1"],
                       detail={"hops": ["A", "B"], "quote": 'a "b" ]c\\'}, now_s=3.5)
    (rec,) = store.audit_records()
    assert (rec.seq, rec.action, rec.kme, rec.key_ids) == (1, "relay", "A", ("k1",))
    assert rec.time_s == 3.5
    assert rec.detail == {"hops": ["A", "B"], "quote": 'a "b" ]c\\'}
    assert store.audit_head() == (1, rec.hash)
    assert list(store.audit_records(start_seq=2)) == []
    assert chain_ok(store, kek)


# ---- at rest -------------------------------------------------------------------------------


def test_material_never_stored_in_plaintext(
    store: KeyStore, store_url: str, raw: Raw, backend: str
) -> None:
    units = make_units(8)
    store.ingest("B", units, now_s=1.0)
    got = reserve(store, number=2, size_bits=512)  # keys kept (sealed) at the master
    composed = [m for _, m in got]
    secrets = [u.material for u in units] + composed
    if backend == "sqlite":
        path = Path(store_url[len("sqlite:///"):])
        blob = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert len(blob) > 0
        assert [s for s in secrets if s in blob or s.hex().encode() in blob] == []
    else:
        dump = "".join(
            str(row)
            for table in ("units", "keys", "audit", "meta")
            for row in raw(store_url, f"SELECT t::text FROM {table} t")
        )
        assert [s for s in secrets if s.hex() in dump] == []
        sealed = [bytes(r[0]) for r in raw(store_url, "SELECT sealed FROM units "
                                                     "WHERE sealed IS NOT NULL")]
        assert len(sealed) == 4 and all(len(b) == 12 + 32 + 16 for b in sealed)
        assert [s for s in secrets if any(s in b for b in sealed)] == []


def _direct(url: str, kme_id: str, kek: bytes) -> SqliteKeyStore | PostgresKeyStore:
    """A store opened without migrate(), i.e. without the start-up KEK check."""
    if url.startswith("sqlite:///"):
        return SqliteKeyStore(url[len("sqlite:///"):], kme_id=kme_id, kek=kek)
    return PostgresKeyStore(url, kme_id=kme_id, kek=kek)


def test_wrong_kek_is_a_store_error(store: KeyStore, store_url: str, raw: Raw) -> None:
    units = make_units(2)
    store.ingest("B", units, now_s=1.0)
    wrong = bytes(range(1, 33))
    with pytest.raises(StoreError, match="key-encryption key does not match"):
        open_store(store_url, kme_id="A", kek=wrong)
    unchecked = _direct(store_url, "A", wrong)
    try:
        with pytest.raises(StoreError, match="key-encryption key does not match") as exc:
            reserve(unchecked)
        assert units[0].material.hex() not in str(exc.value)
    finally:
        unchecked.close()
    assert store.pool_status("B").available_units == 2  # the failed reserve took nothing
    (blob,) = raw(store_url, "SELECT sealed FROM units WHERE unit_id = ?", (units[0].unit_id,))[0]
    with pytest.raises(StoreError):
        AtRestCipher(wrong).open("unit:" + units[0].unit_id, bytes(blob))


def test_store_belongs_to_one_kme(store: KeyStore, store_url: str, kek: bytes) -> None:
    with pytest.raises(StoreError, match="belongs to KME A"):
        open_store(store_url, kme_id="B", kek=kek)


def test_migrate_is_idempotent(store: KeyStore, store_url: str, kek: bytes, raw: Raw) -> None:
    store.ingest("B", make_units(2), now_s=1.0)
    store.migrate()
    again = open_store(store_url, kme_id="A", kek=kek)
    try:
        assert again.pool_status("B").available_units == 2
        assert again.audit_head() == store.audit_head()
    finally:
        again.close()
    assert raw(store_url, "SELECT schema_version FROM meta") == [(SCHEMA_VERSION,)]
    if store_url.startswith("sqlite:///"):
        assert raw(store_url, "PRAGMA journal_mode") == [("wal",)]


def test_v1_store_upgrades_and_keeps_its_units(
    store_url: str, kek: bytes, raw: Raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made by the previous release (schema v1) migrates to v2 in place; its units,
    ingested before blocks were tracked, stay available."""
    from qnetkit.kms.store import core, schema

    with monkeypatch.context() as m:
        m.setattr(core, "MIGRATIONS", schema.MIGRATIONS[:1])
        m.setattr(core, "SCHEMA_VERSION", 1)
        open_store(store_url, kme_id="A", kek=kek).close()
    assert raw(store_url, "SELECT schema_version FROM meta") == [(1,)]
    unit = make_units(1)[0]
    raw(store_url, "INSERT INTO peers (peer_kme, unit_bits) VALUES (?, ?)", ("B", 256))
    raw(store_url, "INSERT INTO units (unit_id, peer_kme, owner_kme, sealed, state, "
        "created_at_s) VALUES (?, 'B', 'A', ?, 'available', 1.0)",
        (unit.unit_id, AtRestCipher(kek).seal("unit:" + unit.unit_id, unit.material)))
    s = open_store(store_url, kme_id="A", kek=kek)
    try:
        assert raw(store_url, "SELECT schema_version FROM meta") == [(SCHEMA_VERSION,)]
        ((a, m),) = reserve(s)
        assert (a.key_id, m) == (unit.unit_id, unit.material)
        (k,) = s.retrieve(slave_sae="s1", master_sae="m1", key_ids=[a.key_id], now_s=11.0)
        assert k.material == unit.material
    finally:
        s.close()


def test_closed_store_refuses_work(store_url: str, kek: bytes) -> None:
    s = open_store(store_url, kme_id="A", kek=kek)
    s.close()
    with pytest.raises(StoreError):
        s.pool_status("B")


# ---- concurrency ---------------------------------------------------------------------------


def _check_unique(results: Sequence[tuple[str, tuple[str, ...]]]) -> None:
    key_ids = [k for k, _ in results]
    unit_ids = [u for _, us in results for u in us]
    assert len(set(key_ids)) == len(key_ids)
    assert len(set(unit_ids)) == len(unit_ids)


def test_threads_never_share_a_unit(store: KeyStore, kek: bytes, raw: Raw, store_url: str) -> None:
    store.ingest("B", make_units(420), now_s=1.0)
    results: list[tuple[str, tuple[str, ...]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(50):
                got = reserve(store)
                with lock:
                    results.extend((a.key_id, a.unit_ids) for a, _ in got)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 400
    _check_unique(results)
    assert store.pool_status("B").available_units == 20
    assert raw(store_url, "SELECT COUNT(*) FROM keys")[0][0] == 400
    assert chain_ok(store, kek)


def _reserve_in_process(url: str, kek: bytes, calls: int, start: Any, out: Any) -> None:
    """Process body: open an own store on the shared database and reserve ``calls`` times."""
    try:
        s = open_store(url, kme_id="A", kek=kek)
        try:
            start.wait(60)
            got: list[tuple[str, tuple[str, ...]]] = []
            for i in range(calls):
                for a, _ in reserve(s, number=1 + i % 2, size_bits=256 * (1 + i % 3)):
                    got.append((a.key_id, a.unit_ids))
            out.put(("ok", got))
        finally:
            s.close()
    except BaseException as exc:
        out.put(("error", repr(exc)))


def test_processes_never_share_a_unit(store: KeyStore, store_url: str, kek: bytes) -> None:
    calls = 30  # 90 units per process (1 or 2 keys of 1 to 3 units per call)
    store.ingest("B", make_units(400), now_s=1.0)
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding connections
    start = ctx.Barrier(3)
    out = ctx.Queue()
    procs = [ctx.Process(target=_reserve_in_process, args=(store_url, kek, calls, start, out))
             for _ in range(3)]
    for p in procs:
        p.start()
    answers = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert [status for status, _ in answers] == ["ok"] * 3, answers
    results = [r for _, got in answers for r in got]
    _check_unique(results)
    used = sum(len(us) for _, us in results)
    assert store.pool_status("B").available_units == 400 - used
    assert chain_ok(store, kek)


def test_committed_work_survives_kill_9(store_url: str, kek: bytes) -> None:
    code = textwrap.dedent(
        f"""
        import os, signal, uuid
        from qnetkit.kms.store import open_store
        from qnetkit.kms.store.base import KeyUnit
        s = open_store({store_url!r}, kme_id="A", kek={kek!r})
        s.ingest("B", [KeyUnit(str(uuid.uuid4()), os.urandom(32), "A") for _ in range(5)],
                 now_s=1.0)
        got = s.reserve(peer_kme="B", master_sae="m1", slave_saes=["s1"], number=2,
                        size_bits=256, now_s=2.0, ttl_s=60.0, keep_material=True)
        print(" ".join(a.key_id for a, _ in got), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == -9, proc.stderr
    key_ids = proc.stdout.split()
    s = open_store(store_url, kme_id="A", kek=kek)
    try:
        assert [a.key_id for a in s.unsynced()] == key_ids
        assert s.pool_status("B").available_units == 3
        keys = s.retrieve(slave_sae="s1", master_sae="m1", key_ids=key_ids, now_s=3.0)
        assert [len(k.material) for k in keys] == [32, 32]
        assert chain_ok(s, kek)
    finally:
        s.close()


# ---- open_store ----------------------------------------------------------------------------


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kek: bytes) -> None:
    monkeypatch.chdir(tmp_path)
    for url, path in [
        ("sqlite:///rel.db", tmp_path / "rel.db"),
        (f"sqlite:///{tmp_path / 'abs.db'}", tmp_path / "abs.db"),
        (str(tmp_path / "bare.db"), tmp_path / "bare.db"),
    ]:
        s = open_store(url, kme_id="A", kek=kek)
        s.close()
        assert path.exists()
        assert path.stat().st_mode & 0o077 == 0  # owner-only
    for bad in ("mysql://x/y", "sqlite:///:memory:", "host=localhost dbname=x", ""):
        with pytest.raises(StoreError):
            open_store(bad, kme_id="A", kek=kek)
    with pytest.raises(StoreError):
        open_store("sqlite:///k.db", kme_id="A", kek=b"short")
    with pytest.raises(StoreError, match="cannot connect"):
        open_store("postgresql://nobody@127.0.0.1:1/none", kme_id="A", kek=kek)


def test_reprs_carry_no_material(tmp_path: Path, kek: bytes) -> None:
    s = open_store(str(tmp_path / "r.db"), kme_id="A", kek=kek)
    try:
        units = make_units(1)
        s.ingest("B", units, now_s=1.0)
        got = s.reserve(peer_kme="B", master_sae="m", slave_saes=["s"], number=1,
                        size_bits=256, now_s=2.0, ttl_s=60.0, keep_material=True)
        text = repr(s) + repr(got) + repr(units)
        assert units[0].material.hex() not in text and str(units[0].material) not in text
        assert kek.hex() not in repr(AtRestCipher(kek))
    finally:
        s.close()
