"""Errors of the key-management layer. Messages never carry key material."""

from __future__ import annotations


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
