"""A small KME network on loopback for the server tests: A - B - C (two QKD links).

SAEs: sae-a, sae-a2 at A; sae-b, sae-b2 at B; sae-c at C. sae-x has a certificate from the
same CA but is configured nowhere. A second, foreign CA issues a certificate for "sae-a".
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from qnetkit.kms.client import Etsi014Client
from qnetkit.kms.config import load_config
from qnetkit.kms.hybrid import generate_kem_keypair, save_kem_private_key
from qnetkit.kms.pki import PkiLayout, client_ssl_context, init_pki
from qnetkit.kms.runner import KmeThread
from qnetkit.kms.server import ingest_block
from qnetkit.kms.store.base import AuditRecord

SAE_HOME = {"sae-a": "A", "sae-a2": "A", "sae-b": "B", "sae-b2": "B", "sae-c": "C"}
LINKS = (("A", "B"), ("B", "C"))


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def write_configs(root: Path, layout: PkiLayout, ports: dict[str, int], *,
                  store_urls: dict[str, str] | None = None,
                  extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    paths = {}
    for kme in ("A", "B", "C"):
        kek = root / f"kek-{kme}.hex"
        if not kek.exists():
            kek.write_text(os.urandom(32).hex())
        kem = root / f"kem-{kme}.key"
        if not kem.exists():
            save_kem_private_key(generate_kem_keypair(), kem)
        peers = []
        routes = []
        for a, b in LINKS:
            if kme in (a, b):
                other = b if kme == a else a
                peers.append({"kme_id": other, "url": f"https://127.0.0.1:{ports[other]}",
                              "saes": [s for s, k in SAE_HOME.items() if k == other]})
        neighbours = {p["kme_id"] for p in peers}
        for far in ("A", "B", "C"):
            if far != kme and far not in neighbours:
                routes.append({"kme_id": far, "via": "B",
                               "saes": [s for s, k in SAE_HOME.items() if k == far]})
        cert, key = layout.kme[kme]
        cfg: dict[str, Any] = {
            "kme_id": kme,
            "listen": {"host": "127.0.0.1", "port": ports[kme]},
            "tls": {"cert": str(cert), "key": str(key), "ca": str(layout.ca_cert)},
            "store": {"url": (store_urls or {}).get(kme, f"sqlite:///{root / f'{kme}.db'}")},
            "kek": {"file": str(kek)},
            "kem": {"private_key": str(kem)},
            "saes": [{"id": s} for s, k in SAE_HOME.items() if k == kme],
            "peers": peers,
            "routes": routes,
            "policies": [{"master": "sae-a2", "slave": "sae-b2", "on_empty": "fallback-pqc"}],
            # Load tests hammer one SAE; the per-SAE rate limit has its own test.
            "limits": {"sae_rate_per_s": 1e6, "sae_burst": 1_000_000},
        }
        cfg.update((extra or {}).get(kme, {}))
        path = root / f"kme-{kme}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        paths[kme] = path
    return paths


@dataclass
class KmeNet:
    root: Path
    layout: PkiLayout
    foreign: PkiLayout
    configs: dict[str, Path]
    kmes: dict[str, KmeThread] = field(default_factory=dict)

    def url(self, kme: str) -> str:
        return self.kmes[kme].url

    def client(self, sae: str, kme: str | None = None) -> Etsi014Client:
        cert, key = self.layout.sae[sae]
        return Etsi014Client(self.url(kme or SAE_HOME[sae]), cert=cert, key=key,
                             ca=self.layout.ca_cert)

    def feed(self, a: str, b: str, n_bytes: int) -> None:
        """The same block into both KMEs of link a-b (what the link engine does)."""
        data = os.urandom(n_bytes)
        block = str(uuid.uuid4())
        ingest_block(self.kmes[a].service, b, block, data, 256)
        ingest_block(self.kmes[b].service, a, block, data, 256)

    def stop(self) -> None:
        for t in self.kmes.values():
            t.stop()


def make_pki(root: Path) -> tuple[PkiLayout, PkiLayout]:
    layout = init_pki(root / "pki", kmes=["A", "B", "C"], saes=[*SAE_HOME, "sae-x"])
    foreign = init_pki(root / "foreign", kmes=["A"], saes=["sae-a"])
    return layout, foreign


def start_net(root: Path, **kw: Any) -> KmeNet:
    layout, foreign = make_pki(root)
    ports = dict(zip("ABC", free_ports(3), strict=True))
    configs = write_configs(root, layout, ports, **kw)
    net = KmeNet(root, layout, foreign, configs)
    for k in "ABC":
        net.kmes[k] = KmeThread(load_config(configs[k])).start()
    return net


def wait_refusal(kme: KmeThread, reason: str, why: str = "", timeout_s: float = 10.0,
                 **detail: object) -> AuditRecord:
    """The newest ``refuse`` audit record of ``kme`` with this reason (refusals are audited
    by a background thread, so wait for it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        for rec in reversed(list(kme.service.store.audit_records())):
            d = rec.detail
            if (rec.action == "refuse" and d.get("reason") == reason
                    and why in str(d.get("why")) and all(d.get(k) == v for k, v in detail.items())):
                return rec
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no refuse record ({reason}, {why!r}, {detail}) at {kme.cfg.kme_id}")
        time.sleep(0.05)


QNETKIT = [sys.executable, "-m", "qnetkit.cli.main"]


def start_serve(config: Path, log: Path,
                env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`qnetkit kms serve` as a real process, output appended to ``log`` (``env``: extra
    environment variables, e.g. fault injection)."""
    f = log.open("ab")
    return subprocess.Popen([*QNETKIT, "kms", "serve", "--config", str(config)],
                            stdout=f, stderr=subprocess.STDOUT,
                            env=None if env is None else {**os.environ, **env})


def wait_up(url: str, cert: Path, key: Path, ca: Path, timeout_s: float = 30) -> None:
    ctx = client_ssl_context(cert, key, ca)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with httpx.Client(verify=ctx, timeout=2) as c:
                c.get(url + "/api/v1/keys/sae-b/status")
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            p.kill()
