"""Key rate against total distance: direct QKD, trusted-node chain, repeater chain, PLOB bound.

Every column is secret bits per second between the two end users over a fiber of total length
L, at one stated clock:

* **direct**: asymptotic decoy-state BB84 over the whole fiber
  (``qnetkit.keyrate.decoy_bb84``, Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005)), key per pulse
  times ``clock_rate_hz`` pulses per second.
* **trusted nodes**: the same link cut into ``nodes - 1`` equal hops with a trusted node at
  every joint (the positions a repeater chain of ``nodes`` nodes would use). Hop keys are
  combined by one-time pad, so the end-to-end rate is the slowest hop's: with equal hops, the
  decoy-BB84 rate at L / hops, at the same clock.
* **repeater chain**: a callable ``distance_km -> secret bit/s`` (``repeater_key_rate_bps``);
  by default :func:`chain_key_rate_bps` on ``qnetkit.entanglement.chain.analytic_chain`` when
  that module is importable, else the column is empty and ``repeater_note`` says why.
* **PLOB**: the repeaterless bound -log2(1 - eta) bits per channel use (Pirandola, Laurenza,
  Ottaviani, Banchi, Nat. Commun. 8, 15043 (2017), Eq. (19)) of the whole fiber, times the
  same ``clock_rate_hz`` channel uses per second. Convention: eta is the fiber's alone
  (detector efficiency 1), the strictest form of the bound: no direct link at this clock can
  beat it, whatever its detectors. Near L = 0 it is capped (``keyrate.plob.PLOB_CAP_BITS_PER_USE``).

The crossover is the shortest distance at which the repeater column exceeds the PLOB column
per second at ``clock_rate_hz``; a repeater's rate does not depend on that clock, the bound's
does, so the crossover moves with it (stated in the result).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.entanglement.applications import entanglement_key_rate
from qnetkit.errors import ParameterError
from qnetkit.keyrate.common import as_length_array
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params, decoy_bb84_key_rate
from qnetkit.keyrate.plob import plob_bound_capped
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.validate import check_positive

RepeaterRate = Callable[[FloatArray], FloatArray]
"""Secret key rate (bit/s) of a repeater chain spanning each total distance (km) given."""

DEFAULT_CLOCK_RATE_HZ = 1e9
"""1 GHz: the pulse / channel-use rate of the direct link and of the PLOB conversion."""


@dataclass(frozen=True)
class CompareRow:
    """One total distance: secret key rates (bit/s) of each architecture and the bound."""

    length_km: float
    direct_bps: float
    trusted_node_bps: float
    repeater_bps: float | None
    plob_bps: float
    plob_bits_per_use: float
    plob_capped: bool


@dataclass(frozen=True)
class CompareResult:
    """Rows over the distance grid and the conventions they were computed with."""

    rows: list[CompareRow]
    clock_rate_hz: float
    nodes: int
    hops: int
    repeater_note: str
    crossover_km: float | None
    direct_beats_plob: bool
    params: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> FloatArray:
        """One column as an array (None -> NaN), e.g. ``column("plob_bps")``."""
        if name not in CompareRow.__dataclass_fields__:
            raise ParameterError("name", name, "is not a column of CompareRow")
        values = [getattr(r, name) for r in self.rows]
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no inf: PLOB is capped, empty repeater cells are None)."""
        return {
            "clock_rate_hz": self.clock_rate_hz,
            "nodes": self.nodes,
            "hops": self.hops,
            "repeater_note": self.repeater_note,
            "crossover_km": self.crossover_km,
            "direct_beats_plob": self.direct_beats_plob,
            "params": self.params,
            "rows": [asdict(r) for r in self.rows],
        }


def chain_key_rate_bps(
    nodes: int, *, protocol: str = "bbm92", **chain_options: Any
) -> RepeaterRate:
    """Repeater key rate from ``qnetkit.entanglement.chain.analytic_chain`` (lazy import).

    For each total length L: ``analytic_chain(nodes=nodes, link_length_km=L / (nodes - 1),
    **chain_options)``; its delivered-pair rate and delivered Bell-diagonal ``final_state`` go
    to :func:`~qnetkit.entanglement.applications.entanglement_key_rate` (when the closed form
    has no state but a mean fidelity, the state is taken as Werner of that fidelity: an
    assumption). NaN (an empty cell) where the closed form gives no rate.
    ImportError while the chain module does not exist.
    """
    from qnetkit.entanglement.chain import analytic_chain

    if nodes < 2:
        raise ParameterError("nodes", nodes, "must be >= 2")

    def rate(lengths_km: FloatArray) -> FloatArray:
        out = np.zeros_like(lengths_km)
        for i, length in enumerate(lengths_km):
            if length <= 0.0:
                out[i] = np.nan
                continue
            result = analytic_chain(
                None, nodes=nodes, link_length_km=float(length) / (nodes - 1), **chain_options
            )
            pairs = result.rate_pairs_per_s
            state = getattr(result, "final_state", None)
            if state is None and result.mean_fidelity is not None:
                f = float(np.clip(result.mean_fidelity, 0.25, 1.0))
                state = np.array([f, (1.0 - f) / 3.0, (1.0 - f) / 3.0, (1.0 - f) / 3.0])
            if pairs is None or state is None:
                out[i] = np.nan
                continue
            key = entanglement_key_rate(float(pairs), state, protocol)
            out[i] = float(key.secret_key_rate_bps)
        return out

    return rate


def _crossover(lengths: FloatArray, above: FloatArray, below: FloatArray) -> float | None:
    """First length where ``above`` > ``below``, interpolated linearly in log10(rate ratio)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.log10(above) - np.log10(below)
    for i in range(len(lengths)):
        if not np.isfinite(gap[i]) or gap[i] <= 0.0:
            continue
        if i == 0 or not np.isfinite(gap[i - 1]):
            return float(lengths[i])
        g0, g1 = float(gap[i - 1]), float(gap[i])
        return float(lengths[i - 1] + (lengths[i] - lengths[i - 1]) * (-g0) / (g1 - g0))
    return None


def compare_architectures(
    length_km: npt.ArrayLike,
    *,
    nodes: int = 5,
    clock_rate_hz: float = DEFAULT_CLOCK_RATE_HZ,
    qkd: DecoyBB84Params | None = None,
    repeater_key_rate_bps: RepeaterRate | None = None,
    repeater_options: dict[str, Any] | None = None,
) -> CompareResult:
    """Rates of direct QKD, a trusted-node chain, a repeater chain and PLOB over ``length_km``.

    ``nodes`` counts the end nodes too (``nodes - 1`` hops), for the trusted chain and, with
    the default repeater, the repeater chain; ``repeater_options`` go to ``analytic_chain``
    (e.g. ``scheme``, ``memory_t2_s``, ``link_fidelity``; ignored with
    ``repeater_key_rate_bps``). ``qkd`` is the decoy-BB84 link (default: the
    ``gys2004`` preset, 0.21 dB/km); the PLOB bound uses the same fiber attenuation and extra
    loss. Conventions in the module docstring.
    """
    if not (isinstance(nodes, int) and nodes >= 2):
        raise ParameterError("nodes", nodes, "must be an integer >= 2")
    check_positive("clock_rate_hz", clock_rate_hz)
    params = qkd if qkd is not None else DecoyBB84Params()
    lengths = np.sort(as_length_array(length_km))
    hops = nodes - 1

    direct = decoy_bb84_key_rate(params, lengths).key_rate_per_pulse * clock_rate_hz
    trusted = decoy_bb84_key_rate(params, lengths / hops).key_rate_per_pulse * clock_rate_hz
    eta_fiber = fiber_transmittance(lengths, params.loss_db_per_km, params.extra_loss_db)
    plob_per_use, capped = plob_bound_capped(eta_fiber)
    plob = plob_per_use * clock_rate_hz

    repeater_fn = repeater_key_rate_bps
    note = "repeater_key_rate_bps supplied by the caller"
    if repeater_fn is None:
        try:
            options = dict(repeater_options or {})
            # One fiber for every column: the chain's links get the direct link's attenuation.
            options.setdefault("loss_db_per_km", params.loss_db_per_km)
            repeater_fn = chain_key_rate_bps(nodes, **options)
            note = (
                f"qnetkit.entanglement.chain.analytic_chain, {nodes} nodes, options "
                f"{options or 'its defaults'}; BBM92 on the delivered state"
            )
        except ImportError:
            note = (
                "no repeater column: qnetkit.entanglement.chain is not available; pass "
                "repeater_key_rate_bps"
            )
    repeater = None if repeater_fn is None else np.asarray(repeater_fn(lengths), dtype=np.float64)

    rows = [
        CompareRow(
            length_km=float(lengths[i]),
            direct_bps=float(direct[i]),
            trusted_node_bps=float(trusted[i]),
            repeater_bps=None
            if repeater is None or not math.isfinite(repeater[i])
            else float(repeater[i]),
            plob_bps=float(plob[i]),
            plob_bits_per_use=float(plob_per_use[i]),
            plob_capped=bool(capped[i]),
        )
        for i in range(lengths.size)
    ]
    # Uncapped bound for the check: the cap only lowers PLOB, which could fake a violation.
    uncapped = np.where(capped, np.inf, plob)
    return CompareResult(
        rows=rows,
        clock_rate_hz=clock_rate_hz,
        nodes=nodes,
        hops=hops,
        repeater_note=note,
        crossover_km=None if repeater is None else _crossover(lengths, repeater, plob),
        direct_beats_plob=bool(np.any(direct > uncapped)),
        params={
            "qkd": asdict(params),
            "plob_detector_efficiency": 1.0,
            "repeater_options": dict(repeater_options or {}),
        },
    )
