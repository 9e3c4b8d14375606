"""ETSI GS QKD 014 server over real HTTPS with mutual TLS on loopback (three KMEs A-B-C)."""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kmenet import KmeNet, start_net

from qnetkit.kms.atrest import audit_key, load_kek
from qnetkit.kms.audit import verify_chain
from qnetkit.kms.client import KmeConnectionError, KmeHttpError
from qnetkit.kms.pki import client_ssl_context

API = "/api/v1/keys"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmeNet]:
    n = start_net(tmp_path_factory.mktemp("kmenet"))
    n.feed("A", "B", 64 * 1024)
    n.feed("B", "C", 16 * 1024)
    yield n
    n.stop()


def raw(net: KmeNet, sae: str, kme: str) -> httpx.Client:
    cert, key = net.layout.sae[sae]
    ctx = client_ssl_context(cert, key, net.layout.ca_cert)
    return httpx.Client(base_url=net.url(kme), verify=ctx, timeout=10)


def test_status_object(net: KmeNet) -> None:
    with net.client("sae-a") as c:
        st = c.status("sae-b")
    # Clause 6.1: every field of the Status object, with this KME's limits.
    assert st["source_KME_ID"] == "A" and st["target_KME_ID"] == "B"
    assert st["master_SAE_ID"] == "sae-a" and st["slave_SAE_ID"] == "sae-b"
    assert st["key_size"] == 256 and st["min_key_size"] == 64 and st["max_key_size"] == 8192
    assert st["max_key_per_request"] == 128 and st["max_SAE_ID_count"] == 4
    # 64 KiB shared = 2048 units of 256 bits, half of them A's to deliver.
    assert 0 < st["stored_key_count"] <= 1024


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_enc_then_dec_same_bytes_at_both_ends(net: KmeNet, method: str) -> None:
    with net.client("sae-a") as a, net.client("sae-b") as b:
        keys = a.enc_keys("sae-b", number=3, size=512, method=method)
        assert len(keys) == 3 and all(len(k.key) == 64 for k in keys)
        assert len({k.key_id for k in keys}) == 3
        got = b.dec_keys("sae-a", [k.key_id for k in keys], method="POST")
        assert [g.key for g in got] == [k.key for k in keys]
        # Delivery semantics: within the re-fetch window the same SAE gets the same bytes
        # again (a response lost to a crash is not a lost key)...
        assert b.dec_keys("sae-a", [keys[0].key_id])[0].key == keys[0].key
    # ...and no other SAE ever gets them (clause 5.4 -> 400, as for an unknown key ID).
    with net.client("sae-b2", "B") as b2, pytest.raises(KmeHttpError) as e:
        b2.dec_keys("sae-a", [keys[0].key_id])
    assert e.value.status_code == 400


def test_dec_keys_by_get_single_id(net: KmeNet) -> None:
    with net.client("sae-a") as a, net.client("sae-b") as b:
        (k,) = a.enc_keys("sae-b")
        (g,) = b.dec_keys("sae-a", [k.key_id], method="GET")
        assert g.key == k.key and len(k.key) == 32


def test_unknown_certificate_refused_at_handshake(net: KmeNet) -> None:
    cert, key = net.foreign.sae["sae-a"]
    # Trust the real CA (so the server is verified) but present a foreign-CA client cert.
    ctx = client_ssl_context(cert, key, net.layout.ca_cert)
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError,
                        ssl.SSLError)), httpx.Client(verify=ctx) as c:
        c.get(net.url("A") + f"{API}/sae-b/status")
    # And no certificate at all.
    bare = ssl.create_default_context(cafile=str(net.layout.ca_cert))
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError,
                        ssl.SSLError)), httpx.Client(verify=bare) as c:
        c.get(net.url("A") + f"{API}/sae-b/status")


def test_client_reports_handshake_failure_in_one_line(net: KmeNet) -> None:
    from qnetkit.kms.client import Etsi014Client

    cert, key = net.foreign.sae["sae-a"]
    with pytest.raises(KmeConnectionError) as e, Etsi014Client(
            net.url("A"), cert=cert, key=key, ca=net.layout.ca_cert) as c:
        c.status("sae-b")
    assert "\n" not in str(e.value)


def test_wrong_sae_gets_401(net: KmeNet) -> None:
    # sae-x: valid certificate of the network's CA, configured at no KME.
    with raw(net, "sae-x", "A") as c:
        r = c.get(f"{API}/sae-b/enc_keys")
    assert r.status_code == 401 and "message" in r.json()
    # sae-c's certificate presented at A (sae-c lives at C).
    with raw(net, "sae-c", "A") as c:
        assert c.get(f"{API}/sae-b/status").status_code == 401
    # A key for sae-b asked for by sae-b2 (same KME, not a slave of that key): answered
    # exactly like an unknown key ID (issue 12, item 8: no existence oracle), and audited.
    with net.client("sae-a") as a, raw(net, "sae-b2", "B") as b2:
        (k,) = a.enc_keys("sae-b")
        theirs = b2.get(f"{API}/sae-a/dec_keys", params={"key_ID": k.key_id})
        unknown = b2.get(f"{API}/sae-a/dec_keys",
                         params={"key_ID": "00000000-0000-4000-8000-000000000000"})
    assert theirs.status_code == unknown.status_code == 400
    assert theirs.content == unknown.content
    refused = [r for r in net.kmes["B"].service.store.audit_records() if r.action == "refuse"
               and r.key_ids == (k.key_id,)]
    assert [(r.slave_saes, r.detail["reason"]) for r in refused] == [(("sae-b2",),
                                                                     "not_entitled")]
    # ...and the rightful slave still gets it afterwards.
    with net.client("sae-b") as b:
        assert b.dec_keys("sae-a", [k.key_id])[0].key == k.key


@pytest.mark.parametrize(
    ("method", "path", "kw", "fragment"),
    [
        ("GET", "sae-b/enc_keys?size=100", {}, "multiple of 8"),
        ("GET", "sae-b/enc_keys?number=0", {}, "number"),
        ("GET", "sae-b/enc_keys?number=129", {}, "number"),
        ("GET", "sae-b/enc_keys?number=abc", {}, "bad request"),
        ("GET", "sae-b/enc_keys?size=16", {}, "size"),
        ("POST", "sae-b/enc_keys", {"content": b"{not json", "headers": {
            "content-type": "application/json"}}, "bad request"),
        ("POST", "sae-b/enc_keys", {"json": {"number": "many"}}, "bad request"),
        ("POST", "sae-b/enc_keys", {"json": {"extension_mandatory": [{"route": "direct"}]}},
         "extension_mandatory"),
        ("POST", "sae-b/enc_keys", {"json": {"additional_slave_SAE_IDs": ["sae-c"]}},
         "same KME"),
        ("GET", "nobody/enc_keys", {}, "unknown SAE"),
        ("GET", "sae-b/dec_keys?key_ID=not-a-uuid", {}, "UUID"),
        ("POST", "sae-b/dec_keys", {"json": {"key_IDs": []}}, "empty"),
        ("POST", "sae-b/dec_keys", {"json": {"key_IDs": "x"}}, "bad request"),
    ],
)
def test_malformed_requests_get_400_with_error_object(
    net: KmeNet, method: str, path: str, kw: dict[str, object], fragment: str
) -> None:
    with raw(net, "sae-a", "A") as c:
        r = c.request(method, f"{API}/{path}", **kw)  # type: ignore[arg-type]
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) <= {"message", "details"} and fragment in r.text


def test_unknown_key_id_is_400_not_404(net: KmeNet) -> None:
    with net.client("sae-b") as b, pytest.raises(KmeHttpError) as e:
        b.dec_keys("sae-a", ["00000000-0000-0000-0000-000000000000"])
    assert e.value.status_code == 400


def test_optional_extension_is_ignored_not_rejected(net: KmeNet) -> None:
    with raw(net, "sae-a", "A") as c:
        r = c.post(f"{API}/sae-b/enc_keys",
                   json={"number": 1, "extension_optional": [{"vendor_x": 1}]})
    assert r.status_code == 200 and len(r.json()["keys"]) == 1


def test_multicast_key_reaches_every_slave(net: KmeNet) -> None:
    with net.client("sae-a") as a:
        (k,) = a.enc_keys("sae-b", additional_slave_sae_ids=["sae-b2"], method="POST")
    with net.client("sae-b") as b, net.client("sae-b2") as b2:
        assert b.dec_keys("sae-a", [k.key_id])[0].key == k.key
        assert b2.dec_keys("sae-a", [k.key_id])[0].key == k.key


def test_relay_across_trusted_node(net: KmeNet) -> None:
    with net.client("sae-a") as a, net.client("sae-c") as c:
        keys = a.enc_keys("sae-c", number=2)
        got = c.dec_keys("sae-a", [k.key_id for k in keys])
    assert [g.key for g in got] == [k.key for k in keys]
    # B, the trusted node, logged that it saw and forwarded the key.
    store = net.kmes["B"].service.store
    relays = [r for r in store.audit_records() if r.action == "relay"]
    assert {keys[0].key_id, keys[1].key_id} <= {k for r in relays for k in r.key_ids}
    assert any(r.detail.get("trusted_node") is True for r in relays)


def test_empty_pool_refuses_with_503_or_falls_back_to_pqc(tmp_path: Path) -> None:
    n = start_net(tmp_path)
    try:
        # No key material at all on A-B. sae-a -> sae-b: policy "refuse".
        with n.client("sae-a") as a, pytest.raises(KmeHttpError) as e:
            a.enc_keys("sae-b")
        assert e.value.status_code == 503
        # sae-a2 -> sae-b2: policy "fallback-pqc" -> ML-KEM-768 keys, same at both ends.
        with n.client("sae-a2") as a2, n.client("sae-b2") as b2:
            keys = a2.enc_keys("sae-b2", number=2)
            got = b2.dec_keys("sae-a2", [k.key_id for k in keys])
        assert [g.key for g in got] == [k.key for k in keys]
        svc = n.kmes["A"].service
        assert svc.metrics.fallback_pqc._value.get() == 2
        assert sum(r.action == "fallback-pqc" for r in svc.store.audit_records()) == 2
    finally:
        n.stop()


def test_concurrency_no_key_delivered_twice(net: KmeNet) -> None:
    net.feed("A", "B", 16 * 3200 * 2 * 32 // 16 + 4096)
    results: list[list[tuple[str, bytes]]] = [[] for _ in range(16)]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with net.client("sae-a") as a:
                for _ in range(200):
                    (k,) = a.enc_keys("sae-b")
                    results[i].append((k.key_id, k.key))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    delivered = [kv for r in results for kv in r]
    assert len(delivered) == 3200
    assert len({k for k, _ in delivered}) == 3200
    assert len({v for _, v in delivered}) == 3200
    with net.client("sae-b") as b:
        for i in range(0, 3200, 100):
            chunk = delivered[i : i + 100]
            got = b.dec_keys("sae-a", [k for k, _ in chunk])
            assert [g.key for g in got] == [v for _, v in chunk]
    # Audit chains of both ends still verify.
    for kme in ("A", "B"):
        cfg = net.kmes[kme].cfg
        key = audit_key(load_kek(file=str(cfg.kek.file), env=None))
        store = net.kmes[kme].service.store
        assert verify_chain(store.audit_records(), key, store.audit_head()).ok


def test_metrics_and_openapi_served(net: KmeNet) -> None:
    with raw(net, "sae-a", "A") as c:
        m = c.get("/metrics")
        doc = c.get("/openapi.json").json()
    assert m.status_code == 200 and "qnetkit_kms_keys_delivered_total" in m.text
    paths = set(doc["paths"])
    assert {f"{API}/{{slave_SAE_ID}}/status", f"{API}/{{slave_SAE_ID}}/enc_keys",
            f"{API}/{{master_SAE_ID}}/dec_keys"} == paths


def test_key_material_never_in_logs(net: KmeNet, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with net.client("sae-a") as a, net.client("sae-b") as b:
        keys = a.enc_keys("sae-b", number=5)
        b.dec_keys("sae-a", [k.key_id for k in keys])
        keys += a.enc_keys("sae-c", number=2)
        with net.client("sae-c") as c:
            c.dec_keys("sae-a", [k.key_id for k in keys[-2:]])
    text = caplog.text
    assert keys
    for k in keys:
        assert base64.b64encode(k.key).decode() not in text
        assert k.key.hex() not in text
