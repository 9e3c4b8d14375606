"""Quantum memories: retrieval efficiency, T1/T2 decoherence, depolarising, storage limit.

A stored qubit (basis |0>, |1>; |1> is the excited level that relaxes to |0>) evolves under the
standard continuous-time channels, all acting at the same time (one Lindblad generator):

* amplitude damping with time constant ``t1_s``: the |1> population decays as ``exp(-t/T1)``,
  ``gamma(t) = 1 - exp(-t/T1)`` (Nielsen & Chuang, *Quantum Computation and Quantum
  Information*, Sec. 8.3.5, Kraus operators ``[[1, 0], [0, sqrt(1-gamma)]]`` and
  ``[[0, sqrt(gamma)], [0, 0]]``);
* coherence (transverse) decay with time constant ``t2_s``: off-diagonal elements decay as
  ``exp(-t/T2)`` in total (Nielsen & Chuang Sec. 8.4.1, with ``T2 <= 2 T1``). Amplitude damping
  alone already gives ``exp(-t/(2 T1))``, so the pure-dephasing part is the rate
  ``1/T2 - 1/(2 T1)``; a ``t2_s`` above ``2 t1_s`` (for instance the default infinity with a
  finite ``t1_s``) means no pure dephasing beyond T1's own;
* optionally depolarising with time constant ``depolarizing_time_s``: the Bloch vector shrinks
  as ``exp(-t/T_dep)`` towards the maximally mixed state (the "coherence time" model of
  memories in many repeater studies, a single time constant for all errors).

Phase-flip convention: a dephasing channel ``rho -> p rho + (1 - p) Z rho Z`` multiplies the
coherences by ``2p - 1``; :meth:`QuantumMemory.dephasing_keep_prob` is the ``p`` that gives the
factor ``exp(-t/T2)``, ``p = (1 + exp(-t/T2)) / 2`` (the probability that no phase flip
occurred). It is the whole channel when ``t1_s`` is infinite; with a finite ``t1_s`` the
memory's channel is amplitude damping plus the pure dephasing of
:meth:`QuantumMemory.pure_dephasing_keep_prob` (same total coherence decay). This is the
convention of ``qnetkit.entanglement.operations``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qnetkit._types import FloatArray
from qnetkit.errors import ParameterError
from qnetkit.physics.validate import check_probability

__all__ = ["QuantumMemory", "check_storage_times"]


def _check_time_constant(name: str, value: float) -> None:
    """A decay time: a number > 0, +inf meaning "no such decay"."""
    if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0.0):
        raise ParameterError(name, value, "must be > 0 seconds (inf: no such decay)")


def check_storage_times(t_s: npt.ArrayLike, name: str = "t_s") -> FloatArray:
    """``t_s`` as a float64 array; ParameterError for NaN or negative storage times.

    Infinity is allowed (the channels have well-defined limits there).
    """
    try:
        t = np.asarray(t_s, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, t_s, "must be a number or an array of numbers") from exc
    bad = ~(t >= 0.0)  # also NaN
    if np.any(bad):
        raise ParameterError(name, float(t[bad].flat[0]), "storage time must be >= 0 seconds")
    return t


def _exp_decay(t: FloatArray, time_constant_s: float) -> FloatArray:
    """``exp(-t / T)`` with ``T = inf`` giving exactly 1 (also for ``t = inf``)."""
    if math.isinf(time_constant_s):
        return np.ones_like(t)
    return np.asarray(np.exp(-t / time_constant_s))


def _as_output(values: FloatArray) -> float | FloatArray:
    return float(values) if values.ndim == 0 else values


@dataclass(frozen=True)
class QuantumMemory:
    """A quantum memory holding one qubit.

    ``efficiency``: probability that a stored excitation is retrieved (or, for an emitter,
    that its photon is emitted into the collected mode); ``t1_s``: amplitude damping time;
    ``t2_s``: total coherence time (``<= 2 t1_s`` physically; larger values are read as
    ``2 t1_s``); ``depolarizing_time_s``: optional depolarising time constant;
    ``max_storage_s``: hard limit after which the qubit is discarded (a cut-off the hardware
    imposes, e.g. a re-initialisation schedule). Times are seconds; ``inf`` means none.
    """

    efficiency: float = 1.0
    t1_s: float = math.inf
    t2_s: float = math.inf
    max_storage_s: float = math.inf
    depolarizing_time_s: float = math.inf

    def __post_init__(self) -> None:
        check_probability("efficiency", self.efficiency)
        _check_time_constant("t1_s", self.t1_s)
        _check_time_constant("t2_s", self.t2_s)
        _check_time_constant("max_storage_s", self.max_storage_s)
        _check_time_constant("depolarizing_time_s", self.depolarizing_time_s)

    @classmethod
    def depolarizing(
        cls, coherence_time_s: float, efficiency: float = 1.0, max_storage_s: float = math.inf
    ) -> QuantumMemory:
        """A memory whose only decoherence is depolarising with ``coherence_time_s``."""
        return cls(
            efficiency=efficiency,
            max_storage_s=max_storage_s,
            depolarizing_time_s=coherence_time_s,
        )

    # -- channel parameters -------------------------------------------------------------------

    def damping_gamma(self, t_s: npt.ArrayLike) -> float | FloatArray:
        """Amplitude-damping parameter after ``t_s``: ``gamma = 1 - exp(-t/T1)``."""
        t = check_storage_times(t_s)
        return _as_output(np.asarray(1.0 - _exp_decay(t, self.t1_s)))

    def dephasing_keep_prob(self, t_s: npt.ArrayLike) -> float | FloatArray:
        """Probability of no phase flip after ``t_s``: ``(1 + exp(-t/T2)) / 2``.

        The phase-flip channel whose coherence factor is the memory's total ``exp(-t/T2)``.
        """
        t = check_storage_times(t_s)
        return _as_output(np.asarray(0.5 * (1.0 + _exp_decay(t, self.t2_s))))

    @property
    def pure_dephasing_rate_per_s(self) -> float:
        """``max(0, 1/T2 - 1/(2 T1))``: the dephasing rate beyond amplitude damping's own."""
        return max(0.0, 1.0 / self.t2_s - 0.5 / self.t1_s)

    def pure_dephasing_keep_prob(self, t_s: npt.ArrayLike) -> float | FloatArray:
        """No-flip probability of the pure-dephasing part: ``(1 + exp(-t r_phi)) / 2``.

        Applied together with :meth:`damping_gamma` it gives the coherence factor
        ``exp(-t/T2)`` (for ``T2 <= 2 T1``).
        """
        t = check_storage_times(t_s)
        rate = self.pure_dephasing_rate_per_s
        factor = np.ones_like(t) if rate == 0.0 else np.exp(-t * rate)
        return _as_output(np.asarray(0.5 * (1.0 + factor)))

    def depolarizing_keep_prob(self, t_s: npt.ArrayLike) -> float | FloatArray:
        """Weight ``p`` of ``rho -> p rho + (1 - p) I/2`` after ``t_s``: ``exp(-t/T_dep)``."""
        t = check_storage_times(t_s)
        return _as_output(_exp_decay(t, self.depolarizing_time_s))

    def bloch_factors(self, t_s: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The stored qubit's channel on the Bloch vector: ``(coherence, decay, shift)``.

        ``x, y -> coherence * (x, y)``, ``z -> shift + decay * z`` (``z = +1`` is |0>). Exact
        solution of the Bloch equations with all rates acting together:
        ``coherence = exp(-t (1/T2' + 1/T_dep))`` with ``1/T2' = max(1/T2, 1/(2 T1))``,
        ``decay = exp(-t (1/T1 + 1/T_dep))``,
        ``shift = (1/T1) / (1/T1 + 1/T_dep) * (1 - decay)``.
        """
        t = check_storage_times(t_s)
        r1 = 1.0 / self.t1_s
        rd = 1.0 / self.depolarizing_time_s
        rc = max(1.0 / self.t2_s, 0.5 * r1) + rd
        coherence = np.ones_like(t) if rc == 0.0 else np.exp(-t * rc)
        decay = np.ones_like(t) if r1 + rd == 0.0 else np.exp(-t * (r1 + rd))
        shift = (r1 / (r1 + rd) if r1 > 0.0 else 0.0) * (1.0 - decay)
        return np.asarray(coherence), np.asarray(decay), np.asarray(shift)

    def apply_to_qubit(self, rho: npt.ArrayLike, t_s: npt.ArrayLike) -> npt.NDArray[np.complex128]:
        """Density matrix (``(..., 2, 2)``) of a qubit stored for ``t_s`` (broadcast)."""
        r = np.asarray(rho, dtype=np.complex128)
        if r.shape[-2:] != (2, 2):
            raise ParameterError("rho", r.shape, "must have shape (..., 2, 2)")
        c, d, s = self.bloch_factors(t_s)
        x = 2.0 * r[..., 0, 1].real
        y = -2.0 * r[..., 0, 1].imag
        z = (r[..., 0, 0] - r[..., 1, 1]).real
        trace = (r[..., 0, 0] + r[..., 1, 1]).real
        x, y, z, trace, c, d, s = np.broadcast_arrays(x, y, z, trace, c, d, s)
        # shift scales with the trace so that unnormalised inputs stay linear maps
        x2, y2, z2 = c * x, c * y, s * trace + d * z
        out = np.empty((*x2.shape, 2, 2), dtype=np.complex128)
        out[..., 0, 0] = 0.5 * (trace + z2)
        out[..., 1, 1] = 0.5 * (trace - z2)
        out[..., 0, 1] = 0.5 * (x2 - 1j * y2)
        out[..., 1, 0] = 0.5 * (x2 + 1j * y2)
        return out

    # -- storage ------------------------------------------------------------------------------

    def can_store(self, t_s: npt.ArrayLike) -> bool | npt.NDArray[np.bool_]:
        """Whether a qubit stored ``t_s`` is still held (``t_s <= max_storage_s``)."""
        t = check_storage_times(t_s)
        held = np.asarray(t <= self.max_storage_s)
        return bool(held) if held.ndim == 0 else held

    def stored_fidelity(self, t_s: npt.ArrayLike) -> float | FloatArray:
        """Fidelity of a stored ``|+>`` with itself after ``t_s``: ``(1 + coherence) / 2``.

        A quick figure of merit (the fidelity of an equator state; T1's population shift does
        not change it).
        """
        c, _, _ = self.bloch_factors(t_s)
        return _as_output(np.asarray(0.5 * (1.0 + c)))
