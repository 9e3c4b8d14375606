"""Errors shared by all layers: a user-facing bad value carries its name and value."""

from __future__ import annotations


class ParameterError(ValueError):
    """A parameter value outside its domain; the CLI prints it as one line and exits 2."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"{name}={value!r}: {reason}")
