"""The KME's behaviour, independent of HTTP: ETSI 014 semantics, peer sync, relay, fallback.

ETSI GS QKD 014 V1.1.1 clause numbers are cited where they decide a behaviour. Ingest and key
confirmation of blocks are in :mod:`qnetkit.kms.ingest`, look-ups of assignments at the
master's KME in :mod:`qnetkit.kms.lookup`.

Delivery semantics of dec_keys (clause 5.4 leaves them open): at-least-once to the same
authenticated slave SAE within ``refetch_window_s`` of its first retrieval, never to any
other SAE. A KME that crashes after committing a retrieval but before answering loses
nothing: the SAE asks again and gets the same bytes. After the window (and once every slave
has the key) the material is erased; a later request is answered like an unknown key ID.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qnetkit.kms import hybrid
from qnetkit.kms.config import KmeConfig
from qnetkit.kms.errors import (
    ApiError as ApiError,
)
from qnetkit.kms.errors import (
    InsufficientKeys,
    KeyNotFound,
    KmsError,
    NotEntitled,
    SimulatedKeyRefused,
)
from qnetkit.kms.errors import bad_request as bad_request
from qnetkit.kms.faults import fault_point
from qnetkit.kms.ingest import CONFIRM_EVERY_S, BlockIngest
from qnetkit.kms.lookup import AssignmentPull, valid_uuid
from qnetkit.kms.lookup import NeedsThread as NeedsThread
from qnetkit.kms.metrics import Metrics
from qnetkit.kms.models import Status
from qnetkit.kms.peer import (
    PeerClient,
    PeerError,
    assignment_from_json,
    assignment_to_json,
    b64,
    unb64,
)
from qnetkit.kms.store.base import Assignment, DeliveredKey, KeyStore

log = logging.getLogger("qnetkit.kms")
SYNC_COALESCE_S = 0.05
# One answer for an unknown key ID and for another pair's key ID (and for an expired or
# already retrieved one), so that no SAE can learn whether another pair's key ID exists.
KEY_NOT_FOUND = "key_ID not found, expired or already retrieved"


def _relay_sae(kme_id: str) -> str:
    # Link keys used for relaying are booked to pseudo-SAEs that no certificate maps to.
    return f"kme:{kme_id}"


@dataclass
class KmeService(BlockIngest, AssignmentPull):
    cfg: KmeConfig
    store: KeyStore
    metrics: Metrics
    kem: hybrid.KemKeyPair | None = None
    peers: dict[str, PeerClient] = field(default_factory=dict)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sync_thread: threading.Thread | None = None
    _peer_kem: dict[str, bytes] = field(default_factory=dict)
    _confirm_lock: threading.Lock = field(default_factory=threading.Lock)
    _last_confirm_s: dict[str, float] = field(default_factory=dict)

    # -- set-up -----------------------------------------------------------------------------
    def connect_peers(self) -> None:
        t = self.cfg.tls
        for p in self.cfg.peers:
            self.peers[p.kme_id] = PeerClient(p.kme_id, p.url, cert=str(t.cert), key=str(t.key),
                                              ca=str(t.ca),
                                              lookup_timeout_s=self.cfg.peer_lookup_timeout_s)

    def start_background(self) -> None:
        self._sync_thread = threading.Thread(target=self._sync_loop, name="kme-sync", daemon=True)
        self._sync_thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=5)
        for c in self.peers.values():
            c.close()
        self.store.close()

    # -- ETSI 014 clause 5.2: Get status ----------------------------------------------------
    def status(self, caller_sae: str, slave: str) -> Status:
        target = self._target_kme(slave)
        lim = self.cfg.limits
        hop = self.cfg.next_hop(target) if target != self.cfg.kme_id else None
        stored = 0
        if hop is not None:
            pool = self.store.pool_status(hop, allow_simulated=self.cfg.allow_simulated_keys)
            if pool.unit_bits:
                per_key = -(-lim.key_size_bits // pool.unit_bits)
                stored = pool.available_units // per_key
        else:
            stored = lim.max_key_count  # local pairs draw fresh random keys
        return Status(
            source_KME_ID=self.cfg.kme_id,
            target_KME_ID=target,
            master_SAE_ID=caller_sae,
            slave_SAE_ID=slave,
            key_size=lim.key_size_bits,
            stored_key_count=min(stored, lim.max_key_count),
            max_key_count=lim.max_key_count,
            max_key_per_request=lim.max_key_per_request,
            max_key_size=lim.max_key_size_bits,
            min_key_size=lim.min_key_size_bits,
            max_SAE_ID_count=lim.max_sae_id_count,
        )

    def _target_kme(self, sae: str) -> str:
        kme = self.cfg.kme_of_sae(sae)
        if kme is None:
            raise bad_request("unknown SAE ID", unknown_SAE_ID=sae)
        return kme

    # -- ETSI 014 clause 5.3: Get key -------------------------------------------------------
    def enc_keys(
        self,
        caller_sae: str,
        slave: str,
        *,
        number: int | None,
        size: int | None,
        additional_slaves: Sequence[str] | None,
        extension_mandatory: Sequence[dict[str, Any]] | None,
        inline: bool = False,
    ) -> list[DeliveredKey]:
        lim = self.cfg.limits
        n = 1 if number is None else number
        size_bits = lim.key_size_bits if size is None else size
        if not 1 <= n <= lim.max_key_per_request:
            raise bad_request(f"number must be between 1 and {lim.max_key_per_request}",
                              number=n)
        if size_bits % 8:
            raise bad_request("size shall be a multiple of 8", size=size_bits)
        if not lim.min_key_size_bits <= size_bits <= lim.max_key_size_bits:
            raise bad_request(
                f"size must be between {lim.min_key_size_bits} and {lim.max_key_size_bits}",
                size=size_bits)
        if extension_mandatory:
            # Clause 6.2: the KME shall handle every mandatory extension or return an error;
            # this KME implements none.
            raise bad_request("not all extension_mandatory parameters are supported",
                              extension_mandatory_unsupported=list(extension_mandatory))
        slaves = [slave, *(additional_slaves or [])]
        if len(set(slaves)) != len(slaves):
            raise bad_request("a slave SAE ID is repeated")
        if len(slaves) - 1 > lim.max_sae_id_count:
            raise bad_request(f"at most {lim.max_sae_id_count} additional slave SAE IDs",
                              additional_slave_SAE_IDs=len(slaves) - 1)
        if caller_sae in slaves:
            raise bad_request("the master SAE cannot be its own slave")
        targets = {self._target_kme(s) for s in slaves}
        if len(targets) != 1:
            raise bad_request("all slave SAEs must be served by the same KME",
                              target_KMEs=sorted(targets))
        target = targets.pop()
        now = time.time()
        ttl = self.cfg.key_ttl_s
        if target == self.cfg.kme_id:
            keys = self._local_keys(caller_sae, slaves, n, size_bits, now)
        elif self.cfg.peer(target) is not None:
            def take() -> list[DeliveredKey]:
                pairs = self.store.reserve(peer_kme=target, master_sae=caller_sae,
                                           slave_saes=slaves, number=n, size_bits=size_bits,
                                           now_s=now, ttl_s=ttl, keep_material=False,
                                           allow_simulated=self.cfg.allow_simulated_keys)
                self._wake.set()
                return [k for _, k in pairs]

            try:
                keys = take()
            except InsufficientKeys:
                keys = []
                # Blocks awaiting confirmation: confirm them now (or wait for the thread that
                # is doing so) rather than refuse.
                if self.has_pending_blocks(target):
                    if inline:
                        raise NeedsThread from None
                    self.confirm_blocks(target, min_interval_s=CONFIRM_EVERY_S)
                # Once more: a block may also have been confirmed meanwhile by the peer's
                # confirmation request, which this KME answers on another thread.
                with contextlib.suppress(InsufficientKeys):
                    keys = take()
                if not keys:
                    if inline and self.cfg.on_empty(caller_sae, slaves[0]) == "fallback-pqc":
                        raise NeedsThread from None
                    keys = self._on_empty(caller_sae, slaves, target, n, size_bits, now)
        else:
            if inline:
                raise NeedsThread
            keys = self._relay_keys(caller_sae, slaves, target, n, size_bits, now)
        self.metrics.keys_delivered.inc(len(keys))
        return keys

    def _local_keys(self, master: str, slaves: list[str], n: int, size_bits: int,
                    now: float) -> list[DeliveredKey]:
        # Both SAEs behind this KME: no QKD link is involved, the key is fresh randomness.
        out = []
        for _ in range(n):
            key = DeliveredKey(str(uuid.uuid4()), secrets.token_bytes(size_bits // 8))
            a = Assignment(key.key_id, self.cfg.kme_id, (), size_bits, master, tuple(slaves),
                           now, "local")
            self.store.put_key(a, key.material, now_s=now, ttl_s=self.cfg.key_ttl_s,
                               synced=True)
            out.append(key)
        return out

    def _on_empty(self, master: str, slaves: list[str], target: str, n: int, size_bits: int,
                  now: float) -> list[DeliveredKey]:
        policy = self.cfg.on_empty(master, slaves[0])
        if policy != "fallback-pqc":
            self.metrics.refused_empty.inc()
            raise ApiError(503, "not enough QKD key material for this SAE pair",
                           [{"policy": "refuse", "target_KME_ID": target}])
        try:
            return [self._pqc_key(master, slaves, target, size_bits, now) for _ in range(n)]
        except (PeerError, KmsError) as exc:
            raise ApiError(503, "QKD keys exhausted and the PQC fallback failed",
                           [{"reason": str(exc)}]) from None

    def _pqc_key(self, master: str, slaves: list[str], target: str, size_bits: int,
                 now: float) -> DeliveredKey:
        peer = self.peers[target]
        pub = self._peer_kem.get(target)
        if pub is None:
            pub = self._peer_kem[target] = peer.kem_public()
        secret, ct = hybrid.encapsulate(pub)
        key_id = str(uuid.uuid4())
        material = hybrid.combine(qkd_key=None, pqc_secret=secret, key_id=key_id,
                                  master_sae=master, slave_saes=slaves,
                                  size_bytes=size_bits // 8)
        a = Assignment(key_id, target, (), size_bits, master, tuple(slaves), now, "pqc")
        peer.pqc({"assignment": assignment_to_json(a), "kem_ciphertext": b64(ct)})
        self.store.audit_append(action="fallback-pqc", key_ids=[key_id], master_sae=master,
                                slave_saes=slaves, detail={"peer": target, "kem": "ML-KEM-768"},
                                now_s=now)
        self.metrics.fallback_pqc.inc()
        return DeliveredKey(key_id, material)

    # -- trusted-node relay -----------------------------------------------------------------
    def _relay_keys(self, master: str, slaves: list[str], target: str, n: int, size_bits: int,
                    now: float) -> list[DeliveredKey]:
        out = []
        for _ in range(n):
            key = DeliveredKey(str(uuid.uuid4()), secrets.token_bytes(size_bits // 8))
            try:
                self._forward(key, master, slaves, target, size_bits, [self.cfg.kme_id], now)
            except InsufficientKeys:
                self.metrics.refused_empty.inc()
                raise ApiError(503, "not enough link key to relay toward the slave's KME",
                               [{"target_KME_ID": target}]) from None
            except PeerError as exc:
                raise ApiError(503, "key relay failed", [{"reason": str(exc)}]) from None
            self.store.audit_append(action="deliver", key_ids=[key.key_id], master_sae=master,
                                    slave_saes=slaves,
                                    detail={"relayed_to": target, "size_bits": size_bits},
                                    now_s=now)
            out.append(key)
        return out

    def _forward(self, key: DeliveredKey, master: str, slaves: list[str], target: str,
                 size_bits: int, path: list[str], now: float) -> None:
        """One-time-pad ``key`` under a fresh link key to the next hop toward ``target``."""
        hop = self.cfg.next_hop(target)
        if hop is None:
            raise PeerError(f"no route to KME {target}")
        ((link, pad),) = self.store.reserve(
            peer_kme=hop, master_sae=_relay_sae(self.cfg.kme_id), slave_saes=[_relay_sae(hop)],
            number=1, size_bits=size_bits, now_s=now, ttl_s=self.cfg.key_ttl_s,
            keep_material=False, allow_simulated=self.cfg.allow_simulated_keys)
        self.store.mark_synced([link.key_id])  # travels inside the relay message itself
        ct = bytes(a ^ b for a, b in zip(key.material, pad.material, strict=True))
        self.peers[hop].relay({
            "key_ID": key.key_id, "master_SAE_ID": master, "slave_SAE_IDs": slaves,
            "size_bits": size_bits, "target_KME_ID": target, "path": path,
            "link_assignment": assignment_to_json(link), "ciphertext": b64(ct),
            "created_at_s": now,
        })

    # -- ETSI 014 clause 5.4: Get key with key IDs ------------------------------------------
    def dec_keys(self, caller_sae: str, master: str, key_ids: Sequence[str],
                 inline: bool = False) -> list[DeliveredKey]:
        lim = self.cfg.limits
        if not key_ids:
            raise bad_request("key_IDs is empty")
        if len(key_ids) > lim.max_key_per_request:
            raise bad_request(f"at most {lim.max_key_per_request} key_IDs per request")
        bad = [k for k in key_ids if not valid_uuid(k)]
        if bad:
            raise bad_request("key_ID is not a UUID", invalid_key_IDs=bad[:10])
        if len(set(key_ids)) != len(key_ids):
            raise bad_request("a key_ID is repeated")
        self._pull_missing(master, key_ids, inline=inline)
        fault_point("dec_keys:before_retrieve")
        try:
            keys = self.store.retrieve(
                slave_sae=caller_sae, master_sae=master, key_ids=list(key_ids),
                now_s=time.time(), refetch_window_s=self.cfg.refetch_window_s,
                allow_simulated=self.cfg.allow_simulated_keys,
                before_commit=lambda: fault_point("dec_keys:before_commit"))
        except (KeyNotFound, NotEntitled) as exc:
            # Clause 5.4 lists no 404. An unknown ID and another pair's ID get the same answer.
            reason = "not_entitled" if isinstance(exc, NotEntitled) else "not_found"
            self._refuse_dec(caller_sae, master, key_ids, reason)
            raise ApiError(400, KEY_NOT_FOUND) from None
        except SimulatedKeyRefused:
            # Only an entitled SAE gets here (entitlement is checked first).
            self._refuse_dec(caller_sae, master, key_ids, "simulated_key")
            raise ApiError(400, "simulated key material: this KME does not serve simulated "
                           "keys (allow_simulated_keys is false)") from None
        fault_point("dec_keys:after_commit")
        self.metrics.keys_retrieved.inc(len(keys))
        return keys

    def peer_relay(self, from_kme: str, msg: dict[str, Any]) -> None:
        now = time.time()
        link = assignment_from_json(msg["link_assignment"], peer_kme=from_kme)
        if link.master_sae != _relay_sae(from_kme) or link.slave_saes != (
            _relay_sae(self.cfg.kme_id),):
            raise bad_request("relay link key is not booked to this hop")
        self.store.assign(link, now_s=now, ttl_s=self.cfg.key_ttl_s)
        (pad,) = self.store.retrieve(slave_sae=_relay_sae(self.cfg.kme_id),
                                     master_sae=_relay_sae(from_kme), key_ids=[link.key_id],
                                     now_s=now)
        ct = unb64(str(msg["ciphertext"]))
        if len(ct) != len(pad.material):
            raise bad_request("relay ciphertext and link key differ in length")
        key = DeliveredKey(str(msg["key_ID"]),
                           bytes(a ^ b for a, b in zip(ct, pad.material, strict=True)))
        master = str(msg["master_SAE_ID"])
        slaves = [str(s) for s in msg["slave_SAE_IDs"]]
        size_bits = int(msg["size_bits"])
        target = str(msg["target_KME_ID"])
        path = [str(p) for p in msg["path"]] + [self.cfg.kme_id]
        if target == self.cfg.kme_id:
            a = Assignment(key.key_id, from_kme, (), size_bits, master, tuple(slaves),
                           float(msg["created_at_s"]), "relay")
            self.store.put_key(a, key.material, now_s=now, ttl_s=self.cfg.key_ttl_s,
                               synced=True)
            self.store.audit_append(action="relay", key_ids=[key.key_id], master_sae=master,
                                    slave_saes=slaves, detail={"path": path, "final": True},
                                    now_s=now)
            return
        # Intermediate hop: this node sees the key in the clear; that is the trusted-node model.
        self.store.audit_append(action="relay", key_ids=[key.key_id], master_sae=master,
                                slave_saes=slaves,
                                detail={"path": path, "to": target, "trusted_node": True},
                                now_s=now)
        log.info("relaying key %s from %s toward %s as a trusted node", key.key_id, from_kme,
                 target)
        try:
            self._forward(key, master, slaves, target, size_bits, path, now)
        except InsufficientKeys:
            raise ApiError(503, f"not enough link key at {self.cfg.kme_id} toward "
                           f"{self.cfg.next_hop(target)}") from None

    def peer_pqc(self, from_kme: str, msg: dict[str, Any]) -> None:
        if self.kem is None:
            raise ApiError(503, "this KME has no ML-KEM key")
        a = assignment_from_json(msg["assignment"], peer_kme=from_kme)
        secret = hybrid.decapsulate(self.kem, unb64(str(msg["kem_ciphertext"])))
        material = hybrid.combine(qkd_key=None, pqc_secret=secret, key_id=a.key_id,
                                  master_sae=a.master_sae, slave_saes=list(a.slave_saes),
                                  size_bytes=a.size_bits // 8)
        now = time.time()
        self.store.put_key(a, material, now_s=now, ttl_s=self.cfg.key_ttl_s, synced=True)
        self.store.audit_append(action="fallback-pqc", key_ids=[a.key_id],
                                master_sae=a.master_sae, slave_saes=a.slave_saes,
                                detail={"peer": from_kme, "kem": "ML-KEM-768"}, now_s=now)

    # -- background: push assignments to peers, erase expired keys --------------------------
    def sync_once(self) -> int:
        pending = self.store.unsynced()
        by_peer: dict[str, list[Assignment]] = {}
        for a in pending:
            by_peer.setdefault(a.peer_kme, []).append(a)
        done = 0
        for peer_id, items in by_peer.items():
            client = self.peers.get(peer_id)
            if client is None:
                continue
            try:
                acked = client.push_assignments(items)
            except PeerError as exc:
                log.warning("sync to %s deferred: %s", peer_id, exc)
                continue
            self.store.mark_synced(acked)
            done += len(acked)
        return done

    def _sync_loop(self) -> None:
        last_expire = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)
            # Coalesce: under load one push carries many assignments (a slave that asks
            # before the push arrives makes its KME pull the assignment instead).
            self._stop.wait(SYNC_COALESCE_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.sync_once()
                self.confirm_blocks(None, min_interval_s=CONFIRM_EVERY_S)
                if time.time() - last_expire > 5.0:
                    last_expire = time.time()
                    n = self.store.expire(now_s=last_expire)
                    if n:
                        self.metrics.keys_expired.inc(n)
            except Exception:  # keep the loop alive; the next round retries
                log.exception("background sync failed")
