"""The report's HTML: one self-contained page (inline CSS, figures as base64 PNG), every string
taken from the run directory escaped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import qnetkit
from qnetkit.ops.report._format import _clock, _dur, _e, _pct, _si, _time_unit
from qnetkit.ops.report.data import (
    MAX_EVENT_ROWS,
    MAX_SERIES,
    _down_at_end,
    _load_run,
    _Summary,
)
from qnetkit.ops.report.figures import _plot_demands, _plot_links, _plot_network, _plot_topology


def _img(b64: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'


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
"""


def _table(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[tuple[str, bool]]]]) -> str:
    """Rows of (css class, cells); a cell is (escaped html, numeric)."""
    out = ['<div class="scroll"><table><thead><tr>']
    out += [f"<th>{h}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for cls, cells in rows:
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out += [f'<td class="n">{c}</td>' if num else f"<td>{c}</td>" for c, num in cells]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _select_links(s: _Summary) -> list[int]:
    """Links with incidents (earliest first), then the highest mean rates."""
    index = {ln.id: i for i, ln in enumerate(s.links)}
    chosen: list[int] = []
    for inc in sorted(s.incidents, key=lambda x: x.time_s):
        i = index.get(inc.link)
        if i is not None and i not in chosen:
            chosen.append(i)
    by_rate = sorted(range(len(s.links)),
                     key=lambda i: (-(s.links[i].mean_rate_bps or 0.0), s.links[i].id))
    for i in by_rate:
        if len(chosen) >= MAX_SERIES:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen[:MAX_SERIES]


def _facts(s: _Summary, n_steps: int) -> str:
    total_bits = sum(ln.secret_bits or 0.0 for ln in s.links)
    avail = [ln.availability for ln in s.links if ln.availability is not None]
    crit = sum(1 for a in s.alarms if a.level == "critical")
    served = [d.served_fraction for d in s.demands if d.served_fraction is not None]
    items = [
        (_dur(s.duration_s), "simulated"),
        (f"{n_steps} × {_dur(s.step_s)}", "steps"),
        (str(len(s.nodes)), "nodes"),
        (str(len(s.links)), "links"),
        (str(len(s.demands)), "demands"),
        (_si(total_bits, "bit"), "secret key generated"),
        (_pct(sum(avail) / len(avail)) if avail else "–", "mean link availability"),
        (_pct(min(served)) if served else "–", "worst demand served"),
        (str(len(s.incidents)), "incidents"),
        (f"{len(s.alarms)} ({crit} critical)", "alarms"),
        (_e(s.seed) or "–", "seed"),
        (_dur(s.wall_s), "wall time"),
    ]
    cells = "".join(f'<div class="fact"><b>{v}</b><span>{k}</span></div>' for v, k in items)
    return f'<div class="facts">{cells}</div>'


def _links_table(s: _Summary, incident_links: set[str], down: set[str]) -> str:
    published = any(ln.published_rate_bps is not None for ln in s.links)
    headers = ["link", "ends", "kind", "length", "secret key", "mean rate", "mean QBER",
               "availability", "at end"]
    if published:
        headers += ["published rate", "measured / published"]
    rows: list[tuple[str, list[tuple[str, bool]]]] = []
    for ln in s.links:
        cells: list[tuple[str, bool]] = [
            (_e(ln.id), False),
            (f"{_e(ln.a)} – {_e(ln.b)}", False),
            (_e(ln.kind), False),
            ("–" if ln.length_km is None else f"{ln.length_km:.4g} km", True),
            (_si(ln.secret_bits, "bit"), True),
            (_si(ln.mean_rate_bps, "bit/s"), True),
            (_pct(ln.mean_qber), True),
            (_pct(ln.availability), True),
            ("down" if ln.id in down else "up", False),
        ]
        if published:
            pub = ln.published_rate_bps
            ratio = (
                f"{ln.mean_rate_bps / pub:.3g}×"
                if pub and ln.mean_rate_bps is not None
                else "–"
            )
            cells += [(_si(pub, "bit/s"), True), (ratio, True)]
        cls = "bad" if ln.id in incident_links else ""
        if not cls and ln.availability is not None and ln.availability < 0.99:
            cls = "warn"
        rows.append((cls, cells))
    note = ('<p class="note">Red: link with an incident; amber: availability below 99 %. '
            "Mean QBER over the time the link was up.</p>")
    return note + _table(headers, rows)


def _demands_table(s: _Summary) -> str:
    if not s.demands:
        return '<p class="note">No demands in this run.</p>'
    headers = ["demand", "from – to", "rate", "policy", "priority", "requested", "delivered",
               "served", "fallback time"]
    rows: list[tuple[str, list[tuple[str, bool]]]] = []
    for d in s.demands:
        cls = ""
        if d.served_fraction is not None:
            cls = "bad" if d.served_fraction < 0.9 else ("warn" if d.served_fraction < 0.999
                                                         else "")
        rows.append((cls, [
            (_e(d.id), False),
            (f"{_e(d.a)} – {_e(d.b)}", False),
            (_si(d.rate_bps, "bit/s"), True),
            (_e(d.policy), False),
            (_e(d.priority), True),
            (_si(d.requested_bits, "bit"), True),
            (_si(d.delivered_bits, "bit"), True),
            (_pct(d.served_fraction), True),
            (_dur(d.fallback_s) if d.fallback_s else "0", True),
        ]))
    return _table(headers, rows)


def _incidents_html(s: _Summary) -> str:
    if not s.incidents:
        return '<p class="note">No incidents.</p>'
    incs = sorted(s.incidents, key=lambda x: x.time_s)
    rows: list[tuple[str, list[tuple[str, bool]]]] = []
    for inc in incs[:MAX_EVENT_ROWS]:
        if inc.detected_s is None:
            det, delay = "not detected", "–"
        else:
            det, delay = _clock(inc.detected_s), _dur(max(inc.detected_s - inc.time_s, 0.0))
        rows.append(("" if inc.detected_s is not None else "bad", [
            (_clock(inc.time_s), False), (_e(inc.kind), False), (_e(inc.link), False),
            (det, False), (delay, True), (_e(inc.detail), False),
        ]))
    more = (f'<p class="note">… and {len(incs) - MAX_EVENT_ROWS} more incidents.</p>'
            if len(incs) > MAX_EVENT_ROWS else "")
    return _table(["time", "kind", "link", "detected", "delay", "detail"], rows) + more


def _alarms_html(s: _Summary) -> str:
    if not s.alarms:
        return '<p class="note">No alarms.</p>'
    counts = Counter((a.level, a.kind) for a in s.alarms)
    summary = ", ".join(f"{n} × {_e(level)} {_e(kind)}"
                        for (level, kind), n in sorted(counts.items()))
    alarms = sorted(s.alarms, key=lambda a: a.time_s)
    rows: list[tuple[str, list[tuple[str, bool]]]] = [
        ("bad" if a.level == "critical" else "warn", [
            (_clock(a.time_s), False), (_e(a.level), False), (_e(a.kind), False),
            (_e(a.link), False), (_e(a.value), True),
        ])
        for a in alarms[:MAX_EVENT_ROWS]
    ]
    more = (f'<p class="note">… and {len(alarms) - MAX_EVENT_ROWS} more alarms.</p>'
            if len(alarms) > MAX_EVENT_ROWS else "")
    return (f'<p class="note">{summary}</p>'
            + _table(["time", "level", "kind", "link", "value"], rows) + more)


def write_report(run_dir: Path, out: Path) -> Path:
    """Write the HTML report of the run in ``run_dir`` to ``out``; returns ``out``."""
    s, grid, dgrid = _load_run(Path(run_dir))
    duration = s.duration_s or (float(grid.t[-1] - grid.t[0]) if grid.t.size else 0.0)
    scale, xlabel = _time_unit(duration)
    down = _down_at_end(s, grid)
    selected = _select_links(s)
    incident_links = {i.link for i in s.incidents}

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
    parts.append(_facts(s, int(grid.t.size)))
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

    parts += ["<h2>Links</h2>", _links_table(s, incident_links, down)]
    parts.append("<h2>Demands</h2>")
    dem = _plot_demands(s, dgrid, scale, xlabel)
    if dem is not None:
        parts.append(_img(dem, "demands"))
    parts.append(_demands_table(s))
    parts += ["<h2>Incidents</h2>", _incidents_html(s)]
    parts += ["<h2>Alarms</h2>", _alarms_html(s)]
    parts.append(f"<footer>qnetkit {_e(qnetkit.__version__)} · report of "
                 f"{_e(Path(run_dir).name)}</footer></main></body></html>")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
