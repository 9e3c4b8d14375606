"""Direct vs trusted-node vs repeater vs PLOB (qnetkit.entanglement.compare).

PLOB: Pirandola et al., Nat. Commun. 8, 15043 (2017), Eq. (19), -log2(1 - eta) per channel use;
direct link: decoy BB84, Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), gys2004 preset.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from scipy.optimize import brentq

from qnetkit._types import FloatArray
from qnetkit.entanglement.compare import CompareResult, RepeaterRate, compare_architectures
from qnetkit.errors import ParameterError
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params, decoy_bb84_key_rate
from qnetkit.keyrate.plob import plob_bound

GRID = np.arange(0.0, 601.0, 25.0)


def _sqrt_eta_repeater(scale_bps: float, loss_db_per_km: float = 0.21) -> RepeaterRate:
    """A stand-in repeater whose rate falls as sqrt(eta): scale * 10^(-alpha L / 20)."""

    def rate(lengths_km: FloatArray) -> FloatArray:
        return scale_bps * 10.0 ** (-loss_db_per_km * lengths_km / 20.0)

    return rate


def _run(**options: object) -> CompareResult:
    options.setdefault("repeater_key_rate_bps", _sqrt_eta_repeater(1e4))
    return compare_architectures(GRID, **options)  # type: ignore[arg-type]


def test_no_direct_link_beats_plob() -> None:
    """Direct decoy BB84 stays below PLOB of the bare fiber, and of fiber + detector, per use."""
    result = _run()
    assert not result.direct_beats_plob
    direct_per_pulse = result.column("direct_bps") / result.clock_rate_hz
    eta_with_detector = 0.045 * 10.0 ** (-0.021 * GRID)
    assert np.all(direct_per_pulse <= result.column("plob_bits_per_use"))
    assert np.all(direct_per_pulse <= plob_bound(eta_with_detector))
    assert result.column("direct_bps")[GRID == 50.0][0] > 0.0  # not a vacuous comparison


def test_plob_column_is_bare_fiber_at_the_clock() -> None:
    result = _run(clock_rate_hz=2e9)
    row = next(r for r in result.rows if r.length_km == 100.0)
    eta = 10.0 ** (-0.21 * 100.0 / 10.0)
    assert row.plob_bits_per_use == pytest.approx(-math.log2(1.0 - eta), rel=1e-12)
    assert row.plob_bps == pytest.approx(2e9 * -math.log2(1.0 - eta), rel=1e-12)
    assert result.rows[0].plob_capped and result.rows[0].plob_bits_per_use == 10.0


def test_trusted_chain_is_the_hop_rate() -> None:
    """4 hops over 400 km: the rate of one 100 km hop; more than the direct link (0 there)."""
    result = _run(nodes=5)
    assert result.hops == 4
    by_length = {r.length_km: r for r in result.rows}
    hop = decoy_bb84_key_rate(DecoyBB84Params(), 100.0).key_rate_per_pulse[0] * 1e9
    assert by_length[400.0].trusted_node_bps == pytest.approx(hop, rel=1e-9)
    assert by_length[100.0].direct_bps == pytest.approx(hop, rel=1e-9)
    assert by_length[400.0].direct_bps == 0.0


def test_crossover_matches_exact_root() -> None:
    """Repeater K 10^(-aL/20) against PLOB clock x -log2(1 - 10^(-aL/10)): root by brentq."""
    scale = 1e4
    result = compare_architectures(
        np.arange(0.0, 601.0, 1.0), repeater_key_rate_bps=_sqrt_eta_repeater(scale)
    )

    def gap(length: float) -> float:
        eta = 10.0 ** (-0.021 * length)
        return math.log(scale * math.sqrt(eta)) - math.log(1e9 * -math.log2(1.0 - eta))

    exact = brentq(gap, 10.0, 600.0)
    assert result.crossover_km is not None
    assert result.crossover_km == pytest.approx(exact, abs=0.05)
    # Small-eta limit, PLOB ~ eta / ln 2: sqrt(eta) = K ln 2 / clock, i.e. 491 km at 0.21 dB/km.
    assert exact == pytest.approx(-20.0 * math.log10(scale * math.log(2.0) / 1e9) / 0.21, abs=0.1)
    row_before = next(r for r in result.rows if r.length_km == math.floor(exact))
    assert row_before.repeater_bps is not None and row_before.repeater_bps < row_before.plob_bps


def test_crossover_moves_with_the_clock() -> None:
    """Per second, a faster clock raises the bound, so the repeater overtakes it later."""
    slow = _run(clock_rate_hz=1e8).crossover_km
    fast = _run(clock_rate_hz=1e10).crossover_km
    assert slow is not None and fast is not None
    # PLOB ~ clock x eta, repeater ~ sqrt(eta): 100x the clock moves the crossing 2 x 20 dB.
    assert fast - slow == pytest.approx(2.0 * 20.0 / 0.21, abs=2.0)


def test_no_repeater_without_chain_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qnetkit.entanglement.chain", None)  # import fails
    result = compare_architectures(GRID)
    assert all(r.repeater_bps is None for r in result.rows)
    assert result.crossover_km is None
    assert "not available" in result.repeater_note
    payload = result.to_dict()
    assert payload["rows"][1]["repeater_bps"] is None
    assert all(math.isfinite(r["plob_bps"]) for r in payload["rows"])


def test_default_repeater_from_analytic_chain() -> None:
    """The default repeater column is analytic_chain's rate x BBM92 on its delivered state,
    on the same 0.21 dB/km fiber; a double-click chain of 9 nodes overtakes PLOB at 1 GHz."""
    chain = pytest.importorskip("qnetkit.entanglement.chain")
    from qnetkit.entanglement.applications import entanglement_key_rate

    options = {"scheme": "double-click"}
    result = compare_architectures(GRID, nodes=9, repeater_options=options)
    assert "analytic_chain" in result.repeater_note
    row = next(r for r in result.rows if r.length_km == 400.0)
    by_hand = chain.analytic_chain(
        None, nodes=9, link_length_km=50.0, loss_db_per_km=0.21, **options
    )
    key = entanglement_key_rate(by_hand.rate_pairs_per_s, by_hand.final_state, "bbm92")
    assert row.repeater_bps == pytest.approx(float(key.secret_key_rate_bps), rel=1e-12)
    assert result.crossover_km is not None
    before = [r for r in result.rows if 0.0 < r.length_km < result.crossover_km]
    after = [r for r in result.rows if r.length_km > result.crossover_km]
    assert before and after
    assert all(r.repeater_bps is not None and r.repeater_bps < r.plob_bps for r in before)
    assert all(r.repeater_bps is not None and r.repeater_bps > r.plob_bps for r in after)


@pytest.mark.parametrize(
    ("options", "name"),
    [({"nodes": 1}, "nodes"), ({"clock_rate_hz": 0.0}, "clock_rate_hz")],
)
def test_bad_input(options: dict[str, object], name: str) -> None:
    with pytest.raises(ParameterError) as info:
        compare_architectures(GRID, **options)  # type: ignore[arg-type]
    assert info.value.name == name
    with pytest.raises(ParameterError):
        _run().column("nonsense")
