"""kill -9 a KME in the middle of a load, restart it: nothing delivered is lost, nothing is
delivered twice, the audit chains still verify, and no key ever reached a log."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kmenet import (
    QNETKIT,
    SAE_HOME,
    free_ports,
    make_pki,
    start_serve,
    stop_all,
    wait_up,
    write_configs,
)

from qnetkit.kms.client import Etsi014Client, KmeConnectionError, KmeHttpError
from qnetkit.kms.config import load_config
from qnetkit.kms.server import build_service, ingest_block


def test_kill_9_mid_load(tmp_path: Path, url_factory: Callable[[], str]) -> None:
    layout, _ = make_pki(tmp_path)
    ports = dict(zip("ABC", free_ports(3), strict=True))
    configs = write_configs(tmp_path, layout, ports,
                            store_urls={"A": url_factory(), "B": url_factory()})
    # Shared key material for A-B, ingested straight into both stores before start.
    data = os.urandom(256 * 1024)
    for kme, peer in (("A", "B"), ("B", "A")):
        svc = build_service(load_config(configs[kme]))
        ingest_block(svc, peer, "5f0c6a1e-7d61-4b38-9a7e-3f4b2a1c9d10", data, 256)
        svc.store.close()
    logs = {k: tmp_path / f"{k}.log" for k in "AB"}
    procs = {k: start_serve(configs[k], logs[k]) for k in "AB"}
    url = {k: f"https://127.0.0.1:{ports[k]}" for k in "AB"}
    cert, key = layout.sae["sae-a"]
    try:
        for k in "AB":
            wait_up(url[k], cert, key, layout.ca_cert)
        delivered: list[tuple[str, bytes]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load() -> None:
            with Etsi014Client(url["A"], cert=cert, key=key, ca=layout.ca_cert,
                               timeout_s=5) as c:
                while not stop.is_set():
                    try:
                        keys = c.enc_keys("sae-b", number=2)
                    except (KmeConnectionError, KmeHttpError):
                        time.sleep(0.05)
                        continue
                    with lock:
                        delivered.extend((k.key_id, k.key) for k in keys)

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        while len(delivered) < 300:
            time.sleep(0.01)
        procs["A"].send_signal(signal.SIGKILL)
        procs["A"].wait()
        killed_at = len(delivered)
        procs["A"] = start_serve(configs["A"], logs["A"])
        wait_up(url["A"], cert, key, layout.ca_cert)
        while len(delivered) < killed_at + 300:
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join()

        ids = [k for k, _ in delivered]
        assert len(ids) == len(set(ids)), "a key ID was delivered twice"
        assert len({v for _, v in delivered}) == len(delivered)
        bcert, bkey = layout.sae["sae-b"]
        with Etsi014Client(url["B"], cert=bcert, key=bkey, ca=layout.ca_cert) as b:
            for i in range(0, len(delivered), 100):
                chunk = delivered[i : i + 100]
                got = b.dec_keys("sae-a", [k for k, _ in chunk])
                assert [g.key for g in got] == [v for _, v in chunk]
    finally:
        stop_all(list(procs.values()))
    for k in "AB":
        r = subprocess.run([*QNETKIT, "kms", "audit", "verify", "--config", str(configs[k]),
                            "--json"], capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    text = "".join(logs[k].read_text(errors="replace") for k in "AB")
    for _, v in delivered:
        assert base64.b64encode(v).decode() not in text and v.hex() not in text
    assert SAE_HOME["sae-a"] == "A"
