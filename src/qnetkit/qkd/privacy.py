"""Privacy amplification by Toeplitz hashing, computed with the FFT.

A random m x n Toeplitz matrix over GF(2), given by an (n + m - 1)-bit seed, is a two-universal
hash family (Carter and Wegman 1979; Krawczyk 1994), so by the leftover hash lemma its output
is close to uniform for Eve when m is below the smooth min-entropy (Tomamichel, Lim, Gisin,
Renner, Nat. Commun. 3, 634 (2012)). T x is the middle of the convolution seed * x, computed as
a cyclic convolution of length >= n + m - 1 with real FFTs in O(n log n).

The protocol uses the *modified* Toeplitz family [I_m | T] with T an m x (n - m) Toeplitz
matrix (Hayashi and Tsurumaru, IEEE TIT 62, 2213 (2016)): still two-universal (a difference
confined to the first m bits never collides; otherwise T d is uniform), with an (n - 1)-bit
seed and a convolution of length n - 1 instead of n + m - 1, so the FFTs are shorter.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft

from qnetkit._types import BitArray
from qnetkit.qkd.channel import Endpoint

try:  # FFTW is ~3x faster than pocketfft here; scipy remains the fallback.
    import pyfftw
except ImportError:  # pragma: no cover - pyfftw is a declared dependency
    pyfftw = None


# The float32 transform is accepted only if every output lies this close to an integer;
# the observed error at n = 1e6 is ~5e-4, so a wider residual means "recompute in float64".
_ROUNDING_GUARD = 0.125


def _check_bits(name: str, bits: npt.ArrayLike) -> BitArray:
    arr = np.asarray(bits)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D bit array")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.uint8)
    return arr


def fft_size(length: int) -> int:
    """FFT length for a cyclic convolution of ``length``: the next 2-3-5-smooth number.

    (With FFTW's quick "estimate" plans, sizes with factors of 5 ran faster here than powers
    of two; block lengths of one run land on few distinct sizes, so plans are reused.)
    """
    return int(sfft.next_fast_len(max(length, 1), real=True))


class _SinglePrecisionPlans(threading.local):
    """FFTW plans (float32 r2c / c2r) per size, one set per thread: plans own their buffers."""

    def __init__(self) -> None:
        self.plans: dict[int, tuple[Any, Any]] = {}

    def get(self, size: int) -> tuple[Any, Any]:
        plan = self.plans.get(size)
        if plan is None:
            real = pyfftw.empty_aligned(size, dtype="float32")
            spec = pyfftw.empty_aligned(size // 2 + 1, dtype="complex64")
            forward = pyfftw.FFTW(real, spec, flags=("FFTW_ESTIMATE",), threads=1)
            backward = pyfftw.FFTW(
                spec, real, direction="FFTW_BACKWARD", flags=("FFTW_ESTIMATE",), threads=1
            )
            if len(self.plans) >= 8:
                self.plans.pop(next(iter(self.plans)))
            plan = self.plans[size] = (forward, backward)
        return plan


_PLANS = _SinglePrecisionPlans()


def _convolve_fftw(seed: BitArray, key: BitArray, m: int) -> npt.NDArray[np.floating]:
    n = key.size
    forward, backward = _PLANS.get(fft_size(n + m - 1))
    real = forward.input_array
    real[: seed.size] = seed
    real[: seed.size] -= np.float32(0.5)
    real[seed.size :] = 0.0
    spectrum = forward().copy()
    real[:n] = key
    real[n:] = 0.0
    spectrum *= forward()
    backward.input_array[:] = spectrum
    full = backward()  # normalised inverse, in the plan's buffer
    return np.array(full[n - 1 : n - 1 + m])


def _convolve(
    seed: BitArray, key: BitArray, m: int, dtype: type[np.floating]
) -> npt.NDArray[np.floating]:
    if dtype is np.float32 and pyfftw is not None:
        return _convolve_fftw(seed, key, m)
    n = key.size
    size = sfft.next_fast_len(n + m - 1, real=True)
    # Centring the seed's 0/1 values at +-1/2 keeps the sums near zero, which is what makes
    # single precision accurate enough; the offset (key ones) / 2 is added back exactly below.
    a = sfft.rfft(np.subtract(seed, dtype(0.5), dtype=dtype), size)
    a *= sfft.rfft(key.astype(dtype), size)
    full = sfft.irfft(a, size, overwrite_x=True)
    return np.asarray(full[n - 1 : n - 1 + m])


def toeplitz_hash(key: npt.ArrayLike, seed: npt.ArrayLike, output_bits: int) -> BitArray:
    """y = T x over GF(2) with T[i, j] = seed[i - j + n - 1] (n = len(key), m = output_bits)."""
    x = _check_bits("key", key)
    s = _check_bits("seed", seed)
    n, m = x.size, int(output_bits)
    if m < 0:
        raise ValueError(f"output_bits={output_bits} must be >= 0")
    if s.size != n + m - 1 and m > 0:
        raise ValueError(f"seed has {s.size} bits; a {m} x {n} Toeplitz matrix needs {n + m - 1}")
    if m == 0:
        return np.zeros(0, dtype=np.uint8)
    # sum_j t_j x_j = sum_j (t_j - 1/2) x_j + (ones in the key) / 2
    offset = 0.5 * int(np.count_nonzero(x))
    rounded: npt.NDArray[np.floating] = np.zeros(0)
    for dtype in (np.float32, np.float64):
        # Integer sums up to n < 2^22 with half fractions are exact in float32 too.
        work = dtype if (dtype is np.float64 or n < 2**22) else np.float64
        total = np.asarray(_convolve(s, x, m, dtype), dtype=work)
        total = total + np.asarray(offset, dtype=work)
        rounded = np.rint(total)
        if dtype is np.float64 or np.max(np.abs(total - rounded)) < _ROUNDING_GUARD:
            break
    return np.asarray(rounded.astype(np.int64) & 1, dtype=np.uint8)


def toeplitz_hash_reference(key: npt.ArrayLike, seed: npt.ArrayLike, output_bits: int) -> BitArray:
    """The same product by the definition (O(n m)); for tests on small inputs."""
    x = _check_bits("key", key).astype(np.int64)
    s = _check_bits("seed", seed).astype(np.int64)
    n, m = x.size, int(output_bits)
    rows = np.arange(m)[:, None] - np.arange(n)[None, :] + n - 1
    return np.asarray((s[rows] @ x) & 1, dtype=np.uint8)


def modified_toeplitz_hash(key: npt.ArrayLike, seed: npt.ArrayLike, output_bits: int) -> BitArray:
    """y = x[:m] XOR T x[m:], T the m x (n - m) Toeplitz matrix of the (n - 1)-bit seed."""
    x = _check_bits("key", key)
    s = _check_bits("seed", seed)
    n, m = x.size, int(output_bits)
    if m < 0 or m > n:
        raise ValueError(f"output_bits={output_bits} must be between 0 and the key length {n}")
    if m == 0:
        return np.zeros(0, dtype=np.uint8)
    if m == n:
        return x.copy()
    if s.size != n - 1:
        raise ValueError(f"seed has {s.size} bits; the modified Toeplitz hash needs {n - 1}")
    return np.asarray(x[:m] ^ toeplitz_hash(x[m:], s, m), dtype=np.uint8)


def modified_seed_bits(n: int, m: int) -> int:
    """Seed length of the modified Toeplitz hash of n bits to m bits."""
    return n - 1 if 0 < m < n else 0


def random_bits(rng: np.random.Generator, n: int) -> BitArray:
    """n uniform bits from the generator (bytes unpacked: ~8x faster than integers(0, 2))."""
    return np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n)


@dataclass
class AmplificationResult:
    """One side's final key and the seed length used."""

    key: BitArray = field(repr=False)  # key material: never printed
    seed_bits: int


class ToeplitzAmplifier:
    """Alice draws the seed and sends it (public: it is independent of the key)."""

    name = "toeplitz-fft"

    def alice(
        self, ep: Endpoint, key: BitArray, output_bits: int, rng: np.random.Generator
    ) -> AmplificationResult:
        seed_len = modified_seed_bits(key.size, output_bits)
        seed = random_bits(rng, seed_len)
        ep.send("pa.seed", {"seed": np.packbits(seed), "bits": seed_len, "m": output_bits})
        return AmplificationResult(modified_toeplitz_hash(key, seed, output_bits), seed_len)

    def bob(self, ep: Endpoint, key: BitArray) -> AmplificationResult:
        msg = ep.recv("pa.seed")
        seed_len, m = int(msg.public["bits"]), int(msg.public["m"])
        seed = np.unpackbits(msg.public["seed"], count=seed_len)
        return AmplificationResult(modified_toeplitz_hash(key, seed, m), seed_len)
