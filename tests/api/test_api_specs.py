"""Specs: PUT → GET through Kafka, validation 422 with a reason, DELETE tombstone, re-baseline request."""

from __future__ import annotations

import json

import pytest
from conftest import AUTH, Publisher, wait_until
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from cpkmon.settings import Settings

URL = "/api/v1/specs/L1/bore_diameter"


def test_put_get_delete_round_trip(client: TestClient, settings: Settings) -> None:
    assert client.get(URL).status_code == 404
    spec = {"lsl": 73.95, "usl": 74.05, "target": 74.0, "subgroup_size": 5}
    r = client.put(URL, json=spec, headers=AUTH)
    assert r.status_code == 200, r.text
    want = {"line": "L1", "characteristic": "bore_diameter", **spec}
    assert r.json() == want
    assert client.get(URL).json() == want  # read back from the topic by the view (read-your-writes)

    one_sided = client.put("/api/v1/specs/L1/runout", json={"usl": 0.02}, headers=AUTH)
    assert one_sided.json() == {"line": "L1", "characteristic": "runout", "usl": 0.02, "subgroup_size": 5}
    known = client.put(
        "/api/v1/specs/L1/len",
        json={"lsl": 1, "usl": 2, "center": 1.5, "sigma": 0.1, "subgroup_size": 1},
        headers=AUTH,
    )
    assert known.status_code == 200 and known.json()["sigma"] == 0.1

    # what the worker will read: the spec document under key line/characteristic
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), consumer_timeout_ms=1500)
    tps = [TopicPartition(settings.topic_specs, p) for p in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    records = {r.key.decode(): json.loads(r.value) for r in consumer}
    consumer.close()
    assert records["L1/bore_diameter"] == want

    assert client.delete(URL).status_code == 401
    assert client.delete(URL, headers=AUTH).status_code == 204
    assert client.get(URL).status_code == 404
    assert client.delete(URL, headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "at least one of lsl and usl"),
        ({"lsl": 2, "usl": 1}, "must be below usl"),
        ({"lsl": 1, "usl": 1}, "must be below usl"),
        ({"lsl": 1, "usl": 2, "subgroup_size": 0}, "subgroup_size"),
        ({"lsl": 1, "usl": 2, "subgroup_size": 26}, "subgroup_size"),
        ({"lsl": 1, "usl": 2, "sigma": 0}, "sigma"),
        ({"lsl": 1, "usl": 2, "sigma": -1}, "sigma"),
        ({"lsl": "x", "usl": 2}, "lsl"),
        ({"lsl": 1, "usl": 2, "colour": "red"}, "colour"),
        ({"lsl": 1, "usl": 2, "line": "L2"}, "differs from the path"),
        ({"lsl": 1, "usl": 2, "subgroup_size": 2.5}, "subgroup_size"),
    ],
)
def test_invalid_specs_are_422_with_a_reason(client: TestClient, body: dict, reason: str) -> None:
    r = client.put(URL, json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert reason in r.json()["detail"]


def test_non_finite_and_malformed_bodies(client: TestClient) -> None:
    for raw in (b'{"lsl": NaN, "usl": 2}', b'{"lsl": 1, "usl": Infinity}', b"{", b"[]", b'"x"'):
        r = client.put(URL, content=raw, headers={**AUTH, "content-type": "application/json"})
        assert r.status_code == 422, raw
        assert r.headers["content-type"] == "application/problem+json"
    assert client.put("/api/v1/specs/L1/" + "c" * 65, json={"lsl": 1}, headers=AUTH).status_code == 422
    assert client.put("/api/v1/specs/bad$line/c", json={"lsl": 1}, headers=AUTH).status_code == 422


def test_rebaseline_produces_a_control_record(
    client: TestClient, settings: Settings, publish: Publisher
) -> None:
    base = "/api/v1/specs/L1/bore_diameter/baseline"
    assert client.post(base).status_code == 401
    assert client.post(base, headers=AUTH).status_code == 404  # no such spec
    assert client.put(URL, json={"lsl": 1, "usl": 2}, headers=AUTH).status_code == 200
    r = client.post(base, headers=AUTH)
    assert r.status_code == 202
    body = r.json()
    assert (
        body["command"] == "rebaseline" and body["line"] == "L1" and body["characteristic"] == "bore_diameter"
    )
    # the control record does not replace the spec in the view
    assert client.get(URL).json()["lsl"] == 1.0
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), consumer_timeout_ms=1500)
    consumer.assign([TopicPartition(settings.topic_specs, p) for p in range(3)])
    consumer.seek_to_beginning()
    values = [json.loads(r.value) for r in consumer if r.key == b"L1/bore_diameter"]
    consumer.close()
    assert values[-1] == body
    assert set(body) == {"line", "characteristic", "command", "requested_at"}
    wait_until(lambda: client.get(URL).status_code == 200)
