"""Test-wide settings: property tests draw the same examples on every run (reproducible CI)."""

from hypothesis import settings

settings.register_profile("qnetkit", derandomize=True, print_blob=True)
settings.load_profile("qnetkit")
