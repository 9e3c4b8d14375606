"""The layer rules of docs/architecture.md, as import-linter contracts (`[tool.importlinter]`).

`make lint` runs the same contracts; here they are part of the suite, and a second test shows on a
copy of the package that an import against the arrows does break them (so the contracts are not
vacuous, e.g. after a package rename).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter not installed (pip install -e '.[dev]')"
)


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(PYPROJECT)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_its_layer_contracts() -> None:
    result = _lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    # All three contracts were read and checked (a renamed table would check nothing).
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("importer", "line", "contract"),
    [
        # A low layer reaching up: physics must not know links.
        ("physics/fiber.py", "import qnetkit.qkd.link", "Layers: a layer imports only"),
        # keyrate reaching up to the network layer, inside a function (lazy imports count too).
        (
            "keyrate/plob.py",
            "def _f() -> None:\n    from qnetkit.network import topology  # noqa: F401",
            "Layers: a layer imports only",
        ),
        # The key manager reaching into physics.
        ("kms/blocks.py", "import qnetkit.physics.fiber", "kms knows nothing of photons"),
        # The QKD engine reaching into the key manager.
        ("qkd/privacy.py", "import qnetkit.kms.models", "do not reach into the key manager"),
    ],
)
def test_a_forbidden_import_breaks_the_contracts(
    tmp_path: Path, importer: str, line: str, contract: str
) -> None:
    copy = tmp_path / "qnetkit"
    shutil.copytree(
        ROOT / "src" / "qnetkit", copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    target = copy / importer
    target.write_text(target.read_text() + "\n" + line + "\n")
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout
    assert "0 broken" not in result.stdout


def test_docs_point_inside_the_repository() -> None:
    """The layer map users are pointed to is docs/architecture.md, not a file outside the repo."""
    assert (ROOT / "docs" / "architecture.md").is_file()
    texts = [ROOT / "README.md", *sorted((ROOT / "src" / "qnetkit").rglob("*.py"))]
    texts += sorted((ROOT / "docs").rglob("*.md"))
    outside = [str(p.relative_to(ROOT)) for p in texts if "../shared" in p.read_text()]
    assert outside == []
    for mentioned in ("cli", "ops", "network", "qkd", "keyrate", "physics", "kms"):
        assert f"`qnetkit.{mentioned}`" in (ROOT / "docs" / "architecture.md").read_text()


# Clocks that only measure durations; `time.time()` is also a timestamp (stores take `now_s`),
# so it counts only where an assertion uses it, and `time.monotonic` stays allowed for deadlines.
_STOPWATCHES = {"perf_counter", "perf_counter_ns", "process_time", "process_time_ns"}


def _clock_call(node: ast.AST, clocks: set[str]) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
        and node.func.attr in clocks
    )


def _wall_clock_offences(tree: ast.AST) -> list[int]:
    """Lines that assert on a duration, or call a stopwatch at all."""
    lines = [n.lineno for n in ast.walk(tree) if _clock_call(n, _STOPWATCHES)]
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        timed: set[str] = set()  # names holding a clock reading or a difference of them
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and any(
                _clock_call(v, {"time"}) or (isinstance(v, ast.Name) and v.id in timed)
                for v in ast.walk(node.value)
            ):
                timed |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(func):
            if isinstance(node, ast.Assert) and any(
                _clock_call(v, {"time"}) or (isinstance(v, ast.Name) and v.id in timed)
                for v in ast.walk(node.test)
            ):
                lines.append(node.lineno)
    return sorted(set(lines))


def test_unit_tests_assert_no_wall_clock_times() -> None:
    """Speed is measured in benchmarks/ (timings.py, medians), never asserted in unit tests."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for line in _wall_clock_offences(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert offenders == []


def test_the_wall_clock_check_finds_a_timed_assertion() -> None:
    timed = ast.parse(
        "import time\n"
        "def test_fast():\n"
        "    t0 = time.time()\n"
        "    work()\n"
        "    elapsed = time.time() - t0\n"
        "    assert elapsed < 1.0\n"
    )
    stamp = ast.parse(
        "import time\n"
        "def test_store():\n"
        "    store.put(key, now_s=time.time())\n"
        "    assert store.count() == 1\n"
    )
    assert _wall_clock_offences(timed) == [6]
    assert _wall_clock_offences(stamp) == []
    assert _wall_clock_offences(ast.parse("import time\nx = time.perf_counter()\n")) == [2]


def test_split_modules_keep_their_public_imports_and_stay_small() -> None:
    """ops.report, qkd.reconciliation.ldpc and ldpc_codes were split along their seams."""
    from qnetkit.ops.report import ReportError, write_report
    from qnetkit.qkd.reconciliation.ldpc import (
        FAST_TARGETS,
        PHI_FINE,
        PHI_TABLE,
        LdpcReconciler,
        extra_parity_rows,
        layered_decode,
    )

    assert callable(write_report) and issubclass(ReportError, Exception)
    assert LdpcReconciler.__module__ == "qnetkit.qkd.reconciliation.ldpc"
    assert layered_decode is not None and extra_parity_rows is not None
    assert PHI_TABLE.size and PHI_FINE.size and FAST_TARGETS
    parts = sorted((ROOT / "src/qnetkit/ops/report").glob("*.py"))
    parts += sorted((ROOT / "src/qnetkit/qkd/reconciliation").glob("*ldpc*.py"))
    assert len(parts) >= 10
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in parts}
    too_long = {name: n for name, n in sizes.items() if n > 500}
    assert too_long == {}


_ALIASES = {"FloatArray", "IntArray", "BoolArray", "BitArray"}


def test_array_type_aliases_are_defined_once() -> None:
    """Every module imports its array aliases from ``qnetkit._types``; none defines its own."""
    owners: dict[str, list[str]] = {}
    for path in sorted((ROOT / "src" / "qnetkit").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id in _ALIASES:
                    owners.setdefault(t.id, []).append(str(path.relative_to(ROOT)))
    assert owners == {name: ["src/qnetkit/_types.py"] for name in _ALIASES}
