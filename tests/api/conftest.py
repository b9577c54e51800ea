"""Fixtures for the API tests: unique topics per test on the session's real Tansu broker, a kafka-python
producer, the app under TestClient or under a real uvicorn in a thread."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from cpkmon.api.app import create_app
from cpkmon.broker import EmbeddedBroker, free_port
from cpkmon.settings import Settings

KEY = "s3cret-ops"
AUTH = {"Authorization": f"Bearer {KEY}"}
PARTITIONS = 3


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def make_settings(bootstrap: str, prefix: str | None = None, **overrides: Any) -> Settings:
    prefix = prefix or f"t{uuid.uuid4().hex[:10]}"
    fields: dict[str, Any] = {
        "broker": f"kafka://{bootstrap}",
        "partitions": PARTITIONS,
        "api_keys": ["ops:" + KEY, "plain-secret"],
        "api_view_fetch_ms": 50,
        "topic_line_status": f"{prefix}.line-status",
        "topic_alerts": f"{prefix}.alerts",
        "topic_acks": f"{prefix}.alert-acks",
        "topic_specs": f"{prefix}.specs",
        # the topics only the worker reads, so that a test's planning never sees another test's topics
        "topic_measurements": f"{prefix}.measurements",
        "topic_inspections": f"{prefix}.inspections",
        "topic_quality_costs": f"{prefix}.quality-costs",
        "topic_commands": f"{prefix}.commands",
        "topic_checkpoints": f"{prefix}.worker-checkpoints",
        "topic_dead_letter": f"{prefix}.dead-letter",
        "topic_audit": f"{prefix}.audit",  # every write appends to it: one chain per test
        "topic_alarm_events": f"{prefix}.alarm-events",
    }
    fields.update(overrides)
    return Settings(**fields)


def create_topics(settings: Settings) -> None:
    """Create the test's topics up front so kafka-python's first produce finds PARTITIONS partitions (an API
    view may have created them first: that is fine)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
    names = (
        settings.topic_line_status, settings.topic_alerts, settings.topic_acks, settings.topic_specs,
        settings.topic_alarm_events,  # the worker creates it with the inputs' count; the API never does
    )
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        admin.close()


@pytest.fixture()
def settings(session_broker: EmbeddedBroker) -> Settings:
    s = make_settings(session_broker.bootstrap)
    create_topics(s)
    return s


class Publisher:
    """kafka-python producer with the helpers the tests need; every send is flushed (acked) at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all", linger_ms=0)

    def send(
        self, topic: str, key: str | None, value: Any, partition: int | None = None, ts_ms: int | None = None
    ) -> Any:
        raw = None if value is None else (value if isinstance(value, bytes) else json.dumps(value).encode())
        fut = self.producer.send(
            topic,
            key=key.encode() if key is not None else None,
            value=raw,
            partition=partition,
            timestamp_ms=ts_ms,
        )
        self.producer.flush()
        return fut.get(timeout=10)

    def status(self, doc: dict[str, Any]) -> Any:
        return self.send(self.settings.topic_line_status, doc["line"], doc)

    def alert(self, doc: dict[str, Any], partition: int | None = None, ts_ms: int | None = None) -> Any:
        return self.send(self.settings.topic_alerts, doc["line"], doc, partition=partition, ts_ms=ts_ms)

    def close(self) -> None:
        self.producer.close()


@pytest.fixture()
def publish(settings: Settings) -> Iterator[Publisher]:
    pub = Publisher(settings)
    yield pub
    pub.close()


@contextlib.contextmanager
def running(settings: Settings, ready: bool = True) -> Iterator[TestClient]:
    """The app under TestClient (lifespan on), optionally waiting for /readyz."""
    with TestClient(create_app(settings)) as client:
        if ready:
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout=15)
        yield client


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with running(settings) as c:
        yield c


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """A real uvicorn server in a thread on a free loopback port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
