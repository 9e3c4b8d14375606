"""A link's options by the names of ``qnetkit qkd run``: one builder for the CLI and the API.

``make_link_config(attack="intercept-resend", attack_fraction=0.3, pulses=10**7, seed=4)`` is
``qnetkit qkd run --attack intercept-resend --attack-fraction 0.3 --pulses 1e7 --seed 4``: the
command line turns its text flags into numbers and calls this function, and
``simulate_link(**options)`` calls it too, so both build the same ``LinkConfig`` from the same
names and values. Every ``LinkConfig`` field is an option under its own name; the other options
(``LINK_EXTRA_OPTIONS``) edit the nested parameter objects the way the flags do.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from qnetkit.errors import ParameterError
from qnetkit.keyrate.decoy_bb84 import PRESETS as DECOY_PRESETS
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params
from qnetkit.qkd.attacks import as_attack
from qnetkit.qkd.link_config import LinkConfig
from qnetkit.qkd.quantum import DecoySourceParams, DetectorTimingParams

# Options that are not LinkConfig fields, each with what it changes (the CLI flag of the same
# name, underscores for dashes, does the same).
LINK_EXTRA_OPTIONS: dict[str, str] = {
    "preset": "link physics by preset name (gys2004); replaces `link`",
    "detector_efficiency": "eta_Bob of `link`",
    "dark_count_prob": "Y0 of `link` (both detectors)",
    "misalignment_error": "e_detector of `link`",
    "loss_db_per_km": "fiber attenuation of `link`",
    "intensities": "signal, decoy, vacuum intensities of `source` (a sequence of numbers)",
    "intensity_probs": "their probabilities (a sequence of numbers)",
    "basis_prob_z": "probability of the Z basis of `source`",
    "dead_time_s": "detector dead time of `timing`",
    "attack_fraction": "fraction of pulses the attack hits (default 1)",
    "blinding_power_w": "Eve's CW power on Bob's APDs, blinding only (default 1e-3 W)",
}
CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LinkConfig))
LINK_OPTIONS: tuple[str, ...] = CONFIG_FIELDS + tuple(LINK_EXTRA_OPTIONS)

_LINK_OVERRIDES = ("detector_efficiency", "dark_count_prob", "misalignment_error", "loss_db_per_km")
_SEQUENCES = ("intensities", "intensity_probs")


def _numbers(name: str, value: object) -> tuple[float, ...]:
    """A sequence of real numbers as a tuple of floats (a string is not one: the CLI splits it)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ParameterError(name, value, "must be a sequence of numbers, e.g. (0.4, 0.17, 0.0)")
    items = list(value)
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in items):
        raise ParameterError(name, value, "must be a sequence of numbers, e.g. (0.4, 0.17, 0.0)")
    return tuple(float(v) for v in items)


def make_link_config(config: LinkConfig | None = None, /, **options: Any) -> LinkConfig:
    """``config`` (default ``LinkConfig()``) with ``options`` applied, by the CLI's names.

    Options: every ``LinkConfig`` field (``protocol``, ``length_km``, ``pulses``,
    ``reconciliation``, ``seed``, ``block_bits``, ``eps_sec``, ``key_bases``, ``attack``, ...)
    and the names of ``LINK_EXTRA_OPTIONS`` (``preset``, ``detector_efficiency``,
    ``intensities``, ``attack_fraction``, ``blinding_power_w``, ...). An extra option given as
    None is left out, as an absent flag is. ``attack`` is a name (``"intercept-resend"`` |
    ``"pns"`` | ``"blinding"``) or an ``Attack`` object (or None); ``attack_fraction`` and
    ``blinding_power_w`` then set its fraction and power. A wrong name or type is a
    ``ParameterError`` naming the option and its allowed values.
    """
    if config is not None and not isinstance(config, LinkConfig):
        raise ParameterError("config", config, "must be a LinkConfig or None")
    for name, value in options.items():
        if name not in LINK_OPTIONS:
            raise ParameterError(name, value, f"unknown option (known: {', '.join(LINK_OPTIONS)})")
    base = config if config is not None else LinkConfig()
    extra = {k: v for k, v in options.items() if k in LINK_EXTRA_OPTIONS and v is not None}
    changes = {k: v for k, v in options.items() if k in CONFIG_FIELDS}

    if "preset" in extra:
        preset = extra["preset"]
        if "link" in changes:
            raise ParameterError("preset", preset, "give preset or link, not both")
        if not isinstance(preset, str) or preset not in DECOY_PRESETS:
            raise ParameterError(
                "preset", preset, f"unknown preset (known: {', '.join(sorted(DECOY_PRESETS))})"
            )
        changes["link"] = DECOY_PRESETS[preset]
    link_kw = {k: extra[k] for k in _LINK_OVERRIDES if k in extra}
    if link_kw:
        link = changes.get("link", base.link)
        if not isinstance(link, DecoyBB84Params):
            raise ParameterError("link", link, "must be a DecoyBB84Params")
        changes["link"] = dataclasses.replace(link, **link_kw)

    source_kw: dict[str, Any] = {k: _numbers(k, extra[k]) for k in _SEQUENCES if k in extra}
    if "basis_prob_z" in extra:
        source_kw["basis_prob_z"] = extra["basis_prob_z"]
    if source_kw:
        source = changes.get("source", base.source)
        if not isinstance(source, DecoySourceParams):
            raise ParameterError("source", source, "must be a DecoySourceParams")
        changes["source"] = dataclasses.replace(source, **source_kw)
    if "dead_time_s" in extra:
        timing = changes.get("timing", base.timing)
        if not isinstance(timing, DetectorTimingParams):
            raise ParameterError("timing", timing, "must be a DetectorTimingParams")
        changes["timing"] = dataclasses.replace(timing, dead_time_s=extra["dead_time_s"])

    if "attack" in changes or "attack_fraction" in extra or "blinding_power_w" in extra:
        changes["attack"] = as_attack(
            changes.get("attack", base.attack),
            extra.get("attack_fraction"),
            extra.get("blinding_power_w"),
        )
    return dataclasses.replace(base, **changes)


__all__ = ["LINK_EXTRA_OPTIONS", "LINK_OPTIONS", "make_link_config"]
