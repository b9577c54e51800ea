"""The partition state machine without a broker: checkpoints, restore from any prefix, replay, spec holds,
revocation mid-batch and commands (issue 11). The broker tests (crash, fail-over) stay for the guarantee."""

from __future__ import annotations

from dataclasses import dataclass, replace

import orjson
import pytest

from cpkmon.alerts.audit import Stored, check
from cpkmon.stream import checkpoint
from cpkmon.stream.machine import Effects, Hold, PartitionMachine, Record, merge_topics
from cpkmon.stream.specs import SpecRegistry
from tests.stream.streams import (
    CMD,
    INS,
    OPTIONS,
    PARTS,
    A,
    B,
    Item,
    M,
    P,
    build,
    by_line,
    drive,
    machine,
    statuses,
)


@dataclass(frozen=True)
class CkRecord:
    """A record of the checkpoint topic as the restore reads it."""

    partition: int
    key: bytes
    value: bytes


def _alerts(eff: Effects) -> list[bytes]:
    return [orjson.dumps(a) for a in eff.alerts]


def _run_with_checkpoints(
    seed: int, every: int
) -> tuple[list[Item], list[CkRecord], list[tuple[Record, list[bytes]]], dict[str, bytes]]:
    """One uninterrupted run, one record at a time, checkpointing every ``every`` records. Returns the items,
    the checkpoint topic's records, the alerts of every input record and the final statuses."""
    stream = build(seed)
    specs = SpecRegistry()
    m = machine(specs)
    log: list[CkRecord] = []
    per_record: list[tuple[Record, list[bytes]]] = []
    for i, it in enumerate(stream.items):
        eff = drive(m, specs, [it])
        if it.record is not None:
            per_record.append((it.record, _alerts(eff)))
        if i % every == every - 1:
            log += [CkRecord(P, k, v) for k, v in m.checkpoint()]
    log += [CkRecord(P, k, v) for k, v in m.checkpoint()]
    return stream.items, log, per_record, statuses(m)


def test_checkpoint_writes_changed_lines_then_the_partition_record() -> None:
    stream = build(1, subgroups=6)
    specs = SpecRegistry()
    m = machine(specs)
    assert m.checkpoint() == []  # nothing applied yet
    drive(m, specs, stream.items)
    first = m.checkpoint()
    keys = [k for k, _ in first]
    assert keys[-1] == checkpoint.PARTITION_KEY and checkpoint.PARTITION_KEY not in keys[:-1]
    assert sorted(keys[:-1]) == sorted(line.encode() for line in m.lines)
    part = orjson.loads(first[-1][1])
    assert part["applied"] == m.snapshot().applied and part["partitions"] == PARTS
    for _, raw in first[:-1]:
        assert orjson.loads(raw)["applied"] == part["applied"]  # every line stamped with the offsets
    assert m.checkpoint() == []  # nothing changed since
    # a record whose events are all duplicates moves the offsets only: the partition record alone
    m.apply([Record(M, P, 10_000, 0, None, stream.records[0].value)])
    again = m.checkpoint()
    assert [k for k, _ in again] == [checkpoint.PARTITION_KEY]
    # a retired characteristic changes its line: the line first, then the partition record
    assert m.retire(A, "depth")
    assert [k for k, _ in m.checkpoint()] == [A.encode(), checkpoint.PARTITION_KEY]


@pytest.mark.parametrize(("seed", "every"), [(3, 7), (12, 3)])
def test_restore_from_every_checkpoint_prefix_and_replay_reproduces_state_and_alerts(
    seed: int, every: int
) -> None:
    """Every prefix of the checkpoint topic (mid-checkpoint included: line records without their partition
    record) restores a state from which a replay ends in the same statuses, and re-raises exactly the alerts
    of the records the restored lines do not hold, byte for byte (grade alerts included)."""
    items, log, per_record, final = _run_with_checkpoints(seed=seed, every=every)
    original = [a for _, alerts in per_record for a in alerts]
    assert any(b'"grade_degraded"' in a for a in original), "the stream must raise grade alerts"
    assert any(b'"out_of_control"' in a for a in original)
    checked = 0
    for k in range(len(log) + 1):
        restored = checkpoint.fold(log[:k], [P], OPTIONS, partition_count=PARTS)[P]
        # a restarted worker reads the specs before it restores (the stream's first items); the replay then
        # sees every later spec record at its position, as the original did
        specs = SpecRegistry()
        for it in items[: next(i for i, it in enumerate(items) if it.record is not None)]:
            assert it.spec is not None
            specs.apply_record(*it.spec)
        m = machine(specs)
        applied_at_restore = dict(restored.applied)
        line_applied = {name: dict(st.applied) for name, st in restored.lines.items()}
        m.restore(restored.applied, restored.lines)
        replay = Effects()
        for it in items:  # the shell seeks to m.position(topic): the machine skips what it holds
            replay.extend(drive(m, specs, [it]))
        assert statuses(m) == final, f"prefix {k}"
        got = _alerts(replay)
        assert set(got) <= set(original), f"prefix {k}: a replayed alert differs from the original"
        for rec, alerts in per_record:
            held = line_applied.get(_line_of(rec), applied_at_restore).get(rec.topic, -1)
            if rec.offset > held:
                for a in alerts:
                    assert a in got, f"prefix {k}: alert of {rec.topic}@{rec.offset} not replayed"
        checked += 1
    assert checked > 10


def _line_of(rec: Record) -> str:
    try:
        doc = orjson.loads(rec.value or b"null")
    except orjson.JSONDecodeError:
        return ""
    doc = doc[0] if isinstance(doc, list) and doc else doc
    return str(doc.get("line")) if isinstance(doc, dict) else ""


def test_spec_hold_queues_behind_the_held_record_and_release_applies_in_order() -> None:
    specs = SpecRegistry()
    m = machine(specs)
    doc = {"event_id": "x1", "ts": 1_795_000_000_000, "line": A, "characteristic": "bore", "value": 10.0}
    r0 = Record(INS, P, 0, 1, A.encode(), orjson.dumps({"event_id": "i1", "ts": 1_795_000_000_000, "line": A,
                                                      "station": "S1", "passed": True, "first_pass": True}))
    r1 = Record(M, P, 0, 2, A.encode(), orjson.dumps(doc))
    r2 = Record(M, P, 1, 3, A.encode(), orjson.dumps({**doc, "event_id": "x2", "value": 10.1}))
    eff = m.apply([r0, r1, r2])
    assert eff.held == Hold(M, 0, A, "bore")
    assert eff.counts == {(INS, "accepted"): 1}  # what came before the held record is applied
    assert m.position(M) == 0 and m.position(INS) == 1  # nothing of the held record is applied
    r3 = Record(M, P, 2, 4, A.encode(), orjson.dumps({**doc, "event_id": "x3", "value": 10.2}))
    queued = m.apply([r3])
    assert queued.held == eff.held and not queued and m.position(M) == 0  # queued behind the hold
    specs.set({"line": A, "characteristic": "bore", "lsl": 9.0, "usl": 11.0})  # the follower caught up
    done = m.release()
    assert done.held is None and done.counts == {(M, "accepted"): 3} and m.position(M) == 3
    values = m.lines[A].characteristics["bore"].values_total
    assert values == 3
    assert m.release() == Effects()  # nothing held


def test_a_spec_still_missing_after_release_is_dead_lettered_once_per_registry_version() -> None:
    specs = SpecRegistry()
    m = machine(specs)
    doc = {"event_id": "x1", "ts": 1_795_000_000_000, "line": B, "characteristic": "gone", "value": 1.0}
    recs = [Record(M, P, i, i, None, orjson.dumps({**doc, "event_id": f"x{i}"})) for i in range(3)]
    eff = m.apply(recs)
    assert eff.held == Hold(M, 0, B, "gone")
    done = m.release()
    # verified missing: the next records of the same characteristic do not hold again at this version
    assert done.held is None and done.counts == {(M, "dead_letter"): 3}
    assert [d["reason"].split(":")[0] for d in done.dead_letters] == ["no_spec"] * 3
    specs.set({"line": B, "characteristic": "other", "lsl": 0.0, "usl": 2.0})  # a new registry version
    again = m.apply([Record(M, P, 3, 3, None, orjson.dumps({**doc, "event_id": "x3"}))])
    assert again.held == Hold(M, 3, B, "gone")  # the registry changed: worth waiting for the follower again


def test_revocation_while_holding_hands_the_held_records_to_the_next_owner() -> None:
    """The first owner holds mid-batch and is revoked; its checkpoint covers only what it applied, and the
    next owner (restored from it, the late spec now known) ends where an uninterrupted owner ends."""
    stream = build(5, subgroups=12, nospec_rate=0.0)
    records = list(stream.records)
    cut = next(i for i in range(len(records) // 2, len(records)) if records[i].topic == M)
    late = {"event_id": "late-1", "ts": 1_795_000_000_000, "line": A, "characteristic": "late", "value": 1.0}
    records[cut] = replace(records[cut], value=orjson.dumps(late))
    all_specs = [it.spec for it in stream.items if it.spec is not None]
    late_doc = {"line": A, "characteristic": "late", "lsl": 0, "usl": 2}
    late_spec = (f"{A}/late".encode(), orjson.dumps(late_doc))

    def registry(with_late: bool) -> SpecRegistry:
        specs = SpecRegistry()
        for key, value in all_specs + ([late_spec] if with_late else []):
            specs.apply_record(key, value)
        return specs

    first = machine(registry(with_late=False))
    eff = first.apply(records)  # one big batch: holds at the late characteristic, mid-batch
    assert eff.held == Hold(M, records[cut].offset, A, "late")
    assert eff.counts[(M, "accepted")] > 0  # what came before it is applied
    ck = [CkRecord(P, k, v) for k, v in first.checkpoint()]  # the revocation's checkpoint
    assert orjson.loads(ck[-1].value)["applied"][M] == records[cut].offset - 1  # the held record: not covered
    del first  # revoked: the held records were never applied
    restored = checkpoint.fold(ck, [P], OPTIONS, partition_count=PARTS)[P]
    second = machine(registry(with_late=True))  # the producer's spec arrived meanwhile
    second.restore(restored.applied, restored.lines)
    eff2 = second.apply([r for r in records if r.offset >= second.position(r.topic)])
    assert eff2.held is None and eff2.counts[(M, "accepted")] > 0
    ref = machine(registry(with_late=True))  # one owner that knew every spec from the start
    ref.apply(records)
    assert statuses(second) == statuses(ref)
    assert second.lines[A].characteristics["late"].values_total == 1


def test_rebaseline_command_is_applied_once_across_checkpoint_and_replay() -> None:
    stream = build(8, subgroups=30)
    specs = SpecRegistry()
    m = machine(specs)
    total = drive(m, specs, stream.items)
    assert total.counts[(CMD, "accepted")] == 1
    ck = [CkRecord(P, k, v) for k, v in m.checkpoint()]
    restored = checkpoint.fold(ck, [P], OPTIONS, partition_count=PARTS)[P]
    again = machine(specs)
    again.restore(restored.applied, restored.lines)
    replay = again.apply(stream.records)  # a restart replaying the whole topics
    assert replay.counts[(CMD, "accepted")] == 0 and not replay.alerts
    assert statuses(again) == statuses(m)
    # a new command does run
    cmd = orjson.dumps({"command": "rebaseline", "line": A, "characteristic": "bore"})
    new = again.apply([Record(CMD, P, again.position(CMD), 0, A.encode(), cmd)])
    assert new.counts[(CMD, "accepted")] == 1


def test_status_due_after_interval_at_once_on_grade_alerts_and_all_on_force() -> None:
    stream = build(3)
    specs = SpecRegistry()
    m = machine(specs)
    drive(m, specs, stream.items[:40])
    first = m.status_due(now=100.0, interval=1.0)
    assert {line for line, _ in first} == set(m.lines)  # never published: due
    assert m.status_due(now=100.5, interval=1.0) == []  # nothing changed
    eff = drive(m, specs, stream.items[40:60])
    assert not any(str(a["type"]).startswith("grade_") for a in eff.alerts)
    assert m.status_due(now=100.5, interval=1.0) == []  # changed, but inside the interval
    later = m.status_due(now=101.0, interval=1.0)
    assert later and all(doc == orjson.dumps(m.lines[line].status()) for line, doc in later)
    # a grade alert makes its line due at once, inside the interval
    eff = drive(m, specs, stream.items[60:])
    graded = {str(a["line"]) for a in eff.alerts if str(a["type"]).startswith("grade_")}
    assert graded, "the stream must raise a grade alert after item 60"
    due_now = {line for line, _ in m.status_due(now=101.2, interval=1.0)}
    assert graded <= due_now
    m.restore(dict(m.applied), dict(m.lines))
    assert {line for line, _ in m.status_due(now=101.3, interval=1.0, force=True)} == set(m.lines)


def test_machine_is_usable_through_the_one_record_adapter() -> None:
    """``PartitionProcessor`` (tools, older tests) is the machine one record at a time, holds released."""
    from cpkmon.stream.processor import Outputs, PartitionProcessor

    stream = build(2, subgroups=10)
    specs = SpecRegistry()
    for it in stream.items:
        if it.spec is not None:
            specs.apply_record(*it.spec)
    out = Outputs()
    proc = PartitionProcessor(P, PARTS, OPTIONS, specs, {M: "measurement", INS: "inspection",
                                                         "in.q": "quality_cost"}, 1 << 20, out, CMD)
    for r in stream.records:
        proc.handle(r.topic, r.offset, r.timestamp, r.key, r.value)
    ref = PartitionMachine(P, PARTS, OPTIONS, specs, proc.machine.kinds, 1 << 20, CMD)
    eff = ref.apply(stream.records)
    while eff.held is not None:
        eff.extend(ref.release())
    assert statuses(proc.machine) == statuses(ref)


def test_merge_topics_keeps_offsets_per_topic_and_orders_topics_by_timestamp() -> None:
    def rec(topic: str, offset: int, ts: int) -> Record:
        return Record(topic, P, offset, ts, None, None)

    m_recs = [rec(M, 0, 10), rec(M, 1, 30), rec(M, 2, 20), rec(M, 3, 40)]  # a late producer clock at 2
    i_recs = [rec(INS, 0, 15), rec(INS, 1, 30), rec(INS, 2, 35)]
    merged = merge_topics([i_recs, m_recs], {M: 0, INS: 1})
    assert [(r.topic, r.offset) for r in merged] == [
        (M, 0), (INS, 0), (M, 1), (M, 2), (INS, 1), (INS, 2), (M, 3)
    ]  # ties go to the lower rank; M 2 (ts 20) never overtakes M 1
    assert merge_topics([m_recs], {}) == m_recs and merge_topics([], {}) == []


def test_a_backlog_fetched_in_one_batch_replays_what_small_live_batches_applied() -> None:
    """Live, records arrive a few at a time; a replay after a crash fetches the backlog at once, topic by
    topic. Merged by timestamp, the replay applies them in the live order: same grade alerts, same state.
    Applied topic after topic (as the worker did before), the grade alerts differ."""
    stream = build(3, nospec_rate=0.0, redeliver_rate=0.0)
    specs_items = [it for it in stream.items if it.spec is not None]

    def fresh() -> tuple[PartitionMachine, SpecRegistry]:
        specs = SpecRegistry()
        for it in specs_items:
            specs.apply_record(*it.spec)  # type: ignore[misc]
        return machine(specs), specs

    records = stream.records
    live, _ = fresh()
    live_alerts = Effects()
    for r in records:
        live_alerts.extend(live.apply([r]))
    per_topic: dict[str, list[Record]] = {}
    for r in records:
        per_topic.setdefault(r.topic, []).append(r)
    rank = {M: 0, INS: 1, "in.q": 2, CMD: 3}
    replay, _ = fresh()
    eff = replay.apply(merge_topics(list(per_topic.values()), rank))
    assert by_line(eff.alerts) == by_line(live_alerts.alerts) and statuses(replay) == statuses(live)
    old_order, _ = fresh()
    eff_old = old_order.apply([r for topic_records in per_topic.values() for r in topic_records])
    assert by_line(eff_old.alerts) != by_line(live_alerts.alerts)


# ------------------------------------------------------------------------------------------------- audit
def test_effects_carry_the_audit_records() -> None:
    rec = {"chain": "worker:L1", "seq": 1}
    eff = Effects(audit=[rec])
    assert eff  # audit records alone are something to publish
    total = Effects()
    total.extend(eff)
    assert total.audit == [rec]
    total.clear()
    assert total.audit == [] and not total


def test_a_replay_from_any_checkpoint_republishes_identical_audit_records() -> None:
    """The lines' audit chains (limit freezes, re-baselines, alarm transitions) come out in the effects; a
    worker that restores any prefix of the checkpoint topic and replays rebuilds only records it already
    published, byte for byte, so the topic holding both still verifies, with the same heads."""
    stream = build(8, subgroups=30)
    specs = SpecRegistry()
    m = machine(specs)
    log: list[CkRecord] = []
    published: list[dict[str, object]] = []
    for i, it in enumerate(stream.items):
        published += drive(m, specs, [it]).audit
        if i % 5 == 4:
            published += m.take_audit_records()  # the shell takes them right before the checkpoint
            log += [CkRecord(P, k, v) for k, v in m.checkpoint()]
    published += m.take_audit_records()
    log += [CkRecord(P, k, v) for k, v in m.checkpoint()]
    whats = {str(r["what"]) for r in published}
    assert {"limits.freeze", "limits.rebaseline_applied", "alarm.activate"} <= whats
    assert {str(r["chain"]) for r in published} == {f"worker:{line}" for line in m.lines}

    def stored(records: list[dict[str, object]]) -> list[Stored]:
        return [Stored(0, i, orjson.dumps(r)) for i, r in enumerate(records)]

    original = check(stored(published))
    assert original.problems == [] and original.republished == {}
    first = next(i for i, it in enumerate(stream.items) if it.record is not None)
    checked = 0
    for k in range(0, len(log) + 1, max(1, len(log) // 12)):
        restored = checkpoint.fold(log[:k], [P], OPTIONS, partition_count=PARTS)[P]
        specs2 = SpecRegistry()
        for it in stream.items[:first]:
            assert it.spec is not None
            specs2.apply_record(*it.spec)
        m2 = machine(specs2)
        m2.restore(restored.applied, restored.lines)
        replay: list[dict[str, object]] = []
        for it in stream.items:
            replay += drive(m2, specs2, [it]).audit
        replay += m2.take_audit_records()
        assert {orjson.dumps(r) for r in replay} <= {orjson.dumps(r) for r in published}, f"prefix {k}"
        both = check(stored(published + replay))
        assert both.problems == [] and both.heads == original.heads, f"prefix {k}"
        checked += 1
    assert checked > 5
