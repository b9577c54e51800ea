"""State survives compaction (issue 10, finding 4), proven on a broker that does not compact.

Tansu accepts ``cleanup.policy=compact`` and ignores it (SPEC §10), so this test compacts by hand: after a
run on one broker in which specs were changed, deleted (tombstones), re-added and re-baselined several times
through the API, and alerts acknowledged, it builds the **compacted form** of every compacted topic — the
newest record per key, keys whose newest record is a tombstone dropped altogether (what Kafka keeps once
``delete.retention.ms`` has passed) — and copies the other topics as they are (same partitions, same offsets,
same timestamps) onto a fresh broker. A worker and an API started there must serve what the first run
served: the same status, alerts with their acks, and specs; the re-baselined limits must still be the
re-baselined ones (not re-baselined again from the window that moved on since). A line literally named
``__partition__`` (a valid SPEC §1 id, and the old checkpoint partition key) runs along.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kafka import KafkaProducer

from cpkmon.broker import EmbeddedBroker
from cpkmon.settings import Settings
from cpkmon.stream.checkpoint import read_to_high_watermark
from cpkmon.topics import plan
from tests.stream.harness import Proc, base_env, running, start_api, start_worker, wait_until

pytestmark = pytest.mark.broker

KEY = "compaction-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SETTINGS = Settings()
COMPACTED = {t.name for t in plan(SETTINGS) if t.compacted}
T0 = 1_795_000_000_000
ODD = "__partition__"  # a line id that used to be the checkpoint partition key


def call(api: Proc, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(api.url(path), data=data, method=method, headers=dict(AUTH))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Plant:
    """Measurements keyed by line (the default partitioner), counted so the test knows when all are in."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        self.rng = random.Random(11)
        self.values = 0
        self.subgroup = 0

    def subgroups(self, line: str, char: str, mean: float, sd: float, count: int) -> None:
        for _ in range(count):
            self.subgroup += 1
            doc = [
                {
                    "event_id": f"{line}-{char}-{self.subgroup}-{k}",
                    "ts": T0 + self.subgroup * 1000 + k,
                    "line": line,
                    "station": "S10",
                    "characteristic": char,
                    "value": round(self.rng.gauss(mean, sd), 5),
                }
                for k in range(5)
            ]
            self.producer.send("cpkmon.measurements", orjson.dumps(doc), key=line.encode())
            self.values += 5
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()


def judged(worker: Proc) -> float:
    """Measurement values the worker has accepted or dead-lettered."""
    events = worker.get("/healthz")["events"]
    return sum(events.get(f"cpkmon.measurements:{o}", 0) for o in ("accepted", "dead_letter", "duplicate"))


def control(worker: Proc, line: str, char: str) -> dict[str, Any] | None:
    doc = worker.get(f"/debug/state/{line}")
    return next(c["control"] for c in doc["characteristics"] if c["characteristic"] == char)


def all_alerts(api: Proc) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = api.get(f"/api/v1/alerts?limit=7{'&since=' + cursor if cursor else ''}")
        if not page["items"]:
            return items
        items += page["items"]
        cursor = page["next"]


SPEC_KEYS = [("L1", "bore"), ("L1", "len"), ("L1", "gone"), (ODD, "bore")]


def served(api: Proc, lines: list[str]) -> dict[str, Any]:
    specs = {}
    for line, char in SPEC_KEYS:
        status, body = call(api, "GET", f"/api/v1/specs/{line}/{char}")
        specs[f"{line}/{char}"] = body if status == 200 else status
    return {
        "lines": api.get("/api/v1/lines"),
        "docs": {line: api.get(f"/api/v1/lines/{line}") for line in lines},
        "alerts": all_alerts(api),
        "specs": specs,
    }


# ------------------------------------------------------------------------------------- compacting by hand
async def _copy(source: str, target: str) -> dict[str, tuple[int, int]]:
    """Every ``cpkmon.*`` topic of ``source`` into ``target``: compacted topics in compacted form, the
    others as they are. Returns topic → (records read, records written)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=source)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith("cpkmon.")]
        counts = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
    finally:
        await admin.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=target)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(t, n, 1, topic_configs={"cleanup.policy": "compact" if t in COMPACTED else "delete"})
                for t, n in counts.items()
            ]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=target, acks="all", enable_idempotence=False)
    await producer.start()
    report = {}
    try:
        for topic, n in sorted(counts.items()):
            written = 0
            consumer = AIOKafkaConsumer(
                bootstrap_servers=source, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
            )
            await consumer.start()
            try:
                records = await read_to_high_watermark(consumer, [TopicPartition(topic, p) for p in range(n)])
            finally:
                await consumer.stop()
            for p in range(n):
                part = [r for r in records if r.partition == p]
                if topic in COMPACTED:
                    newest = {r.key: r for r in part}  # the last record of every key wins
                    keep = {id(r) for r in newest.values() if r.value is not None}
                    part = [r for r in part if id(r) in keep]
                else:  # copied as they are: the same offsets, which checkpoints and cursors refer to
                    assert [r.offset for r in part] == list(range(len(part))), (topic, p)
                for r in part:
                    await producer.send_and_wait(
                        topic, r.value, key=r.key, partition=p, timestamp_ms=r.timestamp
                    )
                    written += 1
            report[topic] = (len(records), written)
    finally:
        await producer.stop()
    return report


# --------------------------------------------------------------------------------------------------- test
def test_state_served_from_compacted_topics_equals_the_uncompacted_run(tmp_path: Path) -> None:
    lines = ["L1", ODD]
    extra = dict(
        CPKMON_API_KEYS=f"ops:{KEY}",
        CPKMON_MIN_SUBGROUPS="5",
        CPKMON_WINDOW_SUBGROUPS="8",
        CPKMON_SPEC_HOLD_SECONDS="2",
    )
    with EmbeddedBroker() as first, EmbeddedBroker() as second:
        env = base_env(first.bootstrap, tmp_path / "a", **extra)
        (tmp_path / "a").mkdir()
        worker = start_worker(env, tmp_path / "a")
        api = start_api(env, tmp_path / "a")
        plant = Plant(first.bootstrap)
        with running(api, worker):

            def settle() -> None:
                want = plant.values
                wait_until(lambda: judged(worker) == want, 60, what=f"{want} values judged by the worker")

            put = {"lsl": 73.9, "usl": 74.1}
            assert call(api, "PUT", "/api/v1/specs/L1/bore", put)[0] == 200
            assert call(api, "PUT", "/api/v1/specs/L1/len", {"lsl": 119.0, "usl": 121.0})[0] == 200
            assert call(api, "PUT", f"/api/v1/specs/{ODD}/bore", put)[0] == 200
            assert call(api, "PUT", "/api/v1/specs/L1/gone", {"usl": 5.0})[0] == 200
            plant.subgroups("L1", "bore", 74.0, 0.01, 8)
            plant.subgroups("L1", "len", 120.0, 0.1, 8)
            plant.subgroups(ODD, "bore", 74.0, 0.01, 8)
            settle()
            # specs changed, deleted (tombstones), re-added
            assert call(api, "PUT", "/api/v1/specs/L1/bore", {"lsl": 73.9, "usl": 74.12})[0] == 200
            assert call(api, "DELETE", "/api/v1/specs/L1/len")[0] == 204
            assert call(api, "DELETE", "/api/v1/specs/L1/gone")[0] == 204
            plant.subgroups("L1", "len", 120.0, 0.1, 2)  # no spec now: dead-lettered (no_spec)
            settle()
            assert call(api, "PUT", "/api/v1/specs/L1/len", {"lsl": 119.0, "usl": 121.5})[0] == 200
            assert call(api, "PUT", "/api/v1/specs/L1/len", {"lsl": 119.0, "usl": 121.0})[0] == 200
            plant.subgroups("L1", "bore", 74.0, 0.01, 8)
            plant.subgroups("L1", "len", 120.0, 0.1, 8)
            settle()
            # re-baselined several times, each time after the process moved
            centers = []
            for mean in (74.03, 74.06):
                plant.subgroups("L1", "bore", mean, 0.01, 8)
                plant.subgroups(ODD, "bore", mean, 0.01, 8)
                settle()
                before = {line: control(worker, line, "bore") for line in lines}
                for line in lines:
                    assert call(api, "POST", f"/api/v1/specs/{line}/bore/baseline")[0] == 202
                # every line's command applied before the process moves on (commands and measurements are
                # separate topics: a command still unread would re-freeze from the moved window)
                wait_until(
                    lambda b=before: all(control(worker, ln, "bore") != b[ln] for ln in lines),
                    20,
                    what="re-baseline applied on every line",
                )
                centers.append(control(worker, "L1", "bore"))
            rebased = {line: control(worker, line, "bore") for line in lines}
            assert abs(rebased["L1"]["center"] - 74.06) < 0.01 and abs(centers[0]["center"] - 74.03) < 0.01
            # the process moves on: the frozen limits must not follow (a re-run re-baseline would)
            plant.subgroups("L1", "bore", 73.97, 0.01, 8)
            plant.subgroups(ODD, "bore", 73.97, 0.01, 8)
            settle()
            assert {line: control(worker, line, "bore") for line in lines} == rebased
            # acknowledgements, one of them changed later
            wait_until(lambda: len(all_alerts(api)) >= 3, 20, what="alerts at the API")
            ids = [a["alert_id"] for a in all_alerts(api)]
            for i, alert_id in enumerate(ids[:3]):
                assert call(api, "POST", f"/api/v1/alerts/{alert_id}/ack", {"comment": f"c{i}"})[0] == 200
            assert call(api, "POST", f"/api/v1/alerts/{ids[0]}/ack", {"comment": "again"})[0] == 200
            worker.stop()  # a clean stop: the final checkpoint covers every applied offset
            wait_until(lambda: api.get("/readyz")["caught_up"], 20, what="API A caught up")
            before_state = served(api, lines)
        plant.close()
        assert before_state["specs"]["L1/gone"] == 404 and before_state["specs"]["L1/len"]["usl"] == 121.0
        assert sum(1 for a in before_state["alerts"] if a["ack"]) == 3

        report = asyncio.run(_copy(first.bootstrap, second.bootstrap))
        # the compacted form really dropped records: superseded states, specs and tombstones
        for topic in ("cpkmon.specs", "cpkmon.worker-checkpoints", "cpkmon.line-status", "cpkmon.alert-acks"):
            read, written = report[topic]
            assert written < read, report
        assert report["cpkmon.commands"] == (4, 4)

        env_b = base_env(second.bootstrap, tmp_path / "b", **extra)
        (tmp_path / "b").mkdir()
        worker_b = start_worker(env_b, tmp_path / "b")
        api_b = start_api(env_b, tmp_path / "b")
        with running(api_b, worker_b):
            wait_until(lambda: worker_b.get("/healthz")["lines"] == len(lines), 30, what="lines restored")
            # the restored state itself (not just the copied status documents) holds the re-baselined limits
            assert {line: control(worker_b, line, "bore") for line in lines} == rebased
            for line in lines:
                assert worker_b.get(f"/debug/state/{line}") == before_state["docs"][line], line
            wait_until(lambda: api_b.get("/readyz")["caught_up"], 20, what="API B caught up")
            after_state = served(api_b, lines)
            assert judged(worker_b) == 0  # nothing replayed: the checkpoint covered every input offset
            events = worker_b.get("/healthz")["events"]
            assert not any(k.startswith("cpkmon.commands:") for k in events), events  # no command re-run
    assert after_state == before_state
