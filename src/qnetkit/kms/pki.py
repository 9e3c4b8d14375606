"""Development PKI for KMEs and SAEs: one ECDSA P-256 CA, leaf certificates, mTLS contexts.

Model: ETSI GS QKD 014 V1.1.1 leaves authentication to mutual TLS; an SAE (or a peer KME)
is identified by the subject CN of its client certificate. This module makes a small,
self-contained PKI for development and tests (not a production CA: no CRL/OCSP, the CA key
sits unencrypted next to the certificates).

File-name rule (also returned in :class:`PkiLayout`, so callers never guess):

* CA: ``ca.crt`` and ``ca.key``.
* KME ``X``: ``kme-X.crt`` / ``kme-X.key``; if ``X`` already starts with ``kme-``, the
  prefix is not doubled: ``X.crt`` / ``X.key``.
* SAE ``Y``: ``sae-Y.crt`` / ``sae-Y.key``; if ``Y`` already starts with ``sae-``, then
  ``Y.crt`` / ``Y.key``.

The prefix test is case-sensitive. Certificates are PEM; private keys are unencrypted PKCS#8
PEM with mode 0600.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qnetkit.kms.errors import ConfigError

StrPath = str | os.PathLike[str]

_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STEM_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
_DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1")
# Apple's limit for TLS server certificates; longer-lived dev certs get refused by some clients.
_MAX_DAYS = 825
# Tolerate small clock differences between the machine that issues and the one that verifies.
_BACKDATE = _dt.timedelta(minutes=5)


class OverwriteRefusedError(ConfigError, FileExistsError):
    """A PKI or key file already exists and ``force`` was not given."""


@dataclass(frozen=True)
class PkiLayout:
    """Paths written by :func:`init_pki`; ``kme``/``sae`` map an ID to ``(cert, key)``."""

    ca_cert: Path
    ca_key: Path
    kme: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    sae: dict[str, tuple[Path, Path]] = field(default_factory=dict)


@dataclass(frozen=True)
class CertIdentity:
    """Subject CN and SHA-256 fingerprint (lower-case hex of the DER, no colons)."""

    cn: str
    sha256_fingerprint: str


# --------------------------------------------------------------------------- validation


def check_id(value: object, what: str = "ID") -> str:
    """Return ``value`` if it is an ETSI-style SAE/KME ID: 1-64 of ``A-Z a-z 0-9 . _ -``."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise ConfigError(
            f"{what} {value!r}: must be 1-64 characters of A-Z a-z 0-9 . _ -"
        )
    return value


def file_stem(role: str, ident: str) -> str:
    """File stem of a KME (``role="kme"``) or SAE (``role="sae"``) identity; see module doc."""
    if role not in ("kme", "sae"):
        raise ValueError(f"role must be 'kme' or 'sae', not {role!r}")
    prefix = role + "-"
    return ident if ident.startswith(prefix) else prefix + ident


def _check_hosts(hosts: Sequence[str]) -> list[x509.GeneralName]:
    if isinstance(hosts, str):
        raise ConfigError("hosts: give a list of host names / IP addresses, not one string")
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for h in hosts:
        if not isinstance(h, str) or not h or any(c.isspace() for c in h) or not h.isascii():
            raise ConfigError(f"hosts: {h!r} is not a host name or IP address")
        if h.lower() in seen:
            continue
        seen.add(h.lower())
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


def _sae_uri(ident: str) -> x509.GeneralName:
    # RFC 5280 does not need a SAN on a client certificate, but strict verifiers (e.g. the
    # CA/B-profile one in ``cryptography.x509.verification``) reject a leaf without one.
    return x509.UniformResourceIdentifier(f"urn:qnetkit:sae:{ident}")


def _check_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_DAYS:
        raise ConfigError(f"days: must be an integer in 1..{_MAX_DAYS}, got {days!r}")
    return days


# --------------------------------------------------------------------------- files


def write_new_file(path: Path, data: bytes, *, mode: int, force: bool = False) -> None:
    """Write ``data`` to ``path`` with exactly ``mode``; refuse to replace unless ``force``.

    Without ``force`` the file is created with ``O_CREAT | O_EXCL`` (no race with another
    writer). With ``force`` a temporary file is created the same way and renamed over the
    target, so a replaced private key never exists with looser permissions.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    target = path if not force else path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError:
        if force:  # a stale temporary file of a crashed run with the same pid
            os.unlink(target)
            fd = os.open(target, flags, mode)
        else:
            raise OverwriteRefusedError(
                f"{path} already exists (use force to overwrite)"
            ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            # The umask may have removed bits; set the mode exactly.
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if force:
        os.replace(target, path)


def _refuse_existing(paths: Sequence[Path], force: bool) -> None:
    if force:
        return
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise OverwriteRefusedError(
            f"refusing to overwrite {', '.join(existing)} (use force to overwrite)"
        )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --------------------------------------------------------------------------- certificates


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _make_ca(days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    # A random suffix keeps two development CAs apart in error messages and trust stores.
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qnetkit development PKI"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"qnetkit dev CA {os.urandom(4).hex()}"),
    ])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cn: str,
    *,
    server: bool,
    client: bool,
    san: list[x509.GeneralName],
    days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    eku = []
    if server:
        eku.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        eku.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    now = _now()
    # A leaf must not outlive its CA, or verifiers reject it once the CA expires.
    not_after = min(now + _dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _check_ids(ids: Sequence[str], role: str) -> list[str]:
    if isinstance(ids, str):
        raise ConfigError(f"{role}s: give a list of IDs, not one string")
    out: list[str] = []
    stems: dict[str, str] = {}
    for i in ids:
        check_id(i, f"{role.upper()} ID")
        if i in out:
            raise ConfigError(f"{role.upper()} ID {i!r} given twice")
        # Case-folded so that the files do not collide on case-insensitive file systems.
        stem = file_stem(role, i).casefold()
        if stem in stems:
            raise ConfigError(
                f"{role.upper()} IDs {stems[stem]!r} and {i!r} map to the same file names"
            )
        stems[stem] = i
        out.append(i)
    return out


def init_pki(
    out_dir: Path,
    *,
    kmes: Sequence[str],
    saes: Sequence[str],
    hosts: Sequence[str] = _DEFAULT_HOSTS,
    days: int = _MAX_DAYS,
    force: bool = False,
) -> PkiLayout:
    """Create a CA and one certificate per KME and SAE in ``out_dir`` (made if missing).

    KME certificates (CN = KME ID) carry serverAuth and clientAuth (a KME is a TLS server to
    its SAEs and a TLS client to peer KMEs) and a SAN with ``hosts``; SAE certificates
    (CN = SAE ID) carry clientAuth only and the SAN URI ``urn:qnetkit:sae:<ID>``. All keys
    are ECDSA P-256, all leaves have KeyUsage digitalSignature. File names follow the
    module-level rule. An ID may not be both a KME and an SAE ID (the CN is the identity).
    Nothing is written if any target file exists and ``force`` is false
    (:class:`OverwriteRefusedError`).
    """
    kme_ids = _check_ids(kmes, "kme")
    sae_ids = _check_ids(saes, "sae")
    both = sorted(set(kme_ids) & set(sae_ids))
    if both:
        raise ConfigError(f"ID {both[0]!r} is both a KME and an SAE ID; CNs must be unique")
    if not kme_ids and not sae_ids:
        raise ConfigError("init_pki: give at least one KME or SAE ID")
    san = _check_hosts(hosts)
    if kme_ids and not san:
        raise ConfigError("hosts: KME certificates need at least one host name or IP address")
    _check_days(days)

    out = Path(out_dir)
    layout = PkiLayout(ca_cert=out / "ca.crt", ca_key=out / "ca.key")
    for i in kme_ids:
        stem = file_stem("kme", i)
        layout.kme[i] = (out / f"{stem}.crt", out / f"{stem}.key")
    for i in sae_ids:
        stem = file_stem("sae", i)
        layout.sae[i] = (out / f"{stem}.crt", out / f"{stem}.key")
    targets = [layout.ca_cert, layout.ca_key]
    for c, k in [*layout.kme.values(), *layout.sae.values()]:
        targets += [c, k]
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    _refuse_existing(targets, force)
    out.mkdir(parents=True, exist_ok=True)

    ca_cert, ca_key = _make_ca(days)
    write_new_file(layout.ca_key, _key_pem(ca_key), mode=0o600, force=force)
    write_new_file(layout.ca_cert, _cert_pem(ca_cert), mode=0o644, force=force)
    jobs = [(i, True, san, layout.kme[i]) for i in kme_ids]
    jobs += [(i, False, [_sae_uri(i)], layout.sae[i]) for i in sae_ids]
    for cn, is_kme, names, (cert_path, key_path) in jobs:
        cert, key = _make_leaf(
            ca_cert, ca_key, cn, server=is_kme, client=True, san=names, days=days
        )
        write_new_file(key_path, _key_pem(key), mode=0o600, force=force)
        write_new_file(cert_path, _cert_pem(cert), mode=0o644, force=force)
    return layout


def _load_ca(
    ca_cert_path: Path, ca_key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        ca_cert = x509.load_pem_x509_certificate(Path(ca_cert_path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"CA certificate {ca_cert_path}: cannot load ({exc})") from None
    try:
        ca_key = serialization.load_pem_private_key(Path(ca_key_path).read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"CA key {ca_key_path}: cannot load ({exc})") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"CA key {ca_key_path}: not an ECDSA key")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if ca_key.public_key().public_bytes(*spki) != ca_cert.public_key().public_bytes(*spki):
        raise ConfigError(f"CA key {ca_key_path} does not belong to {ca_cert_path}")
    return ca_cert, ca_key


def issue_cert(
    ca_cert_path: Path,
    ca_key_path: Path,
    cn: str,
    out_dir: Path,
    *,
    server: bool,
    client: bool,
    hosts: Sequence[str] = (),
    days: int = _MAX_DAYS,
    name: str | None = None,
    force: bool = False,
) -> tuple[Path, Path]:
    """Issue one more leaf certificate from an existing CA; returns ``(cert, key)`` paths.

    Files are ``<name>.crt`` / ``<name>.key``; ``name`` defaults to the module-level rule:
    ``file_stem("kme", cn)`` for a server certificate (a KME), else ``file_stem("sae", cn)``.
    ``hosts`` (SAN) is required for a server certificate; a client-only certificate without
    hosts gets the SAN URI ``urn:qnetkit:sae:<cn>`` like the SAE certificates of init_pki.
    """
    check_id(cn, "CN")
    if not (server or client):
        raise ConfigError("issue_cert: a certificate needs server and/or client usage")
    san = _check_hosts(hosts)
    if server and not san:
        raise ConfigError("hosts: a server certificate needs at least one host name or IP")
    _check_days(days)
    if name is not None and not _STEM_RE.fullmatch(name):
        raise ConfigError(f"name {name!r}: must be 1-100 characters of A-Z a-z 0-9 . _ -")
    stem = name if name is not None else file_stem("kme" if server else "sae", cn)
    out = Path(out_dir)
    cert_path, key_path = out / f"{stem}.crt", out / f"{stem}.key"
    _refuse_existing([cert_path, key_path], force)
    ca_cert, ca_key = _load_ca(ca_cert_path, ca_key_path)
    out.mkdir(parents=True, exist_ok=True)
    if not san:
        san = [_sae_uri(cn)]
    cert, key = _make_leaf(ca_cert, ca_key, cn, server=server, client=client, san=san, days=days)
    write_new_file(key_path, _key_pem(key), mode=0o600, force=force)
    write_new_file(cert_path, _cert_pem(cert), mode=0o644, force=force)
    return cert_path, key_path


def cert_identity(der_or_pem: bytes) -> CertIdentity:
    """Subject CN and SHA-256 fingerprint of a certificate given as DER or PEM bytes.

    The fingerprint is over the DER encoding, matching ``hashlib.sha256(
    ssl_object.getpeercert(binary_form=True)).hexdigest()`` on the server side.
    """
    try:
        if der_or_pem.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(der_or_pem)
        else:
            cert = x509.load_der_x509_certificate(der_or_pem)
    except ValueError:
        raise ConfigError("certificate: not a valid PEM or DER X.509 certificate") from None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1:
        raise ConfigError(f"certificate: subject has {len(cns)} CNs, expected exactly 1")
    value = cns[0].value
    cn = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    der = cert.public_bytes(serialization.Encoding.DER)
    return CertIdentity(cn=cn, sha256_fingerprint=hashlib.sha256(der).hexdigest())


# --------------------------------------------------------------------------- TLS contexts


def _load_chain(ctx: ssl.SSLContext, cert: StrPath, key: StrPath) -> None:
    try:
        ctx.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS certificate {cert} / key {key}: cannot load ({exc})") from None


def _load_ca_file(ctx: ssl.SSLContext, ca: StrPath) -> None:
    try:
        ctx.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS CA file {ca}: cannot load ({exc})") from None


def _harden(ctx: ssl.SSLContext) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2 only with forward-secret AEAD suites; TLS 1.3 suites are all fine already.
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    # RFC 5280 strictness (as Python 3.13's default contexts do); our certificates comply.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT


def server_ssl_context(cert: StrPath, key: StrPath, ca: StrPath) -> ssl.SSLContext:
    """TLS server context for a KME: TLS >= 1.2, client certificate required, trust = ``ca``.

    Only ``ca`` is trusted (no system store), so only certificates of this PKI get in.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    _load_ca_file(ctx, ca)
    _load_chain(ctx, cert, key)
    return ctx


def client_ssl_context(cert: StrPath, key: StrPath, ca: StrPath) -> ssl.SSLContext:
    """TLS client context for an SAE or a KME toward a peer: presents ``cert``, trusts ``ca``.

    Host names are checked against the server certificate's SAN (``check_hostname``).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(ctx)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    _load_ca_file(ctx, ca)
    _load_chain(ctx, cert, key)
    return ctx
