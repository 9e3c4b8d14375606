"""Swapping, purification and memory decoherence against closed forms and explicit simulations.

Closed forms: Werner swap F' = F1 F2 + (1-F1)(1-F2)/3 and the noisy connection of Duer,
Briegel, Cirac & Zoller, PRA 59, 169 (1999); BBPSSW (Bennett et al., PRL 76, 722 (1996));
DEJMPS (Deutsch et al., PRL 77, 2818 (1996)); the T1/T2 qubit channel (Nielsen & Chuang,
Sec. 8.3). Explicit simulations build the 16x16 (four-qubit) density matrix from np.kron,
apply CNOTs, projectors and Kraus operators written out here, independently of the module.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from scipy.linalg import expm

from qnetkit.entanglement.operations import (
    bbpssw,
    decohere,
    decohere_density_matrix,
    decohere_pair,
    dejmps,
    memory_bloch_factors,
    pauli_flip,
    swap,
)
from qnetkit.entanglement.states import werner
from qnetkit.errors import ParameterError
from qnetkit.physics.memory import QuantumMemory

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
S = 1 / np.sqrt(2)
PHI_P = np.array([S, 0, 0, S], dtype=complex)
# Bell vectors in the [A, B, C, D] order, each as (Pauli on the second qubit) |Phi+>.
BELL_PAULIS = [I2, X @ Z, X, Z]
BELL = [np.kron(I2, p) @ PHI_P for p in BELL_PAULIS]


def bell_dm(coeffs: np.ndarray) -> np.ndarray:
    return sum(c * np.outer(v, v.conj()) for c, v in zip(coeffs, BELL, strict=True))


def bell_weights(rho: np.ndarray) -> np.ndarray:
    return np.array([np.real(v.conj() @ rho @ v) for v in BELL])


def kron_all(*ops: np.ndarray) -> np.ndarray:
    out = np.eye(1, dtype=complex)
    for op in ops:
        out = np.kron(out, op)
    return out


def cnot(control: int, target: int, n: int = 4) -> np.ndarray:
    dim = 2**n
    u = np.zeros((dim, dim))
    for i in range(dim):
        bits = [(i >> (n - 1 - q)) & 1 for q in range(n)]
        if bits[control]:
            bits[target] ^= 1
        j = sum(b << (n - 1 - q) for q, b in enumerate(bits))
        u[j, i] = 1
    return u


def partial_trace(rho: np.ndarray, keep: list[int], n: int = 4) -> np.ndarray:
    t = rho.reshape([2] * (2 * n))
    letters = "abcdefghijklmnop"
    rows = list(letters[:n])
    cols = [letters[n + q] if q in keep else letters[q] for q in range(n)]
    out = "".join(letters[q] for q in keep) + "".join(letters[n + q] for q in keep)
    d = 2 ** len(keep)
    return np.einsum("".join(rows) + "".join(cols) + "->" + out, t).reshape(d, d)


def swap_explicit(a: np.ndarray, b: np.ndarray, p_gate: float, e_meas: float) -> np.ndarray:
    """Qubits (q0, q1) = pair a, (q2, q3) = pair b; Bell measurement on q1, q2, correction on q3."""
    rho = np.kron(bell_dm(a), bell_dm(b))
    paulis = [I2, X, Y, Z]
    depolarized = (
        sum(
            kron_all(I2, p, q, I2) @ rho @ kron_all(I2, p, q, I2).conj().T
            for p in paulis
            for q in paulis
        )
        / 16
    )
    rho = (1 - p_gate) * rho + p_gate * depolarized
    bits = [(0, 0), (1, 1), (1, 0), (0, 1)]  # (x, z) of each Bell index
    out = np.zeros((4, 4), dtype=complex)
    for k, vec in enumerate(BELL):
        proj = kron_all(I2, np.outer(vec, vec.conj()), I2)
        post = partial_trace(proj @ rho @ proj, keep=[0, 3])
        for fx, fz in product((0, 1), repeat=2):
            prob = (e_meas if fx else 1 - e_meas) * (e_meas if fz else 1 - e_meas)
            reported = bits.index((bits[k][0] ^ fx, bits[k][1] ^ fz))
            corr = np.kron(I2, BELL_PAULIS[reported])
            out += prob * corr @ post @ corr.conj().T
    return out


def purify_explicit(a: np.ndarray, b: np.ndarray, rotate: bool) -> tuple[float, np.ndarray]:
    """Pairs (q0 Alice, q1 Bob), (q2 Alice, q3 Bob); bilateral CNOT 1->2, keep equal Z outcomes."""
    rho = np.kron(bell_dm(a), bell_dm(b))
    if rotate:  # DEJMPS: Alice Rx(pi/2), Bob Rx(-pi/2) on both of their qubits
        ra = expm(-1j * np.pi / 4 * X)
        rb = expm(1j * np.pi / 4 * X)
        u = kron_all(ra, rb, ra, rb)
        rho = u @ rho @ u.conj().T
    u = cnot(0, 2) @ cnot(1, 3)
    rho = u @ rho @ u.T
    keep = kron_all(I2, I2, np.diag([1.0, 0, 0, 0])) + kron_all(I2, I2, np.diag([0, 0, 0, 1.0]))
    out = partial_trace(keep @ rho @ keep, keep=[0, 1])
    prob = float(np.trace(out).real)
    return prob, out / prob


# --- swapping -----------------------------------------------------------------------------


def test_werner_swap_closed_form() -> None:
    # Duer et al. PRA 59, 169 (1999): F' = F1 F2 + (1-F1)(1-F2)/3.
    f1 = np.linspace(0.25, 1.0, 31)[:, None]
    f2 = np.linspace(0.25, 1.0, 17)[None, :]
    out = swap(werner(f1), werner(f2))
    assert out.shape == (31, 17, 4)
    np.testing.assert_allclose(out[..., 0], f1 * f2 + (1 - f1) * (1 - f2) / 3, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out, werner(out[..., 0]), rtol=0, atol=1e-12)  # stays Werner


@pytest.mark.parametrize("p_gate", [0.0, 0.03])
def test_werner_swap_chain_closed_form(p_gate: float) -> None:
    # Werner parameter w = (4F-1)/3 multiplies at each connection (Duer et al. 1999): a chain of
    # n links has F = 1/4 + 3/4 (1-p)^(n-1) w^n.
    f0 = np.array([0.99, 0.95, 0.9, 0.8])
    w = (4 * f0 - 1) / 3
    state = werner(f0)
    for n in range(2, 9):
        state = swap(state, werner(f0), gate_depolarizing=p_gate)
        expected = 0.25 + 0.75 * (1 - p_gate) ** (n - 1) * w**n
        np.testing.assert_allclose(state[..., 0], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("p_gate", "e_meas"), [(0.0, 0.0), (0.07, 0.0), (0.0, 0.04), (0.05, 0.02)])
def test_swap_matches_explicit_bell_measurement(p_gate: float, e_meas: float) -> None:
    rng = np.random.default_rng(11)
    for _ in range(6):
        a, b = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
        rho = swap_explicit(a, b, p_gate, e_meas)
        # The explicit result is Bell-diagonal: no twirl hides anything.
        np.testing.assert_allclose(rho, bell_dm(bell_weights(rho)), atol=1e-12)
        out = swap(a, b, gate_depolarizing=p_gate, measurement_error=e_meas)
        np.testing.assert_allclose(out, bell_weights(rho), rtol=0, atol=1e-12)


def test_swap_noisy_connection_matches_duer_formula() -> None:
    # Duer et al. 1999 (connection with gate reliability p2 and measurement precision eta):
    # A' = p2 [eta^2 (A^2+B^2+C^2+D^2) + (1-eta)^2 2(AB+CD) + 2 eta (1-eta)(A+B)(C+D)] + (1-p2)/4.
    rng = np.random.default_rng(5)
    c = rng.dirichlet(np.ones(4), size=100)
    a, b, cc, d = c.T
    p2, eta = 0.97, 0.99
    expected = (
        p2
        * (
            eta**2 * (a**2 + b**2 + cc**2 + d**2)
            + (1 - eta) ** 2 * 2 * (a * b + cc * d)
            + 2 * eta * (1 - eta) * (a + b) * (cc + d)
        )
        + (1 - p2) / 4
    )
    out = swap(c, c, gate_depolarizing=1 - p2, measurement_error=1 - eta)
    np.testing.assert_allclose(out[:, 0], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-12)


def test_pauli_flip_matches_explicit_pauli_channel() -> None:
    rng = np.random.default_rng(4)
    c = rng.dirichlet(np.ones(4))
    px, pz = 0.13, 0.31
    rho = bell_dm(c)
    rho = (1 - px) * rho + px * np.kron(I2, X) @ rho @ np.kron(I2, X)
    rho = (1 - pz) * rho + pz * np.kron(I2, Z) @ rho @ np.kron(I2, Z)
    np.testing.assert_allclose(pauli_flip(c, px, pz), bell_weights(rho), rtol=0, atol=1e-14)


def test_swap_broadcasts_over_leading_axes() -> None:
    rng = np.random.default_rng(6)
    a = rng.dirichlet(np.ones(4), size=(5, 1))
    b = rng.dirichlet(np.ones(4), size=(1, 3))
    out = swap(a, b, measurement_error=0.01)
    assert out.shape == (5, 3, 4)
    np.testing.assert_allclose(
        out[4, 2], swap(a[4, 0], b[0, 2], measurement_error=0.01), atol=1e-15
    )


def test_swap_rejects_bad_inputs() -> None:
    with pytest.raises(ParameterError, match=r"b=0\.9"):
        swap(werner(0.9), [0.5, 0.3, 0.1, 0.0])
    with pytest.raises(ParameterError, match=r"gate_depolarizing=1\.5"):
        swap(werner(0.9), werner(0.9), gate_depolarizing=1.5)
    with pytest.raises(ParameterError, match=r"measurement_error=-0\.1"):
        swap(werner(0.9), werner(0.9), measurement_error=-0.1)


# --- purification -------------------------------------------------------------------------


def test_bbpssw_closed_form() -> None:
    # Bennett et al. PRL 76, 722 (1996): F' = (F^2 + G^2) / p, p = F^2 + 2FG + 5G^2, G = (1-F)/3.
    f = np.linspace(0.25, 1.0, 61)
    g = (1 - f) / 3
    p, out = bbpssw(werner(f))
    np.testing.assert_allclose(p, f**2 + 2 * f * g + 5 * g**2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        out[..., 0], (f**2 + g**2) / (f**2 + 2 * f * g + 5 * g**2), atol=1e-12
    )
    np.testing.assert_allclose(out, werner(out[..., 0]), atol=1e-15)
    # Fixed points F = 1/2 and F = 1; improvement above 1/2.
    assert bbpssw(werner(0.5))[1][0] == pytest.approx(0.5, abs=1e-15)
    # F = 0.7, G = 0.1: F' = (0.49 + 0.01) / (0.49 + 0.14 + 0.05) = 25/34, p = 0.68.
    p7, out7 = bbpssw(werner(0.7))
    assert float(out7[0]) == pytest.approx(25 / 34, abs=1e-12)
    assert float(p7) == pytest.approx(0.68, abs=1e-12)


def test_bbpssw_twirls_its_input() -> None:
    a = np.array([0.8, 0.15, 0.05, 0.0])
    b = np.array([0.9, 0.0, 0.02, 0.08])
    p, out = bbpssw(a, b)
    p_w, out_w = bbpssw(werner(0.8), werner(0.9))
    np.testing.assert_allclose([p, *out], [p_w, *out_w], atol=1e-15)


@pytest.mark.parametrize(("f1", "f2"), [(0.7, 0.7), (0.6, 0.95), (0.3, 0.8)])
def test_bbpssw_matches_explicit_protocol(f1: float, f2: float) -> None:
    prob, rho = purify_explicit(werner(f1), werner(f2), rotate=False)
    p, out = bbpssw(werner(f1), werner(f2))
    assert float(p) == pytest.approx(prob, abs=1e-12)
    assert float(out[0]) == pytest.approx(np.real(PHI_P.conj() @ rho @ PHI_P), abs=1e-12)


def test_dejmps_closed_form_equal_inputs() -> None:
    # Deutsch et al. 1996: A' = (A^2+B^2)/N, B' = 2CD/N, C' = (C^2+D^2)/N, D' = 2AB/N,
    # N = (A+B)^2 + (C+D)^2, with A, B, C, D the weights of Phi+, Psi-, Psi+, Phi-.
    rng = np.random.default_rng(7)
    c = rng.dirichlet(np.ones(4), size=200)
    a, b, cc, d = c.T
    n = (a + b) ** 2 + (cc + d) ** 2
    p, out = dejmps(c, c)
    np.testing.assert_allclose(p, n, rtol=0, atol=1e-12)
    expected = np.stack([a**2 + b**2, 2 * cc * d, cc**2 + d**2, 2 * a * b], axis=-1) / n[:, None]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_dejmps_matches_explicit_protocol() -> None:
    rng = np.random.default_rng(8)
    for _ in range(8):
        a, b = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
        prob, rho = purify_explicit(a, b, rotate=True)
        np.testing.assert_allclose(rho, bell_dm(bell_weights(rho)), atol=1e-12)  # Bell-diagonal
        p, out = dejmps(a, b)
        assert float(p) == pytest.approx(prob, abs=1e-12)
        np.testing.assert_allclose(out, bell_weights(rho), rtol=0, atol=1e-12)


def test_dejmps_first_round_on_werner_equals_bbpssw_then_outgrows_it() -> None:
    # On a Werner input the first rounds agree in fidelity and success probability; DEJMPS keeps
    # the non-Werner output, so its second round is better (Deutsch et al. 1996, Fig. 1 discussion).
    w = werner(0.7)
    p_d, d1 = dejmps(w, w)
    p_b, b1 = bbpssw(w)
    assert float(p_d) == pytest.approx(float(p_b), abs=1e-12)
    assert float(d1[0]) == pytest.approx(float(b1[0]), abs=1e-12)
    assert dejmps(d1, d1)[1][0] > bbpssw(b1)[1][0] + 0.01


# --- decoherence --------------------------------------------------------------------------


def apply_local_kraus(rho: np.ndarray, ka: list[np.ndarray], kb: list[np.ndarray]) -> np.ndarray:
    return sum(np.kron(p, q) @ rho @ np.kron(p, q).conj().T for p in ka for q in kb)


def t1_t2_kraus(t: float, t1: float, t2: float) -> list[np.ndarray]:
    """Amplitude damping gamma = 1 - exp(-t/T1), then phase flip to total coherence exp(-t/T2)."""
    gamma = 1 - np.exp(-t / t1)
    ad = [np.array([[1, 0], [0, np.sqrt(1 - gamma)]]), np.array([[0, np.sqrt(gamma)], [0, 0]])]
    lam = np.exp(-t / t2) / np.sqrt(1 - gamma)  # coherence still to remove after damping
    q = (1 - lam) / 2
    pf = [np.sqrt(1 - q) * I2, np.sqrt(q) * Z]
    return [p @ k for p in pf for k in ad]


def test_phi_plus_fidelity_under_dephasing() -> None:
    # Both qubits dephase: F(t) = (1 + exp(-2t/T2)) / 2.
    t = np.linspace(0.0, 5.0, 26)
    out = decohere(werner(1.0), t, QuantumMemory(t2_s=1.3))
    np.testing.assert_allclose(out[..., 0], (1 + np.exp(-2 * t / 1.3)) / 2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[..., 3], (1 - np.exp(-2 * t / 1.3)) / 2, rtol=0, atol=1e-12)


def test_dephasing_is_exact_phase_flip_on_bell_diagonal() -> None:
    # Z on one qubit with probability (1 - exp(-t/T2))/2 maps Phi+ <-> Phi-, Psi+ <-> Psi-.
    rng = np.random.default_rng(9)
    c = rng.dirichlet(np.ones(4), size=10)
    ta, tb = 0.4, 1.1
    mem_a, mem_b = QuantumMemory(t2_s=2.0), QuantumMemory(t2_s=0.7)
    qa, qb = (1 - np.exp(-ta / 2.0)) / 2, (1 - np.exp(-tb / 0.7)) / 2
    ka = [np.sqrt(1 - qa) * I2, np.sqrt(qa) * Z]
    kb = [np.sqrt(1 - qb) * I2, np.sqrt(qb) * Z]
    out = decohere_pair(c, ta, tb, mem_a, mem_b)
    for row, ci in zip(out, c, strict=True):
        np.testing.assert_allclose(
            row, bell_weights(apply_local_kraus(bell_dm(ci), ka, kb)), atol=1e-12
        )


@pytest.mark.parametrize(("t1", "t2"), [(1.0, np.inf), (1.0, 2.0), (1.0, 0.5), (3.0, 0.2)])
def test_t1_t2_storage_matches_kraus_then_twirl(t1: float, t2: float) -> None:
    rng = np.random.default_rng(10)
    mem = QuantumMemory(t1_s=t1, t2_s=t2)
    t2_eff = min(t2, 2 * t1)  # T2 above 2 T1 is read as T2 = 2 T1 (no extra dephasing)
    for t_a, t_b in [(0.3, 0.3), (0.1, 1.7), (2.0, 0.0)]:
        c = rng.dirichlet(np.ones(4))
        rho = apply_local_kraus(
            bell_dm(c), t1_t2_kraus(t_a, t1, t2_eff), t1_t2_kraus(t_b, t1, t2_eff)
        )
        out = decohere_pair(c, t_a, t_b, mem, mem)
        np.testing.assert_allclose(out, bell_weights(rho), rtol=0, atol=1e-12)
        # The general 4x4 path gives the full (non-Bell-diagonal) state.
        full = decohere_density_matrix(bell_dm(c), t_a, t_b, mem, mem)
        np.testing.assert_allclose(full, rho, rtol=0, atol=1e-12)


def test_amplitude_damping_bell_diagonal_values() -> None:
    # Phi+ with amplitude damping gamma on both qubits: <Phi+|rho|Phi+> = (1 + (1-gamma))^2/4 +
    # gamma^2/4 (Kraus K0 (x) K0 keeps (|00> + (1-gamma)|11>)/sqrt2, K1 (x) K1 maps |11> to |00>).
    t, t1 = 0.5, 1.0
    gamma = 1 - np.exp(-t / t1)
    out = decohere(werner(1.0), t, QuantumMemory(t1_s=t1))
    assert float(out[0]) == pytest.approx((2 - gamma) ** 2 / 4 + gamma**2 / 4, abs=1e-12)


def test_depolarizing_and_t1_together_match_lindblad_solution() -> None:
    # Simultaneous amplitude damping (T1), pure dephasing and depolarising (T_dep): the exact
    # single-qubit channel exp(t L) from the Lindbladian, applied to both qubits of random states.
    t1, t2, tdep, t = 1.0, 0.8, 2.5, 0.6
    sm = np.array([[0, 1], [0, 0]], dtype=complex)  # |0><1|: decay towards |0>
    rate_phi = 1 / t2 - 1 / (2 * t1)
    ops = [np.sqrt(1 / t1) * sm, np.sqrt(rate_phi / 2) * Z] + [
        np.sqrt(1 / (4 * tdep)) * p for p in (X, Y, Z)
    ]

    def lindbladian(ops: list[np.ndarray]) -> np.ndarray:
        # Column-stacking vec: vec(A rho B) = (B^T (x) A) vec(rho).
        sup = np.zeros((4, 4), dtype=complex)
        for op in ops:
            ld = op.conj().T @ op
            sup += np.kron(op.conj(), op) - 0.5 * np.kron(I2, ld) - 0.5 * np.kron(ld.T, I2)
        return sup

    channel = expm(t * lindbladian(ops))
    rng = np.random.default_rng(12)
    g = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    rho = g @ g.conj().T / np.trace(g @ g.conj().T)
    mem = QuantumMemory(t1_s=t1, t2_s=t2, depolarizing_time_s=tdep)
    expected = apply_channel_each_qubit(channel, rho)
    np.testing.assert_allclose(decohere_density_matrix(rho, t, t, mem, mem), expected, atol=1e-12)
    c = rng.dirichlet(np.ones(4))
    expected_bd = bell_weights(apply_channel_each_qubit(channel, bell_dm(c)))
    np.testing.assert_allclose(decohere(c, t, mem), expected_bd, rtol=0, atol=1e-12)


def apply_channel_each_qubit(channel: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """rho = sum r[i,j,k,m] |i><k| (x) |j><m|; each factor goes through the superoperator."""
    r = rho.reshape(2, 2, 2, 2)
    basis = np.eye(2)

    def apply(op: np.ndarray) -> np.ndarray:
        return (channel @ op.reshape(-1, order="F")).reshape(2, 2, order="F")

    out = np.zeros((4, 4), dtype=complex)
    for i, j, k, m in product(range(2), repeat=4):
        e_a = apply(np.outer(basis[i], basis[k]))
        e_b = apply(np.outer(basis[j], basis[m]))
        out += r[i, j, k, m] * np.kron(e_a, e_b)
    return out


def test_decohere_zero_time_and_infinite_times_are_identity() -> None:
    c = np.array([0.7, 0.1, 0.15, 0.05])
    np.testing.assert_allclose(decohere(c, 0.0, QuantumMemory(t1_s=0.1, t2_s=0.05)), c, atol=1e-15)
    np.testing.assert_allclose(decohere(c, 10.0, QuantumMemory()), c, atol=1e-15)


def test_decohere_rejects_bad_inputs() -> None:
    with pytest.raises(ParameterError, match=r"t_s=-1\.0"):
        decohere(werner(0.9), -1.0, QuantumMemory(t2_s=1.0))
    with pytest.raises(ParameterError, match=r"t_s=nan"):
        decohere(werner(0.9), [0.1, float("nan")], QuantumMemory(t2_s=1.0))
    with pytest.raises(ParameterError, match=r"coeffs=1\.1"):
        decohere([0.5, 0.3, 0.2, 0.1], 1.0, QuantumMemory(t2_s=1.0))


def test_infinite_storage_limits() -> None:
    # Dephasing forever leaves the classical mixture of Phi+ and Phi-; amplitude damping forever
    # leaves |00>, whose Bell-diagonal part is also half Phi+, half Phi-.
    phi = werner(1.0)
    np.testing.assert_allclose(decohere(phi, np.inf, QuantumMemory(t2_s=1.0)), [0.5, 0, 0, 0.5])
    np.testing.assert_allclose(decohere(phi, np.inf, QuantumMemory(t1_s=1.0)), [0.5, 0, 0, 0.5])
    np.testing.assert_allclose(decohere(phi, np.inf, QuantumMemory()), phi)


def test_channel_agrees_with_physics_memory() -> None:
    # The same qubit channel as qnetkit.physics.memory (one convention across layers).
    mem = QuantumMemory(t1_s=2.0, t2_s=0.9, depolarizing_time_s=5.0)
    t = np.array([0.0, 0.3, 1.0, 4.0])
    for ours, theirs in zip(memory_bloch_factors(t, mem), mem.bloch_factors(t), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-15)
    # And on a product state the two-qubit path equals the memory's own one-qubit map.
    rng = np.random.default_rng(13)
    g = rng.normal(size=(2, 2, 2)) + 1j * rng.normal(size=(2, 2, 2))
    qa, qb = (m @ m.conj().T / np.trace(m @ m.conj().T) for m in g)
    out = decohere_density_matrix(np.kron(qa, qb), 0.7, 1.3, mem, mem)
    expected = np.kron(mem.apply_to_qubit(qa, 0.7), mem.apply_to_qubit(qb, 1.3))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
