"""Checked readers of ``summary.json`` values: a wrong type is a one-line ``ReportError`` naming
the field (``links[3].state``), a missing optional field is ``None``.

A summary written by an older qnetkit lacks the newer fields; they read as absent, never as an
error, so an old run directory still gets a report.
"""

from __future__ import annotations

from typing import Any


class ReportError(Exception):
    """The run directory is missing or malformed; the message is one line."""


def _bad(where: str, key: str, what: str, v: Any) -> ReportError:
    return ReportError(f"summary.json: {where}.{key} is not {what}: {v!r}"[:200])


def _num(d: dict[str, Any], key: str, where: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(where, key, "a number", v)
    return float(v)


def _req_num(d: dict[str, Any], key: str, where: str) -> float:
    v = _num(d, key, where)
    if v is None:
        raise ReportError(f"summary.json: {where} has no {key!r}")
    return v


def _count(d: dict[str, Any], key: str, where: str) -> int | None:
    """A non-negative whole number (``3`` or ``3.0``)."""
    v = _num(d, key, where)
    if v is None:
        return None
    if v < 0 or v != int(v):
        raise _bad(where, key, "a whole number >= 0", d.get(key))
    return int(v)


def _text(d: dict[str, Any], key: str, default: str = "") -> str:
    v = d.get(key)
    return default if v is None else str(v)


def _req_text(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if v is None or v == "":
        raise ReportError(f"summary.json: {where} has no {key!r}")
    return str(v)


def _opt_str(d: dict[str, Any], key: str, where: str) -> str | None:
    """A string field that is new in the format: absent or null -> None; not a string -> error."""
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _bad(where, key, "a string", v)
    return v


def _opt_bool(d: dict[str, Any], key: str, where: str) -> bool | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise _bad(where, key, "true or false", v)
    return v


def _str_list(d: dict[str, Any], key: str, where: str) -> list[str]:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _bad(where, key, "a list of ids", v)
    return list(v)


def _obj(d: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _bad(where, key, "an object", v)
    return v


def _num_map(d: dict[str, Any], key: str, where: str) -> dict[str, float]:
    """``{name: number}`` (e.g. seconds per cause); absent -> empty."""
    m = _obj(d, key, where)
    if m is None:
        return {}
    return {str(k): _req_num(m, k, f"{where}.{key}") for k in m}


def _entries(data: dict[str, Any], key: str, required: bool = False) -> list[dict[str, Any]]:
    v = data.get(key)
    if v is None:
        if required:
            raise ReportError(f"summary.json has no {key!r} list: not a run summary")
        return []
    if not isinstance(v, list):
        raise ReportError(f"summary.json: {key!r} is not a list")
    for i, e in enumerate(v):
        if not isinstance(e, dict):
            raise ReportError(f"summary.json: {key}[{i}] is not an object")
    return v


def _sub_entries(d: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """A nested list of objects (``demands[2].paths``); absent -> empty."""
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise ReportError(f"summary.json: {where}.{key} is not a list")
    for i, e in enumerate(v):
        if not isinstance(e, dict):
            raise ReportError(f"summary.json: {where}.{key}[{i}] is not an object")
    return v
