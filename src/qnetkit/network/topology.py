"""Topology files: nodes, QKD links, demands and a scenario, validated with pydantic.

A bad file is reported with the field path in the file's own terms (``links[3].length_km``)
and every problem at once, not only the first.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from qnetkit.network.link_parts import (
    Ageing,
    ClassicalChannelSpec,
    PassWindows,
    QkdSystem,
    RepeaterChainSpec,
)
from qnetkit.network.link_parts import Strict as _Strict

NodeKind = Literal["kme", "trusted-relay", "user-site", "ground-station", "satellite"]
LinkKind = Literal["fiber", "free-space", "satellite", "repeater-chain"]
Policy = Literal["refuse", "fallback-pqc"]

_ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


class Node(_Strict):
    """A site of the network: a key manager (KME), a trusted relay, a user site, a ground
    station or a satellite."""

    id: _ID = Field(description="unique node id (letters, digits, '.', '_', '-'; up to 64)")
    kind: NodeKind = Field(default="kme", description=(
        "role of the site, shown in reports; routing treats every node as a trusted relay"))
    name: str | None = Field(default=None, description="display name")
    x_km: float = Field(default=0.0, description=(
        "east position for drawings (any planar projection); not used for link lengths"))
    y_km: float = Field(default=0.0, description="north position for drawings")
    mtbf_h: float | None = Field(default=None, gt=0, description=(
        "mean time between failures of the node (hours; exponential); null: fails only when a "
        "scenario event says so"))
    mttr_h: float = Field(default=4.0, gt=0, description=(
        "mean time to repair a failed node (hours; exponential)"))


class Link(_Strict):
    """A QKD link between two nodes: the channel, its QKD system, faults and key pool."""

    id: _ID = Field(description="unique link id (letters, digits, '.', '_', '-'; up to 64)")
    a: _ID = Field(description="id of one end node")
    b: _ID = Field(description="id of the other end node")
    kind: LinkKind = Field(default="fiber", description=(
        "fiber; free-space (weather outages apply); satellite (needs passes); repeater-chain "
        "(needs repeater)"))
    length_km: float = Field(gt=0, description="channel length")
    loss_db_per_km: float = Field(default=0.2, ge=0, description="fiber attenuation")
    extra_loss_db: float = Field(default=0.0, ge=0, description=(
        "lumped loss on top of the fiber's: connectors, splices, components"))
    loss_db: float | None = Field(default=None, ge=0, description=(
        "measured total channel loss; replaces loss_db_per_km x length_km + extra_loss_db, the "
        "part above the fiber's own attenuation counted as lumped loss"))
    qkd: QkdSystem = Field(default_factory=QkdSystem, description="the link's QKD system")
    classical_channels: list[ClassicalChannelSpec] = Field(default_factory=list, description=(
        "classical DWDM channels sharing the fiber (Raman noise in the quantum channel)"))
    quantum_wavelength_nm: float = Field(default=1550.0, description=(
        "wavelength of the quantum channel (nm): O-band 1260-1360 or C-band 1530-1565; "
        "loss_db_per_km is the attenuation at this wavelength"))
    filter_bandwidth_nm: float = Field(default=0.6, gt=0, le=20, description=(
        "bandwidth of the quantum receiver's filter (nm; 0.6 nm: a 100 GHz DWDM port)"))
    pool_capacity_bits: float = Field(default=1e8, gt=0, description=(
        "most key (bits) the link's pool holds; production beyond it is discarded"))
    mtbf_h: float | None = Field(default=None, gt=0, description="mean time between cuts")
    mttr_h: float = Field(default=4.0, gt=0, description="mean time to repair")
    ageing: Ageing = Field(default_factory=Ageing, description=(
        "detector ageing and temperature drift of the link's receiver"))
    passes: PassWindows | None = Field(default=None, description=(
        "satellite pass windows (required for a satellite link); null: always in view"))
    repeater: RepeaterChainSpec | None = Field(default=None, description=(
        "the quantum-repeater chain of a repeater-chain link (its stations and memories)"))
    weather_outage_prob: float = Field(default=0.0, ge=0, le=1, description=(
        "share of time a free-space or satellite link is clouded (outages of 2 h on average)"))
    published_rate_bps: float | None = Field(default=None, ge=0,
                                             description="published secret key rate, if any")
    published_qber: float | None = Field(default=None, ge=0, le=0.5,
                                         description="published QBER of the link, if any")
    published_ref: str = Field(default="", description="where the published values are from")

    @model_validator(mode="after")
    def _ends(self) -> Link:
        if self.a == self.b:
            raise ValueError("a link needs two different end nodes")
        if (self.kind == "repeater-chain") != (self.repeater is not None):
            raise ValueError("a repeater-chain link needs 'repeater', and only such a link "
                             "takes it")
        if self.loss_db is not None:
            # A measured total replaces the per-km estimate; both at once would be ambiguous.
            if self.extra_loss_db:
                raise ValueError("give either loss_db (measured total) or extra_loss_db, not both")
            fiber = self.loss_db_per_km * self.length_km
            if self.loss_db < fiber - 1e-9:
                raise ValueError(f"loss_db {self.loss_db:g} dB is below the fiber's own "
                                 f"{fiber:g} dB (loss_db_per_km x length_km)")
        return self

    @model_validator(mode="after")
    def _coexistence(self) -> Link:
        q = self.quantum_wavelength_nm
        if not (1260.0 <= q <= 1360.0 or 1530.0 <= q <= 1565.0):
            raise ValueError(f"quantum_wavelength_nm {q:g} nm is in neither the O-band "
                             "(1260-1360 nm) nor the C-band (1530-1565 nm)")
        half = self.filter_bandwidth_nm / 2.0
        for j, ch in enumerate(self.classical_channels):
            wavelengths = ch.wavelengths_nm()
            if wavelengths is None:
                if ch.raman_cross_section_per_km_per_nm is None and q < 1530.0:
                    raise ValueError(f"classical_channels[{j}] needs wavelength_nm or "
                                     "grid_channel: the Raman noise in an O-band quantum channel "
                                     "depends on it")
                continue
            for wavelength in wavelengths:
                if abs(wavelength - q) <= half:
                    raise ValueError(
                        f"classical_channels[{j}] at {wavelength:.2f} nm lies within the quantum "
                        f"channel's filter ({q:g} nm +- {half:g} nm)")
        return self

    @property
    def lumped_loss_db(self) -> float:
        """Loss on top of the fiber's attenuation: the measured total's excess, or extra_loss_db."""
        if self.loss_db is None:
            return self.extra_loss_db
        return self.loss_db - self.loss_db_per_km * self.length_km

    @property
    def total_loss_db(self) -> float:
        """Channel loss from Alice to Bob's receiver (dB)."""
        return self.loss_db_per_km * self.length_km + self.lumped_loss_db


class Demand(_Strict):
    """A pair of sites that wants end-to-end key at a steady rate."""

    id: _ID = Field(description="unique demand id (letters, digits, '.', '_', '-'; up to 64)")
    a: _ID = Field(description="id of one site (node)")
    b: _ID = Field(description="id of the other site (node)")
    rate_bps: float = Field(gt=0, description="end-to-end secret key wanted")
    priority: int = Field(default=1, ge=1, le=10,
                          description="1 (lowest) to 10 (highest): served first when key is short")
    policy: Policy = Field(default="refuse", description=(
        "when key is short: refuse (not served) or fallback-pqc (post-quantum keys, time "
        "counted)"))


NODE_EVENTS = ("node-down", "node-up")


class ScenarioEvent(_Strict):
    """A scripted event: on a link (cut, repair, eavesdropper, weather) or on a node (a trusted
    node down and back up)."""

    at_s: float = Field(ge=0)
    event: Literal["cut", "repair", "eavesdropper", "eavesdropper-off", "weather-outage",
                   "weather-clear", "node-down", "node-up"]
    link: _ID | None = Field(default=None, description=(
        "id of the link a link event applies to (every event but node-down/node-up)"))
    node: _ID | None = Field(default=None, description=(
        "id of the node a node-down or node-up event applies to"))
    intercept_fraction: float = Field(default=1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _target(self) -> ScenarioEvent:
        if (self.link is None) == (self.node is None):
            raise ValueError("give exactly one of link and node")
        if self.event in NODE_EVENTS and self.node is None:
            raise ValueError(f"a {self.event} event names a node, not a link")
        if self.event not in NODE_EVENTS and self.link is None:
            raise ValueError(f"a {self.event} event names a link, not a node")
        return self


class Monitoring(_Strict):
    """Alarm thresholds of the twin's monitoring."""

    qber_warning: float = Field(default=0.05, gt=0, lt=0.5, description=(
        "QBER (0-0.5) above which a link raises a warning; below qber_abort"))
    qber_abort: float = Field(default=0.11, gt=0, lt=0.5, description=(
        "QBER (0-0.5) above which a link makes no key; a rise its own noise does not explain "
        "quarantines it"))
    pool_low_fraction: float = Field(default=0.05, ge=0, lt=1, description=(
        "alarm when a link's pool falls below this fraction of its capacity (0-1)"))
    detector_efficiency_warning: float = Field(default=0.8, gt=0, le=1, description=(
        "alarm when detector efficiency falls below this fraction of the initial one (0-1)"))


InitialFill = Literal["empty", "full"] | Annotated[float, Field(ge=0)]


class Pools(_Strict):
    """What the links' key pools hold when a run starts."""

    initial_fill: InitialFill = Field(default="empty", description=(
        "'empty' (the default: only key made during the run is served), 'full' (every pool at "
        "its capacity) or a number of seconds of each link's production at the start"))


class Topology(_Strict):
    """A QKD network: its nodes, links, key demands, a scripted scenario and alarm levels."""

    name: str = Field(description="name of the network, shown in summaries and reports")
    description: str = Field(default="", description="free text about the network")
    source: str = Field(default="", description="where the network's values come from")
    step_s: float = Field(default=60.0, gt=0, le=3600, description=(
        "simulation time step (at most 3600)"))
    nodes: list[Node] = Field(description="the sites")
    links: list[Link] = Field(description="the QKD links between sites")
    demands: list[Demand] = Field(default_factory=list, description=(
        "end-to-end key wanted between sites"))
    scenario: list[ScenarioEvent] = Field(default_factory=list, description=(
        "scripted events: cuts, repairs, eavesdroppers, weather"))
    monitoring: Monitoring = Field(default_factory=Monitoring, description="alarm thresholds")
    pools: Pools = Field(default_factory=Pools)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


class TopologyError(Exception):
    """A topology file is invalid; ``problems`` lists (field path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


def field_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's ('links', 3, 'length_km') as the file's own ``links[3].length_km``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _reference_checks(data: Any) -> list[tuple[str, str]]:
    """Duplicate ids and dangling references, on the raw document, so that they are reported
    together with schema problems (every problem at once)."""
    if not isinstance(data, dict):
        return []
    problems: list[tuple[str, str]] = []

    def items(key: str) -> list[Any]:
        value = data.get(key)
        return value if isinstance(value, list) else []

    ids: dict[str, set[str]] = {}
    for what in ("nodes", "links", "demands"):
        seen: set[str] = set()
        for i, item in enumerate(items(what)):
            ident = item.get("id") if isinstance(item, dict) else None
            if isinstance(ident, str):
                if ident in seen:
                    problems.append((f"{what}[{i}].id", f"duplicate id {ident!r}"))
                seen.add(ident)
        ids[what] = seen
    for what in ("links", "demands"):
        for i, item in enumerate(items(what)):
            for end in ("a", "b"):
                ref = item.get(end) if isinstance(item, dict) else None
                if isinstance(ref, str) and ref not in ids["nodes"]:
                    problems.append((f"{what}[{i}].{end}", f"unknown node {ref!r}"))
    for i, item in enumerate(items("scenario")):
        ref = item.get("link") if isinstance(item, dict) else None
        if isinstance(ref, str) and ref not in ids["links"]:
            problems.append((f"scenario[{i}].link", f"unknown link {ref!r}"))
        ref = item.get("node") if isinstance(item, dict) else None
        if isinstance(ref, str) and ref not in ids["nodes"]:
            problems.append((f"scenario[{i}].node", f"unknown node {ref!r}"))
    return problems


def _system_checks(i: int, ln: Link, spec: Any) -> list[tuple[str, str]]:
    """The link's device values must be parameters of its protocol and valid together."""
    from qnetkit.errors import ParameterError

    fields = {f.name for f in dataclasses.fields(spec.params_type)}
    overrides = ln.qkd.param_overrides()
    foreign = [name for name in overrides if name not in fields]
    if foreign:
        return [(f"links[{i}].qkd.{name}", f"not a parameter of {spec.name}")
                for name in foreign]
    try:
        spec.params_from(ln.qkd.preset, overrides)
    except ParameterError as exc:
        return [(f"links[{i}].qkd", str(exc))]
    return []


def _model_checks(t: Topology) -> list[tuple[str, str]]:
    """Checks that need the validated model: protocols, presets, engines, passes."""
    from qnetkit.keyrate.registry import PROTOCOL_NAMES, get_protocol

    problems: list[tuple[str, str]] = []
    for i, ln in enumerate(t.links):
        if ln.qkd.protocol not in PROTOCOL_NAMES or ln.qkd.protocol == "plob":
            ok = ", ".join(p for p in PROTOCOL_NAMES if p != "plob")
            problems.append((f"links[{i}].qkd.protocol",
                             f"unknown protocol {ln.qkd.protocol!r} (one of {ok})"))
        else:
            spec = get_protocol(ln.qkd.protocol)
            if ln.qkd.preset is not None and ln.qkd.preset not in spec.presets:
                problems.append((f"links[{i}].qkd.preset", f"unknown preset {ln.qkd.preset!r} "
                                 f"(one of {', '.join(sorted(spec.presets))})"))
            else:
                problems += _system_checks(i, ln, spec)
        if ln.qkd.engine == "monte-carlo" and ln.qkd.protocol != "decoy-bb84":
            problems.append((f"links[{i}].qkd.engine",
                             "the Monte-Carlo engine runs decoy-bb84 only"))
        if ln.kind == "satellite" and ln.passes is None:
            problems.append((f"links[{i}].passes", "a satellite link needs pass windows"))
    for i, d in enumerate(t.demands):
        if d.a == d.b:
            problems.append((f"demands[{i}]", "a demand needs two different sites"))
    if t.monitoring.qber_warning >= t.monitoring.qber_abort:
        problems.append(("monitoring.qber_warning", "must be below qber_abort"))
    return problems


def _schema_problem(error: ErrorDetails) -> tuple[str, str]:
    """One pydantic error as (field path, message); an unknown key names the allowed ones."""
    from qnetkit.network.schema_errors import unknown_field_message

    loc = tuple(error["loc"])
    message = unknown_field_message(Topology, loc) if error["type"] == "extra_forbidden" else None
    return field_path(loc), message or str(error["msg"])


def parse_topology(data: Any, source: str = "<topology>") -> Topology:
    """Validate a parsed YAML document; TopologyError lists every problem found."""
    references = _reference_checks(data)
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        problems = [_schema_problem(e) for e in exc.errors()]
        seen = {path for path, _ in problems}
        raise TopologyError(source, problems + [p for p in references if p[0] not in seen]) \
            from None
    problems = references + _model_checks(topo)
    if problems:
        raise TopologyError(source, problems)
    return topo


def load_topology(path: Path) -> Topology:
    try:
        text = path.read_text(encoding="utf-8")  # YAML 1.2 streams are Unicode; not the locale
    except OSError as exc:
        raise TopologyError(str(path), [("(file)", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise TopologyError(str(path), [("(file)", "not valid YAML (not UTF-8 text)")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise TopologyError(str(path), [(where, "not valid YAML")]) from None
    return parse_topology(data, str(path))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")


def parse_duration_s(text: str) -> float:
    """'90s', '30m', '6h', '1d' or plain seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"bad duration {text!r} (use e.g. 90s, 30m, 6h, 1d)")
    value = float(m.group(1))
    return value * {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}[m.group(2)]


__all__ = ["NODE_EVENTS", "Ageing", "ClassicalChannelSpec", "Demand", "InitialFill", "Link",
           "Monitoring", "Node", "PassWindows", "Pools", "QkdSystem", "RepeaterChainSpec",
           "ScenarioEvent", "Topology", "TopologyError", "field_path", "load_topology",
           "parse_duration_s", "parse_topology"]
