"""What the API serves is the document model's documents: the status and alerts a real ``LineState`` produced,
published to Kafka and read back through the API, validate strictly against the model and against the
JSON Schema ``cpkmon schema`` exports; and what the view rejects, it rejects by the model."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from conftest import AUTH, Publisher, wait_until
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from cpkmon.alerts.model import AlertItem, LineRow, LineStatus, document_schema, validate_strict
from tests.alerts.livedocs import live_run

pytestmark = pytest.mark.broker


def _schema(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(document_schema(name, closed=True))


def test_served_documents_validate_against_the_model(client: TestClient, publish: Publisher) -> None:
    run = live_run(seed=3, events=4000, line="Llive")
    status = run.statuses[-1]
    publish.status(status)
    for alert in run.alerts:
        publish.alert(alert)
    wanted = len({a["alert_id"] for a in run.alerts})
    wait_until(lambda: client.get("/readyz").json()["alerts"] == wanted and client.get("/api/v1/lines/Llive")
               .status_code == 200)

    served = client.get("/api/v1/lines/Llive").json()
    assert served == status
    validate_strict(LineStatus, served)
    _schema("line_status").validate(served)

    rows = client.get("/api/v1/lines").json()
    assert [LineRow.model_validate(r).model_dump() for r in rows] == rows
    assert rows[0]["grade"] == {"level": status["grade"]["level"], "name": status["grade"]["name"]}

    first = run.alerts[0]["alert_id"]
    acked = client.post(f"/api/v1/alerts/{first}/ack", json={"comment": "seen"}, headers=AUTH)
    assert acked.status_code == 200
    wait_until(lambda: client.get("/api/v1/alerts?limit=1000").json()["items"][0]["ack"] is not None)
    items: list[dict[str, Any]] = client.get("/api/v1/alerts?limit=1000").json()["items"]
    assert len(items) == wanted
    item_model: TypeAdapter[Any] = TypeAdapter(AlertItem)
    alert_schema = _schema("alert")
    for item in items:
        validate_strict(item_model, item)  # the stored alert plus its ack, nothing else
        alert_schema.validate({k: v for k, v in item.items() if k != "ack"})
    assert {i["type"] for i in items} == {a["type"] for a in run.alerts}


def test_the_view_parses_by_the_model(client: TestClient, publish: Publisher) -> None:
    """Documents the model rejects are counted as malformed and not served; ones it accepts are."""
    topic = publish.settings.topic_line_status
    publish.send(topic, "Lwrong", {"line": "Lwrong", "cpk": "high"})  # a number field holding text
    publish.send(topic, "Lnochars", {"line": "Lnochars", "characteristics": "none"})
    publish.send(topic, "Lkeyed", {"grade": {"level": 2, "name": "inspection"}, "cpk": 1.1})  # line from key
    publish.send(topic, "Linf", b'{"line": "Linf", "dpmo": 0.0, "sigma_level": Infinity}')
    bad_alert = {"alert_id": "x1", "type": "grade_degraded"}  # no line
    publish.send(publish.settings.topic_alerts, "L", bad_alert)
    publish.alert({"alert_id": "x2", "type": "something_else", "line": "L"})
    wait_until(lambda: client.get("/api/v1/lines/Linf").status_code == 200)
    assert client.get("/api/v1/lines/Lwrong").status_code == 404
    assert client.get("/api/v1/lines/Lnochars").status_code == 404
    keyed = client.get("/api/v1/lines").json()
    assert {"line": "Lkeyed", "grade": {"level": 2, "name": "inspection"}, "cpk": 1.1, "rty": None,
            "sigma_level": None, "updated_at": None} in keyed
    assert orjson.loads(client.get("/api/v1/lines/Linf").content)["sigma_level"] is None  # valid JSON served
    metrics = client.get("/metrics").text
    assert 'cpkmon_sigma_level{line="Linf"} +Inf' in metrics
    assert client.get("/readyz").json()["alerts"] == 0
