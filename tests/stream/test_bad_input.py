"""Bad input never crashes a worker and is never silently dropped (SPEC §2): it is dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from cpkmon.broker import EmbeddedBroker
from cpkmon.stream.events import decode
from tests.stream.harness import (
    TOPIC,
    Feed,
    base_env,
    latest_status,
    read_topic,
    running,
    start_worker,
    wait_until,
)

GOOD_M = {
    "event_id": "g",
    "ts": "2026-11-20T08:15:02.125Z",
    "line": "BAD1",
    "station": "S1",
    "characteristic": "x",
    "value": 1.0,
}
GOOD_I = {"event_id": "gi", "ts": 1_795_000_000_000, "line": "BAD1", "station": "S1", "passed": True}
GOOD_Q = {
    "event_id": "gq",
    "ts": 1_795_000_000_000,
    "line": "BAD1",
    "internal_loss": 1.0,
    "external_loss": 0.0,
    "output_value": 100.0,
}


def _m(**over: Any) -> dict[str, Any]:
    d = dict(GOOD_M, **over)
    return {k: v for k, v in d.items() if v is not _DROP}


_DROP = object()

# (kind, raw bytes, events in the message) — every one of these is bad.
BAD: list[tuple[str, str, bytes | None, int]] = [
    ("not json", "measurement", b"this is not json", 1),
    ("invalid utf-8", "measurement", b'\xff\xfe{"line": "x"}', 1),
    ("null value (tombstone)", "measurement", None, 1),
    ("empty bytes", "measurement", b"", 1),
    ("json string", "measurement", b'"hello"', 1),
    ("json number", "measurement", b"42", 1),
    ("empty array", "measurement", b"[]", 1),
    ("array of a number", "measurement", b"[1]", 1),
    ("deeply nested", "measurement", b"[" * 100_000 + b"]" * 100_000, 1),
    (
        "NaN token",
        "measurement",
        b'{"event_id":"n","ts":1,"line":"BAD1","characteristic":"x","value":NaN}',
        1,
    ),
    ("1e999", "measurement", b'{"event_id":"e","ts":1,"line":"BAD1","characteristic":"x","value":1e999}', 1),
    ("missing event_id", "measurement", orjson.dumps(_m(event_id=_DROP)), 1),
    ("event_id too long", "measurement", orjson.dumps(_m(event_id="e" * 129)), 1),
    ("empty event_id", "measurement", orjson.dumps(_m(event_id="")), 1),
    ("missing ts", "measurement", orjson.dumps(_m(ts=_DROP)), 1),
    ("ts not a date", "measurement", orjson.dumps(_m(ts="yesterday")), 1),
    ("ts without offset", "measurement", orjson.dumps(_m(ts="2026-11-20T08:15:02")), 1),
    ("ts float", "measurement", orjson.dumps(_m(ts=1.5)), 1),
    ("ts bool", "measurement", orjson.dumps(_m(ts=True)), 1),
    ("ts negative", "measurement", orjson.dumps(_m(ts=-5)), 1),
    ("missing line", "measurement", orjson.dumps(_m(line=_DROP)), 1),
    ("line with a space", "measurement", orjson.dumps(_m(line="L 1")), 1),
    ("line too long", "measurement", orjson.dumps(_m(line="L" * 65)), 1),
    ("line not a string", "measurement", orjson.dumps(_m(line=7)), 1),
    ("missing characteristic", "measurement", orjson.dumps(_m(characteristic=_DROP)), 1),
    ("value a string", "measurement", orjson.dumps(_m(value="1.0")), 1),
    ("value a bool", "measurement", orjson.dumps(_m(value=True)), 1),
    ("value null", "measurement", orjson.dumps(_m(value=None)), 1),
    ("value and values", "measurement", orjson.dumps(_m(values={"y": 1.0})), 1),
    ("empty values", "measurement", orjson.dumps(_m(characteristic=_DROP, value=_DROP, values={})), 1),
    (
        "values bad name",
        "measurement",
        orjson.dumps(_m(characteristic=_DROP, value=_DROP, values={"a b": 1})),
        1,
    ),
    (
        "values a string",
        "measurement",
        orjson.dumps(_m(characteristic=_DROP, value=_DROP, values={"x": "1"})),
        1,
    ),
    ("subgroup an object", "measurement", orjson.dumps(_m(subgroup={"a": 1})), 1),
    ("no spec for it", "measurement", orjson.dumps(_m(characteristic="nospec")), 1),
    ("oversize", "measurement", orjson.dumps(_m(station="S" * 10, pad="p" * 5000)), 1),
    (
        "inspection without passed",
        "inspection",
        orjson.dumps({k: v for k, v in GOOD_I.items() if k != "passed"}),
        1,
    ),
    ("inspection passed a string", "inspection", orjson.dumps(dict(GOOD_I, passed="yes")), 1),
    ("inspection negative defects", "inspection", orjson.dumps(dict(GOOD_I, defects=-1)), 1),
    ("inspection zero opportunities", "inspection", orjson.dumps(dict(GOOD_I, opportunities=0)), 1),
    (
        "inspection without station",
        "inspection",
        orjson.dumps({k: v for k, v in GOOD_I.items() if k != "station"}),
        1,
    ),
    ("cost zero output", "quality_cost", orjson.dumps(dict(GOOD_Q, output_value=0)), 1),
    ("cost negative loss", "quality_cost", orjson.dumps(dict(GOOD_Q, internal_loss=-1.0)), 1),
    (
        "cost missing external",
        "quality_cost",
        orjson.dumps({k: v for k, v in GOOD_Q.items() if k != "external_loss"}),
        1,
    ),
]


@pytest.mark.parametrize(("name", "kind", "raw", "events"), BAD, ids=[b[0] for b in BAD])
def test_every_bad_kind_is_rejected_with_a_reason(
    name: str, kind: Any, raw: bytes | None, events: int
) -> None:
    good, bad = decode(kind, raw, max_bytes=4096)
    if name == "no spec for it":  # valid as an event; dead-lettered by the processor for lack of a spec
        assert len(good) == 1 and not bad
        return
    assert not good, f"{name}: accepted {good}"
    assert len(bad) == events and all(b.reason for b in bad), f"{name}: {bad}"
    json.dumps(bad[0].payload)  # the payload is JSON-safe for the dead-letter record


@pytest.mark.broker
def test_bad_input_interleaved_with_good_and_redeliveries(broker: EmbeddedBroker, tmp_path: Path) -> None:
    feed = Feed(partitions=8)
    feed.spec(line="BAD1", characteristic="x", lsl=0.0, usl=2.0, subgroup_size=5)
    feed.spec(line="BAD1", characteristic="y", lsl=0.0, usl=2.0, subgroup_size=5)
    produced = 0
    good_values = 0
    n = 0
    for rnd in range(3):
        for _name, kind, raw, events in BAD:
            n += 1
            doc = dict(GOOD_M, event_id=f"m-{n}", value=1.0 + (n % 5) * 0.01)
            feed.add("measurement", doc)
            produced += 1
            good_values += 1
            # bad records are keyed by the good line so they land on its partition among good ones
            feed.messages.append((TOPIC[kind], "BAD1", raw, feed.messages[-1][3]))
            produced += events
            if n % 4 == 0:  # a redelivery of the good event: counted once
                feed.add("measurement", doc)
                produced += 1
        # a batch mixing good and bad elements: each element judged on its own
        batch = [dict(GOOD_M, event_id=f"batch-{rnd}-{k}", value=1.1) for k in range(4)] + [
            {"line": "BAD1"},
            7,
        ]
        feed.add("measurement", batch)
        produced += len(batch)
        good_values += 4
        feed.add("inspection", dict(GOOD_I, event_id=f"i-{rnd}"))
        feed.add("quality_cost", dict(GOOD_Q, event_id=f"q-{rnd}"))
        produced += 2
    env = base_env(broker.bootstrap, tmp_path, CPKMON_MAX_MESSAGE_BYTES="4096")
    worker = start_worker(env, tmp_path)
    with running(worker):
        feed.produce(broker.bootstrap)

        def settled() -> dict[str, float] | None:
            ev = worker.get("/healthz")["events"]
            return ev if sum(ev.values()) >= produced else None

        events = wait_until(settled, 60, what="every produced event counted")
        status = wait_until(lambda: latest_status(broker.bootstrap).get("BAD1"), 20, what="BAD1 status")
        assert worker.popen is not None and worker.popen.poll() is None, "the worker died"
    accepted = sum(v for k, v in events.items() if k.endswith(":accepted"))
    duplicate = sum(v for k, v in events.items() if k.endswith(":duplicate"))
    dead = sum(v for k, v in events.items() if k.endswith(":dead_letter"))
    assert accepted + duplicate + dead == produced, events
    assert accepted == good_values + 3 + 3
    dlq = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "cpkmon.dead-letter")]
    assert len(dlq) == dead
    assert all({"topic", "partition", "offset", "reason", "payload"} <= d.keys() and d["reason"] for d in dlq)
    assert (
        len(
            {(d["topic"], d["partition"], d["offset"], json.dumps(d["payload"], sort_keys=True)) for d in dlq}
        )
        >= len(BAD) * 3
    )
    values_total = sum(c["values_total"] for c in status["characteristics"])
    assert values_total == good_values
