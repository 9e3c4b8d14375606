"""Delivery semantics of dec_keys (issue 12, items 2, 3, 5 and 8).

A key retrieved by its slave SAE can be fetched again by the *same* authenticated SAE for a
re-fetch window, by no other SAE ever; a KME killed (-9) at any step of dec_keys loses no key;
an unreachable master KME gives 503 + Retry-After, not "not found"; unknown key IDs cost one
peer request per dec_keys, not one per ID.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
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
    wait_up,
    write_configs,
)

from qnetkit.kms.blocks import block_id_for_seq, prepare_block
from qnetkit.kms.client import Etsi014Client, KmeConnectionError, KmeHttpError
from qnetkit.kms.config import load_config
from qnetkit.kms.errors import KeyNotFound, NotEntitled
from qnetkit.kms.faults import EXIT_CODE, POINTS
from qnetkit.kms.pki import client_ssl_context
from qnetkit.kms.server import build_service, ingest_block
from qnetkit.kms.store import open_store
from qnetkit.kms.store.base import KeyStore

API = "/api/v1/keys"


# ---- the store: the re-fetch window ----------------------------------------------------------


@pytest.fixture
def store(store_url: str, kek: bytes) -> Iterator[KeyStore]:
    s = open_store(store_url, kme_id="A", kek=kek)
    data = os.urandom(32 * 8)
    bid = block_id_for_seq("A", "B", 1)
    info, units = prepare_block(bid, data, unit_bits=256, kme_id="A", peer_kme="B")
    s.ingest_block(info, units, data=data, now_s=1.0)
    s.confirm_block(bid, now_s=1.0)
    yield s
    s.close()


def _take(store: KeyStore, slaves: tuple[str, ...] = ("s1",)) -> tuple[str, bytes]:
    ((a, k),) = store.reserve(peer_kme="B", master_sae="m1", slave_saes=slaves, number=1,
                              size_bits=256, now_s=10.0, ttl_s=3600.0, keep_material=True)
    return a.key_id, k.material


def test_same_sae_refetches_within_the_window_only(store: KeyStore, raw: Callable[..., list],
                                                   store_url: str) -> None:
    kid, material = _take(store)
    got = store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[kid], now_s=20.0,
                         refetch_window_s=60.0)
    assert got[0].material == material
    # The response was lost: the same SAE asks again within the window, same bytes.
    again = store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[kid], now_s=79.0,
                           refetch_window_s=60.0)
    assert again[0].material == material
    with pytest.raises(NotEntitled):  # never another SAE
        store.retrieve(slave_sae="s2", master_sae="m1", key_ids=[kid], now_s=21.0,
                       refetch_window_s=60.0)
    with pytest.raises(KeyNotFound):  # after the window
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[kid], now_s=81.0,
                       refetch_window_s=60.0)
    assert store.expire(now_s=79.0) == 0
    assert store.expire(now_s=80.0) == 1  # the window closed: material erased
    assert raw(store_url, "SELECT state, sealed FROM keys WHERE key_id = ?", (kid,)) == [
        ("erased", None)]
    actions = [(r.action, r.detail.get("reason")) for r in store.audit_records()][-3:]
    assert actions == [("retrieve", None), ("refetch", None), ("erase", "re-fetch window closed")]


def test_window_zero_erases_at_first_retrieval(store: KeyStore) -> None:
    kid, _ = _take(store)
    store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[kid], now_s=20.0)
    with pytest.raises(KeyNotFound):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[kid], now_s=20.5)


def test_window_is_per_slave_of_a_multicast_key(store: KeyStore) -> None:
    kid, material = _take(store, ("s1", "s2"))
    store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[kid], now_s=20.0,
                   refetch_window_s=5.0)
    # s2 has not retrieved it yet: the key lives on (TTL), but s1's window is closed.
    with pytest.raises(KeyNotFound):
        store.retrieve(slave_sae="s1", master_sae="m1", key_ids=[kid], now_s=30.0,
                       refetch_window_s=5.0)
    (k,) = store.retrieve(slave_sae="s2", master_sae="m1", key_ids=[kid], now_s=100.0,
                          refetch_window_s=5.0)
    assert k.material == material


# ---- kill -9 at each step of dec_keys, real server processes ---------------------------------


@pytest.mark.parametrize("point", sorted(POINTS))
def test_kill_9_at_each_step_of_dec_keys_loses_no_key(
    tmp_path: Path, url_factory: Callable[[], str], point: str
) -> None:
    layout, _ = make_pki(tmp_path)
    ports = dict(zip("ABC", free_ports(3), strict=True))
    configs = write_configs(tmp_path, layout, ports,
                            store_urls={"A": url_factory(), "B": url_factory()})
    data = os.urandom(32 * 64)
    for kme, peer in (("A", "B"), ("B", "A")):  # pending in both; confirmed once both run
        svc = build_service(load_config(configs[kme]))
        ingest_block(svc, peer, block_id_for_seq("A", "B", 1), data, 256)
        svc.store.close()
    logs = {k: tmp_path / f"{k}.log" for k in "AB"}
    fault = {"QNETKIT_FAULT_INJECTION": "1", "QNETKIT_FAULT": point}
    procs = {"A": start_serve(configs["A"], logs["A"]),
             "B": start_serve(configs["B"], logs["B"], env=fault)}
    url = {k: f"https://127.0.0.1:{ports[k]}" for k in "AB"}
    ca = layout.ca_cert

    def client(sae: str, kme: str) -> Etsi014Client:
        cert, key = layout.sae[sae]
        return Etsi014Client(url[kme], cert=cert, key=key, ca=ca, timeout_s=20)

    try:
        for k in "AB":
            wait_up(url[k], *layout.sae["sae-a"], ca)
        with client("sae-a", "A") as a:
            keys = a.enc_keys("sae-b", number=2)
        ids = [k.key_id for k in keys]
        with client("sae-b", "B") as b, pytest.raises(KmeConnectionError):
            b.dec_keys("sae-a", ids)  # B dies at the fault point; no answer
        assert procs["B"].wait(timeout=30) == EXIT_CODE
        procs["B"] = start_serve(configs["B"], logs["B"])  # no fault this time
        wait_up(url["B"], *layout.sae["sae-b"], ca)
        # The same SAE gets the same keys (again, if the first answer was lost)...
        with client("sae-b", "B") as b:
            assert [g.key for g in b.dec_keys("sae-a", ids)] == [k.key for k in keys]
        # ...and no other SAE ever does: answered exactly like an unknown key ID.
        cert, key = layout.sae["sae-b2"]
        with httpx.Client(base_url=url["B"], verify=client_ssl_context(cert, key, ca),
                          timeout=20) as b2:
            theirs = b2.get(f"{API}/sae-a/dec_keys", params={"key_ID": ids[0]})
            unknown = b2.get(f"{API}/sae-a/dec_keys", params={"key_ID": str(uuid.uuid4())})
        assert theirs.status_code == unknown.status_code == 400
        assert theirs.content == unknown.content
    finally:
        stop_all(list(procs.values()))
    for k in "AB":
        r = subprocess.run([*QNETKIT, "kms", "audit", "verify", "--config", str(configs[k])],
                           capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    text = "".join(logs[k].read_text(errors="replace") for k in "AB")
    assert all(k.key.hex() not in text for k in keys)


def test_faults_are_ignored_unless_explicitly_enabled() -> None:
    code = ("from qnetkit.kms.faults import fault_point\n"
            "fault_point('dec_keys:after_commit'); print('alive')")
    env = {**os.environ, "QNETKIT_FAULT": "dec_keys:after_commit"}
    env.pop("QNETKIT_FAULT_INJECTION", None)
    r = subprocess.run([QNETKIT[0], "-c", code], env=env, capture_output=True, text=True,
                       check=False)
    assert (r.returncode, r.stdout.strip()) == (0, "alive")
    r = subprocess.run([QNETKIT[0], "-c", code], env={**env, "QNETKIT_FAULT_INJECTION": "1"},
                       capture_output=True, text=True, check=False)
    assert r.returncode == EXIT_CODE and r.stdout == ""


# ---- the master's KME unreachable: 503 + Retry-After, never "not found" ------------------------


@pytest.fixture
def net(tmp_path: Path) -> Iterator[KmeNet]:
    n = start_net(tmp_path)
    n.feed("A", "B", 32 * 256)
    yield n
    n.stop()


def test_unreachable_master_kme_is_503_with_retry_after(net: KmeNet) -> None:
    with net.client("sae-a") as a:
        (k,) = a.enc_keys("sae-b")
    net.kmes["A"].stop()
    port = net.kmes["A"].cfg.listen.port
    # A black hole where A was: connections are accepted by the kernel, never answered
    # (before: the slave hung for the peer client's 10 s, then said "key_ID not found").
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", port))
    hole.listen(16)
    try:
        cert, key = net.layout.sae["sae-b"]
        ctx = client_ssl_context(cert, key, net.layout.ca_cert)
        # The client gives up after 8 s, before the old 10 s peer timeout.
        with httpx.Client(base_url=net.url("B"), verify=ctx, timeout=8) as b:
            r = b.get(f"{API}/sae-a/dec_keys", params={"key_ID": str(uuid.uuid4())})
    finally:
        hole.close()
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert "retry" in r.json()["message"]
    # The key was not touched: once A is back, sae-b gets it (the sync delivers it).
    assert k.key_id


def test_unknown_ids_cost_one_peer_request_and_one_log_line(
    net: KmeNet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    peer_requests = net.kmes["A"].service.metrics.requests
    before = {s.labels.get("endpoint"): s.value for m in peer_requests.collect()
              for s in m.samples if s.name.endswith("_total")}
    caplog.clear()
    with net.client("sae-b") as b, pytest.raises(KmeHttpError) as e:
        b.dec_keys("sae-a", [str(uuid.uuid4()) for _ in range(128)])
    assert e.value.status_code == 400
    after = {s.labels.get("endpoint"): s.value for m in peer_requests.collect()
             for s in m.samples if s.name.endswith("_total")}
    calls = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    assert calls == {"peer_lookup_many": 1.0}  # before: 128 x peer_lookup
    kms_lines = [r for r in caplog.records if r.name == "qnetkit.kms"]
    assert len(kms_lines) == 1 and "128 key ID(s)" in kms_lines[0].getMessage()
