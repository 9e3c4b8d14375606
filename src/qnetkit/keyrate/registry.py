"""The protocols of the key-rate engine by CLI name: parameters, presets, evaluator, citation."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from qnetkit.keyrate.common import KeyRateCurve


@dataclass(frozen=True)
class ProtocolSpec:
    """Everything the CLI, the demo and the network twin need to know about one protocol."""

    name: str
    summary: str
    source: str
    params_type: type[Any]
    presets: Mapping[str, Any]
    default_preset: str
    evaluate: Callable[[Any, npt.ArrayLike], KeyRateCurve]
    has_mu: bool

    def params_from(self, preset: str | None, overrides: Mapping[str, Any]) -> Any:
        """Preset values with the given fields replaced (validated by the dataclass)."""
        name = preset or self.default_preset
        if name not in self.presets:
            known = ", ".join(sorted(self.presets))
            raise KeyError(f"unknown preset {name!r} for {self.name} (known: {known})")
        base = self.presets[name]
        changes = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(base, **changes) if changes else base


# name -> (module, params class, evaluator, presets attr, summary, source, has_mu)
_TABLE: dict[str, tuple[str, str, str, str, str, bool]] = {
    "decoy-bb84": (
        "qnetkit.keyrate.decoy_bb84",
        "DecoyBB84Params",
        "decoy_bb84_key_rate",
        "Asymptotic decoy-state BB84, weak coherent source (infinite or vacuum+weak decoys)",
        "Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005)",
        True,
    ),
    "finite-decoy-bb84": (
        "qnetkit.keyrate.finite_decoy_bb84",
        "FiniteDecoyBB84Params",
        "finite_decoy_bb84_key_rate",
        "Finite-key decoy-state BB84 (two decoys, block size n_x)",
        "Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014)",
        True,
    ),
    "bbm92": (
        "qnetkit.keyrate.bbm92",
        "BBM92Params",
        "bbm92_key_rate",
        "Entanglement-based BBM92 with an SPDC source (multi-pair errors)",
        "Ma, Fung, Lo, PRA 76, 012307 (2007)",
        True,
    ),
    "e91": (
        "qnetkit.keyrate.di_e91",
        "E91Params",
        "e91_key_rate",
        "Device-independent E91: key rate from the CHSH value",
        "Acin et al., PRL 98, 230501 (2007)",
        True,
    ),
    "plob": (
        "qnetkit.keyrate.plob",
        "PLOBParams",
        "plob_key_rate",
        "PLOB repeaterless bound -log2(1 - eta) of the same channel",
        "Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun. 8, 15043 (2017)",
        False,
    ),
    "tf-qkd": (
        "qnetkit.keyrate.tf_qkd",
        "TFQKDParams",
        "tf_qkd_key_rate",
        "Twin-field QKD (single-photon interference at a middle node, sqrt(eta) scaling)",
        "Lucamarini, Yuan, Dynes, Shields, Nature 557, 400 (2018)",
        True,
    ),
    "sarg04": (
        "qnetkit.keyrate.sarg04",
        "SARG04Params",
        "sarg04_key_rate",
        "SARG04, weak coherent source, key from one- and two-photon pulses (no decoys or infinite)",
        "Fung, Tamaki, Lo, PRA 73, 012337 (2006); Tamaki, Lo, PRA 73, 010302(R) (2006)",
        True,
    ),
    "dps": (
        "qnetkit.keyrate.dps",
        "DPSParams",
        "dps_key_rate",
        "Differential-phase-shift QKD, coherent pulse train, general individual attacks",
        "Waks, Takesue, Yamamoto, PRA 73, 012344 (2006)",
        True,
    ),
}

PROTOCOL_NAMES: tuple[str, ...] = tuple(_TABLE)


def get_protocol(name: str) -> ProtocolSpec:
    """The protocol registered under ``name``; KeyError names the known ones."""
    if name not in _TABLE:
        raise KeyError(f"unknown protocol {name!r} (known: {', '.join(PROTOCOL_NAMES)})")
    module_name, params_name, evaluator_name, summary, source, has_mu = _TABLE[name]
    module = importlib.import_module(module_name)
    return ProtocolSpec(
        name=name,
        summary=summary,
        source=source,
        params_type=getattr(module, params_name),
        presets=module.PRESETS,
        default_preset=module.DEFAULT_PRESET,
        evaluate=getattr(module, evaluator_name),
        has_mu=has_mu,
    )
