"""QKD link engine: simulated detections to identical, authenticated secret keys at both ends.

``simulate_link(...)`` runs a whole link in one process and returns a ``LinkResult`` with both
final keys and the statistics of every stage (see ``qnetkit.qkd.link``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qnetkit.qkd.link import LinkConfig, LinkResult, simulate_link

__all__ = ["LinkConfig", "LinkResult", "simulate_link"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing one stage (e.g. the channel) does not load numba kernels.
    if name in __all__:
        from qnetkit.qkd import link

        return getattr(link, name)
    raise AttributeError(name)
