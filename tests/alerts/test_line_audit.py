"""A line audits itself (issue 12): ``LineState`` builds the records of its chain ``worker:<line>`` — limits
frozen at the end of Phase I, limits re-frozen by a re-baseline, every alarm activation and clear — with
before/after, dated by event time, and keeps the chain's head in its checkpoint, so a restored line continues
the chain and a replay rebuilds the same records byte for byte.
"""

from __future__ import annotations

import json
import random
from typing import Any

from cpkmon.alerts.alarms import alarm_id
from cpkmon.alerts.audit import Head, Stored, check, verify
from cpkmon.alerts.ladder import grade_ref
from cpkmon.alerts.line import LineState
from cpkmon.alerts.model import AUDIT_GENESIS, AuditRecord, validate_strict
from cpkmon.alerts.process_alarms import ProcessAlarms
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec
from cpkmon.capability.timeutil import parse_ts

T0 = 1_763_626_502.0
SPEC = Spec(lsl=9.0, usl=11.0, subgroup_size=4)
OPTS = Options(window_subgroups=8, min_subgroups=5, run_rules=(1,), alarm_clear_subgroups=3, chart_points=20)
#: 8 subgroups in control (limits freeze at the 5th), 2 beyond the upper limit, then 4 in control
EPISODE = [10.0] * 8 + [10.5] * 2 + [10.0] * 4


class Feeder:
    """Subgroups of four values of ``bore`` on line L1, one value per second of event time."""

    def __init__(self, line: LineState | None = None, seed: int = 1) -> None:
        self.line = line or LineState("L1", OPTS)
        self.rnd = random.Random(seed)
        self.i = 0

    def run(self, centres: list[float]) -> list[dict[str, Any]]:
        """Feed the subgroups; the audit records they produced."""
        for centre in centres:
            for _ in range(4):
                self.i += 1
                self.line.measurement("bore", SPEC, "S1", self.rnd.gauss(centre, 0.05), T0 + self.i,
                                      f"m{self.i}", None, T0 + self.i + 0.5)
        self.line.take_alarm_events()
        return self.line.take_audit_records()


def _stored(records: list[dict[str, Any]]) -> list[Stored]:
    return [Stored(0, i, json.dumps(r).encode()) for i, r in enumerate(records)]


def test_phase_one_end_and_an_out_of_control_episode_are_audited_in_order() -> None:
    f = Feeder()
    recs = f.run(EPISODE)
    assert [r["what"] for r in recs] == ["limits.freeze", "alarm.activate", "alarm.clear"]
    assert [r["seq"] for r in recs] == [1, 2, 3] and recs[0]["prev_hash"] == AUDIT_GENESIS
    assert {r["chain"] for r in recs} == {"worker:L1"} and {r["who"] for r in recs} == {"worker"}
    for r in recs:
        validate_strict(AuditRecord, r)
    assert verify(_stored(recs)) == []
    freeze, act, clear = recs
    # the limits frozen at the 5th close (Phase I end): none before, the chart's limits after
    assert freeze["subject"] == "L1/bore"
    assert freeze["before"] is None
    limits = f.line.characteristics["bore"].chart.limits()
    assert freeze["after"] == json.loads(json.dumps(limits)) and freeze["after"]["source"] == "baseline"
    assert parse_ts(freeze["at"]) == T0 + 5 * 4  # the event time of the close that froze them
    # the alarm's condition before/after, the event's fields in ``after``
    assert act["subject"] == clear["subject"] == alarm_id("L1", "control", "bore")
    assert act["before"] == {"active": False} and act["after"]["active"] is True
    assert act["after"]["rules"] == [1] and act["after"]["severity"] == "high"
    assert clear["before"] == {"active": True} and clear["after"]["active"] is False
    assert f.line.audit.head == Head(3, clear["hash"])


def test_the_records_match_the_alarm_events_they_audit() -> None:
    line = LineState("L1", OPTS)
    f = Feeder(line)
    events: list[dict[str, Any]] = []
    for centre in EPISODE:
        for _ in range(4):
            f.i += 1
            line.measurement("bore", SPEC, "S1", f.rnd.gauss(centre, 0.05), T0 + f.i, f"m{f.i}", None,
                             T0 + f.i + 0.5)
        events += line.take_alarm_events()
    recs = [r for r in line.take_audit_records() if r["what"].startswith("alarm.")]
    assert [(r["what"], r["at"], r["after"]["event_id"]) for r in recs] == [
        (f"alarm.{e['kind']}", e["at"], e["event_id"]) for e in events
    ]


def test_a_rebaseline_records_the_limits_before_and_after() -> None:
    f = Feeder()
    f.run([10.0] * 8)
    before = f.line.characteristics["bore"].chart.limits()
    f.run([10.3] * 8)  # the process moved: a re-baseline re-centres the limits
    head = f.line.audit.head
    assert f.line.rebaseline("bore", T0 + 1000.0) is not None
    (rec,) = [r for r in f.line.take_audit_records() if r["what"].startswith("limits.")]
    after = f.line.characteristics["bore"].chart.limits()
    assert rec["what"] == "limits.rebaseline_applied" and rec["subject"] == "L1/bore"
    assert rec["before"] == json.loads(json.dumps(before)) and rec["after"] == json.loads(json.dumps(after))
    assert rec["after"]["center"] > rec["before"]["center"] + 0.2
    assert parse_ts(rec["at"]) == T0 + 1000.0  # the command's time, not a clock
    assert rec["seq"] == head.seq + 1 and rec["prev_hash"] == head.hash
    assert f.line.rebaseline("nope") is None and f.line.take_audit_records() == []  # unknown: no record


def test_a_spec_deletion_clear_and_a_grade_alarm_are_audited() -> None:
    f = Feeder()
    f.run([10.0] * 8 + [10.5])
    assert f.line.retire("bore")
    (rec,) = f.line.take_audit_records()
    assert rec["what"] == "alarm.clear" and rec["subject"] == alarm_id("L1", "control", "bore")
    # grade alarms: the same ProcessAlarms, fed by the grade alerts
    pa = ProcessAlarms(3, f.line.audit)
    degraded = {"type": "grade_degraded", "alert_id": "a1", "from_grade": grade_ref(4, chinese=False),
                "to_grade": grade_ref(2, chinese=False),
                "limiting": {"criterion": "cpk", "subject": "bore", "value": 1.1, "threshold": 1.33}}
    pa.grade_alerts("L1", [degraded], 4, T0 + 99)
    (grade,) = f.line.take_audit_records()
    assert grade["what"] == "alarm.activate" and grade["subject"] == alarm_id("L1", "grade")
    assert grade["after"]["severity"] == "high" and grade["after"]["to_grade"]["level"] == 2
    assert grade["seq"] == rec["seq"] + 1 and grade["prev_hash"] == rec["hash"]


def test_the_chain_head_survives_a_checkpoint_and_a_replay_rebuilds_identical_records() -> None:
    whole = Feeder()
    want = whole.run(EPISODE)
    for cut in (5, 9, 10):  # before the freeze, right after the activation, in the middle of the episode
        f = Feeder()
        got = f.run(EPISODE[:cut])
        state = json.loads(json.dumps(f.line.to_dict()))
        assert state["audit"] == {"seq": len(got), "hash": got[-1]["hash"] if got else AUDIT_GENESIS}
        f.line = LineState.from_dict(state, OPTS)
        assert f.line.audit.head == Head(len(got), got[-1]["hash"] if got else AUDIT_GENESIS)
        # a replay of the tail from this checkpoint: the same records, byte for byte
        got += f.run(EPISODE[cut:])
        assert json.dumps(got) == json.dumps(want), cut
    # a crash after publishing but before the next checkpoint: the replayed records duplicate identically
    f = Feeder()
    first = f.run(EPISODE[:9])
    saved = json.loads(json.dumps(f.line.to_dict()))
    tail = f.run(EPISODE[9:])
    again = Feeder(LineState.from_dict(saved, OPTS))
    again.i = f.i - 4 * len(EPISODE[9:])
    replay = again.run(EPISODE[9:])
    assert replay == tail
    verdict = check(_stored([*first, *tail, *replay]))
    assert verdict.problems == [] and verdict.republished == {(0, "worker:L1"): len(tail)}


def test_a_checkpoint_written_before_the_worker_audited_starts_a_fresh_chain() -> None:
    f = Feeder()
    f.run([10.0] * 8)
    old = f.line.to_dict()
    del old["audit"]
    line = LineState.from_dict(json.loads(json.dumps(old)), OPTS)
    assert line.audit.head == Head()
    g = Feeder(line)
    g.i = f.i
    recs = g.run([10.5])
    assert [(r["what"], r["seq"], r["prev_hash"]) for r in recs] == [("alarm.activate", 1, AUDIT_GENESIS)]
