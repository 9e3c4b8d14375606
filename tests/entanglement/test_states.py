"""Bell-diagonal states: convention, Werner states, density matrices, twirl, input checks.

The Bell vectors here are built independently of the module (from |0>, |1> and Paulis), so the
convention [A, B, C, D] = |Phi+>, |Psi->, |Psi+>, |Phi->> of Deutsch et al., PRL 77, 2818 (1996)
is checked, not restated.
"""

from __future__ import annotations

import numpy as np
import pytest

from qnetkit.entanglement.states import (
    bell_diagonal_part,
    check_bell_diagonal,
    fidelity,
    from_pauli_correlations,
    pauli_correlations,
    to_density_matrix,
    werner,
)
from qnetkit.errors import ParameterError

ZERO = np.array([1.0, 0.0])
ONE = np.array([0.0, 1.0])
I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
PHI_P = (np.kron(ZERO, ZERO) + np.kron(ONE, ONE)) / np.sqrt(2)
PHI_M = (np.kron(ZERO, ZERO) - np.kron(ONE, ONE)) / np.sqrt(2)
PSI_P = (np.kron(ZERO, ONE) + np.kron(ONE, ZERO)) / np.sqrt(2)
PSI_M = (np.kron(ZERO, ONE) - np.kron(ONE, ZERO)) / np.sqrt(2)
BELL = [PHI_P, PSI_M, PSI_P, PHI_M]


def random_bell_diagonal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.dirichlet(np.ones(4), size=n)


def random_density_matrix(rng: np.random.Generator) -> np.ndarray:
    g = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    rho = g @ g.conj().T
    return rho / np.trace(rho)


def test_werner_coefficients_and_fidelity() -> None:
    np.testing.assert_allclose(werner(0.85), [0.85, 0.05, 0.05, 0.05], rtol=0, atol=1e-15)
    w = werner(np.array([[0.25, 1.0], [0.7, 0.55]]))
    assert w.shape == (2, 2, 4)
    np.testing.assert_allclose(w[0, 0], [0.25] * 4, atol=1e-15)
    np.testing.assert_allclose(w[0, 1], [1.0, 0.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(fidelity(w), [[0.25, 1.0], [0.7, 0.55]], atol=1e-15)


def test_density_matrix_matches_independent_bell_vectors() -> None:
    # Each basis coefficient gives exactly the projector on the Bell vector built here.
    for k, vec in enumerate(BELL):
        coeffs = np.zeros(4)
        coeffs[k] = 1.0
        np.testing.assert_allclose(to_density_matrix(coeffs), np.outer(vec, vec.conj()), atol=1e-15)
    # Each Bell state is a Pauli on Bob's half of Phi+: Psi+ = X, Phi- = Z, Psi- = XZ.
    for pauli, vec in [(X, PSI_P), (Z, PHI_M), (X @ Z, PSI_M)]:
        np.testing.assert_allclose(np.kron(I2, pauli) @ PHI_P, vec, atol=1e-15)


def test_werner_density_matrix_is_isotropic_mixture() -> None:
    # Werner(F) = p |Phi+><Phi+| + (1-p) I/4 with p = (4F-1)/3 (Werner 1989; Bennett et al. 1996).
    f = 0.8
    p = (4 * f - 1) / 3
    expected = p * np.outer(PHI_P, PHI_P) + (1 - p) * np.eye(4) / 4
    np.testing.assert_allclose(to_density_matrix(werner(f)), expected, atol=1e-15)


def test_density_matrix_round_trip_and_fidelity_is_phi_plus_overlap() -> None:
    rng = np.random.default_rng(1)
    c = random_bell_diagonal(rng, 50)
    rho = to_density_matrix(c)
    assert rho.shape == (50, 4, 4)
    np.testing.assert_allclose(np.trace(rho, axis1=-2, axis2=-1), 1.0, atol=1e-14)
    np.testing.assert_allclose(rho, np.conj(np.swapaxes(rho, -1, -2)), atol=1e-15)
    np.testing.assert_allclose(bell_diagonal_part(rho), c, atol=1e-14)
    overlap = np.einsum("i,nij,j->n", PHI_P.conj(), rho, PHI_P).real
    np.testing.assert_allclose(fidelity(c), overlap, atol=1e-14)


def test_twirl_equals_average_over_bilateral_paulis() -> None:
    # Averaging rho over {II, XX, YY, ZZ} (which every Bell state is an eigenstate of) leaves
    # a Bell-diagonal state whose weights are the Bell-basis diagonal of rho.
    rng = np.random.default_rng(2)
    for _ in range(10):
        rho = random_density_matrix(rng)
        twirled = sum(np.kron(p, p) @ rho @ np.kron(p, p).conj().T for p in (I2, X, Y, Z)) / 4
        coeffs = bell_diagonal_part(rho)
        np.testing.assert_allclose(to_density_matrix(coeffs), twirled, atol=1e-14)
        np.testing.assert_allclose(coeffs, [np.real(v.conj() @ rho @ v) for v in BELL], atol=1e-14)


def test_pauli_correlations_match_traces() -> None:
    rng = np.random.default_rng(3)
    c = random_bell_diagonal(rng, 20)
    rho = to_density_matrix(c)
    explicit = np.stack(
        [np.einsum("ij,nji->n", np.kron(p, p), rho).real for p in (X, Y, Z)], axis=-1
    )
    np.testing.assert_allclose(pauli_correlations(c), explicit, atol=1e-14)
    np.testing.assert_allclose(from_pauli_correlations(explicit), c, atol=1e-14)


def test_check_accepts_rounding_and_returns_float_array() -> None:
    out = check_bell_diagonal([1.0 + 5e-13, -5e-13, 0.0, 0.0])
    assert out.dtype == np.float64
    assert out.shape == (4,)


@pytest.mark.parametrize(
    ("coeffs", "value"),
    [
        ([0.5, 0.5, 0.1, -0.1], -0.1),
        ([0.5, 0.3, 0.1, 0.0], 0.9),  # the sum is reported
        ([0.5, 0.5, np.nan, 0.0], "nan"),
    ],
)
def test_check_rejects_bad_coefficients_naming_the_value(
    coeffs: list[float], value: object
) -> None:
    with pytest.raises(ParameterError) as err:
        check_bell_diagonal(coeffs, "link_state")
    assert err.value.name == "link_state"
    assert str(value) in str(err.value)


def test_check_rejects_wrong_shape() -> None:
    with pytest.raises(ParameterError, match=r"coeffs=\(3,\): must have shape"):
        check_bell_diagonal([0.5, 0.25, 0.25])


@pytest.mark.parametrize("f", [0.2, 1.01, -0.5, float("nan")])
def test_werner_fidelity_out_of_range(f: float) -> None:
    with pytest.raises(ParameterError) as err:
        werner(np.array([0.9, f]))
    assert err.value.name == "fidelity"
    assert str(f) in str(err.value)
