"""The report's HTML: one self-contained page (inline CSS, figures as base64 PNG), every string
taken from the run directory escaped. The tables are in ``tables`` (links, demands, paths) and
``events`` (incidents, alarm episodes)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import qnetkit
from qnetkit.ops.report._format import _dur, _e, _img, _pct, _si, _table, _time_unit
from qnetkit.ops.report.data import (
    MAX_SERIES,
    _down_at_end,
    _load_run,
    _Summary,
)
from qnetkit.ops.report.events import _alarms_html, _incidents_html
from qnetkit.ops.report.figures import _plot_demands, _plot_links, _plot_network, _plot_topology
from qnetkit.ops.report.summary import _Pools
from qnetkit.ops.report.tables import (
    _demands_table,
    _links_table,
    _new_format,
    _no_key_box,
    _nodes_down,
    _paths_html,
    _unmet_box,
)

# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px;background:#fff;
box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{margin:0 0 4px;font-size:26px}h2{margin:32px 0 10px;font-size:19px;
border-bottom:2px solid #e3e6ec;padding-bottom:4px}
p.desc{margin:4px 0 16px;color:#4a5161;white-space:pre-wrap}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px;
margin:12px 0}
.fact{background:#f0f3f8;border-radius:6px;padding:8px 10px}
.fact b{display:block;font-size:18px}.fact span{font-size:12px;color:#5b6375}
img{max-width:100%;height:auto;display:block;margin:8px 0}
.scroll{max-height:560px;overflow:auto;border:1px solid #e3e6ec;border-radius:4px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #eceef2;text-align:left;white-space:nowrap}
th{background:#f0f3f8;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fdecec}tr.warn td{background:#fff6e0}
.note{color:#5b6375;font-size:13px}footer{margin-top:36px;color:#8a90a0;font-size:12px}
h3{margin:18px 0 6px;font-size:15px}
td.txt{white-space:normal;min-width:180px;max-width:460px}
td.state{font-weight:600}
tr.nokey td{background:#f6c9c9;color:#5a0d0d}tr.nokey td:first-child{border-left:4px solid #b3261e}
tr.reason td{background:#fdecec;color:#7a1a14;border-bottom:2px solid #e8b4b0}
tr.active td:first-child{border-left:4px solid #b3261e}b.active{color:#b3261e}
.nokeybox{border:2px solid #b3261e;background:#fdecec;border-radius:6px;padding:10px 14px;
margin:14px 0}.nokeybox ul{margin:6px 0 0;padding-left:20px}.nokeybox li{margin:3px 0}
.nokeybox .reason{color:#7a1a14;font-weight:600}
span.tn{font-style:italic;text-decoration:underline dotted}
"""


def _select_links(s: _Summary) -> list[int]:
    """Links that make no key, links with incidents (earliest first), then the highest rates."""
    index = {ln.id: i for i, ln in enumerate(s.links)}
    chosen: list[int] = []
    # Links that make no key first (up to half the panel): their QBER and pool say why.
    for k, ln in enumerate(s.links):
        if ln.no_key and len(chosen) < MAX_SERIES // 2:
            chosen.append(k)
    for inc in sorted(s.incidents, key=lambda x: x.time_s):
        j = index.get(inc.link)
        if j is not None and j not in chosen:
            chosen.append(j)
    by_rate = sorted(range(len(s.links)),
                     key=lambda i: (-(s.links[i].mean_rate_bps or 0.0), s.links[i].id))
    for i in by_rate:
        if len(chosen) >= MAX_SERIES:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen[:MAX_SERIES]


def _initial_fill(p: _Pools | None) -> tuple[str, str]:
    """The pools' initial fill policy as a fact (value, label)."""
    if p is None or p.initial_fill is None:
        return "–", "initial pool fill"
    f = p.initial_fill
    value = f"{_dur(f)} of production" if isinstance(f, float) else _e(f)
    if p.capacity_bits_default is not None and f == "full":
        value += f" ({_si(p.capacity_bits_default, 'bit')})"
    counted = {True: " (counted as served)", False: " (not counted as served)"}
    label = "initial pool fill"
    if p.served_counts_initial is not None:
        label += counted[p.served_counts_initial]
    return value, label


def _facts(s: _Summary, n_steps: int) -> str:
    new = _new_format(s)
    total_bits = sum(ln.secret_bits or 0.0 for ln in s.links)
    avail = [ln.availability for ln in s.links if ln.availability is not None]
    connected = [ln.connected_fraction for ln in s.links if ln.connected_fraction is not None]
    crit = sum(1 for a in s.alarms if a.level == "critical")
    active = sum(1 for a in s.alarms if a.active)
    served = [d.served_fraction for d in s.demands if d.served_fraction is not None]
    met = [d.met for d in s.demands if d.met is not None]
    initial = [d.served_from_initial_bits for d in s.demands
               if d.served_from_initial_bits is not None]
    items = [
        (_dur(s.duration_s), "simulated"),
        (f"{n_steps} × {_dur(s.step_s)}", "steps"),
        (str(len(s.nodes)), "nodes"),
        (str(len(s.links)), "links"),
        (str(len(s.demands)), "demands"),
        (_si(total_bits, "bit"), "secret key generated"),
        (_pct(sum(avail) / len(avail)) if avail else "–",
         "mean link availability (making key)" if new else "mean link availability"),
    ]
    if connected:
        items.append((_pct(sum(connected) / len(connected)), "mean link connected"))
    if new:
        items.append((str(sum(ln.no_key for ln in s.links)), "links that make no key"))
    if met:
        items.append((f"{sum(met)} of {len(met)}", "demands met"))
    items.append((_pct(min(served)) if served else "–", "worst demand served"))
    if initial:
        items.append((_si(sum(initial), "bit"), "served from the initial fill"))
    if s.pools is not None:
        items.append(_initial_fill(s.pools))
    items += [
        (str(len(s.incidents)), "incidents"),
        (f"{len(s.alarms)} ({crit} critical, {active} active)", "alarm episodes"),
        (_e(s.seed) or "–", "seed"),
        (_dur(s.wall_s), "wall time"),
    ]
    cells = "".join(f'<div class="fact"><b>{v}</b><span>{k}</span></div>' for v, k in items)
    return f'<div class="facts">{cells}</div>'


@dataclass(frozen=True)
class ReportSection:
    """A study shown after the run (e.g. the demo's repeater comparison): a heading, a note,
    an optional PNG figure and an optional table of plain-text cells."""

    title: str
    note: str = ""
    image_png: Path | None = None
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()

    def html(self) -> str:
        parts = [f"<h2>{_e(self.title)}</h2>"]
        if self.note:
            parts.append(f'<p class="note">{_e(self.note)}</p>')
        if self.image_png is not None:
            b64 = base64.b64encode(Path(self.image_png).read_bytes()).decode("ascii")
            parts.append(_img(b64, self.title))
        if self.headers:
            parts.append(_table([_e(h) for h in self.headers],
                                [("", [(_e(c), "") for c in row]) for row in self.rows]))
        return "\n".join(parts)


def write_report(run_dir: Path, out: Path, sections: Sequence[ReportSection] = ()) -> Path:
    """Write the HTML report of the run in ``run_dir`` to ``out``; returns ``out``.
    ``sections`` are appended after the run's own (studies that go with the run)."""
    s, grid, dgrid = _load_run(Path(run_dir))
    duration = s.duration_s or (float(grid.t[-1] - grid.t[0]) if grid.t.size else 0.0)
    scale, xlabel = _time_unit(duration)
    down = _down_at_end(s, grid)
    selected = _select_links(s)
    incident_links = {i.link for i in s.incidents if not i.node}

    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>qnetkit report: {_e(s.topology)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>Network run: {_e(s.topology)}</h1>",
    ]
    if s.description:
        parts.append(f'<p class="desc">{_e(s.description)}</p>')
    parts += [_facts(s, int(grid.t.size)), _no_key_box(s), _unmet_box(s)]
    if grid.unknown_keys:
        parts.append(f'<p class="note">links.csv has {grid.unknown_keys} row(s) for links not '
                     "in summary.json; they are ignored.</p>")

    topo = _plot_topology(s, down)
    if topo is not None:
        parts += ["<h2>Topology</h2>",
                  '<p class="note">Links coloured by mean secret key rate (log scale); dashed: '
                  "down at the end of the run.</p>",
                  _img(topo, "topology")]

    series = _plot_links(s, grid, selected, scale, xlabel)
    if series is not None:
        names = ", ".join(_e(s.links[i].id) for i in selected)
        note = f"Drawn one by one: {names}."
        if len(s.links) > len(selected):
            note += (f" The other {len(s.links) - len(selected)} links are shown as a median "
                     "and 10–90 % band.")
        note += (f" QBER levels: warning {s.qber_warning:.3g}, abort {s.qber_abort:.3g}."
                 " Vertical lines: incidents (solid) and their detection (dotted).")
        parts += ["<h2>Link time series</h2>", f'<p class="note">{note}</p>',
                  _img(series, "link time series")]
    net = _plot_network(s, grid, scale, xlabel)
    if net is not None:
        parts += [_img(net, "network totals")]

    parts += ["<h2>Links</h2>", _nodes_down(s), _links_table(s, incident_links, down)]
    parts.append("<h2>Demands</h2>")
    dem = _plot_demands(s, dgrid, scale, xlabel)
    if dem is not None:
        parts.append(_img(dem, "demands"))
    parts += [_demands_table(s), _paths_html(s)]
    parts += ["<h2>Incidents</h2>", _incidents_html(s)]
    parts += ["<h2>Alarms</h2>", _alarms_html(s)]
    parts += [section.html() for section in sections]
    parts.append(f"<footer>qnetkit {_e(qnetkit.__version__)} · report of "
                 f"{_e(Path(run_dir).name)}</footer></main></body></html>")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
