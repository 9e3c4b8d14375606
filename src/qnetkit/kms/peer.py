"""KME-to-KME messages over mutual TLS: key assignments, look-ups, block confirmation, relay
and PQC keys."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from qnetkit.kms.errors import KmsError
from qnetkit.kms.pki import client_ssl_context
from qnetkit.kms.store.base import Assignment


class PeerError(KmsError):
    """The peer KME could not be reached or refused a message."""


def assignment_to_json(a: Assignment) -> dict[str, Any]:
    return {
        "key_ID": a.key_id,
        "peer_kme": a.peer_kme,
        "unit_ids": list(a.unit_ids),
        "size_bits": a.size_bits,
        "master_SAE_ID": a.master_sae,
        "slave_SAE_IDs": list(a.slave_saes),
        "created_at_s": a.created_at_s,
        "origin": a.origin,
    }


def assignment_from_json(d: dict[str, Any], *, peer_kme: str) -> Assignment:
    """Parse a peer's assignment; ``peer_kme`` is the link as seen from *this* KME."""
    try:
        return Assignment(
            key_id=str(d["key_ID"]),
            peer_kme=peer_kme,
            unit_ids=tuple(str(u) for u in d["unit_ids"]),
            size_bits=int(d["size_bits"]),
            master_sae=str(d["master_SAE_ID"]),
            slave_saes=tuple(str(s) for s in d["slave_SAE_IDs"]),
            created_at_s=float(d["created_at_s"]),
            origin=str(d.get("origin", "qkd")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PeerError(f"malformed assignment from {peer_kme}: {exc.__class__.__name__}") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class PeerClient:
    """Keep-alive mTLS client toward one peer KME."""

    def __init__(self, peer_id: str, url: str, *, cert: str, key: str, ca: str,
                 timeout_s: float = 10.0, lookup_timeout_s: float = 2.0) -> None:
        self.peer_id = peer_id
        ctx = client_ssl_context(cert, key, ca)
        self._http = httpx.Client(base_url=url.rstrip("/"), verify=ctx, timeout=timeout_s)
        # Calls an SAE request waits on (look-ups, confirmation) get a short timeout, so a
        # hung peer makes the SAE wait a bounded time for a 503, not for a TCP timeout.
        self._short = httpx.Timeout(lookup_timeout_s)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              short: bool = False) -> Any:
        try:
            if short:
                r = self._http.request(method, path, json=body, timeout=self._short)
            else:
                r = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            name = exc.__class__.__name__
            raise PeerError(f"peer KME {self.peer_id} unreachable: {name}") from None
        if r.status_code == 404:
            return None
        if r.status_code >= 300:
            try:
                msg = r.json().get("message", "")
            except ValueError:
                msg = ""
            raise PeerError(f"peer KME {self.peer_id} answered {r.status_code}: {msg}")
        return r.json()

    def push_assignments(self, assignments: list[Assignment]) -> list[str]:
        out = self._call("POST", "/kme/v1/assignments",
                         {"assignments": [assignment_to_json(a) for a in assignments]})
        return [str(k) for k in (out or {}).get("acknowledged", [])]

    def lookup_many(self, key_ids: list[str]) -> list[dict[str, Any]]:
        """Assignments (as JSON) of those ``key_ids`` the peer delivered toward us: one request."""
        res = self._call("POST", "/kme/v1/assignments/lookup", {"key_IDs": key_ids}, short=True)
        items = (res or {}).get("assignments", [])
        if not isinstance(items, list):
            raise PeerError(f"malformed look-up answer from {self.peer_id}")
        return [dict(d) for d in items if isinstance(d, dict)]

    def confirm_blocks(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send our confirmation tags; the peer answers per block: confirmed (with its tag),
        mismatch or unknown."""
        # The normal timeout: confirming moves a whole block into the pool at the peer.
        res = self._call("POST", "/kme/v1/blocks/confirm", {"blocks": items})
        out = (res or {}).get("results", [])
        if not isinstance(out, list):
            raise PeerError(f"malformed confirmation answer from {self.peer_id}")
        return [dict(d) for d in out if isinstance(d, dict)]

    def relay(self, message: dict[str, Any]) -> None:
        self._call("POST", "/kme/v1/relay", message)

    def pqc(self, message: dict[str, Any]) -> None:
        self._call("POST", "/kme/v1/pqc", message)

    def kem_public(self) -> bytes:
        res = self._call("GET", "/kme/v1/kem_public")
        if res is None:
            raise PeerError(f"peer KME {self.peer_id} has no ML-KEM key")
        return unb64(str(res["public_key"]))
