"""Named, seeded random streams: one independent, reproducible generator per source of noise.

Model: each stream is a PCG64 generator (NumPy's default bit generator) seeded by
``np.random.SeedSequence(entropy=seed, spawn_key=H(name))``, where ``H(name)`` is the SHA-256
digest of the UTF-8 name read as eight 32-bit words. ``SeedSequence`` hashes entropy and spawn
key together (a design after M. E. O'Neill's improved C++ ``seed_seq``; NumPy's "Parallel
Applications" guide), so streams with different names or seeds are statistically independent,
and a given (seed, name) always yields the same draws, on any machine and in any process.
SHA-256 is used rather than Python's ``hash()``, which is salted per process
(PYTHONHASHSEED) and would make runs irreproducible.

Why names rather than one generator: draws for one purpose (say, heralding at link 3) then do
not shift when another part of the model draws more or fewer numbers, so changing one component
leaves the randomness of the others untouched (common random numbers across scenarios).
"""

from __future__ import annotations

import hashlib
import operator

import numpy as np

from qnetkit.errors import ParameterError

__all__ = ["RandomStreams", "stream_seed_sequence"]


def stream_seed_sequence(seed: int, name: str) -> np.random.SeedSequence:
    """The ``SeedSequence`` of stream ``name`` under ``seed`` (module docstring: the model)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    words = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 32, 4))
    return np.random.SeedSequence(entropy=seed, spawn_key=words)


class RandomStreams:
    """Factory of named generators under one master seed (an integer >= 0).

    ``stream(name)`` returns the same ``np.random.Generator`` object each time it is asked for
    the same name, so successive callers continue one stream rather than replaying its start.
    A fresh copy from the beginning of the stream is ``fresh(name)``.
    """

    def __init__(self, seed: int) -> None:
        try:
            seed_int = operator.index(seed)  # ints and NumPy integers; not floats or bools
        except TypeError:
            raise ParameterError("seed", seed, "must be an integer >= 0") from None
        if isinstance(seed, bool) or seed_int < 0:
            raise ParameterError("seed", seed, "must be an integer >= 0")
        self.seed: int = seed_int
        self._streams: dict[str, np.random.Generator] = {}

    def stream(self, name: str) -> np.random.Generator:
        """The generator of stream ``name``, created on first use and then shared."""
        generator = self._streams.get(name)
        if generator is None:
            generator = self.fresh(name)
            self._streams[name] = generator
        return generator

    def fresh(self, name: str) -> np.random.Generator:
        """A new generator at the start of stream ``name`` (not shared, not remembered)."""
        if not isinstance(name, str):
            raise ParameterError("name", name, "a stream name must be a string")
        return np.random.Generator(np.random.PCG64(stream_seed_sequence(self.seed, name)))

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the streams handed out so far, in order of first use."""
        return tuple(self._streams)
