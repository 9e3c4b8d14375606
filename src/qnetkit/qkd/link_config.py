"""Configuration and results of a QKD link: what both parties agree on before a run.

``LinkConfig`` fixes the protocol (decoy BB84 with the source of Ma, Qi, Zhao, Lo 2005 and the
finite-key bounds of Lim et al. 2014, or BBM92 after Ma, Fung, Lo 2007), the link, the
post-processing parameters and the seed; ``key_basis`` the key/test basis split it implies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from qnetkit._types import BitArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import BBM92Params
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params
from qnetkit.physics.blinding import BlindingMonitorParams
from qnetkit.physics.validate import check_positive, check_probability
from qnetkit.qkd.attacks import Attack
from qnetkit.qkd.quantum import DecoySourceParams, DetectorTimingParams

ProtocolName = Literal["decoy-bb84", "bbm92"]
RECONCILIATION_METHODS = ("cascade", "cascade-original", "ldpc")


@dataclass(frozen=True)
class LinkConfig:
    """Everything both parties must agree on before the run (sent by Alice in two-process mode).

    ``key_bases``: 1 (default) = one key basis, the one chosen more often (Z on a tie, always Z
    for BBM92), the other a test basis whose bits are announced to count its errors: the
    protocol of Lim et al. 2014 (key X, test Z) and Tomamichel, Lim, Gisin, Renner, Nat.
    Commun. 3, 634 (2012), whose finite-key proofs cover it. 2 = both bases carry key, each
    basis' phase error estimated from the other basis' errors at eps_sec / 2 each: the
    "efficient BB84" of Lo, Chau, Ardehali, J. Cryptology 18, 133 (2005), proved only
    asymptotically; no finite-key proof of that use is cited here, so it is opt-in.
    ``eps_sec`` is per block; the run summary composes it over the blocks.
    """

    protocol: ProtocolName = "decoy-bb84"
    length_km: float = 10.0
    pulses: int = 10**8
    link: DecoyBB84Params = field(default_factory=DecoyBB84Params)
    source: DecoySourceParams = field(default_factory=DecoySourceParams)
    timing: DetectorTimingParams = field(default_factory=DetectorTimingParams)
    entangled: BBM92Params = field(default_factory=BBM92Params)
    reconciliation: str = "cascade"
    attack: Attack | None = None
    block_bits: int = 2**22
    qber_sample_bits: int = 1024
    abort_qber: float = 0.11
    eps_sec: float = 1e-10
    key_bases: int = 1
    auth_key_bits: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in ("decoy-bb84", "bbm92"):
            raise ParameterError("protocol", self.protocol, "must be decoy-bb84 or bbm92")
        if not (isinstance(self.length_km, int | float) and math.isfinite(self.length_km)):
            raise ParameterError("length_km", self.length_km, "must be a finite number >= 0")
        if self.length_km < 0:
            raise ParameterError("length_km", self.length_km, "must be >= 0")
        if int(self.pulses) != self.pulses or self.pulses <= 0:
            raise ParameterError("pulses", self.pulses, "must be a positive integer")
        if self.reconciliation not in RECONCILIATION_METHODS:
            raise ParameterError(
                "reconciliation",
                self.reconciliation,
                f"must be one of {', '.join(RECONCILIATION_METHODS)}",
            )
        if self.protocol == "decoy-bb84" and len(self.source.intensities) not in (1, 3):
            raise ParameterError(
                "intensities",
                self.source.intensities,
                "give 3 (signal, decoy, vacuum: decoy-state bounds of Lim et al. 2014) or 1 "
                "(no decoys: GLLP bound)",
            )
        if self.block_bits < 4096:
            raise ParameterError("block_bits", self.block_bits, "must be >= 4096")
        if self.qber_sample_bits < 0:
            raise ParameterError("qber_sample_bits", self.qber_sample_bits, "must be >= 0")
        check_probability("abort_qber", self.abort_qber)
        check_positive("eps_sec", self.eps_sec)
        if self.eps_sec >= 1:
            raise ParameterError("eps_sec", self.eps_sec, "must be in (0, 1)")
        if self.key_bases not in (1, 2):
            raise ParameterError("key_bases", self.key_bases, "must be 1 or 2")
        if self.auth_key_bits < 512 or self.auth_key_bits % 8:
            raise ParameterError(
                "auth_key_bits", self.auth_key_bits, "must be a multiple of 8 and >= 512"
            )
        if self.seed < 0:
            raise ParameterError("seed", self.seed, "must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkConfig:
        d = dict(data)
        d["link"] = DecoyBB84Params(**d["link"])
        src = dict(d["source"])
        src["intensities"] = tuple(src["intensities"])
        src["intensity_probs"] = tuple(src["intensity_probs"])
        d["source"] = DecoySourceParams(**src)
        timing = dict(d["timing"])
        if isinstance(timing.get("blinding_monitor"), dict):
            timing["blinding_monitor"] = BlindingMonitorParams(**timing["blinding_monitor"])
        d["timing"] = DetectorTimingParams(**timing)
        d["entangled"] = BBM92Params(**d["entangled"])
        d["attack"] = Attack(**d["attack"]) if d.get("attack") else None
        return cls(**d)


@dataclass
class PartyResult:
    """One party's outcome: its final key and the statistics it can see."""

    key: BitArray = field(repr=False)  # key material: never printed
    stats: dict[str, Any]
    stage_wall_s: dict[str, float]


@dataclass
class LinkResult:
    """Outcome of ``simulate_link``: both final keys and the run's statistics."""

    alice_key: BitArray = field(repr=False)  # key material: never printed
    bob_key: BitArray = field(repr=False)  # key material: never printed
    stats: dict[str, Any]

    @property
    def keys_match(self) -> bool:
        return bool(np.array_equal(self.alice_key, self.bob_key))

    def to_json(self) -> dict[str, Any]:
        """The statistics, with no key material."""
        return dict(self.stats)


def key_basis(config: LinkConfig) -> int | None:
    """The one key basis (0 = Z, 1 = X), fixed before the run; None when both bases carry key.

    The basis chosen more often gives more detections; choosing it from the basis probabilities
    rather than from the observed counts keeps the choice independent of the data.
    """
    if config.key_bases == 2:
        return None
    if config.protocol == "bbm92":
        return 0
    return 0 if config.source.basis_prob_z >= 0.5 else 1
