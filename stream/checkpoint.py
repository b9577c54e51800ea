"""Checkpoints of line state in a Kafka topic, restored by reading to the *fetch* high watermark.

Layout of ``cpkmon.worker-checkpoints`` (compacted on Apache Kafka; as many partitions as the input topics):
partition *p* holds the lines owned by input partition *p*. Key ``<line>`` → the line's state
(``LineState.to_dict``); key ``__partition__`` → ``{"applied": {topic: offset}}``, written *after* the line
records of the same checkpoint. So the newest partition record never claims more than the line records
before it hold, and any prefix of the partition is a consistent checkpoint — which is exactly what survives
Tansu's wrong end offsets (SPEC §10: a reader that trusts ListOffsets stops early and loses the tail). We
never ask for end offsets: the restore reads until its position reaches the high watermark carried in fetch
responses.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from cpkmon.alerts.line import LineState
from cpkmon.capability.options import Options

log = logging.getLogger(__name__)
PARTITION_KEY = b"__partition__"


@dataclass
class Restored:
    applied: dict[str, int] = field(default_factory=dict)
    lines: dict[str, LineState] = field(default_factory=dict)
    records: int = 0
    seconds: float = 0.0


EMPTY_ROUNDS = 2  # consecutive empty fetch rounds that prove a partition read to its end


async def read_to_high_watermark(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> list[Any]:
    """Every record of ``tps`` from the beginning to their end.

    The end is where the position has reached the fetch high watermark *and* two consecutive fetch rounds
    (``fetch_max_wait_ms`` ≤ 50 on the consumers built here) brought nothing: the embedded broker's high
    watermark can lag behind its log when a response is cut by size, so it alone would stop early (seen: 7 of
    33 records). Two empty rounds span a whole fetch that started after the previous data was consumed.
    """
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    out: list[Any] = []
    pending = set(tps)
    empty = dict.fromkeys(tps, 0)
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=100, max_records=10_000)
        for tp in list(pending):
            records = batch.get(tp)
            if records:
                out.extend(records)
                empty[tp] = 0
                continue
            empty[tp] += 1
            hw = consumer.highwater(tp)
            at_hw = hw is None or await consumer.position(tp) >= hw
            if empty[tp] >= EMPTY_ROUNDS and at_hw:
                pending.discard(tp)
            elif empty[tp] >= EMPTY_ROUNDS * 10:
                log.warning(
                    "%s: position below the high watermark %s after %d empty rounds", tp, hw, empty[tp]
                )
                pending.discard(tp)
    return out


async def restore(
    bootstrap: list[str], topic: str, partitions: list[int], options: Options
) -> dict[int, Restored]:
    """The newest consistent checkpoint of each partition (see the module docstring)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        t0 = asyncio.get_running_loop().time()
        tps = [TopicPartition(topic, p) for p in partitions]
        records = await read_to_high_watermark(consumer, tps)
        result = {p: Restored() for p in partitions}
        raw_lines: dict[int, dict[str, bytes]] = {p: {} for p in partitions}
        for rec in records:
            r = result[rec.partition]
            r.records += 1
            if rec.key == PARTITION_KEY:
                if rec.value is not None:
                    r.applied = {k: int(v) for k, v in orjson.loads(rec.value)["applied"].items()}
            elif rec.key is not None:
                name = rec.key.decode("utf-8")
                if rec.value is None:
                    raw_lines[rec.partition].pop(name, None)
                else:
                    raw_lines[rec.partition][name] = rec.value
        for p, lines in raw_lines.items():
            r = result[p]
            for name, raw in lines.items():
                st = LineState.from_dict(orjson.loads(raw), options)
                # A line record older than the partition record is still valid through the partition's
                # offsets: it had no events in between, or it would have been dirty and written again.
                for t, off in r.applied.items():
                    if st.applied.get(t, -1) < off:
                        st.applied[t] = off
                r.lines[name] = st
            r.seconds = asyncio.get_running_loop().time() - t0
        return result
    finally:
        await consumer.stop()


def encode_line(state: LineState) -> bytes:
    return orjson.dumps(state.to_dict())


def encode_partition(applied: dict[str, int]) -> bytes:
    return orjson.dumps({"version": 1, "applied": applied})
