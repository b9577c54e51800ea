"""The API's only writes: acks, specs and re-baseline requests, produced to Kafka and awaited.

A write answers only after the broker acknowledged the record (``acks=all``), and then waits (bounded by
``CPKMON_API_WRITE_WAIT_MS``) until this instance's view has read its own record back, so a GET right after a
PUT or an ack sees it. The producer starts lazily: the API serves reads even while the broker is away.

Commands (re-baseline) go to the commands topic, keyed by line, which the view does not read: they are
inputs of the worker that owns the line, not state, so nothing is read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer

from cpkmon.api.problems import Problem
from cpkmon.api.view import View
from cpkmon.kafka_security import aiokafka_kwargs
from cpkmon.settings import Settings
from cpkmon.topics import ensure_topics

log = logging.getLogger(__name__)


def api_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """How the API produces (specs, acks, commands, alarm events, audit records): every write waits for
    ``acks=all``; no idempotent producer, since the embedded broker has no InitProducerId (SPEC §10)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(),
        **aiokafka_kwargs(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        request_timeout_ms=10_000,
    )


class Writer:
    def __init__(self, settings: Settings, view: View) -> None:
        self.settings = settings
        self.view = view
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._commands_topic_ok = False
        self._alarm_topic_ok = False

    async def _get(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = api_producer(self.settings, "cpkmon-api")
                await producer.start()
                self._producer = producer
            return self._producer

    async def send(self, topic: str, key: str, value: bytes | None, read_back: bool = True) -> None:
        """Produce, wait for the broker's ack, then (``read_back``) for the view to read the record back."""
        try:
            producer = await self._get()
            meta = await producer.send_and_wait(topic, value=value, key=key.encode())
        except Exception as exc:
            log.warning("write to %s failed: %s: %s", topic, type(exc).__name__, exc)
            await self._reset()
            raise Problem(503, f"the broker did not take the write: {type(exc).__name__}") from exc
        if not read_back:
            return
        wait = self.settings.api_write_wait_ms / 1000
        if wait > 0 and not await self.view.wait_for(topic, meta.partition, meta.offset, wait):
            log.info("write to %s/%d@%d not yet visible in the view", topic, meta.partition, meta.offset)

    async def command(self, line: str, value: bytes) -> None:
        """Produce a command for ``line`` to the commands topic (key = line, so it lands in the line's
        partition). The topic is created if missing, with the input topics' partition count — never with a
        count of the API's own: with no input topic yet (no worker ever started, no producer ran) there is
        nothing to command, and a guessed count could later disagree with the inputs (503)."""
        topic = self.settings.topic_commands
        if not self._commands_topic_ok:
            try:
                topics = await ensure_topics(self.settings, timeout=5.0, only={topic}, own_count=False)
            except Exception as exc:
                raise Problem(503, f"the broker is not reachable: {type(exc).__name__}") from exc
            if topics.conflict:
                raise Problem(503, f"the topics need attention: {topics.conflict}")
            if topic not in topics.counts:
                raise Problem(
                    503, f"no input topic exists yet, so neither does {topic}: start a worker first"
                )
            self._commands_topic_ok = True
        await self.send(topic, line, value, read_back=False)

    async def alarm_event(self, line: str, value: bytes) -> None:
        """Produce an operator alarm event to ``cpkmon.alarm-events`` (key = line: the partition of the
        line's process events, so the alarm's history has one order) and wait until the view read it back.
        Like the commands topic, the API never creates it with a partition count of its own."""
        topic = self.settings.topic_alarm_events
        if not self._alarm_topic_ok:
            try:
                topics = await ensure_topics(self.settings, timeout=5.0, only={topic}, own_count=False)
            except Exception as exc:
                raise Problem(503, f"the broker is not reachable: {type(exc).__name__}") from exc
            if topic not in topics.counts:
                raise Problem(503, f"{topic} does not exist yet: start a worker first")
            self._alarm_topic_ok = True
        await self.send(topic, line, value)

    async def _reset(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def close(self) -> None:
        await self._reset()
