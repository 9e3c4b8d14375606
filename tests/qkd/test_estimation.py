"""Finite-key estimation from observed counts, checked against the analytic Lim et al. engine.

Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014), Eqs. (1)-(5): fed with the expected
counts of its Sec. IV channel model, the count-based bounds of ``qnetkit.qkd.estimation`` must
give the same s_X0, s_X1 and phase-error bound as ``qnetkit.keyrate.finite_decoy_bb84`` (whose
rates are themselves tested against the paper's Fig. 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from qnetkit.keyrate import finite_decoy_bb84 as fk
from qnetkit.keyrate import finite_decoy_model as fm
from qnetkit.qkd.estimation import (
    DecoyClasses,
    decoy_basis_bound,
    entangled_basis_bound,
    gamma_deviation,
    secret_key_length,
)


def _expected_counts(length_km: float, n_x: float) -> tuple[dict[str, float], DecoyClasses, list]:
    params = fk.FiniteDecoyBB84Params(n_x=n_x, eps_sec=1e-10, mu=0.5, mu2=0.1, p_mu=0.7,
                                      p_mu2=0.2, p_x=0.8, mu3=2e-4)
    eta = fk.finite_decoy_bb84_transmittance(params, np.array([length_km]))
    proto = fm.DecoyProtocol(*(np.array([v]) for v in (0.5, 0.1, 0.7, 0.2, 0.8)))
    res = fm.expected_key_length(params, eta, proto, finite=True)
    mus = (0.5, 0.1, 2e-4)
    probs = (0.7, 0.2, 0.1)
    clicks, errs = zip(*(fm.click_and_error(params, eta, k) for k in mus), strict=True)
    total = sum(p * c for p, c in zip(probs, clicks, strict=True))
    z_ratio = ((1 - 0.8) / 0.8) ** 2
    n_xk = [float((n_x * p * c / total)[0]) for p, c in zip(probs, clicks, strict=True)]
    n_zk = [z_ratio * v for v in n_xk]
    m_zk = [float((z_ratio * n_x * p * e / total)[0]) for p, e in zip(probs, errs, strict=True)]
    ref = {"s_x0": float(res.s_x0[0]), "s_x1": float(res.s_x1[0]),
           "phase": float(res.phase_error[0])}
    return ref, DecoyClasses(mus, probs), [n_xk, n_zk, m_zk]


@pytest.mark.parametrize(("length_km", "n_x"), [(20.0, 1e7), (60.0, 1e6), (100.0, 1e9)])
def test_count_based_bounds_match_lim2014_engine(length_km: float, n_x: float) -> None:
    ref, classes, (n_xk, n_zk, m_zk) = _expected_counts(length_km, n_x)
    bound = decoy_basis_bound(n_xk, n_zk, m_zk, classes, 1e-10)  # type: ignore[arg-type]
    assert bound.s0 == pytest.approx(ref["s_x0"], rel=1e-9)
    assert bound.s1 == pytest.approx(ref["s_x1"], rel=1e-9)
    assert bound.phase_error == pytest.approx(ref["phase"], rel=1e-9)
    # The single-photon fraction of X detections at 20 km is large (Lim Fig. 1 regime).
    assert 0.2 < bound.s1 / sum(n_xk) < 0.9


def test_no_single_photons_means_no_key() -> None:
    # A PNS-like record: signal clicks, decoy and vacuum classes nearly silent -> s1 <= 0.
    classes = DecoyClasses((0.5, 0.1, 0.0), (0.8, 0.1, 0.1))
    bound = decoy_basis_bound([100_000, 100, 10], [100_000, 100, 10], [1000, 1, 5], classes, 1e-10)
    assert bound.phase_error == 0.5
    assert secret_key_length([bound], 20_000, 128, 1e-10) == 0


def test_gamma_shrinks_with_sample_size() -> None:
    small = gamma_deviation(1e-11, 0.03, 1e4, 1e4)
    large = gamma_deviation(1e-11, 0.03, 1e8, 1e8)
    assert small > 10 * large > 0


def test_entangled_bound_and_key_length() -> None:
    bound = entangled_basis_bound(1_000_000, 1_000_000, 30_000, 1e-10)
    assert 0.031 < bound.phase_error < 0.033  # 3 % + gamma (Lim Eq. (B2)) ~ 0.23 %
    leak = int(1.1 * 1_000_000 * 0.1944)  # f h(3 %)
    ell = secret_key_length([bound], leak, 128, 1e-10)
    h = 0.194391
    expected = 1_000_000 * (1 - 0.0)  # upper reference: no phase error
    assert 0.55 * expected < ell < 1_000_000 * (1 - h) - leak + 1000


def test_gllp_without_decoys() -> None:
    # GLLP (QIC 4, 325 (2004)): untagged fraction 1 - Delta carries all errors, phase error
    # e / (1 - Delta); in the large-sample limit the entropy is n (1 - D) (1 - h(e / (1 - D))).
    from qnetkit.keyrate.common import binary_entropy
    from qnetkit.qkd.estimation import gllp_basis_bound

    n, e, delta = 10**12, 0.03, 0.25
    bound = gllp_basis_bound(n, n, int(e * n), delta, 1e-10)
    assert bound.phase_error == pytest.approx(e / (1 - delta), rel=1e-4)
    expected = n * (1 - delta) * (1 - float(binary_entropy(np.asarray(e / (1 - delta)))))
    assert bound.entropy_bits == pytest.approx(expected, rel=1e-3)
    # Every detection possibly tagged (Delta >= 1): nothing is secret.
    assert gllp_basis_bound(1000, 1000, 30, 1.2, 1e-10).entropy_bits == 0.0


def test_one_implementation_of_the_lim_bounds() -> None:
    # The count-based estimation (this layer) and the analytic engine (keyrate) use the same
    # functions of keyrate.lim2014 (Lim et al. 2014 Eqs. (2)-(5), (B2), (B4)): no second copy.
    from qnetkit.keyrate import lim2014
    from qnetkit.qkd import estimation

    for name in ("gamma", "DecoyIntensities", "hoeffding_deviation"):
        shared = vars(lim2014)[name]
        assert vars(estimation)[name] is shared and vars(fm)[name] is shared, name
    assert estimation.EPS_TERMS == lim2014.EPS_SPLIT == 21.0
    for name in ("_gamma", "_weighted_sum", "EPS_SPLIT_LOCAL"):
        assert not hasattr(fk, name) and not hasattr(fm, name)


@pytest.mark.parametrize(("length_km", "n_x"), [(20.0, 1e7), (100.0, 1e9)])
def test_count_based_bounds_are_bit_identical_to_the_shared_formulas(
    length_km: float, n_x: float
) -> None:
    # Same inputs, same numbers (==, not approx): the estimation layer adds nothing of its own
    # between the observed counts and keyrate.lim2014.
    from qnetkit.keyrate.lim2014 import DecoyIntensities, hoeffding_deviation

    _, classes, (n_xk, n_zk, m_zk) = _expected_counts(length_km, n_x)
    bound = decoy_basis_bound(n_xk, n_zk, m_zk, classes, 1e-10)  # type: ignore[arg-type]
    decoys = DecoyIntensities(classes.intensities, classes.probabilities)
    s0, s1 = decoys.vacuum_and_single(n_xk, hoeffding_deviation(sum(n_xk), 1e-10))
    assert bound.s0 == float(s0) and bound.s1 == float(s1)
    _, s_z1 = decoys.vacuum_and_single(n_zk, hoeffding_deviation(sum(n_zk), 1e-10))
    v_z1 = float(decoys.single_errors(m_zk, hoeffding_deviation(sum(m_zk), 1e-10)))
    ratio = v_z1 / float(s_z1)
    phase = min(ratio + gamma_deviation(1e-10 / 21.0, ratio, float(s_z1), float(s1)), 0.5)
    assert bound.phase_error == phase
