"""ETSI GS QKD 014 V1.1.1 SAE client: Get status, Get key and Get key with key IDs over mTLS.

Paths and data formats are those of the specification (clauses 5 and 6)::

    GET       /api/v1/keys/{slave_SAE_ID}/status
    GET/POST  /api/v1/keys/{slave_SAE_ID}/enc_keys
    GET/POST  /api/v1/keys/{master_SAE_ID}/dec_keys

The SAE authenticates with its client certificate (its subject CN is its identity); one
keep-alive ``httpx.Client`` is used per instance. Key bytes never appear in reprs or errors.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from qnetkit.kms.errors import KmsError
from qnetkit.kms.pki import client_ssl_context

__all__ = [
    "Etsi014Client",
    "Key",
    "KmeConnectionError",
    "KmeHttpError",
    "KmeResponseError",
]

_API = "/api/v1/keys"


class KmeHttpError(KmsError):
    """The KME answered with a non-2xx status; ``message``/``details`` are its Error object."""

    def __init__(
        self, status_code: int, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.details: list[dict[str, Any]] = list(details or [])
        super().__init__(f"KME returned HTTP {status_code}: {message}")


class KmeConnectionError(KmsError):
    """The KME could not be reached (DNS, TCP, TLS handshake, timeout)."""


class KmeResponseError(KmsError):
    """A 2xx response that is not the data format ETSI GS QKD 014 clause 6 prescribes."""


@dataclass(frozen=True)
class Key:
    """One key of a Key container: its UUID and its bytes (left out of the repr)."""

    key_id: str
    key: bytes = field(repr=False)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _sae_path(sae_id: str, leaf: str) -> str:
    if not isinstance(sae_id, str) or not sae_id:
        raise ValueError("SAE ID must be a non-empty string")
    return f"{_API}/{quote(sae_id, safe='')}/{leaf}"


class Etsi014Client:
    """Client of one KME for one SAE (the certificate's CN is the calling SAE's ID).

    ``base_url`` is e.g. ``https://localhost:8443``; the host must be in the KME
    certificate's SAN. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        cert: Path,
        key: Path,
        ca: Path,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        ctx = client_ssl_context(cert, key, ca)
        self._http = httpx.Client(base_url=self.base_url, verify=ctx, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"Etsi014Client({self.base_url!r})"

    def __enter__(self) -> Etsi014Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ----------------------------------------------------------------- API calls

    def status(self, slave_sae_id: str) -> dict[str, Any]:
        """Get status (clause 5.1): the Status object for ``slave_sae_id``."""
        data = self._request("GET", _sae_path(slave_sae_id, "status"))
        if not isinstance(data, dict):
            raise KmeResponseError("status: response is not a JSON object")
        return data

    def enc_keys(
        self,
        slave_sae_id: str,
        *,
        number: int = 1,
        size: int | None = None,
        additional_slave_sae_ids: Sequence[str] | None = None,
        extension_mandatory: Sequence[Mapping[str, Any]] | None = None,
        extension_optional: Sequence[Mapping[str, Any]] | None = None,
        method: Literal["GET", "POST"] | None = None,
    ) -> list[Key]:
        """Get key (clause 5.2): ``number`` new keys of ``size`` **bits** shared with
        ``slave_sae_id`` (and the additional slaves).

        ``method=None`` picks GET with query parameters when only ``number``/``size`` are
        given and POST with a Key request body otherwise; GET with body-only fields is a
        ValueError.
        """
        body_only = (
            additional_slave_sae_ids is not None
            or extension_mandatory is not None
            or extension_optional is not None
        )
        if method is None:
            method = "POST" if body_only else "GET"
        path = _sae_path(slave_sae_id, "enc_keys")
        if method == "GET":
            if body_only:
                raise ValueError(
                    "enc_keys: additional_slave_sae_ids and extensions need method='POST'"
                )
            params: dict[str, int] = {"number": number}
            if size is not None:
                params["size"] = size
            data = self._request("GET", path, params=params)
        elif method == "POST":
            body: dict[str, Any] = {"number": number}
            if size is not None:
                body["size"] = size
            if additional_slave_sae_ids is not None:
                if isinstance(additional_slave_sae_ids, str):
                    raise TypeError("additional_slave_sae_ids must be a sequence of IDs")
                body["additional_slave_SAE_IDs"] = list(additional_slave_sae_ids)
            if extension_mandatory is not None:
                body["extension_mandatory"] = [dict(e) for e in extension_mandatory]
            if extension_optional is not None:
                body["extension_optional"] = [dict(e) for e in extension_optional]
            data = self._request("POST", path, json=body)
        else:
            raise ValueError(f"enc_keys: method must be 'GET' or 'POST', not {method!r}")
        return _parse_keys(data)

    def dec_keys(
        self,
        master_sae_id: str,
        key_ids: Sequence[str],
        *,
        method: Literal["GET", "POST"] = "POST",
    ) -> list[Key]:
        """Get key with key IDs (clause 5.3): the keys ``key_ids`` made by ``master_sae_id``.

        GET sends one ``key_ID`` query parameter (so exactly one ID); POST sends a Key IDs
        body ``{"key_IDs": [{"key_ID": ...}, ...]}``.
        """
        if isinstance(key_ids, str):
            raise TypeError("key_ids must be a sequence of key IDs, not one string")
        ids = list(key_ids)
        if not ids:
            raise ValueError("dec_keys: give at least one key ID")
        path = _sae_path(master_sae_id, "dec_keys")
        if method == "GET":
            if len(ids) != 1:
                raise ValueError("dec_keys: GET carries exactly one key_ID; use method='POST'")
            data = self._request("GET", path, params={"key_ID": ids[0]})
        elif method == "POST":
            data = self._request(
                "POST", path, json={"key_IDs": [{"key_ID": i} for i in ids]}
            )
        else:
            raise ValueError(f"dec_keys: method must be 'GET' or 'POST', not {method!r}")
        return _parse_keys(data)

    # ----------------------------------------------------------------- transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> Any:
        try:
            r = self._http.request(method, path, params=params, json=json)
        except httpx.TransportError as exc:
            reason = _one_line(str(exc)) or type(exc).__name__
            raise KmeConnectionError(
                f"cannot reach KME at {self.base_url}: {reason}"
            ) from exc
        if not r.is_success:
            raise _http_error(r)
        try:
            return r.json()
        except ValueError:
            raise KmeResponseError(
                f"{method} {path}: HTTP {r.status_code} response is not JSON"
            ) from None


def _http_error(r: httpx.Response) -> KmeHttpError:
    message = ""
    details: list[dict[str, Any]] = []
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = _one_line(str(body.get("message", "")))
        raw = body.get("details")
        if isinstance(raw, list):
            details = [d for d in raw if isinstance(d, dict)]
        elif isinstance(body.get("detail"), str | list):
            # Framework-level errors (e.g. FastAPI validation) use "detail" instead.
            message = message or _one_line(str(body["detail"]))
    if not message:
        message = r.reason_phrase or "error"
    return KmeHttpError(r.status_code, message, details)


def _parse_keys(data: Any) -> list[Key]:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KmeResponseError("response is not a Key container (no 'keys' list)")
    keys: list[Key] = []
    for n, item in enumerate(data["keys"]):
        if not isinstance(item, dict):
            raise KmeResponseError(f"keys[{n}] is not an object")
        key_id, b64 = item.get("key_ID"), item.get("key")
        if not isinstance(key_id, str) or not key_id:
            raise KmeResponseError(f"keys[{n}].key_ID missing or not a string")
        if not isinstance(b64, str):
            raise KmeResponseError(f"keys[{n}].key missing or not a string")
        try:
            raw = base64.b64decode(b64.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            # Do not echo the value: it is (possibly damaged) key material.
            raise KmeResponseError(f"keys[{n}].key is not valid base64") from None
        keys.append(Key(key_id=key_id, key=raw))
    return keys
