"""Who is calling: the subject CN of the TLS client certificate, mapped to a role.

uvicorn does not put the peer certificate into the ASGI scope, so the HTTP protocol
(transport.py) copies it (CN and SHA-256 fingerprint) into the per-connection app state
when the TLS connection is made; FastAPI handlers read it from ``request.state``.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from qnetkit.kms.config import KmeConfig


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


def tag_caller(protocol: Any, transport: asyncio.BaseTransport) -> Caller:
    """Put the peer certificate's identity into the connection's app state."""
    caller = caller_from_transport(transport)
    # app_state is copied into every request scope of this connection.
    protocol.app_state = {**protocol.app_state, "caller": caller}
    return caller


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


def refusal_reason(cfg: KmeConfig, caller: Caller, kind: str) -> str:
    """Why ``caller`` may not act as ``kind``, in words for the log and the audit record."""
    if caller.cn is None:
        return "no client certificate identity"
    pinned = [s for s in cfg.saes if (s.cn or s.id) == caller.cn and s.fingerprint_sha256]
    if pinned and not any(r.kind == "sae" for r in roles_of(cfg, caller)):
        # The CN of a configured SAE on a certificate that is not the pinned one.
        return "certificate fingerprint does not match the pinned SAE (impersonation?)"
    roles = roles_of(cfg, caller)
    if not roles:
        return "certificate CN is not mapped to any SAE or KME"
    return f"certificate is a {'/'.join(sorted({r.kind for r in roles}))}, not a {kind}"
