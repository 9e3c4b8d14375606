"""KME configuration: one YAML file per key manager, validated with pydantic.

Relative paths in the file are resolved against the file's own directory, so a
configuration directory can be moved as a whole.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qnetkit.kms.errors import ConfigError

_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError("must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)


class TlsConfig(_Strict):
    cert: Path
    key: Path
    ca: Path


class StoreConfig(_Strict):
    url: str = "sqlite:///kme.db"


class KekConfig(_Strict):
    """Key-encryption key for keys at rest: a file, or an environment variable."""

    file: Path | None = None
    env: str | None = None


class SaeConfig(_Strict):
    """A local SAE: its ID and the subject CN of its client certificate."""

    id: str
    cn: str | None = None  # defaults to the SAE ID
    fingerprint_sha256: str | None = None  # optional certificate pinning

    _v = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class PeerConfig(_Strict):
    """A KME joined to this one by a QKD link (shares key units with it)."""

    kme_id: str
    url: str
    cn: str | None = None  # defaults to the KME ID
    saes: list[str] = Field(default_factory=list)

    _v = field_validator("kme_id")(classmethod(lambda cls, v: _check_id(v)))


class RouteConfig(_Strict):
    """A KME reached through trusted nodes: keys for its SAEs are relayed via ``via``."""

    kme_id: str
    via: str
    saes: list[str] = Field(default_factory=list)


class PolicyConfig(_Strict):
    """What happens when QKD keys run out for a master/slave SAE pair."""

    master: str
    slave: str
    on_empty: Literal["refuse", "fallback-pqc"] = "refuse"


class LimitsConfig(_Strict):
    """The capabilities reported in the ETSI 014 Status object."""

    key_size_bits: int = Field(default=256, ge=8)
    min_key_size_bits: int = Field(default=64, ge=8)
    # 65,280 bits = 8160 bytes, the most one HKDF-SHA256 call (the PQC fallback) can give.
    max_key_size_bits: int = Field(default=8192, ge=8, le=65280)
    max_key_per_request: int = Field(default=128, ge=1)
    max_key_count: int = Field(default=10_000_000, ge=1)
    max_sae_id_count: int = Field(default=4, ge=0)
    # Transport limits (not in the Status object). Per-SAE token bucket: ``sae_rate_per_s``
    # requests refill per second, up to ``sae_burst`` at once (429 + Retry-After beyond).
    sae_rate_per_s: float = Field(default=200.0, gt=0)
    sae_burst: int = Field(default=400, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)  # ETSI 014 routes
    max_peer_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)  # /kme/v1 (ingest)
    max_header_bytes: int = Field(default=8 * 1024, ge=1024)  # request line + headers
    header_timeout_s: float = Field(default=10.0, gt=0)  # TLS handshake + request head


class KemConfig(_Strict):
    """ML-KEM-768 key pair of this KME (used for fallback-pqc keys)."""

    private_key: Path


class KmeConfig(_Strict):
    kme_id: str
    listen: ListenConfig = Field(default_factory=ListenConfig)
    tls: TlsConfig
    store: StoreConfig = Field(default_factory=StoreConfig)
    kek: KekConfig = Field(default_factory=KekConfig)
    key_ttl_s: float = Field(default=3600.0, gt=0)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    saes: list[SaeConfig] = Field(default_factory=list)
    peers: list[PeerConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    ingest_cns: list[str] = Field(default_factory=list)
    policies: list[PolicyConfig] = Field(default_factory=list)
    default_on_empty: Literal["refuse", "fallback-pqc"] = "refuse"
    kem: KemConfig | None = None
    workers: int = Field(default=1, ge=1, le=64)
    # Simulated key material (demo and dev modes) is refused at ingest and never served
    # unless this is set: such keys must never protect real data by accident.
    allow_simulated_keys: bool = False
    # Delivery semantics of dec_keys: the same authenticated slave SAE may fetch a key again
    # for this long after its first retrieval (a response lost to a crash); 0 = erase at once.
    refetch_window_s: float = Field(default=60.0, ge=0)
    # Looking up keys at the master's KME (dec_keys before the sync arrived): one request
    # for all missing IDs, at most this many, with this timeout; unreachable -> 503.
    peer_lookup_timeout_s: float = Field(default=2.0, gt=0, le=60)
    peer_lookup_max_ids: int = Field(default=128, ge=1, le=10_000)
    docs: bool = False  # serve /docs and /redoc (off: less surface on a key server)
    # HMAC-signed audit-head checkpoints appended here (outside the database), every
    # audit_checkpoint_interval_s; `kms audit verify --checkpoints` detects a rewound tail.
    audit_checkpoint_file: Path | None = None
    audit_checkpoint_interval_s: float = Field(default=60.0, gt=0)

    _v = field_validator("kme_id")(classmethod(lambda cls, v: _check_id(v)))

    # -- lookups ---------------------------------------------------------------------------
    def sae_ids(self) -> set[str]:
        return {s.id for s in self.saes}

    def peer(self, kme_id: str) -> PeerConfig | None:
        return next((p for p in self.peers if p.kme_id == kme_id), None)

    def kme_of_sae(self, sae_id: str) -> str | None:
        """The KME that serves ``sae_id``: this one, a peer, or a relayed destination."""
        if sae_id in self.sae_ids():
            return self.kme_id
        for p in self.peers:
            if sae_id in p.saes:
                return p.kme_id
        for r in self.routes:
            if sae_id in r.saes:
                return r.kme_id
        return None

    def next_hop(self, kme_id: str) -> str | None:
        """The peer through which ``kme_id`` is reached (itself if it is a peer)."""
        if self.peer(kme_id) is not None:
            return kme_id
        return next((r.via for r in self.routes if r.kme_id == kme_id), None)

    def on_empty(self, master: str, slave: str) -> str:
        for p in self.policies:
            if p.master == master and p.slave == slave:
                return p.on_empty
        return self.default_on_empty

    def validate_references(self) -> None:
        """Cross-field checks pydantic cannot express on its own."""
        ids = [s.id for s in self.saes] + [sid for p in self.peers for sid in p.saes]
        ids += [sid for r in self.routes for sid in r.saes]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ConfigError(f"SAE IDs listed twice: {', '.join(sorted(dup))}")
        peers = {p.kme_id for p in self.peers}
        if self.kme_id in peers:
            raise ConfigError("peers: a KME cannot be its own peer")
        for r in self.routes:
            if r.via not in peers:
                raise ConfigError(f"routes: {r.kme_id} via {r.via!r}, which is not a peer")
        lim = self.limits
        if not lim.min_key_size_bits <= lim.key_size_bits <= lim.max_key_size_bits:
            raise ConfigError(
                "limits: need min_key_size_bits <= key_size_bits <= max_key_size_bits")
        for name in ("key_size_bits", "min_key_size_bits", "max_key_size_bits"):
            if getattr(lim, name) % 8:
                raise ConfigError(f"limits.{name} must be a multiple of 8")
        wants_pqc = self.default_on_empty == "fallback-pqc" or any(
            p.on_empty == "fallback-pqc" for p in self.policies)
        if wants_pqc and self.kem is None:
            raise ConfigError("fallback-pqc needs kem.private_key (an ML-KEM-768 key file)")


def _resolve(cfg: KmeConfig, base: Path) -> KmeConfig:
    def r(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p).resolve())

    tls = TlsConfig(cert=r(cfg.tls.cert), key=r(cfg.tls.key), ca=r(cfg.tls.ca))  # type: ignore[arg-type]
    kek = KekConfig(file=r(cfg.kek.file), env=cfg.kek.env)
    url = cfg.store.url
    if url.startswith("sqlite:///"):
        p = Path(url.removeprefix("sqlite:///"))
        url = "sqlite:///" + str(p if p.is_absolute() else (base / p).resolve())
    kem = None
    if cfg.kem is not None:
        kem = KemConfig(private_key=r(cfg.kem.private_key))  # type: ignore[arg-type]
    return cfg.model_copy(
        update={"tls": tls, "kek": kek, "store": StoreConfig(url=url), "kem": kem,
                "audit_checkpoint_file": r(cfg.audit_checkpoint_file)})


def parse_config(data: object, base_dir: Path) -> KmeConfig:
    try:
        cfg = KmeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{where}: {err['msg']}") from None
    cfg = _resolve(cfg, base_dir)
    cfg.validate_references()
    return cfg


def load_config(path: Path) -> KmeConfig:
    """Read and validate a KME YAML file; ConfigError (one line) on any problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    return parse_config(data, path.parent.resolve())
