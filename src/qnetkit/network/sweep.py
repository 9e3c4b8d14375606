"""Parameter studies: many simulations of one topology with fields varied, one table out.

``--param links[*].length_km=20:80:10`` sets a field to each value of a range
(start:stop:step, stop included) or a list (``a,b,c``); several ``--param`` give their
Cartesian product. Runs go to local processes, or to a Dask cluster.

Paths. ``[i]`` names one list item, ``[*]`` every item. Under a ``[*]`` an item that lacks the
parent of the field (``links[*].classical_channels[*].launch_power_dbm`` on a link without
classical channels) is skipped; a missing leaf field, or a missing mapping whose model default
is a mapping (``links[*].qkd.pulse_rate_hz`` where a link has no ``qkd:``), is added and the
model validates it. A path that sets nothing is an error. Errors name the item by its ``id``:
``links[3] (id 'hq-dc2'): ...``.

Rows. One ``SweepRow`` per run: the point, aggregates over the network, and per link (mean
key rate, mean QBER, availability = fraction of steps the link made key) and per demand (served
fraction) the figures of that run's summary; ``flat()`` gives the ``link:<id>:<figure>`` and
``demand:<id>:<figure>`` columns of the CSV and JSON tables.
"""

from __future__ import annotations

import itertools
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from qnetkit.network.topology import InitialFill, Topology, TopologyError, parse_topology
from qnetkit.sim.parallel import map_tasks

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[(?:\d+|\*)\])*)")

#: The terminal table shows per-link columns only up to this many links (CSV/JSON: always).
TABLE_MAX_LINKS = 6


class SweepError(ValueError):
    """A sweep cannot run; ``lines`` are the problems, one line each, naming path and item."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[type[SweepError], tuple[list[str]]]:
        return SweepError, (self.lines,)  # from worker processes and Dask workers intact


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


# -- paths ------------------------------------------------------------------------------------
def _tokens(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.split("."):
        m = _PART.fullmatch(part)
        if m is None:
            raise SweepError([f"{path}: bad field path"])
        out.append(m.group(1))
        out.extend("*" if k == "*" else int(k) for k in re.findall(r"\[(\d+|\*)\]", m.group(2)))
    return out


def _item_name(where: str, item: Any) -> str:
    """``links[3]`` as ``links[3] (id 'hq-dc2')`` when the item has an id."""
    ident = item.get("id") if isinstance(item, dict) else None
    return f"{where} (id {ident!r})" if isinstance(ident, str) else where


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``M``, ``M | None`` or ``list[M]``; None for anything else."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _child_model(model: type[BaseModel] | None, name: str) -> type[BaseModel] | None:
    info = model.model_fields.get(name) if model is not None else None
    return _model_of(info.annotation) if info is not None else None


def _default_is_mapping(model: type[BaseModel] | None, name: str) -> bool:
    """A missing ``name`` means its model default, a mapping: adding ``{}`` changes nothing.
    (``passes``, default None, is not: adding it would make a fiber a satellite link.)"""
    info = model.model_fields.get(name) if model is not None else None
    if info is None or info.default_factory is None:
        return False
    return isinstance(info.get_default(call_default_factory=True), BaseModel)


def _join(item: str, rel: str) -> str:
    return ": ".join(p for p in (item, rel) if p)


@dataclass
class _Walk:
    path: str
    skipped: list[str] = field(default_factory=list)

    def fail(self, item: str, rel: str, problem: str) -> SweepError:
        where = _join(item, rel)
        return SweepError([f"{self.path}: {where}: {problem}" if where else
                           f"{self.path}: {problem}"])


def _set(node: Any, tokens: list[str | int], value: Any, walk: _Walk, item: str, rel: str,
         model: type[BaseModel] | None, wild: bool) -> int:
    """Set the field below ``node``; the number of places set. ``item`` names the innermost
    list item with an id (for messages), ``rel`` the path from it to ``node``."""
    head, rest = tokens[0], tokens[1:]
    if isinstance(head, str) and head != "*":
        if not isinstance(node, dict):
            raise walk.fail(item, rel, "not a mapping")
        here = f"{rel}.{head}" if rel else head
        if not rest:
            node[head] = value
            return 1
        if node.get(head) is None:
            if isinstance(rest[0], str) and (not wild or _default_is_mapping(model, head)):
                node[head] = {}
            elif wild:
                walk.skipped.append(f"{_join(item, rel) or 'the document'} has no {head!r}")
                return 0
            else:
                raise walk.fail(item, rel, f"has no {head!r}")
        return _set(node[head], rest, value, walk, item, here, _child_model(model, head), wild)
    if not isinstance(node, list):
        raise walk.fail(item, rel, "not a list where an index is given")
    if head == "*":
        if not node:
            walk.skipped.append(f"{_join(item, rel)} is empty")
        indices: Sequence[int] = range(len(node))
    elif int(head) >= len(node):
        if wild:
            walk.skipped.append(f"{_join(item, f'{rel}[{head}]')} does not exist")
            return 0
        raise walk.fail(item, f"{rel}[{head}]", f"does not exist ({rel} has {len(node)})")
    else:
        indices = [int(head)]
    count = 0
    for i in indices:
        at = f"{rel}[{i}]"
        if not rest:
            node[i] = value
            count += 1
            continue
        named = _item_name(at, node[i])
        inner_item, inner_rel = ((f"{item}: {named}" if item else named), "") if named != at \
            else (item, at)
        count += _set(node[i], rest, value, walk, inner_item, inner_rel, model,
                      wild or head == "*")
    return count


def set_field(doc: Any, path: str, value: Any) -> int:
    """Set ``path`` (dotted, with [i] and [*]) in a parsed YAML document, in place; the number
    of places set. SweepError when the path sets nothing or cannot be followed."""
    walk = _Walk(path)
    count = _set(doc, _tokens(path), value, walk, "", "", Topology, False)
    if count == 0:
        why = f" ({walk.skipped[0]}" + (f"; {len(walk.skipped) - 1} more skipped)"
                                        if len(walk.skipped) > 1 else ")") if walk.skipped else ""
        raise SweepError([f"{path}: no item has this field{why}"])
    return count


def name_items(doc: Any, path: str) -> str:
    """A validation problem's path with the innermost list item named by its id:
    ``links[3].length_km`` -> ``links[3] (id 'hq-dc2'): length_km``."""
    try:
        tokens = _tokens(path)
    except SweepError:
        return path
    node, text, split = doc, "", None
    for tok in tokens:
        if isinstance(tok, int):
            text += f"[{tok}]"
            node = node[tok] if isinstance(node, list) and tok < len(node) else None
            if _item_name(text, node) != text:
                split = (_item_name(text, node), len(text))
        else:
            text += f".{tok}" if text else tok
            node = node.get(tok) if isinstance(node, dict) else None
    if split is None:
        return path
    rest = text[split[1]:].lstrip(".")
    return f"{split[0]}: {rest}" if rest else split[0]


def _copy_tree(obj: Any) -> Any:
    """A deep copy that does not keep YAML aliases shared (``qkd: *qkd`` on every link would
    otherwise be one dict, and ``links[0].qkd....`` would change every link)."""
    if isinstance(obj, dict):
        return {k: _copy_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy_tree(v) for v in obj]
    return obj


def point_label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def variants(doc: dict[str, Any],
             params: Sequence[Param]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(parameter values, modified document) for every point of the product, in order."""
    out = []
    for combo in itertools.product(*(p.values for p in params)):
        d = _copy_tree(doc)
        point = {}
        for p, v in zip(params, combo, strict=True):
            set_field(d, p.path, v)
            point[p.path] = v
        out.append((point, d))
    return out


# -- runs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkFigures:
    """One link over one run, as in the run's summary."""

    rate_bps: float  # mean secret-key rate over the run
    qber: float | None  # mean QBER over the steps it was up; None if never up
    availability: float  # fraction of steps it made secret key


@dataclass(frozen=True)
class DemandFigures:
    served_fraction: float  # key served from production / key requested
    met: bool | None = None  # None: the summary does not say
    served_fraction_with_initial: float | None = None  # counting the initial pool fill


@dataclass(frozen=True)
class SweepRow:
    """One run of a sweep: its parameter values, network aggregates, per-link and per-demand."""

    point: dict[str, Any]
    secret_bits: float
    mean_availability: float
    served_fraction: float | None  # mean over demands
    min_served_fraction: float | None
    fallback_s: float
    incidents: int
    wall_s: float
    per_link: dict[str, LinkFigures]
    per_demand: dict[str, DemandFigures]

    def flat(self, *, links: bool = True) -> dict[str, Any]:
        """One flat mapping (CSV, JSON, table): point, aggregates, ``demand:<id>:...``,
        ``link:<id>:...`` (unless ``links`` is False), ``wall_s``."""
        row: dict[str, Any] = dict(self.point)
        row.update(secret_bits=self.secret_bits, mean_availability=self.mean_availability,
                   served_fraction=self.served_fraction,
                   min_served_fraction=self.min_served_fraction, fallback_s=self.fallback_s,
                   incidents=self.incidents)
        for ident, d in self.per_demand.items():
            row[f"demand:{ident}:served_fraction"] = d.served_fraction
            if d.served_fraction_with_initial is not None:
                row[f"demand:{ident}:served_fraction_with_initial"] = \
                    d.served_fraction_with_initial
            if d.met is not None:
                row[f"demand:{ident}:met"] = d.met
        if links:
            for ident, ln in self.per_link.items():
                row[f"link:{ident}:rate_bps"] = ln.rate_bps
                row[f"link:{ident}:qber"] = ln.qber
                row[f"link:{ident}:availability"] = ln.availability
        row["wall_s"] = self.wall_s
        return row


def row_from_summary(point: dict[str, Any], s: dict[str, Any]) -> SweepRow:
    links, demands = s["links"], s["demands"]
    served = [float(d["served_fraction"]) for d in demands]
    return SweepRow(
        point=dict(point),
        secret_bits=float(sum(ln["secret_bits"] for ln in links)),
        mean_availability=float(np.mean([ln["availability"] for ln in links])),
        served_fraction=float(np.mean(served)) if served else None,
        min_served_fraction=min(served) if served else None,
        fallback_s=float(sum(d["fallback_s"] for d in demands)),
        incidents=len(s["incidents"]),
        wall_s=float(s["wall_s"]),
        per_link={ln["id"]: LinkFigures(rate_bps=float(ln["mean_rate_bps"]),
                                        qber=ln["mean_qber"],
                                        availability=float(ln["availability"]))
                  for ln in links},
        per_demand={d["id"]: DemandFigures(
            served_fraction=float(d["served_fraction"]), met=d.get("met"),
            served_fraction_with_initial=d.get("served_fraction_with_initial"))
            for d in demands},
    )


@dataclass(frozen=True)
class _Task:
    point: dict[str, Any]
    doc: dict[str, Any]
    duration_s: float
    seed: int
    initial_pools: InitialFill | None


def run_point(task: _Task) -> SweepRow:
    """One simulation of a sweep: the parameter values and the run's figures."""
    from qnetkit.network.simulate import simulate

    topo = parse_topology(task.doc, "sweep point")
    try:
        # None leaves the topology's own pools.initial_fill.
        result = simulate(topo, duration_s=task.duration_s, seed=task.seed,
                          initial_pools=task.initial_pools)
    except ValueError as exc:  # a value the model accepts but a physics function does not
        raise SweepError([f"sweep point {point_label(task.point)}: {exc}"]) from None
    return row_from_summary(task.point, result.summary())


def check_points(points: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Validate every point before anything runs; SweepError with every problem of the first
    invalid point, each naming the list item by its id."""
    for point, d in points:
        try:
            parse_topology(d, "sweep point")
        except TopologyError as exc:
            raise SweepError([f"sweep point {point_label(point)}: {name_items(d, p)}: {msg}"
                              for p, msg in exc.problems]) from None


def run_sweep(doc: dict[str, Any], params: Sequence[Param], *, duration_s: float, seed: int,
              workers: int = 2, scheduler: str | None = None,
              initial_pools: InitialFill | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[SweepRow]:
    """Every point, in the order of the product of the values (validated first, so a bad value
    fails before anything runs)."""
    points = variants(doc, params)
    check_points(points)
    tasks = [_Task(p, d, duration_s, seed, initial_pools) for p, d in points]
    return map_tasks(run_point, tasks, workers=workers, scheduler=scheduler, progress=progress)


def table_columns(rows: Sequence[SweepRow],
                  max_links: int = TABLE_MAX_LINKS) -> tuple[list[dict[str, Any]], str | None]:
    """The rows as the terminal shows them: point, aggregates and per-demand served fraction;
    per-link columns only up to ``max_links`` links. Also the footer line (None: all shown)."""
    n_links = max((len(r.per_link) for r in rows), default=0)
    show_links = n_links <= max_links
    out = []
    for r in rows:
        flat = r.flat(links=show_links)
        # A terminal has room for one figure per link: whether it made key.
        out.append({k: v for k, v in flat.items()
                    if not (k.startswith("demand:") and not k.endswith(":served_fraction"))
                    and not (k.startswith("link:") and not k.endswith(":availability"))
                    and k != "wall_s"})
    hidden = (["per-link rate and QBER"] if show_links
              else [f"per-link rate, QBER and availability of {n_links} links"])
    more = sorted({k.rsplit(":", 1)[1] for r in rows for k in r.flat(links=False)
                   if k.startswith("demand:") and not k.endswith(":served_fraction")})
    if more:
        hidden.append(f"per-demand {', '.join(more)}")
    footer = (f"not shown: {' and '.join(hidden)}; the CSV (--out) and JSON (--json) have "
              "every column") if hidden else None
    return out, footer


def all_columns(rows: Sequence[SweepRow]) -> list[str]:
    """Every column of any row, in first-seen order (CSV header)."""
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r.flat()))
    return list(cols)
