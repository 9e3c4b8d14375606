"""Who is calling: the subject CN of the TLS client certificate, mapped to a role.

uvicorn does not put the peer certificate into the ASGI scope, so the HTTP protocol
classes below copy it (CN and SHA-256 fingerprint) into the per-connection app state
when the TLS connection is made; FastAPI handlers read it from ``request.state``.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from qnetkit.kms.config import KmeConfig

try:  # httptools is faster; uvicorn[standard] brings it
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Fast
except ImportError:  # pragma: no cover
    _Fast = H11Protocol  # type: ignore[misc,assignment]


@dataclass(frozen=True)
class Caller:
    cn: str | None
    fingerprint_sha256: str | None


def caller_from_transport(transport: asyncio.BaseTransport) -> Caller:
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return Caller(None, None)
    der = ssl_object.getpeercert(binary_form=True)
    info = ssl_object.getpeercert()
    cn = None
    for rdn in (info or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = str(value)
    fp = hashlib.sha256(der).hexdigest() if der else None
    return Caller(cn, fp)


def _tag(self: Any, transport: asyncio.BaseTransport) -> None:
    # app_state is copied into every request scope of this connection.
    self.app_state = {**self.app_state, "caller": caller_from_transport(transport)}


class CallerH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _tag(self, transport)


class CallerHttpToolsProtocol(_Fast):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _tag(self, transport)


@dataclass(frozen=True)
class Role:
    kind: str  # "sae" | "kme" | "ingest"
    id: str


def roles_of(cfg: KmeConfig, caller: Caller) -> list[Role]:
    """Every role the certificate may act in (a KME's own cert may also ingest)."""
    if caller.cn is None:
        return []
    roles: list[Role] = []
    for s in cfg.saes:
        if (s.cn or s.id) == caller.cn and (
            s.fingerprint_sha256 is None
            or s.fingerprint_sha256.lower().replace(":", "") == caller.fingerprint_sha256
        ):
            roles.append(Role("sae", s.id))
    for p in cfg.peers:
        if (p.cn or p.kme_id) == caller.cn:
            roles.append(Role("kme", p.kme_id))
    if caller.cn in cfg.ingest_cns or caller.cn == cfg.kme_id:
        roles.append(Role("ingest", caller.cn))
    return roles
