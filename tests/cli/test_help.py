"""Help of every command (no type labels on flags); a `--version` that imports nothing heavy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import qnetkit
from qnetkit.cli.main import app

HEAVY = ("numpy", "scipy", "numba", "matplotlib", "fastapi", "uvicorn", "pydantic", "typer",
         "rich", "psycopg", "cryptography", "pyfftw", "networkx")


def _command_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [()]

    def walk(command: object, prefix: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append((*prefix, name))
            walk(sub, (*prefix, name))

    walk(typer.main.get_command(app), ())
    return paths


PATHS = _command_paths()


def test_every_command_is_reached() -> None:
    # The walk sees the groups and their commands (a broken walk would test nothing).
    assert {("kms", "dev"), ("qkd", "run"), ("keyrate",), ("network", "simulate"), ("demo",),
            ("report",), ("sweep",)} <= set(PATHS)
    assert len(PATHS) > 20


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "qnetkit")
def test_help_shows_no_bool_type_labels(path: tuple[str, ...]) -> None:
    result = CliRunner(env={"COLUMNS": "160", "NO_COLOR": "1"}).invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output
    assert "BOOLEAN" not in result.output


def test_value_options_keep_their_type_labels() -> None:
    # Only flags lose the label: an option that takes a value still says what it takes.
    result = CliRunner(env={"COLUMNS": "160"}).invoke(app, ["kms", "dev", "--help"])
    assert "<int>" in result.output and "<path>" in result.output


def test_version_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from qnetkit.cli.main import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('heavy:', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"qnetkit {qnetkit.__version__}", "heavy: []"]


def test_console_script_version() -> None:
    script = Path(sys.executable).parent / "qnetkit"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "qnetkit.cli.main"]
    out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONWARNINGS": "error"})
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"qnetkit {qnetkit.__version__}\n"
    assert out.stderr == ""


def test_no_arguments_prints_help_without_an_empty_error() -> None:
    out = subprocess.run([sys.executable, "-m", "qnetkit.cli.main"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "COLUMNS": "120"})
    assert "Usage: qnetkit" in out.stdout
    assert "error" not in out.stderr
