"""Planning and creating cpkmon's topics: the one place that decides partition counts and cleanup policies.

Plants create topics before cpkmon runs: the first producer auto-creates ``cpkmon.measurements`` with the
broker's default count (4 on Tansu, ``num.partitions`` on Apache Kafka). A line's partition is
``murmur2(line) % partitions`` for every input topic alike, so what matters is that the co-partitioned topics
(the three input topics, the commands topic and the checkpoint topic) agree — not that they have
``CPKMON_PARTITIONS``. So the plan starts from what exists: missing topics get the partition count of the
input topics that already exist, and ``CPKMON_PARTITIONS`` only when none does. Input topics that disagree
with each other cannot be fixed by cpkmon (Kafka can only add partitions, and adding them moves lines); the
plan then creates nothing and carries an error that names the topics, their counts and the command that
fixes it. The worker and the API both plan here, so they can never disagree about a count.

Compacted topics get ``cleanup.policy=compact``, the others ``delete`` explicitly (a broker default of
``compact`` must not turn the commands topic into state); Tansu accepts and ignores both (SPEC §10).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from cpkmon.kafka_security import aiokafka_kwargs
from cpkmon.settings import Settings

Role = Literal["input", "commands", "checkpoints", "output", "single"]


class TopicConflict(RuntimeError):
    """Existing topics whose partition counts cannot work together; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class TopicPlan:
    name: str
    partitions: int
    compacted: bool
    role: Role = "output"
    retention_ms: int | None = None  # None: the broker's default; -1: forever (the audit trail)

    @property
    def configs(self) -> dict[str, str]:
        out = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None:
            out["retention.ms"] = str(self.retention_ms)
        return out


def input_topics(settings: Settings) -> list[str]:
    return [settings.topic_measurements, settings.topic_inspections, settings.topic_quality_costs]


def partition_count(settings: Settings, existing: Mapping[str, int]) -> int:
    """The count of the co-partitioned topics: the largest existing input topic's (they normally agree;
    when they do not, :func:`conflict` reports it), else ``CPKMON_PARTITIONS``."""
    counts = [existing[t] for t in input_topics(settings) if t in existing]
    return max(counts) if counts else settings.partitions


def plan(settings: Settings, existing: Mapping[str, int] | None = None) -> list[TopicPlan]:
    """Every cpkmon topic with the partition count and policy it should have, given what ``existing``
    (topic → partition count) already holds."""
    n = partition_count(settings, existing or {})
    return [
        TopicPlan(settings.topic_measurements, n, False, "input"),
        TopicPlan(settings.topic_inspections, n, False, "input"),
        TopicPlan(settings.topic_quality_costs, n, False, "input"),
        TopicPlan(settings.topic_commands, n, False, "commands"),
        TopicPlan(settings.topic_specs, 1, True, "single"),
        TopicPlan(settings.topic_line_status, n, True, "output"),
        TopicPlan(settings.topic_alerts, n, False, "output"),
        TopicPlan(settings.topic_dead_letter, n, False, "output"),
        TopicPlan(settings.topic_acks, 1, True, "single"),
        TopicPlan(settings.topic_checkpoints, n, True, "checkpoints"),
        # one partition: one chain orders all the plant's changes; kept (by default) forever
        TopicPlan(settings.topic_audit, 1, False, "single", retention_ms=settings.audit_retention_ms),
        TopicPlan(settings.topic_alarm_events, n, False, "output"),
    ]


def conflict(settings: Settings, existing: Mapping[str, int]) -> str | None:
    """Why the existing co-partitioned topics cannot work together, with the exact fix; None if they can."""
    server = settings.bootstrap_servers()[0]
    inputs = {t: existing[t] for t in input_topics(settings) if t in existing}
    if len(set(inputs.values())) > 1:
        n = max(inputs.values())
        listing = ", ".join(f"{t} has {c}" for t, c in inputs.items())
        fixes = "\n".join(
            f"  kafka-topics.sh --bootstrap-server {server} --alter --topic {t} --partitions {n}"
            for t, c in inputs.items()
            if c != n
        )
        return (
            f"input topics disagree on their partition count: {listing}. A line belongs to partition "
            f"murmur2(line) % partitions of every input topic, so they must all have the same count. "
            f"Raise the smaller ones to {n} (Kafka can only add partitions), then start the worker again:\n"
            f"{fixes}\n(the embedded broker cannot add partitions: recreate the topics there)"
        )
    if not inputs:
        return None
    n = next(iter(inputs.values()))
    commands = existing.get(settings.topic_commands)
    if commands is not None and commands != n:
        return (
            f"the commands topic {settings.topic_commands} has {commands} partitions, the input topics {n}: "
            f"a command must land in the partition of its line. Fix:\n"
            f"  kafka-topics.sh --bootstrap-server {server} --alter --topic {settings.topic_commands} "
            f"--partitions {n}"
        )
    checkpoints = existing.get(settings.topic_checkpoints)
    if checkpoints is not None and checkpoints != n:
        return (
            f"the checkpoint topic {settings.topic_checkpoints} has {checkpoints} partitions, the input "
            f"topics {n}: the input topics' partition count changed after the checkpoints were written, so a "
            f"line may now belong to another partition (murmur2(line) % partitions) and the checkpoints "
            f"cannot be restored. Delete the checkpoint topic; the workers then rebuild every line from what "
            f"the input topics still retain:\n"
            f"  kafka-topics.sh --bootstrap-server {server} --delete --topic {settings.topic_checkpoints}"
        )
    return None


@dataclass(frozen=True)
class Topics:
    """The outcome of :func:`ensure_topics`."""

    partitions: int  # the count of the input, commands and checkpoint topics
    counts: dict[str, int] = field(default_factory=dict)  # every existing cpkmon topic → partitions
    created: list[str] = field(default_factory=list)
    conflict: str | None = None

    def check(self) -> int:
        """The co-partition count, or :class:`TopicConflict` with the actionable message."""
        if self.conflict:
            raise TopicConflict(self.conflict)
        return self.partitions


async def _counts(admin: AIOKafkaAdminClient, names: Collection[str]) -> dict[str, int]:
    existing = set(await admin.list_topics())
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    described = await admin.describe_topics(wanted)
    return {
        d["topic"]: len(d["partitions"]) for d in described if d.get("partitions") and not d.get("error_code")
    }


async def ensure_topics(
    settings: Settings,
    timeout: float = 20.0,
    *,
    only: Collection[str] | None = None,
    own_count: bool = True,
) -> Topics:
    """Create the missing cpkmon topics (``only``: just these) as :func:`plan` says, and report.

    Nothing is created when the existing topics conflict (the result carries the message), nor — with
    ``own_count=False``, the API's mode — when no input topic exists yet to take the count from.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers(), request_timeout_ms=10_000, **aiokafka_kwargs(settings)
    )
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.start()
            break
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    names = [t.name for t in plan(settings)]
    try:
        existing = await _counts(admin, names)
        created: list[str] = []
        while True:
            problem = conflict(settings, existing)
            n = partition_count(settings, existing)
            if problem:
                return Topics(n, existing, created, problem)
            has_inputs = any(t in existing for t in input_topics(settings))
            wanted = [
                t
                for t in plan(settings, existing)
                if t.name not in existing and (only is None or t.name in only) and (own_count or has_inputs)
            ]
            if not wanted or asyncio.get_running_loop().time() > deadline:
                return Topics(n, existing, created, None)
            new = [
                NewTopic(
                    name=t.name,
                    num_partitions=t.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs=t.configs,
                )
                for t in wanted
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker or API won the race
                await admin.create_topics(new)
            await asyncio.sleep(0.05)
            before = existing
            existing = await _counts(admin, names)
            created += [t.name for t in wanted if t.name in existing and t.name not in before]
    finally:
        await admin.close()


def ensure_topics_sync(settings: Settings) -> Topics:
    return asyncio.run(ensure_topics(settings))
