"""Store operations on delivered keys: assignment from the peer, retrieval, expiry.

Delivery semantics of retrieve (dec_keys): a key is handed to each of its slave SAEs; once a
slave has it, the same authenticated slave may fetch the same bytes again for a re-fetch
window (e.g. after its KME crashed between commit and response), no other SAE ever can, and
the material is erased when every slave has it and the window has passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from qnetkit.errors import ParameterError
from qnetkit.kms.errors import (
    BlockPending,
    KeyNotFound,
    NotEntitled,
    SimulatedKeyRefused,
    SyncConflict,
)
from qnetkit.kms.store.base import Assignment, DeliveredKey
from qnetkit.kms.store.core import AuditItem, StoreCore
from qnetkit.kms.store.rows import KeyRow, check_request, compose, dump, units_per_key
from qnetkit.kms.store.sql import KEY_COLUMNS, Row, Tx, chunks


class KeyOps(StoreCore):
    """Operations on the ``keys`` table."""

    def _select_keys(self, tx: Tx, key_ids: Sequence[str], *, lock: bool) -> dict[str, KeyRow]:
        out: dict[str, KeyRow] = {}
        # Sorted, so that concurrent transactions lock rows in the same order.
        ordered = sorted(set(key_ids))
        for marks, part in chunks(ordered):
            for r in tx.rows(
                f"SELECT {KEY_COLUMNS} FROM keys WHERE key_id IN ({marks}) ORDER BY key_id"
                + (self.for_update if lock else ""),
                part,
            ):
                row = KeyRow.from_row(r)
                out[row.key_id] = row
        return out

    def _assign_units(self, tx: Tx, a: Assignment) -> tuple[str, list[bytes], bool] | None:
        """(link peer, unit plaintexts, any simulated) for an assignment, or None if it is
        already applied.

        Raises SyncConflict if the assignment does not fit the units stored here.
        """
        rows: dict[str, Row] = {}
        for marks, part in chunks(sorted(set(a.unit_ids))):
            for r in tx.rows(
                "SELECT unit_id, peer_kme, owner_kme, sealed, state, key_id, simulated FROM units "
                f"WHERE unit_id IN ({marks}) ORDER BY unit_id" + self.for_update,
                part,
            ):
                rows[r[0]] = r
        peers = set()
        for uid in a.unit_ids:
            unit = rows.get(uid)
            if unit is None:
                pending = tx.rows("SELECT block_id FROM pending_units WHERE unit_id = ?", (uid,))
                if pending:
                    raise BlockPending(f"unit {uid} of key {a.key_id} is in block "
                                       f"{pending[0][0]}, not confirmed here yet")
                raise SyncConflict(f"unit {uid} of key {a.key_id} is unknown here")
            _, peer, owner, _, state, key_id, _ = unit
            if state != "available":
                if key_id == a.key_id:
                    return None  # applied meanwhile by another process with the same key
                raise SyncConflict(f"unit {uid} of key {a.key_id} is already {state}")
            if owner != peer:
                raise SyncConflict(f"unit {uid} is not owned by {peer}, which delivered it")
            peers.add(peer)
        if len(peers) != 1:
            raise SyncConflict(f"the units of key {a.key_id} belong to different links")
        (peer,) = peers
        if a.peer_kme not in (peer, self.kme_id):
            raise SyncConflict(f"key {a.key_id} names link {a.peer_kme}; its units are of {peer}")
        unit_bits = self._known_unit_bits(tx, peer)
        if units_per_key(a.size_bits, unit_bits) != len(a.unit_ids):
            raise SyncConflict(
                f"key {a.key_id}: {len(a.unit_ids)} units of {unit_bits} bits do not make "
                f"{a.size_bits} bits"
            )
        simulated = any(bool(rows[uid][6]) for uid in a.unit_ids)
        return peer, self._open_units([(uid, rows[uid][3]) for uid in a.unit_ids]), simulated

    def assign(self, assignment: Assignment, *, now_s: float, ttl_s: float) -> None:
        """Record a key delivered by the peer KME (idempotent for the same assignment).

        The assignment may carry either end's view of ``peer_kme``; the key is stored with
        the link's peer as seen from here.
        """
        a = assignment
        if a.origin != "qkd" or not a.unit_ids or a.unit_ids[0] != a.key_id:
            raise SyncConflict(f"key {a.key_id} is not a key made of QKD units")
        if len(set(a.unit_ids)) != len(a.unit_ids):
            raise SyncConflict(f"key {a.key_id} names a unit twice")
        check_request(1, a.size_bits, a.master_sae, a.slave_saes)

        def applied(tx: Tx) -> bool:
            row = self._select_keys(tx, [a.key_id], lock=False).get(a.key_id)
            if row is None:
                return False
            if not row.same_key(a):
                raise SyncConflict(f"key {a.key_id} is already recorded with other units or SAEs")
            return True

        def work(tx: Tx) -> None:
            if applied(tx):
                return
            found = self._assign_units(tx, a)
            if found is None:
                applied(tx)  # raises SyncConflict unless it is the same key
                return
            peer, parts, simulated = found
            stored = Assignment(
                key_id=a.key_id, peer_kme=peer, unit_ids=tuple(a.unit_ids),
                size_bits=a.size_bits, master_sae=a.master_sae, slave_saes=tuple(a.slave_saes),
                created_at_s=float(a.created_at_s), origin="qkd",
            )
            self._use_units(tx, a.key_id, a.unit_ids, erased=False)
            self._insert_key(tx, stored, compose(parts, a.size_bits), state="delivered",
                             synced=True, expires_at_s=now_s + ttl_s, simulated=simulated)
            self._audit(tx, action="assign", key_ids=[a.key_id], master_sae=a.master_sae,
                        slave_saes=a.slave_saes, detail={"size_bits": a.size_bits, "peer": peer},
                        now_s=now_s)

        self._transaction(work, write=True)

    def put_key(
        self, assignment: Assignment, material: bytes, *, now_s: float, ttl_s: float,
        synced: bool,
    ) -> None:
        """Store a key that is not made of QKD units (fallback-PQC, relayed keys).

        Audited as "deliver" when this KME originates it (``synced`` False: the peer must
        still be told) and as "assign" otherwise; ``detail.origin`` says which kind of key.
        Idempotent for the same assignment.
        """
        a = assignment
        check_request(1, a.size_bits, a.master_sae, a.slave_saes)
        if a.unit_ids:
            raise ParameterError("unit_ids", list(a.unit_ids), "put_key stores keys without units")
        if len(material) * 8 != a.size_bits:
            raise ParameterError("material", f"<{len(material)} bytes>",
                                 f"must be {a.size_bits // 8} bytes")

        def work(tx: Tx) -> None:
            row = self._select_keys(tx, [a.key_id], lock=False).get(a.key_id)
            if row is not None:
                if not row.same_key(a):
                    raise SyncConflict(f"key {a.key_id} is already recorded differently")
                return
            self._insert_key(tx, a, material, state="delivered", synced=synced,
                             expires_at_s=now_s + ttl_s)
            self._audit(tx, action="assign" if synced else "deliver", key_ids=[a.key_id],
                        master_sae=a.master_sae, slave_saes=a.slave_saes,
                        detail={"size_bits": a.size_bits, "origin": a.origin,
                                "peer": a.peer_kme}, now_s=now_s)

        self._transaction(work, write=True)

    def retrieve(
        self, *, slave_sae: str, master_sae: str, key_ids: Sequence[str], now_s: float,
        refetch_window_s: float = 0.0, allow_simulated: bool = False,
        before_commit: Callable[[], None] | None = None,
    ) -> list[DeliveredKey]:
        """Hand keys to a slave SAE, all or nothing (see the module docstring).

        KeyNotFound for an unknown, expired or erased key, one named twice in the request,
        or one this SAE retrieved more than ``refetch_window_s`` ago; NotEntitled for a key
        of other SAEs; SimulatedKeyRefused for a simulated key without ``allow_simulated``.
        ``before_commit`` runs last inside the transaction (fault injection in tests).
        """
        ids = list(key_ids)
        if len(set(ids)) != len(ids):
            raise KeyNotFound("a key_ID is requested twice")
        if not ids:
            return []
        window = max(0.0, float(refetch_window_s))

        def check(kid: str, row: KeyRow | None) -> None:
            if row is None:
                raise KeyNotFound(f"key {kid} is unknown")
            if slave_sae not in row.slave_saes or master_sae != row.master_sae:
                raise NotEntitled(f"SAE {slave_sae} is not entitled to key {kid}")
            if row.sealed is None or row.expires_at_s <= now_s:
                raise KeyNotFound(f"key {kid} is expired or erased")
            if slave_sae in row.retrieved_by:
                first = row.retrieved_at_s.get(slave_sae)
                if first is None or now_s > first + window:
                    raise KeyNotFound(f"key {kid} was already retrieved by {slave_sae}")
            if row.simulated and not allow_simulated:
                raise SimulatedKeyRefused(f"key {kid} is simulated key material")

        def work(tx: Tx) -> list[DeliveredKey]:
            rows = self._select_keys(tx, ids, lock=True)
            for kid in ids:
                check(kid, rows.get(kid))
            out: list[DeliveredKey] = []
            fresh: list[str] = []
            again: list[str] = []
            done: list[str] = []
            for kid in ids:
                row = rows[kid]
                assert row.sealed is not None
                out.append(DeliveredKey(kid, self._cipher.open("key:" + kid, row.sealed)))
                if slave_sae in row.retrieved_by:
                    again.append(kid)  # a re-fetch inside the window: nothing changes
                    continue
                fresh.append(kid)
                got = (*row.retrieved_by, slave_sae)
                at = json.dumps({**row.retrieved_at_s, slave_sae: float(now_s)}, sort_keys=True)
                if set(row.slave_saes) <= set(got) and window == 0.0:
                    done.append(kid)
                    tx.run("UPDATE keys SET retrieved_by = ?, retrieved_at = ?, state = 'erased', "
                           "sealed = NULL WHERE key_id = ?", (dump(got), at, kid))
                elif set(row.slave_saes) <= set(got):
                    # Every slave has it: keep it only for the re-fetch window.
                    tx.run("UPDATE keys SET retrieved_by = ?, retrieved_at = ?, "
                           "state = 'retrieved', expires_at_s = ? WHERE key_id = ?",
                           (dump(got), at, min(row.expires_at_s, now_s + window), kid))
                else:
                    tx.run("UPDATE keys SET retrieved_by = ?, retrieved_at = ?, "
                           "state = 'retrieved' WHERE key_id = ?", (dump(got), at, kid))
            self._erase_units_of(tx, done)
            records: list[AuditItem] = []
            if fresh:
                records.append(("retrieve", fresh, master_sae, [slave_sae],
                                {"number": len(fresh)}))
            if again:
                records.append(("refetch", again, master_sae, [slave_sae],
                                {"number": len(again), "window_s": window}))
            if done:
                records.append(("erase", done, master_sae, [],
                                {"reason": "retrieved by every slave SAE"}))
            self._audit_batch(tx, records, now_s=now_s)
            if before_commit is not None:
                before_commit()
            return out

        return self._transaction(work, write=True)

    def lookup(self, key_id: str) -> Assignment | None:
        """The assignment of a key this KME delivered or was told about (no material)."""
        return self.lookup_many([key_id]).get(key_id)

    def lookup_many(self, key_ids: Sequence[str]) -> dict[str, Assignment]:
        """Assignments of the given key IDs known here, in one transaction (no material)."""
        if not key_ids:
            return {}
        rows = self._transaction(lambda tx: self._select_keys(tx, key_ids, lock=False),
                                 write=False)
        return {k: r.assignment() for k, r in rows.items()}

    def unsynced(self, limit: int = 500) -> list[Assignment]:
        """Keys this KME originated that the peer has not acknowledged, oldest first."""
        rows = self._transaction(
            lambda tx: tx.rows(
                f"SELECT {KEY_COLUMNS} FROM keys WHERE synced = ? ORDER BY seq LIMIT ?",
                (False, limit),
            ),
            write=False,
        )
        return [KeyRow.from_row(r).assignment() for r in rows]

    def mark_synced(self, key_ids: Sequence[str]) -> None:
        ids = sorted(set(key_ids))

        def work(tx: Tx) -> None:
            for marks, part in chunks(ids):
                tx.run(f"UPDATE keys SET synced = ? WHERE key_id IN ({marks})", (True, *part))

        if ids:
            self._transaction(work, write=True)

    def expire(self, *, now_s: float) -> int:
        """Erase the material of keys past their expiry; returns how many.

        A key every slave has retrieved is "erase"d when its re-fetch window closes; any
        other key past its TTL is "expire"d. One record of each kind per call at most.
        Units carry no TTL of their own: unused units stay available.
        """

        def work(tx: Tx) -> int:
            rows: list[Row] = tx.rows(
                "SELECT key_id, slave_saes, retrieved_by FROM keys "
                "WHERE state IN ('delivered', 'retrieved') AND expires_at_s <= ? "
                "ORDER BY key_id" + self.for_update,
                (float(now_s),),
            )
            if not rows:
                return 0
            closed = [r[0] for r in rows if set(json.loads(r[1])) <= set(json.loads(r[2]))]
            expired = [r[0] for r in rows if r[0] not in set(closed)]
            for ids, state in ((expired, "expired"), (closed, "erased")):
                for marks, part in chunks(ids):
                    tx.run(f"UPDATE keys SET state = '{state}', sealed = NULL "
                           f"WHERE key_id IN ({marks})", part)
            self._erase_units_of(tx, [r[0] for r in rows])
            records: list[AuditItem] = []
            if expired:
                records.append(("expire", expired, None, [], {"number": len(expired)}))
            if closed:
                records.append(("erase", closed, None, [],
                                {"reason": "re-fetch window closed", "number": len(closed)}))
            self._audit_batch(tx, records, now_s=now_s)
            return len(rows)

        return self._transaction(work, write=True)
