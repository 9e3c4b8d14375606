"""The OpenAPI document of the ETSI 014 API, as served at /openapi.json and shipped as
``openapi.json`` beside this module (a test keeps the two identical)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).with_name("openapi.json")


def openapi_document() -> dict[str, Any]:
    from qnetkit.kms.config import KmeConfig, TlsConfig
    from qnetkit.kms.metrics import Metrics
    from qnetkit.kms.server import create_app
    from qnetkit.kms.service import KmeService

    cfg = KmeConfig(kme_id="schema", tls=TlsConfig(cert=Path("-"), key=Path("-"), ca=Path("-")))
    # The schema only reflects routes and models; no store is opened.
    service = KmeService(cfg=cfg, store=None, metrics=Metrics("schema"))  # type: ignore[arg-type]
    doc: dict[str, Any] = create_app(service).openapi()
    return doc


def shipped_document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SHIPPED.read_text())
    return doc
