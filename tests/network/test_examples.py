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
    PublishedComparison,
    copy_examples,
    example_path,
    examples_dir,
    list_examples,
    published_comparison,
)
from qnetkit.network.topology import load_topology

QNETKIT = Path(sys.executable).with_name("qnetkit")
REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["beijing-shanghai", "metro", "repeater-vs-trusted", "secoqc-vienna", "tokyo-qkd"]


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


# -- SECOQC and Tokyo against their published link tables ------------------------------------
# Published values: Peev et al., NJP 11, 075001 (2009) and Sasaki et al., Opt. Express 19, 10387
# (2011), link tables quoted SECOND-HAND (shared/references/paper-values.md, label "quoted", with
# the papers' sections); two rows agree with abstracts read first-hand (Fossier 2009, Treiber 2009).

# link id -> (length km, measured total loss dB or None, published secret key rate bit/s or None)
SECOQC_TABLE = {
    "sie-brt-toshiba": (33.0, 7.5, 3100.0),  # §3.2
    "sie-erd-entangled": (16.0, None, 2500.0),  # §3.4
    "erd-for-freespace": (0.08, None, 17000.0),  # §3.6
    "erd-gud-cv": (6.2, 2.8, 8000.0),  # §3.5
    "erd-brt-idq": (25.0, 5.75, 1000.0),  # §3.1
    "stp-brt-cow": (85.0, None, None),  # Fig. 2; rate plotted only
    "sie-gud-idq": (22.0, None, None),
    "brt-gud-idq": (19.0, None, None),
}
TOKYO_TABLE = {
    "nec-ko1-ot1": (45.0, 14.5, 81700.0),  # §3.1
    "ntt-ko1-ko2-dps": (90.0, 27.0, 2100.0),  # §3.3
    "melco-ot1-ot2": (24.0, 13.0, 2000.0),  # §3.4
    "toshiba-ko2-ot2": (45.0, 14.5, 304000.0),  # §3.2
    "idq-ot2-hongo": (13.0, 11.0, 410.0),  # §3.5, 400-420 bit/s with the added filter
    "allvienna-ko3-ko2": (1.0, 1.0, None),  # §3.6, no link rate
}
# Twin/published outside a factor of three -- reported in the README table, NOT retuned; the test
# pins each one's band so that a model change shows up here. Every other ratio is within x3.
SARG04_NO_KEY = ("SARG04 without decoys under the unconditional one-/two-photon bound (Tamaki-Lo, "
                 "Fung-Tamaki-Lo 2006): no key at these losses with 5e-5 dark counts per gate; the "
                 "published rates rest on a restricted-attack analysis the engine does not model")
OUTSIDE_THREE = {
    "erd-brt-idq": (SARG04_NO_KEY, 0.0, 0.0),
    "idq-ot2-hongo": (SARG04_NO_KEY, 0.0, 0.0),
    "melco-ot1-ot2": ("no accessible device figures: clock, detector, dark counts estimated",
                      3.0, 6.0),  # measured 3.90
}
CALIBRATED = {"erd-gud-cv"}  # device values chosen with the published rate in view (CV stand-in)


def _comparison(name: str) -> dict[str, PublishedComparison]:
    return {r.link_id: r for r in published_comparison(load_topology(example_path(name)))}


@pytest.mark.parametrize(("name", "table"), [("secoqc-vienna", SECOQC_TABLE),
                                             ("tokyo-qkd", TOKYO_TABLE)])
def test_every_published_link_with_its_length_loss_and_rate(
        name: str, table: dict[str, tuple[float, float | None, float | None]]) -> None:
    topo = load_topology(example_path(name))
    assert {ln.id: (ln.length_km, ln.loss_db, ln.published_rate_bps) for ln in topo.links} == table
    for ln in topo.links:
        if ln.loss_db is not None:
            # The measured total is what the link model sees, not the per-km estimate.
            assert ln.total_loss_db == pytest.approx(ln.loss_db)
        if ln.published_rate_bps is not None:
            assert "§" in ln.published_ref and "(quoted)" in ln.published_ref, ln.id
        assert ln.qkd.source, f"{ln.id}: device values need a source"


def test_published_rates_within_a_factor_of_three_except_the_reported_ones() -> None:
    rows = {**_comparison("secoqc-vienna"), **_comparison("tokyo-qkd")}
    ratios = {k: r.ratio for k, r in rows.items() if r.ratio is not None}
    assert len(ratios) == 10  # 5 SECOQC + 5 Tokyo links carry a published rate
    outside_three = {k for k, x in ratios.items() if not 1 / 3 < x < 3.0}
    assert outside_three == set(OUTSIDE_THREE)
    for k, (_why, low, high) in OUTSIDE_THREE.items():
        assert low <= ratios[k] <= high, (k, ratios[k])
    # Seven of the ten are within a factor of two, the NTT DPS loop among them (1.55 measured).
    assert {k for k, x in ratios.items() if 0.5 < x < 2.0} == set(ratios) - set(OUTSIDE_THREE)
    assert {k for k, r in rows.items() if r.calibrated} == CALIBRATED


def test_sarg04_and_dps_links_run_their_own_models() -> None:
    # Before this change both ran decoy BB84 (stand_in_for set, ratios 5.74, 3.75 and 3.71).
    rows = {**_comparison("secoqc-vienna"), **_comparison("tokyo-qkd")}
    assert rows["ntt-ko1-ko2-dps"].system == "dps"
    assert 1.2 < rows["ntt-ko1-ko2-dps"].ratio < 2.0  # type: ignore[operator]
    for k in ("erd-brt-idq", "sie-gud-idq", "brt-gud-idq", "idq-ot2-hongo"):
        assert rows[k].system == "sarg04" and rows[k].twin_rate_bps == 0.0, k


def test_entangled_qber_is_reported_not_fitted() -> None:
    # Treiber et al. 2009 (abstract): 93 % visibility, i.e. about 3.5 % QBER; the twin's
    # optimiser runs the pair source brighter (multi-pair errors), reported in the README.
    row = _comparison("secoqc-vienna")["sie-erd-entangled"]
    assert row.published_qber == 0.035
    assert 0.05 < row.twin_qber < 0.08


def test_readme_prints_the_full_ratio_table() -> None:
    readme = (REPO / "README.md").read_text()
    for name in ("secoqc-vienna", "tokyo-qkd"):
        for r in _comparison(name).values():
            line = next((x for x in readme.splitlines() if x.startswith(f"| `{r.link_id}` |")),
                        None)
            assert line is not None, f"README table lacks {r.link_id}"
            cells = [c.strip() for c in line.strip("|").split("|")]
            ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
            assert ratio in cells, (r.link_id, cells)
            assert ("yes" if r.calibrated else "no") in cells, (r.link_id, cells)


def test_secoqc_rerouting_demonstration() -> None:
    # Peev §5.1.2 (quoted): about 8,192 bit/s FOR -> BRT, routed FOR-ERD-BRT, then FOR-ERD-SIE-BRT,
    # then FOR-ERD-GUD-BRT as links go. With the id Quantique links on the unconditional no-decoy
    # SARG04 bound (no key, see above) only FOR-ERD-SIE-BRT carries key (entangled 2.5 kbit/s,
    # Toshiba 3.1 kbit/s): the twin serves about a third of the 8,192 bit/s (measured 0.33), not
    # the paper's full service -- reported in the README, not retuned.
    from qnetkit.network.simulate import simulate

    topo = load_topology(example_path("secoqc-vienna"))
    cuts = [(ev.at_s, ev.link) for ev in topo.scenario if ev.event == "cut"]
    assert cuts == [(7200, "erd-brt-idq"), (10800, "sie-brt-toshiba")]
    summary = simulate(topo, duration_s=6 * 3600, seed=1).summary()
    app = next(d for d in summary["demands"] if d["id"] == "for-brt-app")
    assert app["rate_bps"] == 8192 and 0.25 < app["served_fraction"] < 0.45
