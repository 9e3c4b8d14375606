"""Block identity and key confirmation: the two KMEs of a link never serve different bytes
under one key ID (issue 12, item 1)."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kmenet import KmeNet, start_net

from qnetkit.kms.blocks import (
    block_id_for_content,
    block_id_for_seq,
    block_identity,
    confirm_tag,
    prepare_block,
)
from qnetkit.kms.client import KmeHttpError
from qnetkit.kms.errors import ApiError, BlockConflict
from qnetkit.kms.server import ingest_block
from qnetkit.kms.store import open_store
from qnetkit.kms.store.base import KeyStore


def _hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 written out from RFC 5869 section 2.2 (extract, salt = HashLen zeros)
    and section 2.3 (expand), independently of the library the KME uses."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def test_hkdf_helper_matches_rfc5869_test_case_3() -> None:
    # RFC 5869 appendix A.3 (test case 3): SHA-256, zero-length salt (taken as HashLen zero
    # bytes, as in the KME's derivation) and zero-length info.
    ikm = bytes.fromhex("0b" * 22)
    okm = _hkdf_sha256(ikm, b"", 42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                         "9d201395faa4b61a96c8")


def test_confirm_tag_is_hmac_under_hkdf_of_the_block() -> None:
    data = os.urandom(1000)
    bid = str(uuid.uuid4())
    k = _hkdf_sha256(data, b"qnetkit block confirm", 32)
    msg = b"qnetkit-confirm/v1" + uuid.UUID(bid).bytes + (1000).to_bytes(8, "big") + b"A"
    assert confirm_tag(data, bid, "A") == hmac.new(k, msg, hashlib.sha256).hexdigest()
    # Direction-separated (one end cannot echo the other's tag) and bound to the bytes.
    assert confirm_tag(data, bid, "A") != confirm_tag(data, bid, "B")
    other = bytearray(data)
    other[500] ^= 1
    assert confirm_tag(bytes(other), bid, "A") != confirm_tag(data, bid, "A")


def test_block_identity_comes_from_link_and_sequence_or_content() -> None:
    assert block_id_for_seq("A", "B", 7) == block_id_for_seq("B", "A", 7)  # both ends agree
    assert block_id_for_seq("A", "B", 7) != block_id_for_seq("A", "B", 8)
    assert block_id_for_seq("A", "B", 7) != block_id_for_seq("A", "C", 7)
    x, y = os.urandom(64), os.urandom(64)  # same size, different bytes: different blocks
    assert block_id_for_content(x) == block_id_for_content(bytes(x))
    assert block_id_for_content(x) != block_id_for_content(y)
    assert block_identity("A", "B", x, block_seq=3) == block_id_for_seq("A", "B", 3)
    assert block_identity("A", "B", x) == block_id_for_content(x)
    for bad in ({"block_seq": True}, {"block_seq": "3"}, {"block_id": "x"},
                {"block_id": str(uuid.uuid4()), "block_seq": 1}):
        with pytest.raises(ValueError):
            block_identity("A", "B", x, **bad)  # type: ignore[arg-type]


# ---- the store: pending until confirmed, other bytes refused -------------------------------


@pytest.fixture
def store(store_url: str, kek: bytes) -> Iterator[KeyStore]:
    s = open_store(store_url, kme_id="A", kek=kek)
    yield s
    s.close()


def test_units_are_pooled_only_once_confirmed(store: KeyStore) -> None:
    data = os.urandom(32 * 10)
    bid = block_id_for_seq("A", "B", 1)
    info, units = prepare_block(bid, data, unit_bits=256, kme_id="A", peer_kme="B")
    assert store.ingest_block(info, units, data=data, now_s=1.0) == 10
    assert store.pool_status("B").available_units == 0  # pending: nothing to serve
    assert [b.block_id for b in store.pending_blocks("B")] == [bid]
    assert store.ingest_block(info, units, data=data, now_s=2.0) == 0  # same bytes: no-op
    assert store.confirm_block(bid, now_s=3.0) == 10
    assert store.confirm_block(bid, now_s=4.0) == 0  # idempotent
    assert store.pool_status("B").available_units == 5  # A owns every other unit
    assert store.pending_blocks("B") == []
    got = store.reserve(peer_kme="B", master_sae="m", slave_saes=["s"], number=1,
                        size_bits=256, now_s=5.0, ttl_s=60.0, keep_material=True)
    assert got[0][1].material == units[0].material
    assert [r.action for r in store.audit_records()] == ["ingest-block", "confirm", "deliver"]


def test_other_bytes_under_a_known_block_id_are_refused(store: KeyStore) -> None:
    bid = block_id_for_seq("A", "B", 1)
    data = os.urandom(320)
    info, units = prepare_block(bid, data, unit_bits=256, kme_id="A", peer_kme="B")
    store.ingest_block(info, units, data=data, now_s=1.0)
    head = store.audit_head()
    other = os.urandom(320)  # same identity, same size, other bytes
    info2, units2 = prepare_block(bid, other, unit_bits=256, kme_id="A", peer_kme="B")
    with pytest.raises(BlockConflict, match="other bytes"):
        store.ingest_block(info2, units2, data=other, now_s=2.0)
    assert store.audit_head() == head  # nothing changed
    assert store.quarantine_block(bid, reason="test", now_s=3.0) is True
    with pytest.raises(BlockConflict, match="quarantined"):
        store.ingest_block(info, units, data=data, now_s=4.0)
    with pytest.raises(BlockConflict):
        store.confirm_block(bid, now_s=5.0)
    assert store.pool_status("B").available_units == 0
    (rec,) = [r for r in store.audit_records() if r.action == "quarantine"]
    assert rec.detail["block"] == bid and rec.detail["reason"] == "test"


# ---- two KMEs over mutual TLS --------------------------------------------------------------


@pytest.fixture
def net(tmp_path: Path) -> Iterator[KmeNet]:
    n = start_net(tmp_path)
    yield n
    n.stop()


def test_same_block_at_both_ends_is_confirmed_and_served(net: KmeNet) -> None:
    data = os.urandom(32 * 64)
    bid = block_id_for_seq("A", "B", 1)
    ingest_block(net.kmes["A"].service, "B", bid, data, 256)
    sa, sb = net.kmes["A"].service, net.kmes["B"].service
    assert sa.store.get_block(bid).state == "pending"  # type: ignore[union-attr]
    ingest_block(sb, "A", bid, data, 256)  # B's ingest confirms the block with A at once
    assert sa.store.get_block(bid).state == "confirmed"  # type: ignore[union-attr]
    assert sb.store.get_block(bid).state == "confirmed"  # type: ignore[union-attr]
    with net.client("sae-a") as a, net.client("sae-b") as b:
        keys = a.enc_keys("sae-b", number=4)
        assert [g.key for g in b.dec_keys("sae-a", [k.key_id for k in keys])] == [
            k.key for k in keys]
    assert sa.metrics.blocks_confirmed._value.get() + sb.metrics.blocks_confirmed._value.get() \
        == 2


def test_different_bytes_under_one_block_are_quarantined_never_served(
    net: KmeNet, caplog: pytest.LogCaptureFixture
) -> None:
    """One end missed an ingest and the ends disagree on what block 5 is: before, both KMEs
    served different bytes under the same key IDs; now neither serves any of it."""
    bid = block_id_for_seq("A", "B", 5)
    data_a, data_b = os.urandom(32 * 64), os.urandom(32 * 64)
    ingest_block(net.kmes["A"].service, "B", bid, data_a, 256)
    ingest_block(net.kmes["B"].service, "A", bid, data_b, 256)
    for kme in "AB":
        svc = net.kmes[kme].service
        assert svc.store.get_block(bid).state == "quarantined"  # type: ignore[union-attr]
        assert svc.metrics.blocks_quarantined._value.get() == 1
        (rec,) = [r for r in svc.store.audit_records() if r.action == "quarantine"]
        assert rec.detail["block"] == bid
    with net.client("sae-a") as a, pytest.raises(KmeHttpError) as e:
        a.enc_keys("sae-b")
    assert e.value.status_code == 503
    with net.client("sae-b") as b, pytest.raises(KmeHttpError) as e:
        b.enc_keys("sae-a")
    assert e.value.status_code == 503
    assert "quarantined" in caplog.text
    for secret in (data_a, data_b):
        assert secret[:32].hex() not in caplog.text
    # The same identity cannot be filled again (exit 2 / 409 at the CLI / API).
    with pytest.raises(ApiError) as conflict:
        ingest_block(net.kmes["A"].service, "B", bid, data_a, 256)
    assert conflict.value.status == 409


def test_block_missing_at_one_end_stays_pending(net: KmeNet) -> None:
    bid = block_id_for_seq("A", "B", 9)
    ingest_block(net.kmes["A"].service, "B", bid, os.urandom(32 * 16), 256)
    sa = net.kmes["A"].service
    assert sa.confirm_blocks("B") == 0  # B answers "unknown": not confirmed, not quarantined
    assert sa.store.get_block(bid).state == "pending"  # type: ignore[union-attr]
    assert sa.store.pool_status("B").available_units == 0
    with net.client("sae-a") as a, pytest.raises(KmeHttpError) as e:
        a.enc_keys("sae-b")
    assert e.value.status_code == 503
