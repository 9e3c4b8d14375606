"""The ``qnetkit`` command line."""
