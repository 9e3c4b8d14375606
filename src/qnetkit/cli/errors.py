"""User mistakes on the command line: printed as one line, exit status 2."""

from __future__ import annotations


class CliUsageError(Exception):
    """A bad value given on the command line."""
