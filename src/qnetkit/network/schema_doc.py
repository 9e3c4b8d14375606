"""The topology file's reference, generated from the pydantic model (one source of truth).

``qnetkit network schema`` prints it: ``--json`` the JSON Schema of ``Topology``, ``--markdown``
the page committed as ``docs/topology-reference.md`` (a test keeps the two equal), and by default
one entry per field for reading in a terminal. Every entry comes from the JSON Schema that
pydantic derives from the model, so the reference cannot list a field the validator rejects or
miss one it accepts. Units are those the field names carry (the project's convention:
``length_km``, ``pulse_rate_hz``); a field without a unit suffix is dimensionless or a name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from qnetkit.network.topology import Topology

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "qnetkit network schema --markdown > docs/topology-reference.md"

# Unit suffixes of field names; the longest that matches wins (``_db_per_km`` over ``_km``).
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_per_km_per_nm", "1/(km nm)"),
    ("_db_per_km", "dB/km"),
    ("_per_day", "1/day"),
    ("_per_h", "1/h"),
    ("_per_s", "1/s"),
    ("_dbm", "dBm"),
    ("_db", "dB"),
    ("_km", "km"),
    ("_m", "m"),
    ("_nm", "nm"),
    ("_thz", "THz"),
    ("_ghz", "GHz"),
    ("_mhz", "MHz"),
    ("_khz", "kHz"),
    ("_hz", "Hz"),
    ("_bps", "bit/s"),
    ("_bits", "bit"),
    ("_ps", "ps"),
    ("_ns", "ns"),
    ("_us", "us"),
    ("_ms", "ms"),
    ("_s", "s"),
    ("_h", "h"),
    ("_k", "K"),
    ("_mw", "mW"),
    ("_w", "W"),
)
_BY_LENGTH = sorted(UNIT_SUFFIXES, key=lambda su: -len(su[0]))


@dataclass(frozen=True)
class FieldDoc:
    """One field of a model, as a reader of the YAML file sees it."""

    path: str  # in the file's own terms: links[].qkd.pulse_rate_hz
    name: str
    type: str  # e.g. "number > 0", 'one of "co", "counter"'
    default: str  # "required", "null", "1e+09", '"kme"', "[]", "{}"
    unit: str  # "" when the field has none
    description: str


@dataclass(frozen=True)
class ModelDoc:
    """A model (a mapping in the file) and where it sits: ``""`` for the top level."""

    path: str
    title: str
    description: str
    fields: tuple[FieldDoc, ...]


def topology_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a topology file."""
    return {"$schema": JSON_SCHEMA_DIALECT, **Topology.model_json_schema()}


def unit_of(name: str) -> str:
    """The unit a field name carries (``length_km`` -> ``km``), or ``""``."""
    for suffix, unit in _BY_LENGTH:
        if name.endswith(suffix):
            return unit
    return ""


def _ref_name(prop: dict[str, Any]) -> str | None:
    ref = prop.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _nested(prop: dict[str, Any]) -> tuple[str, str] | None:
    """(model name, path suffix) when the property holds a model: ``("Link", "[]")`` for a
    list of links, ``("PassWindows", "")`` for an optional one."""
    name = _ref_name(prop)
    if name is not None:
        return name, ""
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        inner = _nested(prop["items"])
        if inner is not None:
            return inner[0], "[]" + inner[1]
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        return _nested(branches[0])
    return None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else json.dumps(value)


def _bounds(prop: dict[str, Any]) -> str:
    """``> 0`` for one bound, ``, 0 <= x < 1`` for two."""
    low = next(((op, prop[k]) for k, op in (("exclusiveMinimum", "<"), ("minimum", "<="))
                if k in prop), None)
    high = next(((op, prop[k]) for k, op in (("exclusiveMaximum", "<"), ("maximum", "<="))
                 if k in prop), None)
    if low is not None and high is not None:
        return f", {_number(low[1])} {low[0]} x {high[0]} {_number(high[1])}"
    if low is not None:
        return f" {low[0].replace('<', '>')} {_number(low[1])}"
    if high is not None:
        return f" {high[0]} {_number(high[1])}"
    return ""


def type_text(prop: dict[str, Any]) -> str:
    """A JSON Schema property as a reader's type: ``number > 0``, ``list of Link``."""
    name = _ref_name(prop)
    if name is not None:
        return name
    if "anyOf" in prop:
        return " or ".join(type_text(b) for b in prop["anyOf"])
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    kind = prop.get("type", "any")
    if kind == "array":
        items = prop.get("items")
        return "list of " + (type_text(items) if isinstance(items, dict) else "any")
    text = str(kind) + _bounds(prop)
    if kind == "string":
        extra = []
        if "minLength" in prop or "maxLength" in prop:
            extra.append(f"{prop.get('minLength', 0)}-{prop.get('maxLength', '')} characters")
        if "pattern" in prop:
            extra.append(f"matching {prop['pattern']}")
        if extra:
            text += " (" + ", ".join(extra) + ")"
    return text


def _default_text(name: str, prop: dict[str, Any], required: set[str]) -> str:
    if name in required:
        return "required"
    if "default" in prop:
        value = prop["default"]
        return _number(value) if isinstance(value, int | float) and not isinstance(
            value, bool) else json.dumps(value)
    # A default_factory leaves no default in the schema: an empty list, or the nested model
    # with each of its own defaults (an empty mapping in the file).
    return "[]" if prop.get("type") == "array" else "{}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def model_docs(schema: dict[str, Any] | None = None) -> list[ModelDoc]:
    """Every model of the topology file with its fields, top level first, then depth first in
    field order (the order a file is usually written in)."""
    schema = schema if schema is not None else topology_schema()
    defs: dict[str, dict[str, Any]] = schema.get("$defs", {})
    out: list[ModelDoc] = []

    def visit(path: str, title: str, model: dict[str, Any]) -> None:
        required = set(model.get("required", []))
        fields: list[FieldDoc] = []
        nested: list[tuple[str, str]] = []
        for name, prop in model.get("properties", {}).items():
            fpath = f"{path}.{name}" if path else name
            inner = _nested(prop)
            description = prop.get("description")
            if description is None and inner is not None:
                # A nested model's field without its own words: the model's docstring.
                description = defs[inner[0]].get("description", "")
            fields.append(FieldDoc(path=fpath, name=name, type=type_text(prop),
                                   default=_default_text(name, prop, required),
                                   unit=unit_of(name), description=_one_line(description or "")))
            if inner is not None:
                nested.append((fpath + inner[1], inner[0]))
        out.append(ModelDoc(path=path, title=title,
                            description=_one_line(model.get("description", "")),
                            fields=tuple(fields)))
        for npath, name in nested:
            visit(npath, name, defs[name])

    visit("", str(schema.get("title", "Topology")), schema)
    return out


def reference_text(docs: list[ModelDoc] | None = None) -> str:
    """The reference for a terminal: a header per model, two lines per field."""
    lines: list[str] = []
    for m in docs if docs is not None else model_docs():
        where = m.path or "(top level)"
        lines.append(f"{where}: {m.title}" + (f". {m.description}" if m.description else ""))
        for f in m.fields:
            unit = f" [{f.unit}]" if f.unit else ""
            default = f.default if f.default == "required" else f"default {f.default}"
            lines.append(f"  {f.path}{unit}: {f.type}; {default}")
            if f.description:
                lines.append(f"      {f.description}")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Table cell text: a pipe would end the cell."""
    return text.replace("|", "\\|")


def reference_markdown(docs: list[ModelDoc] | None = None) -> str:
    """The page ``docs/topology-reference.md``."""
    parts = [
        "# Topology file reference",
        "",
        f"<!-- Generated from qnetkit.network.topology; do not edit. Regenerate: {REGENERATE} -->",
        "",
        "Every field a topology file (YAML) may hold, generated from the pydantic model that "
        "`qnetkit network validate` checks files against. `qnetkit network schema --json` prints "
        "the same model as JSON Schema (draft 2020-12), for editors and other tools; "
        "`qnetkit network schema` prints this reference in a terminal.",
        "",
        "A path such as `links[].qkd.pulse_rate_hz` means the field `pulse_rate_hz` of the "
        "mapping `qkd` of any item of the list `links`. Units are those in the field names; "
        "`-` marks a dimensionless value or a name. A default `{}` is the nested mapping with "
        "each of its own defaults. A key not listed for its mapping is an error that names the "
        "keys allowed there.",
        "",
    ]
    for m in docs if docs is not None else model_docs():
        heading = f"`{m.path}`" if m.path else "Top level"
        parts += [f"## {heading} ({m.title})", ""]
        if m.description:
            parts += [m.description, ""]
        parts += ["| field | type | default | unit | description |",
                  "|---|---|---|---|---|"]
        for f in m.fields:
            parts.append(f"| `{f.name}` | `{_cell(f.type)}` | `{_cell(f.default)}` | "
                         f"{f.unit or '-'} | {_cell(f.description)} |")
        parts.append("")
    return "\n".join(parts)
