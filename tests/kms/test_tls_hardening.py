"""Issue 12 item 4: the KME serves with pki.server_ssl_context, checked from outside with
``openssl s_client`` against a running server: TLS 1.3 preferred, TLS 1.2 only with ECDHE +
AEAD suites (no CBC), nothing older. RFC 9325 (BCP 195) §4.2 recommends exactly these TLS 1.2
suites; §4.1 forbids TLS 1.0/1.1."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kmenet import KmeNet, start_net, wait_refusal

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmeNet]:
    n = start_net(tmp_path_factory.mktemp("tlsnet"))
    yield n
    n.stop()


def s_client(net: KmeNet, *args: str, sae: str = "sae-a") -> tuple[int, str]:
    """``openssl s_client`` with a valid SAE certificate: only the TLS options decide."""
    cert, key = net.layout.sae[sae]
    port = net.url("A").rsplit(":", 1)[1]
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-cert", str(cert),
         "-key", str(key), "-CAfile", str(net.layout.ca_cert), "-verify_return_error",
         "-no_ign_eof", *args],
        input=b"", capture_output=True, timeout=30, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


def test_tls13_is_preferred(net: KmeNet) -> None:
    rc, out = s_client(net)
    assert rc == 0, out
    assert "TLSv1.3" in out and "Verify return code: 0 (ok)" in out


def test_tls12_aead_suite_is_accepted(net: KmeNet) -> None:
    rc, out = s_client(net, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert rc == 0, out
    assert "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in out


@pytest.mark.parametrize("suite", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                                   "ECDHE-ECDSA-AES128-SHA256"])
def test_tls12_cbc_suites_are_refused(net: KmeNet, suite: str) -> None:
    # uvicorn's own context (ciphers "TLSv1") accepted these before the fix.
    rc, out = s_client(net, "-tls1_2", "-cipher", suite)
    assert rc != 0 and "Cipher is (NONE)" in out, out
    # The server says why (and audits it): the suite, not anything else, was refused.
    rec = wait_refusal(net.kmes["A"], "tls-handshake", "NO_SHARED_CIPHER")
    assert rec.detail["peer"].startswith("127.0.0.1:")


def test_tls11_is_refused_by_the_server(net: KmeNet) -> None:
    # SECLEVEL=0 lets this client offer TLS 1.1 at all; the refusal must be the server's.
    rc, out = s_client(net, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert rc != 0
    assert "no protocols available" not in out, "the client could not even offer TLS 1.1"
    assert "Cipher is (NONE)" in out, out
    wait_refusal(net.kmes["A"], "tls-handshake", "UNSUPPORTED_PROTOCOL")


def test_served_context_is_the_hardened_one(net: KmeNet) -> None:
    ctx = net.kmes["A"].tls_context
    assert ctx is not None
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
    tls12 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 and all(("GCM" in n or "CHACHA20" in n) and n.startswith("ECDHE") for n in tls12)


def test_no_certificate_no_handshake(net: KmeNet, tmp_path: Path) -> None:
    port = net.url("A").rsplit(":", 1)[1]
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2",
         "-CAfile", str(net.layout.ca_cert)],
        input=b"", capture_output=True, timeout=30, check=False)
    assert proc.returncode != 0
