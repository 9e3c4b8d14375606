"""Configuration and results of a QKD link: what both parties agree on before a run.

``LinkConfig`` fixes the protocol (decoy BB84 with the source of Ma, Qi, Zhao, Lo 2005 and the
finite-key bounds of Lim et al. 2014, or BBM92 after Ma, Fung, Lo 2007), the link, the
post-processing parameters and the seed; ``key_basis`` the key/test basis split it implies.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeGuard, get_args

import numpy as np

from qnetkit._types import BitArray
from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import BBM92Params
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params
from qnetkit.physics.blinding import BlindingMonitorParams
from qnetkit.physics.validate import check_positive, check_probability
from qnetkit.qkd.attacks import Attack, as_attack
from qnetkit.qkd.quantum import DecoySourceParams, DetectorTimingParams

ProtocolName = Literal["decoy-bb84", "bbm92"]
PROTOCOLS: tuple[str, ...] = get_args(ProtocolName)
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

    ``attack``: an ``Attack`` or None; a name (``"intercept-resend"``, ``"pns"``,
    ``"blinding"``) is turned into ``Attack(name)`` with the defaults of ``qnetkit qkd run
    --attack NAME`` (fraction 1, blinding at 1 mW). The flags that are not fields here
    (``attack_fraction``, ``preset``, ``detector_efficiency``, ...) are options of
    ``make_link_config`` and ``simulate_link``. Every field is type-checked: a wrong one is a
    ParameterError naming it.
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
        # The boundary of the Python API: every field is checked for its type here, so a wrong
        # value is a ParameterError naming it, not an AttributeError deep in the run. Numbers
        # given as integral floats (pulses=1e8) or NumPy scalars are stored as int / float, and
        # an attack given by name becomes an Attack (frozen: hence object.__setattr__).
        if not isinstance(self.protocol, str) or self.protocol not in PROTOCOLS:
            raise ParameterError("protocol", self.protocol, f"must be {' or '.join(PROTOCOLS)}")
        if not (_real(self.length_km) and math.isfinite(self.length_km)):
            raise ParameterError("length_km", self.length_km, "must be a finite number >= 0")
        if self.length_km < 0:
            raise ParameterError("length_km", self.length_km, "must be >= 0")
        object.__setattr__(self, "length_km", float(self.length_km))
        object.__setattr__(self, "pulses", _integer("pulses", self.pulses, 1))
        for name, kind in (
            ("link", DecoyBB84Params),
            ("source", DecoySourceParams),
            ("timing", DetectorTimingParams),
            ("entangled", BBM92Params),
        ):
            if not isinstance(getattr(self, name), kind):
                raise ParameterError(name, getattr(self, name), f"must be a {kind.__name__}")
        if not isinstance(self.reconciliation, str) or (
            self.reconciliation not in RECONCILIATION_METHODS
        ):
            raise ParameterError(
                "reconciliation",
                self.reconciliation,
                f"must be one of {', '.join(RECONCILIATION_METHODS)}",
            )
        object.__setattr__(self, "attack", as_attack(self.attack))
        if self.protocol == "bbm92" and self.attack is not None and self.attack.kind == "pns":
            raise ParameterError(
                "attack", "pns", "photon-number splitting needs a weak coherent source (decoy-bb84)"
            )
        if self.protocol == "decoy-bb84" and len(self.source.intensities) not in (1, 3):
            raise ParameterError(
                "intensities",
                self.source.intensities,
                "give 3 (signal, decoy, vacuum: decoy-state bounds of Lim et al. 2014) or 1 "
                "(no decoys: GLLP bound)",
            )
        object.__setattr__(self, "block_bits", _integer("block_bits", self.block_bits, 4096))
        object.__setattr__(
            self, "qber_sample_bits", _integer("qber_sample_bits", self.qber_sample_bits, 0)
        )
        check_probability("abort_qber", self.abort_qber)
        check_positive("eps_sec", self.eps_sec)
        if self.eps_sec >= 1:
            raise ParameterError("eps_sec", self.eps_sec, "must be in (0, 1)")
        if _real(self.key_bases) and self.key_bases in (1, 2):
            object.__setattr__(self, "key_bases", int(self.key_bases))
        else:
            raise ParameterError("key_bases", self.key_bases, "must be 1 or 2")
        bits = _integer("auth_key_bits", self.auth_key_bits, 512, "a multiple of 8 and >= 512")
        if bits % 8:
            raise ParameterError(
                "auth_key_bits", self.auth_key_bits, "must be a multiple of 8 and >= 512"
            )
        object.__setattr__(self, "auth_key_bits", bits)
        object.__setattr__(self, "seed", _integer("seed", self.seed, 0))

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


def _real(value: object) -> TypeGuard[float]:
    # bool is an int subclass, but True km or True pulses is a mistake, not a number.
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _integer(name: str, value: object, low: int, expected: str = "") -> int:
    """``value`` as an int >= ``low`` (integral floats such as 1e8 too), else ParameterError."""
    if _real(value) and math.isfinite(value) and value == math.floor(value) and value >= low:
        return int(value)
    raise ParameterError(name, value, f"must be {expected or f'an integer >= {low}'}")


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
    def keys_match(self) -> bool | None:
        """Whether both final keys are equal; None when neither party has one (an abort)."""
        return compare_keys(self.alice_key, self.bob_key)

    def to_json(self) -> dict[str, Any]:
        """The statistics, with no key material."""
        return dict(self.stats)


def compare_keys(alice_key: BitArray, bob_key: BitArray) -> bool | None:
    """True / False when there is a key to compare; None when neither party has one.

    Two empty keys are not "matching keys": an aborted run reports that it has no key.
    """
    if alice_key.size == 0 and bob_key.size == 0:
        return None
    return bool(np.array_equal(alice_key, bob_key))


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
