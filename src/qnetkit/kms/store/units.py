"""Store operations on shared key material: blocks, their confirmation, the pool, reservation.

A block is held as ``pending`` (its sealed units in ``pending_units``) until the two KMEs have
confirmed they hold the same bytes; only then do its units join ``units``, the pool that
:meth:`UnitOps.reserve` draws from. Units of a quarantined block are erased, never served.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from qnetkit.kms.errors import BlockConflict, InsufficientKeys, StoreError
from qnetkit.kms.store.base import Assignment, BlockInfo, DeliveredKey, KeyUnit, PoolStatus
from qnetkit.kms.store.core import AuditItem, StoreCore
from qnetkit.kms.store.rows import block_from_row, check_request, compose, units_per_key
from qnetkit.kms.store.sql import BLOCK_COLUMNS, Row, Tx, chunks


class UnitOps(StoreCore):
    """Ingest, key confirmation bookkeeping, pool status and reservation."""

    # ---- checks -----------------------------------------------------------------------

    def _check_units(self, peer_kme: str, units: Sequence[KeyUnit]) -> None:
        if peer_kme == self.kme_id:
            raise StoreError(f"KME {peer_kme} cannot share units with itself")
        sizes = {len(u.material) for u in units}
        if len(sizes) > 1 or 0 in sizes:
            raise StoreError(f"units from {peer_kme} must all have the same non-zero size")
        for u in units:
            if u.owner_kme not in (self.kme_id, peer_kme):
                raise StoreError(
                    f"unit {u.unit_id} is owned by {u.owner_kme}, which is neither this KME "
                    f"nor {peer_kme}"
                )

    def _existing_units(self, tx: Tx, unit_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for marks, part in chunks(unit_ids):
            found.update(
                r[0] for r in tx.rows(f"SELECT unit_id FROM units WHERE unit_id IN ({marks})", part)
            )
        return found

    def _add_to_pool(self, tx: Tx, peer_kme: str, rows: Sequence[tuple[str, str, bytes]],
                     *, block_id: str | None, simulated: bool, now_s: float) -> int:
        """Insert sealed (unit_id, owner, sealed) rows as available units; returns count."""
        if not rows:
            return 0
        # ON CONFLICT: another process may be adding the same units right now.
        return tx.run_many(
            "INSERT INTO units (unit_id, peer_kme, owner_kme, sealed, state, created_at_s, "
            "block_id, simulated) VALUES (?, ?, ?, ?, 'available', ?, ?, ?) "
            "ON CONFLICT (unit_id) DO NOTHING",
            [(uid, peer_kme, owner, sealed, float(now_s), block_id, simulated)
             for uid, owner, sealed in rows],
        )

    # ---- ingest -----------------------------------------------------------------------

    def ingest(self, peer_kme: str, units: Sequence[KeyUnit], *, now_s: float,
               simulated: bool = False) -> int:
        """Add *confirmed* units shared with ``peer_kme`` to the pool; present ones are skipped.

        All units of a peer have the size of the first one ever ingested (StoreError
        otherwise, and nothing is added). One audit record ("ingest") per call. A KME feeds
        fresh material through :meth:`ingest_block` instead, which waits for confirmation.
        """
        self._check_units(peer_kme, units)

        def work(tx: Tx) -> int:
            if units:
                self._fix_unit_bits(tx, peer_kme, 8 * len(units[0].material))
            existing = self._existing_units(tx, [u.unit_id for u in units])
            fresh = {u.unit_id: u for u in units if u.unit_id not in existing}  # keeps order
            new = list(fresh.values())
            added = self._add_to_pool(
                tx, peer_kme,
                [(u.unit_id, u.owner_kme, self._cipher.seal("unit:" + u.unit_id, u.material))
                 for u in new],
                block_id=None, simulated=simulated, now_s=now_s)
            detail: dict[str, object] = {
                "peer": peer_kme,
                "count": added,
                "offered": len(units),
                "first_unit": new[0].unit_id if new else None,
                "last_unit": new[-1].unit_id if new else None,
            }
            if simulated:
                detail["simulated"] = True
            self._audit(tx, action="ingest", key_ids=[], master_sae=None, slave_saes=[],
                        detail=detail, now_s=now_s)
            return added

        return self._transaction(work, write=True)

    def _select_block(self, tx: Tx, block_id: str, *, lock: bool) -> tuple[BlockInfo, str] | None:
        rows = tx.rows(f"SELECT {BLOCK_COLUMNS} FROM blocks WHERE block_id = ?"
                       + (self.for_update if lock else ""), (block_id,))
        return block_from_row(rows[0]) if rows else None

    def ingest_block(self, block: BlockInfo, units: Sequence[KeyUnit], *, data: bytes,
                     now_s: float) -> int:
        """Hold a block's units as pending until the peer confirms the same bytes.

        A repeat of the same bytes under the same block ID adds nothing (returns 0); other
        bytes under an existing block ID, or any bytes for a quarantined block, raise
        BlockConflict (nothing changes). One audit record ("ingest-block") per new block.
        """
        b = block
        self._check_units(b.peer_kme, units)
        if len(units) != b.units or (units and 8 * len(units[0].material) != b.unit_bits):
            raise StoreError(f"block {b.block_id}: units do not match the block description")
        digest = self._block_digest(b.block_id, data)

        def work(tx: Tx) -> int:
            found = self._select_block(tx, b.block_id, lock=True)
            if found is not None:
                old, old_digest = found
                same = (old.peer_kme == b.peer_kme and old.length_bytes == len(data)
                        and hmac.compare_digest(old_digest, digest))
                if not same:
                    raise BlockConflict(
                        f"block {b.block_id} is already held with other bytes (different "
                        "content under the same block identity)")
                if old.state == "quarantined":
                    raise BlockConflict(f"block {b.block_id} is quarantined")
                return 0
            if units:
                self._fix_unit_bits(tx, b.peer_kme, b.unit_bits)
            tx.run(
                f"INSERT INTO blocks ({BLOCK_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, NULL)",
                (b.block_id, b.peer_kme, len(data), b.unit_bits, len(units), digest,
                 b.confirm_tag, b.peer_tag, b.simulated, float(now_s)),
            )
            tx.run_many(
                "INSERT INTO pending_units (unit_id, block_id, idx, owner_kme, sealed) "
                "VALUES (?, ?, ?, ?, ?)",
                [(u.unit_id, b.block_id, i, u.owner_kme,
                  self._cipher.seal("unit:" + u.unit_id, u.material))
                 for i, u in enumerate(units)],
            )
            self._audit(tx, action="ingest-block", key_ids=[], master_sae=None, slave_saes=[],
                        detail={"peer": b.peer_kme, "block": b.block_id, "units": len(units),
                                "length_bytes": len(data), "simulated": b.simulated},
                        now_s=now_s)
            return len(units)

        return self._transaction(work, write=True)

    def get_block(self, block_id: str) -> BlockInfo | None:
        found = self._transaction(lambda tx: self._select_block(tx, block_id, lock=False),
                                  write=False)
        return None if found is None else found[0]

    def pending_blocks(self, peer_kme: str | None = None, limit: int = 100) -> list[BlockInfo]:
        """Blocks awaiting key confirmation, oldest first."""
        sql = f"SELECT {BLOCK_COLUMNS} FROM blocks WHERE state = 'pending'"
        params: list[object] = []
        if peer_kme is not None:
            sql += " AND peer_kme = ?"
            params.append(peer_kme)
        params.append(limit)
        rows = self._transaction(
            lambda tx: tx.rows(sql + " ORDER BY created_at_s, block_id LIMIT ?", params),
            write=False)
        return [block_from_row(r)[0] for r in rows]

    def confirm_block(self, block_id: str, *, now_s: float) -> int:
        """Move a pending block's units into the pool ("confirm" record); idempotent.

        Returns the number of units moved (0 if the block was confirmed already); raises
        BlockConflict for an unknown or quarantined block.
        """

        def work(tx: Tx) -> int:
            found = self._select_block(tx, block_id, lock=True)
            if found is None:
                raise BlockConflict(f"block {block_id} is unknown here")
            b = found[0]
            if b.state == "confirmed":
                return 0
            if b.state != "pending":
                raise BlockConflict(f"block {block_id} is {b.state}")
            # One statement, in unit order (so the pool stays oldest first). The sealed blobs
            # move as they are: the AEAD binds them to the unit ID, not to a table.
            moved = tx.run(
                "INSERT INTO units (unit_id, peer_kme, owner_kme, sealed, state, created_at_s, "
                "block_id, simulated) SELECT unit_id, ?, owner_kme, sealed, 'available', ?, "
                "block_id, ? FROM pending_units WHERE block_id = ? ORDER BY idx "
                "ON CONFLICT (unit_id) DO NOTHING",
                (b.peer_kme, float(now_s), b.simulated, block_id),
            )
            tx.run("DELETE FROM pending_units WHERE block_id = ?", (block_id,))
            tx.run("UPDATE blocks SET state = 'confirmed', decided_at_s = ? WHERE block_id = ?",
                   (float(now_s), block_id))
            self._audit(tx, action="confirm", key_ids=[], master_sae=None, slave_saes=[],
                        detail={"peer": b.peer_kme, "block": block_id, "count": moved,
                                "simulated": b.simulated}, now_s=now_s)
            return moved

        return self._transaction(work, write=True)

    def quarantine_block(self, block_id: str, *, reason: str, now_s: float) -> bool:
        """Never serve this block: its pending units are erased ("quarantine" record).

        Returns False (and changes nothing) if the block is unknown, already quarantined,
        or confirmed: confirmed units may already be part of keys.
        """

        def work(tx: Tx) -> bool:
            found = self._select_block(tx, block_id, lock=True)
            if found is None or found[0].state != "pending":
                return False
            b = found[0]
            tx.run("DELETE FROM pending_units WHERE block_id = ?", (block_id,))
            tx.run("UPDATE blocks SET state = 'quarantined', decided_at_s = ? "
                   "WHERE block_id = ?", (float(now_s), block_id))
            self._audit(tx, action="quarantine", key_ids=[], master_sae=None, slave_saes=[],
                        detail={"peer": b.peer_kme, "block": block_id, "reason": reason,
                                "units": b.units}, now_s=now_s)
            return True

        return self._transaction(work, write=True)

    def pool_status(self, peer_kme: str, *, allow_simulated: bool = False) -> PoolStatus:
        """Units available for this KME to deliver as master toward ``peer_kme``."""

        def work(tx: Tx) -> PoolStatus:
            n = tx.rows(
                "SELECT COUNT(*) FROM units "
                "WHERE peer_kme = ? AND owner_kme = ? AND state = 'available'"
                + ("" if allow_simulated else " AND simulated = ?"),
                (peer_kme, self.kme_id) + (() if allow_simulated else (False,)),
            )[0][0]
            return PoolStatus(available_units=int(n), unit_bits=self._unit_bits(tx, peer_kme))

        return self._transaction(work, write=False)

    # ---- reservation --------------------------------------------------------------------

    def reserve(
        self,
        *,
        peer_kme: str,
        master_sae: str,
        slave_saes: Sequence[str],
        number: int,
        size_bits: int,
        now_s: float,
        ttl_s: float,
        keep_material: bool,
        allow_simulated: bool = False,
    ) -> list[tuple[Assignment, DeliveredKey]]:
        """Atomically take ``number`` keys of ``size_bits`` from units owned by this KME.

        Oldest units first; InsufficientKeys (nothing changed) if there are too few. With
        ``keep_material`` False the material is erased here at once ("erase" record). Units
        of simulated blocks are taken only with ``allow_simulated``.
        """
        slaves = tuple(slave_saes)
        check_request(number, size_bits, master_sae, slaves)

        def work(tx: Tx) -> list[tuple[Assignment, DeliveredKey]]:
            unit_bits = self._known_unit_bits(tx, peer_kme)
            if unit_bits == 0:
                raise InsufficientKeys(f"no key material shared with {peer_kme} yet")
            per_key = units_per_key(size_bits, unit_bits)
            need = number * per_key
            rows = self._available_units(tx, peer_kme, need, hint, allow_simulated)
            if len(rows) < need and hint:
                # A unit below the hint can be free again (another process rolled back).
                rows = self._available_units(tx, peer_kme, need, 0, allow_simulated)
            if len(rows) >= need:
                last_seq[0] = max(int(r[2]) for r in rows[:need])
            if len(rows) < need:
                raise InsufficientKeys(
                    f"{number} key(s) of {size_bits} bits toward {peer_kme} need {need} units; "
                    f"{len(rows)} available"
                )
            out: list[tuple[Assignment, DeliveredKey]] = []
            for i in range(number):
                chunk = rows[i * per_key : (i + 1) * per_key]
                unit_ids = tuple(r[0] for r in chunk)
                a = Assignment(
                    key_id=unit_ids[0], peer_kme=peer_kme, unit_ids=unit_ids,
                    size_bits=size_bits, master_sae=master_sae, slave_saes=slaves,
                    created_at_s=float(now_s), origin="qkd",
                )
                material = compose(self._open_units(chunk), size_bits)
                self._use_units(tx, a.key_id, unit_ids, erased=not keep_material)
                self._insert_key(
                    tx, a, material if keep_material else None,
                    state="delivered" if keep_material else "erased", synced=False,
                    expires_at_s=now_s + ttl_s, simulated=any(bool(r[3]) for r in chunk),
                )
                out.append((a, DeliveredKey(a.key_id, material)))
            key_ids = [a.key_id for a, _ in out]
            records: list[AuditItem] = [
                ("deliver", key_ids, master_sae, slaves,
                 {"size_bits": size_bits, "number": number, "peer": peer_kme})]
            if not keep_material:
                records.append(("erase", key_ids, master_sae, slaves,
                                {"reason": "no slave SAE at this KME"}))
            self._audit_batch(tx, records, now_s=now_s)
            return out

        # Units are taken in seq order and new units get larger seqs, so a scan may start
        # after the last unit this process took: on PostgreSQL this skips the dead index
        # entries of used units (a queue table's classic slowdown) until vacuum removes them.
        hint = self._reserve_hint.get(peer_kme, 0)
        last_seq = [hint]
        out = self._transaction(work, write=True)
        self._reserve_hint[peer_kme] = max(self._reserve_hint.get(peer_kme, 0), last_seq[0])
        return out

    def _available_units(self, tx: Tx, peer_kme: str, need: int, after_seq: int,
                         allow_simulated: bool) -> list[Row]:
        return tx.rows(
            "SELECT unit_id, sealed, seq, simulated FROM units "
            "WHERE peer_kme = ? AND owner_kme = ? AND state = 'available' AND seq > ? "
            + ("" if allow_simulated else "AND simulated = ? ")
            + "ORDER BY seq LIMIT ?" + self.skip_locked,
            (peer_kme, self.kme_id, after_seq) + (() if allow_simulated else (False,))
            + (need,),
        )
