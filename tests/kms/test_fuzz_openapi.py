"""Fuzz the ETSI 014 API from its shipped OpenAPI document (schemathesis), over mTLS.

Every generated request, valid or not, must get a 2xx/4xx answer with an Error object on
errors; never a 5xx (the KME maps unexpected exceptions to 503 and counts them).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kmenet import KmeNet, start_net

from qnetkit.kms.openapi import openapi_document, shipped_document

SCHEMA = schemathesis.openapi.from_dict(shipped_document())


def test_shipped_openapi_matches_the_server() -> None:
    assert shipped_document() == openapi_document(), (
        "regenerate with: qnetkit kms openapi --out src/qnetkit/kms/openapi.json")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmeNet]:
    n = start_net(tmp_path_factory.mktemp("fuzz"))
    n.feed("A", "B", 256 * 1024)
    n.feed("B", "C", 64 * 1024)
    yield n
    n.stop()


OPERATIONS = [(path, method.upper()) for path, methods in shipped_document()["paths"].items()
              for method in methods]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_no_server_errors(net: KmeNet, path: str, method: str) -> None:
    operation = SCHEMA[path][method]
    session = requests.Session()
    cert, key = net.layout.sae["sae-a"]
    session.cert = (str(cert), str(key))
    session.verify = str(net.layout.ca_cert)
    strategy = operation.as_strategy()
    # Also aim at real SAE IDs, not only random strings, so the deep paths run too.
    sae = st.sampled_from(["sae-b", "sae-a", "sae-c", "sae-b2", "nobody"])
    seen: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy, target=sae, real=st.booleans())
    def run(case: schemathesis.Case, target: str, real: bool) -> None:
        if real and case.path_parameters:
            for name in case.path_parameters:
                case.path_parameters[name] = target
        response = case.call(base_url=net.url("A"), session=session, verify=session.verify,
                             cert=session.cert)
        seen.append(response.status_code)
        # The one legitimate 5xx: the pool ran dry under the fuzzer's large requests.
        ok_503 = response.status_code == 503 and "not enough" in response.text
        assert response.status_code < 500 or ok_503, (response.status_code, response.text[:200])
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body.get("message"), str)

    run()
    assert len(seen) >= 30
    assert net.kmes["A"].service.metrics.requests.labels("unexpected", "503")._value.get() == 0
