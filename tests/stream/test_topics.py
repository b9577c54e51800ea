"""Topics that exist before cpkmon (issue 10, finding 1): the plan, producers first, disagreeing inputs, and
checkpoints written under another partition count."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from cpkmon.alerts.line import LineState
from cpkmon.broker import EmbeddedBroker, free_port
from cpkmon.settings import Settings, core_options
from cpkmon.stream import checkpoint
from cpkmon.stream.processor import owner_partition
from cpkmon.topics import TopicConflict, conflict, ensure_topics, plan
from tests.stream.harness import Feed, base_env, batch_answer, http_json, read_topic, totals, wait_until
from tests.stream.plantdata import mixed_plant

INPUTS = ("cpkmon.measurements", "cpkmon.inspections", "cpkmon.quality-costs")


def settings(**kw: object) -> Settings:
    return Settings(broker="kafka://k1:9092,k2:9092", **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- the plan
def test_plan_takes_the_existing_input_count_not_cpkmon_partitions() -> None:
    s = settings(partitions=8)
    by_name = {t.name: t for t in plan(s, {"cpkmon.measurements": 4})}
    for name in (
        *INPUTS,
        "cpkmon.commands",
        "cpkmon.worker-checkpoints",
        "cpkmon.line-status",
        "cpkmon.alerts",
        "cpkmon.dead-letter",
    ):
        assert by_name[name].partitions == 4, name
    assert by_name["cpkmon.specs"].partitions == by_name["cpkmon.alert-acks"].partitions == 1
    assert {n for n, t in by_name.items() if t.compacted} == {
        "cpkmon.specs",
        "cpkmon.line-status",
        "cpkmon.alert-acks",
        "cpkmon.worker-checkpoints",
    }
    assert by_name["cpkmon.commands"].configs == {"cleanup.policy": "delete"}  # commands are not state
    assert by_name["cpkmon.specs"].configs == {"cleanup.policy": "compact"}
    # the audit trail: one partition (one chain orders every change), never compacted, kept forever
    assert by_name["cpkmon.audit"].partitions == 1
    assert by_name["cpkmon.audit"].configs == {"cleanup.policy": "delete", "retention.ms": "-1"}
    ten_years = {t.name: t for t in plan(settings(audit_retention_ms=315_360_000_000))}["cpkmon.audit"]
    assert ten_years.configs["retention.ms"] == "315360000000"  # CPKMON_AUDIT_RETENTION_MS
    assert {t.partitions for t in plan(s, {}) if t.name in INPUTS} == {8}  # nothing exists: CPKMON_PARTITIONS
    assert conflict(s, {"cpkmon.measurements": 4, "cpkmon.inspections": 4}) is None


def test_disagreeing_inputs_name_topics_counts_and_the_fix() -> None:
    s = settings()
    msg = conflict(s, {"cpkmon.measurements": 4, "cpkmon.inspections": 8, "cpkmon.quality-costs": 8})
    assert msg is not None
    assert "cpkmon.measurements has 4" in msg and "cpkmon.inspections has 8" in msg
    assert (
        "kafka-topics.sh --bootstrap-server k1:9092 --alter --topic cpkmon.measurements --partitions 8" in msg
    )
    assert "--topic cpkmon.inspections" not in msg  # only the topics that need the change
    # cpkmon's own co-partitioned topics left behind by a partition change
    msg = conflict(s, {"cpkmon.measurements": 8, "cpkmon.worker-checkpoints": 4})
    assert msg and "--delete --topic cpkmon.worker-checkpoints" in msg
    msg = conflict(s, {"cpkmon.measurements": 8, "cpkmon.commands": 4})
    assert msg and "--alter --topic cpkmon.commands --partitions 8" in msg


def _counts(bootstrap: str) -> dict[str, int]:
    """Every ``cpkmon.*`` topic → its partition count."""

    async def run() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith("cpkmon.")]
            described = await admin.describe_topics(names) if names else []
            return {d["topic"]: len(d["partitions"]) for d in described}
        finally:
            await admin.close()

    return asyncio.run(run())


@pytest.mark.broker
def test_ensure_topics_matches_existing_inputs_and_the_api_mode_creates_no_inputs(
    broker: EmbeddedBroker,
) -> None:
    s = Settings(broker=f"kafka://{broker.bootstrap}", partitions=8)
    # the API's mode: no input topic yet → nothing is created (no count of its own)
    topics = asyncio.run(ensure_topics(s, only={s.topic_commands}, own_count=False))
    assert topics.counts == {} and _counts(broker.bootstrap) == {}
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("cpkmon.measurements", 3, 1)])
    admin.close()
    topics = asyncio.run(ensure_topics(s, only={s.topic_line_status, s.topic_specs}))
    assert _counts(broker.bootstrap) == {"cpkmon.measurements": 3, "cpkmon.line-status": 3, "cpkmon.specs": 1}
    topics = asyncio.run(ensure_topics(s))
    assert topics.check() == 3 and not topics.conflict
    counts = _counts(broker.bootstrap)
    single = {t.name for t in plan(s) if t.role == "single"}  # specs, acks, audit: one partition each
    assert len(counts) == len(plan(s)) and all(c == 3 for n, c in counts.items() if n not in single)
    assert all(counts[n] == 1 for n in single)


# ------------------------------------------------------------------------------------- producers first
def _produce_first(bootstrap: str, feed: Feed) -> None:
    """What a plant's bridges do before cpkmon ever ran: produce, keyed by line, to topics that do not
    exist (the broker auto-creates them with its default count) — no explicit partition."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    for spec in feed.specs:
        producer.send(
            "cpkmon.specs", orjson.dumps(spec), key=f"{spec['line']}/{spec['characteristic']}".encode()
        )
    for topic, key, value, _ in feed.messages:
        producer.send(topic, value, key=key.encode() if key else None)
    producer.flush()
    producer.close()


@pytest.mark.broker
def test_producers_first_then_cpkmon_up_counts_every_value(broker: EmbeddedBroker, tmp_path: Path) -> None:
    feed = Feed(partitions=4)  # Tansu auto-creates with 4 partitions (SPEC §10)
    mixed_plant(feed, seed=3, subgroups=30)
    expected, _ = batch_answer(feed)
    want = totals(expected.values())
    _produce_first(broker.bootstrap, feed)
    assert _counts(broker.bootstrap)["cpkmon.measurements"] == 4  # auto-created, not by cpkmon
    api_port, worker_port = free_port(), free_port()
    env = base_env(
        broker.bootstrap,
        tmp_path,
        CPKMON_PARTITIONS="8",  # what cpkmon would pick on its own: the existing count must win
        CPKMON_API_PORT=str(api_port),
        CPKMON_WORKER_PORT=str(worker_port),
    )
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "cpkmon.cli", "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def counted() -> tuple[int, int] | None:
            assert up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            try:
                docs = [http_json(f"http://127.0.0.1:{api_port}/api/v1/lines/{line}") for line in expected]
            except (OSError, ValueError):
                return None
            got = totals(docs)
            return got if got == want else None

        wait_until(counted, 90, what=f"every produced value and unit counted once ({want})")
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(30)
        log.close()
    counts = _counts(broker.bootstrap)
    co = (*INPUTS, "cpkmon.commands", "cpkmon.worker-checkpoints", "cpkmon.line-status", "cpkmon.alerts")
    assert {n: counts[n] for n in co} == dict.fromkeys(co, 4), counts


@pytest.mark.broker
def test_disagreeing_inputs_stop_the_worker_with_the_fix_and_nothing_written(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("cpkmon.measurements", 4, 1), NewTopic("cpkmon.inspections", 2, 1)])
    admin.close()
    env = base_env(broker.bootstrap, tmp_path, CPKMON_WORKER_PORT=str(free_port()))
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "cpkmon.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2  # cpkmon worker's own exit, before Faust starts
    assert time.monotonic() - t0 < 30
    assert "cpkmon.measurements has 4" in res.stderr and "cpkmon.inspections has 2" in res.stderr, res.stderr
    assert "--alter --topic cpkmon.inspections --partitions 4" in res.stderr, res.stderr
    assert _counts(broker.bootstrap) == {"cpkmon.measurements": 4, "cpkmon.inspections": 2}  # nothing written


# ------------------------------------------------------------------------- checkpoints and partition count
def _write(
    bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes | None]], partitions: int
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    _write_existing(bootstrap, topic, records)


def _write_existing(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for p, key, value in records:
        producer.send(topic, value, key=key, partition=p)
    producer.flush()
    producer.close()


def _line(name: str, applied: dict[str, int]) -> bytes:
    st = LineState(name, core_options(Settings()))
    st.applied = dict(applied)
    return checkpoint.encode_line(st)


@pytest.mark.broker
def test_checkpoint_of_another_partition_count_is_refused(broker: EmbeddedBroker) -> None:
    options = core_options(Settings())
    p = owner_partition("L1", 4)
    _write(
        broker.bootstrap,
        "ck-a",
        [
            (p, b"L1", _line("L1", {"m": 7})),
            (p, checkpoint.PARTITION_KEY, checkpoint.encode_partition({"m": 7}, 4)),
        ],
        4,
    )
    ok = asyncio.run(checkpoint.restore([broker.bootstrap], "ck-a", [p], options, partition_count=4))
    assert ok[p].applied == {"m": 7} and set(ok[p].lines) == {"L1"} and ok[p].partitions == 4
    with pytest.raises(checkpoint.PartitionCountChanged, match=r"written under 4 partitions.*8 now"):
        asyncio.run(checkpoint.restore([broker.bootstrap], "ck-a", [p], options, partition_count=8))
    # an old partition record (no count): a line stored where it does not belong gives the change away
    wrong = next(q for q in range(4) if q != owner_partition("L2", 4))
    _write(
        broker.bootstrap,
        "ck-b",
        [
            (wrong, b"L2", _line("L2", {"m": 1})),
            (wrong, b"__partition__", orjson.dumps({"applied": {"m": 1}})),
        ],
        4,
    )
    with pytest.raises(checkpoint.PartitionCountChanged, match=r"\['L2'\] belong elsewhere"):
        asyncio.run(checkpoint.restore([broker.bootstrap], "ck-b", [wrong], options, partition_count=4))


@pytest.mark.broker
def test_partition_record_key_is_no_line_id_and_old_records_still_restore(broker: EmbeddedBroker) -> None:
    """``__partition__`` is a valid line id (SPEC §1): its state is a line like any other, while an old
    release's partition record under that key is still read (told apart by content)."""
    options = core_options(Settings())
    name = "__partition__"
    p = owner_partition(name, 4)
    _write(
        broker.bootstrap,
        "ck-c",
        [
            (p, b"__partition__", orjson.dumps({"version": 1, "applied": {"m": 3}})),  # an older release's
            (p, name.encode(), _line(name, {"m": 9})),
            (p, checkpoint.PARTITION_KEY, checkpoint.encode_partition({"m": 9}, 4)),
        ],
        4,
    )
    r = asyncio.run(checkpoint.restore([broker.bootstrap], "ck-c", [p], options, partition_count=4))[p]
    assert r.applied == {"m": 9} and list(r.lines) == [name] and r.lines[name].applied == {"m": 9}
    _write(
        broker.bootstrap,
        "ck-d",
        [(p, b"__partition__", orjson.dumps({"version": 1, "applied": {"m": 3}}))],
        4,
    )
    r = asyncio.run(checkpoint.restore([broker.bootstrap], "ck-d", [p], options, partition_count=4))[p]
    assert r.applied == {"m": 3} and r.lines == {}
    assert b"/" in checkpoint.PARTITION_KEY  # no line id can contain it


def test_topic_conflict_is_raised_by_check() -> None:
    from cpkmon.topics import Topics

    with pytest.raises(TopicConflict, match="disagree"):
        Topics(4, {}, [], "input topics disagree").check()
    assert Topics(4).check() == 4


@pytest.mark.broker
def test_worker_refuses_a_checkpoint_of_another_count_exits_non_zero_and_writes_nothing(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The inputs were raised from 2 to 4 partitions (and the checkpoint topic with them): the checkpoints say
    2, so the worker stops with the fix instead of restoring lines into partitions that no longer own them."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(t, 4, 1) for t in (*INPUTS, "cpkmon.worker-checkpoints")])
    admin.close()
    old = checkpoint.encode_partition({"cpkmon.measurements": 3}, 2)
    _write_existing(
        broker.bootstrap, "cpkmon.worker-checkpoints", [(p, checkpoint.PARTITION_KEY, old) for p in range(4)]
    )
    env = base_env(broker.bootstrap, tmp_path, CPKMON_WORKER_PORT=str(free_port()))
    res = subprocess.run(
        [sys.executable, "-m", "cpkmon.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode != 0
    assert "written under 2 partitions, the input topics have 4 now" in res.stderr, res.stderr[-3000:]
    assert "--delete --topic cpkmon.worker-checkpoints" in res.stderr
    records = [r for r in read_topic(broker.bootstrap, "cpkmon.worker-checkpoints")]
    assert len(records) == 4  # nothing written
