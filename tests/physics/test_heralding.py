"""Heralded elementary links against the papers' formulas, their limits and a Fock-space model.

* Single click: Cabrillo, Cirac, Garcia-Fernandez, Zoller, PRA 59, 1025 (1999); the high-loss
  forms p = 2 alpha eta, rho = (1 - alpha)|Psi><Psi| + alpha|11><11| (F = 1 - alpha) used by
  Humphreys et al., Nature 558, 268 (2018) and Rozpedek et al., PRA 99, 052330 (2019).
* Double click: Barrett & Kok, PRA 71, 060310(R) (2005): success probability eta^2 / 2.
* SPDC + multimode memories: Simon et al., PRL 98, 190503 (2007); Collins et al., PRL 98,
  060502 (2007): 1 - (1 - p)^M over M modes.

The Fock-space model below simulates the optics from scratch (spins, photon modes, loss beam
splitters, the 50:50 midpoint beam splitter, threshold detectors with dark counts) and is an
independent check of the closed forms in ``qnetkit.physics.heralding``.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.stats import binom

from qnetkit.errors import ParameterError
from qnetkit.physics.fiber import fiber_transmittance
from qnetkit.physics.heralding import (
    FIBER_GROUP_VELOCITY_KM_PER_S,
    HeraldedLink,
    double_click_link,
    half_link_efficiency,
    heralding_attempt_s,
    phase_flip_prob_from_phase_std,
    single_click_link,
    spdc_mode_success_prob,
    spdc_multiplexed_link,
)

# ---------------------------------------------------------------- Fock-space reference model

DIM = 3  # photons per mode: at most one per node per round, so at most 2 in a mode
_A = np.diag(np.sqrt(np.arange(1, DIM)), k=1)  # annihilation operator
_VAC = np.diag([1.0] + [0.0] * (DIM - 1))  # |0><0|
_BELL = np.array(
    [
        [1, 0, 0, 1],  # Phi+
        [0, 1, -1, 0],  # Psi-
        [0, 1, 1, 0],  # Psi+
        [1, 0, 0, -1],  # Phi-
    ]
) / math.sqrt(2)
_PAULIS_A = [
    np.kron(p, np.eye(2))
    for p in (np.eye(2), [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], np.diag([1, -1]))
]


def _two_mode(theta: float) -> np.ndarray:
    """exp(theta (a^dag b - a b^dag)): a beam splitter with transmissivity cos^2 theta."""
    a = np.kron(_A, np.eye(DIM))
    b = np.kron(np.eye(DIM), _A)
    out: np.ndarray = expm(theta * (a.conj().T @ b - a @ b.conj().T))
    return out


def _apply(psi: np.ndarray, op: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Apply an operator on the tensor factors ``axes`` of the state tensor ``psi``."""
    dims = [psi.shape[i] for i in axes]
    op_t = op.reshape(dims + dims)
    n = len(axes)
    out = np.tensordot(op_t, psi, axes=(list(range(n, 2 * n)), list(axes)))
    moved: np.ndarray = np.moveaxis(out, list(range(n)), list(axes))
    return moved


def _emit(psi: np.ndarray, spin_axis: int, mode_axis: int) -> np.ndarray:
    """|s>|vac> -> |s>|s photons> for a fresh (vacuum) mode: the bright state |1> emits."""
    iso = np.zeros((2 * DIM, 2 * DIM))
    iso[0 * DIM + 0, 0 * DIM + 0] = 1.0
    iso[1 * DIM + 1, 1 * DIM + 0] = 1.0
    return _apply(psi, iso, (spin_axis, mode_axis))


def _round(psi: np.ndarray, first: int, eta: float) -> np.ndarray:
    """One round on modes (a, b, env_a, env_b) = axes first..first+3: emit, loss, midpoint BS."""
    psi = _emit(_emit(psi, 0, first), 1, first + 1)
    loss = _two_mode(math.acos(math.sqrt(eta)))
    psi = _apply(psi, loss, (first, first + 2))
    psi = _apply(psi, loss, (first + 1, first + 3))
    return _apply(psi, _two_mode(math.pi / 4), (first, first + 1))


def _herald_terms(p_dark: float, click_c: bool) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """POVM of "only detector c (or only d) clicks" as a sum of weighted projector pairs.

    Threshold detectors with dark counts: P(no click | n) = (1 - p_d) [n = 0]. "c clicks, d does
    not" = (1 - p_d) Pi0_d - (1 - p_d)^2 Pi0_c Pi0_d.
    """
    q = 1.0 - p_dark
    eye = np.eye(DIM)
    terms = [(q, eye, _VAC), (-(q**2), _VAC, _VAC)]
    return terms if click_c else [(w, pd, pc) for (w, pc, pd) in terms]


def _spin_state(
    psi: np.ndarray, rounds: int, patterns: tuple[bool, ...], p_dark: float
) -> np.ndarray:
    """Unnormalised 2-spin density matrix for the given click pattern of each round."""
    rho = np.zeros((4, 4), dtype=np.complex128)
    per_round = [_herald_terms(p_dark, c) for c in patterns]
    for combo in product(*per_round):
        weight = 1.0
        proj = psi
        for r, (w, pc, pd) in enumerate(combo):
            weight *= w
            proj = _apply(proj, pc, (2 + 4 * r,))
            proj = _apply(proj, pd, (3 + 4 * r,))
        flat = proj.reshape(4, -1)
        rho += weight * (flat @ flat.conj().T)
    return rho


def _corrected_bell_diagonal(rho: np.ndarray) -> np.ndarray:
    """Bell weights after the local Pauli on A that the click pattern calls for.

    The pattern's correction is the Pauli mapping its heralded Bell state to Phi+; here it is
    found as the Pauli that maximises the Phi+ weight (dark counts in the tests are small).
    """
    best: np.ndarray | None = None
    for pauli in _PAULIS_A:
        r = pauli @ rho @ pauli.conj().T
        w = np.real(np.einsum("ki,ij,kj->k", _BELL.conj(), r, _BELL))
        if best is None or w[0] > best[0]:
            best = w
    assert best is not None
    return best


def fock_single_click(alpha: float, eta: float, p_dark: float) -> tuple[float, np.ndarray]:
    spin = np.array([math.sqrt(1 - alpha), math.sqrt(alpha)])
    psi = np.einsum("i,j->ij", spin, spin).reshape(2, 2, *([1] * 4))
    psi = (
        psi
        * np.eye(DIM)[0].reshape(1, 1, DIM, 1, 1, 1)
        * np.eye(DIM)[0].reshape(1, 1, 1, DIM, 1, 1)
    )
    psi = (
        psi
        * np.eye(DIM)[0].reshape(1, 1, 1, 1, DIM, 1)
        * np.eye(DIM)[0].reshape(1, 1, 1, 1, 1, DIM)
    )
    psi = _round(psi, 2, eta)
    total = 0.0
    weights = np.zeros(4)
    for click_c in (True, False):
        rho = _spin_state(psi, 1, (click_c,), p_dark)
        p = float(np.real(np.trace(rho)))
        total += p
        weights += p * _corrected_bell_diagonal(rho / p)
    return total, weights / total


def fock_double_click(eta: float, p_dark: float) -> tuple[float, np.ndarray]:
    spin = np.array([1.0, 1.0]) / math.sqrt(2)
    vac = np.eye(DIM)[0]
    psi = np.einsum("i,j,a,b,c,d,e,f,g,h->ijabcdefgh", spin, spin, *([vac] * 8))
    psi = _round(psi, 2, eta)
    flip = np.array([[0.0, 1.0], [1.0, 0.0]])
    psi = _apply(_apply(psi, flip, (0,)), flip, (1,))
    psi = _round(psi, 6, eta)
    total = 0.0
    weights = np.zeros(4)
    for pattern in product((True, False), repeat=2):
        rho = _spin_state(psi, 2, pattern, p_dark)
        p = float(np.real(np.trace(rho)))
        total += p
        weights += p * _corrected_bell_diagonal(rho / p)
    return total, weights / total


# ------------------------------------------------------------------------------ attempt time


def test_group_velocity_is_c_over_1_468() -> None:
    velocity = FIBER_GROUP_VELOCITY_KM_PER_S
    assert velocity == pytest.approx(299_792.458 / 1.468, rel=1e-15)
    assert 1.0 / velocity == pytest.approx(4.8967e-6, rel=1e-4)  # about 4.9 us per km


def test_attempt_time_is_one_fiber_transit_of_the_whole_link() -> None:
    # photon L/2 out to the midpoint, herald L/2 back: L / v, plus local preparation
    assert heralding_attempt_s(100.0) == pytest.approx(100.0 * 1.468 / 299_792.458, rel=1e-15)
    assert heralding_attempt_s(100.0, preparation_s=5e-6) == pytest.approx(
        5e-6 + 100.0 / FIBER_GROUP_VELOCITY_KM_PER_S, rel=1e-15
    )
    assert heralding_attempt_s(0.0) == 0.0
    for link in (
        single_click_link(30.0),
        double_click_link(30.0),
        spdc_multiplexed_link(30.0, modes=4),
    ):
        assert link.attempt_s == heralding_attempt_s(30.0)


def test_half_link_efficiency_uses_the_fiber_model() -> None:
    eta = half_link_efficiency(50.0, 0.2, detector_efficiency=0.8, memory_efficiency=0.5)
    assert eta == pytest.approx(float(fiber_transmittance(25.0, 0.2)) * 0.8 * 0.5, rel=1e-15)
    assert eta == pytest.approx(10 ** (-0.5) * 0.4, rel=1e-12)  # 5 dB over 25 km


# ------------------------------------------------------------------------------ single click


@pytest.mark.parametrize(
    ("alpha", "length_km", "p_dark"),
    [(0.3, 10.0, 0.0), (0.1, 40.0, 0.0), (0.2, 20.0, 1e-3), (0.05, 0.0, 0.02)],
)
def test_single_click_equals_fock_space_model(
    alpha: float, length_km: float, p_dark: float
) -> None:
    link = single_click_link(
        length_km, bright_state=alpha, detector_efficiency=0.7, dark_count_prob=p_dark
    )
    eta = half_link_efficiency(length_km, 0.2, 0.7)
    p_ref, w_ref = fock_single_click(alpha, eta, p_dark)
    assert link.success_prob == pytest.approx(p_ref, abs=1e-12)
    np.testing.assert_allclose(link.bell_diagonal, w_ref, rtol=0, atol=1e-12)


def test_single_click_closed_form_without_dark_counts() -> None:
    alpha = 0.2
    link = single_click_link(25.0, bright_state=alpha, detector_efficiency=0.9, dark_count_prob=0.0)
    eta = float(fiber_transmittance(12.5, 0.2)) * 0.9
    # p = 1 - (1 - alpha eta)^2 (at least one photon detected, bunched);
    # F = 2 (1 - alpha) / (2 - alpha eta)
    assert link.success_prob == pytest.approx(alpha * eta * (2 - alpha * eta), rel=1e-14)
    assert link.fidelity == pytest.approx(2 * (1 - alpha) / (2 - alpha * eta), rel=1e-14)
    a, b, c, d = link.bell_diagonal
    assert b == c == pytest.approx((1 - a) / 2, rel=1e-14)  # |11> -> (Psi+ + Psi-)/2
    assert d == 0.0
    assert link.scheme == "single-click"


def test_single_click_high_loss_limit_is_humphreys_rozpedek_form() -> None:
    # p -> 2 alpha eta and F -> 1 - alpha when eta -> 0 (Humphreys 2018, Rozpedek 2019)
    alpha = 0.1
    link = single_click_link(400.0, bright_state=alpha, dark_count_prob=0.0)
    eta = half_link_efficiency(400.0, 0.2)
    assert eta < 1e-3
    assert link.success_prob / (2 * alpha * eta) == pytest.approx(1.0, abs=alpha * eta)
    assert link.fidelity == pytest.approx(1 - alpha, abs=alpha * eta)


def test_single_click_bright_state_trade_off() -> None:
    alphas = [0.01, 0.05, 0.1, 0.2, 0.4]
    links = [single_click_link(20.0, bright_state=a, dark_count_prob=0.0) for a in alphas]
    probs = [x.success_prob for x in links]
    fids = [x.fidelity for x in links]
    assert probs == sorted(probs) and fids == sorted(fids, reverse=True)
    # alpha -> 0: F -> 1 and p -> 0
    tiny = single_click_link(20.0, bright_state=1e-9, dark_count_prob=0.0)
    assert tiny.fidelity == pytest.approx(1.0, abs=1e-8)
    assert tiny.success_prob < 1e-8
    # with dark counts, alpha -> 0 is dark-count dominated: p -> 2 p_d (1 - p_d), F -> 0
    dark = single_click_link(20.0, bright_state=0.0, dark_count_prob=1e-4)
    assert dark.success_prob == pytest.approx(2e-4 * (1 - 1e-4), rel=1e-12)
    assert dark.fidelity == 0.0


def test_single_click_at_zero_length_and_perfect_detection() -> None:
    link = single_click_link(0.0, bright_state=0.1, detector_efficiency=1.0, dark_count_prob=0.0)
    assert link.success_prob == pytest.approx(0.1 * 1.9, rel=1e-14)
    assert link.fidelity == pytest.approx(1.8 / 1.9, rel=1e-14)


def test_single_click_phase_noise_and_visibility_dephase_the_pair() -> None:
    base = single_click_link(20.0, bright_state=0.1, dark_count_prob=0.0)
    noisy = single_click_link(20.0, bright_state=0.1, dark_count_prob=0.0, phase_noise=0.1)
    assert noisy.success_prob == base.success_prob  # phase noise does not change the rate
    assert noisy.bell_diagonal[0] == pytest.approx(0.9 * base.fidelity, rel=1e-14)
    assert noisy.bell_diagonal[3] == pytest.approx(0.1 * base.fidelity, rel=1e-14)
    # sigma = 0.3 rad Gaussian phase: coherence exp(-sigma^2/2)
    assert phase_flip_prob_from_phase_std(0.3) == pytest.approx(
        (1 - math.exp(-0.045)) / 2, rel=1e-14
    )
    assert phase_flip_prob_from_phase_std(0.0) == 0.0
    v = single_click_link(20.0, bright_state=0.1, dark_count_prob=0.0, visibility=0.81)
    entangled = base.fidelity  # share of the single-photon branch in the ideal case
    assert v.bell_diagonal[0] - v.bell_diagonal[3] == pytest.approx(
        0.9 * entangled / (v.success_prob / base.success_prob), rel=1e-12
    )


# ------------------------------------------------------------------------------ double click


@pytest.mark.parametrize(("length_km", "p_dark"), [(10.0, 0.0), (30.0, 1e-3), (0.0, 0.01)])
def test_double_click_equals_fock_space_model(length_km: float, p_dark: float) -> None:
    link = double_click_link(length_km, detector_efficiency=0.8, dark_count_prob=p_dark)
    eta = half_link_efficiency(length_km, 0.2, 0.8)
    p_ref, w_ref = fock_double_click(eta, p_dark)
    assert link.success_prob == pytest.approx(p_ref, abs=1e-12)
    np.testing.assert_allclose(link.bell_diagonal, w_ref, rtol=0, atol=1e-12)


def test_double_click_is_barrett_kok_eta_squared_over_two() -> None:
    for length_km in (0.0, 20.0, 100.0):
        link = double_click_link(
            length_km, detector_efficiency=0.85, memory_efficiency=0.6, dark_count_prob=0.0
        )
        eta = float(fiber_transmittance(length_km / 2, 0.2)) * 0.85 * 0.6
        assert link.success_prob == pytest.approx(0.5 * eta**2, rel=1e-14)
        assert link.bell_diagonal == (1.0, 0.0, 0.0, 0.0)
        assert link.scheme == "double-click"


def test_double_click_fidelity_limited_by_visibility_and_dark_counts() -> None:
    v = double_click_link(20.0, dark_count_prob=0.0, visibility=0.9)
    assert v.fidelity == pytest.approx(0.95, rel=1e-14)  # (1 + V) / 2
    assert v.bell_diagonal[3] == pytest.approx(0.05, rel=1e-12)
    # dark-count error ~ s0 s2 / s1^2 ~ 4 p_d / eta grows with loss: at 250 km (eta ~ 5e-3)
    fids = [double_click_link(250.0, dark_count_prob=p).fidelity for p in (1e-7, 1e-6, 1e-5, 1e-4)]
    assert fids == sorted(fids, reverse=True)
    assert fids[-1] < 0.9 < fids[0]


def test_double_click_beats_single_click_fidelity_but_not_rate_at_long_distance() -> None:
    single = single_click_link(200.0, bright_state=0.1)
    double = double_click_link(200.0)
    assert double.fidelity > single.fidelity
    # rate ratio 2 alpha eta / (eta^2 / 2) = 4 alpha / eta: single click scales with eta, not eta^2
    eta = half_link_efficiency(200.0)
    assert single.success_prob / double.success_prob == pytest.approx(4 * 0.1 / eta, rel=0.01)


# ------------------------------------------------------------------------------ SPDC multiplexed


def _fock_spdc_mode(eta: float, mu: float, p_dark: float, n_max: int = 40) -> float:
    """Herald probability from the photon-number sum: thermal P(n), binomial loss, HOM split.

    sum over n_a, n_b (pairs) and k_a, k_b (photons that arrive) of
    P(n_a) P(n_b) Bin(k_a; n_a, eta) Bin(k_b; n_b, eta) P(one detector | k_a, k_b), where a
    Fock input |k_a, k_b> on a 50:50 beam splitter leaves all N = k_a + k_b photons in one
    given port with probability C(N, k_a) / 2^N.
    """
    n = np.arange(n_max)
    pn = mu**n / (1 + mu) ** (n + 1)
    loss = binom.pmf(n[None, :], n[:, None], eta)  # [n, k]
    q = 1.0 - p_dark
    single = np.empty((n_max, n_max))
    for ka, kb in product(range(n_max), repeat=2):
        big_n = ka + kb
        single[ka, kb] = 2 * math.comb(big_n, ka) / 2**big_n * q if big_n else 2 * p_dark * q
    return float(pn @ loss @ single @ loss.T @ pn)


@pytest.mark.parametrize(("mu", "p_dark"), [(0.05, 0.0), (0.3, 1e-3)])
def test_spdc_mode_probability_equals_photon_number_sum(mu: float, p_dark: float) -> None:
    eta = 0.3
    assert spdc_mode_success_prob(eta, mu, p_dark) == pytest.approx(
        _fock_spdc_mode(eta, mu, p_dark), abs=1e-12
    )


def test_spdc_multiplexing_and_multi_pair_fidelity() -> None:
    mu = 0.02
    one = spdc_multiplexed_link(50.0, modes=1, mean_pair_number=mu, dark_count_prob=0.0)
    eta = half_link_efficiency(50.0, 0.2)
    p = 2 * eta * mu / (1 + eta * mu) ** 2
    assert one.success_prob == pytest.approx(p, rel=1e-12)
    # F = (1 + eta mu)^2 / (1 + mu)^3 (exactly-one-pair branch over all heralds)
    assert one.fidelity == pytest.approx((1 + eta * mu) ** 2 / (1 + mu) ** 3, rel=1e-12)
    for m in (10, 100, 1000):
        link = spdc_multiplexed_link(50.0, modes=m, mean_pair_number=mu, dark_count_prob=0.0)
        assert link.success_prob == pytest.approx(1 - (1 - p) ** m, rel=1e-12)
        assert link.bell_diagonal == one.bell_diagonal  # the kept mode's state
    # memory efficiency scales the per-mode success
    half = spdc_multiplexed_link(
        50.0, modes=100, mean_pair_number=mu, dark_count_prob=0.0, memory_efficiency=0.5
    )
    assert half.success_prob == pytest.approx(1 - (1 - 0.5 * p) ** 100, rel=1e-12)
    assert half.scheme == "spdc"


def test_spdc_high_loss_error_is_three_mu_and_vanishes_with_mu() -> None:
    for mu in (1e-3, 1e-2):
        link = spdc_multiplexed_link(500.0, modes=1, mean_pair_number=mu, dark_count_prob=0.0)
        assert 1 - link.fidelity == pytest.approx(3 * mu, rel=3 * mu)  # 3 mu - 6 mu^2 + ...
    tiny = spdc_multiplexed_link(50.0, modes=1000, mean_pair_number=1e-10, dark_count_prob=0.0)
    assert tiny.fidelity == pytest.approx(1.0, abs=1e-9)
    assert tiny.success_prob < 1e-6
    fids = [
        spdc_multiplexed_link(50.0, modes=10, mean_pair_number=m).fidelity
        for m in (0.001, 0.01, 0.1)
    ]
    assert fids == sorted(fids, reverse=True)


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: single_click_link(-1.0), "length_km"),
        (lambda: single_click_link(10.0, bright_state=1.2), "bright_state"),
        (lambda: single_click_link(10.0, phase_noise=-0.1), "phase_noise"),
        (lambda: double_click_link(10.0, detector_efficiency=1.5), "detector_efficiency"),
        (lambda: double_click_link(10.0, dark_count_prob=math.nan), "dark_count_prob"),
        (lambda: double_click_link(10.0, visibility=2.0), "visibility"),
        (lambda: spdc_multiplexed_link(10.0, modes=0), "modes"),
        (lambda: spdc_multiplexed_link(10.0, modes=2.5), "modes"),  # type: ignore[arg-type]
        (lambda: spdc_multiplexed_link(10.0, modes=3, mean_pair_number=-0.1), "mean_pair_number"),
        (lambda: spdc_multiplexed_link(10.0, modes=3, memory_efficiency=1.1), "memory_efficiency"),
        (lambda: heralding_attempt_s(10.0, preparation_s=-1.0), "preparation_s"),
        (lambda: HeraldedLink(0.5, (0.5, 0.5, 0.5, 0.0), 1.0, "x"), "bell_diagonal"),
        (lambda: HeraldedLink(1.5, (1.0, 0.0, 0.0, 0.0), 1.0, "x"), "success_prob"),
    ],
)
def test_bad_parameters_raise_parameter_error_naming_them(call: object, name: str) -> None:
    with pytest.raises(ParameterError) as info:
        call()  # type: ignore[operator]
    assert info.value.name == name


def test_link_rate_helpers() -> None:
    link = double_click_link(20.0, dark_count_prob=0.0)
    assert link.mean_attempts == pytest.approx(1 / link.success_prob, rel=1e-15)
    assert link.rate_pairs_per_s == pytest.approx(link.success_prob / link.attempt_s, rel=1e-15)
    never = single_click_link(20.0, bright_state=0.0, dark_count_prob=0.0)
    assert never.success_prob == 0.0 and never.mean_attempts == math.inf
    assert never.bell_diagonal == (1.0, 0.0, 0.0, 0.0)
