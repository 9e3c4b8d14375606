"""What a delivered Bell-diagonal pair is worth: QBER, CHSH value, teleportation, QKD key rate.

Convention (shared by ``qnetkit.entanglement``): coefficients ``(..., 4)`` are the weights
``[A, B, C, D]`` of ``|Phi+>, |Psi->, |Psi+>, |Phi->`` (Deutsch et al., PRL 77, 2818 (1996)
order); the target state is ``|Phi+>``. Every function is vectorised over the leading axes.

Derivations used below (Pauli correlations of the four Bell states, ``<s_i (x) s_i>``):

=========  =====  =====  =====
state       XX     YY     ZZ
=========  =====  =====  =====
Phi+        +1     -1     +1
Psi-        -1     -1     -1
Psi+        +1     +1     -1
Phi-        -1     +1     +1
=========  =====  =====  =====

* **QBER.** Measuring both qubits in Z, an error (outcomes differ, with ``|Phi+>`` as the
  reference) happens on the states with ``ZZ = -1``: ``Psi-`` and ``Psi+``, so
  ``Q_Z = B + C``. In X the anti-correlated states are ``Psi-`` and ``Phi-``, so
  ``Q_X = B + D``. (Check: a dephased ``|Phi+>`` is ``A |Phi+> + D |Phi->``: no Z errors, X
  errors ``D``, as phase noise should give.)
* **Correlation matrix.** A Bell-diagonal state is ``(I + sum_i t_i s_i (x) s_i) / 4`` with
  ``t_x = A - B + C - D``, ``t_y = -A - B + C + D``, ``t_z = A - B - C + D`` (the table's columns
  weighted by the coefficients); ``T = diag(t_x, t_y, t_z)``, so ``T^T T = diag(t_i^2)``.
  (Computed by ``qnetkit.entanglement.states.pauli_correlations``, validated by its
  ``check_bell_diagonal``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.entanglement.states import check_bell_diagonal, pauli_correlations
from qnetkit.errors import ParameterError
from qnetkit.keyrate.bbm92 import SIFTING as BBM92_SIFTING
from qnetkit.keyrate.common import binary_entropy
from qnetkit.keyrate.di_e91 import di_key_rate_from_chsh
from qnetkit.physics.validate import check_probability

PROTOCOLS: tuple[str, ...] = ("bbm92", "e91")

#: Best average fidelity of teleporting a qubit with classical means only (measure and prepare;
#: Massar & Popescu, PRL 74, 1259 (1995)). A resource state is useful only above it.
CLASSICAL_TELEPORTATION_FIDELITY = 2.0 / 3.0


def qber_from_bell_diagonal(coeffs: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Error rates ``(Q_Z, Q_X)`` of a Bell-diagonal pair measured in Z-Z and in X-X.

    ``Q_Z = B + C`` (the Psi components flip ZZ correlations), ``Q_X = B + D`` (Psi- and Phi-
    flip XX correlations); derivation in the module docstring. Werner(F) gives
    ``Q_Z = Q_X = 2 (1 - F) / 3``.
    """
    # Clipped: the validation lets rounding leave a coefficient at -1e-12.
    c = np.clip(check_bell_diagonal(coeffs), 0.0, 1.0)
    return np.asarray(c[..., 1] + c[..., 2]), np.asarray(c[..., 1] + c[..., 3])


def chsh_from_bell_diagonal(coeffs: npt.ArrayLike) -> FloatArray:
    """Largest CHSH value the state reaches with the best settings (Horodecki criterion).

    Horodecki, Horodecki, Horodecki, Phys. Lett. A 200, 340 (1995): ``S_max = 2 sqrt(M(rho))``
    with ``M`` the sum of the two largest eigenvalues of ``T^T T``; for a Bell-diagonal state
    those are the two largest ``t_i^2``. Werner(F): ``S = 2 sqrt(2) (4F - 1) / 3``.
    """
    t2 = np.sort(pauli_correlations(coeffs) ** 2, axis=-1)
    return np.asarray(2.0 * np.sqrt(t2[..., 1] + t2[..., 2]))


def teleportation_fidelity(coeffs: npt.ArrayLike) -> FloatArray:
    """Average fidelity of standard teleportation over the pair, best Pauli frame chosen.

    Horodecki, Horodecki, Horodecki, PRA 60, 1888 (1999), Eq. (15) for d = 2:
    ``f = (2 F + 1) / 3`` with ``F`` the fully entangled fraction; for a Bell-diagonal state
    ``F`` is its largest coefficient (a local Pauli turns any Bell state into ``|Phi+>``).
    Below ``F = 1/2`` this is under :data:`CLASSICAL_TELEPORTATION_FIDELITY` (2/3), which
    measure-and-prepare reaches without the pair; the value returned is that of the protocol
    using the pair, not the floor.
    """
    c = check_bell_diagonal(coeffs)
    return np.asarray((2.0 * np.max(c, axis=-1) + 1.0) / 3.0)


def bbm92_secret_fraction(
    qber_bit: npt.ArrayLike, qber_phase: npt.ArrayLike, *, ec_efficiency: float = 1.0
) -> FloatArray:
    """Asymptotic secret bits per sifted key bit of BBM92: ``1 - f h(e_bit) - h(e_phase)``.

    Shor & Preskill, PRL 85, 441 (2000) (the entanglement-based form of BBM92, Bennett,
    Brassard, Mermin, PRL 68, 557 (1992)); key from Z, phase error estimated by X. Not clipped
    (negative = no key). ``qnetkit.keyrate.bbm92.one_way_rate`` is the same formula for one
    basis-independent QBER (``e_bit = e_phase``) times the sifting and gain of its SPDC model;
    the two-QBER form is needed here because a dephased pair has ``Q_X != Q_Z``.
    """
    if not (math.isfinite(ec_efficiency) and ec_efficiency >= 1.0):
        raise ParameterError("ec_efficiency", ec_efficiency, "must be >= 1 (Shannon limit)")
    e_bit = np.asarray(qber_bit, dtype=np.float64)
    e_phase = np.asarray(qber_phase, dtype=np.float64)
    for name, e in (("qber_bit", e_bit), ("qber_phase", e_phase)):
        if not np.all((e >= 0.0) & (e <= 1.0)):  # NaN fails too
            raise ParameterError(name, float(np.asarray(e).flat[0]), "must be in [0, 1]")
    return np.asarray(1.0 - ec_efficiency * binary_entropy(e_bit) - binary_entropy(e_phase))


@dataclass(frozen=True)
class KeyRateFromPairs:
    """Key rate from a stream of delivered pairs.

    ``secret_fraction`` is secret bits per key-round pair, unclipped (negative: no key);
    ``secret_key_rate_bps`` = pairs_per_s x sifting_factor x max(secret_fraction, 0).
    ``qber`` is the key (Z) basis error, ``qber_x`` the X one, ``chsh`` the state's best S.
    """

    protocol: str
    secret_fraction: FloatArray
    secret_key_rate_bps: FloatArray
    qber: FloatArray
    qber_x: FloatArray
    chsh: FloatArray
    sifting_factor: float
    ec_efficiency: float


def entanglement_key_rate(
    pairs_per_s: npt.ArrayLike,
    coeffs: npt.ArrayLike,
    protocol: str = "bbm92",
    *,
    ec_efficiency: float = 1.0,
    sifting_factor: float = BBM92_SIFTING,
) -> KeyRateFromPairs:
    """Asymptotic secret-key rate (bit/s) of QKD run on delivered Bell-diagonal pairs.

    ``"bbm92"``: :func:`bbm92_secret_fraction` with ``e_bit = Q_Z``, ``e_phase = Q_X``.
    ``"e91"``: device-independent, collective attacks, Acin et al., PRL 98, 230501 (2007):
    ``1 - f h(Q_Z) - h((1 + sqrt((S/2)^2 - 1))/2)``, evaluated by
    ``qnetkit.keyrate.di_e91.di_key_rate_from_chsh`` with ``S`` = :func:`chsh_from_bell_diagonal`
    (the settings are assumed tuned to the delivered state; no key for ``S <= 2``).
    ``sifting_factor`` is the share of pairs measured in the key setting pair (1/2 for random
    basis choice, as in ``qnetkit.keyrate.bbm92``; near 1 with biased choices).
    ``ec_efficiency`` defaults to 1, the papers' Shannon-limit formulas.
    Infinitely many pairs (no finite-key correction).
    """
    if protocol not in PROTOCOLS:
        raise ParameterError("protocol", protocol, f"must be one of {', '.join(PROTOCOLS)}")
    check_probability("sifting_factor", sifting_factor)
    rate = np.asarray(pairs_per_s, dtype=np.float64)
    if not np.all(np.isfinite(rate) & (rate >= 0.0)):
        raise ParameterError("pairs_per_s", pairs_per_s, "must be finite and >= 0")
    q_z, q_x = qber_from_bell_diagonal(coeffs)
    chsh = chsh_from_bell_diagonal(coeffs)
    if protocol == "bbm92":
        fraction = bbm92_secret_fraction(q_z, q_x, ec_efficiency=ec_efficiency)
    else:
        fraction = di_key_rate_from_chsh(chsh, q_z, ec_efficiency=ec_efficiency).reshape(
            np.shape(chsh)
        )
    key = rate * sifting_factor * np.maximum(fraction, 0.0)
    return KeyRateFromPairs(
        protocol=protocol,
        secret_fraction=np.asarray(fraction),
        secret_key_rate_bps=np.asarray(key),
        qber=q_z,
        qber_x=q_x,
        chsh=chsh,
        sifting_factor=sifting_factor,
        ec_efficiency=ec_efficiency,
    )
