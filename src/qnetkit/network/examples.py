"""The example topologies shipped inside the package (``qnetkit/examples/*.yaml``).

They travel with every install (wheel or editable), so ``qnetkit demo`` and
``qnetkit network examples --copy DIR`` work without a source checkout.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

SUFFIX = ".yaml"


class ExampleError(ValueError):
    """An unknown example name, or a copy that would overwrite a file."""


def examples_dir() -> Path:
    """Directory holding the shipped example topologies."""
    return Path(str(resources.files("qnetkit") / "examples"))


def list_examples() -> list[str]:
    """Names of the shipped examples (file stems), sorted."""
    return sorted(p.stem for p in examples_dir().glob(f"*{SUFFIX}"))


def example_path(name: str) -> Path:
    """Path of the shipped example ``name`` (with or without ``.yaml``)."""
    stem = name.removesuffix(SUFFIX)
    path = examples_dir() / f"{stem}{SUFFIX}"
    if not path.is_file():
        raise ExampleError(f"no example named {name!r}; shipped: {', '.join(list_examples())}")
    return path


def copy_examples(dest: Path, names: list[str] | None = None, force: bool = False) -> list[Path]:
    """Copy shipped examples into ``dest`` (created if missing); never overwrites unless ``force``.

    Every name and target is checked before the first file is written, so a refused copy writes
    nothing.
    """
    sources = [example_path(n) for n in (names or list_examples())]
    targets = [dest / src.name for src in sources]
    if not force:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise ExampleError(f"would overwrite {', '.join(existing)} (use --force)")
    dest.mkdir(parents=True, exist_ok=True)
    for src, target in zip(sources, targets, strict=True):
        shutil.copyfile(src, target)
    return targets
