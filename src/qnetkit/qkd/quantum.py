"""Monte-Carlo quantum stage: the detection records of decoy-state BB84 and BBM92 links.

Decoy BB84 uses the detector model of Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005) with Bob's two
threshold detectors explicit (Poisson splitting, double clicks squashed to a random bit); BBM92
the SPDC model of Ma, Fung, Lo, PRA 76, 012307 (2007). Sampling costs O(detections), not O(pulses).

The code lives in ``qkd.quantum_decoy`` (weak coherent source), ``qkd.quantum_bbm92`` (entangled
pairs) and ``qkd.quantum_common`` (records, sampling, dead time); this module re-exports them.
"""

from __future__ import annotations

from qnetkit.qkd.quantum_bbm92 import (
    MAX_PAIRS_PER_MODE,
    PAIR_TAIL,
    expected_bbm92_coincidences,
    simulate_bbm92,
)
from qnetkit.qkd.quantum_bbm92 import _rotation_table as _rotation_table  # tested directly
from qnetkit.qkd.quantum_common import (
    DEFAULT_CHUNK_PULSES,
    NO_CLICK,
    AliceRecord,
    BobRecord,
    ByteArray,
    DetectorTimingParams,
    SmallArray,
)
from qnetkit.qkd.quantum_common import (  # tested directly
    _sorted_distinct_uniform as _sorted_distinct_uniform,
)
from qnetkit.qkd.quantum_decoy import (
    AFTERPULSE,
    CORRECT,
    DOUBLE,
    WRONG,
    DecoySourceParams,
    expected_gains_and_qber,
    simulate_decoy_bb84,
)

__all__ = [
    "AFTERPULSE",
    "CORRECT",
    "DEFAULT_CHUNK_PULSES",
    "DOUBLE",
    "MAX_PAIRS_PER_MODE",
    "NO_CLICK",
    "PAIR_TAIL",
    "WRONG",
    "AliceRecord",
    "BobRecord",
    "ByteArray",
    "DecoySourceParams",
    "DetectorTimingParams",
    "SmallArray",
    "expected_bbm92_coincidences",
    "expected_gains_and_qber",
    "simulate_bbm92",
    "simulate_decoy_bb84",
]
