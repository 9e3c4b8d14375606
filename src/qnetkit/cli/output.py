"""Printing helpers: strict JSON (no NaN) on stdout, human text through rich."""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def emit_json(obj: dict[str, Any]) -> None:
    """Print exactly one JSON object on stdout; non-finite floats become null."""
    sys.stdout.write(json.dumps(_clean(obj), allow_nan=False) + "\n")
    sys.stdout.flush()
