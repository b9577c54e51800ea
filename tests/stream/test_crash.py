"""Nothing lost, nothing counted twice across ``kill -9`` (SPEC §9) — on Tansu, with no transactions."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from cpkmon.broker import EmbeddedBroker
from tests.stream.harness import (
    Feed,
    Proc,
    base_env,
    batch_answer,
    comparable,
    http_json,
    latest_status,
    read_topic,
    running,
    start_api,
    start_worker,
    totals,
    wait_until,
)
from tests.stream.plantdata import mixed_plant
from tests.stream.test_pipeline import assert_close

pytestmark = pytest.mark.broker


def produce_paced(feed: Feed, bootstrap: str, seconds: float) -> threading.Thread:
    """Specs at once, then the messages spread over ``seconds`` (so a kill lands mid-stream)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    for s in feed.specs:
        producer.send("cpkmon.specs", orjson.dumps(s), key=f"{s['line']}/{s['characteristic']}".encode())
    producer.flush()

    def run() -> None:
        n = len(feed.messages)
        t0 = time.monotonic()
        for i, (topic, key, value, p) in enumerate(feed.messages):
            producer.send(topic, value, key=key.encode() if key else None, partition=p)
            if i % 200 == 0:
                producer.flush()
                delay = t0 + seconds * i / n - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        producer.flush()
        producer.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def applied(worker: Proc) -> float:
    try:
        return sum(v for k, v in worker.get("/healthz")["events"].items() if k.endswith(":accepted"))
    except OSError:
        return 0.0


def all_alerts_from_api(api: Proc) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(1000):
        page = api.get(f"/api/v1/alerts?limit=100{'&since=' + cursor if cursor else ''}")
        items += page["items"]
        if not page["items"]:
            return items
        cursor = page["next"]
    raise AssertionError("alert pages never ended")


class Finished:
    """Polls the status topic until every line shows every event once; remembers what it saw last."""

    def __init__(self, bootstrap: str, want: tuple[int, int], lines: set[str]) -> None:
        self.bootstrap, self.want, self.lines = bootstrap, want, lines
        self.seen: dict[str, tuple[int, int]] = {}

    def __call__(self) -> dict[str, dict[str, Any]] | None:
        docs = latest_status(self.bootstrap)
        self.seen = {line: totals([d]) for line, d in docs.items()}
        return docs if set(docs) == self.lines and totals(docs.values()) == self.want else None

    def __repr__(self) -> str:
        return f"want {self.want} over {sorted(self.lines)}, saw {self.seen}"


def finished(
    bootstrap: str, want: tuple[int, int], lines: set[str], worker: Proc | None = None
) -> dict[str, dict[str, Any]]:
    poll = Finished(bootstrap, want, lines)
    try:
        return wait_until(poll, 90, what="every event applied exactly once")  # type: ignore[no-any-return]
    except AssertionError as exc:
        if worker is not None:
            exc = AssertionError(f"{exc}; worker events {worker.get('/healthz')['events']}")
        raise AssertionError(f"{exc}; {poll!r}") from None


def test_kill9_mid_stream_then_restart_equals_batch(broker: EmbeddedBroker, tmp_path: Path) -> None:
    feed = Feed(partitions=8)
    mixed_plant(feed, seed=5, subgroups=240)
    expected, batch_out = batch_answer(feed)
    want = totals(expected.values())
    env = base_env(broker.bootstrap, tmp_path)
    worker = start_worker(env, tmp_path, "worker-a")
    api = start_api(env, tmp_path)
    with running(api):
        with running(worker):
            producer = produce_paced(feed, broker.bootstrap, seconds=6.0)
            wait_until(lambda: applied(worker) > want[0] * 0.3, 60, interval=0.05, what="30 % applied")
            worker.kill9()
        before = applied(worker)
        assert before == 0.0  # it is really gone
        restarted = start_worker(env, tmp_path, "worker-b")
        with running(restarted):
            producer.join(60)
            docs = finished(broker.bootstrap, want, set(expected), restarted)
            health = restarted.get("/healthz")
            wait_until(lambda: http_json(api.url("/readyz")), 20, what="API caught up")
            time.sleep(1.0)
            api_alerts = all_alerts_from_api(api)
    for line, doc in docs.items():
        assert_close(comparable(doc), comparable(expected[line]), line)
    assert totals(docs.values()) == want
    # the restarted worker restored checkpoints and replayed only the tail
    assert health["events"].get("cpkmon.measurements:accepted", 0) < want[0]
    ids = [a["alert_id"] for a in api_alerts]
    assert len(ids) == len(set(ids)), "an alert id appeared twice at the API"
    topic_ids = {orjson.loads(r.value)["alert_id"] for r in read_topic(broker.bootstrap, "cpkmon.alerts")}
    assert set(ids) == topic_ids
    batch_ooc = {a["alert_id"] for a in batch_out.alerts if a["type"] == "out_of_control"}
    assert {a["alert_id"] for a in api_alerts if a["type"] == "out_of_control"} == batch_ooc


def test_two_workers_split_partitions_and_survivor_takes_over(broker: EmbeddedBroker, tmp_path: Path) -> None:
    feed = Feed(partitions=8)
    mixed_plant(feed, seed=9, subgroups=240)
    expected, _ = batch_answer(feed)
    want = totals(expected.values())
    env = base_env(broker.bootstrap, tmp_path)
    w1 = start_worker(env, tmp_path, "worker-1")
    w2 = start_worker(env, tmp_path, "worker-2")
    with running(w1, w2):

        def split() -> tuple[list[int], list[int]] | None:
            p1, p2 = w1.get("/healthz")["partitions"], w2.get("/healthz")["partitions"]
            return (p1, p2) if p1 and p2 and sorted(p1 + p2) == list(range(8)) else None

        p1, p2 = wait_until(split, 30, what="two workers sharing the 8 partitions")
        assert not set(p1) & set(p2)
        producer = produce_paced(feed, broker.bootstrap, seconds=6.0)
        wait_until(lambda: applied(w1) + applied(w2) > want[0] * 0.3, 60, interval=0.05, what="30 % applied")
        w1.kill9()
        wait_until(
            lambda: w2.get("/healthz")["partitions"] == list(range(8)),
            30,
            what="the survivor owning every partition",
        )
        producer.join(60)
        docs = finished(broker.bootstrap, want, set(expected), w2)
    for line, doc in docs.items():
        assert_close(comparable(doc), comparable(expected[line]), line)
