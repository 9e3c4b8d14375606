"""``qnetkit kms ...``: run, feed, audit and use ETSI GS QKD 014 key managers."""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.output import emit_json

app = typer.Typer(help="ETSI GS QKD 014 key managers (KMEs): serve, feed, audit, fetch keys.",
                  no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
client_app = typer.Typer(help="Fetch keys as an SAE (ETSI GS QKD 014 client).",
                         no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(client_app, name="client")

CONFIG = typer.Option(..., "--config", "-c", help="KME configuration file (YAML)")
JSON = typer.Option(False, "--json", help="print one JSON object")


@contextmanager
def _user_errors() -> Iterator[None]:
    from qnetkit.kms.errors import KmsError

    try:
        yield
    except KmsError as exc:
        raise CliUsageError(str(exc)) from None


@app.command()
def serve(config: Path = CONFIG) -> None:
    """Serve the ETSI 014 API over mutual TLS until SIGINT/SIGTERM."""
    from qnetkit.kms.server import serve as run

    # Our log lines name key IDs and SAEs, never key material (tests search the output).
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every peer-KME request at INFO: noise that drowns the refusals.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    with _user_errors():
        _check_port_free(config)
        run(config)


def _check_port_free(config: Path) -> None:
    from qnetkit.kms.config import load_config

    cfg = load_config(config)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((cfg.listen.host, cfg.listen.port))
        except OSError as exc:
            raise CliUsageError(
                f"cannot listen on {cfg.listen.host}:{cfg.listen.port}: {exc.strerror}") from None


@app.command()
def dev(
    directory: Path = typer.Option(..., "--dir", help="working directory (PKI, stores, configs)"),
    port_base: int = typer.Option(8443, "--port-base", help="KME A listens here, B on +1"),
    prefill_bits: int = typer.Option(10_000_000, "--prefill-bits", min=0,
                                     help="key bits ingested before the JSON line"),
) -> None:
    """Two KMEs A and B joined by a simulated QKD link, for development.

    Prints one JSON line with URLs, CA and SAE credentials when both are ready.
    """
    from qnetkit.ops.kms_dev import run_dev

    if not 1 <= port_base <= 65534:
        raise CliUsageError("--port-base must be between 1 and 65534")
    for port in (port_base, port_base + 1):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise CliUsageError(f"port {port} not free: {exc.strerror}") from None
    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with _user_errors():
        run_dev(directory, port_base=port_base, prefill_bits=prefill_bits, stop=stop)


@app.command("init-pki")
def init_pki_cmd(
    out: Path = typer.Option(..., "--out", help="directory for the CA and certificates"),
    kme: list[str] = typer.Option([], "--kme", help="KME ID (repeat)"),
    sae: list[str] = typer.Option([], "--sae", help="SAE ID (repeat)"),
    host: list[str] = typer.Option(["localhost", "127.0.0.1"], "--host",
                                   help="DNS name or IP in KME certificates (repeat)"),
    force: bool = typer.Option(False, "--force", help="overwrite existing files"),
    as_json: bool = JSON,
) -> None:
    """Create a development CA and certificates for KMEs and SAEs."""
    from qnetkit.kms.pki import init_pki

    if not kme and not sae:
        raise CliUsageError("give at least one --kme or --sae")
    try:
        with _user_errors():
            try:
                layout = init_pki(out, kmes=kme, saes=sae, hosts=host, force=force)
            except FileExistsError:
                raise CliUsageError(f"{out} already holds some of these certificates or keys;"
                                    " use --force to overwrite") from None
    except FileExistsError as exc:
        raise CliUsageError(f"{exc}; use --force to overwrite") from None
    result = {
        "ca": str(layout.ca_cert),
        "kmes": {k: {"cert": str(c), "key": str(p)} for k, (c, p) in layout.kme.items()},
        "saes": {k: {"cert": str(c), "key": str(p)} for k, (c, p) in layout.sae.items()},
    }
    if as_json:
        emit_json(result)
    else:
        print(f"CA: {layout.ca_cert}")
        for kind in ("kmes", "saes"):
            for k, v in result[kind].items():  # type: ignore[attr-defined]
                print(f"{kind[:-1].upper()} {k}: {v['cert']}  {v['key']}")


@app.command()
def ingest(
    config: Path = CONFIG,
    peer: str = typer.Option(..., "--peer", help="the KME at the other end of the QKD link"),
    file: Path = typer.Option(..., "--file", help="raw key bytes (the same file at both ends)"),
    block_seq: int | None = typer.Option(
        None, "--block-seq", help="the block's sequence number on this link (both ends give "
        "the same number; the block ID is derived from the link and the number)"),
    block_id: str | None = typer.Option(
        None, "--block-id", help="an explicit block UUID shared by both ends (default: "
        "derived from the content, or from --block-seq)"),
    unit_bits: int = typer.Option(256, "--unit-bits", help="key unit size (same at both ends)"),
    simulated: bool = typer.Option(
        False, "--simulated", help="the bytes come from a simulation, not a QKD link (a KME "
        "refuses them unless its configuration has allow_simulated_keys: true)"),
    as_json: bool = JSON,
) -> None:
    """Add a block of key material shared with --peer to this KME's store.

    The block is held as pending until both KMEs have confirmed (over their mutual-TLS
    channel, when they run) that they hold the same bytes; only then are its keys served.
    Other bytes under an existing block ID are an error (exit 2).
    """
    from qnetkit.kms.blocks import block_identity
    from qnetkit.kms.config import load_config
    from qnetkit.kms.server import build_service
    from qnetkit.kms.service import ApiError

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CliUsageError(f"cannot read {file}: {exc.strerror}") from None
    if block_seq is not None and block_seq < 0:
        raise CliUsageError("--block-seq must be >= 0")
    if unit_bits <= 0 or unit_bits % 8:
        raise CliUsageError("--unit-bits must be a positive multiple of 8")
    # A refusal is audited and reported as the one-line error below: not logged twice.
    logging.getLogger("qnetkit.kms").addHandler(logging.NullHandler())
    with _user_errors():
        cfg = load_config(config)
        try:
            bid = block_identity(cfg.kme_id, peer, data, block_id=block_id, block_seq=block_seq)
        except ValueError:
            raise CliUsageError("--block-id must be a UUID, and not given with --block-seq") \
                from None
        service = build_service(cfg)
        try:
            res = service.ingest_block(peer, bid, data, unit_bits, simulated=simulated)
        except ApiError as exc:
            raise CliUsageError(exc.message) from None
        finally:
            service.store.close()
    result = {"block_ID": res.block_id, "units": res.units, "units_added": res.units_added,
              "bits": res.units * unit_bits, "state": res.state, "simulated": simulated}
    if as_json:
        emit_json(result)
    else:
        print(f"block {res.block_id}: {res.units_added} of {res.units} units of {unit_bits} bits "
              f"added; {res.state}"
              + (" (served once the KME of --peer confirms the same bytes)"
                 if res.state == "pending" else ""))


def _open_store(config: Path):  # type: ignore[no-untyped-def]
    from qnetkit.kms.atrest import audit_key, load_kek
    from qnetkit.kms.config import load_config
    from qnetkit.kms.store import open_store

    cfg = load_config(config)
    kek = load_kek(file=str(cfg.kek.file) if cfg.kek.file else None, env=cfg.kek.env)
    return cfg, open_store(cfg.store.url, kme_id=cfg.kme_id, kek=kek), audit_key(kek)


@audit_app.command("verify")
def audit_verify(
    config: Path = CONFIG,
    as_json: bool = JSON,
    checkpoints: Path | None = typer.Option(
        None, "--checkpoints",
        help="signed audit-head checkpoints (audit_checkpoint_file): also catches a tail "
        "deleted together with a rewound head row"),
) -> None:
    """Check the audit chain: exit 1 if any record was altered, removed or reordered."""
    from qnetkit.kms.audit import parse_checkpoints, verify_chain, verify_checkpoints

    with _user_errors():
        cfg, store, key = _open_store(config)
        try:
            marks = None
            if checkpoints is not None:
                try:
                    marks = parse_checkpoints(checkpoints.read_text().splitlines(), key)
                except OSError as exc:
                    raise CliUsageError(f"cannot read {checkpoints}: {exc.strerror}") from None
                except ValueError as exc:
                    raise CliUsageError(f"{checkpoints}: {exc}") from None
                if not any(m.kme == cfg.kme_id for m in marks):
                    raise CliUsageError(f"{checkpoints}: no checkpoint of KME {cfg.kme_id}")
            verdict = verify_chain(store.audit_records(), key, store.audit_head())
            if verdict.ok and marks is not None:
                verdict = verify_checkpoints(store.audit_records(), marks, cfg.kme_id)
        finally:
            store.close()
    if as_json:
        emit_json({"ok": verdict.ok, "records": verdict.records,
                   "first_bad_seq": verdict.first_bad_seq, "reason": verdict.reason})
    elif verdict.ok:
        matched = "" if marks is None else f" ({verdict.reason.split(', ', 1)[1]})"
        print(f"audit chain intact: {verdict.records} records{matched}")
    else:
        sys.stderr.write(f"qnetkit: audit chain BROKEN at record {verdict.first_bad_seq}: "
                         f"{verdict.reason}\n")
    if not verdict.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    config: Path = CONFIG,
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or rfc5424"),
    out: Path | None = typer.Option(None, "--out", help="file (default: stdout)"),
) -> None:
    """Export the audit log for a SIEM: JSON lines or RFC 5424 syslog lines."""
    from qnetkit.kms.audit import export_jsonl, export_rfc5424

    if fmt not in ("jsonl", "rfc5424"):
        raise CliUsageError("--format must be jsonl or rfc5424")
    with _user_errors():
        _, store, _ = _open_store(config)
        try:
            stream = sys.stdout if out is None else out.open("w")
            try:
                if fmt == "jsonl":
                    export_jsonl(store.audit_records(), stream)
                else:
                    export_rfc5424(store.audit_records(), stream,
                                   hostname=socket.gethostname())
            finally:
                if out is not None:
                    stream.close()
        finally:
            store.close()


@app.command()
def openapi(out: Path | None = typer.Option(None, "--out", help="file (default: stdout)")) -> None:
    """Print the OpenAPI document of the ETSI 014 API."""
    from qnetkit.kms.openapi import openapi_document

    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


# -- client -----------------------------------------------------------------------------------
KME_URL = typer.Option(..., "--kme", help="KME base URL, e.g. https://127.0.0.1:8443")
CERT = typer.Option(..., "--cert", help="SAE certificate (PEM)")
KEY = typer.Option(..., "--key", help="SAE private key (PEM)")
CA = typer.Option(..., "--ca", help="CA certificate of the KME (PEM)")


@contextmanager
def _client(kme: str, cert: Path, key: Path, ca: Path) -> Iterator[object]:
    from qnetkit.kms.client import Etsi014Client, KmeConnectionError, KmeHttpError

    for p in (cert, key, ca):
        if not p.is_file():
            raise CliUsageError(f"no such file: {p}")
    try:
        with Etsi014Client(kme, cert=cert, key=key, ca=ca) as c:
            yield c
    except KmeHttpError as exc:
        raise CliUsageError(f"KME answered {exc.status_code}: {exc.message}") from None
    except KmeConnectionError as exc:
        raise CliUsageError(str(exc)) from None


def _print_keys(keys: list[object], as_json: bool) -> None:
    import base64

    items = [{"key_ID": k.key_id, "key": base64.b64encode(k.key).decode()}  # type: ignore[attr-defined]
             for k in keys]
    if as_json:
        emit_json({"keys": items})
    else:
        for it in items:
            print(f"{it['key_ID']}  {it['key']}")


@client_app.command("status")
def client_status(slave: str = typer.Option(..., "--slave", help="slave SAE ID"),
                  kme: str = KME_URL, cert: Path = CERT, key: Path = KEY, ca: Path = CA,
                  as_json: bool = JSON) -> None:
    """Status of the key supply toward a slave SAE (ETSI 014 clause 5.2)."""
    with _client(kme, cert, key, ca) as c:
        st = c.status(slave)  # type: ignore[attr-defined]
    if as_json:
        emit_json(st)
    else:
        for k, v in st.items():
            print(f"{k}: {v}")


@client_app.command("enc")
def client_enc(slave: str = typer.Option(..., "--slave", help="slave SAE ID"),
               number: int = typer.Option(1, "--number"),
               size: int | None = typer.Option(None, "--size", help="bits (default: KME's)"),
               kme: str = KME_URL, cert: Path = CERT, key: Path = KEY, ca: Path = CA,
               as_json: bool = JSON) -> None:
    """Get keys as the master SAE (ETSI 014 clause 5.3)."""
    with _client(kme, cert, key, ca) as c:
        keys = c.enc_keys(slave, number=number, size=size)  # type: ignore[attr-defined]
    _print_keys(keys, as_json)


@client_app.command("dec")
def client_dec(master: str = typer.Option(..., "--master", help="master SAE ID"),
               key_id: list[str] = typer.Option(..., "--key-id", help="key ID (repeat)"),
               kme: str = KME_URL, cert: Path = CERT, key: Path = KEY, ca: Path = CA,
               as_json: bool = JSON) -> None:
    """Get keys by ID as a slave SAE (ETSI 014 clause 5.4)."""
    with _client(kme, cert, key, ca) as c:
        keys = c.dec_keys(master, key_id)  # type: ignore[attr-defined]
    _print_keys(keys, as_json)



@app.command("kem-keygen")
def kem_keygen(out: Path = typer.Option(..., "--out", help="private key file (mode 0600)"),
               force: bool = typer.Option(False, "--force", help="overwrite"),
               as_json: bool = JSON) -> None:
    """Create this KME's ML-KEM-768 key pair (needed for the fallback-pqc policy)."""
    from qnetkit.kms.hybrid import generate_kem_keypair, save_kem_private_key

    kp = generate_kem_keypair()
    try:
        with _user_errors():
            save_kem_private_key(kp, out, force=force)
    except FileExistsError as exc:
        raise CliUsageError(f"{exc}; use --force to overwrite") from None
    if as_json:
        emit_json({"private_key": str(out), "algorithm": "ML-KEM-768"})
    else:
        print(f"ML-KEM-768 private key written to {out}")
