"""QKD link engine: simulated detections to identical, authenticated secret keys at both ends.

``simulate_link(...)`` runs a whole link in one process and returns a ``LinkResult`` with both
final keys and the statistics of every stage (see ``qnetkit.qkd.link``). It takes the options
of ``qnetkit qkd run`` by the same names (``attack="intercept-resend", attack_fraction=0.3``,
or ``attack=Attack("intercept-resend", fraction=0.3)``); ``make_link_config`` builds the
``LinkConfig`` from them, for the command line too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qnetkit.qkd.attacks import Attack
    from qnetkit.qkd.link import LinkConfig, LinkResult, simulate_link
    from qnetkit.qkd.link_options import LINK_OPTIONS, make_link_config

__all__ = [
    "LINK_OPTIONS",
    "Attack",
    "LinkConfig",
    "LinkResult",
    "make_link_config",
    "simulate_link",
]
_HOMES = {"Attack": "attacks", "LINK_OPTIONS": "link_options", "make_link_config": "link_options"}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing one stage (e.g. the channel) does not load numba kernels.
    if name in __all__:
        import importlib

        return getattr(importlib.import_module(f"qnetkit.qkd.{_HOMES.get(name, 'link')}"), name)
    raise AttributeError(name)
