"""The view: readiness after catch-up (against the fetch high watermark, not ListOffsets), missing topics,
broker absence, deterministic placement of duplicates."""

from __future__ import annotations

import json
import time

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from conftest import Publisher, create_topics, make_settings, running, wait_until
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from statusdocs import grade_alert, ooc_alert, status

from cpkmon.api.app import create_app
from cpkmon.api.view import View
from cpkmon.broker import EmbeddedBroker, free_port
from cpkmon.settings import Settings


def test_not_ready_without_broker() -> None:
    settings = make_settings(f"127.0.0.1:{free_port()}")  # nobody listens there
    with TestClient(create_app(settings)) as client:
        time.sleep(0.3)
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/alerts").status_code == 503
        assert client.get("/api/v1/lines").json() == []
        m = client.get("/metrics").text
        assert "cpkmon_view_ready 0.0" in m


def test_topics_missing_at_start_are_created(session_broker: EmbeddedBroker) -> None:
    settings = make_settings(session_broker.bootstrap, partitions=2)  # no topics exist
    with running(settings) as client:
        assert client.get("/readyz").json()["ready"] is True
        assert client.get("/api/v1/alerts").json()["items"] == []


def test_ready_only_after_catching_up_with_batched_records(session_broker: EmbeddedBroker) -> None:
    """Records produced in multi-record batches: the embedded broker's ListOffsets end offset would point
    inside the last batch (SPEC §10); the view uses the fetch high watermark, so the LAST document of every
    line is there the moment /readyz says 200."""
    settings = make_settings(session_broker.bootstrap)
    with running(settings):
        pass  # creates the topics with settings.partitions partitions
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(), linger_ms=20, batch_size=256 * 1024, acks="all"
    )
    lines = 300
    last: dict[str, dict] = {}
    for i in range(6000):
        doc = status(f"L{i % lines}", chars=1, stations=1, points=1, updated=1_795_162_502.125 + i)
        last[doc["line"]] = doc
        producer.send(settings.topic_line_status, key=doc["line"].encode(), value=json.dumps(doc).encode())
    for i in range(500):
        producer.send(settings.topic_alerts, key=b"L1", value=json.dumps(ooc_alert("L1", i)).encode())
    producer.flush()
    producer.close()

    with TestClient(create_app(settings)) as client:
        first = client.get("/readyz")
        assert first.status_code == 503  # the consumer cannot have fetched 6 500 records before the first GET
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=15)
        ready = client.get("/readyz").json()
        assert ready["lines"] == lines and ready["alerts"] == 500 and ready["caught_up"] is True
        view: View = client.app.state.view  # type: ignore[attr-defined]
        for line, doc in last.items():
            assert view.lines[line].doc == doc, line


def _rec(topic: str, partition: int, offset: int, value: dict, ts: int) -> ConsumerRecord:
    raw = orjson.dumps(value)
    return ConsumerRecord(topic, partition, offset, ts, 0, value["line"].encode(), raw, None, 2, len(raw), ())


def test_cross_partition_duplicate_lands_on_the_lowest_partition_whatever_the_read_order() -> None:
    settings = Settings(topic_alerts="al")
    a, b, c = grade_alert("L1", 1), ooc_alert("L2", 2), ooc_alert("L3", 3)
    p0 = [_rec("al", 0, 0, a, 10), _rec("al", 0, 1, b, 30)]  # b's replay, keyed into partition 0
    p1 = [_rec("al", 1, 0, b, 20), _rec("al", 1, 1, c, 40)]
    pages = []
    for order in ((0, 1), (1, 0)):
        view = View(settings)
        view.ready = True
        for p in order:
            view._apply({TopicPartition("al", p): p0 if p == 0 else p1})
        pages.append(view.alerts_page({}, None, 10))
        assert view.stats.duplicate_alerts == 1
    assert pages[0] == pages[1]
    items, nxt = pages[0]
    assert [i["alert_id"] for i in items] == [a["alert_id"], b["alert_id"], c["alert_id"]]
    assert nxt == {0: 1, 1: 1}


def test_survives_a_broker_restart() -> None:
    """The embedded broker restarts on the same port and loses every topic (memory storage): the view
    reconnects, notices its offsets are gone, rebuilds from the new topics and serves again."""
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    try:
        settings = make_settings(broker.bootstrap)
        create_topics(settings)
        with running(settings) as client:
            pub = Publisher(settings)
            for level in (2, 3, 4):
                pub.status(status("Lold", level=level))
            pub.alert(grade_alert("Lold", 1))
            pub.close()
            wait_until(lambda: client.get("/api/v1/lines/Lold").status_code == 200)

            broker.stop()
            time.sleep(1.0)
            assert client.get("/api/v1/lines/Lold").status_code == 200  # still serving what it has
            assert client.get("/healthz").status_code == 200
            broker = EmbeddedBroker(port=port).start()
            create_topics(settings)
            pub = Publisher(settings)
            pub.status(status("Lnew", level=5))
            pub.close()
            wait_until(lambda: client.get("/api/v1/lines/Lnew").status_code == 200, timeout=30)
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout=15)
            assert [r["line"] for r in client.get("/api/v1/lines").json()] == ["Lnew"]
            assert client.get("/api/v1/alerts").json()["items"] == []
    finally:
        broker.stop()
