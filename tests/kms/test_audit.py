"""The audit hash chain: hashing, verification, tamper detection in real stores, export."""

from __future__ import annotations

import dataclasses
import hmac
import io
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from hashlib import sha256
from typing import Any

import pytest

from qnetkit.kms.atrest import audit_key
from qnetkit.kms.audit import (
    GENESIS_HASH,
    export_jsonl,
    export_rfc5424,
    record_hash,
    verify_chain,
)
from qnetkit.kms.store import open_store
from qnetkit.kms.store.base import AuditRecord, KeyStore, KeyUnit

Raw = Callable[..., list[tuple[Any, ...]]]
AKEY = bytes(range(32))


def chain(n: int, key: bytes = AKEY) -> list[AuditRecord]:
    """``n`` records hashed as a store would write them."""
    out: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        fields: dict[str, Any] = dict(
            seq=seq, time_s=1000.0 + seq / 8, action="deliver", kme="A",
            key_ids=(f"k{seq}",), master_sae="m1", slave_saes=("s1",),
            detail={"size_bits": 256, "number": 1},
        )
        h = record_hash(key, prev, **fields)
        out.append(AuditRecord(**fields, prev_hash=prev, hash=h))
        prev = h
    return out


def head(records: list[AuditRecord]) -> tuple[int, str]:
    return (records[-1].seq, records[-1].hash) if records else (0, GENESIS_HASH)


# ---- record_hash / verify_chain on records in memory -------------------------------------


def test_record_hash_is_hmac_over_prev_hash_and_canonical_json() -> None:
    detail = {"b": 1, "a": [1, 2]}
    got = record_hash(AKEY, GENESIS_HASH, 1, 2.5, "ingest", "A", [], None, [], detail)
    body = (
        '{"action":"ingest","detail":{"a":[1,2],"b":1},"key_ids":[],"kme":"A",'
        '"master_sae":null,"seq":1,"slave_saes":[],"time_s":2.5}'
    )
    want = hmac.new(AKEY, bytes(32) + body.encode(), sha256).hexdigest()
    assert got == want
    assert record_hash(bytes(32), GENESIS_HASH, 1, 2.5, "ingest", "A", [], None, [], detail) != got


def test_intact_chain_verifies() -> None:
    records = chain(5)
    verdict = verify_chain(records, AKEY, head(records))
    assert (verdict.ok, verdict.records, verdict.first_bad_seq) == (True, 5, None)
    assert verify_chain([], AKEY, (0, GENESIS_HASH)).ok


def test_wrong_audit_key_fails_at_the_first_record() -> None:
    records = chain(3)
    verdict = verify_chain(records, bytes(32), head(records))
    assert (verdict.ok, verdict.first_bad_seq) == (False, 1)


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        (lambda r: [*r[:2], dataclasses.replace(r[2], detail={"size_bits": 512}), *r[3:]], 3),
        (lambda r: [*r[:2], dataclasses.replace(r[2], key_ids=("k9",)), *r[3:]], 3),
        (lambda r: [dataclasses.replace(r[0], time_s=0.0), *r[1:]], 1),
        (lambda r: r[:2] + r[3:], 3),  # middle record deleted
        (lambda r: r[:4], 5),  # last record deleted
        (lambda r: [r[0], r[2], r[1], r[3], r[4]], 2),  # two records swapped
        # swapped and renumbered: the seqs look right, the links do not
        (lambda r: [r[0], dataclasses.replace(r[2], seq=2), dataclasses.replace(r[1], seq=3),
                    r[3], r[4]], 2),
        (lambda r: r[1:], 1),  # first record deleted
    ],
)
def test_tampering_is_detected(
    tamper: Callable[[list[AuditRecord]], list[AuditRecord]], first_bad: int
) -> None:
    records = chain(5)
    verdict = verify_chain(tamper(records), AKEY, head(records))
    assert not verdict.ok
    assert verdict.first_bad_seq == first_bad, verdict.reason


def test_head_row_must_match() -> None:
    records = chain(3)
    assert verify_chain(records, AKEY, (2, records[1].hash)).first_bad_seq == 3
    verdict = verify_chain(records, AKEY, (3, "ab" * 32))
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)


# ---- tampering with a real store -----------------------------------------------------------


@pytest.fixture
def audited(store_url: str, kek: bytes) -> Iterator[KeyStore]:
    """A store with 6 audit records: ingest, 4 x deliver, relay."""
    s = open_store(store_url, kme_id="A", kek=kek)
    s.ingest("B", [KeyUnit(str(uuid.uuid4()), os.urandom(32), "A") for _ in range(8)], now_s=1.0)
    for i in range(4):
        s.reserve(peer_kme="B", master_sae="m1", slave_saes=["s1"], number=1, size_bits=256,
                  now_s=2.0 + i, ttl_s=60.0, keep_material=True)
    s.audit_append(action="relay", key_ids=["x"], master_sae=None, slave_saes=[],
                   detail={"hop": 1}, now_s=9.0)
    yield s
    s.close()


def _verdict(store: KeyStore, kek: bytes) -> tuple[bool, int | None]:
    v = verify_chain(store.audit_records(), audit_key(kek), store.audit_head())
    return v.ok, v.first_bad_seq


def test_store_chain_verifies(audited: KeyStore, kek: bytes) -> None:
    assert _verdict(audited, kek) == (True, None)
    assert audited.audit_head()[0] == 6


def test_altered_row_is_detected(audited: KeyStore, kek: bytes, raw: Raw, store_url: str) -> None:
    raw(store_url, "UPDATE audit SET master_sae = ? WHERE seq = 3", ("mallory",))
    assert _verdict(audited, kek) == (False, 3)


def test_altered_detail_is_detected(
    audited: KeyStore, kek: bytes, raw: Raw, store_url: str
) -> None:
    raw(store_url, "UPDATE audit SET detail = ? WHERE seq = 2", ('{"number":1,"size_bits":128}',))
    assert _verdict(audited, kek) == (False, 2)


def test_deleted_middle_row_is_detected(
    audited: KeyStore, kek: bytes, raw: Raw, store_url: str
) -> None:
    raw(store_url, "DELETE FROM audit WHERE seq = 4")
    assert _verdict(audited, kek) == (False, 4)


def test_deleted_last_row_is_detected(
    audited: KeyStore, kek: bytes, raw: Raw, store_url: str
) -> None:
    raw(store_url, "DELETE FROM audit WHERE seq = 6")
    assert _verdict(audited, kek) == (False, 6)


def test_swapped_rows_are_detected(
    audited: KeyStore, kek: bytes, raw: Raw, store_url: str
) -> None:
    raw(store_url, "UPDATE audit SET seq = -1 WHERE seq = 2")
    raw(store_url, "UPDATE audit SET seq = 2 WHERE seq = 3")
    raw(store_url, "UPDATE audit SET seq = 3 WHERE seq = -1")
    assert _verdict(audited, kek) == (False, 2)


def test_forged_row_with_recomputed_plain_hash_is_detected(
    audited: KeyStore, kek: bytes, raw: Raw, store_url: str
) -> None:
    # Without the KEK a forger can only guess the HMAC key: here, the all-zero key.
    rec = list(audited.audit_records())[4]
    forged = record_hash(bytes(32), rec.prev_hash, rec.seq, rec.time_s, rec.action, rec.kme,
                         ("other",), rec.master_sae, rec.slave_saes, rec.detail)
    raw(store_url, "UPDATE audit SET key_ids = ?, hash = ? WHERE seq = 5", ('["other"]', forged))
    assert _verdict(audited, kek) == (False, 5)


# ---- export --------------------------------------------------------------------------------


def test_export_jsonl_has_every_field() -> None:
    records = chain(3)
    out = io.StringIO()
    assert export_jsonl(records, out) == 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    back = [json.loads(line) for line in lines]
    assert back[1] == {
        "seq": 2, "time_s": records[1].time_s, "action": "deliver", "kme": "A",
        "key_ids": ["k2"], "master_sae": "m1", "slave_saes": ["s1"],
        "detail": {"size_bits": 256, "number": 1}, "prev_hash": records[0].hash,
        "hash": records[1].hash,
    }
    rebuilt = [
        AuditRecord(**{**d, "key_ids": tuple(d["key_ids"]), "slave_saes": tuple(d["slave_saes"])})
        for d in back
    ]
    assert verify_chain(rebuilt, AKEY, head(records)).ok


RFC5424 = re.compile(
    r'^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) '
    r'(?P<msgid>\S+) (?P<sd>\[qnetkit@32473(?: [a-z_]+="(?:[^"\\\]]|\\["\\\]])*")*\]) (?P<msg>.*)$'
)


def test_export_rfc5424() -> None:
    rec = dataclasses.replace(
        chain(1)[0], time_s=1700000000.25, key_ids=("k1", 'k"2]\\'), slave_saes=("s1", "s2"),
    )
    out = io.StringIO()
    assert export_rfc5424([rec, chain(2)[1]], out, hostname="kme-a.example") == 2
    line = out.getvalue().splitlines()[0]
    m = RFC5424.match(line)
    assert m is not None, line
    assert m["pri"] == "86"  # authpriv (10) * 8 + info (6)
    assert m["ts"] == "2023-11-14T22:13:20.250000Z"
    assert (m["host"], m["app"], m["procid"], m["msgid"]) == (
        "kme-a.example", "qnetkit-kms", "-", "deliver",
    )
    params = dict(re.findall(r' ([a-z_]+)="((?:[^"\\\]]|\\["\\\]])*)"', m["sd"]))
    assert params == {
        "seq": "1", "action": "deliver", "key_ids": 'k1,k\\"2\\]\\\\', "master": "m1",
        "slaves": "s1,s2", "hash": rec.hash,
    }
    assert '"number":1' in m["msg"]


def test_export_rfc5424_nil_values() -> None:
    rec = dataclasses.replace(chain(1)[0], master_sae=None, action="fallback-pqc")
    out = io.StringIO()
    export_rfc5424([rec], out, hostname="", app_name="my app")
    m = RFC5424.match(out.getvalue().rstrip("\n"))
    assert m is not None
    assert (m["host"], m["app"], m["msgid"]) == ("-", "myapp", "fallback-pqc")
    assert 'master=""' in m["sd"]
