"""Development PKI: files, certificate contents, chain, and real mTLS handshakes on loopback.

Also drives :class:`qnetkit.kms.client.Etsi014Client` against a stub KME over the same mTLS.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from qnetkit.kms.client import (
    Etsi014Client,
    Key,
    KmeConnectionError,
    KmeHttpError,
    KmeResponseError,
)
from qnetkit.kms.errors import ConfigError, KmsError
from qnetkit.kms.pki import (
    OverwriteRefusedError,
    PkiLayout,
    cert_identity,
    client_ssl_context,
    file_stem,
    init_pki,
    issue_cert,
    server_ssl_context,
)

KMES = ["A", "kme-B"]
SAES = ["alice", "sae-bob"]


@dataclass(frozen=True)
class Pki:
    dir: Path
    layout: PkiLayout


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    return Pki(d, init_pki(d, kmes=KMES, saes=SAES))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A second, unrelated PKI with the same IDs."""
    d = tmp_path_factory.mktemp("foreign")
    return Pki(d, init_pki(d, kmes=KMES, saes=SAES))


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# --------------------------------------------------------------------------- files


def test_file_names_follow_the_documented_rule(pki: Pki) -> None:
    names = sorted(p.name for p in pki.dir.iterdir())
    assert names == sorted([
        "ca.crt", "ca.key",
        "kme-A.crt", "kme-A.key", "kme-B.crt", "kme-B.key",
        "sae-alice.crt", "sae-alice.key", "sae-bob.crt", "sae-bob.key",
    ])
    lay = pki.layout
    assert lay.ca_cert == pki.dir / "ca.crt" and lay.ca_key == pki.dir / "ca.key"
    assert lay.kme == {
        "A": (pki.dir / "kme-A.crt", pki.dir / "kme-A.key"),
        "kme-B": (pki.dir / "kme-B.crt", pki.dir / "kme-B.key"),
    }
    assert lay.sae == {
        "alice": (pki.dir / "sae-alice.crt", pki.dir / "sae-alice.key"),
        "sae-bob": (pki.dir / "sae-bob.crt", pki.dir / "sae-bob.key"),
    }
    assert file_stem("sae", "SAE-x") == "sae-SAE-x"  # the prefix test is case-sensitive


def test_private_keys_are_0600(pki: Pki) -> None:
    keys = [pki.layout.ca_key] + [k for _, k in [*pki.layout.kme.values(),
                                                 *pki.layout.sae.values()]]
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600, k
        key = serialization.load_pem_private_key(k.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == "secp256r1"


def test_every_certificate_chains_to_the_ca(pki: Pki) -> None:
    ca = _cert(pki.layout.ca_cert)
    ca_pub = ca.public_key()
    assert isinstance(ca_pub, ec.EllipticCurvePublicKey)
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)
    ca_pub.verify(ca.signature, ca.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for cert_path, key_path in [*pki.layout.kme.values(), *pki.layout.sae.values()]:
        cert = _cert(cert_path)
        assert cert.issuer == ca.subject
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
        ca_pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


def test_path_validation_with_a_strict_verifier(pki: Pki, foreign: Pki) -> None:
    store = Store([_cert(pki.layout.ca_cert)])
    kme = _cert(pki.layout.kme["A"][0])
    for host in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        PolicyBuilder().store(store).build_server_verifier(host).verify(kme, [])
    client_verifier = PolicyBuilder().store(store).build_client_verifier()
    client_verifier.verify(_cert(pki.layout.sae["alice"][0]), [])
    client_verifier.verify(kme, [])  # a KME is also a client toward its peers
    with pytest.raises(x509.verification.VerificationError):
        client_verifier.verify(_cert(foreign.layout.sae["alice"][0]), [])
    with pytest.raises(x509.verification.VerificationError):  # SAE cert is not a server cert
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName("localhost")).verify(
            _cert(pki.layout.sae["alice"][0]), []
        )


def test_kme_certificate_contents(pki: Pki) -> None:
    for kme_id, (cert_path, _) in pki.layout.kme.items():
        cert = _cert(cert_path)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == kme_id
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["localhost"]
        assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_sae_certificate_contents(pki: Pki) -> None:
    for sae_id, (cert_path, _) in pki.layout.sae.items():
        cert = _cert(cert_path)
        assert cert_identity(cert_path.read_bytes()).cn == sae_id
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == []
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
            f"urn:qnetkit:sae:{sae_id}"
        ]
        assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature


def test_custom_hosts(tmp_path: Path) -> None:
    lay = init_pki(tmp_path, kmes=["k1"], saes=[], hosts=["kme1.example", "::1", "10.0.0.7"])
    san = _cert(lay.kme["k1"][0]).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert san.get_values_for_type(x509.DNSName) == ["kme1.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("::1"), ipaddress.ip_address("10.0.0.7")
    ]


def test_cert_identity_pem_and_der(pki: Pki) -> None:
    pem = pki.layout.sae["alice"][0].read_bytes()
    der = _cert(pki.layout.sae["alice"][0]).public_bytes(serialization.Encoding.DER)
    ident = cert_identity(pem)
    assert ident == cert_identity(der)
    assert ident.cn == "alice"
    assert ident.sha256_fingerprint == hashlib.sha256(der).hexdigest()
    with pytest.raises(ConfigError, match="not a valid"):
        cert_identity(b"not a certificate")


# --------------------------------------------------------------------------- refusals


def test_refuses_to_overwrite(pki: Pki) -> None:
    before = {p.name: p.read_bytes() for p in pki.dir.iterdir()}
    with pytest.raises(OverwriteRefusedError, match="refusing to overwrite"):
        init_pki(pki.dir, kmes=KMES, saes=SAES)
    assert issubclass(OverwriteRefusedError, FileExistsError)
    assert issubclass(OverwriteRefusedError, ConfigError)
    assert {p.name: p.read_bytes() for p in pki.dir.iterdir()} == before


def test_one_existing_file_blocks_everything(tmp_path: Path) -> None:
    (tmp_path / "sae-alice.crt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"sae-alice\.crt"):
        init_pki(tmp_path, kmes=["A"], saes=["alice"])
    assert [p.name for p in tmp_path.iterdir()] == ["sae-alice.crt"]


def test_force_replaces_everything(tmp_path: Path) -> None:
    first = init_pki(tmp_path, kmes=["A"], saes=["alice"])
    ca1 = first.ca_cert.read_bytes()
    first.ca_key.chmod(0o644)  # a loosened key file must come back as 0600
    second = init_pki(tmp_path, kmes=["A"], saes=["alice"], force=True)
    assert second == first
    assert second.ca_cert.read_bytes() != ca1
    assert stat.S_IMODE(second.ca_key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ca.crt", "ca.key", "kme-A.crt", "kme-A.key", "sae-alice.crt", "sae-alice.key"]
    )


@pytest.mark.parametrize(
    ("kmes", "saes", "msg"),
    [
        ([""], [], "1-64 characters"),
        (["a" * 65], [], "1-64 characters"),
        (["a b"], [], "1-64 characters"),
        (["a/b"], [], "1-64 characters"),
        (["../x"], [], "1-64 characters"),
        (["kmé"], [], "1-64 characters"),
        (["a\n"], [], "1-64 characters"),
        ([], ["x:y"], "SAE ID 'x:y'"),
        (["A", "A"], [], "given twice"),
        ([], ["s", "s"], "given twice"),
        (["B", "kme-B"], [], "same file names"),
        ([], ["Bob", "bob"], "same file names"),
        (["x"], ["x"], "both a KME and an SAE"),
        ([], [], "at least one"),
        ("A", [], "not one string"),
    ],
)
def test_bad_ids_are_rejected(tmp_path: Path, kmes: list[str], saes: list[str],
                              msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        init_pki(tmp_path, kmes=kmes, saes=saes)
    assert list(tmp_path.iterdir()) == []


def test_max_length_id_is_accepted(tmp_path: Path) -> None:
    long_id = "a" * 64
    lay = init_pki(tmp_path, kmes=[], saes=[long_id])
    assert lay.sae[long_id][0].name == f"sae-{long_id}.crt"


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"hosts": []}, "at least one host"),
        ({"hosts": ["bad host"]}, "not a host name"),
        ({"days": 0}, "days"),
        ({"days": 826}, "days"),
    ],
)
def test_bad_options_are_rejected(tmp_path: Path, kw: dict[str, Any], msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        init_pki(tmp_path, kmes=["A"], saes=[], **kw)


# --------------------------------------------------------------------------- issue_cert


def test_issue_cert_adds_identities(tmp_path: Path) -> None:
    lay = init_pki(tmp_path, kmes=["A"], saes=[])
    ca = _cert(lay.ca_cert)
    store = Store([ca])
    sae_crt, sae_key = issue_cert(lay.ca_cert, lay.ca_key, "carol", tmp_path,
                                  server=False, client=True)
    assert (sae_crt.name, sae_key.name) == ("sae-carol.crt", "sae-carol.key")
    assert stat.S_IMODE(sae_key.stat().st_mode) == 0o600
    PolicyBuilder().store(store).build_client_verifier().verify(_cert(sae_crt), [])
    kme_crt, _ = issue_cert(lay.ca_cert, lay.ca_key, "C", tmp_path, server=True, client=True,
                            hosts=["kme-c.local"])
    assert kme_crt.name == "kme-C.crt"
    PolicyBuilder().store(store).build_server_verifier(x509.DNSName("kme-c.local")).verify(
        _cert(kme_crt), []
    )
    named, _ = issue_cert(lay.ca_cert, lay.ca_key, "ingest", tmp_path, server=False,
                          client=True, name="ingest-client")
    assert named.name == "ingest-client.crt"
    with pytest.raises(OverwriteRefusedError):
        issue_cert(lay.ca_cert, lay.ca_key, "carol", tmp_path, server=False, client=True)
    with pytest.raises(ConfigError, match="at least one host"):
        issue_cert(lay.ca_cert, lay.ca_key, "D", tmp_path, server=True, client=True)
    with pytest.raises(ConfigError, match="server and/or client"):
        issue_cert(lay.ca_cert, lay.ca_key, "E", tmp_path, server=False, client=False)


def test_issue_cert_checks_the_ca_pair(pki: Pki, foreign: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not belong"):
        issue_cert(pki.layout.ca_cert, foreign.layout.ca_key, "x", tmp_path,
                   server=False, client=True)
    with pytest.raises(ConfigError, match="cannot load"):
        issue_cert(tmp_path / "nope.crt", pki.layout.ca_key, "x", tmp_path,
                   server=False, client=True)


def test_context_with_missing_files_is_a_config_error(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load"):
        server_ssl_context(tmp_path / "x.crt", tmp_path / "x.key", pki.layout.ca_cert)
    with pytest.raises(ConfigError, match="CA file"):
        client_ssl_context(*pki.layout.sae["alice"], tmp_path / "none.crt")


# --------------------------------------------------------------------------- TLS handshakes


def _peer_cn(peer: Any) -> str | None:
    """The subject CN from ``SSLSocket.getpeercert()`` (what a KME server sees)."""
    for rdn in (peer or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


@dataclass
class ServerResult:
    cn: str | None = None
    der: bytes | None = None
    error: BaseException | None = None


def _serve_once(ctx: ssl.SSLContext) -> tuple[int, threading.Thread, ServerResult]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    result = ServerResult()

    def run() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(5)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                result.cn = _peer_cn(tls.getpeercert())
                result.der = tls.getpeercert(binary_form=True)
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            result.error = exc
        finally:
            listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, result


def _connect(ctx: ssl.SSLContext, port: int, host: str = "localhost") -> bytes | BaseException:
    """What the client got: the server's b"ok", b"" (closed) or the exception."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            # TLS 1.3: a rejected client certificate surfaces on the first read.
            return tls.recv(2)
    except (ssl.SSLError, OSError) as exc:
        return exc


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext,
               host: str = "localhost") -> tuple[bytes | BaseException, ServerResult]:
    port, thread, result = _serve_once(server)
    got = _connect(client, port, host)
    thread.join(10)
    assert not thread.is_alive()
    return got, result


def test_mutual_tls_handshake_identifies_the_sae(pki: Pki) -> None:
    server = server_ssl_context(*pki.layout.kme["A"], pki.layout.ca_cert)
    client = client_ssl_context(*pki.layout.sae["alice"], pki.layout.ca_cert)
    got, result = _handshake(server, client)
    assert result.error is None
    assert got == b"ok"
    assert result.cn == "alice"
    assert result.der is not None
    assert cert_identity(result.der) == cert_identity(pki.layout.sae["alice"][0].read_bytes())


def test_handshake_by_ip_address(pki: Pki) -> None:
    server = server_ssl_context(*pki.layout.kme["A"], pki.layout.ca_cert)
    client = client_ssl_context(*pki.layout.sae["sae-bob"], pki.layout.ca_cert)
    got, result = _handshake(server, client, host="127.0.0.1")
    assert got == b"ok" and result.cn == "sae-bob"


def test_kme_to_kme_handshake(pki: Pki) -> None:
    server = server_ssl_context(*pki.layout.kme["A"], pki.layout.ca_cert)
    client = client_ssl_context(*pki.layout.kme["kme-B"], pki.layout.ca_cert)
    got, result = _handshake(server, client)
    assert got == b"ok" and result.cn == "kme-B"


def test_client_from_another_ca_is_refused(pki: Pki, foreign: Pki) -> None:
    server = server_ssl_context(*pki.layout.kme["A"], pki.layout.ca_cert)
    # The foreign client trusts our CA, so only its own certificate is wrong.
    client = client_ssl_context(*foreign.layout.sae["alice"], pki.layout.ca_cert)
    got, result = _handshake(server, client)
    assert isinstance(result.error, ssl.SSLError)
    assert result.cn is None
    assert got != b"ok"


def test_client_without_certificate_is_refused(pki: Pki) -> None:
    server = server_ssl_context(*pki.layout.kme["A"], pki.layout.ca_cert)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cafile=pki.layout.ca_cert)
    got, result = _handshake(server, client)
    assert isinstance(result.error, ssl.SSLError)
    assert got != b"ok"


def test_client_refuses_a_server_of_another_ca(pki: Pki, foreign: Pki) -> None:
    server = server_ssl_context(*foreign.layout.kme["A"], foreign.layout.ca_cert)
    client = client_ssl_context(*pki.layout.sae["alice"], pki.layout.ca_cert)
    got, _ = _handshake(server, client)
    assert isinstance(got, ssl.SSLCertVerificationError)


def test_client_checks_the_host_name(pki: Pki) -> None:
    server = server_ssl_context(*pki.layout.kme["A"], pki.layout.ca_cert)
    client = client_ssl_context(*pki.layout.sae["alice"], pki.layout.ca_cert)
    got, _ = _handshake(server, client, host="kme.elsewhere.example")
    assert isinstance(got, ssl.SSLCertVerificationError)


def test_sae_certificate_cannot_serve(pki: Pki) -> None:
    # clientAuth-only EKU: a client must not accept it as a TLS server.
    server = server_ssl_context(*pki.layout.sae["alice"], pki.layout.ca_cert)
    client = client_ssl_context(*pki.layout.sae["sae-bob"], pki.layout.ca_cert)
    got, _ = _handshake(server, client)
    assert isinstance(got, ssl.SSLError)


def test_contexts_require_tls12(pki: Pki) -> None:
    server = server_ssl_context(*pki.layout.kme["A"], pki.layout.ca_cert)
    client = client_ssl_context(*pki.layout.sae["alice"], pki.layout.ca_cert)
    for ctx in (server, client):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname


# --------------------------------------------------------------------------- ETSI 014 client


class _StubKme(BaseHTTPRequestHandler):
    """Just enough of ETSI GS QKD 014 to check what the client sends and parses."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, list[str]], Any, str | None]] = []  # noqa: RUF012

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        cn = _peer_cn(self.connection.getpeercert())
        self.seen.append((method, url.path, parse_qs(url.query), body, cn))
        key = base64.b64encode(b"\x11" * 32).decode()
        if url.path == "/api/v1/keys/bob/status":
            self._reply(200, {"source_KME_ID": "A", "slave_SAE_ID": "bob", "key_size": 256})
        elif url.path == "/api/v1/keys/bob/enc_keys":
            self._reply(200, {"keys": [{"key_ID": "k1", "key": key}]})
        elif url.path == "/api/v1/keys/alice/dec_keys":
            self._reply(200, {"keys": [{"key_ID": "k1", "key": key},
                                       {"key_ID": "k2", "key": key}]})
        elif url.path == "/api/v1/keys/broken/enc_keys":
            self._reply(200, {"keys": [{"key_ID": "k1", "key": "%%%" + key}]})
        elif url.path == "/api/v1/keys/busy/enc_keys":
            self._reply(503, {"message": "keys exhausted", "details": [{"stored": 0}]})
        else:
            self._reply(400, {"message": "unknown SAE"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


@pytest.fixture(scope="module")
def stub_kme(pki: Pki) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _StubKme)
    httpd.daemon_threads = True
    ctx = server_ssl_context(*pki.layout.kme["A"], pki.layout.ca_cert)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _client(pki: Pki, url: str, sae: str = "alice", ca: Path | None = None) -> Etsi014Client:
    cert, key = pki.layout.sae[sae]
    return Etsi014Client(url, cert=cert, key=key, ca=ca or pki.layout.ca_cert, timeout_s=5)


def test_client_speaks_etsi_014(pki: Pki, stub_kme: str) -> None:
    _StubKme.seen.clear()
    with _client(pki, stub_kme) as c:
        assert c.status("bob")["slave_SAE_ID"] == "bob"
        keys = c.enc_keys("bob", number=1, size=256)
        assert keys == [Key("k1", b"\x11" * 32)]
        assert "\\x11" not in repr(keys) and "ERER" not in repr(keys)
        c.enc_keys("bob", additional_slave_sae_ids=["carol"],
                   extension_optional=[{"route": "fast"}])
        c.enc_keys("bob", number=2, method="POST")
        assert [k.key_id for k in c.dec_keys("alice", ["k1", "k2"])] == ["k1", "k2"]
        c.dec_keys("alice", ["k1"], method="GET")
    seen = _StubKme.seen
    assert all(cn == "alice" for *_, cn in seen)
    assert seen[0][:2] == ("GET", "/api/v1/keys/bob/status")
    assert seen[1][:4] == ("GET", "/api/v1/keys/bob/enc_keys",
                           {"number": ["1"], "size": ["256"]}, None)
    assert seen[2][:4] == ("POST", "/api/v1/keys/bob/enc_keys", {},
                           {"number": 1, "additional_slave_SAE_IDs": ["carol"],
                            "extension_optional": [{"route": "fast"}]})
    assert seen[3][3] == {"number": 2}
    assert seen[4][:4] == ("POST", "/api/v1/keys/alice/dec_keys", {},
                           {"key_IDs": [{"key_ID": "k1"}, {"key_ID": "k2"}]})
    assert seen[5][:3] == ("GET", "/api/v1/keys/alice/dec_keys", {"key_ID": ["k1"]})


def test_client_errors(pki: Pki, foreign: Pki, stub_kme: str) -> None:
    with _client(pki, stub_kme) as c:
        with pytest.raises(KmeHttpError) as info:
            c.enc_keys("busy")
        assert info.value.status_code == 503
        assert info.value.message == "keys exhausted"
        assert info.value.details == [{"stored": 0}]
        assert str(info.value) == "KME returned HTTP 503: keys exhausted"
        with pytest.raises(KmeHttpError, match="unknown SAE"):
            c.status("nobody")
        with pytest.raises(KmeResponseError, match="not valid base64") as bad:
            c.enc_keys("broken")
        assert "ERER" not in str(bad.value)
        with pytest.raises(ValueError, match="exactly one"):
            c.dec_keys("alice", ["k1", "k2"], method="GET")
        with pytest.raises(ValueError, match="POST"):
            c.enc_keys("bob", additional_slave_sae_ids=["x"], method="GET")
    with (
        _client(pki, stub_kme, ca=foreign.layout.ca_cert) as c,
        pytest.raises(KmeConnectionError, match="cannot reach KME") as conn,
    ):
        c.status("bob")
    assert "\n" not in str(conn.value)
    assert issubclass(KmeConnectionError, KmsError) and issubclass(KmeHttpError, KmsError)
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    with (
        _client(pki, f"https://localhost:{port}") as c,
        pytest.raises(KmeConnectionError),
    ):
        c.status("bob")
