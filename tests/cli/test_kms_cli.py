"""`qnetkit kms ...` as a user runs it: init-pki, ingest, audit, client, dev mode."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

QNETKIT = Path(sys.executable).with_name("qnetkit")


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(QNETKIT), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = int(s.getsockname()[1])
        if p < 65000:
            with socket.socket() as s2:
                try:
                    s2.bind(("127.0.0.1", p + 1))
                except OSError:
                    continue
            return p
    raise AssertionError("no free port pair")


def test_init_pki_json_and_refuses_overwrite(tmp_path: Path) -> None:
    r = run("kms", "init-pki", "--out", str(tmp_path), "--kme", "A", "--kme", "B",
            "--sae", "sae-a", "--sae", "sae-b", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["kmes"]) == {"A", "B"} and set(out["saes"]) == {"sae-a", "sae-b"}
    assert all(Path(v["cert"]).exists() for v in out["saes"].values())
    assert os.stat(out["saes"]["sae-a"]["key"]).st_mode & 0o777 == 0o600
    again = run("kms", "init-pki", "--out", str(tmp_path), "--kme", "A")
    assert again.returncode == 2 and "--force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    bad = run("kms", "init-pki", "--out", str(tmp_path / "x"), "--sae", "bad id!")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def _config(tmp_path: Path) -> Path:
    run("kms", "init-pki", "--out", str(tmp_path / "pki"), "--kme", "A", "--kme", "B",
        "--sae", "sae-a", "--sae", "sae-b")
    (tmp_path / "kek.hex").write_text(os.urandom(32).hex())
    cfg = {
        "kme_id": "A",
        "tls": {"cert": "pki/kme-A.crt", "key": "pki/kme-A.key", "ca": "pki/ca.crt"},
        "store": {"url": "sqlite:///a.db"},
        "kek": {"file": "kek.hex"},
        "saes": [{"id": "sae-a"}],
        "peers": [{"kme_id": "B", "url": "https://127.0.0.1:1", "saes": ["sae-b"]}],
    }
    path = tmp_path / "kme-a.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_ingest_then_audit_verify_and_tamper(tmp_path: Path) -> None:
    config = _config(tmp_path)
    keys = tmp_path / "keys.bin"
    keys.write_bytes(os.urandom(32 * 100 + 5))
    r = run("kms", "ingest", "--config", str(config), "--peer", "B", "--file", str(keys),
            "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["units"] == 100 and out["units_added"] == 100 and out["bits"] == 25600
    assert out["state"] == "pending"  # served only once KME B confirms the same bytes
    again = json.loads(run("kms", "ingest", "--config", str(config), "--peer", "B", "--file",
                           str(keys), "--json").stdout)
    assert again["units_added"] == 0 and again["block_ID"] == out["block_ID"]  # same bytes
    # A new file of the same name and size is a new block (the ID is not the file name's).
    keys.write_bytes(os.urandom(32 * 100 + 5))
    new = json.loads(run("kms", "ingest", "--config", str(config), "--peer", "B", "--file",
                         str(keys), "--json").stdout)
    assert new["units_added"] == 100 and new["block_ID"] != out["block_ID"]
    # Other bytes under an existing identity (link + sequence number) are an error.
    seq = ("kms", "ingest", "--config", str(config), "--peer", "B", "--block-seq", "7",
           "--file", str(keys), "--json")
    assert json.loads(run(*seq).stdout)["units_added"] == 100
    keys.write_bytes(os.urandom(32 * 100 + 5))
    clash = run(*seq)
    assert clash.returncode == 2 and len(clash.stderr.strip().splitlines()) == 1, clash.stderr
    assert "other bytes" in clash.stderr and "Traceback" not in clash.stderr
    v = run("kms", "audit", "verify", "--config", str(config), "--json")
    assert v.returncode == 0 and json.loads(v.stdout)["ok"] is True
    exp = run("kms", "audit", "export", "--config", str(config), "--format", "rfc5424")
    assert exp.returncode == 0 and exp.stdout.startswith("<86>1 ")
    assert "qnetkit-kms" in exp.stdout
    jl = run("kms", "audit", "export", "--config", str(config), "--format", "jsonl")
    recs = [json.loads(line) for line in jl.stdout.splitlines()]
    assert [r["action"] for r in recs] == ["ingest-block"] * 3 + ["refuse"]
    assert recs[-1]["detail"]["endpoint"] == "ingest"
    with sqlite3.connect(tmp_path / "a.db") as db:
        db.execute("UPDATE audit SET action = 'retrieve' WHERE seq = 1")
    v = run("kms", "audit", "verify", "--config", str(config), "--json")
    assert v.returncode == 1 and json.loads(v.stdout)["first_bad_seq"] == 1


def test_simulated_ingest_needs_a_kme_that_allows_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    keys = tmp_path / "sim.bin"
    keys.write_bytes(os.urandom(32 * 10))
    args = ("kms", "ingest", "--config", str(config), "--peer", "B", "--file", str(keys),
            "--simulated", "--json")
    r = run(*args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "simulated" in r.stderr
    cfg = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**cfg, "allow_simulated_keys": True}))
    ok = run(*args)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["simulated"] is True
    jl = run("kms", "audit", "export", "--config", str(config), "--format", "jsonl")
    recs = [json.loads(line) for line in jl.stdout.splitlines()]
    assert [r["action"] for r in recs] == ["refuse", "ingest-block"]
    assert recs[1]["detail"]["simulated"] is True


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kme_id: A\ntls: {cert: a, key: b, ca: c}\nlimits: {key_size_bits: 132}\n")
    r = run("kms", "audit", "verify", "--config", str(bad))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "multiple of 8" in r.stderr
    r = run("kms", "serve", "--config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_dev_mode_prints_one_json_line_serves_and_stops(tmp_path: Path) -> None:
    port = _free_port_pair()
    proc = subprocess.Popen(
        [str(QNETKIT), "kms", "dev", "--dir", str(tmp_path), "--port-base", str(port),
         "--prefill-bits", "200000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["kmes"] == {"A": f"https://127.0.0.1:{port}",
                                "B": f"https://127.0.0.1:{port + 1}"}
        assert Path(info["ca"]).exists()
        assert info["saes"]["sae-a"]["kme"] == "A" and info["saes"]["sae-b"]["kme"] == "B"
        a, b = info["saes"]["sae-a"], info["saes"]["sae-b"]
        enc = run("kms", "client", "enc", "--kme", info["kmes"]["A"], "--cert", a["cert"],
                  "--key", a["key"], "--ca", info["ca"], "--slave", "sae-b", "--number", "2",
                  "--json")
        assert enc.returncode == 0, enc.stderr
        keys = json.loads(enc.stdout)["keys"]
        dec = run("kms", "client", "dec", "--kme", info["kmes"]["B"], "--cert", b["cert"],
                  "--key", b["key"], "--ca", info["ca"], "--master", "sae-a",
                  "--key-id", keys[0]["key_ID"], "--key-id", keys[1]["key_ID"], "--json")
        assert dec.returncode == 0, dec.stderr
        assert json.loads(dec.stdout)["keys"] == keys
        st = run("kms", "client", "status", "--kme", info["kmes"]["A"], "--cert", a["cert"],
                 "--key", a["key"], "--ca", info["ca"], "--slave", "sae-b", "--json")
        # 200,000 bits = 781 units of 256 bits, alternately owned: 391 for A, 2 used; the
        # simulated link keeps adding more every second.
        assert json.loads(st.stdout)["stored_key_count"] >= 389
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""  # nothing after the one JSON line
