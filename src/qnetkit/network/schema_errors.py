"""Readable messages for unknown fields in a topology file.

pydantic reports a misspelt key as "Extra inputs are not permitted", which names neither the
fields that are allowed nor the one that was meant. This module finds the model that governs
the error's location and says both: ``unknown field 'lenght_km'; allowed here: a, b, ...
(did you mean 'length_km'?)``.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

# difflib's ratio above which a known field is offered as the one meant; 0.6 is difflib's own
# default and catches one or two swapped, missing or extra letters in names of this length.
SUGGEST_CUTOFF = 0.6


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold: ``X``, ``X | None``, ``list[X]``,
    ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return []
    found: list[type[BaseModel]] = []
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        args = args[:1]  # the metadata after the type is not a type
    for arg in args:
        for model in _models_in(arg):
            if model not in found:
                found.append(model)
    return found


def model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model whose fields are allowed at ``loc`` (pydantic's location of the container,
    e.g. ``('links', 2)`` -> Link, ``('links', 2, 'qkd')`` -> QkdSystem); None when the location
    does not lead to exactly one model."""
    model = root
    for part in loc:
        if isinstance(part, int):
            continue  # a list index: the item has the list's model
        field = model.model_fields.get(part)
        if field is None:
            return None
        candidates = _models_in(field.annotation)
        if len(candidates) != 1:
            return None
        model = candidates[0]
    return model


def unknown_field_message(root: type[BaseModel], loc: Sequence[int | str]) -> str | None:
    """The message for an unknown key at ``loc`` (the key is its last part): the fields allowed
    there, and the closest one if it is close. None if the model there cannot be resolved."""
    if not loc:
        return None
    model = model_at(root, loc[:-1])
    if model is None:
        return None
    name = str(loc[-1])
    allowed = sorted(model.model_fields)
    message = f"unknown field {name!r}; allowed here: {', '.join(allowed)}"
    # Field names are lower case; 'Length_KM' still means 'length_km'.
    close = difflib.get_close_matches(name.lower(), allowed, n=1, cutoff=SUGGEST_CUTOFF)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message
