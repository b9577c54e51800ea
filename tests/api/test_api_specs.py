"""Specs: PUT → GET through Kafka, validation 422 with a reason, DELETE tombstone, re-baseline request."""

from __future__ import annotations

import json

import pytest
from conftest import AUTH, PARTITIONS, Publisher, wait_until
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from cpkmon.settings import Settings
from cpkmon.stream.processor import owner_partition

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
        ({"lsl": 1, "usl": 2, "target": 3}, "target (3.0) must lie within the spec limits: it is above usl"),
        ({"lsl": 1, "usl": 2, "target": 0.5}, "it is below lsl"),
        ({"usl": 2, "target": 2.5}, "must lie within the spec limits"),
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


def test_rebaseline_is_a_command_keyed_by_line_never_a_spec_record(
    client: TestClient, settings: Settings, publish: Publisher
) -> None:
    """The command goes to the commands topic under key = line, in the line's partition; the compacted specs
    topic holds only specs (a command under the spec's key would be all compaction keeps of it)."""
    base = "/api/v1/specs/L1/bore_diameter/baseline"
    assert client.post(base).status_code == 401
    assert client.post(base, headers=AUTH).status_code == 404  # no such spec
    assert client.put(URL, json={"lsl": 1, "usl": 2}, headers=AUTH).status_code == 200
    # no input topic yet: the API does not guess a partition count for the commands topic
    r = client.post(base, headers=AUTH)
    assert r.status_code == 503 and "start a worker" in r.json()["detail"], r.text
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
    try:
        admin.create_topics([NewTopic(settings.topic_measurements, 5, 1)])  # producers first, 5 partitions
    finally:
        admin.close()
    r = client.post(base, headers=AUTH)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (
        body["command"] == "rebaseline" and body["line"] == "L1" and body["characteristic"] == "bore_diameter"
    )
    assert set(body) == {"line", "characteristic", "command", "requested_at"}
    assert client.get(URL).json()["lsl"] == 1.0

    def records(topic: str, partitions: int) -> list[tuple[int, bytes | None, bytes | None]]:
        consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), consumer_timeout_ms=1500)
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        out = [(r.partition, r.key, r.value) for r in consumer]
        consumer.close()
        return out

    commands = records(settings.topic_commands, 5)
    assert [(p, k, json.loads(v or b"")) for p, k, v in commands] == [
        (owner_partition("L1", 5), b"L1", body)
    ]
    specs = records(settings.topic_specs, PARTITIONS)  # conftest's topics
    assert [json.loads(v or b"") for _, _, v in specs] == [
        {"line": "L1", "characteristic": "bore_diameter", "lsl": 1.0, "usl": 2.0, "subgroup_size": 5}
    ]
    wait_until(lambda: client.get(URL).status_code == 200)
