"""The report says why (issue 13): links that make no key, alarm episodes, unmet demands.

A hand-written run directory in the summary.json format of issue 13 (link states and reasons,
key served from production apart from the initial pool fill, headroom, paths over time, alarm
episodes), and one in the format written before it, which must still render.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from qnetkit.ops.report import ReportError, write_report

STEP_S = 30.0
N_STEPS = 2880  # one day of 30 s steps
DAY_S = N_STEPS * STEP_S
LINKS = ("L-ok", "L-partial", "L-raman", "L-loss")
RAMAN_REASON = "Raman noise: QBER 43 %"
LOSS_REASON = "loss 41.0 dB, 7.2 dB above the system's limit (33.8 dB) <limit>"
UNMET_REASON = ("both paths contain a zero-rate link: L-raman (Raman noise: QBER 43 %), "
                "L-partial (cut 05:30-11:00); served from the initial pool until 05:33")


def _span(t0: float, t1: float, routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"from_s": t0, "to_s": t1, "routes": routes}


ROUTE_VIA_N1 = {"links": ["L-ok", "L-partial"], "nodes": ["N0", "N1", "N2"],
                "trusted_nodes": ["N1"]}
ROUTE_DIRECT = {"links": ["L-raman"], "nodes": ["N0", "N2"], "trusted_nodes": []}


def new_summary() -> dict[str, Any]:
    """Every field of the issue-13 format, with a no-key link and an unmet demand."""
    link_common = {"kind": "fiber", "protocol": "decoy-bb84", "published_rate_bps": None,
                   "initial_pool_bits": 6.0e5, "pool_capacity_bits": 1.0e8}
    links = [
        {"id": "L-ok", "a": "N0", "b": "N1", "length_km": 10.0, "secret_bits": 8.64e10,
         "mean_rate_bps": 1.0e6, "mean_qber": 0.01, "availability": 1.0,
         "connected_fraction": 1.0, "state": "ok", "reason": None, "physical_limit": False,
         "unavailable_s": {}},
        {"id": "L-partial", "a": "N1", "b": "N2", "length_km": 20.0, "secret_bits": 3.0e10,
         "mean_rate_bps": 5.0e5, "mean_qber": 0.02, "availability": 0.7708,
         "connected_fraction": 0.7708, "state": "partial", "reason": "cut 05:30-11:00",
         "physical_limit": False, "unavailable_s": {"cut": 19800.0}},
        {"id": "L-raman", "a": "N0", "b": "N2", "length_km": 25.0, "secret_bits": 0.0,
         "mean_rate_bps": 0.0, "mean_qber": 0.43, "availability": 0.0,
         "connected_fraction": 1.0, "state": "no-key", "reason": RAMAN_REASON,
         "physical_limit": True, "unavailable_s": {"qber-abort": DAY_S}},
        {"id": "L-loss", "a": "N2", "b": "N3", "length_km": 180.0, "secret_bits": 0.0,
         "mean_rate_bps": 0.0, "mean_qber": None, "availability": 0.0,
         "connected_fraction": 1.0, "state": "no-key", "reason": LOSS_REASON,
         "physical_limit": True, "unavailable_s": {"zero-rate": DAY_S}},
    ]
    # alternating route sets: no two neighbours merge
    many_spans = [_span(600.0 * k, 600.0 * (k + 1),
                        [ROUTE_VIA_N1] if k % 2 else [ROUTE_VIA_N1, ROUTE_DIRECT])
                  for k in range(50)]
    direct = [{"links": ["L-ok"], "nodes": ["N0", "N1"], "trusted_nodes": []}]
    demands = [
        {"id": "D-met", "a": "N0", "b": "N1", "rate_bps": 1000.0, "policy": "refuse",
         "priority": 5, "requested_bits": 8.64e7, "delivered_bits": 8.64e7,
         "served_from_production_bits": 8.64e7, "served_from_initial_bits": 0.0,
         "served_fraction": 1.0, "served_fraction_with_initial": 1.0, "fallback_s": 0.0,
         "met": True, "reason": None,
         "headroom": {"worst_hour_start_s": 0.0, "worst_hour_deliverable_bps": 1.0e6,
                      "requested_bps": 1000.0, "ratio": 1000.0},
         # a re-plan that changed nothing: shown as one interval
         "paths": [_span(0.0, 3600.0, direct), _span(3600.0, DAY_S, direct)]},
        {"id": "D-unmet", "a": "N0", "b": "N2", "rate_bps": 1000.0, "policy": "fallback-pqc",
         "priority": 3, "requested_bits": 8.64e7, "delivered_bits": 6.7e7,
         "served_from_production_bits": 6.6e7, "served_from_initial_bits": 1.0e6,
         "served_fraction": 0.7639, "served_fraction_with_initial": 0.7755,
         "fallback_s": 19800.0, "met": False, "reason": UNMET_REASON,
         "headroom": {"worst_hour_start_s": 46800.0, "worst_hour_deliverable_bps": 120.0,
                      "requested_bps": 1000.0, "ratio": 0.12},
         "paths": [_span(0.0, 19800.0, [ROUTE_VIA_N1, ROUTE_DIRECT]),
                   _span(19800.0, 39600.0, []),
                   _span(39600.0, DAY_S, [ROUTE_VIA_N1])]},
        {"id": "D-busy", "a": "N0", "b": "N2", "rate_bps": 10.0, "policy": "refuse",
         "priority": 1, "requested_bits": 8.64e5, "delivered_bits": 8.64e5,
         "served_from_production_bits": 8.64e5, "served_from_initial_bits": 0.0,
         "served_fraction": 1.0, "served_fraction_with_initial": 1.0, "fallback_s": 0.0,
         "met": True, "reason": None, "headroom": None,
         "paths": [*many_spans, {"truncated": True, "more": 7}]},
    ]
    stuck = {"kind": "qber-abort", "level": "critical", "link": "L-raman", "start_s": 0.0,
             "end_s": None, "active": True, "peak_value": 0.43, "steps": N_STEPS,
             "time_s": 0.0, "value": 0.43}
    flapping = [
        {"kind": "pool-low", "level": "warning", "link": "L-partial", "start_s": 1000.0 * k,
         "end_s": 1000.0 * k + 60.0, "active": False, "peak_value": 1000.0 * k,
         "steps": 2, "time_s": 1000.0 * k, "value": 1000.0 * k}
        for k in range(30)
    ]
    return {
        "topology": "why-test", "description": "issue 13 fixture", "source": "test",
        "duration_s": DAY_S, "step_s": STEP_S, "seed": 1, "wall_s": 2.0,
        "monitoring": {"qber_warning": 0.05, "qber_abort": 0.11},
        "nodes": [{"id": f"N{i}", "kind": "trusted-relay" if i == 1 else "kme",
                   "x_km": 10.0 * i, "y_km": 0.0, "down_s": 3600.0 if i == 3 else 0.0}
                  for i in range(4)],
        "pools": {"initial_fill": 600.0, "capacity_bits_default": 1.0e8,
                  "served_counts_initial": False},
        "links": [{**link_common, **ln} for ln in links],
        "demands": demands,
        "incidents": [
            {"kind": "fiber-cut", "link": "L-partial", "time_s": 19800.0,
             "detected_s": 19830.0, "detail": "scripted"},
            {"kind": "node-down", "link": "N3", "node": True, "time_s": 3600.0,
             "detected_s": 3630.0, "detail": "power"},
        ],
        "alarms": [stuck, *flapping],
    }


def write_run(root: Path, summary: dict[str, Any], n_steps: int = N_STEPS) -> Path:
    """The summary and small CSV series (every link every step) for it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps(summary))
    links = [ln["id"] for ln in summary["links"]]
    with (root / "links.csv").open("w") as f:
        f.write("time_s,link,rate_bps,qber,up,pool_bits,detector_efficiency\n")
        for k in range(n_steps):
            for lid in links:
                rate = 0.0 if lid in ("L-raman", "L-loss") else 1000.0
                f.write(f"{k * STEP_S:g},{lid},{rate:g},0.02,1,{rate * k:g},0.25\n")
    with (root / "demands.csv").open("w") as f:
        f.write("time_s,demand,delivered_bps,fallback\n")
        for k in range(n_steps):
            for d in summary["demands"]:
                f.write(f"{k * STEP_S:g},{d['id']},{d['rate_bps']:g},0\n")
    return root


class _Tables(HTMLParser):
    """Rows of every table with an id: ``{id: [(tr class, [cell text, ...]), ...]}``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}
        self.headers: dict[str, list[str]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: tuple[str, list[str]] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        table_id = a.get("id")
        if tag == "table" and table_id:
            self._table = table_id
            self.tables[table_id] = []
            self.headers[table_id] = []
        elif self._table is None:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "tbody":
            self._in_head = False
        elif tag == "tr" and not self._in_head:
            self._row = (a.get("class") or "", [])
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            text = "".join(self._cell).strip()
            if tag == "th":
                self.headers[self._table].append(text)
            elif self._row is not None:
                self._row[1].append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html_text: str) -> _Tables:
    p = _Tables()
    p.feed(html_text)
    return p


def _text(html_fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html_fragment)).strip()


def _row(t: _Tables, table: str, first_cell: str) -> tuple[str, dict[str, str]]:
    rows = [r for r in t.tables[table] if r[1] and r[1][0] == first_cell]
    assert len(rows) == 1, (first_cell, rows)
    return rows[0][0], dict(zip(t.headers[table], rows[0][1], strict=True))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("why")
    run = write_run(tmp / "run", new_summary())
    return write_report(run, tmp / "r.html").read_text(encoding="utf-8")


def test_no_key_links_are_highlighted_with_their_reason(report: str) -> None:
    t = parse(report)
    cls, raman = _row(t, "links", "L-raman")
    assert cls == "nokey"
    assert raman["state"] == "no-key (physical limit)"
    assert raman["reason"] == RAMAN_REASON
    assert raman["availability (making key)"] == "0.00 %"
    assert raman["connected"] == "100.00 %"
    assert raman["without key"] == "qber-abort 24 h"
    cls, loss = _row(t, "links", "L-loss")
    assert cls == "nokey" and loss["reason"] == LOSS_REASON  # parser unescapes: was escaped
    cls, partial = _row(t, "links", "L-partial")
    assert cls == "bad" and partial["state"] == "partial"  # red: it has an incident (cut)
    assert partial["reason"] == "cut 05:30-11:00" and partial["without key"] == "cut 5.5 h"
    assert partial["availability (making key)"] == "77.08 %"
    cls, ok = _row(t, "links", "L-ok")
    assert cls == "" and ok["state"] == "ok" and ok["reason"] == ""
    assert ok["initial pool / capacity"] == "600 kbit / 100 Mbit"
    # the CSS gives the class a visible colour
    assert re.search(r"tr\.nokey td\{background:#[0-9a-f]{6}", report)
    # the box near the top: before the first figure, both links with their reasons
    box = report[report.index('id="no-key"'):]
    box = box[:box.index("</div>")]
    assert report.index('id="no-key"') < report.index("<h2>Topology</h2>")
    assert "Links that make no key (2)" in box
    assert "<b>L-raman</b>" in box and RAMAN_REASON in box
    assert "loss 41.0 dB, 7.2 dB above the system&#x27;s limit (33.8 dB) &lt;limit&gt;" in box
    assert "L-partial" not in box and "L-ok" not in box
    # node down time, node incident named as a node
    assert "Nodes down during the run: N3 (60 min)." in report
    assert "node N3" in _text(report[report.index("<h2>Incidents</h2>"):])


def test_day_long_alarm_is_one_episode_and_the_report_stays_small(
    report: str, tmp_path: Path
) -> None:
    t = parse(report)
    stuck = [r for r in t.tables["alarm-episodes"] if r[1][2] == "L-raman"]
    assert len(stuck) == 1
    cls, cells = stuck[0]
    assert cls == "bad active"
    assert dict(zip(t.headers["alarm-episodes"], cells, strict=True)) == {
        "level": "critical", "kind": "qber-abort", "link": "L-raman", "start": "00:00:00",
        "end": "active", "duration": "24 h", "peak": "43.00 %", "steps": "2880",
    }
    assert t.tables["alarm-episodes"][0] == stuck[0]  # active and critical first
    # groups: the stuck link first, the flapping pool with all of its 30 episodes counted
    groups = t.tables["alarm-groups"]
    assert [r[1][:5] for r in groups] == [["L-raman", "qber-abort", "1", "1", "yes"],
                                          ["L-partial", "pool-low", "30", "0", "no"]]
    assert groups[1][1][7:] == ["60", "0 bit"]  # 30 x 2 steps; worst (lowest) pool
    flapping = [r for r in t.tables["alarm-episodes"] if r[1][2] == "L-partial"]
    assert len(flapping) == 20
    assert "… and 10 more episodes" in report
    # A day stuck above abort costs one row: the report with it is within 3 kB of the one
    # without any alarm on that link (one row per step would add 2,880 rows, > 300 kB).
    quiet = new_summary()
    quiet["alarms"] = quiet["alarms"][1:]
    base = write_report(write_run(tmp_path / "q", quiet), tmp_path / "q.html").stat().st_size
    assert 0 < len(report.encode()) - base < 3000


def test_unmet_demand_has_reason_headroom_and_served_split(report: str) -> None:
    t = parse(report)
    rows = t.tables["demands"]
    i = next(k for k, r in enumerate(rows) if r[1][0] == "D-unmet")
    cls, unmet = _row(t, "demands", "D-unmet")
    assert cls == "bad"
    assert unmet["met"] == "no"
    assert unmet["from production"] == "66 Mbit"
    assert unmet["from initial fill"] == "1 Mbit"
    assert unmet["served (production)"] == "76.39 %"
    assert unmet["served incl. initial fill"] == "77.55 %"
    assert unmet["headroom (worst hour)"] == (
        "0.12× (120 bit/s of 1 kbit/s at 13:00:00)")
    # the reason line right under the demand's row, highlighted
    assert rows[i + 1] == ("reason", [f"D-unmet not met: {UNMET_REASON}"])
    cls, met = _row(t, "demands", "D-met")
    assert cls == "" and met["met"] == "yes"
    j = next(k for k, r in enumerate(rows) if r[1][0] == "D-met")
    assert rows[j + 1][0] != "reason"
    assert sum(r[0] == "reason" for r in rows) == 1
    assert re.search(r"tr\.reason td\{background:#[0-9a-f]{6}", report)
    # the box at the top names it too
    box = report[report.index('id="unmet"'):]
    assert "Demands not met (1)" in box[:box.index("</div>")]
    assert report.index('id="unmet"') < report.index("<h2>Topology</h2>")
    # facts: demands met and the pool policy
    facts = _text(report[report.index('class="facts"'):report.index('id="no-key"')])
    assert "2 of 3 demands met" in facts
    assert "10 min of production initial pool fill (not counted as served)" in facts
    assert "1 Mbit served from the initial fill" in facts
    assert "2 links that make no key" in facts
    assert "31 (1 critical, 1 active) alarm episodes" in facts


def test_paths_over_time_list_routes_with_trusted_nodes(report: str) -> None:
    t = parse(report)
    rows = t.tables["paths"]
    assert rows[0][1][0] == "D-unmet"  # unmet demands first
    unmet = rows[:3]
    assert [r[1][1] for r in unmet] == ["00:00:00–05:30:00", "05:30:00–11:00:00",
                                        "11:00:00–end"]
    assert unmet[0][1][3] == ("N0 → N1 → N2 · trusted: N1 (L-ok, L-partial)\n"
                              "N0 → N2 · direct (L-raman)")
    assert unmet[1][0] == "bad" and unmet[1][1][2:] == ["0", "no path"]
    assert [r[1] for r in rows if r[1][0] == "D-met"] == [
        ["D-met", "00:00:00–end", "1", "N0 → N1 · direct (L-ok)"]]
    busy = [r for r in rows if r[1] and r[1][0] == "D-busy"]
    k = rows.index(busy[0])
    assert len([r for r in rows[k:] if len(r[1]) == 4]) == 50
    assert rows[-1][1] == ["… D-busy: 7 further path changes not listed"]


def old_summary() -> dict[str, Any]:
    """The summary.json of qnetkit before issue 13: no states, one alarm record per step."""
    s = new_summary()
    for ln in s["links"]:
        for key in ("connected_fraction", "state", "reason", "physical_limit", "unavailable_s",
                    "initial_pool_bits", "pool_capacity_bits"):
            del ln[key]
    for d in s["demands"]:
        for key in ("served_from_production_bits", "served_from_initial_bits",
                    "served_fraction_with_initial", "met", "reason", "headroom", "paths"):
            del d[key]
    for n in s["nodes"]:
        del n["down_s"]
    del s["pools"]
    s["incidents"] = s["incidents"][:1]
    s["alarms"] = [{"time_s": 60.0 * k, "level": "critical", "kind": "qber-abort",
                    "link": "L-raman", "value": 0.4 + 0.01 * k} for k in range(3)]
    s["alarms"].append({"time_s": 5.0, "level": "warning", "kind": "link-down", "link": "L-ok",
                        "value": "down"})
    return s


def test_old_format_summary_still_renders(tmp_path: Path) -> None:
    run = write_run(tmp_path / "old", old_summary(), n_steps=10)
    text = write_report(run, tmp_path / "old.html").read_text(encoding="utf-8")
    t = parse(text)
    assert "availability (connected)" in t.headers["links"]
    assert "state" not in t.headers["links"]
    assert 'id="no-key"' not in text and 'id="unmet"' not in text and 'id="paths"' not in text
    cls, raman = _row(t, "links", "L-raman")
    assert cls == "warn" and raman["availability (connected)"] == "0.00 %"
    # per-step alarms: one-step episodes, grouped
    eps = t.tables["alarm-episodes"]
    assert [(r[1][2], r[1][3], r[1][4], r[1][6], r[1][7]) for r in eps] == [
        ("L-raman", "00:00:00", "00:00:00", "40.00 %", "1"),
        ("L-raman", "00:01:00", "00:01:00", "41.00 %", "1"),
        ("L-raman", "00:02:00", "00:02:00", "42.00 %", "1"),
        ("L-ok", "00:00:05", "00:00:05", "down", "1"),
    ]
    assert t.tables["alarm-groups"][0][1][:3] == ["L-raman", "qber-abort", "3"]
    assert t.tables["alarm-groups"][0][1][8] == "42.00 %"
    cls, d = _row(t, "demands", "D-unmet")
    assert cls == "bad" and d["served"] == "76.39 %" and d["met"] == "no"
    assert "served (production)" not in t.headers["demands"]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(s: dict[str, Any]) -> None:
        *head, last = path.split(".")
        obj: Any = s
        for key in head:
            obj = obj[int(key)] if key.isdigit() else obj[key]
        obj[int(last) if last.isdigit() else last] = value
    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("links.2.state", 3), r"links\[2\]\.state is not a string: 3"),
        (_set("links.2.physical_limit", "yes"), r"links\[2\]\.physical_limit is not true or"),
        (_set("links.1.unavailable_s", {"cut": "long"}), r"links\[1\]\.unavailable_s\.cut is "
                                                         "not a number"),
        (_set("links.1.connected_fraction", "0.5"), r"links\[1\]\.connected_fraction is not"),
        (_set("demands.1.met", 0), r"demands\[1\]\.met is not true or false"),
        (_set("demands.1.headroom", {"requested_bps": 1.0}),
         r"demands\[1\]\.headroom has no 'worst_hour_deliverable_bps'"),
        (_set("demands.1.paths", {"from_s": 0}), r"demands\[1\]\.paths is not a list"),
        (_set("demands.1.paths.0.routes", [{"links": "L-ok"}]),
         r"demands\[1\]\.paths\[0\]\.routes\[0\]\.links is not a list of ids"),
        (_set("demands.1.paths.0.from_s", None), r"demands\[1\]\.paths\[0\] has no 'from_s'"),
        (_set("demands.2.paths.50.more", -1), r"demands\[2\]\.paths\[50\]\.more is not a "
                                               "whole number"),
        (_set("alarms.0.steps", 2.5), r"alarms\[0\]\.steps is not a whole number"),
        (_set("alarms.0.peak_value", "high"), r"alarms\[0\]\.peak_value is not a number"),
        (_set("alarms.0.active", "no"), r"alarms\[0\]\.active is not true or false"),
        (_set("pools.initial_fill", True), r"pools\.initial_fill is not 'empty', 'full' or"),
        (_set("pools", "full"), r"\(top level\)\.pools is not an object"),
    ],
)
def test_malformed_new_fields_raise_one_line(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    s = new_summary()
    mutate(s)
    run = write_run(tmp_path / "bad", s, n_steps=2)
    with pytest.raises(ReportError, match=message) as info:
        write_report(run, tmp_path / "x.html")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x.html").exists()


def test_boxes_at_the_top_stay_short_on_a_big_network(tmp_path: Path) -> None:
    s = new_summary()
    raman = s["links"][2]
    s["links"] += [{**raman, "id": f"L-extra{k}", "reason": f"Raman noise: QBER {40 + k} %"}
                   for k in range(28)]
    s["alarms"] = []
    run = write_run(tmp_path / "big", s, n_steps=3)
    text = write_report(run, tmp_path / "big.html").read_text(encoding="utf-8")
    box = text[text.index('id="no-key"'):]
    box = box[:box.index("</div>")]
    assert "Links that make no key (30)" in box
    assert box.count("<li>") == 20
    assert "… and 10 more links: see the tables below." in box
    assert "L-extra17" in box and "L-extra18" not in box  # the first 20 in summary order
    rows = parse(text).tables["links"]
    assert sum(cls == "nokey" for cls, _ in rows) == 30  # the table lists them all
