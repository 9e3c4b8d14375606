"""The report's incident list and alarm episodes.

An alarm is an episode (start, end or still active, peak value, steps), so a link held above the
abort level for a whole day is one row, not one row per step (raise and clear as in an
operator's alarm list, ITU-T X.733). Episodes are grouped per (link, kind) with counts; active
and critical groups and episodes come first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from qnetkit.ops.report._format import Row, _clock, _dur, _e, _pct, _si, _table
from qnetkit.ops.report.data import (
    MAX_EPISODES_PER_GROUP,
    MAX_EVENT_ROWS,
    _Alarm,
    _Summary,
)

# Alarms on a quantity that is bad when low: their worst value is the smallest.
_LOW_IS_BAD = {"pool-low", "detector-efficiency"}


def _incidents_html(s: _Summary) -> str:
    if not s.incidents:
        return '<p class="note">No incidents.</p>'
    incs = sorted(s.incidents, key=lambda x: x.time_s)
    rows: list[Row] = []
    for inc in incs[:MAX_EVENT_ROWS]:
        if inc.detected_s is None:
            det, delay = "not detected", "–"
        else:
            det, delay = _clock(inc.detected_s), _dur(max(inc.detected_s - inc.time_s, 0.0))
        where = f"node {_e(inc.link)}" if inc.node else _e(inc.link)
        rows.append(("" if inc.detected_s is not None else "bad", [
            (_clock(inc.time_s), ""), (_e(inc.kind), ""), (where, ""),
            (det, ""), (delay, "n"), (_e(inc.detail), "txt"),
        ]))
    more = (f'<p class="note">… and {len(incs) - MAX_EVENT_ROWS} more incidents.</p>'
            if len(incs) > MAX_EVENT_ROWS else "")
    return _table(["time", "kind", "link / node", "detected", "delay", "detail"], rows) + more


def _peak(a: _Alarm) -> str:
    """The episode's peak in the unit of its kind (QBER in %, pool in bits)."""
    v = a.peak_value
    if v is None:
        return _e(a.peak_text) or "–"
    if a.kind.startswith("qber"):
        return _pct(v)
    if a.kind.startswith("pool"):
        return _si(v, "bit")
    return f"{v:.4g}"


def _duration_s(a: _Alarm, s: _Summary) -> float | None:
    """Start to end (to the end of the run while active); at least ``steps`` steps long."""
    end = a.end_s if a.end_s is not None else (s.duration_s if a.active else None)
    d = None if end is None else max(end - a.start_s, 0.0)
    if a.steps is not None and s.step_s is not None:
        d = max(d or 0.0, a.steps * s.step_s)
    return d


@dataclass
class _Group:
    link: str
    kind: str
    episodes: list[_Alarm]

    @property
    def active(self) -> int:
        return sum(a.active for a in self.episodes)

    @property
    def critical(self) -> int:
        return sum(a.level == "critical" for a in self.episodes)

    @property
    def steps(self) -> int | None:
        if any(a.steps is None for a in self.episodes):
            return None
        return sum(a.steps or 0 for a in self.episodes)

    def worst(self) -> _Alarm:
        known = [a for a in self.episodes if a.peak_value is not None]
        if not known:
            return self.episodes[0]
        pick = min if self.kind in _LOW_IS_BAD else max
        return pick(known, key=lambda a: a.peak_value or 0.0)


def _episode_key(a: _Alarm) -> tuple[bool, bool, float]:
    return (not a.active, a.level != "critical", a.start_s)


def _groups(alarms: list[_Alarm]) -> list[_Group]:
    by: dict[tuple[str, str], list[_Alarm]] = {}
    for a in alarms:
        by.setdefault((a.link, a.kind), []).append(a)
    groups = [_Group(link, kind, sorted(eps, key=_episode_key))
              for (link, kind), eps in by.items()]
    groups.sort(key=lambda g: (not g.active, not g.critical, -len(g.episodes), g.link, g.kind))
    return groups


def _end_cell(a: _Alarm) -> str:
    if a.active:
        return '<b class="active">active</b>'
    return "–" if a.end_s is None else _clock(a.end_s)


def _alarms_html(s: _Summary) -> str:
    if not s.alarms:
        return '<p class="note">No alarms.</p>'
    groups = _groups(s.alarms)
    n_active = sum(a.active for a in s.alarms)
    n_crit = sum(a.level == "critical" for a in s.alarms)
    counts = Counter((a.level, a.kind) for a in s.alarms)
    by_kind = ", ".join(f"{n} × {_e(level)} {_e(kind)}"
                        for (level, kind), n in sorted(counts.items()))
    head = (f'<p class="note">{len(s.alarms)} alarm episode(s) ({n_active} still active at the '
            f"end, {n_crit} critical) on {len(groups)} (link, kind) pair(s): {by_kind}. "
            "Active and critical first.</p>")

    group_rows: list[Row] = []
    for g in groups[:MAX_EVENT_ROWS]:
        first = min(a.start_s for a in g.episodes)
        total = sum(_duration_s(a, s) or 0.0 for a in g.episodes)
        steps = g.steps
        group_rows.append(("bad" if g.critical else "warn", [
            (_e(g.link), ""), (_e(g.kind), ""), (str(len(g.episodes)), "n"),
            (str(g.critical), "n"),
            ('<b class="active">yes</b>' if g.active else "no", ""),
            (_clock(first), ""), (_dur(total), "n"),
            ("–" if steps is None else str(steps), "n"), (_peak(g.worst()), "n"),
        ]))
    group_table = _table(["link", "kind", "episodes", "critical", "active", "first", "total time",
                          "steps", "worst peak"], group_rows, table_id="alarm-groups")

    listed = sorted((a for g in groups for a in g.episodes[:MAX_EPISODES_PER_GROUP]),
                    key=_episode_key)[:MAX_EVENT_ROWS]
    hidden = len(s.alarms) - len(listed)
    ep_rows: list[Row] = [
        (("bad" if a.level == "critical" else "warn") + (" active" if a.active else ""), [
            (_e(a.level), ""), (_e(a.kind), ""), (_e(a.link), ""),
            (_clock(a.start_s), ""), (_end_cell(a), ""), (_dur(_duration_s(a, s)), "n"),
            (_peak(a), "n"), ("–" if a.steps is None else str(a.steps), "n"),
        ])
        for a in listed
    ]
    more = (f'<p class="note">… and {hidden} more episodes (at most {MAX_EPISODES_PER_GROUP} '
            f"listed per link and kind, {MAX_EVENT_ROWS} in all; the table above counts them "
            "all).</p>"
            if hidden else "")
    return (head + "<h3>Per link and kind</h3>" + group_table + "<h3>Episodes</h3>"
            + _table(["level", "kind", "link", "start", "end", "duration", "peak", "steps"],
                     ep_rows, table_id="alarm-episodes") + more)
