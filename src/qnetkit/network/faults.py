"""Node failures over a run: scripted node-down/node-up events and random failures by MTBF/MTTR.

A failed node (a trusted relay or a KME down) takes every link ending at it out of service and
relays no key; the simulator applies that. Random failures are an alternating renewal process
with exponential times to failure (mean ``mtbf_h``) and to repair (mean ``mttr_h``), the same
model as the links' random cuts. Each node draws from its own generator,
``np.random.default_rng([seed, node_index, 7])``, so adding node failures leaves every link's
random stream as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qnetkit._types import BoolArray, FloatArray
from qnetkit.network.topology import NODE_EVENTS, Topology

_NODE_STREAM = 7  # third word of every node's seed: apart from the links' streams


@dataclass
class NodeOutages:
    """Which node is down at each step, and the incidents that made it so.

    ``down[i, k]`` is True when node ``topo.nodes[i]`` is down during step k. Incidents have the
    keys of the simulator's link incidents: ``kind`` ("node-down" or "node-repair"), ``link``
    (the node's id, so the incident tables show it), ``node`` (True), ``time_s``,
    ``detected_s`` (the end of the step it happened in for a failure; None for a repair) and
    ``detail``.
    """

    down: BoolArray
    incidents: list[dict[str, Any]] = field(default_factory=list)


def _step_s(topo: Topology, times_s: FloatArray) -> float:
    return float(times_s[1] - times_s[0]) if times_s.size > 1 else topo.step_s


def node_outages(topo: Topology, times_s: FloatArray, seed: int) -> NodeOutages:
    """Node outages over the run's steps ``times_s`` (seconds, evenly spaced from 0)."""
    times = np.asarray(times_s, dtype=np.float64)
    n_steps = times.size
    dt = _step_s(topo, times)
    horizon = n_steps * dt
    index = {node.id: i for i, node in enumerate(topo.nodes)}
    down = np.zeros((len(topo.nodes), n_steps), dtype=bool)
    incidents: list[dict[str, Any]] = []

    def step_of(t_s: float) -> int:
        return min(n_steps, math.ceil(t_s / dt - 1e-9))

    def detected(t_s: float) -> float:
        return float(times[min(int(t_s // dt), n_steps - 1)]) + dt

    # Scripted events, in time order: each holds from its step to the next event of that node.
    for ev in sorted(topo.scenario, key=lambda e: e.at_s):
        if ev.event not in NODE_EVENTS or ev.node is None or ev.at_s >= horizon:
            continue
        i, k = index[ev.node], step_of(ev.at_s)
        failing = ev.event == "node-down"
        down[i, k:] = failing
        incidents.append({"kind": "node-down" if failing else "node-repair", "link": ev.node,
                          "node": True, "time_s": ev.at_s,
                          "detected_s": detected(ev.at_s) if failing else None,
                          "detail": "scripted"})

    for i, node in enumerate(topo.nodes):
        if node.mtbf_h is None:
            continue
        rng = np.random.default_rng([seed, i, _NODE_STREAM])
        mtbf_s, mttr_s = node.mtbf_h * 3600.0, node.mttr_h * 3600.0
        t = float(rng.exponential(mtbf_s))
        while t < horizon:
            repaired = t + float(rng.exponential(mttr_s))
            down[i, int(t // dt):math.ceil(repaired / dt)] = True
            incidents.append({"kind": "node-down", "link": node.id, "node": True, "time_s": t,
                              "detected_s": detected(t),
                              "detail": f"random (MTBF {node.mtbf_h:g} h), repaired at "
                                        f"{repaired:.0f} s"})
            if repaired < horizon:
                incidents.append({"kind": "node-repair", "link": node.id, "node": True,
                                  "time_s": repaired, "detected_s": None,
                                  "detail": f"random (MTTR {node.mttr_h:g} h)"})
            t = repaired + float(rng.exponential(mtbf_s))
    incidents.sort(key=lambda inc: float(inc["time_s"]))
    return NodeOutages(down, incidents)
