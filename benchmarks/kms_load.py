"""Benchmark: ETSI 014 KME under load — requests/s and p50/p99 latency over mTLS keep-alive.

Two KMEs A and B run as real `qnetkit kms serve` processes on loopback (SQLite, or
PostgreSQL when a server is reachable). A load process opens N keep-alive mTLS connections
to A and asks for enc_keys (one 256-bit key each), then the same number of dec_keys at B for
the key IDs it got. The load generator is a minimal asyncio HTTP/1.1 client so the
measurement is the server's, not the client library's.
Target (issue 5): >= 1,000 enc_keys requests/s with p99 < 50 ms on 2 cores.
Prints a table and writes benchmarks/results/kms_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from qnetkit.kms.pki import client_ssl_context, init_pki

ROOT = Path(__file__).resolve().parent
QNETKIT = [sys.executable, "-m", "qnetkit.cli.main"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   raw: bytes) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    return status, body


async def _load(host: str, port: int, ctx: ssl.SSLContext, requests: list[bytes],
                connections: int) -> tuple[list[float], list[bytes], float]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    latencies: list[float] = []
    bodies: list[bytes] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx,
                                                       server_hostname="127.0.0.1")
        try:
            while not queue.empty():
                raw = queue.get_nowait()
                t0 = time.perf_counter()
                status, body = await _request(reader, writer, raw)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
                bodies.append(body)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, bodies, time.perf_counter() - t0


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _post(path: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def _setup(root: Path, store_urls: dict[str, str], workers: int) -> tuple[Any, dict[str, Path],
                                                                         dict[str, int]]:
    layout = init_pki(root / "pki", kmes=["A", "B"], saes=["sae-a", "sae-b"])
    ports = {"A": _free_port(), "B": _free_port()}
    paths = {}
    for kme, other in (("A", "B"), ("B", "A")):
        kek = root / f"kek-{kme}.hex"
        kek.write_text(os.urandom(32).hex())
        cert, key = layout.kme[kme]
        cfg = {
            "kme_id": kme, "workers": workers,
            "listen": {"host": "127.0.0.1", "port": ports[kme]},
            "tls": {"cert": str(cert), "key": str(key), "ca": str(layout.ca_cert)},
            "store": {"url": store_urls[kme]}, "kek": {"file": str(kek)},
            "saes": [{"id": f"sae-{kme.lower()}"}],
            # One SAE drives the whole load: lift the per-SAE rate limit (default 200/s).
            "limits": {"sae_rate_per_s": 1e6, "sae_burst": 1_000_000},
            "peers": [{"kme_id": other, "url": f"https://127.0.0.1:{ports[other]}",
                       "saes": [f"sae-{other.lower()}"]}],
        }
        paths[kme] = root / f"kme-{kme}.yaml"
        paths[kme].write_text(yaml.safe_dump(cfg))
    return layout, paths, ports


def run_case(store: str, connections: int, n_requests: int, workers: int,
             pg_dsn: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if store == "sqlite":
            urls = {k: f"sqlite:///{root / f'{k}.db'}" for k in "AB"}
        else:
            assert pg_dsn is not None
            urls = {}
            import psycopg

            for k in "AB":
                name = f"bench_{k.lower()}_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(pg_dsn, autocommit=True) as c:
                    c.execute(f'CREATE DATABASE "{name}"')
                urls[k] = pg_dsn.rsplit("/", 1)[0] + "/" + name
        layout, paths, ports = _setup(root, urls, workers)
        block = root / "block.bin"
        block.write_bytes(os.urandom((n_requests * 2 + 1000) * 32 * 2 // 2 * 2))
        bid = str(uuid.uuid4())
        for kme, peer in (("A", "B"), ("B", "A")):
            subprocess.run([*QNETKIT, "kms", "ingest", "--config", str(paths[kme]), "--peer",
                            peer, "--file", str(block), "--block-id", bid, "--json"],
                           check=True, capture_output=True)
        procs = [subprocess.Popen([*QNETKIT, "kms", "serve", "--config", str(paths[k])],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for k in "AB"]
        try:
            ctx_a = client_ssl_context(*layout.sae["sae-a"], layout.ca_cert)
            ctx_b = client_ssl_context(*layout.sae["sae-b"], layout.ca_cert)
            _wait(ports["A"], ctx_a)
            _wait(ports["B"], ctx_b)
            # Warm-up (connection set-up, first-request paths), not measured.
            asyncio.run(_load("127.0.0.1", ports["A"], ctx_a,
                              [_get("/api/v1/keys/sae-b/enc_keys")] * 200, connections))
            enc_lat, bodies, enc_wall = asyncio.run(_load(
                "127.0.0.1", ports["A"], ctx_a,
                [_get("/api/v1/keys/sae-b/enc_keys")] * n_requests, connections))
            ids = [json.loads(b)["keys"][0]["key_ID"] for b in bodies]
            assert len(set(ids)) == len(ids)
            time.sleep(1.0)  # let the peer sync settle so dec_keys measures the steady state
            dec_reqs = [_post("/api/v1/keys/sae-a/dec_keys", {"key_IDs": [{"key_ID": i}]})
                        for i in ids]
            dec_lat, _, dec_wall = asyncio.run(_load("127.0.0.1", ports["B"], ctx_b, dec_reqs,
                                                     connections))
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=30)
    out: dict[str, Any] = {"store": store, "connections": connections, "workers": workers,
                           "requests": n_requests}
    for name, lat, wall in (("enc_keys", enc_lat, enc_wall), ("dec_keys", dec_lat, dec_wall)):
        arr = np.array(lat) * 1e3
        out[name] = {"req_per_s": len(lat) / wall, "p50_ms": float(np.percentile(arr, 50)),
                     "p99_ms": float(np.percentile(arr, 99))}
    return out


def _wait(port: int, ctx: ssl.SSLContext, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            asyncio.run(_load("127.0.0.1", port, ctx, [_get("/api/v1/keys/x/status")], 1))
        except RuntimeError:
            return  # an HTTP answer (401/400) means it is up
        except OSError:
            time.sleep(0.1)
            continue
        return
    raise SystemExit(f"KME on port {port} did not start")


def _pg_dsn() -> str | None:
    dsn = os.environ.get("QNETKIT_TEST_PG_DSN")
    f = ROOT.parent / ".pgtest" / "dsn"
    if dsn is None and f.exists():
        dsn = f.read_text().strip()
    return dsn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--connections", type=int, nargs="+", default=[16])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    args = ap.parse_args()
    pg = _pg_dsn()
    rows = []
    for store in args.stores:
        if store == "postgresql" and pg is None:
            print("postgresql: no server (run scripts/pg_test_cluster.sh start .pgtest)")
            continue
        for w in args.workers:
            for c in args.connections:
                rows.append(run_case(store, c, args.requests, w, pg))
                r = rows[-1]
                print(f"{store:10s} workers={w} conns={c:3d}  "
                      f"enc {r['enc_keys']['req_per_s']:7.0f}/s p50 "
                      f"{r['enc_keys']['p50_ms']:5.1f} p99 {r['enc_keys']['p99_ms']:6.1f} ms  "
                      f"dec {r['dec_keys']['req_per_s']:7.0f}/s p50 "
                      f"{r['dec_keys']['p50_ms']:5.1f} p99 {r['dec_keys']['p99_ms']:6.1f} ms",
                      flush=True)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "target": {"enc_keys_req_per_s": 1000, "p99_ms": 50}, "rows": rows}
    out = ROOT / "results" / "kms_load.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
