"""Issue 12 items 7 and 8: strict input, size limits and deadlines, ETSI Error objects from
every layer, no banner, no caches, no docs UI. Checked over real mTLS sockets on loopback."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from kmenet import KmeNet, start_net, wait_refusal

from qnetkit.kms.pki import client_ssl_context

API = "/api/v1/keys"
LIMIT_S = 1.0  # header_timeout_s of the test KMEs


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmeNet]:
    extra = {k: {"limits": {"sae_rate_per_s": 1e6, "sae_burst": 1_000_000,
                            "header_timeout_s": LIMIT_S}, "docs": k == "B"} for k in "ABC"}
    n = start_net(tmp_path_factory.mktemp("limitsnet"), extra=extra)
    n.feed("A", "B", 16 * 1024)
    yield n
    n.stop()


def client(net: KmeNet, sae: str = "sae-a", kme: str = "A") -> httpx.Client:
    cert, key = net.layout.sae[sae]
    return httpx.Client(base_url=net.url(kme), timeout=10,
                        verify=client_ssl_context(cert, key, net.layout.ca_cert))


def tls_socket(net: KmeNet, sae: str = "sae-a", kme: str = "A") -> ssl.SSLSocket:
    cert, key = net.layout.sae[sae]
    ctx = client_ssl_context(cert, key, net.layout.ca_cert)
    host, port = net.url(kme).removeprefix("https://").rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=host)


def exchange(net: KmeNet, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes over mTLS, read the answer until the server closes."""
    with tls_socket(net) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def assert_error_object(headers: dict[str, str], body: bytes) -> str:
    # ETSI GS QKD 014 clause 6.5: the Error object, {"message": ...}.
    assert headers["content-type"] == "application/json"
    msg = json.loads(body)["message"]
    assert isinstance(msg, str) and msg
    return msg


# -- strict types (item 7) --------------------------------------------------------------------
@pytest.mark.parametrize("body", [{"number": True}, {"number": "1"}, {"number": 1.0},
                                  {"size": 256.0}, {"size": "256"}, {"number": False}])
def test_post_enc_keys_wants_json_integers(net: KmeNet, body: dict[str, object]) -> None:
    with client(net) as c:
        r = c.post(f"{API}/sae-b/enc_keys", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "bad request format"


@pytest.mark.parametrize("query", ["size=256.0", "number=1.0", "number=true", "size=+256",
                                   "size=0x100", "number= 1", "size=256e0"])
def test_get_enc_keys_wants_decimal_integers(net: KmeNet, query: str) -> None:
    with client(net) as c:
        r = c.get(f"{API}/sae-b/enc_keys?{query}")
    assert r.status_code == 400, r.text
    assert "message" in r.json()


def test_plain_integers_still_work(net: KmeNet) -> None:
    with client(net) as c:
        assert c.get(f"{API}/sae-b/enc_keys?size=256&number=1").status_code == 200
        assert c.post(f"{API}/sae-b/enc_keys", json={"number": 1, "size": 256}).status_code == 200


# -- body size (item 7) -----------------------------------------------------------------------
def test_declared_10mb_body_is_refused_before_reading(net: KmeNet) -> None:
    status, headers, body = exchange(net, (
        f"POST {API}/sae-b/dec_keys HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode())
    assert status == 413
    assert "65536" in assert_error_object(headers, body)
    wait_refusal(net.kmes["A"], "body-too-large", cn="sae-a", status=413)


def test_chunked_body_over_the_limit_is_refused(net: KmeNet) -> None:
    chunk = b"x" * 40_000
    piece = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    status, headers, body = exchange(net, (
        f"POST {API}/sae-b/dec_keys HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        + piece * 2 + b"0\r\n\r\n")
    assert status == 413
    assert_error_object(headers, body)


# -- request head (item 7) --------------------------------------------------------------------
def test_long_path_is_414_error_object(net: KmeNet) -> None:
    status, headers, body = exchange(
        net, f"GET {API}/{'s' * 9000}/status HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    assert status == 414
    assert "8192" in assert_error_object(headers, body)


def test_huge_query_is_414_error_object(net: KmeNet) -> None:
    status, headers, body = exchange(
        net, f"GET {API}/sae-b/enc_keys?x={'1' * 20000} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    assert status == 414
    assert_error_object(headers, body)


def test_large_headers_are_431_error_object(net: KmeNet) -> None:
    # 9 KB of headers, then nothing: the server must refuse at the limit, not wait for more.
    head = f"GET {API}/sae-b/status HTTP/1.1\r\nHost: a\r\nX-Pad: {'p' * 9000}\r\n"
    status, headers, body = exchange(net, head.encode())
    assert status == 431
    assert_error_object(headers, body)
    wait_refusal(net.kmes["A"], "malformed-request", "request head", status=431)


def test_non_ascii_path_is_400_error_object(net: KmeNet) -> None:
    status, headers, body = exchange(
        net, f"GET {API}/sä/status HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    assert status == 400  # llhttp refuses the byte; the answer is still an Error object
    assert_error_object(headers, body)


def test_garbage_is_400_error_object(net: KmeNet) -> None:
    status, headers, body = exchange(net, b"HELLO\x01 THERE\r\n\r\n")
    assert status == 400
    assert_error_object(headers, body)


def test_idle_connections_are_closed_after_the_header_timeout(net: KmeNet) -> None:
    host, port = net.url("A").removeprefix("https://").rsplit(":", 1)
    tls = [tls_socket(net) for _ in range(20)]  # handshake done, no request
    raw = [socket.create_connection((host, int(port)), timeout=10) for _ in range(20)]  # no TLS
    slow = tls_socket(net)
    slow.sendall(b"GET /api/v1/keys/sae-b/status HTTP/1.1\r\n")  # a head that never ends
    try:
        for s in tls:
            data = b""
            while chunk := s.recv(4096):  # socket timeout 10 s >> LIMIT_S: closed by the KME
                data += chunk
            assert data.startswith(b"HTTP/1.1 408 ") and b'{"message":' in data
        for r in raw:
            assert r.recv(4096) == b""
        data = slow.recv(4096)
        assert data.startswith(b"HTTP/1.1 408 ")
    finally:
        for s in [*tls, *raw, slow]:
            s.close()
    wait_refusal(net.kmes["A"], "request-timeout", "no TLS handshake")
    wait_refusal(net.kmes["A"], "request-timeout", "request not received")


def test_keep_alive_then_slow_head_is_closed(net: KmeNet) -> None:
    with tls_socket(net) as s:
        s.sendall(f"GET {API}/sae-b/status HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        first = b""
        while b"\r\n\r\n" not in first:
            first += s.recv(65536)
        head, _, body = first.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /api/v1/keys/sae-b/status HTTP/1.1\r\nHo")
        t0 = time.monotonic()
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - t0 < 9  # closed by the header deadline, not the socket's


# -- headers of answers (item 8) --------------------------------------------------------------
def test_key_answers_are_not_cached_and_carry_no_banner(net: KmeNet) -> None:
    with client(net) as c:
        r = c.get(f"{API}/sae-b/enc_keys")
        bad = c.get(f"{API}/sae-b/enc_keys?size=7")
    assert r.status_code == 200
    for resp in (r, bad):
        assert resp.headers["cache-control"] == "no-store"
        assert "server" not in resp.headers


def test_docs_are_off_unless_configured(net: KmeNet) -> None:
    with client(net) as a:
        assert a.get("/docs").status_code == 404
        assert a.get("/redoc").status_code == 404
        assert a.get("/openapi.json").status_code == 200
    with client(net, "sae-b", "B") as b:  # docs: true at B
        assert b.get("/docs").status_code == 200
        assert b.get("/redoc").status_code == 200
