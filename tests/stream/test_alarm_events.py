"""The worker writes the process side of the alarms (issue 12) to ``cpkmon.alarm-events``.

The machine hands ``LineState``'s alarm events out in its effects (a spec deletion's clear too, which happens
outside ``apply``), and a real worker on the embedded broker publishes ``activate`` then ``clear`` for an
out-of-control episode, keyed by line, the activation naming the ``out_of_control`` alert that raised it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from cpkmon.alerts.alarms import AlarmBook, alarm_id
from cpkmon.broker import EmbeddedBroker
from cpkmon.capability.options import Options
from cpkmon.stream import checkpoint
from cpkmon.stream.machine import PartitionMachine, Record
from cpkmon.stream.specs import SpecRegistry
from tests.stream.harness import Feed, base_env, read_topic, running, start_worker, wait_until

TOPIC = "cpkmon.measurements"
T0_MS = 1_795_000_000_000
#: 8 subgroups in control (limits freeze at 5), 2 beyond the upper limit, then 4 in control
EPISODE = [10.0] * 8 + [10.5] * 2 + [10.0] * 4
OPTIONS = Options(window_subgroups=8, min_subgroups=5, run_rules=(1,), alarm_clear_subgroups=3,
                  chart_points=20)


def _values(centres: list[float], seed: int = 5) -> list[dict[str, Any]]:
    """Measurement documents of ``bore`` on line L1: four values per subgroup, 100 ms apart."""
    rnd = random.Random(seed)
    docs = []
    for sg, centre in enumerate(centres):
        for k in range(4):
            i = sg * 4 + k
            docs.append({"event_id": f"m{i}", "ts": T0_MS + i * 100, "line": "L1", "station": "S1",
                         "characteristic": "bore", "value": round(rnd.gauss(centre, 0.05), 5),
                         "subgroup": f"sg{sg}"})
    return docs


def _machine() -> PartitionMachine:
    specs = SpecRegistry(OPTIONS.subgroup_size)
    specs.set({"line": "L1", "characteristic": "bore", "lsl": 9.0, "usl": 11.0, "subgroup_size": 4})
    return PartitionMachine(0, 1, OPTIONS, specs, {TOPIC: "measurement"}, 1 << 20)


def _records(docs: list[dict[str, Any]], start: int = 0) -> list[Record]:
    return [Record(TOPIC, 0, start + i, int(d["ts"]), b"L1", orjson.dumps(d)) for i, d in enumerate(docs)]


def test_the_machine_returns_the_alarm_events_in_its_effects() -> None:
    m = _machine()
    docs = _values(EPISODE)
    eff = m.apply(_records(docs))
    assert [e["kind"] for e in eff.alarm_events] == ["activate", "clear"]
    assert eff.alarm_events[0]["alert_id"] == next(a["alert_id"] for a in eff.alerts)
    assert m.take_alarm_events() == []  # nothing left behind: all came with the effects


def test_a_spec_deletion_clear_comes_out_before_later_effects_or_with_the_checkpoint() -> None:
    m = _machine()
    eff = m.apply(_records(_values(EPISODE[:10])))
    assert [e["kind"] for e in eff.alarm_events] == ["activate"]
    assert m.retire("L1", "bore")
    # not lost and not reordered: the next apply hands it out first …
    nxt = m.apply([])
    assert [(e["kind"], e["source"]) for e in nxt.alarm_events] == [
        ("clear", {"kind": "control", "characteristic": "bore"})
    ]
    # … or the shell takes it right before writing the checkpoint that holds the retired state
    m2 = _machine()
    m2.apply(_records(_values(EPISODE[:10])))
    m2.retire("L1", "bore")
    assert [e["kind"] for e in m2.take_alarm_events()] == ["clear"]
    assert m2.take_alarm_events() == []


def test_a_replay_from_a_checkpoint_republishes_identical_alarm_events() -> None:
    """A crash after the checkpoint: the restored machine replays the records since and writes the same
    events byte for byte (same ``event_id``), so the alarm counts them once."""
    records = _records(_values(EPISODE))
    live = _machine()
    first = live.apply(records[:37])  # the activation: the 9th subgroup closes at the 37th value
    saved = [Record("ckpt", 0, i, 0, k, v) for i, (k, v) in enumerate(live.checkpoint())]
    rest = live.apply(records[37:])
    assert [e["kind"] for e in first.alarm_events] == ["activate"]
    assert [e["kind"] for e in rest.alarm_events] == ["clear"]
    restored = checkpoint.fold(saved, [0], OPTIONS)[0]
    again = _machine()
    again.restore(restored.applied, restored.lines)
    start = again.position(TOPIC)
    assert start == 37
    replay = again.apply(records[start:])
    assert [orjson.dumps(e) for e in replay.alarm_events] == [orjson.dumps(e) for e in rest.alarm_events]
    book = AlarmBook()
    for e in [*first.alarm_events, *rest.alarm_events, *replay.alarm_events]:
        book.apply(e)
    assert book.view()[0].state == "rtn_unack" and book.view()[0].reactivations == 0


def test_a_worker_writes_activate_then_clear_for_an_out_of_control_episode(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    feed = Feed(partitions=8)
    feed.spec(line="L1", characteristic="bore", lsl=9.0, usl=11.0, subgroup_size=4)
    for doc in _values(EPISODE):
        feed.add("measurement", doc)
    env = base_env(broker.bootstrap, tmp_path, CPKMON_WINDOW_SUBGROUPS="8", CPKMON_MIN_SUBGROUPS="5",
                   CPKMON_RUN_RULES="1", CPKMON_ALARM_CLEAR_SUBGROUPS="3", CPKMON_CHART_POINTS="20")
    worker = start_worker(env, tmp_path)
    with running(worker):
        feed.produce(broker.bootstrap)

        def two_events() -> list[Any] | None:
            recs = read_topic(broker.bootstrap, "cpkmon.alarm-events")
            return recs if len(recs) >= 2 else None

        recs = wait_until(two_events, 60, what="activate and clear in cpkmon.alarm-events")
    assert {r.key for r in recs} == {b"L1"}
    events = [orjson.loads(r.value) for r in recs]
    assert [e["kind"] for e in events] == ["activate", "clear"]
    act, clear = events
    assert act["alarm_id"] == clear["alarm_id"] == alarm_id("L1", "control", "bore")
    assert act["rules"] == [1] and act["severity"] == "high"
    alerts = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "cpkmon.alerts")]
    ooc = [a for a in alerts if a["type"] == "out_of_control"]
    assert act["alert_id"] == ooc[0]["alert_id"]
    # the events are what the API's alarm book reads: unacknowledged, returned to normal
    book = AlarmBook()
    for e in events:
        book.apply(e)
    (alarm,) = book.view()
    assert alarm.state == "rtn_unack" and alarm.rules == [1]
