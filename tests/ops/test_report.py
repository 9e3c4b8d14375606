"""The HTML report of a network run: self-contained, escaped, complete, fast on big runs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from qnetkit.ops.report import ReportError, write_report

EVIL = '<script>alert("x")</script>'


def make_run(
    root: Path,
    n_links: int = 3,
    n_steps: int = 60,
    step_s: float = 60.0,
    description: str = EVIL + " & friends",
) -> Path:
    """A synthetic run directory: a chain of nodes, one incident (cut of link 1 mid-run)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    links = [f"L{i}" for i in range(n_links)]
    cut_link, cut_at = links[min(1, n_links - 1)], n_steps // 2
    rates = 10 ** rng.uniform(1, 5, n_links)
    nodes = [
        {"id": f"N{i}", "kind": "trusted-relay" if i % 2 else "kme",
         "x_km": float(10 * (i % 50)), "y_km": float(10 * (i // 50))}
        for i in range(n_links + 1)
    ]
    summary = {
        "topology": "synthetic <b>ring</b>",
        "description": description,
        "duration_s": n_steps * step_s,
        "step_s": step_s,
        "seed": 7,
        "wall_s": 1.25,
        "links": [
            {"id": lid, "a": f"N{i}", "b": f"N{i + 1}", "kind": "fiber", "length_km": 20.0 + i,
             "secret_bits": float(rates[i] * n_steps * step_s), "mean_rate_bps": float(rates[i]),
             "mean_qber": 0.02, "availability": 0.5 if lid == cut_link else 1.0,
             "published_rate_bps": 1000.0 if i == 0 else None}
            for i, lid in enumerate(links)
        ],
        "demands": [
            {"id": "D-alpha", "a": "N0", "b": f"N{n_links}", "rate_bps": 100.0,
             "policy": "refuse", "priority": 1, "requested_bits": 360000.0,
             "delivered_bits": 180000.0, "served_fraction": 0.5, "fallback_s": 0.0},
            {"id": "D-beta", "a": "N0", "b": "N1", "rate_bps": 50.0, "policy": "fallback-pqc",
             "priority": 2, "requested_bits": 180000.0, "delivered_bits": 180000.0,
             "served_fraction": 1.0, "fallback_s": 120.0},
        ],
        "incidents": [
            {"kind": "fiber-cut", "link": cut_link, "time_s": cut_at * step_s,
             "detected_s": (cut_at + 1) * step_s, "detail": "backhoe <digger>"},
        ],
        "alarms": [
            {"time_s": (cut_at + 1) * step_s, "level": "critical", "kind": "link-down",
             "link": cut_link, "value": 0},
            {"time_s": 5 * step_s, "level": "warning", "kind": "qber-high", "link": links[0],
             "value": 0.061},
        ],
        "nodes": nodes,
    }
    (root / "summary.json").write_text(json.dumps(summary))

    t = np.repeat(np.arange(n_steps) * step_s, n_links)
    li = np.tile(np.arange(n_links), n_steps)
    step = np.repeat(np.arange(n_steps), n_links)
    up = ~((li == links.index(cut_link)) & (step >= cut_at))
    rate = np.where(up, rates[li] * rng.uniform(0.8, 1.2, li.size), 0.0)
    qber = 0.02 + 0.005 * rng.standard_normal(li.size)
    pool = np.cumsum(rate.reshape(n_steps, n_links), axis=0).reshape(-1) * step_s
    det = 0.25 - 1e-6 * step
    with (root / "links.csv").open("w") as f:
        f.write("time_s,link,rate_bps,qber,up,pool_bits,detector_efficiency\n")
        f.writelines(
            f"{t[k]:g},{links[li[k]]},{rate[k]:.6g},{f'{qber[k]:.5f}' if up[k] else ''},"
            f"{int(up[k])},{pool[k]:.6g},{det[k]:.6g}\n"
            for k in range(t.size)
        )
    with (root / "demands.csv").open("w") as f:
        f.write("time_s,demand,delivered_bps,fallback\n")
        for s in range(n_steps):
            f.write(f"{s * step_s:g},D-alpha,{100.0 if s < cut_at else 0.0},0\n")
            f.write(f"{s * step_s:g},D-beta,50,{int(s in (10, 11))}\n")
    return root


def test_report_is_self_contained_and_complete(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    out = write_report(run, tmp_path / "r" / "report.html")
    assert out == tmp_path / "r" / "report.html"
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
    text = out.read_text(encoding="utf-8")
    assert text.count('<img src="data:image/png;base64,') >= 2
    for ident in ("L0", "L1", "L2", "D-alpha", "D-beta", "fiber-cut"):
        assert ident in text
    assert "backhoe &lt;digger&gt;" in text
    assert "link-down" in text and "qber-high" in text
    # published rate and ratio for the link that has one
    assert "published rate" in text
    # no external resources
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    # strings from the files are escaped
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; friends" in text
    assert "synthetic &lt;b&gt;ring&lt;/b&gt;" in text


def _append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def test_missing_summary_raises(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=r"no summary\.json"):
        write_report(tmp_path / "empty", tmp_path / "x.html")
    with pytest.raises(ReportError, match="not a directory"):
        write_report(tmp_path / "nope", tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: (d / "summary.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "summary.json").write_text("[1, 2]"), "not a JSON object"),
        (lambda d: (d / "summary.json").write_text('{"links": [{"a": "x"}]}'), "links\\[0\\]"),
        (lambda d: (d / "links.csv").unlink(), r"no links\.csv"),
        (lambda d: (d / "links.csv").write_text("time_s,link\n0,L0\n"), "no column 'rate_bps'"),
        (lambda d: _append(d / "links.csv", "1,L0,2\n"),
         r"links\.csv line 182: 3 fields, expected 7"),
        (lambda d: _append(d / "links.csv", "1,L0,x,0,1,0,0\n"),
         r"links\.csv line 182: could not convert string 'x' .*\(field 3\)"),
    ],
)
def test_malformed_run_dir_raises_one_line(
    tmp_path: Path, mutate: Callable[[Path], object], message: str
) -> None:
    run = make_run(tmp_path / "run")
    mutate(run)
    with pytest.raises(ReportError, match=message) as info:
        write_report(run, tmp_path / "x.html")
    assert "\n" not in str(info.value)


def test_no_incidents_no_demands(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_links=1, n_steps=5)
    data = json.loads((run / "summary.json").read_text())
    data.update(incidents=[], alarms=[], demands=[])
    (run / "summary.json").write_text(json.dumps(data))
    (run / "demands.csv").unlink()
    text = write_report(run, tmp_path / "r.html").read_text()
    assert "No incidents." in text and "No demands in this run." in text


def test_big_run(tmp_path: Path) -> None:
    # Its run time is measured in benchmarks/timings.py, not asserted here.
    run = make_run(tmp_path / "run", n_links=500, n_steps=1440, description="big")
    text = write_report(run, tmp_path / "big.html").read_text()
    assert "L499" in text and "other 488 links" in text


def test_empty_fields_and_unknown_links_are_tolerated(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    _append(run / "links.csv", "60,L0,5,,0,,0.25\n120,ghost,1,0.01,1,3,0.25\n")
    text = write_report(run, tmp_path / "r.html").read_text()
    assert "1 row(s) for links not in summary.json" in text
