"""The demo's last step: keys from a simulated QKD link delivered to applications.

Alice's and Bob's final keys of a ``qnetkit.qkd`` link run go into the stores of KMEs A and B
(one each, as the link's two ends would), both KMEs serve ETSI GS QKD 014 over mutual TLS on
loopback, SAE ``sae-a`` takes keys at A and SAE ``sae-b`` fetches the same key IDs at B.
The key bits come from the simulation's seeded stream: demonstration keys, not secrets; they
are ingested as simulated and both KMEs are configured to allow simulated keys.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any

import yaml

from qnetkit.kms.client import Etsi014Client
from qnetkit.kms.config import load_config
from qnetkit.kms.pki import init_pki
from qnetkit.kms.runner import KmeThread
from qnetkit.kms.server import ingest_block

UNIT_BITS = 256


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deliver_link_keys(directory: Path, alice_key: bytes, bob_key: bytes,
                      n_keys: int = 8) -> dict[str, Any]:
    """Ingest both ends' keys, serve them, fetch ``n_keys`` at A and the same IDs at B."""
    directory = directory.resolve()  # the configs hold absolute paths
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    layout = init_pki(directory / "pki", kmes=["A", "B"], saes=["sae-a", "sae-b"])
    ports = {"A": _free_port(), "B": _free_port()}
    kmes: dict[str, KmeThread] = {}
    block_id = str(uuid.uuid4())
    try:
        for kme, other, key in (("A", "B", alice_key), ("B", "A", bob_key)):
            kek = directory / f"kek-{kme}.hex"
            fd = os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex())
            cert, pkey = layout.kme[kme]
            cfg = {
                "kme_id": kme,
                "listen": {"host": "127.0.0.1", "port": ports[kme]},
                "tls": {"cert": str(cert), "key": str(pkey), "ca": str(layout.ca_cert)},
                "store": {"url": f"sqlite:///{directory / f'kme-{kme}.db'}"},
                "kek": {"file": str(kek)},
                "saes": [{"id": f"sae-{kme.lower()}"}],
                "peers": [{"kme_id": other, "url": f"https://127.0.0.1:{ports[other]}",
                           "saes": [f"sae-{other.lower()}"]}],
                "allow_simulated_keys": True,  # seeded simulation output, never real data
            }
            path = directory / f"kme-{kme}.yaml"
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            kmes[kme] = KmeThread(load_config(path)).start()
            units = ingest_block(kmes[kme].service, other, block_id, key, UNIT_BITS,
                                 simulated=True)
        with Etsi014Client(kmes["A"].url, cert=layout.sae["sae-a"][0],
                           key=layout.sae["sae-a"][1], ca=layout.ca_cert) as a, \
                Etsi014Client(kmes["B"].url, cert=layout.sae["sae-b"][0],
                              key=layout.sae["sae-b"][1], ca=layout.ca_cert) as b:
            status = a.status("sae-b")
            keys = a.enc_keys("sae-b", number=n_keys, size=UNIT_BITS)
            got = b.dec_keys("sae-a", [k.key_id for k in keys])
        identical = [g.key for g in got] == [k.key for k in keys]
        return {
            "units_per_kme": units,
            "stored_key_count_before": status["stored_key_count"],
            "keys_delivered": len(keys),
            "keys_identical_at_both_saes": identical,
            "key_ids": [k.key_id for k in keys],
        }
    finally:
        for t in kmes.values():
            t.stop()
