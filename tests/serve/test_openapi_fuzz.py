"""Schemathesis over every operation of ``/openapi.json`` against the live server.

Each operation gets ``MAX_EXAMPLES`` generated requests, valid and invalid (``mode: all``); half
of the model routes name the served model so bodies reach its codecs. Every answer must be no
5xx, have a status the description lists, and a body and Content-Type that match it; a
schema-valid request must not be refused as malformed (a body that fits the schema but not the
model, e.g. the wrong width, is a documented 422). ``NBMCI_FUZZ_EXAMPLES`` raises the count for
a longer hunt. The schema is built from ``openapi.spec()`` at import (schemathesis' lazy
fixture loader does not run on pytest 9); the first test proves the server serves exactly it.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from nbmci.serve.openapi import spec
from tests.serve.conftest import TOKEN

MAX_EXAMPLES = int(os.environ.get("NBMCI_FUZZ_EXAMPLES", "30"))
CONFIG = SchemathesisConfig.from_dict({
    "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
    "dictionaries": {"served": {"values": ["iris"]}},
    "parameters": {"path.name": {"dictionary": "served", "probability": 0.5}},
    "auth": {"openapi": {"token": {"bearer": TOKEN}}},
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", 404, 422]}},
})
schema = schemathesis.openapi.from_dict(spec(), config=CONFIG)


@pytest.fixture(scope="module")
def base_url(serving: Any) -> str:
    _, running = serving
    return running.url


def test_the_server_serves_this_description(base_url: str) -> None:
    import httpx

    served = httpx.get(f"{base_url}/openapi.json").json()
    assert served == spec()
    from nbmci.serve.app import ROUTES

    described = {path.replace("{version}", "{version:int}") for path in served["paths"]}
    routed = {r.path for r in ROUTES} | {"/v2/models/{name}/infer", "/invocations",
                                         "/v2/models/{name}/versions/{version:int}/infer"}
    assert routed == described


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_described(case: Any, base_url: str) -> None:
    case.call_and_validate(base_url=base_url)


FOUND = [  # what the fuzzer found, kept as fixed cases: (route, body, status)
    # numpy's int64 product of the shape wrapped to 0, so [] passed the size check (was a 500)
    ("/v2/models/iris/infer", {"inputs": [{"name": "x", "shape": [2**32, 2**32],
                                           "datatype": "FP64", "data": []}]}, 422),
    ("/v2/models/iris/infer", {"inputs": [{"name": "x", "shape": [0, 2**62, 2**62],
                                           "datatype": "FP64", "data": []}]}, 422),
]


@pytest.mark.parametrize(("route", "body", "status"), FOUND)
def test_found_by_fuzzing(base_url: str, route: str, body: Any, status: int) -> None:
    import httpx

    answer = httpx.post(f"{base_url}{route}", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["type"] == "InputMismatchError"
