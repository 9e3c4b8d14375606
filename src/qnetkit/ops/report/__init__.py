"""One self-contained HTML report of a network simulation run directory.

``write_report(run_dir, out)`` reads ``summary.json``, ``links.csv`` and ``demands.csv`` of a
``qnetkit network simulate`` run and writes a single HTML file: inline CSS, plots as base64 PNG
(matplotlib Agg), no external resources. Every string taken from the run directory is escaped.

The CSV files can be large (thousands of links x thousands of steps: millions of rows), so they
are read in one pass of numpy's C ``loadtxt`` (about 0.45 us a row), not row by row in Python.

Modules: ``data`` (reading the run directory: ``summary`` checks summary.json field by field
with the readers of ``_checks``, ``series`` reads the CSV files), ``figures`` (matplotlib plots),
``page`` (the page and ``write_report``), ``tables`` (links, demands, paths over time),
``events`` (incidents, alarm episodes), ``_format`` (text formatting and tables).
"""

from __future__ import annotations

from qnetkit.ops.report.data import ReportError
from qnetkit.ops.report.page import ReportSection, write_report

__all__ = ["ReportError", "ReportSection", "write_report"]
