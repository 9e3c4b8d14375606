"""Hypothesis profiles (tests/conftest.py): derandomised `ci` by default, `thorough` on request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def _profile_in_fresh_process(env_value: str | None) -> tuple[str, ...]:
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"}
    if env_value is not None:
        env["HYPOTHESIS_PROFILE"] = env_value
    code = (
        f"import runpy; runpy.run_path({str(CONFTEST)!r}); from hypothesis import settings as s; "
        "print(s.default.derandomize, s.default.max_examples, s.default.deadline)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return tuple(out.stdout.split())


def test_ci_profile_is_the_default_and_derandomised() -> None:
    derandomize, max_examples, _ = _profile_in_fresh_process(None)
    assert derandomize == "True"
    assert int(max_examples) == settings.get_profile("ci").max_examples


def test_thorough_profile_draws_fresh_and_more_examples() -> None:
    derandomize, max_examples, deadline = _profile_in_fresh_process("thorough")
    assert derandomize == "False"
    assert int(max_examples) > settings.get_profile("ci").max_examples
    assert deadline == "None"


def test_this_run_uses_the_profile_named_in_the_environment() -> None:
    expected = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    assert settings.default.derandomize == expected.derandomize
    assert settings.default.max_examples == expected.max_examples


def test_an_unknown_profile_name_is_refused() -> None:
    with pytest.raises(AssertionError):
        _profile_in_fresh_process("no-such-profile")
