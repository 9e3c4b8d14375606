"""`qnetkit repeater ...` as a user runs it: stdout JSON, closed forms, one-line errors, exit 2.

Most tests call ``qnetkit.cli.main.main`` in this process (what the console script runs, minus
the interpreter start-up); one runs the real console script. Reference values are computed
here from the papers' formulas, not read from the code under test.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from qnetkit.cli.main import app, main
from qnetkit.entanglement.chain import ChainConfig, simulate_chain

QNETKIT = Path(sys.executable).with_name("qnetkit")

# A textbook chain: 2 links, p = 0.1 per 1 ms attempt, deterministic swap, Werner F = 0.95 pairs,
# perfect memories.
P, TAU_S, F = 0.1, 1e-3, 0.95
LINKS = ("--nodes", "3", "--link-success-prob", str(P), "--attempt-s", str(TAU_S),
         "--link-fidelity", str(F), "--memory-t2-s", "inf")
TEXTBOOK = (*LINKS, "--swap-success-prob", "1")
WALL = ("wall_s", "pairs_per_wall_s")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``qnetkit ARGS``: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 0), out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    assert err == ""
    parsed: dict[str, Any] = json.loads(out)  # exactly one JSON object on stdout
    return parsed


def h2(x: float) -> float:
    return -x * math.log2(x) - (1 - x) * math.log2(1 - x)


def werner_swap(f1: float, f2: float) -> float:
    """Fidelity after swapping two Werner pairs: F1 F2 + (1 - F1)(1 - F2)/3.

    Werner parameters multiply, w = (4F - 1)/3 -> w1 w2 (Duer, Briegel, Cirac, Zoller,
    PRA 59, 169 (1999), Sec. III: the connection of Werner pairs).
    """
    return f1 * f2 + (1 - f1) * (1 - f2) / 3


def two_link_mean_attempts(p: float) -> float:
    """E[max(N1, N2)] of two geometric link times: (3 - 2p) / (p (2 - p)).

    Shchukin, Schmidt, van Loock, PRA 100, 032322 (2019), two segments with deterministic
    swapping; = 2/p - 1/(1 - (1-p)^2) by inclusion-exclusion.
    """
    return (3 - 2 * p) / (p * (2 - p))


def test_analytic_textbook_chain_is_the_closed_forms(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "repeater", "analytic", *TEXTBOOK)
    wait_s = TAU_S * two_link_mean_attempts(P)
    assert wait_s == pytest.approx(0.0147368421, rel=1e-9)  # 14.74 attempts of 1 ms
    assert out["mean_waiting_time_s"] == pytest.approx(wait_s, rel=1e-12)
    assert out["rate_pairs_per_s"] == pytest.approx(1 / wait_s, rel=1e-12)
    f_out = werner_swap(F, F)
    assert f_out == pytest.approx(0.9033333333, rel=1e-9)
    assert out["mean_fidelity"] == pytest.approx(f_out, rel=1e-12)
    assert out["fidelity_std"] == 0.0
    # A swapped Werner pair is Werner: Q_Z = Q_X = 2 (1 - F) / 3; CHSH 2 sqrt(2) (4F - 1) / 3
    # (Horodecki, Horodecki, Horodecki, Phys. Lett. A 200, 340 (1995)); BBM92 key at the
    # delivery rate, 1/2 sifted, 1 - 2 h(Q) (Shor & Preskill, PRL 85, 441 (2000)).
    q = 2 * (1 - f_out) / 3
    assert out["qber"] == pytest.approx(q, rel=1e-9)
    assert out["qber_x"] == pytest.approx(q, rel=1e-9)
    assert out["chsh"] == pytest.approx(2 * math.sqrt(2) * (4 * f_out - 1) / 3, rel=1e-9)
    key = (1 / wait_s) * 0.5 * (1 - 2 * h2(q))
    assert out["secret_key_rate_bps"] == pytest.approx(key, rel=1e-9)
    assert key == pytest.approx(10.53, abs=0.01)
    # No wall time for a closed form, and the model behind each figure is named.
    assert not set(WALL) & set(out)
    assert out["mode"] == "analytic" and out["delivered_pairs"] is None
    assert out["waiting_time_model"].startswith("exact")
    assert out["fidelity_model"].startswith("exact")
    assert out["params"]["link_model"] == "textbook" and out["params"]["chain_length_km"] == 20.0


@pytest.mark.parametrize(
    ("swap_prob", "method"), [("1", "closed form"), ("0.5", "event engine")]
)
def test_simulated_chain_agrees_with_the_closed_forms(
    capsys: pytest.CaptureFixture[str], swap_prob: str, method: str
) -> None:
    pairs = 4000
    args = (*LINKS, "--swap-success-prob", swap_prob, "--pairs", str(pairs), "--seed", "3")
    out = run_json(capsys, "repeater", "chain", *args)
    assert out["mode"] == "simulated" and out["delivered_pairs"] == pairs
    # q = 1 is sampled from the max of two geometric times, q < 1 runs the event engine.
    assert method in out["params"]["method"]
    # A failed swap of two segments starts both links again: E[T] = tau E[max] / q
    # (Shchukin et al. 2019, two segments).
    wait_s = TAU_S * two_link_mean_attempts(P) / float(swap_prob)
    assert run_json(capsys, "repeater", "analytic", *args)["mean_waiting_time_s"] == (
        pytest.approx(wait_s, rel=1e-12)
    )
    stderr = out["waiting_time_std_s"] / math.sqrt(pairs)
    assert abs(out["mean_waiting_time_s"] - wait_s) < 4 * stderr
    # The spread is that of the waiting time (several ms), not zero.
    assert 0.005 < out["waiting_time_std_s"] < 0.05
    # Perfect memories: every delivered pair is the swapped Werner pair.
    assert out["mean_fidelity"] == pytest.approx(werner_swap(F, F), rel=1e-9)
    assert out["fidelity_std"] < 1e-12
    assert out["rate_pairs_per_s"] == pytest.approx(1 / out["mean_waiting_time_s"], rel=1e-9)
    assert out["events"] > 0 and out["wall_s"] >= 0 and out["pairs_per_wall_s"] > 0


def test_same_seed_same_json_other_seed_differs(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("repeater", "chain", "--nodes", "4", "--link-success-prob", "0.2",
            "--link-fidelity", "0.97", "--attempt-s", "1e-4", "--memory-t2-s", "0.01",
            "--pairs", "500")

    def without_wall(out: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in out.items() if k not in WALL}

    first = run_json(capsys, *args, "--seed", "5")
    again = run_json(capsys, *args, "--seed", "5")
    other = run_json(capsys, *args, "--seed", "6")
    assert without_wall(first) == without_wall(again)
    assert first["mean_waiting_time_s"] != other["mean_waiting_time_s"]
    assert first["mean_fidelity"] != other["mean_fidelity"]
    # T2 = 10 ms against waits of about a millisecond: decoherence spreads the fidelities.
    assert first["fidelity_std"] > 0
    assert first["mean_fidelity"] < werner_swap(werner_swap(0.97, 0.97), 0.97)


def dejmps(c: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """One DEJMPS round on two copies of a Bell-diagonal pair [A, B, C, D] (Phi+, Psi-, Psi+,
    Phi-): A' = (A^2 + B^2)/N, B' = 2CD/N, C' = (C^2 + D^2)/N, D' = 2AB/N,
    N = (A + B)^2 + (C + D)^2 (Deutsch et al., PRL 77, 2818 (1996), the map after
    one round)."""
    a, b, cc, d = c
    n = (a + b) ** 2 + (cc + d) ** 2
    return (a * a + b * b) / n, 2 * cc * d / n, (cc * cc + d * d) / n, 2 * a * b / n


def bbpssw(f: float) -> float:
    """BBPSSW recurrence on Werner pairs: F' of Bennett et al., PRL 76, 722 (1996)."""
    g = (1 - f) / 3
    return (f * f + g * g) / (f * f + 2 * f * g + 5 * g * g)


@pytest.mark.parametrize(
    ("purify", "rounds", "memories", "expected"),
    [
        ("bbpssw", "1", "2", bbpssw(0.8)),
        ("dejmps", "2", "4", dejmps(dejmps((0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3)))[0]),
    ],
)
def test_two_nodes_purify_the_elementary_pair(
    capsys: pytest.CaptureFixture[str], purify: str, rounds: str, memories: str, expected: float
) -> None:
    args = ("--nodes", "2", "--link-fidelity", "0.8", "--link-success-prob", "0.3",
            "--attempt-s", "1e-3", "--purify", purify, "--rounds", rounds,
            "--memories", memories)
    assert bbpssw(0.8) == pytest.approx(0.83815, abs=1e-5)
    closed = run_json(capsys, "repeater", "analytic", *args)
    assert closed["mean_fidelity"] == pytest.approx(expected, rel=1e-12)
    assert closed["mean_waiting_time_s"] is None  # purification: no closed form, simulate
    simulated = run_json(capsys, "repeater", "chain", *args, "--pairs", "300")
    assert simulated["mean_fidelity"] == pytest.approx(expected, rel=1e-9)
    assert simulated["delivered_pairs"] == 300
    # Failed purifications cost attempts: slower than an unpurified link (1/p attempts).
    assert simulated["mean_waiting_time_s"] > 1e-3 / 0.3


def test_flags_are_the_python_api_options(capsys: pytest.CaptureFixture[str]) -> None:
    # The README's promise: `--link-fidelity 0.9` is `simulate_chain(link_fidelity=0.9)`.
    fields = {f.name for f in dataclasses.fields(ChainConfig)}
    command = typer.main.get_command(app).commands["repeater"].commands["chain"]  # type: ignore[attr-defined]
    names = {p.name for p in command.params} - {"as_json"}
    assert names <= fields and len(names) >= 18
    for param in command.params:
        if param.name != "as_json":
            assert param.opts == [f"--{param.name.replace('_', '-')}"]
    options: dict[str, Any] = {"nodes": 3, "link_length_km": 20.0, "scheme": "double-click",
               "memory_t2_s": 0.05, "pairs": 400, "seed": 9}
    out = run_json(capsys, "repeater", "chain", "--nodes", "3", "--link-length-km", "20",
                   "--scheme", "double-click", "--memory-t2-s", "0.05", "--pairs", "400",
                   "--seed", "9")
    result = simulate_chain(**options)
    assert out["mean_waiting_time_s"] == result.mean_waiting_time_s
    assert out["mean_fidelity"] == result.mean_fidelity
    assert out["delivered_pairs"] == result.delivered_pairs == 400


def test_help_states_the_api_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    # Help texts say "(default X)" without importing the chain (fast start): they must agree.
    defaults = ChainConfig()
    command = typer.main.get_command(app).commands["repeater"].commands["chain"]  # type: ignore[attr-defined]
    checked = 0
    for param in command.params:
        found = re.search(r"\(default ([^)]*)\)", param.help or "")
        if found is None or found.group(1).startswith(("the ", "1 with")):
            continue
        stated = found.group(1)
        actual = (defaults.memory.t2_s if param.name == "memory_t2_s"
                  else getattr(defaults, str(param.name)))
        if stated == "none":
            assert actual is None, param.name
        elif isinstance(actual, str):
            assert stated == actual, param.name
        else:
            assert float(stated) == actual, param.name
        checked += 1
    assert checked >= 11


BAD_VALUES = [
    (("--link-fidelity", "1.2"), "--link-fidelity 1.2: must be a number in [0.25, 1.0]"),
    (("--link-fidelity", "0.2"), "--link-fidelity 0.2: must be a number in [0.25, 1.0]"),
    (("--attempt-s", "-1"), "--attempt-s -1.0: must be a number in (0.0, inf]"),
    (("--cutoff-s", "-0.5"), "--cutoff-s -0.5: must be a number in (0.0, inf]"),
    (("--memory-t2-s", "-2"), "--memory-t2-s -2.0: must be a number in (0.0, inf]"),
    (("--link-length-km", "-3"), "--link-length-km -3.0: must be a number in [0.0, inf]"),
    (("--link-success-prob", "1.5"), "--link-success-prob 1.5: must be a number in (0.0, 1.0]"),
    (("--swap-success-prob", "-0.1"),
     "--swap-success-prob -0.1: must be a number in (0.0, 1.0]"),
    (("--dark-count-prob", "2"), "--dark-count-prob 2.0: must be a number in [0.0, 1.0]"),
    (("--purify", "dejmps", "--rounds", "2", "--memories", "3"),
     "--memories 3: 2 purification round(s) need >= 4 memories"),
    (("--nodes", "1"), "--nodes 1: a chain needs an integer >= 2 nodes"),
    (("--scheme", "triple-click"),
     "--scheme 'triple-click': must be one of single-click, double-click, spdc"),
    (("--protocol", "swap-late"), "--protocol 'swap-late': must be one of swap-asap, nested"),
    (("--purify", "pumping"), "--purify 'pumping': must be one of bbpssw, dejmps"),
    (("--pairs", "1.5"), "--pairs '1.5': must be an integer >= 1"),
    (("--pairs", "many"), "--pairs 'many': not a number"),
    (("--pairs", "0"), "--pairs '0': must be an integer >= 1"),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
@pytest.mark.parametrize("command", ["chain", "analytic"])
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], command: str, args: tuple[str, ...], message: str
) -> None:
    code, out, err = cli(capsys, "repeater", command, *args, "--json")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [f"qnetkit: error: {message}"]


def test_human_table_keeps_the_model_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = cli(capsys, "repeater", "analytic", *TEXTBOOK)
    assert code == 0, err
    assert "mean waiting time" in out and "1.4737e-02 s" in out and "0.90333" in out
    # Printed as text, not rich markup: the brackets of "E[max of n geometric]" stay.
    assert "E[max of n geometric]" in out
    code, out, err = cli(capsys, "repeater", "chain", *TEXTBOOK, "--pairs", "100")
    assert code == 0, err
    assert "pairs per wall-second" in out and "delivered pairs" in out and "100" in out


def test_compare_columns(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "repeater", "compare", "--length-km", "400", "--step-km", "100",
                   "--scheme", "double-click")
    rows = {r["length_km"]: r for r in out["rows"]}
    assert sorted(rows) == [0.0, 100.0, 200.0, 300.0, 400.0]
    assert out["nodes"] == 5 and out["hops"] == 4 and out["clock_rate_hz"] == 1e9
    # PLOB at 1 GHz over the direct link's 0.21 dB/km fiber: -log2(1 - eta) per use
    # (Pirandola et al., Nat. Commun. 8, 15043 (2017), Eq. (19)).
    eta = 10 ** (-0.21 * 300 / 10)
    assert rows[300.0]["plob_bps"] == pytest.approx(-math.log2(1 - eta) * 1e9, rel=1e-9)
    assert rows[0.0]["plob_capped"] is True and rows[0.0]["repeater_bps"] is None
    # Four equal trusted hops over 400 km make what one 100 km link makes.
    assert rows[400.0]["trusted_node_bps"] == pytest.approx(rows[100.0]["direct_bps"], rel=1e-12)
    assert rows[400.0]["direct_bps"] == 0.0
    # The repeater column is `repeater analytic` with links of total / 4 km on the same fiber.
    chain = run_json(capsys, "repeater", "analytic", "--nodes", "5", "--link-length-km", "50",
                     "--scheme", "double-click", "--loss-db-per-km", "0.21")
    assert rows[200.0]["repeater_bps"] == pytest.approx(chain["secret_key_rate_bps"], rel=1e-12)
    assert rows[200.0]["repeater_bps"] > 0


def test_compare_table_and_plot(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    plot = tmp_path / "compare.svg"
    code, out, err = cli(capsys, "repeater", "compare", "--length-km", "300",
                         "--link-fidelity", "0.99", "--link-success-prob", "0.05",
                         "--attempt-s", "1e-4", "--plot", str(plot))
    assert code == 0, err
    assert "trusted nodes" in out and "PLOB bound" in out and f"plot written to {plot}" in out
    svg = plot.read_text()
    assert "repeater chain (5 nodes)" in svg and "PLOB bound (fiber only)" in svg


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--length-km", "-1"), "--length-km -1.0: must be a finite number > 0"),
        (("--length-km", "100", "--step-km", "0"),
         "--step-km 0.0: must be a number in (0, --length-km]"),
        (("--length-km", "100", "--plot", "rates.txt"),
         "--plot rates.txt: the file name must end in .png or .svg"),
        (("--length-km", "100", "--nodes", "1"), "--nodes 1: must be an integer >= 2"),
        (("--length-km", "100", "--link-fidelity", "1.3"),
         "--link-fidelity 1.3: must be a number in [0.25, 1.0]"),
    ],
)
def test_compare_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = cli(capsys, "repeater", "compare", *args, "--json")
    assert code == 2 and out == ""
    assert err.splitlines() == [f"qnetkit: error: {message}"]


def test_console_script_prints_one_json_object() -> None:
    proc = subprocess.run(
        [str(QNETKIT), "repeater", "chain", *TEXTBOOK, "--pairs", "200", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["delivered_pairs"] == 200
    assert out["mean_fidelity"] == pytest.approx(werner_swap(F, F), rel=1e-9)
    # --memory-t2-s inf reaches the API as infinity; strict JSON writes it as null.
    assert out["params"]["memory"]["t2_s"] is None
