"""A small on-disk cache for deterministic, expensive, public artefacts (e.g. LDPC codes).

Location: ``$QNETKIT_CACHE_DIR`` if set (``off`` disables the cache), else
``$XDG_CACHE_HOME/qnetkit``, else ``~/.cache/qnetkit``. Nothing secret is ever stored here: the
cache only holds values any party can recompute from public parameters. Every failure (no home,
read-only disk, a truncated file) degrades to "not cached"; the caller then recomputes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

ENV = "QNETKIT_CACHE_DIR"


def cache_root() -> Path | None:
    """The cache directory, or None when caching is switched off."""
    env = os.environ.get(ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "qnetkit"
    try:
        return Path.home() / ".cache" / "qnetkit"
    except RuntimeError:  # no home directory to be found
        return None


def source_digest(*paths: str | Path) -> str:
    """Short hash of source files (in order): entries keyed by it go stale when the code changes.

    One file hashes as its bytes; several as each file's bytes after its length, so moving code
    from one file to the next changes the digest too.
    """
    if len(paths) == 1:
        return hashlib.sha256(Path(paths[0]).read_bytes()).hexdigest()[:16]
    h = hashlib.sha256()
    for path in paths:
        data = Path(path).read_bytes()
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:16]


def load_arrays(kind: str, key: str) -> dict[str, npt.NDArray[np.generic]] | None:
    """The arrays stored under ``kind/key``, or None (absent, unreadable or switched off)."""
    root = cache_root()
    if root is None:
        return None
    path = root / kind / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        return None
    except Exception as exc:  # corrupt or truncated: recompute, and let the next save replace it
        log.warning("ignoring unreadable cache file %s (%s)", path, type(exc).__name__)
        return None


def save_arrays(kind: str, key: str, arrays: dict[str, npt.NDArray[np.generic]]) -> bool:
    """Store ``arrays`` under ``kind/key`` atomically (write, then rename); False if impossible."""
    root = cache_root()
    if root is None:
        return False
    folder = root / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, folder / f"{key}.npz")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        log.debug("cache write to %s failed: %s", folder, exc)
        return False
    return True
