"""The KME's connections: hardened TLS, a deadline and a size limit on request heads.

uvicorn listens on plain TCP and each accepted connection is upgraded here with
``loop.start_tls`` and :func:`pki.server_ssl_context` (TLS 1.3, or TLS 1.2 with ECDHE + AEAD
suites only; strict X.509; client certificate required). Doing the handshake here, not in
uvicorn, is what lets a failed handshake be logged and audited with the peer's address
(asyncio and uvloop drop it silently). The TLS handshake plus the request head must arrive
within ``header_timeout_s`` and the head must fit in ``max_header_bytes``; errors answered
before the app runs are ETSI 014 Error objects (clause 6.5), like every other answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from qnetkit.kms.config import KmeConfig
from qnetkit.kms.identity import Caller, tag_caller
from qnetkit.kms.pki import server_ssl_context

log = logging.getLogger("qnetkit.kms.transport")
GUARD_STATE = "kme_guard"  # lifespan-state key of the server's guard.Guard


@dataclass(frozen=True)
class TransportPolicy:
    cert: str
    key: str
    ca: str
    max_header_bytes: int
    header_timeout_s: float

    @classmethod
    def of(cls, cfg: KmeConfig) -> TransportPolicy:
        return cls(str(cfg.tls.cert), str(cfg.tls.key), str(cfg.tls.ca),
                   cfg.limits.max_header_bytes, cfg.limits.header_timeout_s)


class KmeUvicornConfig(uvicorn.Config):
    """uvicorn's Config plus the KME's transport policy. The TLS context is built in load(),
    once per (worker) process: an SSLContext cannot be pickled to a spawned worker."""

    def __init__(self, app: Any, *, policy: TransportPolicy, **kw: Any) -> None:
        super().__init__(app, http=KmeHttpProtocol, **kw)
        self.kme_policy = policy
        self.kme_ssl: ssl.SSLContext | None = None

    def load(self) -> None:
        super().load()
        p = self.kme_policy
        self.kme_ssl = server_ssl_context(p.cert, p.key, p.ca)

    @property
    def is_ssl(self) -> bool:
        # False while uvicorn loads (it must not build a TLS context of its own); true after,
        # so its start-up line names https://.
        return getattr(self, "kme_ssl", None) is not None


class _HeadRejected(Exception):  # noqa: N818 - a signal out of a parser callback
    pass


class KmeHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the KME's TLS upgrade, head limits and Error bodies."""

    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        policy: TransportPolicy | None = getattr(config, "kme_policy", None)
        self._max_head = policy.max_header_bytes if policy else 64 * 1024
        self._head_timeout_s = policy.header_timeout_s if policy else 60.0
        self._head_bytes = 0  # of the request line and headers parsed so far
        self._in_head = False  # between message begin and headers complete
        self._unparsed = 0  # bytes fed while a head stays incomplete (the parser holds them)
        self._head_timer: asyncio.TimerHandle | None = None
        self._reject: tuple[int, str] | None = None
        self._peer: str | None = None
        self._caller: Caller | None = None
        self._made = False
        self._early: list[bytes] = []  # bytes decrypted before start_tls() returned

    # -- TLS ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else None
        ctx: ssl.SSLContext | None = getattr(self.config, "kme_ssl", None)
        if ctx is None or transport.get_extra_info("sslcontext") is not None:
            self._connected(transport)
            return
        # start_tls() must take the transport over *now*: uvloop starts reading as soon as
        # connection_made returns, and a ClientHello read by this protocol would be lost to
        # the handshake. So its first step (which installs the TLS protocol) runs here,
        # synchronously, and later steps run when the future it waits on is done.
        coro = self.loop.start_tls(transport, self, ctx, server_side=True,
                                   ssl_handshake_timeout=self._head_timeout_s)
        self._step(coro, transport)

    def _step(self, coro: Any, raw: asyncio.Transport) -> None:
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            if done.value is None:  # pragma: no cover - closed meanwhile
                raw.abort()
            else:
                self._connected(done.value)
            return
        except Exception as exc:
            self._handshake_failed(exc, raw)
            return
        waiting.add_done_callback(lambda _: self._step(coro, raw))

    def _handshake_failed(self, exc: Exception, raw: asyncio.Transport) -> None:
        raw.abort()
        if isinstance(exc, ssl.SSLError):
            reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            self._refuse("tls-handshake", f"TLS handshake failed: {reason}", None)
        elif isinstance(exc, ConnectionAbortedError | TimeoutError):
            self._refuse("request-timeout",
                         f"no TLS handshake within {self._head_timeout_s:g} s", None)
        else:  # the peer went away mid-handshake (port probes do this)
            log.debug("connection from %s closed during the TLS handshake: %s", self._peer,
                      exc.__class__.__name__)

    def _connected(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._made = True
        self._caller = tag_caller(self, transport)
        self._arm_head_timer()
        early, self._early = b"".join(self._early), []
        if early:
            self.data_received(early)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._made:  # the handshake failed: uvicorn never saw this connection
            return
        self._cancel_head_timer()
        super().connection_lost(exc)

    # -- request head: deadline and size -----------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self._head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        cycle = self.cycle
        body_pending = (cycle is not None and not self._in_head and cycle.more_body
                        and not cycle.response_complete)
        if not (self._in_head or cycle is None or body_pending):
            return  # the whole request is in; the app is answering
        message = f"request not received within {self._head_timeout_s:g} s"
        self._refuse("request-timeout", message, 408)
        if body_pending and cycle is not None:
            cycle.disconnected = True  # the app waiting for the body must not answer after us
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self._send_error(408, message)

    def data_received(self, data: bytes) -> None:
        if not self._made:  # uvloop may deliver the first bytes before start_tls() returns
            self._early.append(data)
            return
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_timer()  # a new request starts on a kept-alive connection
        super().data_received(data)
        # The parser reports a header only once it is complete, so a head sent slowly, or as
        # one endless line, is also bounded by the bytes fed while it stays incomplete.
        if self._in_head and not self.transport.is_closing():
            self._unparsed += len(data)
            if self._unparsed > self._max_head:
                self._reject = (431, f"request head larger than {self._max_head} bytes")
                self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._in_head = True
        self._unparsed = 0
        self._reject = None

    def _count(self, n: int, status: int, what: str) -> None:
        self._head_bytes += n
        if self._head_bytes > self._max_head:
            self._reject = (status, f"{what} larger than {self._max_head} bytes")
            raise _HeadRejected

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 414, "request target")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 431, "request head")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if not self.url.isascii():
            self._reject = (400, "the request target must be ASCII (percent-encode the rest)")
            raise _HeadRejected
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_head_timer()
        super().on_message_complete()

    def shutdown(self) -> None:
        """Server shutdown: an idle connection is dropped at once. (A TLS close would wait
        for the peer's close_notify, and an idle pooled client never reads: the server then
        hangs in "Waiting for connections to close" until it is killed.)"""
        if self.cycle is None or self.cycle.response_complete:
            self._cancel_head_timer()
            self.transport.abort()
        else:
            self.cycle.keep_alive = False

    # -- answers before the app ------------------------------------------------------------
    def send_400_response(self, msg: str) -> None:
        status, message = self._reject or (
            400, "not a valid HTTP/1.1 request (bad syntax, or a byte that is not allowed)")
        self._refuse("malformed-request", message, status)
        self._send_error(status, message)

    def _send_error(self, status: int, message: str) -> None:
        self._cancel_head_timer()
        body = json.dumps({"message": message}, separators=(",", ":")).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"content-type: application/json\r\n",
                        b"content-length: " + str(len(body)).encode() + b"\r\n",
                        b"cache-control: no-store\r\n", b"connection: close\r\n\r\n", body])
        self.transport.write(b"".join(content))
        self.transport.close()

    def _refuse(self, reason: str, message: str, status: int | None) -> None:
        guard = self.app_state.get(GUARD_STATE)
        if guard is None:  # no lifespan (embedded use): log only
            log.warning("refused (%s) peer=%s: %s", reason, self._peer, message)
            return
        guard.refusals.refuse(reason, message, caller=self._caller, peer=self._peer,
                              status=status)
