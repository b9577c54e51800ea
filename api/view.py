"""The API's materialized view of the output topics: line status, alerts, acks, specs and the alarm events
(folded into ISA-18.2 alarm states and their KPIs, :mod:`cpkmon.alerts.alarms`).

The view is a pure function of the topics: every API instance reads them from the beginning with a group-less
consumer (all partitions assigned), so a restarted instance and any number of replicas side by side answer the
same. Nothing is kept on disk and nothing is committed.

Catch-up is judged against the high watermark carried in fetch responses (``consumer.highwater``), never
against ``end_offsets()``: the embedded broker's ListOffsets answers a wrong end offset (SPEC §10), which
would make the view declare itself ready too early and drop the last records.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import heapq
import json
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from cpkmon.alerts.alarm_kpis import AlarmKpis, KpiReport
from cpkmon.alerts.alarms import AlarmBook, Rejection, Transition, load_cause_codes
from cpkmon.alerts.model import ALERT_ADAPTER, AckRecord, LineRow, LineStatus, LineStatusHead, SpecDocument
from cpkmon.api.series import Family, Row, line_rows
from cpkmon.catchup import EMPTY_ROUNDS, EndRounds, reader
from cpkmon.kafka_security import BrokerConnectionError, aiokafka_kwargs, check_broker
from cpkmon.settings import Settings
from cpkmon.topics import ensure_topics

log = logging.getLogger(__name__)

STATUS, ALERTS, ACKS, SPECS, ALARMS = "status", "alerts", "acks", "specs", "alarms"
_MAX_RECORDS = 5000
#: Rejected alarm events remembered by event id, so a write that lost a race (another replica's operator
#: event reached the topic first) can say so once it reads its own event back.
_REJECTIONS_KEPT = 1000


def etag_of(body: bytes) -> str:
    """A strong ETag: a hash of the exact bytes served."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _loads(value: bytes) -> Any:
    """orjson first; the stdlib as a fallback so a document carrying ``Infinity`` (sigma level at DPMO 0)
    still loads rather than being dropped."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)


def line_row(doc: LineStatus | LineStatusHead, line: str | None = None) -> dict[str, Any]:
    """The list row of a status document (``GET /api/v1/lines``, SSE ``status`` events)."""
    return LineRow.of(doc, line).model_dump()


@dataclass(slots=True)
class LineEntry:
    """A line as served: the raw document, its list row and its metric series — not the parsed document (see
    :mod:`cpkmon.api.series` for why)."""

    line: str
    body: bytes  # served as is by GET /api/v1/lines/{line}
    etag: str
    row: dict[str, Any]
    series: dict[Family, list[Row]]

    @property
    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = orjson.loads(self.body)
        return doc


@dataclass(slots=True)
class AlertEntry:
    alert_id: str
    partition: int
    offset: int  # of the FIRST appearance of this alert_id: the cursor is built on it
    timestamp: int  # record timestamp, ms
    line: str | None
    type: str | None
    doc: dict[str, Any]


@dataclass(slots=True)
class SpecEntry:
    line: str
    characteristic: str
    doc: dict[str, Any]


class Subscriber:
    """One SSE client: a bounded alert queue plus the latest status row per line (coalesced).

    The view pushes without ever awaiting, so a slow client cannot stall it. Past ``maxsize`` queued alerts
    the client is marked overflowed and its stream ends; it reconnects with ``Last-Event-ID`` and gets the
    backlog from the topic, so nothing is lost.
    """

    def __init__(self, maxsize: int, line: str | None, cursor: dict[int, int]) -> None:
        self.maxsize = maxsize
        self.line = line
        self.cursor = dict(cursor)
        self.alerts: deque[AlertEntry] = deque()
        self.status: dict[str, dict[str, Any] | None] = {}
        self.acks: list[dict[str, Any]] = []
        self.overflowed = False
        self.wake = asyncio.Event()

    def push_alert(self, entry: AlertEntry) -> None:
        if self.overflowed:
            return
        if len(self.alerts) >= self.maxsize:
            self.overflowed = True
            self.alerts.clear()
        else:
            self.alerts.append(entry)
        self.wake.set()

    def push_status(self, line: str, row: dict[str, Any] | None) -> None:
        if self.line is None or self.line == line:
            self.status[line] = row
            self.wake.set()

    def push_ack(self, ack: dict[str, Any]) -> None:
        if len(self.acks) < self.maxsize:
            self.acks.append(ack)
            self.wake.set()


@dataclass
class ViewStats:
    records: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    duplicate_alerts: int = 0
    reconnects: int = 0


class View:
    """Consumes the status, alert, ack, spec and alarm-event topics into memory; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = {
            settings.topic_line_status: STATUS,
            settings.topic_alerts: ALERTS,
            settings.topic_acks: ACKS,
            settings.topic_specs: SPECS,
            settings.topic_alarm_events: ALARMS,
        }
        self.alerts_topic = settings.topic_alerts
        self.alarm_topic = settings.topic_alarm_events
        # the ISA-18.2 alarm states and KPIs: a fold of cpkmon.alarm-events in offset order per partition
        # (an alarm's events all share its line's partition). Configuration a replica must share with the
        # others: CPKMON_REQUIRE_CAUSE and the cause list (a bad file stops the start-up here).
        self.cause_codes = load_cause_codes(settings.cause_codes_file)
        self.alarm_book = AlarmBook(require_cause=settings.require_cause, cause_codes=self.cause_codes)
        self.alarm_kpis = AlarmKpis()
        self.alarm_clock: float | None = None  # latest event time of a transition seen
        self.alarm_rejections: OrderedDict[str, Rejection] = OrderedDict()
        self.lines: dict[str, LineEntry] = {}
        self.alerts: dict[str, AlertEntry] = {}
        self.alert_counts: Counter[tuple[str, str]] = Counter()
        self.acks: dict[str, dict[str, Any]] = {}
        self.specs: dict[tuple[str, str], SpecEntry] = {}
        self.stats = ViewStats()
        self.version = 0  # bumped on every line change: caches of the line list key on it
        self.ready = False  # sticky: once caught up the view serves, even while a broker hiccups
        self.caught_up = False
        self.connected = False
        # why the view cannot read right now (wrong CA, client certificate, SASL login, unreachable broker):
        # /readyz shows it, so a misconfigured API says so instead of looking merely slow. Never a secret.
        self.broker_error: str | None = None
        self._security = aiokafka_kwargs(settings)
        self._by_partition: dict[int, list[AlertEntry]] = {}
        self._offsets: dict[int, list[int]] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._assigned: list[TopicPartition] = []
        self._started_at = time.monotonic()
        self._caught_up_at: float | None = None
        self._tick = asyncio.Event()
        self._ready_event = asyncio.Event()
        self._end_rounds = EndRounds()
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._list_cache: tuple[int, bytes, str] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start consuming in the background; returns at once (``/readyz`` tells when caught up)."""
        self._tick = asyncio.Event()
        self._ready_event = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="cpkmon-api-view")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in list(self._subscribers):
            sub.overflowed = True
            sub.wake.set()

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready_event.wait(), timeout)
        return self.ready

    @property
    def lag_seconds(self) -> float:
        """0 while caught up; otherwise seconds since the view last saw itself caught up (or since start)."""
        if self.caught_up:
            return 0.0
        since = self._caught_up_at if self._caught_up_at is not None else self._started_at
        return max(0.0, time.monotonic() - since)

    async def wait_for(self, topic: str, partition: int, offset: int, timeout: float) -> bool:
        """Wait until the view has applied ``offset`` of ``topic``/``partition`` (read-your-writes after a
        produce). False on timeout: the write is in Kafka anyway, the view just has not read it back yet."""
        tp = TopicPartition(topic, partition)
        deadline = time.monotonic() + timeout
        while self._positions.get(tp, 0) <= offset:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            tick = self._tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tick.wait(), left)
        return True

    # --- consuming ---------------------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = 0.2
        while True:
            consumer: AIOKafkaConsumer | None = None
            try:
                try:
                    await check_broker(self.settings, timeout=5.0)
                except BrokerConnectionError as exc:
                    if str(exc) != self.broker_error:
                        log.error("view: %s", exc)
                    self.broker_error = str(exc)
                    raise
                await self._ensure_topics()
                consumer = reader(
                    self.settings.bootstrap_servers(),
                    self._security,
                    client_id="cpkmon-api-view",
                    max_partition_fetch_bytes=4 << 20,
                    fetch_max_bytes=16 << 20,
                    request_timeout_ms=15_000,
                )
                await consumer.start()
                self.connected = True
                self.broker_error = None
                delay = 0.2
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.reconnects += 1
                log.warning("view: %s: %s; reconnecting in %.1f s", type(exc).__name__, exc, delay)
            finally:
                self.connected = False
                self.caught_up = False
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        await consumer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _ensure_topics(self) -> None:
        """Create the topics this view reads if they do not exist yet (the API may start before any worker),
        planned as the worker plans them (:mod:`cpkmon.topics`): the partition count of the input topics that
        exist, ``CPKMON_PARTITIONS`` only when none does. The API never creates an input topic.

        Only missing topics are created, so an API without admin rights works once the topics exist.
        """
        outputs = set(self.topics) - {self.alarm_topic}
        topics = await ensure_topics(self.settings, timeout=5.0, only=outputs)
        if topics.conflict:  # the worker refuses to start and says how to fix it; the view still serves
            log.warning("view: %s", topics.conflict)
        elif self.alarm_topic not in topics.counts:
            # co-partitioned with the inputs (key = line), so planned like the commands topic: created only
            # with the input topics' count, never with a count of the API's own. Until it exists the view
            # reads without it and picks it up at a metadata refresh.
            await ensure_topics(self.settings, timeout=5.0, only={self.alarm_topic}, own_count=False)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        await consumer.topics()  # refreshes cluster metadata
        tps: list[TopicPartition] = []
        for topic in self.topics:
            parts = consumer.partitions_for_topic(topic)
            if not parts and topic == self.alarm_topic:
                continue  # not created yet (no worker, no input topic): nothing to read
            if not parts:
                raise LookupError(f"topic {topic} has no metadata yet")
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        return tps

    async def _assign(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        consumer.assign(tps)
        fresh = []
        for tp in tps:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
            else:
                fresh.append(tp)
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        self._assigned = tps

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        await self._assign(consumer, await self._partitions(consumer))
        refresh = self.settings.api_metadata_refresh_ms / 1000
        next_meta = time.monotonic() + refresh
        fetch_ms = self.settings.api_view_fetch_ms
        while True:
            batch = await consumer.getmany(timeout_ms=fetch_ms, max_records=_MAX_RECORDS)
            if self._went_back(consumer, batch):
                log.warning(
                    "view: offsets went backwards (the topics were recreated, e.g. the embedded broker "
                    "restarted and lost them): rebuilding from the beginning"
                )
                self._clear()
                await self._assign(consumer, self._assigned)
                continue
            if batch:
                self._apply(batch)
            await self._end_rounds.round(consumer, batch)
            await self._check_caught_up(consumer)
            tick, self._tick = self._tick, asyncio.Event()
            tick.set()
            if time.monotonic() >= next_meta:
                next_meta = time.monotonic() + refresh
                tps = await self._partitions(consumer)
                if tps != self._assigned:
                    log.info("view: partitions changed, reassigning %d partitions", len(tps))
                    await self._assign(consumer, tps)

    def _went_back(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> bool:
        """True when a partition now ends (or restarts) below what the view already applied: the log it was
        built from is gone, so what it holds is no longer a function of the topics."""
        for tp, records in batch.items():
            if records and records[0].offset < self._positions.get(tp, 0):
                return True
        for tp in self._assigned:
            hw = consumer.highwater(tp)
            if hw is not None and hw < self._positions.get(tp, 0):
                return True
        return False

    def _clear(self) -> None:
        self.lines.clear()
        self.alerts.clear()
        self.alert_counts.clear()
        self.acks.clear()
        self.specs.clear()
        self.alarm_book = AlarmBook(require_cause=self.settings.require_cause, cause_codes=self.cause_codes)
        self.alarm_kpis = AlarmKpis()
        self.alarm_clock = None
        self.alarm_rejections.clear()
        self._by_partition.clear()
        self._offsets.clear()
        self._positions.clear()
        self._list_cache = None
        self.version += 1
        self.ready = False  # the alert feed answers 503 until the rebuilt view caught up again
        self.caught_up = False
        self._ready_event = asyncio.Event()

    async def _check_caught_up(self, consumer: AIOKafkaConsumer) -> None:
        caught_up = True
        for tp in self._assigned:
            hw = consumer.highwater(tp)
            if hw is None:  # no fetch response for it yet
                caught_up = False
                break
            pos = self._positions.get(tp)
            if pos is None or pos < hw:
                pos = await consumer.position(tp)  # an empty or fully-deleted partition has no records to see
                if pos < hw:
                    caught_up = False
                    break
        self.caught_up = caught_up
        if caught_up:
            self._caught_up_at = time.monotonic()
            # the first "ready" also needs cpkmon.catchup's end rounds: a fetch high watermark can lag the
            # log (a size-cut response), and an alarm state folded from part of its history is wrong, not
            # just old. Later, "caught up" (the lag metric) stays the watermark rule: under steady traffic
            # empty rounds are rare.
            if not self.ready and self._end_rounds.streak >= EMPTY_ROUNDS:
                self.ready = True
                self._ready_event.set()
                log.info(
                    "view: caught up in %.2f s: %d lines, %d alerts, %d specs",
                    time.monotonic() - self._started_at,
                    len(self.lines),
                    len(self.alerts),
                    len(self.specs),
                )

    # --- applying records --------------------------------------------------------------------------------
    def _apply(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        latest_status: dict[str, bytes | None] = {}
        new_alerts: list[AlertEntry] = []
        new_acks: list[dict[str, Any]] = []
        for tp, records in batch.items():
            if not records:
                continue
            self._positions[tp] = records[-1].offset + 1
            kind = self.topics.get(tp.topic)
            self.stats.records[kind or tp.topic] += len(records)
            if kind == STATUS:
                for rec in records:  # last writer wins: parse only the newest document per line of the batch
                    key = self._status_key(rec)
                    if key is not None:
                        latest_status[key] = rec.value
            elif kind == ALERTS:
                for rec in records:
                    entry = self._apply_alert(tp.partition, rec)
                    if entry is not None:
                        new_alerts.append(entry)
            elif kind == ACKS:
                for rec in records:
                    ack = self._apply_ack(rec)
                    if ack is not None:
                        new_acks.append(ack)
            elif kind == SPECS:
                for rec in records:
                    self._apply_spec(rec)
            elif kind == ALARMS:
                for rec in records:
                    self._apply_alarm_event(rec)
        changed = [line for line, value in latest_status.items() if self._apply_status(line, value)]
        if self.ready and self._subscribers and (changed or new_alerts or new_acks):
            self._notify(changed, new_alerts, new_acks)

    def _status_key(self, rec: ConsumerRecord[bytes, bytes]) -> str | None:
        if rec.key:
            try:
                return str(rec.key.decode("utf-8"))
            except UnicodeDecodeError:
                self.stats.malformed[STATUS] += 1
                return None
        if rec.value is None:
            return None
        try:
            doc = _loads(rec.value)
        except ValueError:
            self.stats.malformed[STATUS] += 1
            return None
        line = doc.get("line") if isinstance(doc, dict) else None
        if not isinstance(line, str):
            self.stats.malformed[STATUS] += 1
            return None
        return line

    def _apply_status(self, line: str, value: bytes | None) -> bool:
        """True when the served document of ``line`` changed."""
        if value is None:
            if self.lines.pop(line, None) is None:
                return False
            self.version += 1
            return True
        old = self.lines.get(line)
        if old is not None and old.body == value:
            return False
        body = value
        if b"Infinity" in value or b"NaN" in value:  # not JSON: serve valid JSON (orjson writes null)
            try:
                body = orjson.dumps(json.loads(value))
            except ValueError:
                self.stats.malformed[STATUS] += 1
                return False
        try:
            # the document model, validated straight from the bytes: only the fields the API reads (its
            # projection LineStatusHead), faster than decoding the whole document
            head = LineStatusHead.model_validate_json(body)
        except ValidationError:
            self.stats.malformed[STATUS] += 1
            return False
        self.lines[line] = LineEntry(line, body, etag_of(body), line_row(head, line), line_rows(head, line))
        self.version += 1
        return True

    def _apply_alert(self, partition: int, rec: ConsumerRecord[bytes, bytes]) -> AlertEntry | None:
        if rec.value is None:
            return None
        try:
            doc = _loads(rec.value)
        except ValueError:
            self.stats.malformed[ALERTS] += 1
            return None
        try:
            alert = ALERT_ADAPTER.validate_python(doc)  # the document model (a union on ``type``)
        except ValidationError:
            self.stats.malformed[ALERTS] += 1
            return None
        alert_id, line, kind = alert.alert_id, alert.line, alert.type
        if not alert_id:
            self.stats.malformed[ALERTS] += 1
            return None
        seen = self.alerts.get(alert_id)
        if seen is not None:  # a worker replay republished it: shown once
            self.stats.duplicate_alerts += 1
            if partition < seen.partition:
                self._relocate(seen, partition, rec)
            return None
        entry = AlertEntry(alert_id, partition, rec.offset, int(rec.timestamp or 0), line, kind, doc)
        self.alerts[alert_id] = entry
        self._by_partition.setdefault(partition, []).append(entry)
        self._offsets.setdefault(partition, []).append(rec.offset)
        self.alert_counts[(line, kind)] += 1
        return entry

    def _relocate(self, entry: AlertEntry, partition: int, rec: ConsumerRecord[bytes, bytes]) -> None:
        """An alert's place is its first offset in the LOWEST partition it appears in. Within a partition the
        first offset is the same for every reader; across partitions (a duplicate keyed differently, e.g.
        after a partition-count change) the order readers see them in is not, so the view settles on the
        lowest partition. It only happens while catching up (the alert feed answers 503 until then), so every
        replica converges on the same cursor positions before it serves a page."""
        entries, offsets = self._by_partition[entry.partition], self._offsets[entry.partition]
        i = bisect.bisect_left(offsets, entry.offset)
        del entries[i], offsets[i]
        entry.partition, entry.offset, entry.timestamp = partition, rec.offset, int(rec.timestamp or 0)
        offs = self._offsets.setdefault(partition, [])
        j = bisect.bisect_left(offs, rec.offset)
        offs.insert(j, rec.offset)
        self._by_partition.setdefault(partition, []).insert(j, entry)

    def _apply_ack(self, rec: ConsumerRecord[bytes, bytes]) -> dict[str, Any] | None:
        key = rec.key.decode("utf-8", "replace") if rec.key else None
        if rec.value is None:
            if key is not None:
                self.acks.pop(key, None)
            return None
        try:
            doc = _loads(rec.value)
        except ValueError:
            self.stats.malformed[ACKS] += 1
            return None
        if isinstance(doc, dict) and "alert_id" not in doc and key:
            doc["alert_id"] = key  # an ack record names its alert by its key too
        try:
            record = AckRecord.model_validate(doc)
        except ValidationError:
            self.stats.malformed[ACKS] += 1
            return None
        if not record.alert_id:
            self.stats.malformed[ACKS] += 1
            return None
        ack = {"by": record.by, "at": record.at, "comment": record.comment}
        self.acks[record.alert_id] = ack  # last writer wins (one key, one partition: a total order)
        return {"alert_id": record.alert_id, **ack}

    def _apply_spec(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        key = rec.key.decode("utf-8", "replace") if rec.key else ""
        line, _, characteristic = key.partition("/")
        if rec.value is None:
            self.specs.pop((line, characteristic), None)
            return
        try:
            doc = _loads(rec.value)
        except ValueError:
            self.stats.malformed[SPECS] += 1
            return
        if isinstance(doc, dict) and "command" in doc:  # an old control record (rebaseline), not a spec
            return
        if isinstance(doc, dict):  # the key names the spec when the body does not
            doc.setdefault("line", line)
            doc.setdefault("characteristic", characteristic)
        try:
            spec = SpecDocument.model_validate(doc)  # what the worker accepts (it dead-letters the rest)
        except ValidationError:
            self.stats.malformed[SPECS] += 1
            return
        self.specs[(spec.line, spec.characteristic)] = SpecEntry(spec.line, spec.characteristic, doc)

    def _apply_alarm_event(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        """Fold one alarm event into the book and the KPIs. A rejected event changes nothing (every replica
        rejects it alike) and is remembered by id for the write that may be waiting for it."""
        if rec.value is None:
            return
        try:
            doc = _loads(rec.value)
        except ValueError:
            self.stats.malformed[ALARMS] += 1
            return
        if not isinstance(doc, dict):
            self.stats.malformed[ALARMS] += 1
            return
        out = self.alarm_book.apply(doc)
        if isinstance(out, Rejection):
            if out.reason in ("invalid_event", "alarm_id_mismatch", "unknown_kind"):
                self.stats.malformed[ALARMS] += 1
            if out.event_id is not None:
                self.alarm_rejections[out.event_id] = out
                while len(self.alarm_rejections) > _REJECTIONS_KEPT:
                    self.alarm_rejections.popitem(last=False)
            return
        if isinstance(out, Transition):
            self.alarm_kpis.observe(out)
            if self.alarm_clock is None or out.at > self.alarm_clock:
                self.alarm_clock = out.at

    def alarm_now(self) -> float:
        """The time alarm states and KPIs are evaluated at: the wall clock, or the latest event time seen
        when that is ahead (a simulator on a compressed clock): a KPI report is never dated before the last
        transition it counts."""
        now = time.time()
        return now if self.alarm_clock is None else max(now, self.alarm_clock)

    def alarm_report(self, now: float | None = None) -> KpiReport:
        """The alarm KPIs at ``now`` (default :meth:`alarm_now`)."""
        return self.alarm_kpis.report(self.alarm_now() if now is None else now)

    # --- notifying SSE clients ---------------------------------------------------------------------------
    def subscribe(
        self, line: str | None, since: dict[int, int] | None
    ) -> tuple[Subscriber, list[AlertEntry]]:
        """Register an SSE client. With ``since`` (a cursor, from Last-Event-ID) the alerts after it come back
        as a backlog; registration and backlog happen without an await between, so nothing falls in a gap."""
        backlog: list[AlertEntry] = []
        if since is None:
            cursor = self.end_cursor()
        else:
            cursor = dict(since)
            while True:
                page, cursor = self._page(cursor, line, 10_000)
                backlog.extend(page)
                if len(page) < 10_000:
                    break
            end = self.end_cursor()
            cursor = {**end, **{p: max(o, end.get(p, -1)) for p, o in cursor.items()}}
        sub = Subscriber(self.settings.api_sse_queue, line, cursor)
        self._subscribers.add(sub)
        return sub, backlog

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def _notify(self, lines: list[str], alerts: list[AlertEntry], acks: list[dict[str, Any]]) -> None:
        for sub in self._subscribers:
            for entry in alerts:
                if sub.line is None or entry.line == sub.line:
                    sub.push_alert(entry)
                else:
                    sub.cursor[entry.partition] = max(sub.cursor.get(entry.partition, -1), entry.offset)
            for line in lines:
                entry_l = self.lines.get(line)
                sub.push_status(line, entry_l.row if entry_l is not None else None)
            for ack in acks:
                sub.push_ack(ack)

    # --- queries
    # ---------------------------------------------------------------------------------------------
    def end_cursor(self) -> dict[int, int]:
        """The cursor after every alert the view holds."""
        return {p: offs[-1] for p, offs in self._offsets.items() if offs}

    def alert_item(self, entry: AlertEntry) -> dict[str, Any]:
        return {**entry.doc, "ack": self.acks.get(entry.alert_id)}

    def _page(
        self, cursor: dict[int, int], line: str | None, limit: int
    ) -> tuple[list[AlertEntry], dict[int, int]]:
        """Alerts after ``cursor``: a k-way merge of the partitions (each in offset order) by (record
        timestamp, partition, offset). Taking a prefix of every partition keeps the cursor exact even when
        timestamps are not monotonic within a partition."""
        heap: list[tuple[int, int, int, int]] = []
        for part, offsets in self._offsets.items():
            i = bisect.bisect_right(offsets, cursor.get(part, -1))
            if i < len(offsets):
                e = self._by_partition[part][i]
                heap.append((e.timestamp, part, e.offset, i))
        heapq.heapify(heap)
        nxt = dict(cursor)
        out: list[AlertEntry] = []
        while heap and len(out) < limit:
            _, part, offset, i = heapq.heappop(heap)
            entries = self._by_partition[part]
            entry = entries[i]
            nxt[part] = offset
            if line is None or entry.line == line:
                out.append(entry)
            if i + 1 < len(entries):
                e = entries[i + 1]
                heapq.heappush(heap, (e.timestamp, part, e.offset, i + 1))
        return out, nxt

    def alerts_page(
        self, cursor: dict[int, int], line: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], dict[int, int]]:
        entries, nxt = self._page(cursor, line, limit)
        return [self.alert_item(e) for e in entries], nxt

    def rows(self) -> Iterable[dict[str, Any]]:
        for line in sorted(self.lines):
            yield self.lines[line].row

    def list_body(self) -> tuple[bytes, str]:
        """The ``GET /api/v1/lines`` body and its ETag, cached until a line changes."""
        cache = self._list_cache
        if cache is not None and cache[0] == self.version:
            return cache[1], cache[2]
        body = orjson.dumps(list(self.rows()))
        tag = etag_of(body)
        self._list_cache = (self.version, body, tag)
        return body, tag
