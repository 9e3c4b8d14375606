"""Numba kernels behind ``ldpc.py``: the tabulated check-node function and Bob's layered decoder.

Local computation of one party only; the protocol (who sends what) lives in ``ldpc.py``. The
decoder is layered sum-product in the ``phi(x) = -log tanh(x/2)`` form (Hocevar, IEEE SIPS
2004). Kernels are compiled with ``cache=True`` (the first use on a machine pays the compilation
once) and ``nogil=True`` so Alice's and Bob's threads can run concurrently.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

from qnetkit._types import BitArray

Int32Array = npt.NDArray[np.int32]
F32Array = npt.NDArray[np.float32]

# A decoding round counts as progressing while the number of checks whose incoming signs
# disagree with the syndrome keeps falling by at least 1 % (below threshold BP settles at a
# plateau; stopping there and revealing more costs less than iterating on).
STALL_PROGRESS = 0.99


# --- check-node function phi(x) = -log(tanh(x / 2)), tabulated --------------------------------

_PHI_STEP_INV = 128.0
_PHI_MAX = 24.0  # phi(24) = 7.6e-11: treated as 0
_FINE_STEP_INV = 8192.0
_FINE_MAX = 0.0625  # below this phi is steep (~ -log(x/2)): a finer table


def _phi_table(step_inv: float, upto: float, first: float) -> F32Array:
    x = np.arange(int(upto * step_inv) + 2, dtype=np.float64) / step_inv
    # phi(0) = inf: the first node stands for x = first, i.e. messages are capped at phi(first)
    # (~11.8 for the fine table): larger ones would only make the decoder overconfident.
    x[0] = first
    return np.asarray(-np.log(np.tanh(x / 2.0)), dtype=np.float32)


PHI_TABLE = _phi_table(_PHI_STEP_INV, _PHI_MAX, 1.0 / (4 * _PHI_STEP_INV))
PHI_FINE = _phi_table(_FINE_STEP_INV, _FINE_MAX, 1.0 / (8 * _FINE_STEP_INV))


_F32_PHI_MAX = np.float32(_PHI_MAX)
_F32_FINE_MAX = np.float32(_FINE_MAX)
_F32_STEP_INV = np.float32(_PHI_STEP_INV)
_F32_FINE_INV = np.float32(_FINE_STEP_INV)
_F32_ZERO = np.float32(0.0)


@nb.njit(cache=True, nogil=True, inline="always", fastmath=True)
def _phi(x: np.float32, table: F32Array, fine: F32Array) -> np.float32:
    """phi(x) for x >= 0 by linear interpolation (phi is its own inverse on (0, inf)).

    Everything stays in float32: mixing in float64 constants costs ~40 % of the decoder's time.
    """
    if x >= _F32_PHI_MAX:
        return _F32_ZERO
    if x < _F32_FINE_MAX:
        u = x * _F32_FINE_INV
        i = int(u)
        return np.float32(fine[i] + (u - np.float32(i)) * (fine[i + 1] - fine[i]))
    u = x * _F32_STEP_INV
    i = int(u)
    return np.float32(table[i] + (u - np.float32(i)) * (table[i + 1] - table[i]))


@nb.njit(cache=True, nogil=True, fastmath=True)
def layered_decode(
    indptr: Int32Array,
    indices: Int32Array,
    syndrome: BitArray,
    llr: F32Array,
    msg: F32Array,
    max_iter: int,
    stall: int,
    min_iter: int,
    table: F32Array,
    fine: F32Array,
) -> tuple[BitArray, bool, int]:
    """Layered sum-product syndrome decoding, resumable.

    ``llr`` holds the a-posteriori LLRs (start: channel LLRs) and ``msg`` the check-to-variable
    messages in CSR order (start: zeros); both are updated in place so a later call continues.
    The decision is ``e = (llr < 0)``. Stops when ``H e = syndrome`` (converged), after
    ``max_iter`` iterations, or when the number of checks whose incoming signs disagree with the
    syndrome has not fallen for ``stall`` iterations (0: never) and ``min_iter`` are done.
    """
    m = indptr.size - 1
    n = llr.size
    width = 0
    for c in range(m):
        width = max(width, indptr[c + 1] - indptr[c])
    ext = np.empty(width, np.float32)
    phis = np.empty(width, np.float32)
    hard = np.zeros(n, np.uint8)
    best = m + 1
    since = 0
    it = 0
    while it < max_iter:
        it += 1
        unsat = 0
        for c in range(m):
            a = indptr[c]
            deg = indptr[c + 1] - a
            sign = syndrome[c]
            total = _F32_ZERO
            tie = np.uint8(0)
            for k in range(deg):
                t = llr[indices[a + k]] - msg[a + k]
                ext[k] = t
                # Branch-free sign bookkeeping: the signs are random early on, so branches on
                # them mispredict half the time.
                sign ^= np.uint8(t < 0)
                p = _phi(abs(t), table, fine)
                if t == 0:
                    # A zero input (a punctured value before any message): as tanh(0) = 0 in
                    # exact BP, the check then sends exactly 0 to its other variables (phi >=
                    # _PHI_MAX does); the capped phi(0) would send them +-1e-5 with a sign set by
                    # the syndrome bit, breaking the symmetry that makes decoding independent of
                    # the punctured values.
                    p = _F32_PHI_MAX
                    tie = np.uint8(1)
                phis[k] = p
                total += p
            # A check with a zero input counts as unsatisfied whatever its syndrome bit (same
            # symmetry as above: the count must not depend on punctured values).
            unsat += sign | tie
            for k in range(deg):
                t = ext[k]
                mag = _phi(total - phis[k], table, fine)
                r = mag * np.float32(1 - 2 * (sign ^ np.uint8(t < 0)))
                msg[a + k] = r
                llr[indices[a + k]] = t + r
        # The sign count is a cheap proxy; the exact syndrome check runs when it is small.
        if unsat * 64 <= m:
            for v in range(n):
                hard[v] = 1 if llr[v] < 0 else 0
            bad = 0
            for c in range(m):
                acc = syndrome[c]
                for u in range(indptr[c], indptr[c + 1]):
                    acc ^= hard[indices[u]]
                bad += acc
            if bad == 0:
                return hard, True, it
        if unsat < best * STALL_PROGRESS:
            best = unsat
            since = 0
        else:
            since += 1
            if stall > 0 and since >= stall and it >= min_iter:
                break
    for v in range(n):
        hard[v] = 1 if llr[v] < 0 else 0
    return hard, False, it
