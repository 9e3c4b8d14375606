"""Physical layer: channels, noise, sources and detectors as pure functions and frozen dataclasses."""
