"""Assignments between the two KMEs of a link, pulled by the slave's KME (part of KmeService).

A slave SAE may ask its KME for keys before the master's KME has pushed their assignments.
The slave's KME then asks the master's KME for *all* missing key IDs in one request (at most
``peer_lookup_max_ids``), with a short timeout: an unreachable peer is a 503 with
Retry-After, never "not found", so that an SAE does not discard a good key. Every refused
dec_keys is one log line and one audit record, however many key IDs it named.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from qnetkit.kms.config import KmeConfig
from qnetkit.kms.errors import ApiError, BlockPending, SyncConflict, bad_request
from qnetkit.kms.peer import PeerClient, PeerError, assignment_from_json, assignment_to_json
from qnetkit.kms.store.base import Assignment, KeyStore

log = logging.getLogger("qnetkit.kms")


class NeedsThread(Exception):  # noqa: N818 - a signal, not an error
    """Raised by an inline (event-loop) call that would have to wait on the network; the
    server then repeats the call on a worker thread. Raised before anything changed."""


def valid_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


class AssignmentPull:
    """Mixin of :class:`~qnetkit.kms.service.KmeService`: look-ups and pushes of assignments."""

    cfg: KmeConfig
    store: KeyStore
    peers: dict[str, PeerClient]

    confirm_blocks: Callable[..., int]  # from BlockIngest

    def _refuse_dec(self, caller: str, master: str, key_ids: Sequence[str], reason: str) -> None:
        """Log (one line per request) and audit a refused dec_keys."""
        log.warning("dec_keys by %s refused (%s): %d key ID(s) of master %s", caller, reason,
                    len(key_ids), master)
        self.store.audit_append(action="refuse", key_ids=list(key_ids), master_sae=master,
                                slave_saes=[caller],
                                detail={"endpoint": "dec_keys", "reason": reason},
                                now_s=time.time())

    def _pull_missing(self, master: str, key_ids: Sequence[str], *, inline: bool) -> None:
        """Ask the master's KME, in one request, about key IDs its sync has not brought here.

        At most ``peer_lookup_max_ids`` IDs are looked up; the peer gets
        ``peer_lookup_timeout_s`` to answer. Unreachable: 503 with Retry-After, never
        "not found", so that the SAE does not discard a good key.
        """
        kme = self.cfg.kme_of_sae(master)
        if kme is None or kme == self.cfg.kme_id or kme not in self.peers:
            return
        known = self.store.lookup_many(key_ids)
        missing = [k for k in key_ids if k not in known][: self.cfg.peer_lookup_max_ids]
        if not missing:
            return
        if inline:
            raise NeedsThread
        try:
            found = self.peers[kme].lookup_many(missing)
        except PeerError as exc:
            log.warning("look-up of %d key ID(s) at peer %s failed: %s", len(missing), kme, exc)
            raise ApiError(503, "the master SAE's KME cannot be reached to look these key IDs "
                           "up; retry later", [{"peer_KME_ID": kme}],
                           retry_after_s=max(1, math.ceil(self.cfg.peer_lookup_timeout_s))
                           ) from None
        wanted = set(missing)
        conflicts = 0
        for d in found:
            a = assignment_from_json(d, peer_kme=kme)
            if a.key_id not in wanted:
                continue  # not asked for: ignored
            try:
                self._assign_pulled(kme, a)
            except SyncConflict:
                conflicts += 1
        if conflicts:
            log.error("%d assignment(s) pulled from peer %s conflict with this store", conflicts,
                      kme)

    def _assign_pulled(self, kme: str, a: Assignment) -> None:
        try:
            self.store.assign(a, now_s=time.time(), ttl_s=self.cfg.key_ttl_s)
        except BlockPending:
            # The peer confirmed the block first; confirm it here too, then apply.
            self.confirm_blocks(kme)
            self.store.assign(a, now_s=time.time(), ttl_s=self.cfg.key_ttl_s)

    # -- peer side --------------------------------------------------------------------------
    def peer_assign(self, peer_kme: str, items: Sequence[dict[str, Any]]) -> list[str]:
        done = []
        now = time.time()
        for d in items:
            a = assignment_from_json(d, peer_kme=peer_kme)
            try:
                self.store.assign(a, now_s=now, ttl_s=self.cfg.key_ttl_s)
            except BlockPending:
                self.confirm_blocks(peer_kme)
                self.store.assign(a, now_s=now, ttl_s=self.cfg.key_ttl_s)
            done.append(a.key_id)
        return done

    def peer_lookup_many(self, peer_kme: str, key_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Assignments of QKD keys this KME delivered toward ``peer_kme``, among ``key_ids``."""
        cap = max(self.cfg.peer_lookup_max_ids, self.cfg.limits.max_key_per_request)
        if len(key_ids) > cap:
            raise bad_request(f"at most {cap} key_IDs per look-up")
        found = self.store.lookup_many([k for k in key_ids if valid_uuid(k)])
        return [assignment_to_json(a) for a in found.values()
                if a.peer_kme == peer_kme and a.origin == "qkd"]

    def peer_lookup(self, peer_kme: str, key_id: str) -> dict[str, Any] | None:
        a = self.store.lookup(key_id)
        if a is None or a.peer_kme != peer_kme or a.origin != "qkd":
            return None
        return assignment_to_json(a)
