"""Creating cpkmon's topics, explicitly and idempotently.

Topics are created before anything is produced: Tansu (and Kafka with auto-create on) would otherwise
create them on first produce with the broker's default partition count (4 on Tansu), and a line's partition
would no longer agree between input topics. Compacted topics get ``cleanup.policy=compact``; Tansu accepts
and ignores it (SPEC §10), Apache Kafka applies it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from cpkmon.settings import Settings


@dataclass(frozen=True, slots=True)
class TopicPlan:
    name: str
    partitions: int
    compacted: bool


def plan(settings: Settings) -> list[TopicPlan]:
    n = settings.partitions
    return [
        TopicPlan(settings.topic_measurements, n, False),
        TopicPlan(settings.topic_inspections, n, False),
        TopicPlan(settings.topic_quality_costs, n, False),
        TopicPlan(settings.topic_specs, 1, True),
        TopicPlan(settings.topic_line_status, n, True),
        TopicPlan(settings.topic_alerts, n, False),
        TopicPlan(settings.topic_dead_letter, n, False),
        TopicPlan(settings.topic_acks, 1, True),
        TopicPlan(settings.topic_checkpoints, n, True),
    ]


async def ensure_topics(settings: Settings, timeout: float = 20.0) -> dict[str, int]:
    """Create missing topics; returns every cpkmon topic's actual partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers(), request_timeout_ms=10_000)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.start()
            break
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in plan(settings) if t.name not in existing]
        if wanted:
            new = [
                NewTopic(
                    name=t.name,
                    num_partitions=t.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs={"cleanup.policy": "compact"} if t.compacted else {},
                )
                for t in wanted
            ]
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        counts: dict[str, int] = {}
        names = [t.name for t in plan(settings)]
        while True:
            described = await admin.describe_topics(names)
            counts = {
                d["topic"]: len(d["partitions"])
                for d in described
                if d.get("partitions") and not d.get("error_code")
            }
            if len(counts) == len(names) or asyncio.get_running_loop().time() > deadline:
                return counts
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def ensure_topics_sync(settings: Settings) -> dict[str, int]:
    return asyncio.run(ensure_topics(settings))
