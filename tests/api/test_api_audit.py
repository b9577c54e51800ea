"""The audit trail end to end on the embedded broker: changes made through the API (spec put/delete,
re-baseline, ack — also concurrently, also across a restart) are hash-chained records in the audit topic,
served by ``GET /api/v1/audit`` and accepted by ``cpkmon audit verify``; a copy of the topic with one record
removed or altered makes ``cpkmon audit verify`` exit non-zero naming it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from cpkmon.alerts.audit import Chain, ChainWriter, Head, Stored, check, record_hash, verify, worker_chain
from cpkmon.api.app import create_app
from cpkmon.api.audit import AuditLog
from cpkmon.api.problems import Problem
from cpkmon.commands.audit import read_audit
from cpkmon.settings import Settings
from tests.api.conftest import AUTH, PARTITIONS, Publisher, running, serve, wait_until
from tests.api.statusdocs import grade_alert

HEADER = "X-Forwarded-User"
SPEC = {"lsl": 9.9, "usl": 10.1, "target": 10.0}


def create_topic(settings: Settings, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def all_pages(client: TestClient, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    since = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since
        r = client.get("/api/v1/audit", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        if not page["items"]:
            return items
        assert len(page["items"]) <= limit
        items += page["items"]
        since = page["next"]


def cli_verify(settings: Settings, topic: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``cpkmon audit verify`` as an operator runs it: a separate process, its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "cpkmon.cli", "audit", "verify", "--broker", settings.broker or "",
         "--topic", topic, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("CPKMON_")},
    )


def copy_topic(settings: Settings, name: str, values: list[bytes], publish: Publisher) -> None:
    """A fresh one-partition topic holding ``values`` in order (offsets 0, 1, 2 …)."""
    create_topic(settings, name, 1)
    for value in values:
        publish.send(name, "copy", value, partition=0)


def test_changes_through_the_api_form_a_chain_that_verifies(settings: Settings, publish: Publisher) -> None:
    settings = settings.model_copy(update={"trusted_identity_header": HEADER})
    create_topic(settings, settings.topic_measurements, PARTITIONS)  # a re-baseline needs the input topics
    alert = grade_alert("L1", 1)
    spec_url = "/api/v1/specs/L1/bore"
    with running(settings) as c:
        assert c.put(spec_url, json=SPEC).status_code == 401  # refused: not recorded
        assert c.put(spec_url, json=SPEC, headers=AUTH).status_code == 200
        changed = {**SPEC, "usl": 10.2}
        r = c.put(spec_url, json=changed, headers={**AUTH, HEADER: "Zhang Wei\x07"})
        assert r.status_code == 200
        assert c.post(f"{spec_url}/baseline", headers=AUTH).status_code == 202
        publish.alert(alert)
        wait_until(lambda: c.get("/readyz").json()["alerts"] == 1)
        r = c.post(f"/api/v1/alerts/{alert['alert_id']}/ack", headers=AUTH, json={"comment": "tool worn"})
        assert r.status_code == 200
        assert c.delete(spec_url, headers=AUTH).status_code == 204
        assert c.delete(spec_url, headers=AUTH).status_code == 404  # nothing changed: not recorded

        items = all_pages(c, limit=2)
        assert [i["what"] for i in items] == [
            "spec.put", "spec.put", "limits.rebaseline", "alert.ack", "spec.delete"
        ]
        assert [i["seq"] for i in items] == [1, 2, 3, 4, 5]
        assert [i["who"] for i in items] == ["ops", "Zhang Wei", "ops", "ops", "ops"]  # control char dropped
        assert {i["subject"] for i in items} == {"L1/bore", alert["alert_id"]}
        put1, put2, rebase, ack, delete = items
        assert put1["before"] is None and put1["after"]["usl"] == 10.1
        assert put2["before"] == put1["after"] and put2["after"]["usl"] == 10.2
        assert rebase["after"]["command"] == "rebaseline"
        assert ack["before"] is None and ack["after"]["comment"] == "tool worn"
        assert delete["before"] == put2["after"] and delete["after"] is None
        for item in items:
            assert item["hash"] == record_hash(item)  # served exactly as stored
        assert c.get("/api/v1/audit", params={"since": "garbage!"}).status_code == 400

    with running(settings) as c2:  # a restarted API continues the chain from the topic
        assert c2.put(spec_url, json=SPEC, headers=AUTH).status_code == 200
        items = all_pages(c2, limit=100)
        assert [i["seq"] for i in items] == [1, 2, 3, 4, 5, 6]
        assert items[5]["prev_hash"] == items[4]["hash"]

    # concurrent writes are serialised: no two records on one head
    with serve(create_app(settings)) as base:
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, timeout=15)

        def put(i: int) -> int:
            r = httpx.put(f"{base}/api/v1/specs/L2/c{i}", json=SPEC, headers=AUTH, timeout=30)
            return r.status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(put, range(8))) == [200] * 8

    stored = asyncio.run(read_audit(settings, settings.topic_audit))
    docs = [json.loads(s.value or b"") for s in stored]
    assert [d["seq"] for d in docs] == list(range(1, 15))
    assert sorted(d["subject"] for d in docs[6:]) == [f"L2/c{i}" for i in range(8)]

    ok = cli_verify(settings, settings.topic_audit, "--expect-head", docs[3]["hash"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact: 14 record(s)" in ok.stdout
    assert f"partition 0 chain api head: seq 14 hash {docs[-1]['hash']}" in ok.stdout
    values = [s.value or b"" for s in stored]

    # one record removed (seq 3): a fresh topic with the others copied in order
    removed = f"{settings.topic_audit}-removed"
    copy_topic(settings, removed, values[:2] + values[3:], publish)
    bad = cli_verify(settings, removed)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert bad.stdout.splitlines() == [
        "partition 0 chain api offset 2 seq 4: removed: seq 3 missing between offset 1 (seq 2) and offset 2 "
        "(seq 4)"
    ]
    assert "BROKEN: 1 problem(s) in 13 record(s)" in bad.stderr

    # one record altered (seq 2 now says someone else did it), its hash left as it was
    altered = f"{settings.topic_audit}-altered"
    forged = {**docs[1], "who": "someone-else"}
    copy_topic(settings, altered, [values[0], json.dumps(forged).encode(), *values[2:]], publish)
    bad = cli_verify(settings, altered, "--expect-head", "f" * 64)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert bad.stdout.splitlines() == [
        "partition 0 chain api offset 1 seq 2: altered: its hash does not match its content",
        f"chain: head: no record has the expected hash {'f' * 64}: the chain was rewritten",
    ]

    missing = cli_verify(settings, f"{settings.topic_audit}-nope")
    assert missing.returncode == 2 and "no topic" in missing.stderr


# ------------------------------------------------------------------------------ the writer, without a broker
class SlowProducer:
    """Acknowledges after a random few milliseconds, as a broker does: concurrent writers interleave."""

    def __init__(self, fail: bool = False) -> None:
        self.values: list[bytes] = []
        self.fail = fail

    async def send_and_wait(self, topic: str, value: bytes, key: bytes, partition: int) -> Any:
        await asyncio.sleep(random.random() * 0.005)
        if self.fail:
            raise ConnectionError("broker gone")
        self.values.append(value)
        return SimpleNamespace(partition=partition, offset=len(self.values) - 1)


def offline_log(producer: SlowProducer) -> AuditLog:
    log = AuditLog(Settings(broker="kafka://127.0.0.1:1"))
    async def catch_up() -> Chain:  # the topic holds exactly what this producer took
        return log._chain if log._chain is not None else Chain.after(
            json.loads(producer.values[-1]) if producer.values else None
        )

    async def get_producer() -> Any:
        return producer

    log._catch_up = catch_up  # type: ignore[method-assign]
    log._get_producer = get_producer  # type: ignore[method-assign]
    return log


def test_concurrent_changes_never_fork_the_chain() -> None:
    """30 changes at once on one API instance: the lock held across a change and its record gives 30
    distinct seqs in one intact chain (without it, changes built on the same head share a seq)."""
    producer = SlowProducer()
    log = offline_log(producer)

    async def one(i: int) -> None:
        async with log.change("ops", "spec.put", f"L1/c{i}") as c:
            await asyncio.sleep(random.random() * 0.005)  # the change's own write
            c.after = {"i": i}

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(30)))

    asyncio.run(main())
    records = [json.loads(v) for v in producer.values]
    assert [r["seq"] for r in records] == list(range(1, 31))
    assert verify([Stored(0, i, v) for i, v in enumerate(producer.values)]) == []


def test_a_failed_change_records_nothing_and_a_failed_record_is_a_503_then_re_read() -> None:
    producer = SlowProducer()
    log = offline_log(producer)

    async def main() -> None:
        with pytest.raises(RuntimeError):
            async with log.change("ops", "spec.put", "L1/a"):
                raise RuntimeError("the spec write failed")
        assert producer.values == []
        async with log.change("ops", "spec.put", "L1/a") as c:
            c.after = {"usl": 1}
        producer.fail = True
        with pytest.raises(Problem) as exc:
            async with log.change("ops", "spec.delete", "L1/a"):
                pass
        assert exc.value.status == 503 and "change was applied" in exc.value.detail
        assert log._chain is None  # unsure whether the broker has it: the head is re-read
        producer.fail = False
        async with log.change("ops", "spec.delete", "L1/a"):
            pass

    asyncio.run(main())
    assert [json.loads(v)["seq"] for v in producer.values] == [1, 2]
    assert verify([Stored(0, i, v) for i, v in enumerate(producer.values)]) == []


class SharedTopic:
    """The audit topic's one partition, written by the API's producer and by workers alike."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes, partition: int) -> Any:
        self.values.append(value)
        return SimpleNamespace(partition=partition, offset=len(self.values) - 1)

    def worker(self, writer: ChainWriter, n: int) -> None:
        """``n`` records of a worker's chain appended, as the worker publishes them."""
        for i in range(n):
            writer.append(at=f"2026-12-01T09:00:{i:02d}.000Z", what="alarm.activate", subject="a-1",
                          before={"active": False}, after={"active": True})
        self.values += [json.dumps(r).encode() for r in writer.take()]

    def stored(self) -> list[Stored]:
        return [Stored(0, i, v) for i, v in enumerate(self.values)]


def topic_log(topic: SharedTopic) -> AuditLog:
    """An API audit log whose real catch-up reads ``topic`` (no broker: reads and writes are in memory)."""
    log = AuditLog(Settings(broker="kafka://127.0.0.1:1"))

    async def ensure_topic() -> None:
        return None

    async def read(start: dict[int, int], limit: int | None) -> tuple[list[Any], dict[int, int]]:
        after = start.get(0, -1)
        recs = [
            SimpleNamespace(partition=0, offset=i, value=v) for i, v in enumerate(topic.values) if i > after
        ]
        return recs, {0: len(topic.values) - 1}

    async def get_producer() -> Any:
        return topic

    log._ensure_topic = ensure_topic  # type: ignore[method-assign]
    log._read = read  # type: ignore[method-assign,assignment]
    log._get_producer = get_producer  # type: ignore[method-assign]
    return log


def test_the_api_continues_its_own_chain_between_worker_records() -> None:
    """Workers append their ``worker:<line>`` chains to the same partition; the API continues the chain of
    its own last record (``api``), not of whatever record is last, also after a restart."""
    topic = SharedTopic()
    l1, l2 = ChainWriter(worker_chain("L1")), ChainWriter(worker_chain("L2"))
    log = topic_log(topic)

    async def change(audit: AuditLog, i: int) -> None:
        async with audit.change("ops", "spec.put", f"L1/c{i}") as c:
            c.after = {"i": i}

    async def main() -> None:
        await change(log, 0)
        topic.worker(l1, 3)
        await change(log, 1)
        topic.worker(l2, 2)
        topic.worker(l1, 1)
        await change(log, 2)
        await change(topic_log(topic), 3)  # a restarted API reads the topic from the start
        topic.worker(l1, 1)

    asyncio.run(main())
    docs = [json.loads(v) for v in topic.values]
    api = [d for d in docs if "chain" not in d]
    assert [d["seq"] for d in api] == [1, 2, 3, 4]
    for before, after in itertools.pairwise(api):
        assert after["prev_hash"] == before["hash"]
    verdict = check(topic.stored())
    assert verdict.problems == []
    assert verdict.heads == {
        (0, "api"): Head(4, api[-1]["hash"]),
        (0, "worker:L1"): Head(5, l1.head.hash),
        (0, "worker:L2"): Head(2, l2.head.hash),
    }
