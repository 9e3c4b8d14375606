"""The report's link and demand tables: why a link makes no key, why a demand is not met.

A link is available only while it produces secret key; its state (ok / partial / no-key) and the
one-line reason come from the run's summary, and links that make no key (or cannot, for a
physical reason such as Raman noise or loss above the system's limit) are highlighted and listed
in a box near the top. A demand shows the key served from production apart from the key of the
initial pool fill, whether it was met and why not, its headroom (worst hour's deliverable rate
against the requested rate) and its candidate paths over time with their trusted nodes.
"""

from __future__ import annotations

from qnetkit.ops.report._format import Cell, Row, _clock, _clock_span, _dur, _e, _pct, _si, _table
from qnetkit.ops.report.data import MAX_BOX_ITEMS, MAX_PATH_ROWS, _Demand, _Link, _Summary
from qnetkit.ops.report.summary import _PathSpan, _Route


def _new_format(s: _Summary) -> bool:
    """The summary has link states (written by qnetkit after issue 13)."""
    return any(ln.state is not None for ln in s.links)


def _ends(a: str, b: str) -> str:
    return f"{_e(a)} – {_e(b)}"


def _unavailable(ln: _Link) -> str:
    """Seconds without key per cause, the longest first: ``cut 5.5 h · quarantined 10 h``."""
    parts = sorted(((c, t) for c, t in ln.unavailable_s.items() if t > 0), key=lambda x: -x[1])
    return " · ".join(f"{_e(c)} {_dur(t)}" for c, t in parts) or "–"


def _no_key_box(s: _Summary) -> str:
    """The links that make no key, with their reasons; empty when every link made some key."""
    bad = [ln for ln in s.links if ln.no_key]
    if not bad:
        return ""
    items = []
    for ln in bad[:MAX_BOX_ITEMS]:
        tags = [_e(ln.state or "–")] + (["physical limit"] if ln.physical_limit else [])
        length = "" if ln.length_km is None else f" {ln.length_km:.4g} km"
        items.append(
            f'<li><b>{_e(ln.id)}</b> ({_ends(ln.a, ln.b)}, {_e(ln.kind)}{length}; '
            f'{", ".join(tags)}): <span class="reason">{_e(ln.reason or "no reason given")}'
            "</span></li>"
        )
    return (f'<div class="nokeybox" id="no-key"><b>Links that make no key ({len(bad)})</b>'
            f"<ul>{''.join(items)}</ul>{_more(len(bad), 'links')}</div>")


def _more(n: int, what: str) -> str:
    if n <= MAX_BOX_ITEMS:
        return ""
    return f'<p class="note">… and {n - MAX_BOX_ITEMS} more {what}: see the tables below.</p>'


def _unmet_box(s: _Summary) -> str:
    """The demands not met, each with its one-line reason."""
    unmet = [d for d in s.demands if d.met is False]
    if not unmet:
        return ""
    items = "".join(
        f"<li><b>{_e(d.id)}</b> ({_ends(d.a, d.b)}, served {_pct(d.served_fraction)}): "
        f'<span class="reason">{_e(d.reason or "no reason given")}</span></li>'
        for d in unmet[:MAX_BOX_ITEMS]
    )
    return (f'<div class="nokeybox" id="unmet"><b>Demands not met ({len(unmet)})</b>'
            f"<ul>{items}</ul>{_more(len(unmet), 'demands')}</div>")


def _nodes_down(s: _Summary) -> str:
    down = [n for n in s.nodes if n.down_s]
    if not down:
        return ""
    names = ", ".join(f"{_e(n.id)} ({_dur(n.down_s)})" for n in down)
    return f'<p class="note">Nodes down during the run: {names}.</p>'


def _links_table(s: _Summary, incident_links: set[str], down: set[str]) -> str:
    new = _new_format(s)
    published = any(ln.published_rate_bps is not None for ln in s.links)
    pools = any(ln.initial_pool_bits is not None for ln in s.links)
    headers = ["link", "ends", "kind", "length"]
    if new:
        headers += ["state", "reason", "availability (making key)", "connected"]
    else:
        headers += ["availability (connected)"]
    headers += ["secret key", "mean rate", "mean QBER", "at end"]
    if new:
        headers += ["without key"]
    if pools:
        headers += ["initial pool / capacity"]
    if published:
        headers += ["published rate", "measured / published"]
    rows: list[Row] = []
    for ln in s.links:
        cells: list[Cell] = [
            (_e(ln.id), ""),
            (_ends(ln.a, ln.b), ""),
            (_e(ln.kind), ""),
            ("–" if ln.length_km is None else f"{ln.length_km:.4g} km", "n"),
        ]
        if new:
            state = _e(ln.state or "–") + (" (physical limit)" if ln.physical_limit else "")
            cells += [(state, "state"), (_e(ln.reason or ""), "txt"),
                      (_pct(ln.availability), "n"), (_pct(ln.connected_fraction), "n")]
        else:
            cells += [(_pct(ln.availability), "n")]
        cells += [
            (_si(ln.secret_bits, "bit"), "n"),
            (_si(ln.mean_rate_bps, "bit/s"), "n"),
            (_pct(ln.mean_qber), "n"),
            ("down" if ln.id in down else "up", ""),
        ]
        if new:
            cells += [(_unavailable(ln), "txt")]
        if pools:
            cells += [(f"{_si(ln.initial_pool_bits, 'bit')} / "
                       f"{_si(ln.pool_capacity_bits, 'bit')}", "n")]
        if published:
            pub = ln.published_rate_bps
            ratio = (f"{ln.mean_rate_bps / pub:.3g}×"
                     if pub and ln.mean_rate_bps is not None else "–")
            cells += [(_si(pub, "bit/s"), "n"), (ratio, "n")]
        if ln.no_key:
            cls = "nokey"
        elif ln.id in incident_links:
            cls = "bad"
        elif ln.state == "partial" or (
            ln.state is None and ln.availability is not None and ln.availability < 0.99
        ):
            cls = "warn"
        else:
            cls = ""
        rows.append((cls, cells))
    if new:
        note = ("Dark red: link that makes no key (or cannot, for a physical reason); red: link "
                "with an incident; amber: link that made key only part of the time. "
                "Availability counts the steps the link produced secret key; connected, the "
                "steps it was up and authenticated. Mean QBER over the time the link was up.")
    else:
        note = ("Red: link with an incident; amber: availability below 99 %. This summary was "
                "written by an older qnetkit: availability is the time the link was up, not the "
                "time it made key. Mean QBER over the time the link was up.")
    return f'<p class="note">{note}</p>' + _table(headers, rows, table_id="links")


def _headroom(d: _Demand) -> str:
    h = d.headroom
    if h is None:
        return "–"
    ratio = "–" if h.ratio is None else f"{h.ratio:.2g}×"
    at = "" if h.worst_hour_start_s is None else f" at {_clock(h.worst_hour_start_s)}"
    return (f"{ratio} ({_si(h.worst_hour_deliverable_bps, 'bit/s')} of "
            f"{_si(h.requested_bps, 'bit/s')}{at})")


def _met(d: _Demand) -> bool | None:
    """Met as the summary says; in older summaries, served at least 99.9 % of the request."""
    if d.met is not None:
        return d.met
    return None if d.served_fraction is None else d.served_fraction >= 0.999


def _demands_table(s: _Summary) -> str:
    if not s.demands:
        return '<p class="note">No demands in this run.</p>'
    split = any(d.served_from_production_bits is not None for d in s.demands)
    counts_initial = s.pools is not None and bool(s.pools.served_counts_initial)
    headers = ["demand", "from – to", "rate", "met"]
    if split:
        headers += ["served" + (" (incl. initial fill)" if counts_initial else " (production)"),
                    "served incl. initial fill"]
    else:
        headers += ["served"]
    headers += ["headroom (worst hour)", "requested", "delivered"]
    if split:
        headers += ["from production", "from initial fill"]
    headers += ["policy", "priority", "fallback time"]
    rows: list[Row] = []
    for d in s.demands:
        met = _met(d)
        cls = "" if met is not False else "bad"
        if met is None and d.served_fraction is not None and d.served_fraction < 0.999:
            cls = "warn"
        cells: list[Cell] = [
            (_e(d.id), ""),
            (_ends(d.a, d.b), ""),
            (_si(d.rate_bps, "bit/s"), "n"),
            ("–" if met is None else ("yes" if met else "<b>no</b>"), ""),
            (_pct(d.served_fraction), "n"),
        ]
        if split:
            cells += [(_pct(d.served_fraction_with_initial), "n")]
        cells += [(_headroom(d), "n"),
                  (_si(d.requested_bits, "bit"), "n"),
                  (_si(d.delivered_bits, "bit"), "n")]
        if split:
            cells += [(_si(d.served_from_production_bits, "bit"), "n"),
                      (_si(d.served_from_initial_bits, "bit"), "n")]
        cells += [(_e(d.policy), ""), (_e(d.priority), "n"),
                  (_dur(d.fallback_s) if d.fallback_s else "0", "n")]
        rows.append((cls, cells))
        if d.reason and met is not True:
            rows.append(("reason", f"<b>{_e(d.id)} not met:</b> {_e(d.reason)}"))
    note = ""
    if split:
        note = ('<p class="note">Served counts key made during the run (production)'
                + (" and, as asked for this run, the initial pool fill" if counts_initial
                   else "; key taken from the initial pool fill is shown apart")
                + ". Headroom: the rate the network could deliver between the two sites in "
                "the demand's worst hour (max-flow of the links' mean production in that "
                "hour) against the requested rate, and when that hour starts.</p>")
    return note + _table(headers, rows, table_id="demands")


def _route(r: _Route) -> str:
    trusted = set(r.trusted_nodes)
    if r.nodes:
        hops = " → ".join(f'<span class="tn">{_e(n)}</span>' if n in trusted else _e(n)
                          for n in r.nodes)
    else:
        hops = " + ".join(_e(x) for x in r.links)
    via = (f" · trusted: {', '.join(_e(n) for n in r.trusted_nodes)}" if r.trusted_nodes
           else " · direct")
    links = (f' <span class="note">({", ".join(_e(x) for x in r.links)})</span>'
             if r.nodes and r.links else "")
    return hops + via + links


def _merged(d: _Demand) -> list[_PathSpan]:
    """Consecutive intervals with the same routes as one (a re-plan that changed nothing)."""
    out: list[_PathSpan] = []
    for span in d.paths:
        prev = out[-1] if out else None
        if prev is not None and prev.routes == span.routes and prev.to_s == span.from_s:
            out[-1] = _PathSpan(prev.from_s, span.to_s, prev.routes)
        else:
            out.append(span)
    return out


def _paths_html(s: _Summary) -> str:
    """Each demand's candidate paths over time: time range -> routes with trusted nodes."""
    with_paths = [d for d in s.demands if d.paths or d.paths_truncated]
    if not with_paths:
        return ""
    # Demands not met first: their paths explain why.
    with_paths.sort(key=lambda d: (_met(d) is not False,))
    rows: list[Row] = []
    hidden = 0
    for d in with_paths:
        for k, span in enumerate(_merged(d)):
            if len(rows) >= MAX_PATH_ROWS:
                hidden += 1
                continue
            routes = "<br>".join(_route(r) for r in span.routes) or "<b>no path</b>"
            end = span.to_s
            if end is not None and s.duration_s is not None and end >= s.duration_s:
                end = None  # "end" of the run
            rows.append(("bad" if not span.routes else "", [
                (_e(d.id) if k == 0 else "", ""),
                (_clock_span(span.from_s, end), ""),
                (str(len(span.routes)), "n"),
                (routes, "txt"),
            ]))
        if d.paths_truncated and len(rows) < MAX_PATH_ROWS:
            after = ("" if d.paths_truncated_from_s is None
                     else f" after {_clock(d.paths_truncated_from_s)}")
            n = "" if d.paths_more is None else f"{d.paths_more} "
            rows.append(("", f"… {_e(d.id)}: {n}further path changes{after} not listed"))
    more = (f'<p class="note">… and {hidden} more intervals not listed.</p>' if hidden else "")
    return ('<h3>Paths over time</h3><p class="note">The candidate path set of each demand '
            "between re-plans (unmet demands first; unchanged re-plans merged); trusted nodes "
            "relay the key hop by hop (shown in italics).</p>"
            + _table(["demand", "time", "paths", "routes (nodes · trusted nodes · links)"],
                     rows, table_id="paths") + more)
