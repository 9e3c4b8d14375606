"""qnetkit: quantum networks from photons to delivered keys."""

__version__ = "0.1.0"
