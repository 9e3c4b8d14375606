"""Parameter studies: many simulations of one topology with fields varied, one table out.

``--param links[*].length_km=20:80:10`` sets a field (``[*]``: in every list item) to each
value of a range (start:stop:step, stop included) or a list (``a,b,c``); several ``--param``
give their Cartesian product. Runs go to local processes, or to a Dask cluster.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from qnetkit.network.topology import TopologyError, parse_topology

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[(?:\d+|\*)\])*)")


@dataclass(frozen=True)
class Param:
    path: str
    values: tuple[Any, ...]


def _number(text: str) -> Any:
    try:
        v = float(text)
    except ValueError:
        return text
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def parse_param(spec: str) -> Param:
    """'links[*].length_km=20:80:10' or 'demands[0].policy=refuse,fallback-pqc'."""
    if "=" not in spec:
        raise ValueError(f"--param {spec!r}: expected PATH=VALUES")
    path, values = spec.split("=", 1)
    for part in path.split("."):
        if not _PART.fullmatch(part):
            raise ValueError(f"--param {spec!r}: bad field path {path!r}")
    if re.fullmatch(r"[-+0-9.eE]+:[-+0-9.eE]+:[-+0-9.eE]+", values):
        start, stop, step = (float(x) for x in values.split(":"))
        if step <= 0 or stop < start:
            raise ValueError(f"--param {spec!r}: need start <= stop and step > 0")
        n = int(np.floor((stop - start) / step + 1e-9)) + 1
        vals: tuple[Any, ...] = tuple(float(start + i * step) for i in range(n))
    else:
        vals = tuple(_number(v) for v in values.split(",") if v != "")
    if not vals:
        raise ValueError(f"--param {spec!r}: no values")
    return Param(path, vals)


def _tokens(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.split("."):
        m = _PART.fullmatch(part)
        if m is None:
            raise KeyError(f"{path}: bad field path")
        out.append(m.group(1))
        out.extend("*" if k == "*" else int(k) for k in re.findall(r"\[(\d+|\*)\]", m.group(2)))
    return out


def _set(node: Any, tokens: list[str | int], value: Any, path: str) -> None:
    head, rest = tokens[0], tokens[1:]
    if isinstance(head, str) and head != "*":
        if not isinstance(node, dict):
            raise KeyError(f"{path}: {head!r} is not inside a mapping")
        if not rest:
            node[head] = value
            return
        if head not in node:
            if not isinstance(rest[0], str) or rest[0] == "*":
                raise KeyError(f"{path}: no list {head!r}")
            node[head] = {}
        _set(node[head], rest, value, path)
        return
    if not isinstance(node, list):
        raise KeyError(f"{path}: not a list where an index is given")
    indices = range(len(node)) if head == "*" else [int(head)]
    for i in indices:
        if i >= len(node):
            raise KeyError(f"{path}: index {i} out of range")
        if rest:
            _set(node[i], rest, value, path)
        else:
            node[i] = value


def set_field(doc: Any, path: str, value: Any) -> None:
    """Set ``path`` (dotted, with [i] and [*]) in a parsed YAML document, in place."""
    _set(doc, _tokens(path), value, path)


def variants(doc: dict[str, Any],
             params: Sequence[Param]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(parameter values, modified document) for every point of the product, validated."""
    out = []
    for combo in itertools.product(*(p.values for p in params)):
        d = copy.deepcopy(doc)
        point = {}
        for p, v in zip(params, combo, strict=True):
            set_field(d, p.path, v)
            point[p.path] = v
        out.append((point, d))
    return out


def run_point(task: tuple[dict[str, Any], dict[str, Any], float, int]) -> dict[str, Any]:
    """One simulation of a sweep: the parameter values and the run's key figures."""
    from qnetkit.network.simulate import simulate

    point, doc, duration_s, seed = task
    topo = parse_topology(doc, "sweep point")
    s = simulate(topo, duration_s=duration_s, seed=seed).summary()
    links, demands = s["links"], s["demands"]
    row: dict[str, Any] = dict(point)
    row["secret_bits"] = sum(ln["secret_bits"] for ln in links)
    row["mean_availability"] = float(np.mean([ln["availability"] for ln in links]))
    row["served_fraction"] = (float(np.mean([d["served_fraction"] for d in demands]))
                              if demands else None)
    row["min_served_fraction"] = (min(d["served_fraction"] for d in demands)
                                  if demands else None)
    row["fallback_s"] = sum(d["fallback_s"] for d in demands)
    row["incidents"] = len(s["incidents"])
    row["wall_s"] = s["wall_s"]
    return row


def run_sweep(doc: dict[str, Any], params: Sequence[Param], *, duration_s: float, seed: int,
              workers: int = 2, scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Every point (validated first, so a bad value fails before anything runs)."""
    points = variants(doc, params)
    for point, d in points:
        try:
            parse_topology(d, "sweep point")
        except TopologyError as exc:
            raise ValueError(f"{point}: {exc.problems[0][0]}: {exc.problems[0][1]}") from None
    tasks = [(p, d, duration_s, seed) for p, d in points]
    rows: list[dict[str, Any]] = []
    if scheduler is not None:
        from distributed import Client, as_completed

        with Client(scheduler, timeout=20) as client:  # type: ignore[no-untyped-call]
            futures = client.map(run_point, tasks, pure=False)
            for fut in as_completed(futures):  # type: ignore[no-untyped-call]
                rows.append(fut.result())
                if progress:
                    progress(len(rows), len(tasks))
    elif workers <= 1 or len(tasks) == 1:
        for t in tasks:
            rows.append(run_point(t))
            if progress:
                progress(len(rows), len(tasks))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for row in pool.map(run_point, tasks):
                rows.append(row)
                if progress:
                    progress(len(rows), len(tasks))
    keys = [p.path for p in params]
    rows.sort(key=lambda r: tuple(r[k] if not isinstance(r[k], str) else 0 for k in keys))
    return rows
