"""Quantum-memory channels against the qubit Kraus channels and the Lindblad equation.

Amplitude damping and phase damping: Nielsen & Chuang, *Quantum Computation and Quantum
Information*, Sec. 8.3.5-8.3.6 (Kraus operators) and Sec. 8.4.1 (T1, T2 with T2 <= 2 T1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

from qnetkit.errors import ParameterError
from qnetkit.physics.memory import QuantumMemory, check_storage_times

X = np.array([[0, 1], [1, 0]], dtype=np.complex128)
Y = np.array([[0, -1j], [1j, 0]], dtype=np.complex128)
Z = np.array([[1, 0], [0, -1]], dtype=np.complex128)
SIGMA_MINUS = np.array([[0, 1], [0, 0]], dtype=np.complex128)  # |0><1|: |1> relaxes to |0>


def random_qubit_states(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random mixed qubit states (Ginibre), shape (n, 2, 2)."""
    g = rng.normal(size=(n, 2, 2)) + 1j * rng.normal(size=(n, 2, 2))
    rho = g @ np.conj(np.swapaxes(g, -1, -2))
    out: np.ndarray = rho / np.trace(rho, axis1=-2, axis2=-1)[:, None, None]
    return out


def kraus_t1_t2(rho: np.ndarray, gamma: float, keep: float) -> np.ndarray:
    """Amplitude damping (N&C Eq. 8.107) then phase flip ``keep rho + (1-keep) Z rho Z``."""
    k0 = np.array([[1, 0], [0, math.sqrt(1 - gamma)]], dtype=np.complex128)
    k1 = np.array([[0, math.sqrt(gamma)], [0, 0]], dtype=np.complex128)
    out = k0 @ rho @ k0.conj().T + k1 @ rho @ k1.conj().T
    result: np.ndarray = keep * out + (1 - keep) * (Z @ out @ Z)
    return result


def lindblad_solution(rho: np.ndarray, t: float, ops: list[np.ndarray]) -> np.ndarray:
    """exp(t L) rho for the Lindbladian with jump operators ``ops`` (no Hamiltonian)."""
    eye = np.eye(2)
    gen = np.zeros((4, 4), dtype=np.complex128)
    for op in ops:
        ldl = op.conj().T @ op
        # row-major vec: vec(A rho B) = (A kron B^T) vec(rho)
        gen += np.kron(op, op.conj()) - 0.5 * np.kron(ldl, eye) - 0.5 * np.kron(eye, ldl.T)
    result: np.ndarray = (expm(t * gen) @ rho.reshape(4)).reshape(2, 2)
    return result


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("efficiency", 1.5),
        ("efficiency", -0.1),
        ("efficiency", math.nan),
        ("t1_s", 0.0),
        ("t1_s", -1.0),
        ("t1_s", math.nan),
        ("t2_s", 0.0),
        ("t2_s", -2e-3),
        ("max_storage_s", 0.0),
        ("max_storage_s", math.nan),
        ("depolarizing_time_s", -1.0),
        ("depolarizing_time_s", math.nan),
    ],
)
def test_every_field_is_validated_and_named(field: str, value: float) -> None:
    with pytest.raises(ParameterError) as info:
        QuantumMemory(**{field: value})
    assert info.value.name == field
    assert field in str(info.value)


def test_infinite_times_are_allowed_and_mean_no_decay() -> None:
    mem = QuantumMemory()
    assert mem.damping_gamma(1e6) == 0.0
    assert mem.dephasing_keep_prob(1e6) == 1.0
    assert mem.depolarizing_keep_prob(math.inf) == 1.0
    assert mem.can_store(1e9)


@pytest.mark.parametrize("bad", [-1e-9, math.nan, [0.1, -0.2]])
def test_negative_or_nan_storage_time_is_rejected(bad: object) -> None:
    with pytest.raises(ParameterError, match="t_s"):
        QuantumMemory(t1_s=1.0).damping_gamma(bad)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="t_s"):
        check_storage_times(bad)  # type: ignore[arg-type]


# -- channel parameters -----------------------------------------------------------------------


def test_damping_gamma_and_dephasing_keep_prob_values() -> None:
    mem = QuantumMemory(t1_s=2.0, t2_s=0.5)
    t = np.array([0.0, 0.5, 2.0, 10.0])
    np.testing.assert_allclose(mem.damping_gamma(t), 1 - np.exp(-t / 2.0), rtol=0, atol=1e-15)
    # convention: probability of NO phase flip, coherence factor 2p - 1 = exp(-t/T2)
    keep = np.asarray(mem.dephasing_keep_prob(t))
    np.testing.assert_allclose(keep, (1 + np.exp(-t / 0.5)) / 2, rtol=0, atol=1e-15)
    assert keep[0] == 1.0
    assert mem.dephasing_keep_prob(math.inf) == 0.5
    assert mem.damping_gamma(math.inf) == 1.0
    assert isinstance(mem.damping_gamma(0.5), float)
    # one T1: gamma = 1 - 1/e
    assert mem.damping_gamma(2.0) == pytest.approx(1 - math.exp(-1), abs=1e-15)


def test_pure_dephasing_rate_completes_t2() -> None:
    mem = QuantumMemory(t1_s=1.0, t2_s=0.4)
    assert mem.pure_dephasing_rate_per_s == pytest.approx(1 / 0.4 - 0.5, abs=1e-15)
    t = 0.3
    gamma = mem.damping_gamma(t)
    pure = mem.pure_dephasing_keep_prob(t)
    # total coherence = sqrt(1 - gamma) (damping) x (2 p_phi - 1) (pure dephasing) = exp(-t/T2)
    assert math.sqrt(1 - gamma) * (2 * pure - 1) == pytest.approx(math.exp(-t / 0.4), abs=1e-14)
    # T2 above 2 T1 (here the default inf) means no pure dephasing beyond T1's own
    assert QuantumMemory(t1_s=1.0).pure_dephasing_rate_per_s == 0.0
    assert QuantumMemory(t1_s=1.0, t2_s=5.0).pure_dephasing_rate_per_s == 0.0


@pytest.mark.parametrize(
    ("t1_s", "t2_s", "t_s"),
    [
        (1.0, 0.3, 0.2),
        (1.0, 2.0, 0.7),
        (0.05, 0.01, 0.013),
        (math.inf, 0.2, 0.5),
        (0.4, math.inf, 1.0),
    ],
)
def test_t1_t2_channel_equals_kraus_channel(t1_s: float, t2_s: float, t_s: float) -> None:
    mem = QuantumMemory(t1_s=t1_s, t2_s=t2_s)
    rhos = random_qubit_states(np.random.default_rng(7), 25)
    gamma = float(mem.damping_gamma(t_s))
    keep = float(mem.pure_dephasing_keep_prob(t_s))
    expected = np.array([kraus_t1_t2(r, gamma, keep) for r in rhos])
    got = mem.apply_to_qubit(rhos, t_s)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # and the coherence decays as exp(-t/T2') with 1/T2' = max(1/T2, 1/(2 T1))
    t2_eff = 1.0 / max(1.0 / t2_s, 0.5 / t1_s)
    plus = np.full((2, 2), 0.5, dtype=np.complex128)
    out = mem.apply_to_qubit(plus, t_s)
    assert 2 * out[0, 1].real == pytest.approx(math.exp(-t_s / t2_eff), abs=1e-14)
    if not math.isinf(t1_s):
        # excited population relaxes as exp(-t/T1)
        excited = np.diag([0.0, 1.0]).astype(np.complex128)
        assert mem.apply_to_qubit(excited, t_s)[1, 1].real == pytest.approx(
            math.exp(-t_s / t1_s), abs=1e-14
        )


def test_kraus_phase_flip_with_dephasing_keep_prob_when_t1_infinite() -> None:
    mem = QuantumMemory(t2_s=0.25)
    rhos = random_qubit_states(np.random.default_rng(3), 10)
    p = float(mem.dephasing_keep_prob(0.1))
    expected = np.array([p * r + (1 - p) * Z @ r @ Z for r in rhos])
    np.testing.assert_allclose(mem.apply_to_qubit(rhos, 0.1), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("t1_s", "t2_s", "tdep_s", "t_s"),
    [
        (1.0, 0.3, 2.0, 0.4),
        (0.2, 0.35, 0.5, 0.3),
        (math.inf, math.inf, 0.1, 0.05),
        (1.0, math.inf, 0.7, 2.0),
    ],
)
def test_simultaneous_decays_equal_lindblad_equation(
    t1_s: float, t2_s: float, tdep_s: float, t_s: float
) -> None:
    mem = QuantumMemory(t1_s=t1_s, t2_s=t2_s, depolarizing_time_s=tdep_s)
    r1 = 1 / t1_s
    r_phi = mem.pure_dephasing_rate_per_s
    rd = 1 / tdep_s
    # jump operators: sqrt(r1) sigma_-; sqrt(r_phi/2) Z (coherence rate r_phi);
    # sqrt(rd/4) X, Y, Z (sum_k s rho s - rho = -4 (rho - I/2): Bloch vector shrinks at rd)
    ops = [math.sqrt(r1) * SIGMA_MINUS, math.sqrt(r_phi / 2) * Z]
    ops += [math.sqrt(rd / 4) * s for s in (X, Y, Z)]
    for rho in random_qubit_states(np.random.default_rng(11), 10):
        expected = lindblad_solution(rho, t_s, ops)
        np.testing.assert_allclose(mem.apply_to_qubit(rho, t_s), expected, rtol=0, atol=1e-12)


def test_depolarizing_memory_shrinks_bloch_vector() -> None:
    mem = QuantumMemory.depolarizing(coherence_time_s=0.5, efficiency=0.8)
    assert mem.efficiency == 0.8
    assert mem.depolarizing_time_s == 0.5
    p = float(mem.depolarizing_keep_prob(0.25))
    assert p == pytest.approx(math.exp(-0.5), abs=1e-15)
    rho = random_qubit_states(np.random.default_rng(5), 1)[0]
    np.testing.assert_allclose(
        mem.apply_to_qubit(rho, 0.25), p * rho + (1 - p) * np.eye(2) / 2, rtol=0, atol=1e-12
    )
    assert mem.stored_fidelity(0.25) == pytest.approx((1 + p) / 2, abs=1e-15)


def test_channel_is_trace_preserving_and_broadcasts_over_times() -> None:
    mem = QuantumMemory(t1_s=0.3, t2_s=0.2, depolarizing_time_s=1.0)
    t = np.array([0.0, 0.1, 1.0, 100.0])
    rho = random_qubit_states(np.random.default_rng(1), 1)[0]
    out = mem.apply_to_qubit(rho, t)
    assert out.shape == (4, 2, 2)
    np.testing.assert_allclose(np.trace(out, axis1=1, axis2=2), 1.0, atol=1e-14)
    np.testing.assert_allclose(out[0], rho, atol=1e-15)  # t = 0: identity
    # long times: the fixed point of damping + depolarising, z = r1 / (r1 + rd)
    z_inf = (1 / 0.3) / (1 / 0.3 + 1.0)
    np.testing.assert_allclose(out[3], np.diag([(1 + z_inf) / 2, (1 - z_inf) / 2]), atol=1e-12)


def test_storage_limit() -> None:
    mem = QuantumMemory(max_storage_s=0.01)
    np.testing.assert_array_equal(mem.can_store([0.0, 0.01, 0.0100001]), [True, True, False])
    assert mem.can_store(0.005) is True


def test_bad_density_matrix_shape_is_rejected() -> None:
    with pytest.raises(ParameterError, match="rho"):
        QuantumMemory().apply_to_qubit(np.eye(3), 0.1)
