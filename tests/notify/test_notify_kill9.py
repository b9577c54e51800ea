"""``cpkmon notify`` end to end: the embedded broker, the notifier as a subprocess, a real receiver that
fails, hangs and answers slowly — and a ``kill -9`` of the notifier mid-stream.

What must hold (issue 12, "Notifications"): every transition reaches every endpoint that routes it at least
once, with its idempotency key, in order per alarm; the receiver verifies every signature; after the
``kill -9`` and a restart nothing is missing (the receiver deduplicates by key, and a re-delivered duplicate
is byte-identical); no secret appears in the notifier's output.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from cpkmon.broker import EmbeddedBroker, free_port, stop_process_group
from tests.notify.events import history, per_alarm
from tests.notify.receiver import Receiver, troublesome

pytestmark = [pytest.mark.broker]

TOPIC = "cpkmon.alarm-events"
MES_SECRET = "Mx7-hmac-secret-never-logged-41c9"
CHAT_TOKEN = "xoxT0kEn-chat-never-logged-8d2e"


async def _create_and_produce(bootstrap: str, events: list[dict[str, Any]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(TOPIC, json.dumps(e).encode(), key=e["line"].encode())
    finally:
        await producer.stop()


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "cpkmon.cli", "notify", "--loglevel", "debug"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(pred: Any, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"notify exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return str(resp.read().decode())


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver(plan=troublesome, secrets={"/mes": MES_SECRET}) as rx:
        yield rx


def test_kill9_mid_stream_then_restart_delivers_every_transition_in_order(
    broker: EmbeddedBroker, receiver: Receiver, tmp_path: Path
) -> None:
    events = history(["L1", "L2", "L3"], ["diameter", "bore"])  # 9 alarms × 12 transitions
    asyncio.run(_create_and_produce(broker.bootstrap, events))
    chat_url = receiver.url(f"/chat/services/T01/B02/{CHAT_TOKEN}")
    config = tmp_path / "notify.json"
    config.write_text(
        json.dumps(
            {
                "endpoints": [
                    {"name": "mes", "url": receiver.url("/mes"), "secret_env": "MES_HOOK_SECRET"},
                    {
                        "name": "chat",
                        "format": "slack",
                        "url_env": "CHAT_HOOK_URL",
                        "alarm_kinds": ["control"],
                        "events": ["activate", "clear"],
                    },
                ],
                "retry": {"max_attempts": 10, "initial_s": 0.05, "max_s": 0.5, "timeout_s": 0.6},
                "rate_limit": {"per_line": 1000, "window_s": 60},
            }
        )
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPKMON_")}
    env.update(
        CPKMON_BROKER=f"kafka://{broker.bootstrap}",
        CPKMON_NOTIFY_CONFIG=str(config),
        CPKMON_NOTIFY_PORT=str(port),
        CPKMON_NOTIFY_COMMIT_INTERVAL_MS="500",
        CPKMON_SESSION_TIMEOUT_MS="2000",
        CPKMON_HEARTBEAT_INTERVAL_MS="500",
        MES_HOOK_SECRET=MES_SECRET,
        CHAT_HOOK_URL=chat_url,
    )
    chat_events = [
        e for e in events if e["source"]["kind"] == "control" and e["kind"] in ("activate", "clear")
    ]
    log1, log2 = tmp_path / "notify-1.log", tmp_path / "notify-2.log"

    first = _start(env, log1)
    try:
        _wait(lambda: len(receiver.first_deliveries("/mes")) >= 30, 90, "30 deliveries", first, log1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # kill -9, mid-stream
        first.wait()
    before = len(receiver.first_deliveries("/mes"))
    assert before < len(events), "the notifier finished before the kill: nothing was tested"

    second = _start(env, log2)
    try:
        _wait(
            lambda: (
                len(receiver.first_deliveries("/mes")) == len(events)
                and len(receiver.first_deliveries(f"/chat/services/T01/B02/{CHAT_TOKEN}")) == len(chat_events)
            ),
            120,
            "every event at both endpoints",
            second,
            log2,
        )
        metrics = _metrics(port)
    finally:
        stop_process_group(second)  # SIGTERM: a clean stop commits what is done
    assert second.returncode == 0, log2.read_text()[-3000:]

    # every transition, with its idempotency key, in order per alarm, signatures verified
    assert receiver.bad_signatures == []
    for path, name, wanted in (
        ("/mes", "mes", events),
        (f"/chat/services/T01/B02/{CHAT_TOKEN}", "chat", chat_events),
    ):
        firsts = receiver.first_deliveries(path)
        assert [d.key for d in firsts] == [d.key for d in firsts if d.key.endswith(f":{name}")]
        assert {d.key for d in firsts} == {f"{e['event_id']}:{name}" for e in wanted}
        by_key = {f"{e['event_id']}:{name}": e for e in wanted}
        assert per_alarm([by_key[d.key] for d in firsts]) == per_alarm(wanted), f"{name}: order per alarm"
        # a re-delivery (timeout, or the records past the last commit after kill -9) is byte-identical
        bodies: dict[str, bytes] = {}
        for d in receiver.delivered(path):
            assert bodies.setdefault(d.key, d.body) == d.body
    # the second notifier resumed from the committed offsets instead of starting over
    resent = len(receiver.delivered("/mes")) - len(events)
    print(f"kill -9 after {before} of {len(events)} events; {resent} re-delivered after the restart")
    assert resent < before, f"{resent} duplicates: the restart did not resume from the commits"
    assert 'cpkmon_notify_deliveries_total{endpoint="mes",outcome="delivered"}' in metrics
    assert 'cpkmon_notify_retries_total{endpoint="mes"}' in metrics

    # secrets never logged: the HMAC key, the chat URL and its token
    output = log1.read_text() + log2.read_text()
    assert "attempt" in output and "DEBUG" in output  # the notifier did log, at debug level
    for secret in (MES_SECRET, CHAT_TOKEN, chat_url):
        assert secret not in output


def test_a_second_notifier_joining_mid_stream_takes_partitions_and_loses_nothing(
    broker: EmbeddedBroker, receiver: Receiver, tmp_path: Path
) -> None:
    """Failover and scale-out: two processes in the group split the partitions; the rebalance when the
    second joins hands over partitions with records in flight — the new owner resumes from the commits."""
    events = history(["L1", "L2", "L3", "L4"], ["diameter"])  # 8 alarms × 12 transitions
    asyncio.run(_create_and_produce(broker.bootstrap, events))
    config = tmp_path / "notify.json"
    config.write_text(
        json.dumps(
            {
                "endpoints": [{"name": "mes", "url": receiver.url("/mes"), "secret_env": "MES_HOOK_SECRET"}],
                "retry": {"max_attempts": 10, "initial_s": 0.05, "max_s": 0.5, "timeout_s": 0.6},
                "rate_limit": {"per_line": 1000, "window_s": 60},  # every event on its own
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPKMON_")}
    env.update(
        CPKMON_BROKER=f"kafka://{broker.bootstrap}",
        CPKMON_NOTIFY_CONFIG=str(config),
        CPKMON_NOTIFY_COMMIT_INTERVAL_MS="500",
        CPKMON_SESSION_TIMEOUT_MS="2000",
        CPKMON_HEARTBEAT_INTERVAL_MS="500",
        MES_HOOK_SECRET=MES_SECRET,
    )
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = _start({**env, "CPKMON_NOTIFY_PORT": "0"}, logs[0])
    b: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: len(receiver.first_deliveries("/mes")) >= 15, 90, "15 deliveries", a, logs[0])
        b = _start({**env, "CPKMON_NOTIFY_PORT": "0"}, logs[1])
        _wait(lambda: len(receiver.first_deliveries("/mes")) == len(events), 120, "every event", b, logs[1])
    finally:
        stop_process_group(a)
        stop_process_group(b)
    firsts = receiver.first_deliveries("/mes")
    assert receiver.bad_signatures == []
    by_key = {f"{e['event_id']}:mes": e for e in events}
    assert {d.key for d in firsts} == set(by_key)
    assert per_alarm([by_key[d.key] for d in firsts]) == per_alarm(events)
    assert "assigned" in logs[1].read_text()  # the second process did take partitions over
    assert ":mes: delivered" in logs[1].read_text()  # and delivered from them
