"""Test-wide settings: Hypothesis profiles.

``ci`` (the default): every run draws the same examples (derandomised), so CI is reproducible
and a failure seen once is seen again. ``thorough``: fresh random examples on every run, more of
them and no per-example deadline, for hunting rare cases by hand:
``HYPOTHESIS_PROFILE=thorough .venv/bin/pytest tests/keyrate``. Tests that fix their own
``max_examples`` keep that count, but draw new examples each run.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile(
    "thorough", max_examples=1000, derandomize=False, deadline=None, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
