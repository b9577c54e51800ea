"""``cpkmon notify``: deliver alarm transitions from ``cpkmon.alarm-events`` to webhooks, at least once.

How a record travels:

1. The consumer (group ``cpkmon-notify``, manual commits) reads records in offset order. Each record is one
   alarm event, key = line. The notifier remembers each alarm's severity from its ``activate`` events, for
   routing only (other events do not carry it), and asks every endpoint whether it wants the event
   (:meth:`Endpoint.wants`).
2. Each wanted (event, endpoint) pair goes to the queue of its *lane*: one asyncio task per
   (partition, line, endpoint). A lane delivers strictly one message at a time, so an endpoint sees the
   events of an alarm — of a whole line — in the order they were written; lanes are independent, so a dead
   Slack webhook never delays the MES endpoint or another line.
3. Delivery: up to ``retry.max_attempts`` attempts with exponential backoff and full jitter (bounded by
   ``retry.max_s``, ``Retry-After`` honoured). 2xx is success (DingTalk and WeCom answer 200 with an
   ``errcode``: 0 is success, their "too fast" codes are retried); 408, 425, 429, 5xx, timeouts and
   connection errors are retried; any other 4xx is *rejected* at once (a payload or a credential the
   receiver refuses will not be accepted on attempt 8 either).
4. Rate limit, per lane: the first ``rate_limit.per_line`` messages of a ``window_s`` window go out one by
   one; the rest of the window are held and sent as **one summary** when the window ends (by the next event
   of the lane or the flush timer, whichever comes first), so a flood of 200 alarms on a line is 10 messages
   and a summary per minute, not 200 pages.
5. Offsets: a record is *done* when every lane it went to has finished with it — delivered, included in a
   delivered summary, or **failed after its bounded retry budget** (``cpkmon_notify_deliveries_total
   {outcome="failed"|"rejected"}`` and an ERROR log line with the event id and endpoint). Every
   ``CPKMON_NOTIFY_COMMIT_INTERVAL_MS`` the notifier commits, per partition, the offset below which every
   record is done. Why give up after a budget instead of retrying forever: one endpoint down for a day would
   otherwise hold every line's commit of its partition and, through the pending-record bound, stop the other
   endpoints too; the alarm itself stays visible in the API and the dashboard, and the failure is counted
   and alerted on. A ``kill -9`` therefore re-delivers exactly the records past the last commit — with the
   same ``Idempotency-Key`` and the same bytes, so the receiver deduplicates.

Nothing here logs a secret or a URL's path or query: endpoints are named by ``name`` and ``https://host``, and
:class:`RedactingFormatter` scrubs every registered secret from every log line, library messages included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cpkmon.kafka_security import aiokafka_kwargs
from cpkmon.notify.config import REDACT, Endpoint, NotifyConfig
from cpkmon.notify.formats import Message, event_message, payload, request, summary_message
from cpkmon.settings import Settings

log = logging.getLogger("cpkmon.notify")

GROUP = "cpkmon-notify"
MAX_PENDING = 10_000  # records read but not done; past it the consumer pauses (memory bound)
_DINGTALK_RETRY = {130101}  # "send too fast" (20 messages per minute per robot)
_WECOM_RETRY = {45009, -1}  # API frequency limit; system busy
_RETRY_STATUS = {408, 425, 429}


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then removes every secret :data:`cpkmon.notify.config.REDACT` knows of — the
    message, its arguments and any traceback alike."""

    def format(self, record: logging.LogRecord) -> str:
        return REDACT.scrub(super().format(record))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    names = {"crit": "CRITICAL", "warn": "WARNING"}
    root.setLevel(names.get(level.lower(), level.upper()))


class Metrics:
    """The notifier's Prometheus metrics, on its own registry (served on ``CPKMON_NOTIFY_PORT``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.deliveries = Counter(
            "cpkmon_notify_deliveries",
            "Messages by endpoint and outcome: delivered, failed (retry budget exhausted), rejected (4xx)",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "cpkmon_notify_retries", "Attempts after a failed attempt", ["endpoint"], registry=registry
        )
        self.latency = Histogram(
            "cpkmon_notify_delivery_seconds",
            "From the first attempt to the outcome of a message, retries and backoff included",
            ["endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=registry,
        )
        self.summaries = Counter(
            "cpkmon_notify_rate_limited_summaries",
            "Summary messages sent instead of individual ones during a flood",
            ["endpoint", "line"],
            registry=registry,
        )
        self.held = Counter(
            "cpkmon_notify_rate_limited_events",
            "Events that went out inside a summary instead of on their own",
            ["endpoint", "line"],
            registry=registry,
        )
        self.skipped = Counter(
            "cpkmon_notify_skipped_records",
            "Records that are not alarm events (unparseable, missing fields)",
            ["reason"],
            registry=registry,
        )
        self.pending = Gauge(
            "cpkmon_notify_pending_records", "Records read and not yet done", registry=registry
        )
        self.committed = Gauge(
            "cpkmon_notify_committed_offset",
            "The last offset committed per partition: everything below it is done with",
            ["partition"],
            registry=registry,
        )


# ------------------------------------------------------------------------------------------ offsets
class OffsetTracker:
    """One partition's records in flight: each has a count of lanes still working on it.

    :meth:`committable` is the offset a commit may name: the lowest offset not yet done, or one past the
    highest offset seen when everything is done. Offsets arrive in increasing order (one consumer, one
    partition), so a deque suffices."""

    def __init__(self) -> None:
        self._order: deque[int] = deque()
        self._remaining: dict[int, int] = {}
        self._next = -1  # one past the highest offset added; -1: nothing added yet

    def add(self, offset: int, lanes: int) -> None:
        self._next = offset + 1
        if lanes > 0:
            self._order.append(offset)
            self._remaining[offset] = lanes

    def done(self, offset: int) -> None:
        left = self._remaining.get(offset)
        if left is None:
            return
        if left <= 1:
            del self._remaining[offset]
        else:
            self._remaining[offset] = left - 1

    @property
    def pending(self) -> int:
        return len(self._remaining)

    def committable(self) -> int | None:
        while self._order and self._order[0] not in self._remaining:
            self._order.popleft()
        if self._order:
            return self._order[0]
        return self._next if self._next >= 0 else None


# ------------------------------------------------------------------------------------------ lanes
@dataclass(slots=True)
class Item:
    """One event for one lane; ``done`` releases the record's share in its partition's tracker."""

    event: dict[str, Any]
    done: Callable[[], None]


@dataclass(slots=True)
class _Flush:
    """Timer tick: close the lane's window if it has ended."""


@dataclass
class Lane:
    """Deliveries of one (partition, line, endpoint), one at a time, rate limited."""

    key: tuple[TopicPartition, str, str]
    endpoint: Endpoint
    queue: asyncio.Queue[Item | _Flush] = field(default_factory=asyncio.Queue)
    window_start: float | None = None
    sent: int = 0
    held: list[Item] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Notifier:
    """The consumer, the lanes and the committer. ``clock`` (monotonic seconds) drives the rate-limit
    windows; tests pass their own."""

    def __init__(
        self,
        settings: Settings,
        config: NotifyConfig,
        registry: CollectorRegistry | None = None,
        *,
        group: str = GROUP,
        start: str = "earliest",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.config = config
        self.metrics = Metrics(registry or CollectorRegistry())
        self.group = group
        self.start_from = start
        self.clock = clock
        self.trackers: dict[TopicPartition, OffsetTracker] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.lanes: dict[tuple[TopicPartition, str, str], Lane] = {}
        self.severity: dict[str, str] = {}  # alarm_id → severity of its last activation
        self.consumer: AIOKafkaConsumer | None = None
        self.session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self._random = random.Random()

    # ------------------------------------------------------------------ consumer side
    def dispatch(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        """Hand one record to the lanes that want it (or mark it done at once)."""
        tracker = self.trackers.setdefault(tp, OffsetTracker())
        event = _parse(value)
        if isinstance(event, str):
            self.metrics.skipped.labels(event).inc()
            log.warning("%s offset %d: not an alarm event (%s): skipped", tp, offset, event)
            tracker.add(offset, 0)
            return
        alarm_id = str(event.get("alarm_id", ""))
        if event.get("kind") == "activate" and isinstance(event.get("severity"), str):
            self.severity[alarm_id] = event["severity"]
        severity = self.severity.get(alarm_id)
        targets = [ep for ep in self.config.endpoints if ep.wants(event, severity)]
        tracker.add(offset, len(targets))
        line = str(event["line"])
        for ep in targets:
            lane = self._lane(tp, line, ep)
            lane.queue.put_nowait(Item(event, lambda: tracker.done(offset)))

    def _lane(self, tp: TopicPartition, line: str, ep: Endpoint) -> Lane:
        key = (tp, line, ep.name)
        lane = self.lanes.get(key)
        if lane is None:
            lane = self.lanes[key] = Lane(key, ep)
            lane.task = asyncio.create_task(
                self._run_lane(lane), name=f"notify {tp.partition} {line} {ep.name}"
            )
        return lane

    @property
    def pending(self) -> int:
        return sum(t.pending for t in self.trackers.values())

    # ------------------------------------------------------------------ lanes
    async def _run_lane(self, lane: Lane) -> None:
        limit = self.config.rate_limit
        while True:
            item = await lane.queue.get()
            now = self.clock()
            if lane.window_start is not None and now - lane.window_start >= limit.window_s:
                await self._flush(lane)
                lane.window_start, lane.sent = None, 0
            if isinstance(item, _Flush):
                continue
            if lane.window_start is None:
                lane.window_start = now
            if lane.sent < limit.per_line:
                lane.sent += 1
                try:
                    msg = event_message(item.event, lane.endpoint)
                    await self.deliver(lane.endpoint, msg)
                except Exception:  # a bug must not stop the lane (and with it the partition's commits)
                    self.metrics.deliveries.labels(lane.endpoint.name, "failed").inc()
                    log.exception(
                        "%s: delivering event %s failed", lane.endpoint.name, item.event.get("event_id")
                    )
                item.done()
            else:
                lane.held.append(item)
                self.metrics.held.labels(lane.endpoint.name, lane.key[1]).inc()

    async def _flush(self, lane: Lane) -> None:
        held, lane.held = lane.held, []
        if not held:
            return
        line = lane.key[1]
        log.info(
            "%s %s: %d events held by the rate limit, sending one summary",
            lane.endpoint.name,
            line,
            len(held),
        )
        try:
            window = self.config.rate_limit.window_s
            await self.deliver(
                lane.endpoint, summary_message(line, [i.event for i in held], window, lane.endpoint)
            )
        except Exception:  # as in _run_lane: a bug must not stop the lane
            self.metrics.deliveries.labels(lane.endpoint.name, "failed").inc()
            log.exception("%s %s: sending the summary failed", lane.endpoint.name, line)
        self.metrics.summaries.labels(lane.endpoint.name, line).inc()
        for item in held:
            item.done()

    async def _ticker(self) -> None:
        """Close ended windows of idle lanes, so a held summary does not wait for the next event."""
        period = min(1.0, self.config.rate_limit.window_s / 4)
        while True:
            await asyncio.sleep(period)
            now = self.clock()
            for lane in list(self.lanes.values()):
                ended = (
                    lane.window_start is not None
                    and now - lane.window_start >= self.config.rate_limit.window_s
                )
                if lane.held and ended and lane.queue.empty():
                    lane.queue.put_nowait(_Flush())

    # ------------------------------------------------------------------ delivery
    async def deliver(self, ep: Endpoint, msg: Message) -> str:
        """Deliver ``msg`` to ``ep`` within the retry budget; returns delivered | failed | rejected."""
        assert self.session is not None
        policy = self.config.retry
        body = payload(msg, ep)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout(ep))
        started = time.monotonic()
        outcome, why = "failed", ""
        for attempt in range(1, policy.max_attempts + 1):
            req = request(msg, ep, body, int(time.time() * 1000))
            retry_after: float | None = None
            try:
                async with self.session.post(
                    req.url, data=req.body, headers=req.headers, timeout=timeout
                ) as resp:
                    answer = await resp.content.read(64 * 1024)
                    verdict, why = _judge(ep.format, resp.status, answer)
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                verdict, why = "retry", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if verdict == "ok":
                outcome = "delivered"
                break
            if verdict == "reject":
                outcome = "rejected"
                break
            if attempt == policy.max_attempts:
                break
            delay = policy.backoff(attempt, self._random.random())
            if retry_after is not None:
                delay = max(delay, min(retry_after, policy.max_s))
            self.metrics.retries.labels(ep.name).inc()
            log.info(
                "%s (%s) %s: attempt %d failed (%s); retrying in %.2f s",
                ep.name,
                ep.where(),
                msg.idempotency_key,
                attempt,
                why,
                delay,
            )
            await asyncio.sleep(delay)
        self.metrics.deliveries.labels(ep.name, outcome).inc()
        self.metrics.latency.labels(ep.name).observe(time.monotonic() - started)
        if outcome == "delivered":
            log.debug("%s %s: delivered", ep.name, msg.idempotency_key)
        else:
            log.error(
                "%s (%s) %s: %s after %d attempt(s) (%s); not retried further",
                ep.name,
                ep.where(),
                msg.idempotency_key,
                outcome,
                attempt,
                why,
            )
        return outcome

    # ------------------------------------------------------------------ commits and rebalances
    async def commit(self, tps: list[TopicPartition] | None = None) -> None:
        assert self.consumer is not None
        offsets: dict[TopicPartition, int] = {}
        for tp in tps if tps is not None else list(self.trackers):
            tracker = self.trackers.get(tp)
            off = tracker.committable() if tracker else None
            if off is not None and off > self.committed.get(tp, -1):
                offsets[tp] = off
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:  # a rebalance in progress: the next round (or the new owner) commits
            log.warning("offset commit failed (%s); retried on the next round", exc)
            return
        for tp, off in offsets.items():
            self.metrics.committed.labels(str(tp.partition)).set(off)
            self.committed[tp] = off

    async def _committer(self) -> None:
        period = self.settings.notify_commit_interval_ms / 1000
        while True:
            await asyncio.sleep(period)
            await self.commit()
            self.metrics.pending.set(self.pending)

    async def revoke(self, revoked: set[TopicPartition]) -> None:
        """Before the group takes partitions away: commit what is done, stop their lanes. Records still in
        a lane are re-delivered by the next owner (same idempotency keys)."""
        with contextlib.suppress(Exception):
            await self.commit([tp for tp in revoked if tp in self.trackers])
        for key in [k for k in self.lanes if k[0] in revoked]:
            lane = self.lanes.pop(key)
            if lane.task is not None:
                lane.task.cancel()
        for tp in revoked:
            self.trackers.pop(tp, None)
            self.committed.pop(tp, None)

    # ------------------------------------------------------------------ main loop
    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        settings = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers(),
            group_id=self.group,
            client_id=f"{self.group}-notify",
            enable_auto_commit=False,
            auto_offset_reset=self.start_from,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            fetch_max_wait_ms=100,
            metadata_max_age_ms=30_000,  # a topic created after the start is noticed within 30 s
            **aiokafka_kwargs(settings),
        )
        notifier = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
                await notifier.revoke(set(revoked))

            async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
                log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))

        self.consumer.subscribe([settings.topic_alarm_events], listener=_Listener())
        connector = aiohttp.TCPConnector(limit=100)
        self.session = aiohttp.ClientSession(connector=connector, trust_env=True)
        helpers: list[asyncio.Task[None]] = []
        try:
            await self.consumer.start()
            helpers = [asyncio.create_task(self._committer()), asyncio.create_task(self._ticker())]
            log.info(
                "notifying %d endpoint(s) of %s as group %s: %s",
                len(self.config.endpoints),
                settings.topic_alarm_events,
                self.group,
                ", ".join(f"{ep.name} ({ep.format}, {ep.where()})" for ep in self.config.endpoints),
            )
            paused = False
            while not self._stopping.is_set():
                if self.pending >= MAX_PENDING and not paused:
                    self.consumer.pause(*self.consumer.assignment())
                    paused = True
                elif paused and self.pending < MAX_PENDING // 2:
                    self.consumer.resume(*self.consumer.assignment())
                    paused = False
                batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
                for tp, records in batch.items():
                    for record in records:
                        self.dispatch(tp, record.offset, record.value)
        finally:
            for task in helpers + [lane.task for lane in self.lanes.values() if lane.task is not None]:
                task.cancel()
            with contextlib.suppress(Exception):
                await self.commit()
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            await self.session.close()


def _parse(value: bytes | None) -> dict[str, Any] | str:
    """The event document, or why the record is not one."""
    if value is None:
        return "empty"
    try:
        doc = json.loads(value)
    except ValueError:
        return "not_json"
    if not isinstance(doc, dict):
        return "not_an_object"
    for key in ("event_id", "line", "kind"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            return f"missing_{key}"
    return doc


def _judge(fmt: str, status: int, body: bytes) -> tuple[str, str]:
    """(ok | retry | reject, why) for one HTTP answer."""
    if 200 <= status < 300:
        if fmt in ("dingtalk", "wecom"):
            errcode = _errcode(body)
            if errcode not in (None, 0):
                retry = _DINGTALK_RETRY if fmt == "dingtalk" else _WECOM_RETRY
                return ("retry" if errcode in retry else "reject"), f"HTTP {status}, errcode {errcode}"
        return "ok", f"HTTP {status}"
    if status >= 500 or status in _RETRY_STATUS:
        return "retry", f"HTTP {status}"
    return "reject", f"HTTP {status}"


def _errcode(body: bytes) -> int | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    code = doc.get("errcode") if isinstance(doc, Mapping) else None
    return code if isinstance(code, int) else None


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is rare for webhooks and ignored)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
