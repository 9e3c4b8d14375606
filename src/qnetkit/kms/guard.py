"""Request guards of a KME: refusals (logged and audited), per-SAE rate limit, body limit.

Every refusal (401, 413, 429, a failed TLS handshake, a request head that is too large,
malformed or too slow) is logged with the caller's certificate identity and appended to the
audit chain as action ``refuse``. Audit records are written by one background thread, and
at most one per (reason, caller, message) per second: a flood of refusals costs the flood's sender
more than the KME (the records carry how many refusals they stand for, ``suppressed``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from qnetkit.kms.atrest import audit_key, load_kek
from qnetkit.kms.audit import checkpoint_line
from qnetkit.kms.config import KmeConfig
from qnetkit.kms.identity import Caller, roles_of
from qnetkit.kms.metrics import Metrics
from qnetkit.kms.store.base import KeyStore

log = logging.getLogger("qnetkit.kms.guard")
COALESCE_S = 1.0
COALESCE_KEYS_MAX = 10_000
QUEUE_MAX = 10_000
API_PREFIX = "/api/v1/"
PEER_PREFIX = "/kme/"


@dataclass
class TokenBucket:
    """Token bucket per key: ``rate_per_s`` tokens a second, at most ``burst`` saved up.

    ``take`` spends one token and returns 0.0, or, if none is left, the seconds until one is.
    """

    rate_per_s: float
    burst: int
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, t)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str, now_s: float) -> float:
        with self._lock:
            tokens, last = self._state.get(key, (float(self.burst), now_s))
            tokens = min(float(self.burst), tokens + (now_s - last) * self.rate_per_s)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now_s)
                return 0.0
            self._state[key] = (tokens, now_s)
            return (1.0 - tokens) / self.rate_per_s


class Refusals:
    """Log every refusal; audit it (``refuse``) from a background thread, coalesced."""

    def __init__(self, store: KeyStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_MAX)
        self._last: dict[tuple[str, str, str], float] = {}
        self._suppressed: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def refuse(self, reason: str, message: str, *, caller: Caller | None,
               peer: str | None = None, path: str | None = None, status: int | None = None,
               sae: str | None = None) -> None:
        """Record one refusal. ``reason`` is one of a fixed set (it is a metric label)."""
        cn = caller.cn if caller else None
        fp = caller.fingerprint_sha256 if caller else None
        self.metrics.refusals.labels(reason).inc()
        # %r: a path is attacker-chosen and may hold a decoded newline (no forged log lines).
        log.warning("refused (%s) cn=%s fingerprint=%s peer=%s path=%r status=%s: %s",
                    reason, cn, fp, peer, _clip(path), status, message)
        who = cn or fp or (peer or "").rsplit(":", 1)[0]
        now = time.time()
        with self._lock:
            if len(self._last) > COALESCE_KEYS_MAX:  # many peer addresses: forget old ones
                self._last = {k: t for k, t in self._last.items() if now - t < COALESCE_S}
            key = (reason, who, message)
            if now - self._last.get(key, -math.inf) < COALESCE_S:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        detail: dict[str, object] = {"reason": reason, "why": message, "cn": cn,
                                     "fingerprint_sha256": fp, "peer": peer,
                                     "path": _clip(path), "status": status,
                                     "suppressed": suppressed}
        try:
            self._queue.put_nowait({"action": "refuse", "key_ids": [], "master_sae": sae,
                                    "slave_saes": [], "detail": detail, "now_s": now})
        except queue.Full:
            log.error("refusal audit queue full: a refusal was logged but not audited")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kme-refusals", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self.store.audit_append(**item)
            except Exception as exc:  # keep auditing; the log line above already exists
                log.error("cannot audit a refusal: %s", exc.__class__.__name__)


def _clip(path: str | None) -> str | None:
    # Paths are attacker-chosen: keep log lines and audit records bounded.
    return None if path is None else path[:200]


class Checkpointer:
    """Appends HMAC-signed audit-head checkpoints to a file outside the database."""

    def __init__(self, cfg: KmeConfig, store: KeyStore) -> None:
        self.cfg = cfg
        self.store = store
        self.path: Path | None = cfg.audit_checkpoint_file
        kek = load_kek(file=str(cfg.kek.file) if cfg.kek.file else None, env=cfg.kek.env)
        self._key = audit_key(kek)
        self._last: tuple[int, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write_once(self) -> None:
        head = self.store.audit_head()
        if head == self._last or head[0] == 0:
            return
        line = checkpoint_line(self._key, self.cfg.kme_id, head[0], head[1], time.time())
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        log.info("audit checkpoint %s", line)
        self._last = head

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kme-checkpoints", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.cfg.audit_checkpoint_interval_s):
            self._safe_write()

    def _safe_write(self) -> None:
        try:
            self.write_once()
        except Exception as exc:  # the next round retries
            log.error("cannot write an audit checkpoint: %s: %s", exc.__class__.__name__, exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._safe_write()  # the final head, so a restart finds it


class Guard:
    """The per-KME guards, started and stopped with the app (see server.create_app)."""

    def __init__(self, cfg: KmeConfig, store: KeyStore, metrics: Metrics) -> None:
        self.cfg = cfg
        self.refusals = Refusals(store, metrics)
        self.bucket = TokenBucket(cfg.limits.sae_rate_per_s, cfg.limits.sae_burst)
        self.checkpointer: Checkpointer | None = None
        self._store = store

    def start(self) -> None:
        self.refusals.start()
        if self.cfg.audit_checkpoint_file is not None:
            self.checkpointer = Checkpointer(self.cfg, self._store)
            self.checkpointer.start()

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.refusals.close()


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v)
    return None


async def _answer(send: Any, status: int, message: str,
                  headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *headers]})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Pure ASGI: Cache-Control on every answer, body size limit, per-SAE rate limit."""

    def __init__(self, app: Any, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lim = self.guard.cfg.limits
        path: str = scope["path"]
        caller = scope.get("state", {}).get("caller")
        peer = _peer(scope)
        limit = lim.max_peer_body_bytes if path.startswith(PEER_PREFIX) else lim.max_body_bytes

        async def _send(message: Any) -> None:
            if message["type"] == "http.response.start":
                # Key containers must not sit in any cache (RFC 9111 §5.2.2.5).
                message["headers"] = [*message.get("headers", ()),
                                      (b"cache-control", b"no-store")]
            await send(message)

        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            self.guard.refusals.refuse("body-too-large", f"declared body over {limit} bytes",
                                       caller=caller, peer=peer, path=path, status=413)
            await _answer(_send, 413, f"request body larger than {limit} bytes",
                          [(b"connection", b"close")])
            return
        if path.startswith(API_PREFIX) and isinstance(caller, Caller):
            sae = next((r.id for r in roles_of(self.guard.cfg, caller) if r.kind == "sae"), None)
            if sae is not None:
                wait_s = self.guard.bucket.take(sae, time.monotonic())
                if wait_s > 0:
                    self.guard.refusals.refuse(
                        "rate-limited", f"over {lim.sae_rate_per_s:g} requests/s "
                        f"(burst {lim.sae_burst})", caller=caller, peer=peer, path=path,
                        status=429, sae=sae)
                    retry = str(max(1, math.ceil(wait_s))).encode()
                    await _answer(_send, 429, "too many requests from this SAE; retry later",
                                  [(b"retry-after", retry)])
                    return
        received = 0

        async def _receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # chunked bodies have no Content-Length to check first
                    self.guard.refusals.refuse("body-too-large", f"body over {limit} bytes",
                                               caller=caller, peer=peer, path=path,
                                               status=413)
                    raise HTTPException(413, f"request body larger than {limit} bytes")
            return message

        await self.app(scope, _receive, _send)


def _peer(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
