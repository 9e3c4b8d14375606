"""Array type aliases shared by every layer (defined once; imported, never redefined)."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
#: Bits as 0/1 bytes (keys, sifted strings, syndromes).
BitArray: TypeAlias = npt.NDArray[np.uint8]

__all__ = ["BitArray", "BoolArray", "FloatArray", "IntArray"]
