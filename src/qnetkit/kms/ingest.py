"""Ingest of key blocks and their key confirmation with the peer KME (part of KmeService).

A block is stored as pending (:meth:`BlockIngest.ingest_block`); the two KMEs then exchange
confirmation tags over their mutual-TLS channel (:mod:`qnetkit.kms.blocks`). The responder
checks the initiator's tag and answers with its own; the initiator checks that. A match on
both sides confirms the block (its units join the pool); a mismatch quarantines it at both
ends (never served), raises the ``qnetkit_kms_blocks_quarantined`` alarm counter, logs a
warning (block ID and peer only) and is audited. A peer that does not hold the block yet
answers "unknown" and the block stays pending; the sync loop offers it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qnetkit.kms.blocks import prepare_block, tags_match
from qnetkit.kms.config import KmeConfig
from qnetkit.kms.errors import ApiError, BlockConflict, StoreError, bad_request
from qnetkit.kms.metrics import Metrics
from qnetkit.kms.peer import PeerClient, PeerError
from qnetkit.kms.store.base import BlockInfo, KeyStore

log = logging.getLogger("qnetkit.kms")
CONFIRM_EVERY_S = 0.5  # at most this often per peer, pending blocks are offered again
CONFIRM_BATCH = 100  # blocks per confirmation message
MAX_CONFIRM_ITEMS = 1000  # blocks a peer may offer in one message


@dataclass(frozen=True)
class IngestResult:
    block_id: str
    units: int  # units the block makes (a short tail is dropped)
    units_added: int  # 0 for a repeat of the same bytes
    state: str  # pending | confirmed | quarantined


class BlockIngest:
    """Mixin of :class:`~qnetkit.kms.service.KmeService`: ingest and key confirmation."""

    cfg: KmeConfig
    store: KeyStore
    metrics: Metrics
    peers: dict[str, PeerClient]
    _confirm_lock: threading.Lock
    _last_confirm_s: dict[str, float]

    # -- ingest ------------------------------------------------------------------------------
    def ingest_block(self, peer: str, block_id: str, data: bytes, unit_bits: int, *,
                     simulated: bool = False, confirm: bool = True) -> IngestResult:
        """Store a block shared with ``peer`` as pending; try to confirm it at once.

        Refusals (simulated material where not allowed, other bytes under a known block
        ID) are logged and audited, and raised as ApiError (403, 409).
        """
        if self.cfg.peer(peer) is None:
            raise bad_request("peer_KME_ID is not a configured peer", peer_KME_ID=peer)
        if simulated and not self.cfg.allow_simulated_keys:
            self._refuse_ingest(peer, block_id, "simulated key material not allowed")
            raise ApiError(403, "this KME does not accept simulated key material "
                           "(allow_simulated_keys is false)")
        try:
            info, units = prepare_block(block_id, data, unit_bits=unit_bits,
                                        kme_id=self.cfg.kme_id, peer_kme=peer,
                                        simulated=simulated)
        except ValueError as exc:
            raise bad_request(f"bad block: {exc}") from None
        try:
            added = self.store.ingest_block(info, units, data=data, now_s=time.time())
        except (BlockConflict, StoreError) as exc:
            self._refuse_ingest(peer, info.block_id, str(exc))
            raise ApiError(409, str(exc)) from None
        self.metrics.units_ingested.inc(added)
        if confirm and peer in self.peers:
            self.confirm_blocks(peer)
        stored = self.store.get_block(info.block_id)
        state = stored.state if stored is not None else "pending"
        return IngestResult(info.block_id, len(units), added, state)

    def _refuse_ingest(self, peer: str, block_id: str, reason: str) -> None:
        log.warning("ingest of block %s from the link with %s refused: %s", block_id, peer,
                    reason)
        self.store.audit_append(action="refuse", key_ids=[], master_sae=None, slave_saes=[],
                                detail={"endpoint": "ingest", "peer": peer, "block": block_id,
                                        "reason": reason}, now_s=time.time())

    # -- key confirmation: initiator -----------------------------------------------------------
    def has_pending_blocks(self, peer: str) -> bool:
        return bool(self.store.pending_blocks(peer, limit=1))

    def confirm_blocks(self, peer: str | None = None, *, min_interval_s: float = 0.0) -> int:
        """Offer pending blocks to their peer (or every peer); returns blocks confirmed.

        One confirmation runs at a time (a caller waits for the running one, whose result
        it then sees in the store); a peer last asked less than ``min_interval_s`` ago is
        skipped, so callers on the request path cannot flood a peer that does not answer.
        """
        done = 0
        with self._confirm_lock:
            for peer_id, client in self.peers.items():
                if peer is not None and peer_id != peer:
                    continue
                now = time.monotonic()
                if now - self._last_confirm_s.get(peer_id, -1e9) < min_interval_s:
                    continue
                pending = self.store.pending_blocks(peer_id, limit=CONFIRM_BATCH)
                if pending:
                    self._last_confirm_s[peer_id] = now
                    done += self._confirm_with(peer_id, client, pending)
        return done

    def _confirm_with(self, peer_id: str, client: PeerClient, pending: list[BlockInfo]) -> int:
        items = [{"block_ID": b.block_id, "length_bytes": b.length_bytes, "tag": b.confirm_tag}
                 for b in pending]
        try:
            results = client.confirm_blocks(items)
        except PeerError as exc:
            log.info("confirmation of %d block(s) with %s deferred: %s", len(items), peer_id,
                     exc)
            return 0
        by_id = {b.block_id: b for b in pending}
        done = 0
        for r in results:
            b = by_id.pop(str(r.get("block_ID")), None)
            if b is None:
                continue
            status = r.get("status")
            if status == "confirmed" and tags_match(str(r.get("tag", "")), b.peer_tag):
                if self.store.confirm_block(b.block_id, now_s=time.time()):
                    self.metrics.blocks_confirmed.inc()
                done += 1
            elif status == "confirmed":
                self._quarantine(b, "the peer's confirmation tag does not match this block")
            elif status == "mismatch":
                self._quarantine(b, "the peer found this KME's confirmation tag wrong")
            # "unknown": the peer has not ingested the block yet; it stays pending.
        return done

    def _quarantine(self, b: BlockInfo, reason: str) -> None:
        if self.store.quarantine_block(b.block_id, reason=reason, now_s=time.time()):
            self.metrics.blocks_quarantined.inc()
            log.warning("ALARM: block %s shared with %s quarantined: %s", b.block_id, b.peer_kme,
                        reason)

    # -- key confirmation: responder -----------------------------------------------------------
    def peer_confirm(self, from_kme: str, items: Sequence[Any]) -> list[dict[str, Any]]:
        """Check a peer's confirmation tags; answer ours for the blocks that match."""
        if len(items) > MAX_CONFIRM_ITEMS:
            raise bad_request(f"at most {MAX_CONFIRM_ITEMS} blocks per confirmation")
        out: list[dict[str, Any]] = []
        for d in items:
            try:
                block_id, tag, length = str(d["block_ID"]), str(d["tag"]), int(d["length_bytes"])
            except (KeyError, TypeError, ValueError):
                raise bad_request("each block needs block_ID, tag and length_bytes") from None
            b = self.store.get_block(block_id)
            if b is None or b.peer_kme != from_kme:
                out.append({"block_ID": block_id, "status": "unknown"})
                continue
            if b.state == "quarantined":
                out.append({"block_ID": block_id, "status": "mismatch"})
                continue
            if length != b.length_bytes or not tags_match(tag, b.peer_tag):
                if b.state == "confirmed":
                    # Cannot happen between two honest KMEs: the tags matched before.
                    log.error("ALARM: peer %s disputes confirmed block %s", from_kme, block_id)
                else:
                    self._quarantine(b, "the peer's confirmation tag does not match this block")
                out.append({"block_ID": block_id, "status": "mismatch"})
                continue
            if b.state == "pending" and self.store.confirm_block(block_id, now_s=time.time()):
                self.metrics.blocks_confirmed.inc()
            out.append({"block_ID": block_id, "status": "confirmed", "tag": b.confirm_tag})
        return out
