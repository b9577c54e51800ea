"""The worker's ingest loop: consume input partitions in batches, apply, publish, checkpoint.

Why not one Faust agent per topic: SPEC §10 measured Faust's per-message stream path at ≈ 3.6 % of the raw
consume-and-decode ceiling on this machine (``Consumer._drain_messages`` awaits several tasks per message),
and Faust tables restore through ListOffsets end offsets, which are wrong on the embedded broker. So the
Faust app (:mod:`cpkmon.stream.app`) hosts this loop as a service: an aiokafka group consumer with the
*range* assignor (co-partitioned input topics land on the same worker), ``getmany`` batches, and our own
checkpoints (:mod:`cpkmon.stream.checkpoint`).

The worker is a thin shell around one :class:`~cpkmon.stream.machine.PartitionMachine` per assigned
partition and never touches their internals: poll → apply (each partition's fetched topics merged by
timestamp, :func:`~cpkmon.stream.machine.merge_topics`; the machine returns its effects; a spec hold is
resolved here by waiting for the spec follower to reach the end of the specs topic, then releasing) →
publish alerts, alarm events, the lines' audit records (``cpkmon.audit``, key = chain), dead letters and
re-keyed records and wait for their acks → publish the status
documents the machines say are due (not waiting for their acks) → every ``checkpoint_interval_ms`` write the
checkpoint records the machines return (line states, then the partition record; alarm events and audit records
a spec deletion produced in between are published and acknowledged first) → commit. A crash anywhere replays
from the last partition record: outputs may be published again (alerts byte-identical with the same id, audit
records byte-identical with the same seq and hash, status last-writer-wins), state effects never twice.
Metrics and health read :meth:`Worker.snapshot`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from cpkmon import compiled_core
from cpkmon.capability.options import Options
from cpkmon.catchup import EndRounds, read_to_end, reader
from cpkmon.kafka_security import BrokerConnectionError, aiokafka_kwargs, check_broker
from cpkmon.settings import Settings, core_options
from cpkmon.stream import checkpoint
from cpkmon.stream.events import Kind
from cpkmon.stream.machine import Effects, PartitionMachine, Snapshot, merge_topics
from cpkmon.stream.metrics import WorkerMetrics
from cpkmon.stream.specs import SpecRegistry, load_specs_file, spec_key
from cpkmon.topics import TopicConflict, ensure_topics

log = logging.getLogger("cpkmon.worker")

#: whether the machines apply a fetch's measurements per line in batches (``LineState.measurements``) or one
#: by one (``LineState.measurement``) — identical documents either way (the batch-split property tests). The
#: faster one depends on the core (``python bench/pipeline.py --skip-latency``, 2026-12-01, values/s, two runs
#: each): pure Python, batches win (single-value 66 482–67 524 vs 58 548–60 091; per-part 104 415–106 021
#: vs 98 465–100 922); compiled, one by one wins (91 991/89 393 vs 76 844/79 168; 183 703/186 732 vs
#: 133 254/141 617): there the closes are C and the batch path's planning is the overhead.
BATCH_PATH = not compiled_core()
GROUP_ID = "cpkmon-worker"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.worker.on_revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.worker.on_assigned({tp.partition for tp in assigned})


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    """What metrics and health read of a worker: its machines' snapshots and the consumer lag."""

    machines: dict[int, Snapshot]
    lag: dict[tuple[str, int], int]

    @property
    def lines(self) -> int:
        return sum(m.lines for m in self.machines.values())


class Worker:
    """One cpkmon worker process (several may run: they split the partitions)."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.options: Options = core_options(settings)
        self.bootstrap = settings.bootstrap_servers()
        self.security = aiokafka_kwargs(settings)  # TLS/SASL for every client of this worker
        self.kinds: dict[str, Kind] = {
            settings.topic_measurements: "measurement",
            settings.topic_inspections: "inspection",
            settings.topic_quality_costs: "quality_cost",
        }
        # the topics the group consumes: the inputs and the commands topic, all co-partitioned by line
        self.inputs = [*self.kinds, settings.topic_commands]
        self.topic_rank = {t: i for i, t in enumerate(self.inputs)}  # tie-break of merge_topics
        self.failure: BaseException | None = None  # fatal (e.g. a checkpoint of another partition count)
        self.specs = SpecRegistry(settings.subgroup_size)
        self.out = Effects()  # effects applied but not yet published
        self.machines: dict[int, PartitionMachine] = {}
        self.partitions = settings.partitions
        self.metrics = metrics or WorkerMetrics()
        self.metrics.bind(self.snapshot)
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.spec_consumer: AIOKafkaConsumer | None = None
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self._status_inflight: list[asyncio.Future[Any]] = []  # status sends not yet acknowledged
        self.last_checkpoint = time.monotonic()
        self.first_event_at: float | None = None
        self.started_at = time.monotonic()
        self._spec_task: asyncio.Task[None] | None = None
        self._spec_end = EndRounds()  # end rounds of the spec follower (the spec barrier waits for two)

    # -------------------------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        # A wrong CA, client certificate or password ends the worker here with one clear line (the clients
        # below would report "Unable to bootstrap" or, once past bootstrap, retry forever).
        try:
            await check_broker(self.settings)
        except BrokerConnectionError as exc:
            log.error("%s", exc)
            raise
        # Missing topics take the existing input topics' count (producers may have created them first);
        # input topics that disagree stop the worker here, before anything is written (TopicConflict).
        topics = await ensure_topics(self.settings)
        self.partitions = topics.check()
        needed = [*self.inputs, self.settings.topic_checkpoints, self.settings.topic_audit]
        missing = [t for t in needed if t not in topics.counts]
        if missing:
            raise TopicConflict(f"topics {missing} do not exist and could not be created")
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            **self.security,
            acks="all",
            linger_ms=5,
            max_request_size=max(self.settings.max_message_bytes * 2, 8 << 20),
        )
        await self.producer.start()
        # The group join (half the session timeout on the embedded broker) runs in the background from
        # consumer.start(); the specs are read meanwhile. Nothing is applied before run(), after both.
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            **self.security,
            group_id=GROUP_ID,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
            rebalance_timeout_ms=max(self.settings.session_timeout_ms, 10_000),
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=32 << 20,
            max_poll_records=5_000,  # bounds one batch's CPU time, keeping the loop responsive
            fetch_max_wait_ms=50,
        )
        self.consumer.subscribe(list(self.inputs), listener=_Rebalance(self))
        await self.consumer.start()
        await self._load_specs()
        self._spec_task = asyncio.create_task(self._follow_specs(), name="cpkmon-specs")

    async def stop(self) -> None:
        self.stopping.set()
        if self._spec_task:
            self._spec_task.cancel()
        if self.consumer is not None:
            async with self.lock:
                await self._flush_outputs()
                await self._publish_status(force=True)
                await self._checkpoint(set(self.machines))
            await self.consumer.stop()
        if self.spec_consumer is not None:
            await self.spec_consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def run(self) -> None:
        """The ingest loop; returns when :meth:`stop` is called."""
        assert self.consumer is not None
        interval = self.settings.status_interval_ms / 1000.0
        while not self.stopping.is_set():
            batch = await self.consumer.getmany(timeout_ms=min(50, max(5, int(interval * 500))))
            async with self.lock:
                if batch:
                    await self._apply(batch)
                await self._flush_outputs()
                await self._publish_status()
                if (time.monotonic() - self.last_checkpoint) * 1000 >= self.settings.checkpoint_interval_ms:
                    await self._checkpoint(set(self.machines))
        if self.failure is not None:
            raise self.failure

    async def _apply(self, batch: dict[TopicPartition, list[Any]]) -> None:
        now = time.time()
        fetched: dict[int, list[list[Any]]] = {}  # partition → its topics' records (each in offset order)
        for tp, records in batch.items():
            if records:
                fetched.setdefault(tp.partition, []).append(records)
                self.metrics.observe_latency(now - records[-1].timestamp / 1000.0)
        for p, streams in sorted(fetched.items()):
            machine = self.machines.get(p)
            if machine is None:
                log.warning("records of unassigned partition %d ignored (revoked during the fetch)", p)
                continue
            effects = machine.apply(merge_topics(streams, self.topic_rank))
            while effects.held is not None:
                # a record names a characteristic without a spec: read the specs topic to its end, then let
                # the machine hand it in again; a spec still missing then is dead-lettered (no_spec)
                self.out.extend(effects)
                await self._specs_caught_up()
                effects = machine.release()
            self.out.extend(effects)
        if self.first_event_at is None and any(self.out.counts.values()):
            self.first_event_at = time.monotonic()

    # ---------------------------------------------------------------------------------------------- output
    async def _flush_outputs(self) -> None:
        out = self.out
        if not out:
            return
        assert self.producer is not None
        futures = []
        send = self.producer.send
        for doc in out.alerts:
            futures.append(
                await send(self.settings.topic_alerts, orjson.dumps(doc), key=doc["line"].encode())
            )
        for doc in out.alarm_events:  # key = line: one partition per line keeps each alarm's history ordered
            futures.append(
                await send(self.settings.topic_alarm_events, orjson.dumps(doc), key=doc["line"].encode())
            )
        for rec in out.audit:
            futures.append(await self._send_audit(rec))
        for dl in out.dead_letters:
            futures.append(await send(self.settings.topic_dead_letter, orjson.dumps(dl, default=str)))
        for topic, partition, key, value in out.forwards:
            futures.append(await send(topic, value, key=key.encode(), partition=partition))
        if futures:
            await asyncio.gather(*futures)
        self.metrics.count(out)
        out.clear()

    async def _send_audit(self, record: dict[str, Any]) -> asyncio.Future[Any]:
        """Enqueue one audit record of a line's chain: the audit topic's one partition, key = the chain (the
        API keys its records by ``what``; the chain field tells them apart)."""
        assert self.producer is not None
        fut: asyncio.Future[Any] = await self.producer.send(
            self.settings.topic_audit, orjson.dumps(record), key=str(record["chain"]).encode(), partition=0
        )
        return fut

    async def _publish_status(self, force: bool = False) -> None:
        """Publish the due status documents.

        The ingest loop does not wait for their acknowledgements (on the embedded broker a round of status
        acks took up to ~150 ms, and every millisecond the loop waits is latency for every event behind it):
        a status document is last-writer-wins per line, the producer keeps its order per partition, and a
        restored worker republishes the status of every line it restores, so no checkpoint depends on it.
        Failures still surface: acknowledged rounds are collected on the next call and a failed send raises
        here as before. ``force`` (stop, revocation) waits for every status send still in flight.
        """
        assert self.producer is not None
        inflight = self._status_inflight
        if inflight:
            done = [f for f in inflight if f.done()]
            if done:
                self._status_inflight = inflight = [f for f in inflight if not f.done()]
                for f in done:
                    f.result()  # raises a failed send, as awaiting it would have
                self.metrics.status_published(len(done))
        now = time.monotonic()
        interval = self.settings.status_interval_ms / 1000.0
        futures = []
        send = self.producer.send
        for machine in self.machines.values():
            for line, doc in machine.status_due(now, interval, force):
                futures.append(await send(self.settings.topic_line_status, doc, key=line.encode()))
        inflight.extend(futures)
        if force and inflight:
            self._status_inflight = []
            await asyncio.gather(*inflight)
            self.metrics.status_published(len(inflight))

    async def _checkpoint(self, partitions: set[int]) -> None:
        """Write the records each machine returns (its changed lines, then its partition record), wait for
        their acks, then commit (see :mod:`cpkmon.stream.checkpoint`)."""
        assert self.producer is not None
        self.last_checkpoint = time.monotonic()
        topic = self.settings.topic_checkpoints
        # Taken in one synchronous step: alarm events a spec deletion produced outside the ingest loop (the
        # spec follower runs beside it) and the checkpoint records holding the state that produced them. The
        # events are acknowledged before any checkpoint record is sent, so no checkpoint gets ahead of them.
        events: list[dict[str, Any]] = []
        audit: list[dict[str, Any]] = []
        records: list[tuple[int, list[tuple[bytes, bytes]]]] = []
        for p in sorted(partitions):
            machine = self.machines.get(p)
            if machine is not None:
                events.extend(machine.take_alarm_events())
                audit.extend(machine.take_audit_records())
                records.append((p, machine.checkpoint()))
        if events or audit:
            await asyncio.gather(*[
                await self.producer.send(self.settings.topic_alarm_events, orjson.dumps(doc),
                                         key=doc["line"].encode())
                for doc in events
            ], *[await self._send_audit(rec) for rec in audit])
        futures = []
        written = 0
        for p, recs in records:
            for key, value in recs:
                futures.append(await self.producer.send(topic, value, key=key, partition=p))
                if key != checkpoint.PARTITION_KEY:
                    written += len(value)
        if futures:
            await asyncio.gather(*futures)
            self.metrics.checkpointed(written)
            await self._commit(partitions)

    async def _commit(self, partitions: set[int]) -> None:
        """Commit what the checkpoint covers, for Kafka tooling only (restores seek from checkpoints)."""
        assert self.consumer is not None
        offsets = {}
        assigned = self.consumer.assignment()
        for p in partitions:
            machine = self.machines.get(p)
            if machine is None:
                continue
            for topic, off in machine.snapshot().applied.items():
                tp = TopicPartition(topic, p)
                if tp in assigned:
                    offsets[tp] = off + 1
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except Exception as exc:  # a commit during a rebalance may fail; the checkpoint is what counts
                log.debug("offset commit skipped: %s", exc)

    # ------------------------------------------------------------------------------------------- rebalance
    async def on_revoked(self, partitions: set[int]) -> None:
        async with self.lock:
            if self.producer is not None:
                await self._flush_outputs()
                await self._publish_status(force=True)
                await self._checkpoint(partitions & set(self.machines))
            for p in partitions:
                self.machines.pop(p, None)  # held records were not applied: the next owner replays them
            self.metrics.assigned(len(self.machines))

    async def on_assigned(self, partitions: set[int]) -> None:
        assert self.consumer is not None
        async with self.lock:
            new = sorted(p for p in partitions if p not in self.machines)
            if new:
                try:
                    restored = await checkpoint.restore(
                        self.bootstrap,
                        self.settings.topic_checkpoints,
                        new,
                        self.options,
                        partition_count=self.partitions,
                        security=self.security,
                    )
                except checkpoint.PartitionCountChanged as exc:
                    # Nothing of these partitions is applied or written: the ingest loop raises it and the
                    # worker exits non-zero (an error raised in a rebalance listener would be swallowed).
                    log.error("%s", exc)
                    self.failure = exc
                    self.stopping.set()
                    return
                for p in new:
                    machine = PartitionMachine(
                        p,
                        self.partitions,
                        self.options,
                        self.specs,
                        self.kinds,
                        self.settings.max_message_bytes,
                        commands_topic=self.settings.topic_commands,
                        batch=BATCH_PATH,
                    )
                    r = restored[p]
                    log.info(
                        "restore p%d: %d records, applied=%s, lines=%s",
                        p,
                        r.records,
                        r.applied,
                        {
                            n: (st.applied, sum(c.values_total for c in st.characteristics.values()))
                            for n, st in r.lines.items()
                        },
                    )
                    # the specs were read to their end at start-up: the machine retires a characteristic
                    # whose spec was deleted after the checkpoint, and republishes every restored status
                    machine.restore(r.applied, r.lines)
                    self.machines[p] = machine
                    self.metrics.restored(len(r.lines), r.records)
                    for topic in self.inputs:
                        self.consumer.seek(TopicPartition(topic, p), machine.position(topic))
                log.info(
                    "assigned partitions %s (restored %d lines)",
                    new,
                    sum(len(restored[p].lines) for p in new),
                )
            self.metrics.assigned(len(self.machines))
            self.ready.set()

    # ----------------------------------------------------------------------------------------------- specs
    async def _load_specs(self) -> None:
        """Publish the start-up spec file (if any), then read the specs topic to its high watermark."""
        assert self.producer is not None
        if self.settings.specs_file is not None:
            for doc in load_specs_file(self.settings.specs_file):
                key = spec_key(str(doc.get("line")), str(doc.get("characteristic")))
                await self.producer.send_and_wait(
                    self.settings.topic_specs, orjson.dumps(doc), key=key.encode()
                )
        self.spec_consumer = reader(self.bootstrap, self.security)
        await self.spec_consumer.start()
        parts = self.spec_consumer.partitions_for_topic(self.settings.topic_specs)
        if not parts:
            await self.spec_consumer.force_metadata_update()
            parts = self.spec_consumer.partitions_for_topic(self.settings.topic_specs) or {0}
        tps = [TopicPartition(self.settings.topic_specs, p) for p in sorted(parts)]
        for rec in await read_to_end(self.spec_consumer, tps):
            await self._spec_record(rec)

    async def _follow_specs(self) -> None:
        assert self.spec_consumer is not None
        while not self.stopping.is_set():
            try:
                batch = await self.spec_consumer.getmany(timeout_ms=100)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following through broker hiccups
                log.warning("spec consumer: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for records in batch.values():
                for rec in records:
                    await self._spec_record(rec)
            await self._spec_end.round(self.spec_consumer, batch)  # see _specs_caught_up

    async def _specs_caught_up(self) -> None:
        """Wait until the spec follower has read every spec produced before this call: two end rounds after
        the call (:class:`cpkmon.catchup.EndRounds`; the fetch high watermark alone can lag on the embedded
        broker). Bounded by CPKMON_SPEC_HOLD_SECONDS."""
        if not await self._spec_end.wait(self.settings.spec_hold_seconds):
            log.warning("specs topic not caught up within %.1f s", self.settings.spec_hold_seconds)

    async def _spec_record(self, rec: Any) -> None:
        change = self.specs.apply_record(rec.key, rec.value)
        if change.action == "invalid":
            assert self.producer is not None
            doc = {
                "topic": rec.topic,
                "partition": rec.partition,
                "offset": rec.offset,
                "reason": change.reason,
                "payload": change.payload,
            }
            await self.producer.send_and_wait(self.settings.topic_dead_letter, orjson.dumps(doc, default=str))
            self.metrics.spec_rejected(rec.topic, "invalid_spec")
        elif change.action == "delete" and change.line and change.characteristic:
            # the characteristic leaves its line's roll-up, status and alert tracking; a spec that re-adds it
            # continues its subgroup numbering and values_total (LineState.retire)
            for machine in self.machines.values():
                machine.retire(change.line, change.characteristic)
        elif change.action == "rebaseline":
            # A control record of older releases. Commands are not state: they live in the commands topic,
            # applied once per line partition; re-running one found here would re-freeze limits on every
            # restart (and on Apache Kafka its key, the spec's, made compaction drop the spec).
            log.info("re-baseline record in %s ignored (see %s)", rec.topic, self.settings.topic_commands)

    # ------------------------------------------------------------------------------------------------ view
    def lag(self) -> dict[tuple[str, int], int]:
        """Consumer lag per assigned partition from fetch high watermarks (end offsets are wrong on Tansu)."""
        if self.consumer is None:
            return {}
        out = {}
        for tp in self.consumer.assignment():
            hw = self.consumer.highwater(tp)
            machine = self.machines.get(tp.partition)
            if hw is None or machine is None:
                continue
            out[(tp.topic, tp.partition)] = max(0, hw - machine.position(tp.topic))
        return out

    def snapshot(self) -> WorkerSnapshot:
        """The machines' snapshots and the lag: all that metrics and health read of the worker."""
        return WorkerSnapshot({p: m.snapshot() for p, m in self.machines.items()}, self.lag())

    def line_status(self, line: str) -> dict[str, Any] | None:
        """The status document of ``line`` if this worker holds it (debug endpoint)."""
        for machine in self.machines.values():
            doc = machine.status_of(line)
            if doc is not None:
                return doc
        return None
