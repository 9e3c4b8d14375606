"""Alarms as episodes: one record from the step a condition starts to the step it clears.

A link stuck above the abort QBER for a day is one critical episode (start, still active,
peak QBER, 1,440 steps), not one record per step: what an operator's alarm list shows
(raise on entry, clear on exit; ITU-T X.733 alarm reporting keeps the same raise/clear pair).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from qnetkit._types import BoolArray, FloatArray

AlarmLevel = Literal["warning", "critical"]


@dataclass
class AlarmEpisode:
    """One alarm from raise to clear; ``end_s`` is None while it is still active."""

    kind: str
    level: AlarmLevel
    link: str
    start_s: float
    peak_value: float
    steps: int = 1
    end_s: float | None = None

    @property
    def active(self) -> bool:
        return self.end_s is None

    def as_dict(self) -> dict[str, Any]:
        """JSON form; ``time_s``/``value`` repeat start and peak for readers of the old list."""
        return {"kind": self.kind, "level": self.level, "link": self.link,
                "start_s": self.start_s, "end_s": self.end_s, "active": self.active,
                "peak_value": self.peak_value, "steps": self.steps,
                "time_s": self.start_s, "value": self.peak_value}


class AlarmTracker:
    """Open episodes per (kind, link); ``update`` once a step for each kind of condition."""

    def __init__(self, link_ids: list[str]) -> None:
        self.link_ids = link_ids
        self.episodes: list[AlarmEpisode] = []
        self._open: dict[tuple[str, int], AlarmEpisode] = {}

    def update(self, kind: str, level: AlarmLevel, t_s: float, active: BoolArray,
               values: FloatArray, worse: Literal["high", "low"] = "high") -> None:
        """Raise, extend or clear the ``kind`` alarm of every link at time ``t_s``.

        ``worse`` says which way the peak goes: the highest QBER, the lowest pool level.
        """
        for i in map(int, np.flatnonzero(active)):
            value = float(values[i])
            ep = self._open.get((kind, i))
            if ep is None:
                ep = AlarmEpisode(kind, level, self.link_ids[i], t_s, value)
                self._open[(kind, i)] = ep
                self.episodes.append(ep)
                continue
            ep.steps += 1
            if (value > ep.peak_value) if worse == "high" else (value < ep.peak_value):
                ep.peak_value = value
        for key in [k for k in self._open if k[0] == kind and not active[k[1]]]:
            self._open.pop(key).end_s = t_s

    def as_dicts(self) -> list[dict[str, Any]]:
        return [ep.as_dict() for ep in sorted(self.episodes,
                                              key=lambda e: (e.start_s, e.link, e.kind))]


__all__ = ["AlarmEpisode", "AlarmLevel", "AlarmTracker"]
