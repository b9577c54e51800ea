"""The API's audit writer and reader: every change a person makes through the API, appended to the
hash-chained ``cpkmon.audit`` topic (:mod:`cpkmon.alerts.audit` builds and checks the chain).

How a change is recorded (:meth:`AuditLog.change`): the route holds the audit lock, makes its own write (the
spec, the command, the ack) and, once the broker acknowledged it, appends the audit record with the ``before``
it read and the ``after`` it wrote. Holding one lock across both writes does two things: two concurrent
requests can never build two records on the same head (a forked chain), and the audit order is the order in
which this instance applied the changes. A change that fails writes no record; a change that succeeded but
whose record the broker refused answers 503 saying so (it is logged too), so the caller retries and the retry
is recorded.

Where the chain continues from: on the first write after start-up the writer reads the topic to its end
(:func:`cpkmon.catchup.read_to_end`) and continues from the last record of the API's chain (``"api"``: records
without a ``chain`` field — the worker's records of its ``worker:<line>`` chains share the topic and are
skipped); before each later write it reads what was appended since (another API replica's records), so
replicas continue one chain. Two replicas writing
in the same few milliseconds can still fork it — ``cpkmon audit verify`` then names the duplicated ``seq`` —
so a plant that runs several replicas routes writes to one of them (see README "Audit trail").

Reading (:meth:`AuditLog.page`): ``GET /api/v1/audit`` pages straight from the topic with the alerts' cursor
format (partition → last delivered offset), so every replica, and a restarted one, turns a cursor into the
same next page; no copy of the trail is kept in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import Depends, Request

from cpkmon.alerts.audit import API_CHAIN, Chain, chain_of
from cpkmon.api.deps import require_key
from cpkmon.api.problems import Problem
from cpkmon.api.writer import api_producer
from cpkmon.capability.timeutil import to_rfc3339
from cpkmon.catchup import read_to_end, reader
from cpkmon.kafka_security import aiokafka_kwargs
from cpkmon.settings import Settings
from cpkmon.topics import ensure_topics

log = logging.getLogger(__name__)

MAX_IDENTITY = 256  # characters of a trusted identity header kept as `who`


@dataclass
class Change:
    """What a route tells the audit log about its change; ``after`` is set once the change is written."""

    who: str
    what: str
    subject: str
    before: Any = None
    after: Any = None
    record: dict[str, Any] | None = field(default=None)  # the audit record, once appended


class AuditLog:
    """One per app (``app.state.audit``): the serialised writer of the chain and the topic's pager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic_audit
        self._lock = asyncio.Lock()  # held across a change and its record: one chain, in change order
        self._read_lock = asyncio.Lock()  # the one reader consumer
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._chain: Chain | None = None  # None: not loaded (or unsure after a failed write): read the topic
        self._next_offset = 0  # of partition 0: the first offset the chain has not seen
        self._topic_ok = False

    # ------------------------------------------------------------------------------------------- clients

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = api_producer(self.settings, "cpkmon-api-audit")
            await producer.start()
            self._producer = producer
        return self._producer

    async def _get_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = reader(
                self.settings.bootstrap_servers(),
                aiokafka_kwargs(self.settings),
                client_id="cpkmon-api-audit",
                request_timeout_ms=10_000,
                # ``consumer.topics()`` (below) fetches metadata without updating the consumer's own: a reader
                # started before the topic existed (a GET before the first write) would see no partition until
                # its metadata aged out (5 min by default). Refreshed every second, it sees the new topic.
                metadata_max_age_ms=1_000,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def _ensure_topic(self) -> None:
        """Create the audit topic if missing (one partition, retention per ``CPKMON_AUDIT_RETENTION_MS``)."""
        if self._topic_ok:
            return
        topics = await ensure_topics(self.settings, timeout=5.0, only={self.topic})
        if self.topic not in topics.counts:
            raise RuntimeError(f"the audit topic {self.topic} could not be created")
        self._topic_ok = True

    async def _reset(self) -> None:
        producer, self._producer = self._producer, None
        consumer, self._consumer = self._consumer, None
        for client in (producer, consumer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()

    async def close(self) -> None:
        await self._reset()

    # ------------------------------------------------------------------------------------------- reading

    async def _read(self, start: Mapping[int, int], limit: int | None) -> tuple[list[Any], dict[int, int]]:
        """Records after ``start`` (partition → last delivered offset) in (partition, offset) order, at most
        ``limit`` (None: to the end), and the new ``partition → last delivered offset``."""
        consumer = await self._get_consumer()
        parts = consumer.partitions_for_topic(self.topic)
        if not parts:
            await consumer.topics()  # refresh the metadata: the topic may be new
            parts = consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        delivered = dict(start)
        if not tps:
            return [], delivered
        out = await read_to_end(consumer, tps, after=start, limit=limit)
        out.sort(key=lambda r: (r.partition, r.offset))
        if limit is not None:
            out = out[:limit]
        for rec in out:
            delivered[rec.partition] = max(delivered.get(rec.partition, -1), rec.offset)
        return out, delivered

    async def page(self, start: Mapping[int, int], limit: int) -> tuple[list[dict[str, Any]], dict[int, int]]:
        """One page of ``GET /api/v1/audit``: the records as stored (so a client can recompute each hash)
        and the cursor after them. A record that is not JSON is skipped but its offset delivered (``cpkmon
        audit verify`` names it)."""
        try:
            async with self._read_lock:
                records, delivered = await self._read(start, limit)
        except Exception as exc:
            log.warning("reading %s failed: %s: %s", self.topic, type(exc).__name__, exc)
            await self._reset_reader()
            raise Problem(503, f"the audit topic cannot be read: {type(exc).__name__}") from exc
        items = [doc for doc in (_load(rec.value) for rec in records) if doc is not None]
        return items, delivered

    async def _reset_reader(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    # ------------------------------------------------------------------------------------------- writing

    async def _catch_up(self) -> Chain:
        """The API's chain continued after its last record in the topic (all of it read on the first call,
        only what was appended since on later ones); the records of other chains (the worker's) are not
        the API's to continue."""
        await self._ensure_topic()
        async with self._read_lock:
            start = {0: self._next_offset - 1}
            records, delivered = await self._read(start, None)
        last: dict[str, Any] | None = None
        for rec in records:
            if rec.partition != 0:
                continue  # one partition by design; more would be a hand-made topic
            doc = _load(rec.value)
            if doc is None or type(doc.get("seq")) is not int or not isinstance(doc.get("hash"), str):
                continue  # not a record: the chain goes on from the last one that is
            if chain_of(doc) != API_CHAIN:
                continue  # another writer's chain (a line's worker records)
            if last is None or doc["seq"] > last["seq"]:
                last = doc
        self._next_offset = delivered.get(0, -1) + 1
        if last is not None:
            if self._chain is not None and last["seq"] <= self._chain.head.seq:
                log.warning("%s: a record with seq %s was appended behind this API's head %s",
                            self.topic, last["seq"], self._chain.head.seq)
            return Chain.after(last)
        return self._chain if self._chain is not None else Chain()

    @contextlib.asynccontextmanager
    async def change(
        self, who: str, what: str, subject: str, before: Any = None
    ) -> AsyncIterator[Change]:
        """``async with audit.change(who, what, subject, before) as c: <write>; c.after = …``: the block's
        write and then its audit record, under the audit lock. Nothing is recorded if the block raises."""
        async with self._lock:
            change = Change(who, what, subject, before)
            yield change
            await self._append(change)

    async def _append(self, change: Change) -> None:
        try:
            self._chain = await self._catch_up()
            record = self._chain.build(
                at=to_rfc3339(time.time()) or "",
                who=change.who,
                what=change.what,
                subject=change.subject,
                before=change.before,
                after=change.after,
            )
            producer = await self._get_producer()
            meta = await producer.send_and_wait(
                self.topic, value=orjson.dumps(record), key=change.what.encode(), partition=0
            )
        except Exception as exc:
            # the record may or may not have reached the broker: forget the head, re-read it next time
            self._chain = None
            self._next_offset = 0
            await self._reset()
            log.error("audit record for %s %s by %s NOT written: %s: %s",
                      change.what, change.subject, change.who, type(exc).__name__, exc)
            raise Problem(
                503,
                f"the change was applied but its audit record could not be written "
                f"({type(exc).__name__}): retry the request",
            ) from exc
        self._chain.advance(record)
        self._next_offset = meta.offset + 1
        change.record = record


def _load(value: bytes | None) -> dict[str, Any] | None:
    """A record's JSON object, or None for a tombstone or anything that is not a JSON object."""
    if value is None:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def get_audit(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


def identity(request: Request, caller: Annotated[str, Depends(require_key)]) -> str:
    """Who a write is recorded as: the value of ``CPKMON_TRUSTED_IDENTITY_HEADER`` when configured and sent
    (a reverse proxy that authenticated the person sets it; the API key still authorises the write), else
    the API key's name. Control characters are dropped and the value is capped at 256 characters."""
    header = request.app.state.settings.trusted_identity_header
    if header:
        value = request.headers.get(header)
        if value is not None:
            clean = "".join(ch for ch in value if ch.isprintable()).strip()[:MAX_IDENTITY]
            if clean:
                return clean
    return caller


AuditDep = Annotated[AuditLog, Depends(get_audit)]
IdentityDep = Annotated[str, Depends(identity)]


__all__ = ["AuditDep", "AuditLog", "Change", "IdentityDep", "get_audit", "identity"]
