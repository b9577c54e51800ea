"""Property-based run of every operation in /openapi.json (schemathesis, in-process ASGI, lifespan on):
whatever it sends, no response is a 5xx, and every answer conforms to the documented schema, status codes and
content types."""

from __future__ import annotations

import pytest
import schemathesis
from conftest import AUTH, Publisher, create_topics, make_settings
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from statusdocs import grade_alert, status

from cpkmon.api.app import create_app
from cpkmon.broker import EmbeddedBroker


@pytest.fixture(scope="module")
def api_app(session_broker: EmbeddedBroker) -> FastAPI:
    s = make_settings(session_broker.bootstrap, api_write_wait_ms=2000)
    create_topics(s)
    pub = Publisher(s)
    pub.status(status("L1"))
    pub.alert(grade_alert("L1", 1))
    pub.send(s.topic_specs, "L1/bore", {"line": "L1", "characteristic": "bore", "lsl": 1.0, "usl": 2.0})
    pub.close()
    return create_app(s)


@pytest.fixture(scope="module")
def api_schema(api_app: FastAPI) -> schemathesis.schemas.BaseSchema:
    # all phases: the OpenAPI examples, the boundary/negative "coverage" cases, then fuzzing (max_examples)
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


# the SSE stream is endless by design (it is tested in test_api_sse.py)
schema = schemathesis.pytest.from_fixture("api_schema").exclude(operation_id="streamAlerts")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call_and_validate(
        headers=AUTH,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    assert response.status_code < 500
