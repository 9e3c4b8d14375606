"""Issue 12 item 9: a tail deleted *together with* a rewound head row passes the chain check
(it is a valid shorter chain); HMAC-signed head checkpoints kept outside the database catch
it. The KME writes them (audit_checkpoint_file); `kms audit verify --checkpoints` checks."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kmenet import free_ports, make_pki, write_configs

from qnetkit.cli.main import main
from qnetkit.kms.atrest import audit_key
from qnetkit.kms.audit import (
    checkpoint_line,
    parse_checkpoints,
    verify_chain,
    verify_checkpoints,
)
from qnetkit.kms.config import load_config
from qnetkit.kms.runner import KmeThread
from qnetkit.kms.store import open_store
from qnetkit.kms.store.base import KeyStore

Raw = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def audited(store_url: str, kek: bytes) -> Iterator[KeyStore]:
    """A store with 6 audit records."""
    s = open_store(store_url, kme_id="A", kek=kek)
    for i in range(6):
        s.audit_append(action="relay", key_ids=[str(uuid.uuid4())], master_sae="m",
                       slave_saes=["s"], detail={"hop": i}, now_s=10.0 + i)
    yield s
    s.close()


def rewind_to(raw: Raw, url: str, store: KeyStore, seq: int) -> None:
    """What an attacker with database access (but not the KEK) can do: cut the tail and
    point the head row at the new last record."""
    last = next(r for r in store.audit_records() if r.seq == seq)
    raw(url, "DELETE FROM audit WHERE seq > ?", (seq,))
    raw(url, "UPDATE meta SET audit_seq = ?, audit_hash = ? WHERE id = 1", (seq, last.hash))


def marks_of(store: KeyStore, key: bytes) -> list[str]:
    seq, h = store.audit_head()
    return [checkpoint_line(key, "A", seq, h, 1000.0)]


def test_rewound_head_passes_the_chain_but_not_the_checkpoints(
        audited: KeyStore, kek: bytes, raw: Raw, store_url: str) -> None:
    key = audit_key(kek)
    lines = marks_of(audited, key)  # exported while all 6 records were there
    rewind_to(raw, store_url, audited, 4)
    chain = verify_chain(audited.audit_records(), key, audited.audit_head())
    assert chain.ok and chain.records == 4  # the gap the issue describes
    v = verify_checkpoints(audited.audit_records(), parse_checkpoints(lines, key), "A")
    assert not v.ok and v.first_bad_seq == 5
    assert "records 5..6 are missing" in v.reason


def test_intact_chain_matches_its_checkpoints(audited: KeyStore, kek: bytes) -> None:
    key = audit_key(kek)
    v = verify_checkpoints(audited.audit_records(), parse_checkpoints(marks_of(audited, key),
                                                                      key), "A")
    assert v.ok and v.records == 6


def test_rewritten_record_differs_from_its_checkpoint(
        audited: KeyStore, kek: bytes, raw: Raw, store_url: str) -> None:
    key = audit_key(kek)
    lines = marks_of(audited, key)
    raw(store_url, "UPDATE audit SET hash = ? WHERE seq = 6", ("0" * 64,))
    v = verify_checkpoints(audited.audit_records(), parse_checkpoints(lines, key), "A")
    assert not v.ok and v.first_bad_seq == 6


def test_forged_checkpoint_is_refused(kek: bytes) -> None:
    key = audit_key(kek)
    line = checkpoint_line(key, "A", 3, "ab" * 32, 5.0)
    assert parse_checkpoints([line], key)[0].seq == 3
    with pytest.raises(ValueError, match="not authentic"):
        parse_checkpoints([line.replace('"seq":3', '"seq":2')], key)
    with pytest.raises(ValueError, match="not authentic"):  # without the KEK, no valid MAC
        parse_checkpoints([checkpoint_line(bytes(32), "A", 3, "ab" * 32, 5.0)], key)


def test_kme_writes_checkpoints_and_cli_catches_the_rewind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout, _ = make_pki(tmp_path)
    ports = dict(zip("ABC", free_ports(3), strict=True))
    marks = tmp_path / "audit-A.checkpoints"
    configs = write_configs(tmp_path, layout, ports, extra={"A": {
        "audit_checkpoint_file": str(marks), "audit_checkpoint_interval_s": 0.1}})
    cfg = load_config(configs["A"])
    kme = KmeThread(cfg, run_background=False).start()
    try:
        for i in range(5):  # five audited events while the KME runs
            kme.service.store.audit_append(action="relay", key_ids=[], master_sae=None,
                                           slave_saes=[], detail={"n": i}, now_s=1.0 + i)
    finally:
        kme.stop()  # writes a final checkpoint of the head
    lines = marks.read_text().splitlines()
    kek = bytes.fromhex((tmp_path / "kek-A.hex").read_text())
    key = audit_key(kek)
    last = parse_checkpoints(lines, key)[-1]
    assert last.kme == "A" and last.seq == 5

    def verify(*extra: str) -> tuple[int, str, str]:
        # The CLI's own entry point, in-process (a subprocess costs seconds of imports).
        try:
            main(["kms", "audit", "verify", "--config", str(configs["A"]), *extra])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = verify("--checkpoints", str(marks))
    assert code == 0, err
    assert f"audit chain intact: 5 records ({len(lines)} checkpoints match)" in out
    db = cfg.store.url.removeprefix("sqlite:///")
    store = open_store(cfg.store.url, kme_id="A", kek=kek)
    rec3 = next(r for r in store.audit_records() if r.seq == 3)
    store.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM audit WHERE seq > 3")
        conn.execute("UPDATE meta SET audit_seq = 3, audit_hash = ? WHERE id = 1", (rec3.hash,))
    conn.close()
    store = open_store(cfg.store.url, kme_id="A", kek=kek)
    try:  # the chain alone cannot tell
        assert verify_chain(store.audit_records(), key, store.audit_head()).ok
    finally:
        store.close()
    code, out, err = verify("--checkpoints", str(marks))
    assert code == 1
    assert "audit chain BROKEN at record 4: records 4..5 are missing" in err
    forged = tmp_path / "forged.checkpoints"
    forged.write_text(lines[-1].replace('"seq":5', '"seq":3') + "\n")
    code, out, err = verify("--checkpoints", str(forged))
    assert code == 2 and "not authentic (MAC mismatch)" in err
    code, out, err = verify("--checkpoints", str(tmp_path / "nope"))
    assert code == 2 and "cannot read" in err
    assert yaml.safe_load(configs["A"].read_text())["audit_checkpoint_file"] == str(marks)
