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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

NodeKind = Literal["kme", "trusted-relay", "user-site", "ground-station", "satellite"]
LinkKind = Literal["fiber", "free-space", "satellite"]
Policy = Literal["refuse", "fallback-pqc"]
Engine = Literal["analytic", "monte-carlo"]

_ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Node(_Strict):
    id: _ID
    kind: NodeKind = "kme"
    name: str | None = None
    x_km: float = 0.0  # position for drawings (any planar projection)
    y_km: float = 0.0


class QkdSystem(_Strict):
    """The QKD system on a link: a protocol of ``qnetkit.keyrate`` at a preset, or the
    Monte-Carlo engine of ``qnetkit.qkd`` (decoy BB84 only)."""

    protocol: str = "decoy-bb84"
    preset: str | None = None
    engine: Engine = "analytic"
    pulse_rate_hz: float = Field(default=1e9, gt=0)
    detector_efficiency: float | None = Field(default=None, gt=0, le=1)
    dark_count_prob: float | None = Field(default=None, ge=0, lt=1)
    misalignment_error: float | None = Field(default=None, ge=0, le=0.5)
    ec_efficiency: float | None = Field(default=None, ge=1, description="f_EC of the system")
    sifting_factor: float | None = Field(default=None, gt=0, le=1,
                                         description="kept fraction after basis sifting")
    decoys: Literal["infinite", "vacuum+weak", "none"] | None = None  # "none": SARG04 only
    mu: float | None = Field(default=None, gt=0, description="fixed signal intensity (photons)")
    nu: float | None = Field(default=None, gt=0, description="fixed weak-decoy intensity")
    block_s: float = Field(default=60.0, gt=0, description="key block (estimation) period")
    # Provenance, read by the published-rate comparison (tests, README): the real protocol when
    # the registry has no model of it, where the device values come from, and whether any of
    # them was chosen with the link's published rate in view (a calibration, not a check).
    stand_in_for: str | None = Field(default=None, max_length=80,
                                     description="the real protocol a registry one stands in for")
    source: str = Field(default="", description="where the device values come from")
    calibrated: bool = Field(
        default=False, description="a device value was chosen with the published rate in view")

    def param_overrides(self) -> dict[str, Any]:
        """The protocol parameters this system sets (unset fields keep the preset's value)."""
        return {name: getattr(self, name) for name in SYSTEM_PARAMS
                if getattr(self, name) is not None}


# QkdSystem fields passed to the protocol's parameter dataclass when set.
SYSTEM_PARAMS = ("detector_efficiency", "dark_count_prob", "misalignment_error", "ec_efficiency",
                 "sifting_factor", "decoys", "mu", "nu")


class ClassicalChannelSpec(_Strict):
    """A classical DWDM channel sharing the fiber: Raman noise in the quantum channel."""

    launch_power_dbm: float = Field(default=0.0, ge=-40, le=30)
    direction: Literal["co", "counter"] = "co"
    raman_cross_section_per_km_per_nm: float = Field(default=3e-9, ge=0)
    load_profile: Literal["flat", "business", "evening"] = "business"


class Ageing(_Strict):
    """Detector ageing and temperature drift."""

    efficiency_loss_per_day: float = Field(default=0.0, ge=0, lt=1)
    dark_count_doubling_k: float = Field(default=8.0, gt=0,
                                         description="dark counts double every this many kelvin")
    temperature_amplitude_k: float = Field(default=0.0, ge=0, description="daily cycle amplitude")


class PassWindows(_Strict):
    """Satellite passes: a pass of ``duration_s`` every ``period_s``, first at ``first_s``."""

    period_s: float = Field(default=86400.0, gt=0)
    duration_s: float = Field(default=300.0, gt=0)
    first_s: float = Field(default=0.0, ge=0)


class Link(_Strict):
    id: _ID
    a: _ID
    b: _ID
    kind: LinkKind = "fiber"
    length_km: float = Field(gt=0)
    loss_db_per_km: float = Field(default=0.2, ge=0)
    extra_loss_db: float = Field(default=0.0, ge=0)
    loss_db: float | None = Field(default=None, ge=0, description=(
        "measured total channel loss; replaces loss_db_per_km x length_km + extra_loss_db, the "
        "part above the fiber's own attenuation counted as lumped loss"))
    qkd: QkdSystem = Field(default_factory=QkdSystem)
    classical_channels: list[ClassicalChannelSpec] = Field(default_factory=list)
    pool_capacity_bits: float = Field(default=1e8, gt=0)
    mtbf_h: float | None = Field(default=None, gt=0, description="mean time between cuts")
    mttr_h: float = Field(default=4.0, gt=0, description="mean time to repair")
    ageing: Ageing = Field(default_factory=Ageing)
    passes: PassWindows | None = None
    weather_outage_prob: float = Field(default=0.0, ge=0, le=1,
                                       description="share of time a free-space link is clouded")
    published_rate_bps: float | None = Field(default=None, ge=0,
                                             description="published secret key rate, if any")
    published_qber: float | None = Field(default=None, ge=0, le=0.5,
                                         description="published QBER of the link, if any")
    published_ref: str = Field(default="", description="where the published values are from")

    @model_validator(mode="after")
    def _ends(self) -> Link:
        if self.a == self.b:
            raise ValueError("a link needs two different end nodes")
        if self.loss_db is not None:
            # A measured total replaces the per-km estimate; both at once would be ambiguous.
            if self.extra_loss_db:
                raise ValueError("give either loss_db (measured total) or extra_loss_db, not both")
            fiber = self.loss_db_per_km * self.length_km
            if self.loss_db < fiber - 1e-9:
                raise ValueError(f"loss_db {self.loss_db:g} dB is below the fiber's own "
                                 f"{fiber:g} dB (loss_db_per_km x length_km)")
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
    id: _ID
    a: _ID
    b: _ID
    rate_bps: float = Field(gt=0)
    priority: int = Field(default=1, ge=1, le=10,
                          description="1 (lowest) to 10 (highest): served first when key is short")
    policy: Policy = "refuse"


class ScenarioEvent(_Strict):
    at_s: float = Field(ge=0)
    event: Literal["cut", "repair", "eavesdropper", "eavesdropper-off", "weather-outage",
                   "weather-clear"]
    link: _ID
    intercept_fraction: float = Field(default=1.0, gt=0, le=1)


class Monitoring(_Strict):
    qber_warning: float = Field(default=0.05, gt=0, lt=0.5)
    qber_abort: float = Field(default=0.11, gt=0, lt=0.5)
    pool_low_fraction: float = Field(default=0.05, ge=0, lt=1)
    detector_efficiency_warning: float = Field(default=0.8, gt=0, le=1,
                                               description="fraction of the initial efficiency")


class Topology(_Strict):
    name: str
    description: str = ""
    source: str = ""
    step_s: float = Field(default=60.0, gt=0, le=3600)
    nodes: list[Node]
    links: list[Link]
    demands: list[Demand] = Field(default_factory=list)
    scenario: list[ScenarioEvent] = Field(default_factory=list)
    monitoring: Monitoring = Field(default_factory=Monitoring)

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


def parse_topology(data: Any, source: str = "<topology>") -> Topology:
    """Validate a parsed YAML document; TopologyError lists every problem found."""
    references = _reference_checks(data)
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        problems = [(field_path(tuple(e["loc"])), str(e["msg"])) for e in exc.errors()]
        seen = {path for path, _ in problems}
        raise TopologyError(source, problems + [p for p in references if p[0] not in seen]) \
            from None
    problems = references + _model_checks(topo)
    if problems:
        raise TopologyError(source, problems)
    return topo


def load_topology(path: Path) -> Topology:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(str(path), [("(file)", f"cannot read: {exc.strerror}")]) from None
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
