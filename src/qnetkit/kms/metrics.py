"""Prometheus metrics of one KME (own registry, so two KMEs can share a process).

Counters only count keys and requests; no key ID or key material is ever a label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, generate_latest


@dataclass
class Metrics:
    kme_id: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.keys_delivered = Counter("qnetkit_kms_keys_delivered", "Keys delivered to master SAEs",
                                      registry=r)
        self.keys_retrieved = Counter("qnetkit_kms_keys_retrieved", "Keys retrieved by slave SAEs",
                                      registry=r)
        self.keys_expired = Counter("qnetkit_kms_keys_expired", "Keys erased at expiry",
                                    registry=r)
        self.fallback_pqc = Counter("qnetkit_kms_fallback_pqc_keys",
                                    "Keys served from ML-KEM-768 because QKD keys ran out",
                                    registry=r)
        self.refused_empty = Counter("qnetkit_kms_refused_empty",
                                     "Requests refused (503) for lack of key material", registry=r)
        self.requests = Counter("qnetkit_kms_requests", "API requests by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.units_ingested = Counter("qnetkit_kms_units_ingested", "Key units ingested",
                                      registry=r)
        # Key confirmation of ingested blocks (kms/blocks.py). Any increase of the quarantine
        # counter is an alarm: the two ends of a link hold different bytes under one block ID.
        self.blocks_confirmed = Counter("qnetkit_kms_blocks_confirmed",
                                        "Blocks both KMEs confirmed holding the same bytes",
                                        registry=r)
        self.blocks_quarantined = Counter("qnetkit_kms_blocks_quarantined",
                                          "ALARM: blocks quarantined for a confirmation "
                                          "mismatch (never served)", registry=r)
        self.refusals = Counter("qnetkit_kms_refusals",
                                "Requests and connections refused, by reason (a fixed set)",
                                ["reason"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
