"""Two-qubit entangled states: the Bell-diagonal fast path and 4x4 density matrices.

Convention (used by every module of :mod:`qnetkit.entanglement`): a Bell-diagonal state is an
array of shape ``(..., 4)`` holding ``[A, B, C, D]``, the weights of
``|Phi+>, |Psi->, |Psi+>, |Phi->`` in that order, the order of Deutsch et al., "Quantum privacy
amplification and the security of quantum cryptography over noisy channels", PRL 77, 2818
(1996), where the DEJMPS map is written ``A' = (A^2 + B^2)/N`` etc. The fidelity to ``|Phi+>`` is
``A``. A Werner state of fidelity F is ``[F, (1-F)/3, (1-F)/3, (1-F)/3]`` (Werner, PRA 40, 4277
(1989), written as in Bennett et al., PRL 76, 722 (1996)).

Each Bell state is a Pauli applied to Bob's half of ``|Phi+>``: ``Phi+ = I``, ``Psi+ = X``,
``Phi- = Z``, ``Psi- = XZ`` (``~ Y``). :data:`PAULI_BITS` gives the two bits ``(x, z)`` of each
index; swapping and purification are XOR maps on these bits (see :mod:`.operations`).

Density matrices are in the computational basis ``|00>, |01>, |10>, |11>`` (first qubit most
significant); :func:`bell_diagonal_part` is the Bell-diagonal twirl (Bennett et al. 1996,
Sec. III: random bilateral rotations keep only the Bell-diagonal elements).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError

#: Tolerance below zero a coefficient may have (rounding in a product of maps).
COEFF_NEGATIVE_TOL = 1e-12
#: Tolerance on the sum of the four coefficients.
COEFF_SUM_TOL = 1e-9
#: Index of each Bell state in a coefficient array.
PHI_PLUS, PSI_MINUS, PSI_PLUS, PHI_MINUS = 0, 1, 2, 3

_S = 1.0 / np.sqrt(2.0)
#: Rows: |Phi+>, |Psi->, |Psi+>, |Phi-> as vectors over |00>, |01>, |10>, |11>.
BELL_STATES: npt.NDArray[np.complex128] = np.array(
    [
        [_S, 0.0, 0.0, _S],
        [0.0, _S, -_S, 0.0],
        [0.0, _S, _S, 0.0],
        [_S, 0.0, 0.0, -_S],
    ],
    dtype=np.complex128,
)
#: Rows (1, <XX>, <YY>, <ZZ>) of each Bell state (columns A, B, C, D): ``corr = c @ CORRELATION.T``.
#: Its rows are orthogonal with norm^2 4, so ``c = corr @ CORRELATION / 4``. It is the
#: Walsh-Hadamard transform on the (x, z) bits: XOR convolutions become products.
CORRELATION: FloatArray = np.array(
    [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [-1.0, -1.0, 1.0, 1.0], [1.0, -1.0, -1.0, 1.0]]
)
#: (x, z) bits of the Pauli on Bob's qubit that makes each Bell state from |Phi+> (A, B, C, D).
PAULI_BITS: npt.NDArray[np.int64] = np.array([[0, 0], [1, 1], [1, 0], [0, 1]], dtype=np.int64)


def check_bell_diagonal(coeffs: npt.ArrayLike, name: str = "coeffs") -> FloatArray:
    """Validate Bell-diagonal coefficients and return them as a float64 array ``(..., 4)``.

    ParameterError (naming ``name`` and the offending value) when the last axis is not 4, a
    coefficient is NaN, below ``-1e-12`` or above ``1 + 1e-12``, or a row does not sum to 1
    within 1e-9.
    """
    arr = np.asarray(coeffs, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 4:
        raise ParameterError(
            name, arr.shape, "must have shape (..., 4): weights of Phi+, Psi-, Psi+, Phi-"
        )
    if arr.size == 0:
        return arr
    # min/max first (no temporaries, fast on 1e6 pairs); NaN fails both comparisons
    if not (arr.min() >= -COEFF_NEGATIVE_TOL and arr.max() <= 1.0 + COEFF_NEGATIVE_TOL):
        bad = ~((arr >= -COEFF_NEGATIVE_TOL) & (arr <= 1.0 + COEFF_NEGATIVE_TOL))
        raise ParameterError(name, float(arr[bad].flat[0]), "coefficients must be in [0, 1]")
    total = arr @ np.ones(4)
    off = np.abs(total - 1.0) > COEFF_SUM_TOL
    if np.any(off):
        raise ParameterError(
            name,
            float(np.asarray(total)[off].flat[0]),
            "coefficients must sum to 1 (the sum is shown)",
        )
    return arr


def werner(fidelity: npt.ArrayLike) -> FloatArray:
    """Werner state ``[F, (1-F)/3, (1-F)/3, (1-F)/3]`` (shape ``F.shape + (4,)``).

    ParameterError for F outside [0.25, 1]: below 1/4 the formula is not a Werner state of
    that fidelity (Werner states have F >= 1/4; Bennett et al. 1996).
    """
    f = np.asarray(fidelity, dtype=np.float64)
    bad = ~((f >= 0.25 - COEFF_NEGATIVE_TOL) & (f <= 1.0 + COEFF_NEGATIVE_TOL))
    if np.any(bad):
        raise ParameterError(
            "fidelity", float(f[bad].flat[0]), "a Werner state needs fidelity in [0.25, 1]"
        )
    f = np.clip(f, 0.25, 1.0)
    rest = (1.0 - f) / 3.0
    return np.stack([f, rest, rest, rest], axis=-1)


def fidelity(coeffs: npt.ArrayLike) -> FloatArray:
    """Fidelity to ``|Phi+>``: the first coefficient ``A`` (validated)."""
    return np.asarray(check_bell_diagonal(coeffs)[..., PHI_PLUS])


def to_density_matrix(coeffs: npt.ArrayLike) -> npt.NDArray[np.complex128]:
    """Density matrix ``sum_k c_k |beta_k><beta_k|``, computational basis, shape ``(..., 4, 4)``."""
    c = check_bell_diagonal(coeffs)
    projectors = np.einsum("ki,kj->kij", BELL_STATES, BELL_STATES.conj())
    return np.asarray(np.einsum("...k,kij->...ij", c.astype(np.complex128), projectors))


def bell_diagonal_part(rho: npt.ArrayLike) -> FloatArray:
    """Bell-diagonal twirl of a two-qubit density matrix ``(..., 4, 4)``: ``<beta_k|rho|beta_k>``.

    The twirl (bilateral random Pauli rotations, Bennett et al. 1996) leaves exactly these four
    diagonal elements; the imaginary parts, zero for a Hermitian rho, are dropped.
    """
    r = np.asarray(rho, dtype=np.complex128)
    if r.ndim < 2 or r.shape[-2:] != (4, 4):
        raise ParameterError("rho", r.shape, "must have shape (..., 4, 4)")
    diag = np.einsum("ki,...ij,kj->...k", BELL_STATES.conj(), r, BELL_STATES)
    return np.asarray(diag.real, dtype=np.float64)


def pauli_correlations(coeffs: npt.ArrayLike) -> FloatArray:
    """Correlations ``(<XX>, <YY>, <ZZ>)`` of a Bell-diagonal state, shape ``(..., 3)``.

    Phi+ has (1, -1, 1), Psi- (-1, -1, -1), Psi+ (1, 1, -1), Phi- (-1, 1, 1); a Bell-diagonal
    state is ``(I + sum_j t_j s_j s_j) / 4`` (Horodecki & Horodecki, PRA 54, 1838 (1996)).
    """
    return np.asarray(check_bell_diagonal(coeffs) @ CORRELATION[1:].T)


def from_pauli_correlations(t: npt.ArrayLike) -> FloatArray:
    """Inverse of :func:`pauli_correlations` (no validation: the caller's map keeps it physical)."""
    tt = np.asarray(t, dtype=np.float64)
    return np.asarray(0.25 + tt @ CORRELATION[1:] / 4.0)


__all__ = [
    "BELL_STATES",
    "CORRELATION",
    "PAULI_BITS",
    "PHI_MINUS",
    "PHI_PLUS",
    "PSI_MINUS",
    "PSI_PLUS",
    "bell_diagonal_part",
    "check_bell_diagonal",
    "fidelity",
    "from_pauli_correlations",
    "pauli_correlations",
    "to_density_matrix",
    "werner",
]
