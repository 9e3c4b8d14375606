"""The example topologies ship inside the package and can be listed and copied out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from qnetkit.network.examples import (
    ExampleError,
    copy_examples,
    example_path,
    examples_dir,
    list_examples,
)
from qnetkit.network.topology import load_topology

QNETKIT = Path(sys.executable).with_name("qnetkit")
REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["beijing-shanghai", "metro", "secoqc-vienna", "tokyo-qkd"]


def test_shipped_examples_are_the_package_data() -> None:
    assert list_examples() == SHIPPED
    assert examples_dir().parent.name == "qnetkit"
    # The top-level examples/ of a checkout is the same directory (a symlink), not a copy.
    assert (REPO / "examples").resolve() == examples_dir().resolve()
    assert example_path("metro") == example_path("metro.yaml")
    assert load_topology(example_path("tokyo-qkd")).name == "tokyo-qkd"


def test_unknown_example_names_the_shipped_ones() -> None:
    with pytest.raises(ExampleError, match=r"no example named 'paris'.*metro"):
        example_path("paris")


def test_copy_never_overwrites_without_force(tmp_path: Path) -> None:
    written = copy_examples(tmp_path, ["metro"])
    assert [p.name for p in written] == ["metro.yaml"]
    assert written[0].read_bytes() == example_path("metro").read_bytes()
    written[0].write_text("mine")
    # A refused copy writes nothing at all, not even the files that do not exist yet.
    with pytest.raises(ExampleError, match=r"would overwrite .*metro.yaml"):
        copy_examples(tmp_path)
    assert written[0].read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metro.yaml"]
    copy_examples(tmp_path, ["metro"], force=True)
    assert written[0].read_bytes() == example_path("metro").read_bytes()


def test_cli_lists_and_copies(tmp_path: Path) -> None:
    r = subprocess.run([str(QNETKIT), "network", "examples", "--json"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["examples"]
    assert [x["name"] for x in rows] == SHIPPED
    secoqc = next(x for x in rows if x["name"] == "secoqc-vienna")
    assert (secoqc["nodes"], secoqc["links"]) == (6, 8)
    r = subprocess.run([str(QNETKIT), "network", "examples", "metro", "--copy", str(tmp_path)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and (tmp_path / "metro.yaml").is_file()
    r = subprocess.run([str(QNETKIT), "network", "examples", "metro", "--copy", str(tmp_path)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--force" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([str(QNETKIT), "network", "examples", "nowhere"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "no example named 'nowhere'" in r.stderr


def test_wheel_carries_the_examples(tmp_path: Path) -> None:
    # A wheel install has no source tree: `qnetkit demo` needs the examples inside the package.
    # Built from a copy so that the checkout gets no build/ directory.
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, tree / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                        "-w", str(tmp_path), str(tree)], capture_output=True, text=True,
                       check=False, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("qnetkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in SHIPPED:
        assert f"qnetkit/examples/{name}.yaml" in names
    assert "qnetkit/kms/openapi.json" in names
