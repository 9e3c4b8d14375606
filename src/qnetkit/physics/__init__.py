"""Physical layer: channels, noise, sources and detectors.

Pure functions and frozen dataclasses; no I/O, no state.
"""
