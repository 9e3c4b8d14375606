"""LDPC mother codes are built once per machine and loaded from the on-disk cache after that."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qnetkit import diskcache
from qnetkit.qkd.reconciliation import _ldpc_peg
from qnetkit.qkd.reconciliation import ldpc_codes as lc


def _fresh(rate: float, n: int) -> lc.LdpcCode:
    lc.get_code.cache_clear()
    return lc.get_code(rate, n)


def _same(a: lc.LdpcCode, b: lc.LdpcCode) -> None:
    assert a.H.shape == b.H.shape
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert (a.H != b.H).nnz == 0
    for name in ("puncture_order", "private_check", "shorten_order"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_cached_code_equals_the_built_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(diskcache.ENV, "off")
    built = _fresh(0.7, 2**14)
    monkeypatch.setenv(diskcache.ENV, str(tmp_path))
    first = _fresh(0.7, 2**14)  # builds and stores
    (entry,) = (tmp_path / "ldpc").glob("elkouss2009-r700-n16384-s1-*.npz")
    loaded = _fresh(0.7, 2**14)  # loads (build and load times: benchmarks/timings.py)
    _same(built, first)
    _same(built, loaded)
    assert loaded.H.dtype == np.uint8 and loaded.indptr.dtype == np.int32
    assert not loaded.shorten_order.flags.writeable
    # The key carries a digest of the construction's source (the module and its numba kernels):
    # editing either orphans old entries.
    assert entry.stem.endswith(diskcache.source_digest(lc.__file__, _ldpc_peg.__file__))
    lc.get_code.cache_clear()


def test_corrupt_or_inconsistent_entry_is_rebuilt(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(diskcache.ENV, str(tmp_path))
    good = _fresh(0.5, 4096)
    (entry,) = (tmp_path / "ldpc").glob("*.npz")
    entry.write_bytes(b"not a zip file")
    _same(good, _fresh(0.5, 4096))
    with np.load(entry) as data:  # the rebuild replaced the broken file
        arrays = {k: data[k] for k in data.files}
    arrays["indices"] = arrays["indices"] + 4096  # out of range: must not be trusted
    np.savez(entry, **arrays)
    _same(good, _fresh(0.5, 4096))
    lc.get_code.cache_clear()


def test_unwritable_cache_still_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(diskcache.ENV, str(blocker / "cache"))  # below a file: cannot be made
    code = _fresh(0.6, 4096)
    assert code.n == 4096
    assert not diskcache.save_arrays("ldpc", "k", {"a": np.zeros(1)})
    lc.get_code.cache_clear()


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(diskcache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert diskcache.cache_root() == tmp_path / "qnetkit"
    monkeypatch.setenv(diskcache.ENV, "off")
    assert diskcache.cache_root() is None
    assert diskcache.load_arrays("ldpc", "anything") is None


def test_cache_key_follows_every_file_of_the_construction(tmp_path: Path) -> None:
    """The construction spans ldpc_codes.py and _ldpc_peg.py: a change to either, or code moved
    from one to the other, gives a new digest (so a stale code is never loaded)."""
    codes = tmp_path / "ldpc_codes.py"
    peg = tmp_path / "_ldpc_peg.py"
    codes.write_bytes(Path(lc.__file__).read_bytes())
    peg.write_bytes(Path(_ldpc_peg.__file__).read_bytes())
    base = diskcache.source_digest(codes, peg)
    assert base == lc._SOURCE_DIGEST
    peg.write_bytes(peg.read_bytes().replace(b"_PROBES = 16", b"_PROBES = 17"))
    assert diskcache.source_digest(codes, peg) != base
    codes.write_bytes(b"a\nb\n")
    peg.write_bytes(b"c\n")
    moved = diskcache.source_digest(codes, peg)
    codes.write_bytes(b"a\n")
    peg.write_bytes(b"b\nc\n")
    assert diskcache.source_digest(codes, peg) != moved
