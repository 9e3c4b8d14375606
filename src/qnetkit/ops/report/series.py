"""The CSV time series of a run (``links.csv``, ``demands.csv``) on one time grid.

The CSV files can be large (thousands of links x thousands of steps: millions of rows), so they
are read in one pass of numpy's C ``loadtxt`` (about 0.45 us a row), not row by row in Python.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.ops.report._checks import ReportError


@dataclass
class _Grid:
    """Per-key time series on a common time axis: ``cols[name][key_index, step]`` (NaN = none)."""

    t: FloatArray
    cols: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = field(default_factory=dict)
    unknown_keys: int = 0


class _Codes(dict[str, int]):
    """Key id -> row index; an unknown id maps to -1 (a C-level lookup for loadtxt)."""

    def __missing__(self, key: str) -> int:
        return -1


def _float_or_nan(text: str) -> float:
    return float(text) if text.strip() else math.nan


def _loadtxt_message(name: str, msg: str, ncol: int) -> str:
    """numpy's loadtxt error as one line with the file's own line number."""
    msg = (msg.splitlines() or ["malformed"])[0].rstrip(".")
    m = re.fullmatch(r"invalid column index \d+ at row (\d+) with (\d+) columns?", msg)
    if m is not None:  # rows of this message count data lines from 1
        return f"{name} line {int(m.group(1)) + 1}: {m.group(2)} fields, expected {ncol}"
    m = re.fullmatch(r"(could not convert .*) at row (\d+), column (\d+)", msg)
    if m is not None:  # rows of this message count data lines from 0
        return f"{name} line {int(m.group(2)) + 2}: {m.group(1)} (field {m.group(3)})"[:300]
    return f"{name}: {msg}"[:300]


def _read_series(
    path: Path, key: str, columns: Sequence[str], keys: dict[str, int], step_s: float | None
) -> _Grid:
    """Read ``time_s,<key>,<columns...>`` CSV rows into per-key matrices on one time grid.

    One pass of numpy's C ``loadtxt``; the key column is mapped to row indices by a converter
    and ``qber`` may be empty (NaN). If another column has empty fields, a second pass reads
    every column with the empty-tolerant converter.
    """
    name = path.name
    try:
        with path.open("r", encoding="utf-8", newline="") as f:
            header = [h.strip() for h in f.readline().strip("\r\n").split(",")]
    except UnicodeDecodeError:
        raise ReportError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise ReportError(f"cannot read {name}: {exc.strerror}") from None
    missing = [c for c in ("time_s", key, *columns) if c not in header]
    if missing:
        raise ReportError(f"{name} has no column {', '.join(map(repr, missing))}")
    wanted = ["time_s", key, *columns]
    usecols = [header.index(c) for c in wanted]
    codes = _Codes(keys)
    converters: dict[int | str, Callable[[str], Any]] = {header.index(key): codes.__getitem__}
    if "qber" in columns:
        converters[header.index("qber")] = _float_or_nan

    def load(conv: dict[int | str, Callable[[str], Any]]) -> FloatArray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            out: FloatArray = np.loadtxt(
                path, delimiter=",", skiprows=1, usecols=usecols, converters=conv,
                dtype=np.float64, comments=None, encoding="utf-8", ndmin=2,
            )
        return out

    try:
        try:
            data = load(converters)
        except ValueError as exc:
            if "could not convert string ''" not in str(exc):
                raise
            every: dict[int | str, Callable[[str], Any]] = dict.fromkeys(usecols, _float_or_nan)
            every.update(converters)
            data = load(every)
    except ValueError as exc:
        raise ReportError(_loadtxt_message(name, str(exc), len(header))) from None
    except UnicodeDecodeError:
        raise ReportError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise ReportError(f"cannot read {name}: {exc.strerror}") from None

    if data.shape[0] == 0:
        return _Grid(t=np.zeros(0), cols={c: np.zeros((len(keys), 0), np.float32) for c in columns})
    t = data[:, 0]
    code = data[:, 1].astype(np.intp)
    if not np.all(np.isfinite(t)):
        raise ReportError(f"{name}: column 'time_s' has an empty or non-finite value")
    known = code >= 0
    unknown = int(np.count_nonzero(~known))
    # Steps: on the summary's step grid (no sort needed) or else the distinct times.
    grid_t, step_idx = _time_grid(t, step_s)
    grid = _Grid(t=grid_t, unknown_keys=unknown)
    rows, cols = code[known], step_idx[known]
    for j, c in enumerate(columns, start=2):
        m = np.full((len(keys), grid_t.size), np.nan, dtype=np.float32)
        m[rows, cols] = data[known, j]
        grid.cols[c] = m
    return grid


def _time_grid(
    t: FloatArray, step_s: float | None
) -> tuple[FloatArray, np.ndarray[Any, np.dtype[np.intp]]]:
    if step_s is not None and step_s > 0:
        k = np.rint(t / step_s)
        if np.allclose(k * step_s, t, rtol=0, atol=1e-6 * step_s):
            k0 = int(k.min())
            idx = (k - k0).astype(np.intp)
            n = int(idx.max()) + 1
            if n <= 4 * t.size + 1:
                return ((np.arange(n) + k0) * step_s).astype(np.float64), idx
    uniq, inv = np.unique(t, return_inverse=True)
    return uniq.astype(np.float64), inv.astype(np.intp).reshape(-1)
