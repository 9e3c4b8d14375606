"""Fault injection for crash tests: die like ``kill -9`` at a named step of a request.

Honoured only when the process was started with ``QNETKIT_FAULT_INJECTION=1`` *and*
``QNETKIT_FAULT=<point>``; both are read once at import, so a production KME (neither set)
pays one set lookup per point and can never be made to crash by a request.

Points: ``dec_keys:before_retrieve`` (look-ups done, nothing retrieved),
``dec_keys:before_commit`` (retrieval written, transaction not yet committed),
``dec_keys:after_commit`` (committed, response not yet sent).
"""

from __future__ import annotations

import os

POINTS = frozenset({"dec_keys:before_retrieve", "dec_keys:before_commit",
                    "dec_keys:after_commit"})
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def _armed() -> frozenset[str]:
    if os.environ.get("QNETKIT_FAULT_INJECTION") != "1":
        return frozenset()
    wanted = {p.strip() for p in os.environ.get("QNETKIT_FAULT", "").split(",")}
    return frozenset(wanted & POINTS)


_ARMED = _armed()


def fault_point(name: str) -> None:
    """Exit at once (no cleanup, no flush, like SIGKILL) if ``name`` is armed."""
    if name in _ARMED:
        os._exit(EXIT_CODE)
