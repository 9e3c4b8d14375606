"""Simulated key material is marked as such and served only where configured (issue 12,
item 10): a KME with ``allow_simulated_keys: false`` (the default) refuses to ingest or serve
it, and every refusal is logged and audited."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from kmenet import start_net

from qnetkit.kms.blocks import block_id_for_seq
from qnetkit.kms.config import load_config
from qnetkit.kms.errors import ApiError
from qnetkit.kms.server import build_service, ingest_block

SIM = {"allow_simulated_keys": True}


def test_default_kme_refuses_simulated_ingest(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    net = start_net(tmp_path)
    try:
        svc = net.kmes["A"].service
        assert svc.cfg.allow_simulated_keys is False  # the safe default
        with pytest.raises(ApiError) as e:
            ingest_block(svc, "B", block_id_for_seq("A", "B", 1), os.urandom(320), 256,
                         simulated=True)
        assert e.value.status == 403
        assert svc.store.pool_status("B", allow_simulated=True).available_units == 0
        assert svc.store.pending_blocks("B") == []
        (rec,) = [r for r in svc.store.audit_records() if r.action == "refuse"]
        assert rec.detail["endpoint"] == "ingest" and "simulated" in str(rec.detail["reason"])
        assert "refused" in caplog.text
    finally:
        net.stop()


def test_simulated_keys_served_only_while_allowed(tmp_path: Path) -> None:
    net = start_net(tmp_path, extra={"A": SIM, "B": SIM})
    try:
        bid = block_id_for_seq("A", "B", 1)
        data = os.urandom(32 * 64)
        ingest_block(net.kmes["A"].service, "B", bid, data, 256, simulated=True)
        ingest_block(net.kmes["B"].service, "A", bid, data, 256, simulated=True)
        with net.client("sae-a") as a, net.client("sae-b") as b:
            keys = a.enc_keys("sae-b", number=2)
            assert [g.key for g in b.dec_keys("sae-a", [keys[0].key_id])] == [keys[0].key]
            (late,) = a.enc_keys("sae-b")
        late_assignment = net.kmes["A"].service.store.lookup(late.key_id)
        assert late_assignment is not None
    finally:
        net.stop()
    # The same stores under a configuration without allow_simulated_keys: nothing is served.
    for kme in "AB":
        path = net.configs[kme]
        cfg = yaml.safe_load(path.read_text())
        cfg.pop("allow_simulated_keys")
        path.write_text(yaml.safe_dump(cfg))
    strict_a = build_service(load_config(net.configs["A"]))
    strict_b = build_service(load_config(net.configs["B"]))
    try:
        with pytest.raises(ApiError) as e:
            strict_a.enc_keys("sae-a", "sae-b", number=1, size=None, additional_slaves=None,
                              extension_mandatory=None)
        assert e.value.status == 503
        assert strict_a.status("sae-a", "sae-b").stored_key_count == 0
        # A simulated key already assigned at B is not handed out either (refused, audited).
        strict_b.store.assign(late_assignment, now_s=time.time(), ttl_s=3600.0)  # idempotent
        with pytest.raises(ApiError) as e:
            strict_b.dec_keys("sae-b", "sae-a", [late.key_id])
        assert e.value.status == 400 and "simulated" in e.value.message
        (rec,) = [r for r in strict_b.store.audit_records() if r.action == "refuse"]
        assert rec.detail["reason"] == "simulated_key" and rec.key_ids == (late.key_id,)
    finally:
        strict_a.close()
        strict_b.close()
