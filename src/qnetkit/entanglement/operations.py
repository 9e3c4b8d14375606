"""Operations on entangled pairs: swapping, purification (BBPSSW, DEJMPS), memory decoherence.

All functions take Bell-diagonal coefficients ``(..., 4)`` in the order of
:mod:`qnetkit.entanglement.states` (``[A, B, C, D]`` = ``Phi+, Psi-, Psi+, Phi-``) and broadcast
over the leading axes; everything is float64.

* :func:`swap`: Bell measurement on the two middle qubits and the Pauli correction at one end.
  Each Bell state is a Pauli ``(x, z)`` on ``|Phi+>``, the Paulis compose, so the output weights
  are the XOR convolution of the inputs over the two bits. For Werner inputs this is
  ``F' = F1 F2 + (1-F1)(1-F2)/3`` (Duer, Briegel, Cirac & Zoller, PRA 59, 169 (1999), Sec. IV);
  with Werner parameters ``w = (4F-1)/3`` it is ``w' = w1 w2``. Noise: the two-qubit gate of the
  Bell measurement depolarises with probability ``p`` (``out -> (1-p) out + p/4``, the output of a
  measurement on maximally mixed qubits), and each of the two outcome bits is wrong with
  probability ``e``, which applies the wrong correction (an extra X or Z on the output).
* :func:`bbpssw`: Bennett, Brassard, Popescu, Schumacher, Smolin & Wootters, PRL 76, 722 (1996):
  twirl to Werner, bilateral CNOT, measure the target in Z, keep on equal outcomes, twirl.
* :func:`dejmps`: Deutsch, Ekert, Jozsa, Macchiavello, Popescu & Sanpera, PRL 77, 2818 (1996),
  the exact map on Bell-diagonal states (no twirl): ``N = (A1+B1)(A2+B2) + (C1+D1)(C2+D2)``,
  ``A' = (A1A2 + B1B2)/N``, ``B' = (C1D2 + D1C2)/N``, ``C' = (C1C2 + D1D2)/N``,
  ``D' = (A1B2 + B1A2)/N`` (the paper's equal-input form is ``A' = (A^2+B^2)/N``, ``B' = 2CD/N``,
  ``C' = (C^2+D^2)/N``, ``D' = 2AB/N``, ``N = (A+B)^2 + (C+D)^2``).
* :func:`decohere`, :func:`decohere_pair`: storage in memory. Each qubit undergoes the standard
  T1/T2 channel (Nielsen & Chuang, Sec. 8.3.5-8.4: populations relax to |0> as ``exp(-t/T1)``,
  coherences decay as ``exp(-t/T2)``), plus, if the memory has ``depolarizing_time_s``, a
  depolarising rate acting at the same time. On a Bell-diagonal state pure dephasing is exact
  (a Z on either qubit maps ``Phi+ <-> Phi-``, ``Psi+ <-> Psi-`` with probability
  ``(1 - exp(-t/T2))/2``; a Phi+ pair with both qubits stored t has ``F = (1 + exp(-2t/T2))/2``).
  Amplitude damping does not keep a state Bell-diagonal: the result is the density matrix after
  the channel, then twirled (its Bell-diagonal part). It is computed in closed form on the Pauli
  correlations ``(<XX>, <YY>, <ZZ>)``, which equals the 4x4 Kraus computation (tested to 1e-12).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.entanglement.states import CORRELATION, check_bell_diagonal
from qnetkit.errors import ParameterError

if TYPE_CHECKING:
    from qnetkit.physics.memory import QuantumMemory

# Pauli matrices, index 0..3 = I, X, Y, Z (the basis of the Pauli transfer matrices below).
_PAULIS: npt.NDArray[np.complex128] = np.array(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]],
    dtype=np.complex128,
)
# Two-qubit Pauli products s_i (x) s_j, shape (4, 4, 4, 4): [i, j] -> 4x4 matrix.
_PAULI2: npt.NDArray[np.complex128] = np.einsum("iab,jcd->ijacbd", _PAULIS, _PAULIS).reshape(
    4, 4, 4, 4
)


def _probability(name: str, value: float) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:  # also rejects NaN
        raise ParameterError(name, value, "must be a probability in [0, 1]")
    return v


def pauli_flip(coeffs: FloatArray, px: float, pz: float) -> FloatArray:
    """Independent X (prob ``px``) and Z (prob ``pz``) on one qubit of a Bell-diagonal pair.

    X maps ``Phi+ <-> Psi+`` and ``Phi- <-> Psi-`` (A <-> C, B <-> D); Z maps ``Phi+ <-> Phi-``
    and ``Psi+ <-> Psi-`` (A <-> D, B <-> C).
    """
    c = coeffs
    if px:
        c = (1.0 - px) * c + px * c[..., [2, 3, 0, 1]]
    if pz:
        c = (1.0 - pz) * c + pz * c[..., [3, 2, 1, 0]]
    return np.asarray(c)


def swap(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    gate_depolarizing: float = 0.0,
    measurement_error: float = 0.0,
) -> FloatArray:
    """Entanglement swapping of pair ``a`` (nodes 1-2) and pair ``b`` (nodes 2-3) -> pair 1-3.

    Exact on Bell-diagonal inputs (module docstring): XOR convolution of the weights, each outcome
    bit wrong with probability ``measurement_error`` (wrong X or Z correction), then
    ``(1 - gate_depolarizing) out + gate_depolarizing / 4``. The success probability of the
    Bell measurement (1/2 for linear optics) is a property of the chain, not of the state.
    """
    ca = check_bell_diagonal(a, "a")
    cb = check_bell_diagonal(b, "b")
    p = _probability("gate_depolarizing", gate_depolarizing)
    e = _probability("measurement_error", measurement_error)
    # In the correlation basis (1, <XX>, -<YY>, <ZZ>) (the Walsh-Hadamard transform on the
    # (x, z) bits; Phi+ has <YY> = -1) the XOR convolution is a product, so
    # t'_xx = t1_xx t2_xx, t'_yy = -t1_yy t2_yy, t'_zz = t1_zz t2_zz. Depolarising scales every
    # correlation by 1 - p; a wrong x bit (extra X) flips <YY>, <ZZ>, a wrong z bit (extra Z)
    # flips <XX>, <YY>. Two small matmuls instead of sixteen strided products (faster on 1e6).
    keep = 1.0 - p
    flip = 1.0 - 2.0 * e
    scale = np.array([1.0, keep * flip, -keep * flip * flip, keep * flip])
    corr = (ca @ CORRELATION.T) * (cb @ CORRELATION.T)  # broadcasts the leading axes
    corr *= scale  # in place from here: fewer 1e6-row temporaries
    out = corr @ CORRELATION
    out *= 0.25
    return np.asarray(out)


def bbpssw(a: npt.ArrayLike, b: npt.ArrayLike | None = None) -> tuple[FloatArray, FloatArray]:
    """BBPSSW recurrence (Bennett et al., PRL 76, 722 (1996)): ``(p, Werner(F'))``.

    Both pairs are twirled to Werner states of their fidelities ``F1 = A1``, ``F2 = A2`` (``b``
    defaults to ``a``). With ``G = (1-F)/3``:
    ``p = F1F2 + F1 G2 + G1 F2 + 5 G1 G2`` and ``F' = (F1F2 + G1 G2) / p``; for equal inputs
    ``F' = (F^2 + G^2) / (F^2 + 2FG + 5G^2)``. The output is twirled back to a Werner state.
    """
    f1 = check_bell_diagonal(a, "a")[..., 0]
    f2 = f1 if b is None else check_bell_diagonal(b, "b")[..., 0]
    g1, g2 = (1.0 - f1) / 3.0, (1.0 - f2) / 3.0
    prob = f1 * f2 + f1 * g2 + g1 * f2 + 5.0 * g1 * g2
    f_out = np.clip((f1 * f2 + g1 * g2) / prob, 0.25, 1.0)
    rest = (1.0 - f_out) / 3.0
    return np.asarray(prob), np.stack([f_out, rest, rest, rest], axis=-1)


def dejmps(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """DEJMPS recurrence (Deutsch et al., PRL 77, 2818 (1996)): ``(N, [A', B', C', D'])``.

    Alice rotates her qubits by ``Rx(pi/2)``, Bob by ``Rx(-pi/2)`` (this exchanges the weights
    of ``Psi-`` and ``Phi-``), both apply a CNOT from pair 1 to pair 2, measure pair 2 in Z and
    keep pair 1 on equal outcomes. Exact map on Bell-diagonal inputs, no twirl (module docstring).
    """
    ca = check_bell_diagonal(a, "a")
    cb = check_bell_diagonal(b, "b")
    a1, b1, c1, d1 = ca[..., 0], ca[..., 1], ca[..., 2], ca[..., 3]
    a2, b2, c2, d2 = cb[..., 0], cb[..., 1], cb[..., 2], cb[..., 3]
    norm = (a1 + b1) * (a2 + b2) + (c1 + d1) * (c2 + d2)
    out = (
        np.stack(
            [a1 * a2 + b1 * b2, c1 * d2 + d1 * c2, c1 * c2 + d1 * d2, a1 * b2 + b1 * a2], axis=-1
        )
        / norm[..., None]
    )
    return np.asarray(norm), np.asarray(out)


def memory_bloch_factors(
    t_s: npt.ArrayLike, memory: QuantumMemory
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One stored qubit's channel as Bloch-vector factors ``(coherence, decay, shift)``.

    ``x, y -> coherence * (x, y)``; ``z -> shift + decay * z`` (z = +1 is |0>, the state T1
    relaxes to). From the Bloch equations with amplitude damping rate ``1/T1``, total coherence
    rate ``1/T2`` (Nielsen & Chuang Sec. 8.4.1: ``T2 <= 2 T1``; a larger T2, e.g. the default
    infinity with a finite T1, is read as no pure dephasing beyond T1's own, ``T2 = 2 T1``) and a
    depolarising rate ``1/T_dep`` (``memory.depolarizing_time_s`` if the memory has one):
    ``coherence = exp(-t (max(1/T2, 1/(2 T1)) + 1/T_dep))``, ``decay = exp(-t (1/T1 + 1/T_dep))``,
    ``shift = (1/T1) / (1/T1 + 1/T_dep) * (1 - decay)``.
    """
    t = np.asarray(t_s, dtype=np.float64)
    bad = ~(t >= 0.0)  # also NaN; an infinite time is allowed (the limits are well defined)
    if np.any(bad):
        raise ParameterError("t_s", float(t[bad].flat[0]), "storage time must be >= 0")
    rates = {}
    for field in ("t1_s", "t2_s", "depolarizing_time_s"):
        value = float(getattr(memory, field, np.inf))
        if not value > 0.0:  # also NaN
            raise ParameterError(f"memory.{field}", value, "must be > 0 (inf: no such decay)")
        rates[field] = 1.0 / value
    r1, r2, rd = rates["t1_s"], rates["t2_s"], rates["depolarizing_time_s"]

    def decay_at(rate: float) -> FloatArray:
        # a zero rate gives exactly 1, also at t = inf (where t * 0 would be NaN)
        return np.ones_like(t) if rate == 0.0 else np.asarray(np.exp(-t * rate))

    coherence = decay_at(max(r2, r1 / 2.0) + rd)
    decay = decay_at(r1 + rd)
    shift = (r1 / (r1 + rd) if r1 > 0.0 else 0.0) * (1.0 - decay)
    return np.asarray(coherence), np.asarray(decay), np.asarray(shift)


def decohere_pair(
    coeffs: npt.ArrayLike,
    t_a_s: npt.ArrayLike,
    t_b_s: npt.ArrayLike,
    memory_a: QuantumMemory,
    memory_b: QuantumMemory,
) -> FloatArray:
    """Bell-diagonal state after qubit A is stored ``t_a_s`` in ``memory_a``, B ``t_b_s`` in B's.

    Local channels act on the Pauli correlations as ``T' = R_A T R_B^T`` (Pauli transfer
    matrices); the twirl keeps ``<XX>, <YY>, <ZZ>``:
    ``t'_xx = cA cB t_xx``, ``t'_yy = cA cB t_yy``, ``t'_zz = sA sB + dA dB t_zz`` with
    ``(c, d, s)`` from :func:`memory_bloch_factors`. Exact for dephasing; for amplitude damping
    it is the twirled (Bell-diagonal) part of the 4x4 state after the Kraus channel.
    """
    corr = check_bell_diagonal(coeffs) @ CORRELATION.T  # (1, <XX>, <YY>, <ZZ>)
    ca, da, sa = memory_bloch_factors(t_a_s, memory_a)
    cb, db, sb = memory_bloch_factors(t_b_s, memory_b)
    one, coh, dec, shift = np.broadcast_arrays(1.0, ca * cb, da * db, sa * sb)
    zero = np.zeros_like(one)
    scale = np.stack([one, coh, coh, dec], axis=-1)
    offset = np.stack([zero, zero, zero, shift], axis=-1)
    return np.asarray((corr * scale + offset) @ CORRELATION / 4.0)


def decohere(coeffs: npt.ArrayLike, t_s: npt.ArrayLike, memory: QuantumMemory) -> FloatArray:
    """Both qubits stored ``t_s`` each in ``memory`` (:func:`decohere_pair`, equal arguments)."""
    return decohere_pair(coeffs, t_s, t_s, memory, memory)


def decohere_density_matrix(
    rho: npt.ArrayLike,
    t_a_s: npt.ArrayLike,
    t_b_s: npt.ArrayLike,
    memory_a: QuantumMemory,
    memory_b: QuantumMemory,
) -> npt.NDArray[np.complex128]:
    """The same storage channel on a general 4x4 density matrix ``(..., 4, 4)`` (no twirl).

    ``rho = (1/4) sum_ij T_ij s_i (x) s_j`` with ``T_ij = Tr(rho s_i (x) s_j)``; each qubit's
    channel is its Pauli transfer matrix R (rows/columns I, X, Y, Z; from
    :func:`memory_bloch_factors`), and ``T' = R_A T R_B^T``.
    """
    r = np.asarray(rho, dtype=np.complex128)
    if r.ndim < 2 or r.shape[-2:] != (4, 4):
        raise ParameterError("rho", r.shape, "must have shape (..., 4, 4)")
    corr = np.einsum("ijab,...ba->...ij", _PAULI2, r)
    r_a = _transfer_matrix(*memory_bloch_factors(t_a_s, memory_a))
    r_b = _transfer_matrix(*memory_bloch_factors(t_b_s, memory_b))
    corr_out = np.einsum("...ik,...kl,...jl->...ij", r_a, corr, r_b)
    return np.asarray(np.einsum("...ij,ijab->...ab", corr_out, _PAULI2) / 4.0)


def _transfer_matrix(
    coherence: FloatArray, decay: FloatArray, shift: FloatArray
) -> npt.NDArray[np.complex128]:
    shape = np.broadcast(coherence, decay, shift).shape
    m = np.zeros((*shape, 4, 4), dtype=np.complex128)
    m[..., 0, 0] = 1.0
    m[..., 1, 1] = coherence
    m[..., 2, 2] = coherence
    m[..., 3, 3] = decay
    m[..., 3, 0] = shift
    return m


__all__ = [
    "bbpssw",
    "decohere",
    "decohere_density_matrix",
    "decohere_pair",
    "dejmps",
    "memory_bloch_factors",
    "pauli_flip",
    "swap",
]
