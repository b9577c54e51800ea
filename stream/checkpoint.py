"""Checkpoints of line state in a Kafka topic, restored by reading to the *fetch* high watermark.

Layout of ``cpkmon.worker-checkpoints`` (compacted on Apache Kafka; as many partitions as the input topics):
partition *p* holds the lines owned by input partition *p*. Key ``<line>`` → the line's state
(``LineState.to_dict``); key ``/partition`` (a ``/`` no line id can contain, SPEC §1) →
``{"applied": {topic: offset}, "partitions": N}``, written *after* the line records of the same checkpoint.
(Releases before the commands topic used ``__partition__``, which is also a valid line id; a restore still
reads such a record, telling it from a line named ``__partition__`` by its content.)

So the newest partition record never claims more than the line records
before it hold, and any prefix of the partition is a consistent checkpoint — which is exactly what survives
Tansu's wrong end offsets (SPEC §10: a reader that trusts ListOffsets stops early and loses the tail). We
never ask for end offsets: the restore reads until its position reaches the high watermark carried in fetch
responses.

``partitions`` is the input topics' partition count the checkpoint was written under. Ownership is
``murmur2(line) % partitions``: after a partition-count change a line's records arrive in another partition,
so a checkpoint written under another count (or holding a line another partition owns) is refused with
:class:`PartitionCountChanged` instead of being restored into the wrong owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import TopicPartition
from kafka.partitioner.default import murmur2

from cpkmon.alerts.line import LineState
from cpkmon.capability.options import Options
from cpkmon.catchup import read_to_end, reader

log = logging.getLogger(__name__)
PARTITION_KEY = b"/partition"
LEGACY_PARTITION_KEY = b"__partition__"  # older releases; a valid line id, so told apart by content


class PartitionCountChanged(RuntimeError):
    """A checkpoint was written under another partition count; the message says what to do."""


@dataclass
class Restored:
    applied: dict[str, int] = field(default_factory=dict)
    lines: dict[str, LineState] = field(default_factory=dict)
    records: int = 0
    seconds: float = 0.0
    partitions: int | None = None  # the partition count the newest partition record was written under


# The one "read a topic to its end" (cpkmon.catchup); the old name stays for callers and tests.
read_to_high_watermark = read_to_end


def owner_partition(line: str, partitions: int) -> int:
    """The partition a line's records (and its checkpoint) belong to: Kafka's default partitioner for
    key = line (murmur2, as the Java client and kafka-python pick it)."""
    h = int(murmur2(line.encode("utf-8")))
    return (h & 0x7FFFFFFF) % partitions


def _partition_record(key: bytes | None, value: bytes | None) -> dict[str, Any] | None:
    """The decoded partition record, or None when the record is a line's (or a tombstone)."""
    if value is None or key not in (PARTITION_KEY, LEGACY_PARTITION_KEY):
        return None
    doc = orjson.loads(value)
    if key == LEGACY_PARTITION_KEY and (not isinstance(doc, dict) or "line" in doc):
        return None  # the state of a line named "__partition__"
    return doc if isinstance(doc, dict) else None


async def restore(
    bootstrap: list[str],
    topic: str,
    partitions: list[int],
    options: Options,
    partition_count: int | None = None,
    security: Mapping[str, Any] | None = None,
) -> dict[int, Restored]:
    """The newest consistent checkpoint of each partition (see the module docstring).

    With ``partition_count`` (the input topics' count now), a checkpoint written under another count, or a
    line stored in a partition that does not own it, raises :class:`PartitionCountChanged`.
    ``security``: the TLS/SASL client arguments (:func:`cpkmon.kafka_security.aiokafka_kwargs`).
    """
    consumer = reader(bootstrap, security, max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    try:
        t0 = asyncio.get_running_loop().time()
        records = await read_to_end(consumer, [TopicPartition(topic, p) for p in partitions])
        result = fold(records, partitions, options, partition_count=partition_count, topic=topic)
        for r in result.values():
            r.seconds = asyncio.get_running_loop().time() - t0
        return result
    finally:
        await consumer.stop()


def fold(
    records: Iterable[Any],
    partitions: Iterable[int],
    options: Options,
    partition_count: int | None = None,
    topic: str = "the checkpoint topic",
) -> dict[int, Restored]:
    """The newest consistent checkpoint of each partition from its records in offset order (pure: what
    :func:`restore` does once it has read the topic; unit tests feed it any prefix of a checkpoint topic).

    Records need ``partition``, ``key`` and ``value``. The newest partition record sets ``applied``; line
    records are the newest per key (a tombstone removes the line).
    """
    result = {p: Restored() for p in partitions}
    raw_lines: dict[int, dict[str, bytes]] = {p: {} for p in result}
    for rec in records:
        r = result[rec.partition]
        r.records += 1
        doc = _partition_record(rec.key, rec.value)
        if doc is not None:
            r.applied = {k: int(v) for k, v in doc["applied"].items()}
            r.partitions = int(doc["partitions"]) if "partitions" in doc else None
        elif rec.key == PARTITION_KEY:
            continue  # a tombstone of the partition record: nothing to restore from it
        elif rec.key is not None:
            name = rec.key.decode("utf-8")
            if rec.value is None:
                raw_lines[rec.partition].pop(name, None)
            else:
                raw_lines[rec.partition][name] = rec.value
    if partition_count is not None:
        _check_partition_count(topic, partition_count, result, raw_lines)
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
    return result


def encode_line(state: LineState) -> bytes:
    return orjson.dumps(state.to_dict())


def encode_partition(applied: dict[str, int], partitions: int) -> bytes:
    return orjson.dumps({"version": 2, "applied": applied, "partitions": partitions})


def _check_partition_count(
    topic: str, count: int, result: dict[int, Restored], raw_lines: dict[int, dict[str, bytes]]
) -> None:
    """Refuse a checkpoint that line ownership under ``count`` partitions does not match.

    Re-sharding is not attempted: the input records after the checkpoint of a moved line sit in its old
    partition, behind offsets its new owner does not track, so only a rebuild from the inputs is exact.
    """
    for p, r in sorted(result.items()):
        misplaced = sorted(name for name in raw_lines[p] if owner_partition(name, count) != p)
        if (r.partitions is not None and r.partitions != count) or misplaced:
            was = f"{r.partitions} partitions" if r.partitions is not None else "another partition count"
            raise PartitionCountChanged(
                f"checkpoint partition {p} of {topic} was written under {was}, the input topics have {count} "
                f"now{f' (lines {misplaced[:5]} belong elsewhere)' if misplaced else ''}: a line belongs to "
                f"partition murmur2(line) % partitions, so its checkpoint would be restored into the wrong "
                f"owner. Stop every worker, delete the checkpoint topic (kafka-topics.sh --delete --topic "
                f"{topic}) and start them again: they rebuild every line from what the input topics retain."
            )
