"""QBER, CHSH, teleportation and key rate of Bell-diagonal pairs (entanglement.applications).

References: Horodecki, Horodecki, Horodecki, Phys. Lett. A 200, 340 (1995) (CHSH criterion);
Horodecki, Horodecki, Horodecki, PRA 60, 1888 (1999), Eq. (15) (teleportation fidelity);
Shor & Preskill, PRL 85, 441 (2000) (BBM92 rate, 11 % threshold); Acin et al., PRL 98, 230501
(2007) (DI rate from S, 7.1 % threshold).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from qnetkit.entanglement.applications import (
    CLASSICAL_TELEPORTATION_FIDELITY,
    bbm92_secret_fraction,
    chsh_from_bell_diagonal,
    entanglement_key_rate,
    qber_from_bell_diagonal,
    teleportation_fidelity,
)
from qnetkit.entanglement.states import to_density_matrix, werner
from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import one_way_rate
from qnetkit.keyrate.common import binary_entropy
from qnetkit.keyrate.di_e91 import di_key_rate_from_chsh, werner_chsh

TSIRELSON = 2.0 * math.sqrt(2.0)
PAULI = {
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "z": np.array([[1, 0], [0, -1]], dtype=complex),
}
HADAMARD = np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2.0)


def _chsh_from_density_matrix(rho: np.ndarray) -> float:
    """Horodecki 1995 on the full T_ij = Tr(rho s_i (x) s_j): independent of the Bell table."""
    names = "xyz"
    t = np.array([[np.trace(rho @ np.kron(PAULI[i], PAULI[j])).real for j in names] for i in names])
    eig = np.sort(np.linalg.eigvalsh(t.T @ t))
    return float(2.0 * math.sqrt(eig[1] + eig[2]))


def _error_rate(rho: np.ndarray, basis: str) -> float:
    """Probability that the two outcomes differ, measuring both qubits in Z or in X."""
    if basis == "x":
        u = np.kron(HADAMARD, HADAMARD)
        rho = u @ rho @ u.conj().T
    diag = np.diag(rho).real  # |00>, |01>, |10>, |11>
    return float(diag[1] + diag[2])


def test_werner_f1_limits() -> None:
    state = werner(1.0)
    q_z, q_x = qber_from_bell_diagonal(state)
    assert float(q_z) == 0.0 and float(q_x) == 0.0
    assert float(chsh_from_bell_diagonal(state)) == pytest.approx(TSIRELSON, abs=1e-12)
    assert float(teleportation_fidelity(state)) == pytest.approx(1.0, abs=1e-12)
    for protocol in ("bbm92", "e91"):
        key = entanglement_key_rate(1000.0, state, protocol)
        assert float(key.secret_fraction) == pytest.approx(1.0, abs=1e-12)
        assert float(key.secret_key_rate_bps) == pytest.approx(500.0)  # 1/2 sifted


def test_werner_quarter_is_useless() -> None:
    state = werner(0.25)
    q_z, q_x = qber_from_bell_diagonal(state)
    assert float(q_z) == pytest.approx(0.5) and float(q_x) == pytest.approx(0.5)
    assert float(chsh_from_bell_diagonal(state)) == pytest.approx(0.0, abs=1e-12)  # < 2
    e91 = entanglement_key_rate(1e6, state, "e91")
    assert float(e91.secret_fraction) < 0.0
    assert float(e91.secret_key_rate_bps) == 0.0
    assert float(entanglement_key_rate(1e6, state, "bbm92").secret_key_rate_bps) == 0.0
    assert float(teleportation_fidelity(state)) == pytest.approx(0.5)


@pytest.mark.parametrize("f", [0.3, 0.5, 0.7, 0.85, 0.95, 0.99])
def test_werner_closed_forms(f: float) -> None:
    state = werner(f)
    q_z, q_x = qber_from_bell_diagonal(state)
    assert float(q_z) == pytest.approx(2.0 * (1.0 - f) / 3.0)
    assert float(q_x) == pytest.approx(2.0 * (1.0 - f) / 3.0)
    # Werner(F) = p Phi+ + (1 - p) I/4 with p = (4F - 1)/3: S = 2 sqrt(2) p (Horodecki 1995).
    assert float(chsh_from_bell_diagonal(state)) == pytest.approx(TSIRELSON * (4 * f - 1) / 3)
    assert float(teleportation_fidelity(state)) == pytest.approx((2.0 * f + 1.0) / 3.0)


@pytest.mark.parametrize(
    ("index", "expected"),
    [(0, (0.0, 0.0)), (1, (1.0, 1.0)), (2, (1.0, 0.0)), (3, (0.0, 1.0))],
)
def test_each_bell_state(index: int, expected: tuple[float, float]) -> None:
    """Phi+ none, Psi- both, Psi+ flips Z only, Phi- flips X only; all maximally entangled."""
    state = np.eye(4)[index]
    q_z, q_x = qber_from_bell_diagonal(state)
    assert (float(q_z), float(q_x)) == expected
    assert float(chsh_from_bell_diagonal(state)) == pytest.approx(TSIRELSON)
    assert float(teleportation_fidelity(state)) == pytest.approx(1.0)


def test_against_density_matrix() -> None:
    """QBERs and S from the 4x4 density matrix agree with the closed forms on random states."""
    rng = np.random.default_rng(7)
    states = rng.dirichlet(np.ones(4), size=25)
    rhos = to_density_matrix(states)
    q_z, q_x = qber_from_bell_diagonal(states)
    chsh = chsh_from_bell_diagonal(states)
    for k in range(len(states)):
        assert q_z[k] == pytest.approx(_error_rate(rhos[k], "z"), abs=1e-12)
        assert q_x[k] == pytest.approx(_error_rate(rhos[k], "x"), abs=1e-12)
        assert chsh[k] == pytest.approx(_chsh_from_density_matrix(rhos[k]), abs=1e-12)


def test_dephased_pair_has_no_bit_errors() -> None:
    p = 0.1
    state = np.array([1.0 - p, 0.0, 0.0, p])
    q_z, q_x = qber_from_bell_diagonal(state)
    assert float(q_z) == 0.0 and float(q_x) == pytest.approx(p)
    # t = (1-2p, -(1-2p), 1): S = 2 sqrt(1 + (1-2p)^2).
    assert float(chsh_from_bell_diagonal(state)) == pytest.approx(
        2.0 * math.sqrt(1.0 + (1.0 - 2.0 * p) ** 2)
    )
    key = entanglement_key_rate(1.0, state, "bbm92")
    assert float(key.secret_fraction) == pytest.approx(1.0 - float(binary_entropy(p)))


@pytest.mark.parametrize("f_ec", [1.0, 1.16])
def test_bbm92_matches_keyrate_one_way_rate(f_ec: float) -> None:
    """Equal QBERs: secret fraction x 1/2 is keyrate.bbm92.one_way_rate at unit gain."""
    fids = np.linspace(0.85, 1.0, 7)
    key = entanglement_key_rate(1.0, werner(fids), "bbm92", ec_efficiency=f_ec)
    ref = one_way_rate(np.ones_like(fids), key.qber, f_ec)
    np.testing.assert_allclose(0.5 * key.secret_fraction, ref, rtol=1e-12)
    np.testing.assert_allclose(key.secret_key_rate_bps, np.maximum(ref, 0.0), rtol=1e-12)


def test_e91_matches_keyrate_on_werner_states() -> None:
    """Werner: Horodecki's S equals keyrate.di_e91.werner_chsh(Q) = 2 sqrt 2 (1 - 2Q)."""
    fids = np.linspace(0.8, 1.0, 9)
    key = entanglement_key_rate(1.0, werner(fids), "e91")
    np.testing.assert_allclose(key.chsh, werner_chsh(key.qber), rtol=1e-12)
    np.testing.assert_allclose(
        key.secret_fraction, di_key_rate_from_chsh(werner_chsh(key.qber), key.qber), rtol=1e-12
    )


def test_thresholds() -> None:
    """Shor-Preskill BBM92 ends at Q = 11.0 %; DI (Acin et al. 2007) at Q = 7.1 % (Werner)."""

    def fraction(q: float, protocol: str) -> float:
        f = 1.0 - 1.5 * q  # Werner with Q = 2(1 - F)/3
        return float(entanglement_key_rate(1.0, werner(f), protocol).secret_fraction)

    assert brentq(fraction, 0.01, 0.3, args=("bbm92",)) == pytest.approx(0.110028, abs=1e-5)
    assert brentq(fraction, 0.01, 0.3, args=("e91",)) == pytest.approx(0.071, abs=5e-4)


def test_teleportation_classical_boundary() -> None:
    """F_max = 1/2 (a separable Bell-diagonal state) gives exactly the classical 2/3."""
    state = np.array([0.5, 0.5, 0.0, 0.0])
    assert float(teleportation_fidelity(state)) == pytest.approx(CLASSICAL_TELEPORTATION_FIDELITY)
    # A mostly-singlet state: the best Pauli frame uses Psi- (weight 0.9).
    assert float(teleportation_fidelity([0.05, 0.9, 0.05, 0.0])) == pytest.approx(2.8 / 3)


def test_vectorised_shapes_and_broadcast_rate() -> None:
    states = werner(np.linspace(0.5, 1.0, 6).reshape(3, 2))
    q_z, _ = qber_from_bell_diagonal(states)
    assert q_z.shape == (3, 2)
    assert chsh_from_bell_diagonal(states).shape == (3, 2)
    key = entanglement_key_rate(np.array([[10.0], [20.0], [30.0]]), states, "bbm92")
    assert key.secret_key_rate_bps.shape == (3, 2)
    assert float(key.secret_key_rate_bps[2, 1]) == pytest.approx(15.0)  # F = 1, 30 pairs/s


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: entanglement_key_rate(1.0, werner(0.9), "b92"), "protocol"),
        (lambda: entanglement_key_rate(-1.0, werner(0.9)), "pairs_per_s"),
        (lambda: entanglement_key_rate(1.0, werner(0.9), sifting_factor=1.5), "sifting_factor"),
        (lambda: qber_from_bell_diagonal([0.5, 0.5, 0.5, 0.0]), "coeffs"),
        (lambda: chsh_from_bell_diagonal([1.0, 0.0, 0.0]), "coeffs"),
        (lambda: bbm92_secret_fraction(0.1, 0.1, ec_efficiency=0.9), "ec_efficiency"),
        (lambda: bbm92_secret_fraction(0.1, 1.2), "qber_phase"),
    ],
)
def test_bad_input(call: object, name: str) -> None:
    with pytest.raises(ParameterError) as info:
        call()  # type: ignore[operator]
    assert info.value.name == name
