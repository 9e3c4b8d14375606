"""The interface every error-reconciliation method implements (Alice's side and Bob's side).

Alice's key is the reference; Bob corrects his. Everything key-derived that a side sends goes in
``Endpoint.send(..., leaked=bits)`` so the channel books it; ``leaked_bits`` must equal that sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from qnetkit._types import BitArray
from qnetkit.qkd.channel import Endpoint


@dataclass
class ReconciliationResult:
    """One side's outcome: its (corrected) key and what the exchange cost."""

    key: BitArray = field(repr=False)  # key material: never printed
    leaked_bits: int
    channel_uses: int
    converged: bool


class Reconciler(Protocol):
    """A reconciliation method: ``alice`` and ``bob`` run concurrently on the two endpoints."""

    name: str

    def alice(
        self, ep: Endpoint, key: BitArray, qber: float, rng: np.random.Generator
    ) -> ReconciliationResult: ...

    def bob(self, ep: Endpoint, key: BitArray, qber: float) -> ReconciliationResult: ...
