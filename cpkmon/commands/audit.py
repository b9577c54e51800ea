"""``cpkmon audit verify``: read the audit topic to its end and check its hash chain.

Exit status: 0 — every chain is intact (the head of each (partition, chain) is printed — ``api`` for the API's
records, ``worker:<line>`` for each line's: note them outside Kafka and pass any as ``--expect-head`` later,
which also catches a forger who rewrote a chain's whole tail); identical re-publications of a record (a
worker's replay after a crash) are counted, not failed; 1 — a chain is broken, one line per problem naming
partition, chain, offset, seq and what is wrong; 2 — the trail could not be checked (no such topic, broker
unreachable or refusing the TLS/SASL settings).

The topic is read with the same client settings as every cpkmon client (``CPKMON_KAFKA_*``), group-less, to
its end by :func:`cpkmon.catchup.read_to_end` (the embedded broker's end offsets cannot be trusted).
"""

from __future__ import annotations

import asyncio
import json

import typer
from aiokafka import TopicPartition

from cpkmon.alerts.audit import Problem, Stored, check, record_hash
from cpkmon.catchup import read_to_end, reader
from cpkmon.kafka_security import BrokerConnectionError, aiokafka_kwargs, check_broker_sync
from cpkmon.settings import Settings, get_settings

EXIT_BROKEN = 1
EXIT_UNCHECKED = 2

app = typer.Typer(
    name="audit",
    help="The hash-chained audit trail (cpkmon.audit).",
    no_args_is_help=True,
    add_completion=False,
)


class MissingTopic(RuntimeError):
    """The audit topic does not exist."""


async def read_audit(settings: Settings, topic: str) -> list[Stored]:
    """Every record of ``topic`` (all partitions), from the beginning to its end."""
    consumer = reader(
        settings.bootstrap_servers(),
        aiokafka_kwargs(settings),
        client_id="cpkmon-audit-verify",
        request_timeout_ms=15_000,
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            raise MissingTopic(topic)
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        records = await read_to_end(consumer, [TopicPartition(topic, p) for p in parts])
    finally:
        await consumer.stop()
    return [Stored(r.partition, r.offset, r.value) for r in records]


@app.command("verify")
def verify_command(
    broker: str = typer.Option(None, "--broker", help="kafka://host:port (default: CPKMON_BROKER)"),
    topic: str = typer.Option(None, "--topic", help="the audit topic (default: CPKMON_TOPIC_AUDIT)"),
    allow_truncated_head: bool = typer.Option(
        False,
        "--allow-truncated-head",
        help="the start was deleted by retention: anchor the chain on the oldest record still there",
    ),
    expect_head: list[str] = typer.Option(
        [],
        "--expect-head",
        help="a record hash noted earlier (e.g. a previous run's head): it must still be in the chain",
    ),
) -> None:
    """Check the audit trail: exit 0 when intact, 1 naming each removed, altered or reordered record."""
    settings = get_settings()
    if broker:
        settings = settings.model_copy(update={"broker": broker})
    name = topic or settings.topic_audit
    try:
        check_broker_sync(settings)
        stored = asyncio.run(read_audit(settings, name))
    except BrokerConnectionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_UNCHECKED) from None
    except MissingTopic:
        typer.echo(f"error: no topic {name!r}: nothing to verify (was it deleted?)", err=True)
        raise typer.Exit(EXIT_UNCHECKED) from None
    anchored = not allow_truncated_head
    verdict = check(stored, anchored=anchored)
    problems = verdict.problems + _missing_heads(stored, expect_head)
    if problems:
        for problem in problems:
            typer.echo(str(problem))
        typer.echo(
            f"audit trail {name} is BROKEN: {len(problems)} problem(s) in {len(stored)} record(s)", err=True
        )
        raise typer.Exit(EXIT_BROKEN)
    typer.echo(f"audit trail {name} intact: {len(stored)} record(s)")
    for (partition, chain), head in sorted(verdict.heads.items()):
        again = verdict.republished.get((partition, chain), 0)
        note = f" ({again} identical re-publication(s))" if again else ""
        typer.echo(f"partition {partition} chain {chain} head: seq {head.seq} hash {head.hash}{note}")


def _missing_heads(stored: list[Stored], expected: list[str]) -> list[Problem]:
    """An ``--expect-head`` hash that no record carries: the chain was rewritten from before that point."""
    if not expected:
        return []
    present = set()
    for rec in stored:
        try:
            doc = json.loads(rec.value) if rec.value is not None else None
        except ValueError:
            continue  # named by verify() as unreadable
        if isinstance(doc, dict) and doc.get("hash") == record_hash(doc):
            present.add(doc["hash"])
    return [
        Problem("head", -1, None, None, f"no record has the expected hash {h}: the chain was rewritten")
        for h in expected
        if h not in present
    ]
