"""The hash-chained audit log: record hashes, chain verification and export.

Model. Record ``n`` carries ``prev_hash`` (the hash of record ``n-1``; 64 zeros for the first)
and ``hash = HMAC-SHA256(audit_key, prev_hash || canonical JSON of its fields)``. The store
keeps the last (seq, hash) in a head row updated in the same transaction as the append, so
removing records at the end is detected too. The HMAC key derives from the KEK: someone with
write access to the database but not the KEK cannot forge a consistent chain. Someone who
deletes the tail *and* rewinds the head row is caught by checkpoints: the KME appends
``{kme, seq, hash, time_s, mac}`` lines, ``mac = HMAC-SHA256(checkpoint_key, canonical JSON)``,
to a file outside the database (``audit_checkpoint_file``); a chain shorter than a checkpoint,
or differing from it, fails :func:`verify_checkpoints`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import TextIO

from qnetkit.kms.store.base import AuditRecord

GENESIS_HASH = "0" * 64
SYSLOG_PRI = 10 * 8 + 6  # facility 10 (authpriv), severity 6 (informational)
SD_ID = "qnetkit@32473"  # 32473: the private enterprise number reserved for examples (RFC 5612)


def canonical_json(value: object) -> str:
    """Sorted keys, no spaces, no NaN: the same bytes on every platform and back end."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def record_hash(
    audit_key: bytes,
    prev_hash_hex: str,
    seq: int,
    time_s: float,
    action: str,
    kme: str,
    key_ids: Sequence[str],
    master_sae: str | None,
    slave_saes: Sequence[str],
    detail: dict[str, object],
) -> str:
    """HMAC-SHA256(audit_key, prev_hash || canonical JSON of the other fields), hex."""
    body = canonical_json(
        {
            "seq": seq,
            "time_s": time_s,
            "action": action,
            "kme": kme,
            "key_ids": list(key_ids),
            "master_sae": master_sae,
            "slave_saes": list(slave_saes),
            "detail": detail,
        }
    )
    return hmac.new(audit_key, bytes.fromhex(prev_hash_hex) + body.encode(), sha256).hexdigest()


@dataclass(frozen=True)
class ChainVerdict:
    """Result of :func:`verify_chain`: ``first_bad_seq`` is the first seq that fails."""

    ok: bool
    records: int
    first_bad_seq: int | None
    reason: str


def verify_chain(
    records: Iterable[AuditRecord], audit_key: bytes, head: tuple[int, str]
) -> ChainVerdict:
    """Check a whole chain (from seq 1, in seq order) against the store's head row.

    Detects an altered record (hash mismatch), a missing record in the middle (seq gap or
    prev_hash mismatch), records moved or swapped (seq/prev_hash mismatch) and a missing
    tail (last record is not the head).
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    for rec in records:
        if rec.seq != expected_seq:
            # A gap means record `expected_seq` was removed; a step back means a reorder.
            what = "missing" if rec.seq > expected_seq else "out of order"
            return ChainVerdict(False, count, expected_seq,
                                f"record {expected_seq} {what} (found seq {rec.seq})")
        if not hmac.compare_digest(rec.prev_hash, prev_hash):
            return ChainVerdict(False, count, rec.seq,
                                f"record {rec.seq} does not link to record {rec.seq - 1}")
        want = record_hash(
            audit_key, rec.prev_hash, rec.seq, rec.time_s, rec.action, rec.kme, rec.key_ids,
            rec.master_sae, rec.slave_saes, rec.detail,
        )
        if not hmac.compare_digest(want, rec.hash):
            return ChainVerdict(False, count, rec.seq,
                                f"record {rec.seq} was altered (hash mismatch)")
        prev_hash = rec.hash
        expected_seq += 1
        count += 1
    last_seq = expected_seq - 1
    head_seq, head_hash = head
    if last_seq < head_seq:
        return ChainVerdict(False, count, last_seq + 1,
                            f"records {last_seq + 1}..{head_seq} are missing (head is {head_seq})")
    if last_seq > head_seq:
        return ChainVerdict(False, count, head_seq + 1,
                            f"records after the head {head_seq} are not covered by it")
    if not hmac.compare_digest(prev_hash, head_hash):
        return ChainVerdict(False, count, head_seq,
                            f"record {head_seq} does not match the head row")
    return ChainVerdict(True, count, None, f"{count} records verified")


def _record_dict(rec: AuditRecord) -> dict[str, object]:
    return {
        "seq": rec.seq,
        "time_s": rec.time_s,
        "action": rec.action,
        "kme": rec.kme,
        "key_ids": list(rec.key_ids),
        "master_sae": rec.master_sae,
        "slave_saes": list(rec.slave_saes),
        "detail": rec.detail,
        "prev_hash": rec.prev_hash,
        "hash": rec.hash,
    }


def export_jsonl(records: Iterable[AuditRecord], out: TextIO) -> int:
    """One JSON object per line with every field; returns the number of lines written."""
    n = 0
    for rec in records:
        out.write(canonical_json(_record_dict(rec)) + "\n")
        n += 1
    return n


def _sd_escape(value: str) -> str:
    # RFC 5424 §6.3.3: inside PARAM-VALUE, '"', '\' and ']' must be escaped with '\'.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, max_len: int) -> str:
    # Header fields are PRINTUSASCII without spaces; "-" is the NILVALUE.
    token = "".join(c for c in value if 33 <= ord(c) <= 126)[:max_len]
    return token or "-"


def rfc3339_utc(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_rfc5424(rec: AuditRecord, hostname: str, app_name: str = "qnetkit-kms") -> str:
    """One RFC 5424 syslog line (no trailing newline) for an audit record."""
    params = (
        ("seq", str(rec.seq)),
        ("action", rec.action),
        ("key_ids", ",".join(rec.key_ids)),
        ("master", rec.master_sae or ""),
        ("slaves", ",".join(rec.slave_saes)),
        ("hash", rec.hash),
    )
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params) + "]"
    header = " ".join(
        (
            f"<{SYSLOG_PRI}>1",
            rfc3339_utc(rec.time_s),
            _header_token(hostname, 255),
            _header_token(app_name, 48),
            "-",  # PROCID: records are exported after the fact, the writer's pid is gone
            _header_token(rec.action, 32),
        )
    )
    msg = f"kme={rec.kme} {rec.action} {len(rec.key_ids)} key(s) {canonical_json(rec.detail)}"
    return f"{header} {sd} {msg}"


def export_rfc5424(
    records: Iterable[AuditRecord], out: TextIO, hostname: str, app_name: str = "qnetkit-kms"
) -> int:
    """RFC 5424 lines (facility authpriv, severity info); returns the number written."""
    n = 0
    for rec in records:
        out.write(format_rfc5424(rec, hostname, app_name) + "\n")
        n += 1
    return n


# -- checkpoints outside the database --------------------------------------------------------
CHECKPOINT_INFO = b"qnetkit kms audit checkpoint v1"


def checkpoint_key(audit_key: bytes) -> bytes:
    """A key of its own for checkpoints (domain separation from record hashes)."""
    return hmac.new(audit_key, CHECKPOINT_INFO, sha256).digest()


def _checkpoint_mac(audit_key: bytes, body: dict[str, object]) -> str:
    return hmac.new(checkpoint_key(audit_key), canonical_json(body).encode(), sha256).hexdigest()


def checkpoint_line(audit_key: bytes, kme: str, seq: int, hash_hex: str, time_s: float) -> str:
    """One signed checkpoint of the audit head, as a JSON line (no newline)."""
    body: dict[str, object] = {"kme": kme, "seq": seq, "hash": hash_hex, "time_s": time_s}
    return canonical_json({**body, "mac": _checkpoint_mac(audit_key, body)})


@dataclass(frozen=True)
class Checkpoint:
    kme: str
    seq: int
    hash: str
    time_s: float


def parse_checkpoints(lines: Iterable[str], audit_key: bytes) -> list[Checkpoint]:
    """Checkpoint lines, each MAC checked; ValueError names the first bad line."""
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            c = Checkpoint(str(d["kme"]), int(d["seq"]), str(d["hash"]), float(d["time_s"]))
            mac = str(d["mac"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"checkpoint line {n} is not a checkpoint") from None
        body: dict[str, object] = {"kme": c.kme, "seq": c.seq, "hash": c.hash,
                                   "time_s": c.time_s}
        if not hmac.compare_digest(mac, _checkpoint_mac(audit_key, body)):
            raise ValueError(f"checkpoint line {n} is not authentic (MAC mismatch)")
        out.append(c)
    return out


def verify_checkpoints(records: Iterable[AuditRecord], checkpoints: Sequence[Checkpoint],
                       kme: str) -> ChainVerdict:
    """Every checkpoint of ``kme`` must name a record of the chain with the same hash.

    Run after :func:`verify_chain`, which checks the chain itself and its head row.
    """
    want: dict[int, Checkpoint] = {}
    for c in checkpoints:
        if c.kme != kme:
            continue
        if c.seq in want and want[c.seq].hash != c.hash:
            return ChainVerdict(False, 0, c.seq, f"two checkpoints disagree on record {c.seq}")
        want[c.seq] = c
    last = 0
    count = 0
    for rec in records:
        last = rec.seq
        count += 1
        seen = want.pop(rec.seq) if rec.seq in want else None
        if seen is not None and not hmac.compare_digest(seen.hash, rec.hash):
            return ChainVerdict(False, count, rec.seq,
                                f"record {rec.seq} differs from its checkpoint of "
                                f"{rfc3339_utc(seen.time_s)}")
    if want:
        c = max(want.values(), key=lambda c: c.seq)
        return ChainVerdict(False, count, last + 1,
                            f"records {last + 1}..{c.seq} are missing: the checkpoint of "
                            f"{rfc3339_utc(c.time_s)} saw record {c.seq}, the chain ends "
                            f"at {last}")
    n = sum(1 for c in checkpoints if c.kme == kme)
    return ChainVerdict(True, count, None, f"{count} records verified, {n} checkpoints match")
