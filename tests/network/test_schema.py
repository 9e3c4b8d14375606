"""The topology schema: unknown-field messages, the generated reference and the JSON Schema."""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from qnetkit.network.examples import example_path, list_examples
from qnetkit.network.schema_doc import (
    REGENERATE,
    model_docs,
    reference_markdown,
    reference_text,
    topology_schema,
    unit_of,
)
from qnetkit.network.schema_errors import model_at, unknown_field_message
from qnetkit.network.topology import (
    Ageing,
    ClassicalChannelSpec,
    Demand,
    Link,
    Monitoring,
    Node,
    PassWindows,
    QkdSystem,
    Topology,
    TopologyError,
    parse_topology,
)

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "topology-reference.md"


def _good() -> dict[str, Any]:
    return {
        "name": "t",
        "nodes": [{"id": "A"}, {"id": "B"}, {"id": "C"}],
        "links": [
            {"id": "AB", "a": "A", "b": "B", "length_km": 10},
            {"id": "BC", "a": "B", "b": "C", "length_km": 20},
            {"id": "CA", "a": "C", "b": "A", "length_km": 15},
        ],
    }


def _problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(TopologyError) as info:
        parse_topology(data, "bad.yaml")
    return dict(info.value.problems)


# -- unknown fields -------------------------------------------------------------------------


def test_misspelt_link_field_names_the_allowed_fields_and_the_meant_one() -> None:
    data = _good()
    data["links"][2]["lenght_km"] = data["links"][2].pop("length_km")
    problems = _problems(data)
    allowed = ", ".join(sorted(Link.model_fields))
    assert problems["links[2].lenght_km"] == (
        f"unknown field 'lenght_km'; allowed here: {allowed} (did you mean 'length_km'?)")
    # The list is the link's own fields, alphabetical: spot-check it independently.
    assert "allowed here: a, ageing, b, classical_channels, " in problems["links[2].lenght_km"]
    assert problems["links[2].length_km"] == "Field required"  # pydantic's, unchanged


@pytest.mark.parametrize(("where", "key", "model", "meant"), [
    (("links", 0, "qkd"), "pulse_rate", QkdSystem, "pulse_rate_hz"),
    (("links", 1, "passes"), "perod_s", PassWindows, "period_s"),          # an optional model
    (("links", 0, "classical_channels", 0), "launch_power", ClassicalChannelSpec,
     "launch_power_dbm"),                                                  # a list in a list
    (("links", 0, "ageing"), "Efficiency_Loss_Per_Day", Ageing, "efficiency_loss_per_day"),
    (("nodes", 1), "Kind", Node, "kind"),
    (("monitoring",), "qber_warn", Monitoring, "qber_warning"),
    ((), "demand", Topology, "demands"),                                   # top level
])
def test_unknown_field_at_any_depth(where: tuple[Any, ...], key: str, model: type[BaseModel],
                                    meant: str) -> None:
    data = _good()
    target: Any = data
    for part in where:
        if isinstance(part, str) and part not in target:
            target[part] = [{}] if part == "classical_channels" else {}
        target = target[part]
    target[key] = 1
    problems = _problems(data)
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in (*where, key))
    path = path.removeprefix(".")
    assert problems[path] == (f"unknown field {key!r}; allowed here: "
                              f"{', '.join(sorted(model.model_fields))} (did you mean {meant!r}?)")


def test_no_suggestion_when_nothing_is_close() -> None:
    data = _good()
    data["demands"] = [{"id": "d", "a": "A", "b": "C", "rate_bps": 1, "zzzz": 3}]
    msg = _problems(data)["demands[0].zzzz"]
    assert msg == f"unknown field 'zzzz'; allowed here: {', '.join(sorted(Demand.model_fields))}"


def test_model_at_follows_lists_and_optionals() -> None:
    assert model_at(Topology, ()) is Topology
    assert model_at(Topology, ("links", 4, "qkd")) is QkdSystem
    assert model_at(Topology, ("links", 0, "passes")) is PassWindows
    assert model_at(Topology, ("links", 0, "length_km")) is None  # a number, not a mapping
    assert model_at(Topology, ("nope",)) is None
    assert unknown_field_message(Topology, ()) is None


# -- the reference --------------------------------------------------------------------------


def _model_of(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """Walks the annotations themselves, apart from the JSON Schema the reference is built on."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is list:
        inner = _model_of(args[0])
        return (inner[0], "[]" + inner[1]) if inner else None
    models = [m for m in map(_model_of, args) if m is not None]
    return models[0] if len(models) == 1 else None


def _all_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        paths.add(path)
        nested = _model_of(field.annotation)
        if nested is not None:
            paths |= _all_paths(nested[0], path + nested[1])
    return paths


def test_reference_lists_every_field_of_every_model() -> None:
    listed = [f.path for m in model_docs() for f in m.fields]
    assert len(listed) == len(set(listed))
    assert set(listed) == _all_paths(Topology)
    assert {m.path for m in model_docs()} >= {"", "nodes[]", "links[]", "links[].qkd",
                                               "links[].classical_channels[]",
                                               "links[].ageing", "links[].passes", "demands[]",
                                               "scenario[]", "monitoring"}


def test_reference_rows_carry_type_default_unit_and_meaning() -> None:
    rows = {f.path: f for m in model_docs() for f in m.fields}
    rate = rows["links[].qkd.pulse_rate_hz"]
    assert (rate.type, rate.default, rate.unit) == ("number > 0", "1e+09", "Hz")
    assert "pulse" in rate.description
    length = rows["links[].length_km"]
    assert (length.type, length.default, length.unit) == ("number > 0", "required", "km")
    assert rows["nodes[].kind"].default == '"kme"'
    assert rows["nodes[].kind"].type.startswith('one of "kme", "trusted-relay"')
    assert rows["monitoring.qber_abort"].type == "number, 0 < x < 0.5"
    assert rows["monitoring.qber_abort"].default == "0.11"
    assert rows["links[].loss_db"].type == "number >= 0 or null"
    assert rows["links[].classical_channels"].default == "[]"
    assert rows["links[].qkd"].default == "{}"
    assert rows["step_s"].type == "number, 0 < x <= 3600"
    assert rows["links[].loss_db_per_km"].unit == "dB/km"
    text = reference_text()
    assert "  links[].qkd.pulse_rate_hz [Hz]: number > 0; default 1e+09\n" in text
    assert "  links[].length_km [km]: number > 0; required\n" in text


@pytest.mark.parametrize(("name", "unit"), [
    ("length_km", "km"), ("loss_db_per_km", "dB/km"), ("extra_loss_db", "dB"),
    ("launch_power_dbm", "dBm"), ("raman_cross_section_per_km_per_nm", "1/(km nm)"),
    ("pulse_rate_hz", "Hz"), ("rate_bps", "bit/s"), ("pool_capacity_bits", "bit"),
    ("mttr_h", "h"), ("at_s", "s"), ("dark_count_doubling_k", "K"),
    ("efficiency_loss_per_day", "1/day"), ("grid_spacing_ghz", "GHz"), ("delay_ms", "ms"),
    ("id", ""), ("decoys", ""), ("qber_abort", ""), ("items", ""),
])
def test_unit_from_the_field_name(name: str, unit: str) -> None:
    assert unit_of(name) == unit


# Fields owned elsewhere (issue 13): their descriptions come with them.
NOT_MINE = {("Node", "mtbf_h"), ("Node", "mttr_h"), ("Link", "quantum_wavelength_nm"),
            ("Link", "filter_bandwidth_nm"), ("Topology", "pools")}


@pytest.mark.parametrize("model", [Node, QkdSystem, Link, Demand, Monitoring, Topology, Ageing,
                                   PassWindows])
def test_fields_are_described(model: type[BaseModel]) -> None:
    bare = [name for name, f in model.model_fields.items()
            if not f.description and (model.__name__, name) not in NOT_MINE]
    assert bare == []


def test_docs_page_is_the_generated_one() -> None:
    assert DOCS_PAGE.read_text() == reference_markdown(), (
        f"docs/topology-reference.md is out of date; regenerate it: {REGENERATE}")
    # And it holds real rows, not only headings.
    assert "| `pulse_rate_hz` | `number > 0` | `1e+09` | Hz | " in DOCS_PAGE.read_text()


# -- the JSON Schema ------------------------------------------------------------------------

# Keywords the small validator below understands; the schema may use no other, so that none
# is ignored silently (jsonschema is not a dependency of qnetkit).
ASSERTIONS = {"type", "properties", "required", "additionalProperties", "items", "$ref", "anyOf",
              "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
              "minLength", "maxLength", "pattern"}
ANNOTATIONS = {"title", "description", "default", "$defs", "$schema"}
TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "boolean": bool,
                         "null": type(None), "integer": int, "number": (int, float)}


def _keywords(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*map(_keywords, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = set(node)
    for key, value in node.items():
        if key in ("properties", "$defs"):
            found |= set().union(*map(_keywords, value.values()))
        elif key not in ("enum", "const", "default", "required"):
            found |= _keywords(value)
    return found


def _errors(schema: dict[str, Any], root: dict[str, Any], value: Any, at: str) -> list[str]:
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        if all(_errors(s, root, value, at) for s in schema["anyOf"]):
            return [f"{at}: matches no branch"]
        return []
    out: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        if isinstance(value, bool) and kind in ("integer", "number"):
            return [f"{at}: {value!r} is not {kind}"]
        if not isinstance(value, TYPES[kind]):
            return [f"{at}: {value!r} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{at}: {value!r} not in enum")
    if "const" in schema and value != schema["const"]:
        out.append(f"{at}: {value!r} is not the constant")
    for key, bad in (("minimum", lambda v, b: v < b), ("maximum", lambda v, b: v > b),
                     ("exclusiveMinimum", lambda v, b: v <= b),
                     ("exclusiveMaximum", lambda v, b: v >= b)):
        if key in schema and bad(value, schema[key]):
            out.append(f"{at}: {value!r} breaks {key} {schema[key]}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            out.append(f"{at}: length out of range")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{at}: does not match {schema['pattern']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{at}.{k}: required" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                out += _errors(props[k], root, v, f"{at}.{k}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{at}.{k}: not allowed")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            out += _errors(schema["items"], root, v, f"{at}[{i}]")
    return out


def test_json_schema_uses_only_checked_keywords() -> None:
    schema = topology_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert {"name", "nodes", "links"} <= set(schema["required"])
    assert _keywords(schema) - ASSERTIONS - ANNOTATIONS == set()


@pytest.mark.parametrize("name", list_examples())
def test_json_schema_accepts_the_shipped_examples(name: str) -> None:
    schema = topology_schema()
    doc = yaml.safe_load(example_path(name).read_text())
    assert _errors(schema, schema, doc, "$") == []
    # ... and rejects what the validator rejects: a misspelt key, a bad enum, a bound.
    bad = copy.deepcopy(doc)
    bad["links"][0]["lenght_km"] = bad["links"][0].pop("length_km")
    bad["links"][-1]["kind"] = "copper"
    bad["nodes"][0]["id"] = "has space"
    bad.setdefault("monitoring", {})["qber_abort"] = 0.7
    assert sorted(_errors(schema, schema, bad, "$")) == sorted([
        "$.links[0].length_km: required", "$.links[0].lenght_km: not allowed",
        f"$.links[{len(doc['links']) - 1}].kind: 'copper' not in enum",
        "$.nodes[0].id: does not match ^[A-Za-z0-9._-]+$",
        "$.monitoring.qber_abort: 0.7 breaks exclusiveMaximum 0.5"])
