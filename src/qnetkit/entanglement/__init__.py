"""Entanglement distribution: entangled-pair states and operations, repeater chains, applications.

Bell-diagonal convention everywhere: coefficients ``(..., 4)`` = weights of
``|Phi+>, |Psi->, |Psi+>, |Phi->`` (Deutsch et al., PRL 77, 2818 (1996)); fidelity = first entry.
"""

from qnetkit.entanglement.applications import (
    KeyRateFromPairs,
    chsh_from_bell_diagonal,
    entanglement_key_rate,
    qber_from_bell_diagonal,
    teleportation_fidelity,
)
from qnetkit.entanglement.chain import (
    AnalyticChainResult,
    ChainConfig,
    ChainResult,
    analytic_chain,
    simulate_chain,
)
from qnetkit.entanglement.compare import CompareResult, CompareRow, compare_architectures
from qnetkit.entanglement.operations import (
    bbpssw,
    decohere,
    decohere_density_matrix,
    decohere_pair,
    dejmps,
    swap,
)
from qnetkit.entanglement.satellite import DualDownlink, dual_downlink, micius_dual_downlink
from qnetkit.entanglement.states import (
    bell_diagonal_part,
    check_bell_diagonal,
    fidelity,
    to_density_matrix,
    werner,
)

__all__ = [
    "AnalyticChainResult",
    "ChainConfig",
    "ChainResult",
    "CompareResult",
    "CompareRow",
    "DualDownlink",
    "KeyRateFromPairs",
    "analytic_chain",
    "bbpssw",
    "bell_diagonal_part",
    "check_bell_diagonal",
    "chsh_from_bell_diagonal",
    "compare_architectures",
    "decohere",
    "decohere_density_matrix",
    "decohere_pair",
    "dejmps",
    "dual_downlink",
    "entanglement_key_rate",
    "fidelity",
    "micius_dual_downlink",
    "qber_from_bell_diagonal",
    "simulate_chain",
    "swap",
    "teleportation_fidelity",
    "to_density_matrix",
    "werner",
]
