"""The notifier's delivery lanes against a real local HTTP receiver (no Kafka: records are dispatched as the
consumer would hand them over): retries through failures, timeouts and slow answers in order per alarm, a
bounded retry budget that releases the record, and the per-line rate limit's summaries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from cpkmon.notify.config import NotifyConfig, parse
from cpkmon.notify.service import Notifier
from cpkmon.settings import Settings
from tests.notify.events import history, per_alarm
from tests.notify.receiver import Receiver, troublesome

SECRET = "lane-secret-5d1e"
TP = TopicPartition("cpkmon.alarm-events", 0)


def config(receiver: Receiver, **extra: Any) -> NotifyConfig:
    raw = {
        "endpoints": [{"name": "mes", "url": receiver.url("/mes"), "secret_env": "MES_SECRET"}],
        "retry": {"max_attempts": 6, "initial_s": 0.02, "max_s": 0.2, "timeout_s": 0.5},
        "rate_limit": {"per_line": 1000, "window_s": 60},
        **extra,
    }
    return parse(raw, {"MES_SECRET": SECRET})


def run(
    cfg: NotifyConfig,
    body: Callable[[Notifier], Awaitable[None]],
    clock: Callable[[], float] = time.monotonic,
) -> Notifier:
    async def main() -> Notifier:
        notifier = Notifier(Settings(), cfg, CollectorRegistry(), clock=clock)
        notifier.session = aiohttp.ClientSession()
        try:
            await body(notifier)
        finally:
            for lane in notifier.lanes.values():
                assert lane.task is not None
                lane.task.cancel()
            await notifier.session.close()
        return notifier

    return asyncio.run(main())


async def drained(notifier: Notifier, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while notifier.pending:
        assert time.monotonic() < deadline, f"{notifier.pending} records still pending"
        await asyncio.sleep(0.05)


def sample(notifier: Notifier, name: str, **labels: str) -> float:
    value = notifier.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def test_every_event_delivered_in_order_per_alarm_through_failures_timeouts_and_slow_answers() -> None:
    events = history(["L1", "L2"], ["diameter"])
    with Receiver(plan=troublesome, secrets={"/mes": SECRET}) as rx:

        async def body(n: Notifier) -> None:
            for offset, e in enumerate(events):
                n.dispatch(TP, offset, _bytes(e))
            await drained(n)

        n = run(config(rx), body)
        firsts = rx.first_deliveries("/mes")
        assert rx.bad_signatures == []
        assert {d.key for d in firsts} == {f"{e['event_id']}:mes" for e in events}
        got = per_alarm([d.json()["event"] for d in firsts])
        assert got == per_alarm(events)  # in order per alarm
        actions = [troublesome("/mes", f"{e['event_id']}:mes", 1) for e in events]
        assert {"fail", "hang", "slow"} <= set(actions)  # the receiver did fail, hang and dawdle
    assert n.trackers[TP].committable() == len(events)
    assert sample(n, "cpkmon_notify_deliveries_total", endpoint="mes", outcome="delivered") == len(events)
    hang_or_fail = sum(1 for a in actions if a in ("fail", "hang"))
    assert sample(n, "cpkmon_notify_retries_total", endpoint="mes") >= hang_or_fail


@pytest.mark.parametrize(
    ("answer", "attempts", "outcome"), [("fail", 3, "failed"), ("reject", 1, "rejected")]
)
def test_a_dead_or_refusing_receiver_is_bounded_recorded_and_does_not_block_the_line(
    answer: str, attempts: int, outcome: str
) -> None:
    events = history(["L1"], ["diameter"])[:4]
    bad = f"{events[1]['event_id']}:mes"
    with Receiver(plan=lambda path, key, n: answer if key == bad else "ok") as rx:

        async def body(n: Notifier) -> None:
            for offset, e in enumerate(events):
                n.dispatch(TP, offset, _bytes(e))
            await drained(n)

        n = run(config(rx, retry={"max_attempts": 3, "initial_s": 0.01, "max_s": 0.05}), body)
        assert rx.attempts[("/mes", bad)] == attempts
        assert [d.key for d in rx.delivered("/mes")] == [
            f"{e['event_id']}:mes" for e in events if e is not events[1]
        ]
    assert sample(n, "cpkmon_notify_deliveries_total", endpoint="mes", outcome=outcome) == 1
    assert n.trackers[TP].committable() == len(events)  # released: the partition's commits go on


def test_a_flood_on_one_line_becomes_one_summary_per_window() -> None:
    now = [1000.0]
    flood = [e for e in history(["L1"], ["a", "b", "c", "d"], cycles=1)][:20]
    calm = history(["L2"], ["a"])[:2]
    later = history(["L1"], ["z"])[0]
    with Receiver() as rx:

        async def body(n: Notifier) -> None:
            offset = 0
            for e in flood + calm:
                n.dispatch(TP, offset, _bytes(e))
                offset += 1
            await asyncio.sleep(0.5)
            assert n.pending == 17  # held in L1's window, not committable yet
            now[0] += 61  # the window ends; the next event of the line first sends the summary
            n.dispatch(TP, offset, _bytes(later))
            await drained(n)

        n = run(config(rx, rate_limit={"per_line": 3, "window_s": 60}), body, clock=lambda: now[0])
        docs = [d.json() for d in rx.delivered("/mes")]
    l1 = [d for d in docs if d.get("line", d.get("event", {}).get("line")) == "L1"]
    assert [d["type"] for d in l1] == ["alarm_event"] * 3 + ["alarm_summary", "alarm_event"]
    assert l1[3]["count"] == 17 and l1[3]["event_ids"] == [e["event_id"] for e in flood[3:]]
    assert l1[4]["event"]["event_id"] == later["event_id"]  # after the summary: order kept
    assert [d["event"]["event_id"] for d in docs if d.get("event", {}).get("line") == "L2"] == [
        e["event_id"] for e in calm
    ]  # another line is not limited by L1's flood
    assert sample(n, "cpkmon_notify_rate_limited_summaries_total", endpoint="mes", line="L1") == 1
    assert sample(n, "cpkmon_notify_rate_limited_events_total", endpoint="mes", line="L1") == 17


def test_an_idle_line_gets_its_summary_when_the_window_ends() -> None:
    now = [0.0]
    flood = history(["L1"], ["a", "b"])[:6]
    with Receiver() as rx:

        async def body(n: Notifier) -> None:
            ticker = asyncio.create_task(n._ticker())
            for offset, e in enumerate(flood):
                n.dispatch(TP, offset, _bytes(e))
            await asyncio.sleep(0.3)
            assert len(rx.delivered("/mes")) == 2
            now[0] += 5  # no further event of L1: the flush timer closes the window
            await drained(n, timeout=10)
            ticker.cancel()

        run(config(rx, rate_limit={"per_line": 2, "window_s": 4}), body, clock=lambda: now[0])
        docs = [d.json() for d in rx.delivered("/mes")]
    assert [d["type"] for d in docs] == ["alarm_event", "alarm_event", "alarm_summary"]
    assert docs[2]["event_ids"] == [e["event_id"] for e in flood[2:]]


def test_records_that_are_not_alarm_events_are_skipped_and_committed() -> None:
    with Receiver() as rx:

        async def body(n: Notifier) -> None:
            n.dispatch(TP, 0, b"not json")
            n.dispatch(TP, 1, b'{"line": "L1"}')
            n.dispatch(TP, 2, None)
            await drained(n)

        n = run(config(rx), body)
        assert rx.delivered("/mes") == []
    assert n.trackers[TP].committable() == 3
    assert sample(n, "cpkmon_notify_skipped_records_total", reason="not_json") == 1
    assert sample(n, "cpkmon_notify_skipped_records_total", reason="missing_event_id") == 1


def _bytes(doc: dict[str, Any]) -> bytes:
    import json

    return json.dumps(doc).encode()
