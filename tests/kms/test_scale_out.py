"""Scale-out: two `qnetkit kms serve` processes of one KME share one store (SQLite file or
PostgreSQL database) under concurrent load; no key is ever served twice."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kmenet import free_ports, make_pki, start_serve, stop_all, wait_up, write_configs

from qnetkit.kms.client import Etsi014Client, KmeHttpError
from qnetkit.kms.config import load_config
from qnetkit.kms.server import build_service, ingest_block


def _enc_keys(c: Etsi014Client) -> list[Any]:
    """Two keys, as an SAE takes them: a 503 (the block is still being confirmed between the
    KMEs, which can outlast the first requests on a loaded machine) is retried after a pause;
    any other error, or a 503 that lasts 10 s, fails the test."""
    for _ in range(50):
        try:
            return list(c.enc_keys("sae-b", number=2))
        except KmeHttpError as exc:
            if exc.status_code != 503:
                raise
            time.sleep(0.2)
    raise AssertionError("KME A kept answering 503 for 10 s")


def test_two_processes_one_store(tmp_path: Path, url_factory: Callable[[], str]) -> None:
    layout, _ = make_pki(tmp_path)
    ports = dict(zip("ABC", free_ports(3), strict=True))
    urls = {"A": url_factory(), "B": url_factory()}
    configs = write_configs(tmp_path, layout, ports, store_urls=urls)
    # A second process of KME A: same ID, same store and keys, another port.
    second = yaml.safe_load(configs["A"].read_text())
    port2 = free_ports(1)[0]
    second["listen"]["port"] = port2
    config2 = tmp_path / "kme-A2.yaml"
    config2.write_text(yaml.safe_dump(second))
    data = os.urandom(64 * 1024)
    for kme, peer in (("A", "B"), ("B", "A")):
        svc = build_service(load_config(configs[kme]))
        ingest_block(svc, peer, "0d9c5a44-2f4e-4f0e-8d7c-6b1a3e2f9c01", data, 256)
        svc.store.close()
    log = tmp_path / "serve.log"
    procs = [start_serve(c, log) for c in (configs["A"], config2, configs["B"])]
    a_urls = [f"https://127.0.0.1:{ports['A']}", f"https://127.0.0.1:{port2}"]
    cert, key = layout.sae["sae-a"]
    try:
        for u in [*a_urls, f"https://127.0.0.1:{ports['B']}"]:
            wait_up(u, cert, key, layout.ca_cert)
        got: list[list[tuple[str, bytes]]] = [[] for _ in range(8)]

        def load(i: int) -> None:
            with Etsi014Client(a_urls[i % 2], cert=cert, key=key, ca=layout.ca_cert) as c:
                for _ in range(60):
                    got[i].extend((k.key_id, k.key) for k in _enc_keys(c))

        threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        delivered = [kv for g in got for kv in g]
        assert len(delivered) == 8 * 60 * 2
        assert len({k for k, _ in delivered}) == len(delivered)
        bcert, bkey = layout.sae["sae-b"]
        with Etsi014Client(f"https://127.0.0.1:{ports['B']}", cert=bcert, key=bkey,
                           ca=layout.ca_cert) as b:
            for i in range(0, len(delivered), 120):
                chunk = delivered[i : i + 120]
                assert [g.key for g in b.dec_keys("sae-a", [k for k, _ in chunk])] == [
                    v for _, v in chunk]
    finally:
        stop_all(procs)
