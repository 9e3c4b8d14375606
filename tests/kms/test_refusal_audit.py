"""Issue 12 items 5 and 6: refusals leave a trace (log line and ``refuse`` audit record with
the caller's certificate identity), a per-SAE token bucket answers 429 with Retry-After, and
the server log carries no per-request lines of the HTTP client library."""

from __future__ import annotations

import base64
import json
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kmenet import (
    QNETKIT,
    KmeNet,
    free_ports,
    make_pki,
    start_net,
    start_serve,
    stop_all,
    wait_refusal,
    wait_up,
    write_configs,
)

from qnetkit.kms.client import Etsi014Client, KmeHttpError
from qnetkit.kms.pki import cert_identity, client_ssl_context

API = "/api/v1/keys"
RATE_PER_S, BURST = 0.5, 3


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmeNet]:
    extra = {
        "A": {"limits": {"sae_rate_per_s": RATE_PER_S, "sae_burst": BURST}},
        # sae-b2 pinned to a certificate nobody has: sae-b2's real one is then an impostor.
        "B": {"saes": [{"id": "sae-b"}, {"id": "sae-b2", "fingerprint_sha256": "ab" * 32}]},
    }
    n = start_net(tmp_path_factory.mktemp("refusenet"), extra=extra)
    yield n
    n.stop()


def http(net: KmeNet, kme: str, cert: Path, key: Path) -> httpx.Client:
    return httpx.Client(base_url=net.url(kme), timeout=10,
                        verify=client_ssl_context(cert, key, net.layout.ca_cert))


def fingerprint(cert: Path) -> str:
    return cert_identity(cert.read_bytes()).sha256_fingerprint


def test_unmapped_certificate_is_logged_and_audited(
        net: KmeNet, caplog: pytest.LogCaptureFixture) -> None:
    cert, key = net.layout.sae["sae-x"]  # same CA, configured nowhere
    with http(net, "A", cert, key) as c:
        r = c.get(f"{API}/sae-b/status")
    assert r.status_code == 401
    rec = wait_refusal(net.kmes["A"], "unauthorised", "not mapped", cn="sae-x")
    assert rec.detail["fingerprint_sha256"] == fingerprint(cert)
    assert rec.detail["path"] == f"{API}/sae-b/status" and rec.detail["status"] == 401
    assert str(rec.detail["peer"]).startswith("127.0.0.1:")
    assert any("refused (unauthorised) cn=sae-x" in m for m in caplog.messages)


def test_wrong_role_is_audited_both_ways(net: KmeNet) -> None:
    cert, key = net.layout.sae["sae-b"]  # an SAE calling a KME-to-KME route at B
    with http(net, "B", cert, key) as c:
        assert c.post("/kme/v1/assignments", json={"assignments": []}).status_code == 401
    wait_refusal(net.kmes["B"], "unauthorised", "is a sae, not a kme", cn="sae-b")
    cert, key = net.layout.kme["C"]  # a peer KME calling the SAE API at B
    with http(net, "B", cert, key) as c:
        assert c.get(f"{API}/sae-a/status").status_code == 401
    wait_refusal(net.kmes["B"], "unauthorised", "not a sae", cn="C")


def test_pinned_fingerprint_mismatch_is_audited_as_impersonation(net: KmeNet) -> None:
    cert, key = net.layout.sae["sae-b2"]
    with http(net, "B", cert, key) as c:
        assert c.get(f"{API}/sae-a/status").status_code == 401
    rec = wait_refusal(net.kmes["B"], "unauthorised", "impersonation", cn="sae-b2")
    assert rec.detail["fingerprint_sha256"] == fingerprint(cert)


def test_failed_handshakes_are_audited_with_the_peer(net: KmeNet) -> None:
    cert, key = net.foreign.sae["sae-a"]  # right CN, wrong CA
    with pytest.raises(httpx.HTTPError), http(net, "A", cert, key) as c:
        c.get(f"{API}/sae-b/status")
    rec = wait_refusal(net.kmes["A"], "tls-handshake", "certificate")
    assert str(rec.detail["peer"]).startswith("127.0.0.1:")
    bare = ssl.create_default_context(cafile=str(net.layout.ca_cert))  # no client certificate
    bare.check_hostname = False
    with pytest.raises(httpx.HTTPError), httpx.Client(verify=bare, timeout=10) as c:
        c.get(net.url("A") + f"{API}/sae-b/status")
    wait_refusal(net.kmes["A"], "tls-handshake", "CERTIFICATE")


def test_rate_limit_per_sae_with_retry_after(net: KmeNet) -> None:
    cert, key = net.layout.sae["sae-a2"]
    with http(net, "A", cert, key) as c:
        codes = [c.get(f"{API}/sae-b/status").status_code for _ in range(BURST)]
        assert codes == [200] * BURST
        r = c.get(f"{API}/sae-b/status")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "2"  # a token every 1/RATE_PER_S = 2 s
        assert r.headers["content-type"] == "application/json" and r.json()["message"]
        for _ in range(5):  # a flood: each is logged and counted, audited once a second
            assert c.get(f"{API}/sae-b/status").status_code == 429
    rec = wait_refusal(net.kmes["A"], "rate-limited", cn="sae-a2", status=429)
    assert rec.master_sae == "sae-a2"
    # The bucket is the SAE's: sae-a at the same KME is not affected.
    with http(net, "A", *net.layout.sae["sae-a"]) as c:
        assert c.get(f"{API}/sae-b/status").status_code == 200
    metrics = net.kmes["A"].service.metrics.render().decode()
    assert 'qnetkit_kms_refusals_total{reason="rate-limited"} 6.0' in metrics
    records = [x for x in net.kmes["A"].service.store.audit_records()
               if x.action == "refuse" and x.detail["reason"] == "rate-limited"]
    assert len(records) == 1  # the other five fell in the same second


def test_serve_log_is_quiet(tmp_path: Path) -> None:
    """`kms serve`: no httpx/httpcore request lines (peer sync), no traceback on SIGTERM."""
    layout, _ = make_pki(tmp_path)
    ports = dict(zip("ABC", free_ports(3), strict=True))
    configs = write_configs(tmp_path, layout, ports)
    logs = {k: tmp_path / f"{k}.log" for k in "AB"}
    procs = [start_serve(configs[k], logs[k]) for k in "AB"]
    try:
        cert, key = layout.sae["sae-a"]
        for k in "AB":
            wait_up(f"https://127.0.0.1:{ports[k]}", cert, key, layout.ca_cert)
        block = {"block_ID": "0b5e9f0e-2f8e-4c47-9d43-5a2f3f0f6a11",
                 "key": base64.b64encode(bytes(range(256)) * 64).decode()}
        for k, peer in (("A", "B"), ("B", "A")):  # as `kms dev` feeds: the KME's own cert
            with httpx.Client(verify=client_ssl_context(*layout.kme[k], layout.ca_cert),
                              timeout=10) as c:
                r = c.post(f"https://127.0.0.1:{ports[k]}/kme/v1/ingest",
                           json={**block, "peer_KME_ID": peer})
                assert r.status_code == 200, r.text
        with Etsi014Client(f"https://127.0.0.1:{ports['A']}", cert=cert, key=key,
                           ca=layout.ca_cert) as a:
            deadline = time.monotonic() + 15
            while True:  # the block may need confirming with the peer first
                try:
                    keys = a.enc_keys("sae-b", number=2)
                    break
                except KmeHttpError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        cert, key = layout.sae["sae-b"]
        with Etsi014Client(f"https://127.0.0.1:{ports['B']}", cert=cert, key=key,
                           ca=layout.ca_cert) as b:
            b.dec_keys("sae-a", [k.key_id for k in keys])  # A pushed or B pulled: httpx ran
        time.sleep(0.5)
    finally:
        stop_all(procs)
    for k in "AB":
        text = logs[k].read_text()
        assert f"KME {k} ready" in text
        assert "HTTP Request:" not in text and "httpcore" not in text, text
        assert "Traceback" not in text and "CancelledError" not in text, text


def test_kms_dev_stops_quietly_on_sigterm(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    proc = subprocess.Popen([*QNETKIT, "kms", "dev", "--dir", str(tmp_path / "dev"),
                             "--port-base", str(port), "--prefill-bits", "8192"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert json.loads(line)["kmes"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"CancelledError" not in err, err.decode()
