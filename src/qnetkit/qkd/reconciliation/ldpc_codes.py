"""Irregular LDPC parity-check matrices for syndrome reconciliation over the BSC.

Degree distributions (edge perspective, lambda(x) = sum_i lambda_i x^(i-1), likewise rho) come
from two published families optimised with density evolution for the binary symmetric channel:

* Elkouss, Leverrier, Alleaume, Boutros, "Efficient reconciliation protocol for discrete-variable
  quantum key distribution", Proc. IEEE ISIT 2009, 1879-1883 (arXiv:0901.2140), Table I: rates
  0.50 ... 0.90 in steps of 0.05, BP thresholds close to the Shannon limit.
* Martinez-Mateo, Elkouss, Martin, "Blind reconciliation", Quantum Inf. Comput. 12, 791 (2012),
  Appendix B: rates 0.5 ... 0.8 with at most 6.06 edges per bit (designed for short codes).

One transcription fix: in the rate-0.85 row of Elkouss et al. (2009) the coefficient printed as
``0.094274 x^4`` makes lambda sum to 1.0515; ``0.04274`` restores sum(lambda) = 1 and the design
rate 0.849, so that is what we use.

Construction: progressive edge growth (PEG; Hu, Eleftheriou, Arnold, IEEE Trans. Inf. Theory
51, 386 (2005)) with the variable degrees fixed by lambda and the check degrees by rho: each
check has a target degree, and among the candidate checks PEG picks one with the most free
sockets (random among equals). Variables are placed in ascending degree order.
* Degree-2 variables first form a zigzag path through the checks (as in IRA / accumulate
  structures), so no cycle consists of degree-2 variables only: such a cycle is a codeword of
  that weight, and PEG alone left weight-6 ones that showed up as undetected frame errors. When
  lambda asks for more degree-2 variables than checks (rates 0.75 - 0.9) the rest are placed
  with a deep search (cycles of ~30 and up), and codes shorter than 2^14 turn them into
  degree-3 variables instead.
* For every other edge the checks within distance 1 of the variable (those that would close a
  4-cycle) are excluded; that set is kept incrementally while the variable gains edges. Checks
  at distance 2 (6-cycles) are excluded as far as a small work budget reaches. When every check
  with a free socket is within distance 1, a check beyond it is overfilled by one socket rather
  than closing a 4-cycle. Result: no 4-cycles for n >= 2^15 at every rate of the ladder, check
  degrees within +-1 of rho for all but ~0.2 % of the checks at n = 2^16; at n <= 2^13 some
  4-cycles are unavoidable (a degree-73 variable next to degree-20 checks sees every check
  within distance 1).
* A code of n = 2^17 builds in 1 - 4 s (numba), 2^15 in well under a second; ``get_code``
  caches them in the process and on disk (``qnetkit.diskcache``).

Rate adaptation needs, per code, an ordered list of positions that may be punctured. We use the
untainted puncturing algorithm of Elkouss, Martinez-Mateo, Martin, "Untainted puncturing for
irregular low-density parity-check codes", IEEE Wireless Commun. Lett. 1, 585 (2012): greedily
puncture the node with the smallest second neighbourhood N^2(v), then remove N^2(v) from the
candidates. Every check then touches at most one punctured symbol, which is what lets the
reconciler recover each punctured value in one decoding step and lets it fix the punctured values
so that one syndrome bit per punctured symbol is known to be zero (see ``ldpc.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from qnetkit import diskcache
from qnetkit._types import BitArray, IntArray
from qnetkit.errors import ParameterError
from qnetkit.qkd.reconciliation import _ldpc_peg
from qnetkit.qkd.reconciliation._ldpc_peg import (
    _peg_kernel,
    _second_neighbourhood_sizes,
    _untainted_kernel,
    syndrome_kernel,
)

Int32Array = npt.NDArray[np.int32]

# Work budget of the PEG search beyond distance 1, in visited edges (300: a larger budget costs
# seconds at n = 2^17 and made no measurable FER difference). The search itself, with its depth
# and the other budgets, is in ``_ldpc_peg``.
_BFS_BUDGET = 300
# Codes shorter than this cap the number of degree-2 variables at m - 1 (see build_parity_check).
SHORT_CODE = 2**14


@dataclass(frozen=True)
class DegreeDistribution:
    """An LDPC ensemble: edge-perspective variable (lambda) and check (rho) degree fractions."""

    rate: float
    lam: tuple[tuple[int, float], ...]
    rho: tuple[tuple[int, float], ...]
    threshold: float  # BP threshold (BSC crossover probability) reported by the source
    source: str

    @property
    def design_rate(self) -> float:
        """1 - (sum rho_i / i) / (sum lambda_i / i), Eq. (5) of Elkouss et al. (2009)."""
        return 1.0 - _inv_mean(self.rho) / _inv_mean(self.lam)

    @property
    def edges_per_bit(self) -> float:
        return 1.0 / _inv_mean(self.lam)


def _inv_mean(dist: tuple[tuple[int, float], ...]) -> float:
    total = sum(f for _, f in dist)
    return sum(f / d for d, f in dist) / total


def _dist(poly: dict[int, float]) -> tuple[tuple[int, float], ...]:
    """{exponent: coefficient} as printed (x^(i-1)) -> ((degree i, fraction), ...)."""
    return tuple((e + 1, c) for e, c in sorted(poly.items()))


_E09 = "Elkouss, Leverrier, Alleaume, Boutros, ISIT 2009, Table I"
_MM12 = "Martinez-Mateo, Elkouss, Martin, QIC 12, 791 (2012), Appendix B"

# fmt: off
ELKOUSS_2009: dict[float, DegreeDistribution] = {
    0.50: DegreeDistribution(
        0.50,
        _dist({1: 0.14438, 2: 0.19026, 3: 0.01836, 4: 0.00233, 5: 0.04697, 7: 0.053943,
               8: 0.05590, 9: 0.01290, 10: 0.00162, 13: 0.06159, 14: 0.13115, 16: 0.01481,
               46: 0.00879, 48: 0.00650, 54: 0.00210, 55: 0.00099, 56: 0.11178, 57: 0.06238,
               58: 0.05094, 65: 0.02230}),
        _dist({9: 0.47575, 11: 0.46847, 12: 0.02952, 13: 0.02626}),
        0.1071, _E09),
    0.55: DegreeDistribution(
        0.55,
        _dist({1: 0.16880, 2: 0.20994, 5: 0.18095, 14: 0.03846, 15: 0.02635, 17: 0.23454,
               18: 0.05815, 30: 0.08280}),
        _dist({9: 0.27631, 10: 0.72369}),
        0.0904, _E09),
    0.60: DegreeDistribution(
        0.60,
        _dist({1: 0.11040, 2: 0.20804, 7: 0.14163, 8: 0.14858, 25: 0.14438, 26: 0.08909,
               45: 0.00748, 70: 0.15038}),
        _dist({1: 0.00036, 9: 0.13063, 12: 0.31068, 17: 0.49341, 18: 0.064915}),
        0.0766, _E09),
    0.65: DegreeDistribution(
        0.65,
        _dist({1: 0.10451, 2: 0.15652, 3: 0.08057, 4: 0.00056, 8: 0.12151, 12: 0.10485,
               14: 0.10719, 20: 0.00771, 50: 0.31656}),
        _dist({1: 0.000578, 14: 0.06089, 15: 0.47001, 20: 0.46852}),
        0.0633, _E09),
    0.70: DegreeDistribution(
        0.70,
        _dist({1: 0.05343, 2: 0.29406, 5: 0.00896, 8: 0.15571, 11: 0.12189, 24: 0.19872,
               45: 0.09572, 61: 0.02741, 64: 0.04056, 72: 0.00354}),
        _dist({19: 0.76922, 20: 0.23077}),
        0.0504, _E09),
    0.75: DegreeDistribution(
        0.75,
        _dist({1: 0.10805, 2: 0.09511, 3: 0.01449, 4: 0.13764, 5: 0.10667, 6: 0.05288,
               27: 0.01107, 30: 0.47408}),
        _dist({24: 0.74161, 25: 0.25839}),
        0.0392, _E09),
    0.80: DegreeDistribution(
        0.80,
        _dist({1: 0.09420, 2: 0.18088, 5: 0.11972, 6: 0.08550, 7: 0.09816, 16: 0.07194,
               25: 0.34960}),
        _dist({28: 0.58807, 29: 0.41193}),
        0.0298, _E09),
    0.85: DegreeDistribution(
        0.85,
        # x^4 coefficient printed as 0.094274; 0.04274 makes sum(lambda) = 1 (see module doc).
        _dist({1: 0.04528, 2: 0.20537, 3: 0.05878, 4: 0.04274, 5: 0.08454, 6: 0.01176,
               8: 0.05137, 20: 0.50015}),
        _dist({40: 0.54204, 41: 0.45795}),
        0.0199, _E09),
    0.90: DegreeDistribution(
        0.90,
        _dist({1: 0.07689, 2: 0.28096, 4: 0.08933, 8: 0.19620, 11: 0.30631, 20: 0.05031}),
        _dist({49: 0.95025, 50: 0.04975}),
        0.0109, _E09),
}

MARTINEZ_MATEO_2012: dict[float, DegreeDistribution] = {
    0.5: DegreeDistribution(
        0.5,
        _dist({1: 0.159673, 2: 0.121875, 3: 0.11261, 4: 0.190871, 9: 0.0770616, 24: 0.337909}),
        _dist({8: 0.360479, 9: 0.639521}),
        0.102592, _MM12),
    0.6: DegreeDistribution(
        0.6,
        _dist({1: 0.11653, 2: 0.125646, 3: 0.108507, 4: 0.0534223, 6: 0.0727228,
               7: 0.0347964, 8: 0.0729986, 17: 0.0752607, 31: 0.117103, 44: 0.223013}),
        _dist({13: 0.582731, 14: 0.417269}),
        0.0745261, _MM12),
    0.7: DegreeDistribution(
        0.7,
        _dist({1: 0.091699, 2: 0.171401, 3: 0.0683878, 4: 0.120523, 10: 0.187471,
               27: 0.208278, 29: 0.152239}),
        _dist({18: 0.806453, 19: 0.193547}),
        0.0501875, _MM12),
    0.8: DegreeDistribution(
        0.8,
        _dist({1: 0.0667948, 2: 0.194832, 3: 0.0570523, 4: 0.0645024, 8: 0.204606,
               14: 0.0964409, 28: 0.23872, 34: 0.0770523}),
        _dist({29: 0.708874, 30: 0.291126}),
        0.0289413, _MM12),
}

# fmt: on

FAMILIES: dict[str, dict[float, DegreeDistribution]] = {
    "elkouss2009": ELKOUSS_2009,
    "martinez2012": MARTINEZ_MATEO_2012,
}


# --- degree sequences ---------------------------------------------------------------------


def _node_counts(dist: tuple[tuple[int, float], ...], nodes: int) -> dict[int, int]:
    """Edge fractions -> node counts summing exactly to ``nodes`` (largest remainders)."""
    inv = _inv_mean(dist)
    total = sum(f for _, f in dist)
    raw = {d: nodes * (f / total / d) / inv for d, f in dist}
    counts = {d: math.floor(x) for d, x in raw.items()}
    short = nodes - sum(counts.values())
    for d in sorted(raw, key=lambda d: raw[d] - counts[d], reverse=True)[:short]:
        counts[d] += 1
    return counts


def degree_sequences(
    dist: DegreeDistribution, n: int, cap_degree_two: bool = False
) -> tuple[IntArray, IntArray]:
    """Variable degrees (ascending, length n) and check degrees (length m = round(n (1 - R))).

    Variable counts follow lambda; check counts follow rho and are then nudged one edge at a
    time (a check of the most common degree gains or loses a socket) until both sides carry the
    same number of edges. With ``cap_degree_two`` at most m - 1 variables have degree 2 (the
    rest get degree 3), so degree-2 variables alone can form no cycle.
    """
    m = round(n * (1.0 - dist.rate))
    vcounts = _node_counts(dist.lam, n)
    var_deg = np.repeat(
        np.array(sorted(vcounts), dtype=np.int64),
        np.array([vcounts[d] for d in sorted(vcounts)], dtype=np.int64),
    )
    if cap_degree_two:
        var_deg[m - 1 : int(np.sum(var_deg == 2))] = 3
    edges = int(var_deg.sum())
    ccounts = _node_counts(dist.rho, m)
    chk = sorted(d for d, c in ccounts.items() for _ in range(c))
    chk_deg = np.array(chk, dtype=np.int64)
    diff = edges - int(chk_deg.sum())
    if diff:
        # Spread the correction over the most common degree so rho stays concentrated.
        common = max(ccounts, key=lambda d: ccounts[d])
        idx = np.flatnonzero(chk_deg == common)
        step = 1 if diff > 0 else -1
        for k in range(abs(diff)):
            chk_deg[idx[k % idx.size]] += step
    return var_deg, chk_deg


# --- codes ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LdpcCode:
    """One mother code: H (m x n CSR, uint8) plus what rate adaptation needs.

    ``puncture_order`` lists untainted positions (at most one per check) in the order they should
    be punctured; ``private_check[i]`` is a check touching ``puncture_order[i]`` and no other
    puncturable position. ``shorten_order`` lists the other positions in a seeded random order,
    followed by the puncturable ones last-first, so a frame that punctures the first ``p`` of
    ``puncture_order`` can shorten the first ``s <= n - p`` of ``shorten_order`` and the two sets
    never overlap.
    """

    H: sp.csr_matrix
    rate: float
    family: str
    seed: int
    puncture_order: IntArray
    private_check: IntArray
    shorten_order: IntArray
    indptr: Int32Array = field(repr=False)
    indices: Int32Array = field(repr=False)

    @property
    def n(self) -> int:
        return int(self.H.shape[1])

    @property
    def m(self) -> int:
        return int(self.H.shape[0])

    @property
    def max_puncture(self) -> int:
        return int(self.puncture_order.size)

    @property
    def var_degrees(self) -> IntArray:
        return np.bincount(self.indices, minlength=self.n).astype(np.int64)

    @property
    def check_degrees(self) -> IntArray:
        return np.diff(self.indptr).astype(np.int64)

    def syndromes(self, words: BitArray) -> BitArray:
        """H w mod 2 for each row of ``words`` (shape frames x n)."""
        return np.asarray(
            syndrome_kernel(self.indptr, self.indices, np.ascontiguousarray(words, np.uint8))
        )


def build_parity_check(dist: DegreeDistribution, n: int, seed: int) -> sp.csr_matrix:
    """PEG parity-check matrix (m x n, CSR, uint8) for ``dist``; deterministic in ``seed``."""
    if n < 64:
        raise ParameterError("n", n, "code length must be >= 64")
    # Short codes: more degree-2 variables than checks (rates >= 0.75) would close short cycles
    # of degree-2 variables, i.e. low-weight codewords, which showed up as undetected frame
    # errors at n = 4096; long codes keep the published lambda (capping it costs efficiency
    # there, and the deep search keeps those cycles long).
    var_deg, chk_deg = degree_sequences(dist, n, cap_degree_two=n < SHORT_CODE)
    rng = np.random.default_rng(np.random.SeedSequence([seed, n, round(dist.rate * 1000)]))
    chk_deg = rng.permutation(chk_deg)
    rand = rng.integers(0, 2**62, size=int(var_deg.sum()), dtype=np.int64)
    _, var_adj = _peg_kernel(var_deg, chk_deg, rand, _BFS_BUDGET)
    cols = np.repeat(np.arange(n, dtype=np.int64), var_deg)
    H = sp.csr_matrix(
        (np.ones(var_adj.size, dtype=np.uint8), (var_adj, cols)), shape=(chk_deg.size, n)
    )
    H.sum_duplicates()
    H.data[:] = 1  # a duplicate edge would cancel over GF(2); PEG never creates one
    H.sort_indices()
    return H


def untainted_puncturing(H: sp.csr_matrix, rng: np.random.Generator) -> IntArray:
    """Puncturable positions, in puncturing order, by the untainted algorithm (ties random)."""
    Hc = H.tocsc()
    args = (
        H.indptr.astype(np.int64),
        H.indices.astype(np.int64),
        Hc.indptr.astype(np.int64),
        Hc.indices.astype(np.int64),
    )
    score = _second_neighbourhood_sizes(*args)
    order = np.lexsort((rng.random(score.size), score)).astype(np.int64)
    return np.asarray(_untainted_kernel(*args, order), dtype=np.int64)


def count_four_cycles(H: sp.csr_matrix) -> int:
    """Number of 4-cycles: pairs of checks sharing k >= 2 variables contribute C(k, 2)."""
    A = H.astype(np.int64)
    overlap = (A @ A.T).tocoo()
    k = overlap.data[overlap.row < overlap.col]
    return int(np.sum(k * (k - 1) // 2))


@lru_cache(maxsize=64)
def get_code(rate: float, n: int, family: str = "elkouss2009", seed: int = 1) -> LdpcCode:
    """The mother code of ``rate`` and length ``n``: cached in the process and on disk.

    The construction is deterministic in (family, rate, n, seed), so a code is built once per
    machine (``qnetkit.diskcache``; the key includes a hash of this module and of its kernels in
    ``_ldpc_peg``, so editing the construction invalidates old entries) and then loaded in
    milliseconds.
    """
    try:
        dist = FAMILIES[family][rate]
    except KeyError:
        raise ParameterError(
            "rate", rate, f"no {family} degree distribution for this rate"
        ) from None
    # NumPy does not promise the same Generator streams across versions: a NumPy upgrade must
    # rebuild, as it would without the cache.
    key = f"{family}-r{round(rate * 1000)}-n{n}-s{seed}-np{np.__version__}-{_SOURCE_DIGEST}"
    arrays = diskcache.load_arrays("ldpc", key)
    code = _code_from_arrays(arrays, rate, n, family, seed) if arrays is not None else None
    if code is None:
        code = _build_code(dist, rate, n, family, seed)
        diskcache.save_arrays("ldpc", key, {
            "indptr": code.indptr, "indices": code.indices, "m": np.array([code.m]),
            "puncture_order": code.puncture_order, "private_check": code.private_check,
            "shorten_order": code.shorten_order,
        })
    return code


# The construction is this module and its kernels: a change to either orphans old entries.
_SOURCE_DIGEST = diskcache.source_digest(__file__, _ldpc_peg.__file__)


def _build_code(dist: DegreeDistribution, rate: float, n: int, family: str,
                seed: int) -> LdpcCode:
    H = build_parity_check(dist, n, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, n, round(rate * 1000), 7]))
    punct = untainted_puncturing(H, rng)
    Hc = H.tocsc()
    private = Hc.indices[Hc.indptr[punct]].astype(np.int64)
    is_punct = np.zeros(n, dtype=bool)
    is_punct[punct] = True
    rest = rng.permutation(np.flatnonzero(~is_punct)).astype(np.int64)
    shorten = np.concatenate([rest, punct[::-1]])
    return _assemble(H, rate, family, seed, punct, private, shorten)


def _assemble(H: sp.csr_matrix, rate: float, family: str, seed: int, punct: IntArray,
              private: IntArray, shorten: IntArray) -> LdpcCode:
    indptr = H.indptr.astype(np.int32)
    indices = H.indices.astype(np.int32)
    for arr in (punct, private, shorten, indptr, indices):
        arr.setflags(write=False)
    return LdpcCode(H, rate, family, seed, punct, private, shorten, indptr, indices)


def _code_from_arrays(arrays: dict[str, npt.NDArray[np.generic]], rate: float, n: int,
                      family: str, seed: int) -> LdpcCode | None:
    """A code from cached arrays, or None when they do not describe a well-formed code."""
    try:
        indptr = np.asarray(arrays["indptr"], dtype=np.int64)
        indices = np.asarray(arrays["indices"], dtype=np.int64)
        m = int(np.asarray(arrays["m"])[0])
        punct = np.asarray(arrays["puncture_order"], dtype=np.int64)
        private = np.asarray(arrays["private_check"], dtype=np.int64)
        shorten = np.asarray(arrays["shorten_order"], dtype=np.int64)
    except (KeyError, IndexError, ValueError, TypeError):
        return None
    ok = (
        indptr.size == m + 1 and indptr[0] == 0 and indptr[-1] == indices.size
        and bool(np.all(np.diff(indptr) >= 0))
        and (indices.size == 0 or (indices.min() >= 0 and indices.max() < n))
        and private.size == punct.size and shorten.size == n
        and np.array_equal(np.sort(shorten), np.arange(n))
        and (punct.size == 0 or (punct.min() >= 0 and punct.max() < n))
        and (private.size == 0 or (private.min() >= 0 and private.max() < m))
    )
    if not ok:
        return None
    H = sp.csr_matrix((np.ones(indices.size, dtype=np.uint8), indices, indptr), shape=(m, n))
    return _assemble(H, rate, family, seed, punct, private, shorten)
