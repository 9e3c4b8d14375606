"""Entanglement-routing files: nodes with quantum memories, heralded links and pair requests.

The file (YAML, validated with pydantic; unknown fields are errors) describes a quantum network
on which several requests between node pairs want entangled pairs at the same time and share the
nodes' memories (``qnetkit.entanglement.routing`` simulates it):

.. code-block:: yaml

    name: grid
    cutoff_s: 0.5                 # optional: discard a pair whose older qubit is stored longer
    path_policy: fewest-hops      # or shortest-km
    nodes:
      - {id: A, memories: 4, t2_s: 1.0, efficiency: 0.9}
    links:
      - {a: A, b: B, length_km: 20}                       # single-click heralding (physics)
      - {a: B, b: C, length_km: 20, success_prob: 0.01, fidelity: 0.95}   # fixed values
    requests:
      - {id: alice-bob, a: A, b: C, pairs: 100, start_s: 0}

A bad file is reported with the field path in the file's own terms (``requests[2].multiplex``)
and every problem at once (``RoutingFileError.problems``).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Scheme = Literal["single-click", "double-click", "spdc"]
PathPolicy = Literal["fewest-hops", "shortest-km"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EntNode(_Strict):
    """A node: a pool of quantum memories shared by every request whose path uses it."""

    id: _ID = Field(description="unique node id")
    memories: int = Field(ge=1, le=100_000, description=(
        "memory qubits at the node; a request holds `multiplex` of them at an end node and "
        "2 x `multiplex` at a node its path passes through"))
    t2_s: float | None = Field(default=None, gt=0, description=(
        "coherence (dephasing) time of the memories (s); null: no dephasing"))
    t1_s: float | None = Field(default=None, gt=0, description=(
        "amplitude-damping time (s); null: none"))
    efficiency: float = Field(default=1.0, gt=0, le=1, description=(
        "retrieval efficiency of the memories (enters the heralding success probability)"))
    max_storage_s: float | None = Field(default=None, gt=0, description=(
        "hard storage limit (s): a qubit stored longer is lost; null: none"))
    x_km: float = Field(default=0.0, description="east position (drawings only)")
    y_km: float = Field(default=0.0, description="north position (drawings only)")


class EntLink(_Strict):
    """A heralded elementary link: attempts until success, then a pair in both end memories."""

    a: _ID = Field(description="id of one end node")
    b: _ID = Field(description="id of the other end node")
    length_km: float = Field(gt=0, le=10_000, description="fiber length between the two nodes")
    scheme: Scheme = Field(default="single-click", description=(
        "heralding scheme for the values not given: single-click (Cabrillo 1999), "
        "double-click (Barrett-Kok 2005), spdc (multiplexed pair source)"))
    loss_db_per_km: float = Field(default=0.2, ge=0, description="fiber attenuation")
    modes: int = Field(default=1, ge=1, description="multiplexed modes (spdc scheme only)")
    success_prob: float | None = Field(default=None, gt=0, le=1, description=(
        "success probability per attempt; replaces the scheme's"))
    fidelity: float | None = Field(default=None, ge=0.25, le=1, description=(
        "fidelity of the heralded pair, taken as a Werner state; replaces the scheme's state"))
    attempt_s: float | None = Field(default=None, gt=0, description=(
        "duration of one attempt incl. the herald; default: length / fiber group velocity"))

    @model_validator(mode="after")
    def _ends(self) -> EntLink:
        if self.a == self.b:
            raise ValueError("a link needs two different end nodes")
        return self


class EntRequest(_Strict):
    """A pair of nodes wanting entangled pairs; it holds memories along one path while served."""

    id: _ID = Field(description="unique request id")
    a: _ID = Field(description="id of one end node")
    b: _ID = Field(description="id of the other end node")
    pairs: int | None = Field(default=None, ge=1, description=(
        "pairs wanted; the request ends (and frees its memories) once they are delivered. "
        "null: served until end_s or the end of the run"))
    start_s: float = Field(default=0.0, ge=0, description="time the request arrives")
    end_s: float | None = Field(default=None, gt=0, description=(
        "time the request is withdrawn, served or not; null: never"))
    multiplex: int = Field(default=1, ge=1, le=1000, description=(
        "memories the request holds at each end of each hop (parallel link generation)"))
    min_fidelity: float | None = Field(default=None, ge=0.25, le=1, description=(
        "fidelity a pair should reach: delivered pairs below it are counted apart "
        "(below_min_fidelity); they still count towards pairs"))

    @model_validator(mode="after")
    def _times(self) -> EntRequest:
        if self.a == self.b:
            raise ValueError("a request needs two different end nodes")
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class SwapSpec(_Strict):
    """The Bell-state measurement of an entanglement swap at a node."""

    success_prob: float = Field(default=1.0, gt=0, le=1, description=(
        "probability the Bell measurement succeeds (1/2 for linear optics); a failure loses "
        "both pairs"))
    gate_depolarizing: float = Field(default=0.0, ge=0, le=1, description=(
        "depolarising probability of the measurement's two-qubit gate"))
    measurement_error: float = Field(default=0.0, ge=0, le=1, description=(
        "probability each outcome bit is wrong"))


class EntNetwork(_Strict):
    """A quantum network with concurrent entanglement requests."""

    name: str = Field(description="name of the network")
    description: str = Field(default="", description="free text")
    path_policy: PathPolicy = Field(default="fewest-hops", description=(
        "path of a request among those whose memories are free: fewest hops (ties: shortest "
        "km) or shortest km (ties: fewest hops)"))
    cutoff_s: float | None = Field(default=None, gt=0, description=(
        "discard a pair once one of its qubits has been stored this long; null: never"))
    swap: SwapSpec = Field(default_factory=SwapSpec, description="entanglement swapping")
    nodes: list[EntNode] = Field(min_length=2, description="the nodes")
    links: list[EntLink] = Field(min_length=1, description="the elementary links")
    requests: list[EntRequest] = Field(default_factory=list, description="the pair requests")


class RoutingFileError(Exception):
    """An entanglement-routing file is invalid; ``problems`` lists (field path, message)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}: {m}" for p, m in problems))


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top level)"


def _reference_checks(net: EntNetwork) -> list[tuple[str, str]]:
    """Duplicate ids, dangling node references, duplicate links, memory demands."""
    problems: list[tuple[str, str]] = []
    memories: dict[str, int] = {}
    for i, n in enumerate(net.nodes):
        if n.id in memories:
            problems.append((f"nodes[{i}].id", f"duplicate id {n.id!r}"))
        memories[n.id] = n.memories
    pairs: set[frozenset[str]] = set()
    for i, ln in enumerate(net.links):
        for end in ("a", "b"):
            ref = getattr(ln, end)
            if ref not in memories:
                problems.append((f"links[{i}].{end}", f"unknown node {ref!r}"))
        key = frozenset((ln.a, ln.b))
        if key in pairs:
            problems.append((f"links[{i}]", f"a second link between {ln.a!r} and {ln.b!r}"))
        pairs.add(key)
    seen: set[str] = set()
    for i, r in enumerate(net.requests):
        if r.id in seen:
            problems.append((f"requests[{i}].id", f"duplicate id {r.id!r}"))
        seen.add(r.id)
        for end in ("a", "b"):
            ref = getattr(r, end)
            if ref not in memories:
                problems.append((f"requests[{i}].{end}", f"unknown node {ref!r}"))
            elif memories[ref] < r.multiplex:
                problems.append((f"requests[{i}].multiplex", (
                    f"{r.multiplex} memories wanted at end node {ref!r}, which has "
                    f"{memories[ref]}")))
    if problems:
        return problems
    # A request must have some path whose inner nodes could ever hold 2 x multiplex memories;
    # otherwise it would wait in the queue for ever.
    adjacency: dict[str, list[str]] = {n: [] for n in memories}
    for ln in net.links:
        adjacency[ln.a].append(ln.b)
        adjacency[ln.b].append(ln.a)
    for i, r in enumerate(net.requests):
        need = 2 * r.multiplex
        seen_nodes = {r.a}
        frontier = deque([r.a])
        while frontier:
            u = frontier.popleft()
            for v in adjacency[u]:
                if v not in seen_nodes and (v == r.b or memories[v] >= need):
                    seen_nodes.add(v)
                    frontier.append(v)
        if r.b not in seen_nodes:
            problems.append((f"requests[{i}]", (
                f"no path from {r.a!r} to {r.b!r} whose inner nodes have {need} memories "
                f"(2 x multiplex {r.multiplex})")))
    return problems


_SECTIONS: dict[str, type[BaseModel]] = {"nodes": EntNode, "links": EntLink,
                                          "requests": EntRequest, "swap": SwapSpec}


def _unknown_field(loc: tuple[int | str, ...]) -> str:
    """A misspelt key, with the fields allowed where it stands."""
    parent = [p for p in loc[:-1] if isinstance(p, str)]
    model = _SECTIONS.get(parent[0], EntNetwork) if parent else EntNetwork
    return f"unknown field {loc[-1]!r}; allowed here: {', '.join(model.model_fields)}"


def parse_network(data: Any, source: str = "<network>") -> EntNetwork:
    """Validate a parsed YAML document; RoutingFileError lists every problem found."""
    try:
        net = EntNetwork.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            path = _field_path(tuple(e["loc"]))
            msg = _unknown_field(tuple(e["loc"])) if e["type"] == "extra_forbidden" \
                else str(e["msg"])
            problems.append((path, msg))
        raise RoutingFileError(source, problems) from None
    problems = _reference_checks(net)
    if problems:
        raise RoutingFileError(source, problems)
    return net


def load_network(path: Path) -> EntNetwork:
    """Read and validate an entanglement-routing YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingFileError(str(path), [("(file)", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise RoutingFileError(str(path), [("(file)", "not valid YAML (not UTF-8 text)")]) \
            from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise RoutingFileError(str(path), [(where, "not valid YAML")]) from None
    return parse_network(data, str(path))


def find_path(adj: list[list[tuple[int, int, float]]], free: list[int], a: int, b: int, k: int,
              *, by_km: bool) -> list[tuple[int, int]] | None:
    """A usable path from node a to b, as [(node, index of the link into it)], or None.

    A path is usable when each inner node has ``2 x k`` free memories and each end ``k``
    (``adj[u]``: (neighbour, link index, km); ``free[u]``: free memories). Lexicographic
    Dijkstra: fewest hops then fewest km, or (``by_km``) fewest km then fewest hops.
    """
    if free[a] < k or free[b] < k:
        return None
    best: dict[int, tuple[float, float]] = {a: (0.0, 0.0)}
    back: dict[int, tuple[int, int]] = {}
    heap: list[tuple[float, float, int]] = [(0.0, 0.0, a)]
    done: set[int] = set()
    while heap:
        w1, w2, u = heapq.heappop(heap)
        if u in done:
            continue
        if u == b:
            break
        done.add(u)
        for v, j, km in adj[u]:
            if v in done or (v != b and free[v] < 2 * k):
                continue
            key = (w1 + km, w2 + 1.0) if by_km else (w1 + 1.0, w2 + km)
            if key < best.get(v, (math.inf, math.inf)):
                best[v] = key
                back[v] = (u, j)
                heapq.heappush(heap, (key[0], key[1], v))
    if b not in back:
        return None
    out = [(b, back[b][1])]
    while out[-1][0] != a:
        u, _ = back[out[-1][0]]
        out.append((u, back[u][1] if u != a else -1))
    out.reverse()
    return out


__all__ = ["EntLink", "EntNetwork", "EntNode", "EntRequest", "PathPolicy", "RoutingFileError",
           "Scheme", "SwapSpec", "find_path", "load_network", "parse_network"]
