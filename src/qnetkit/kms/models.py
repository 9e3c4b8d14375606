# ruff: noqa: N815  (field names are the ETSI GS QKD 014 wire names)
"""ETSI GS QKD 014 V1.1.1 data formats (clause 6), as pydantic models.

Field names are the specification's own (``key_ID``, ``master_SAE_ID`` ...), so the
OpenAPI document generated from them describes the wire format exactly.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt


def _decimal(value: object) -> object:
    # Query strings: only plain decimal digits are integers ("256.0", "+1", "1e3", "true" are
    # not, though pydantic's lax mode would take some of them).
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise ValueError("must be a decimal integer")
    return value


QueryInt = Annotated[int, BeforeValidator(_decimal)]


class _Model(BaseModel):
    # extra="allow": clause 6 lets vendors add fields; unknown fields are ignored, not fatal.
    model_config = ConfigDict(extra="allow")


class Status(_Model):
    """Status data format (clause 6.1)."""

    source_KME_ID: str
    target_KME_ID: str
    master_SAE_ID: str
    slave_SAE_ID: str
    key_size: int
    stored_key_count: int
    max_key_count: int
    max_key_per_request: int
    max_key_size: int
    min_key_size: int
    max_SAE_ID_count: int
    status_extension: dict[str, Any] | None = None


class KeyRequest(_Model):
    """Key request data format (clause 6.2), the body of POST enc_keys."""

    # Strict: JSON true, "1" and 1.0 are not numbers of keys.
    number: StrictInt | None = Field(None, description="Number of keys requested, default 1")
    size: StrictInt | None = Field(None, description="Size of each key in bits, default key_size")
    additional_slave_SAE_IDs: list[str] | None = None
    extension_mandatory: list[dict[str, Any]] | None = None
    extension_optional: list[dict[str, Any]] | None = None


class Key(_Model):
    key_ID: str = Field(..., description="UUID of the key")
    key_ID_extension: dict[str, Any] | None = None
    key: str = Field(..., description="Key data encoded by base64")
    key_extension: dict[str, Any] | None = None


class KeyContainer(_Model):
    """Key container data format (clause 6.3)."""

    keys: list[Key]
    key_container_extension: dict[str, Any] | None = None


class KeyIdItem(_Model):
    key_ID: str
    key_ID_extension: dict[str, Any] | None = None


class KeyIds(_Model):
    """Key IDs data format (clause 6.4), the body of POST dec_keys."""

    key_IDs: list[KeyIdItem]
    key_IDs_extension: dict[str, Any] | None = None


class Error(_Model):
    """Error data format (clause 6.5)."""

    message: str
    details: list[dict[str, Any]] | None = None
