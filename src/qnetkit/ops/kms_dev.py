"""Development mode of the key manager, like ``vault server -dev``.

Creates a development PKI, two KMEs ``A`` and ``B`` on loopback and a simulated QKD link
between them whose secret-key rate comes from the analytic decoy-BB84 engine (Ma et al.
2005, default device parameters). The link's key bits are drawn from ``os.urandom`` and
ingested identically into both KMEs through their HTTPS ingest API, first a pre-fill, then
once per second at the link's rate. They are marked simulated (not QKD output), so both
KMEs are configured with ``allow_simulated_keys: true``; a production KME refuses them.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params, decoy_bb84_key_rate
from qnetkit.kms.config import load_config
from qnetkit.kms.pki import PkiLayout, client_ssl_context, init_pki
from qnetkit.kms.runner import KmeThread

KMES = ("A", "B")
SAES = {"sae-a": "A", "sae-b": "B"}
INGEST_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class DevLink:
    """The simulated QKD link feeding both KMEs."""

    length_km: float = 25.0
    pulse_rate_hz: float = 1e9

    def secret_key_rate_bps(self) -> float:
        curve = decoy_bb84_key_rate(DecoyBB84Params(), [self.length_km])
        return float(curve.key_rate_per_pulse[0]) * self.pulse_rate_hz


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def prepare(directory: Path, port_base: int) -> tuple[PkiLayout, dict[str, Path]]:
    """PKI, key-encryption keys and the two YAML configurations (reused if present)."""
    directory = directory.resolve()  # the configs hold absolute paths
    directory.mkdir(parents=True, exist_ok=True)
    pki_dir = directory / "pki"
    layout = init_pki(pki_dir, kmes=list(KMES), saes=list(SAES), force=True)
    configs: dict[str, Path] = {}
    for i, kme in enumerate(KMES):
        other = KMES[1 - i]
        kek = directory / f"kek-{kme}.hex"
        if not kek.exists():
            _write_secret(kek, os.urandom(32).hex().encode())
        cert, key = layout.kme[kme]
        cfg: dict[str, Any] = {
            "kme_id": kme,
            "listen": {"host": "127.0.0.1", "port": port_base + i},
            "tls": {"cert": str(cert), "key": str(key), "ca": str(layout.ca_cert)},
            "store": {"url": f"sqlite:///{directory / f'kme-{kme}.db'}"},
            "kek": {"file": str(kek)},
            "saes": [{"id": s} for s, k in SAES.items() if k == kme],
            "peers": [{"kme_id": other, "url": f"https://127.0.0.1:{port_base + 1 - i}",
                       "saes": [s for s, k in SAES.items() if k == other]}],
            "allow_simulated_keys": True,  # dev mode: the link is simulated
        }
        path = directory / f"kme-{kme}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        configs[kme] = path
    return layout, configs


class Feeder:
    """Pushes identical key blocks into both KMEs of the link over their ingest API.

    Blocks are numbered on the link (``block_seq``), so both ends derive the same block ID;
    the second ingest confirms the block with the first KME before it is served.
    """

    def __init__(self, layout: PkiLayout, urls: dict[str, str]) -> None:
        self._clients = {}
        for kme in KMES:
            cert, key = layout.kme[kme]
            ctx = client_ssl_context(cert, key, layout.ca_cert)
            self._clients[kme] = httpx.Client(base_url=urls[kme], verify=ctx, timeout=60.0)
        self.bits_fed = 0
        self._seq = int.from_bytes(os.urandom(6), "big")  # a fresh range per dev run

    def feed(self, n_bits: int) -> None:
        remaining = n_bits // 8
        while remaining > 0:
            chunk = min(remaining, INGEST_CHUNK_BYTES)
            data = os.urandom(chunk)  # dev link: real randomness stands in for QKD output
            self._seq += 1
            for i, kme in enumerate(KMES):
                body = {"peer_KME_ID": KMES[1 - i], "block_seq": self._seq, "simulated": True,
                        "key": base64.b64encode(data).decode()}
                r = self._clients[kme].post("/kme/v1/ingest", json=body)
                r.raise_for_status()
            remaining -= chunk
            self.bits_fed += chunk * 8

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


def run_dev(directory: Path, *, port_base: int, prefill_bits: int,
            stop: threading.Event, link: DevLink | None = None) -> None:
    """Start both KMEs, pre-fill, print the JSON line, feed until ``stop`` is set."""
    link = link or DevLink()
    layout, configs = prepare(directory, port_base)
    kmes = {k: KmeThread(load_config(p)) for k, p in configs.items()}
    started: list[KmeThread] = []
    try:
        for k in KMES:
            started.append(kmes[k].start())
        urls = {k: kmes[k].url for k in KMES}
        feeder = Feeder(layout, urls)
        try:
            feeder.feed(prefill_bits)
            line = {
                "kmes": urls,
                "ca": str(layout.ca_cert),
                "saes": {s: {"kme": k, "cert": str(layout.sae[s][0]), "key": str(layout.sae[s][1])}
                         for s, k in SAES.items()},
            }
            print(json.dumps(line), flush=True)
            rate = link.secret_key_rate_bps()
            carry = 0.0
            while not stop.wait(1.0):
                carry += rate
                whole = int(carry) // 8 * 8
                if whole:
                    feeder.feed(whole)
                    carry -= whole
        finally:
            feeder.close()
    finally:
        for t in reversed(started):
            t.stop()
