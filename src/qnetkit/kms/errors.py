"""Errors of the key-management layer. Messages never carry key material."""

from __future__ import annotations

from typing import Any


class KmsError(Exception):
    """Base class of key-management errors."""


class InsufficientKeys(KmsError):  # noqa: N818 - names read as conditions
    """Not enough available key material for the request (ETSI 014: 503)."""


class KeyNotFound(KmsError):  # noqa: N818 - names read as conditions
    """A key_ID is unknown, already retrieved, erased or expired (ETSI 014: 400)."""


class NotEntitled(KmsError):  # noqa: N818 - names read as conditions
    """The calling SAE is not entitled to a key it asked for (ETSI 014: 401)."""


class SyncConflict(KmsError):  # noqa: N818 - names read as conditions
    """A peer's assignment names key units that are not available here."""


class StoreError(KmsError):
    """The key store cannot be used (bad DSN, wrong key-encryption key, migration failure)."""


class ConfigError(KmsError):
    """A KME configuration file is invalid; the message names the field."""


class BlockConflict(KmsError):  # noqa: N818 - names read as conditions
    """A block ID is already held with other bytes, or the block is quarantined."""


class SimulatedKeyRefused(KmsError):  # noqa: N818 - names read as conditions
    """Simulated key material where this KME's configuration does not allow it."""


class BlockPending(SyncConflict):
    """A peer's assignment names units of a block that is not confirmed here yet."""


class ApiError(Exception):
    """An ETSI 014 error answer: HTTP status plus the Error object (clause 6.5)."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None,
                 *, retry_after_s: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.retry_after_s = retry_after_s  # sent as a Retry-After header (503, 429)


def bad_request(message: str, **detail: Any) -> ApiError:
    return ApiError(400, message, [detail] if detail else None)
