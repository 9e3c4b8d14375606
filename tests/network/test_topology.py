"""Topology files: the shipped examples load, and bad files report every problem by its path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from qnetkit.network.linkmodel import LinkModel
from qnetkit.network.topology import (
    TopologyError,
    field_path,
    load_topology,
    parse_duration_s,
    parse_topology,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_NAMES = ["secoqc-vienna", "tokyo-qkd", "beijing-shanghai", "metro"]


def _good() -> dict[str, Any]:
    return {
        "name": "t",
        "nodes": [{"id": "A"}, {"id": "B"}, {"id": "C"}],
        "links": [
            {"id": "AB", "a": "A", "b": "B", "length_km": 10},
            {"id": "BC", "a": "B", "b": "C", "length_km": 20},
            {"id": "CA", "a": "C", "b": "A", "length_km": 15},
            {"id": "AB2", "a": "A", "b": "B", "length_km": 12},
        ],
        "demands": [{"id": "d", "a": "A", "b": "C", "rate_bps": 1000}],
        "scenario": [{"at_s": 60, "event": "cut", "link": "BC"}],
    }


def _problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(TopologyError) as info:
        parse_topology(data, "bad.yaml")
    return info.value.problems


# -- the shipped examples ------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_loads(name: str) -> None:
    topo = load_topology(EXAMPLES / f"{name}.yaml")
    assert topo.name == name
    assert topo.nodes and topo.links and topo.demands and topo.scenario


@pytest.mark.parametrize("name", ["beijing-shanghai", "metro"])
def test_example_published_rates_match_the_analytic_engine(name: str) -> None:
    # SECOQC and Tokyo: tests/network/test_examples.py (factor three, reported outliers).
    topo = load_topology(EXAMPLES / f"{name}.yaml")
    for link in topo.links:
        if link.published_rate_bps is None:
            continue
        nominal = LinkModel.build(link).nominal_rate_bps
        assert 0.5 < nominal / link.published_rate_bps < 2.0, link.id


def test_real_networks_cite_their_source_and_published_rates() -> None:
    expected = {"secoqc-vienna": "075001", "tokyo-qkd": "10387", "beijing-shanghai": "589"}
    for name, ref in expected.items():
        topo = load_topology(EXAMPLES / f"{name}.yaml")
        assert ref in topo.source
        assert any(ln.published_rate_bps for ln in topo.links), name
        assert "# estimated" in (EXAMPLES / f"{name}.yaml").read_text()


def test_secoqc_shape() -> None:
    topo = load_topology(EXAMPLES / "secoqc-vienna.yaml")
    assert len(topo.nodes) == 6 and len(topo.links) == 8  # Peev et al. 2009
    assert {n.id for n in topo.nodes} == {"STP", "BRT", "GUD", "SIE", "ERD", "FOR"}
    assert max(ln.length_km for ln in topo.links) == pytest.approx(85.0)  # STP-BRT, Fig. 2
    assert {"bbm92", "decoy-bb84", "sarg04"} == {ln.qkd.protocol for ln in topo.links}
    # The id Quantique links run the engine's own SARG04 model (no decoys, as deployed); only the
    # CV and COW links still borrow another protocol.
    stand_ins = {ln.id: ln.qkd.stand_in_for for ln in topo.links if ln.qkd.stand_in_for}
    assert set(stand_ins) == {"erd-gud-cv", "stp-brt-cow"}
    idq = [ln for ln in topo.links if ln.id.endswith("-idq")]
    assert {(ln.qkd.protocol, ln.qkd.decoys) for ln in idq} == {("sarg04", "none")}


def test_tokyo_runs_dps_and_sarg04_models() -> None:
    topo = load_topology(EXAMPLES / "tokyo-qkd.yaml")
    systems = {ln.id: (ln.qkd.protocol, ln.qkd.stand_in_for) for ln in topo.links}
    assert systems["ntt-ko1-ko2-dps"] == ("dps", None)
    assert systems["idq-ot2-hongo"] == ("sarg04", None)
    # A DPS system has no decoys; the topology refuses a field its protocol does not have.
    data = yaml.safe_load((EXAMPLES / "tokyo-qkd.yaml").read_text())
    data["links"][1]["qkd"]["decoys"] = "none"
    with pytest.raises(TopologyError, match=r"links\[1\]\.qkd\.decoys: not a parameter of dps"):
        parse_topology(data)


def test_beijing_shanghai_backbone() -> None:
    topo = load_topology(EXAMPLES / "beijing-shanghai.yaml")
    backbone = [ln for ln in topo.links if ln.id[:5] in ("BJ-JN", "JN-HF", "HF-SH")]
    assert sum(ln.length_km for ln in backbone) == pytest.approx(2032.0, abs=1.0)
    relays = {ln.a for ln in backbone} | {ln.b for ln in backbone}
    assert len(relays) == 32
    sats = [ln for ln in topo.links if ln.kind == "satellite"]
    assert len(sats) == 2 and all(ln.passes is not None for ln in sats)


def test_metro_drives_the_demo() -> None:
    topo = load_topology(EXAMPLES / "metro.yaml")
    assert topo.step_s == 60
    kinds = {n.id: n.kind for n in topo.nodes}
    assert kinds["DC1"] == kinds["DC2"] == "kme"
    assert all(5 <= ln.length_km <= 25 for ln in topo.links)
    assert any(ln.classical_channels for ln in topo.links)
    assert any(ln.ageing.efficiency_loss_per_day > 0 for ln in topo.links)
    dc = next(d for d in topo.demands if {d.a, d.b} == {"DC1", "DC2"})
    assert dc.policy == "fallback-pqc" and dc.priority >= 8
    assert any(d.policy == "refuse" and "DC1" in (d.a, d.b) for d in topo.demands)
    events = {(ev.event, ev.link): ev.at_s for ev in topo.scenario}
    cut = next((link, t) for (e, link), t in events.items() if e == "cut")
    assert cut[1] == 8 * 3600 and events[("repair", cut[0])] == 11 * 3600
    eve = next((link, t) for (e, link), t in events.items() if e == "eavesdropper")
    assert eve[1] == 14 * 3600 and events[("eavesdropper-off", eve[0])] == 15 * 3600
    assert eve[0] != cut[0]


# -- bad files -----------------------------------------------------------------------------


def test_good_document_parses() -> None:
    topo = parse_topology(_good())
    assert [ln.id for ln in topo.links] == ["AB", "BC", "CA", "AB2"]


def test_field_path_in_the_files_terms() -> None:
    assert field_path(("links", 3, "length_km")) == "links[3].length_km"
    assert field_path(("links", 0, "qkd", "pulse_rate_hz")) == "links[0].qkd.pulse_rate_hz"
    assert field_path(()) == "(top level)"


def test_negative_length_reports_its_path() -> None:
    data = _good()
    data["links"][3]["length_km"] = -5
    problems = _problems(data)
    assert [p for p, _ in problems] == ["links[3].length_km"]
    assert "greater than 0" in problems[0][1]


def test_several_schema_errors_at_once() -> None:
    data = _good()
    data["links"][3]["length_km"] = -5
    data["links"][1]["qkd"] = {"pulse_rate_hz": 0}
    data["demands"][0]["rate_bps"] = -1
    data["nodes"][0]["colour"] = "red"
    paths = {p for p, _ in _problems(data)}
    assert paths == {"links[3].length_km", "links[1].qkd.pulse_rate_hz",
                     "demands[0].rate_bps", "nodes[0].colour"}


def test_several_cross_check_errors_at_once() -> None:
    data = _good()
    data["links"][2]["b"] = "Z"  # unknown node
    data["nodes"].append({"id": "A"})  # duplicate id
    data["scenario"][0]["link"] = "nope"  # unknown link
    problems = _problems(data)
    assert len(problems) == 3
    assert {p for p, _ in problems} == {"links[2].b", "nodes[3].id", "scenario[0].link"}
    text = str(TopologyError("bad.yaml", problems))
    assert "bad.yaml: links[2].b: unknown node 'Z'" in text


def test_schema_and_cross_check_errors_together() -> None:
    data = _good()
    data["links"][3]["length_km"] = -5  # schema error
    data["links"][2]["b"] = "Z"  # unknown node
    data["nodes"].append({"id": "A"})  # duplicate id
    problems = _problems(data)
    assert {p for p, _ in problems} == {"links[3].length_km", "links[2].b", "nodes[3].id"}


def test_unknown_protocol_and_preset() -> None:
    data = _good()
    data["links"][0]["qkd"] = {"protocol": "bb85"}
    data["links"][1]["qkd"] = {"protocol": "decoy-bb84", "preset": "toshiba2099"}
    data["links"][2]["qkd"] = {"protocol": "plob"}  # a bound, not a QKD system
    problems = dict(_problems(data))
    assert "unknown protocol 'bb85'" in problems["links[0].qkd.protocol"]
    assert "decoy-bb84" in problems["links[0].qkd.protocol"]
    assert "unknown preset 'toshiba2099'" in problems["links[1].qkd.preset"]
    assert "gys2004" in problems["links[1].qkd.preset"]
    assert "links[2].qkd.protocol" in problems


def test_measured_total_loss_replaces_the_per_km_estimate() -> None:
    data = _good()
    data["links"][0].update(loss_db_per_km=0.2, loss_db=7.5)  # 10 km: 2 dB fiber + 5.5 dB lumped
    link = parse_topology(data).links[0]
    assert link.total_loss_db == pytest.approx(7.5)
    assert link.lumped_loss_db == pytest.approx(5.5)
    # The link model sees the measured total: same rate as the explicit per-km + lumped split.
    same = link.model_copy(update={"loss_db": None, "extra_loss_db": 5.5})
    assert LinkModel.build(link).nominal_rate_bps == pytest.approx(
        LinkModel.build(same).nominal_rate_bps, rel=1e-12)
    lossless = link.model_copy(update={"loss_db": 2.0})
    assert LinkModel.build(lossless).nominal_rate_bps > 2 * LinkModel.build(link).nominal_rate_bps


def test_measured_loss_is_validated() -> None:
    data = _good()
    data["links"][0].update(loss_db=5.0, extra_loss_db=1.0)  # both: ambiguous
    data["links"][1].update(loss_db_per_km=0.3, loss_db=3.0)  # 20 km x 0.3 = 6 dB > 3 dB
    data["links"][2]["loss_db"] = -1
    problems = dict(_problems(data))
    assert "either loss_db" in problems["links[0]"]
    assert "below the fiber's own 6 dB" in problems["links[1]"]
    assert "links[2].loss_db" in problems


def test_device_values_must_belong_to_the_protocol() -> None:
    data = _good()
    data["links"][0]["qkd"] = {"protocol": "bbm92", "sifting_factor": 0.25}
    data["links"][1]["qkd"] = {"protocol": "decoy-bb84", "decoys": "vacuum+weak", "mu": 0.1,
                               "nu": 0.2}  # weak decoy above the signal
    problems = dict(_problems(data))
    assert problems["links[0].qkd.sifting_factor"] == "not a parameter of bbm92"
    assert "weak decoy must be below the signal" in problems["links[1].qkd"]
    data = _good()
    data["links"][2]["qkd"] = {"protocol": "decoy-bb84", "ec_efficiency": 0.9}  # below Shannon
    assert [p for p, _ in _problems(data)] == ["links[2].qkd.ec_efficiency"]


def test_device_values_reach_the_rate_model() -> None:
    data = _good()
    data["links"][0]["qkd"] = {"protocol": "decoy-bb84", "sifting_factor": 0.25,
                               "ec_efficiency": 1.1, "decoys": "vacuum+weak", "mu": 0.4,
                               "nu": 0.15, "calibrated": True, "source": "x",
                               "stand_in_for": "SARG04"}
    link = parse_topology(data).links[0]
    model = LinkModel.build(link)
    p = model.params
    assert (p.sifting_factor, p.ec_efficiency, p.decoys, p.mu, p.nu) == (
        0.25, 1.1, "vacuum+weak", 0.4, 0.15)
    assert model.mu == 0.4


def test_monte_carlo_engine_is_decoy_bb84_only() -> None:
    data = _good()
    data["links"][0]["qkd"] = {"protocol": "bbm92", "engine": "monte-carlo"}
    assert [p for p, _ in _problems(data)] == ["links[0].qkd.engine"]


def test_scenario_naming_an_unknown_link() -> None:
    data = _good()
    data["scenario"].append({"at_s": 120, "event": "repair", "link": "XY"})
    assert _problems(data) == [("scenario[1].link", "unknown link 'XY'")]


def test_satellite_link_needs_passes_and_a_demand_two_sites() -> None:
    data = _good()
    data["links"][0]["kind"] = "satellite"
    data["demands"][0]["b"] = "A"
    paths = {p for p, _ in _problems(data)}
    assert paths == {"links[0].passes", "demands[0]"}


def test_link_with_equal_ends_and_bad_thresholds() -> None:
    data = _good()
    data["links"][0]["b"] = "A"
    data["monitoring"] = {"qber_warning": 0.12, "qber_abort": 0.11}
    problems = _problems(data)
    assert problems[0][0] == "links[0]"
    data["links"][0]["b"] = "B"
    assert _problems(data) == [("monitoring.qber_warning", "must be below qber_abort")]


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: t\nnodes:\n  - {id: A\n  - {id: B}\nlinks: []\n")
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    (where, msg), = info.value.problems
    assert where.startswith("line ") and int(where.split()[1]) in (3, 4)
    assert msg == "not valid YAML"
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(tmp_path / "nope.yaml")
    assert info.value.problems[0][0] == "(file)"


def test_load_reports_paths_with_the_file_name(tmp_path: Path) -> None:
    data = copy.deepcopy(_good())
    data["links"][3]["length_km"] = 0
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert f"{path}: links[3].length_km:" in str(info.value)


# -- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("30m", 1800.0), ("6h", 21600.0), ("1d", 86400.0), ("45", 45.0),
    ("1.5h", 5400.0), (" 2 d ", 172800.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "6 hours", "1w", "1e3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration_s(text)
