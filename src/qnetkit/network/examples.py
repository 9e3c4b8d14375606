"""The example topologies shipped inside the package (``qnetkit/examples/*.yaml``).

They travel with every install (wheel or editable), so ``qnetkit demo`` and
``qnetkit network examples --copy DIR`` work without a source checkout.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qnetkit.network.topology import Topology

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


@dataclass(frozen=True)
class PublishedComparison:
    """One link's nominal twin rate next to its published secret key rate (README table)."""

    link_id: str
    length_km: float
    loss_db: float
    measured_loss: bool  # the loss is the published total, not an estimate
    system: str  # registry protocol, with the real one it stands in for
    published_rate_bps: float | None
    twin_rate_bps: float
    published_qber: float | None
    twin_qber: float
    calibrated: bool
    reference: str

    @property
    def ratio(self) -> float | None:
        """Twin over published rate (None where no rate was published)."""
        if not self.published_rate_bps:
            return None
        return self.twin_rate_bps / self.published_rate_bps


def published_comparison(topo: Topology) -> list[PublishedComparison]:
    """Every link of ``topo`` with its nominal twin rate (analytic engine, as built) and the
    published values it carries; links without a published rate are listed too."""
    from qnetkit.network.linkmodel import LinkModel  # keyrate engine: only when asked

    rows = []
    for link, model in zip(topo.links, LinkModel.build_many(list(topo.links)), strict=True):
        q = link.qkd
        system = q.protocol if q.stand_in_for is None else f"{q.protocol} for {q.stand_in_for}"
        rows.append(PublishedComparison(
            link_id=link.id, length_km=link.length_km, loss_db=link.total_loss_db,
            measured_loss=link.loss_db is not None, system=system,
            published_rate_bps=link.published_rate_bps, twin_rate_bps=model.nominal_rate_bps,
            published_qber=link.published_qber, twin_qber=model.nominal_qber,
            calibrated=q.calibrated, reference=link.published_ref))
    return rows
