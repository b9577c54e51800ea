"""The worker's process-side alarm events (issue 12): ``LineState`` activates and clears one alarm per source.

Control alarms activate on the first firing and clear after ``alarm_clear_subgroups`` quiet closed subgroups,
with no event for firings while active (no chattering); grade alarms activate on a confirmed degradation and
clear when a recovery reaches the grade before the incident; a deleted spec clears its alarm; the state rides
in the line's checkpoint (old checkpoints load) and event ids are deterministic. The events are valid
``AlarmEvent`` documents that ``AlarmBook`` turns into the ISA-18.2 states.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from cpkmon.alerts.alarms import AlarmBook, alarm_id
from cpkmon.alerts.ladder import grade_ref
from cpkmon.alerts.line import LineState
from cpkmon.alerts.model import AlarmEvent, validate_strict
from cpkmon.alerts.process_alarms import ProcessAlarms
from cpkmon.capability.control import Violation
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec
from cpkmon.capability.timeutil import parse_ts

T0 = 1_763_626_502.0
SPEC = Spec(lsl=9.0, usl=11.0, subgroup_size=4)
OPTS = Options(window_subgroups=8, min_subgroups=5, run_rules=(1,), alarm_clear_subgroups=3, chart_points=20)


class Feeder:
    """Subgroups of four values of ``bore`` on one line, one value per second of event time."""

    def __init__(self, options: Options = OPTS, seed: int = 1) -> None:
        self.line = LineState("L1", options)
        self.rnd = random.Random(seed)
        self.i = 0

    def subgroup(self, centre: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One subgroup around ``centre``: (alerts, alarm events) it produced."""
        alerts: list[dict[str, Any]] = []
        for _ in range(4):
            self.i += 1
            _, out = self.line.measurement("bore", SPEC, "S1", self.rnd.gauss(centre, 0.05), T0 + self.i,
                                           f"m{self.i}", None, T0 + self.i + 0.5)
            alerts += out
        return alerts, self.line.take_alarm_events()

    def run(self, centres: list[float]) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        return [self.subgroup(c) for c in centres]


def _events(steps: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> list[tuple[int, str]]:
    return [(k, e["kind"]) for k, (_, evs) in enumerate(steps) for e in evs]


def test_control_alarm_activates_once_and_clears_after_the_quiet_subgroups() -> None:
    f = Feeder()
    assert _events(f.run([10.0] * 8)) == []  # baseline: in control, no alarm
    steps = f.run([10.5, 10.5, 10.5, 10.0, 10.0, 10.0, 10.0])
    # one activation at the first firing, nothing while it keeps firing, clear at the 3rd quiet subgroup
    assert _events(steps) == [(0, "activate"), (5, "clear")]
    alerts, (act,) = steps[0]
    (alert,) = alerts
    assert act["alarm_id"] == alarm_id("L1", "control", "bore")
    assert act["source"] == {"kind": "control", "characteristic": "bore"}
    assert act["rules"] == [1] and act["severity"] == "high"  # Test 1: high
    for key in ("alert_id", "value", "limit"):
        assert act[key] == alert[key], key
    assert act["at"] == alert["event_time"]
    clear = steps[5][1][0]
    assert parse_ts(clear["at"]) == T0 + f.i - 4  # the closing value of the third quiet subgroup
    for ev in (act, clear):
        validate_strict(AlarmEvent, ev)


def test_two_quiet_subgroups_do_not_clear_and_a_firing_restarts_the_count() -> None:
    f = Feeder()
    f.run([10.0] * 8)
    steps = f.run([10.5, 10.0, 10.0, 10.5, 10.0, 10.0, 10.0])
    assert _events(steps) == [(0, "activate"), (6, "clear")]


def test_a_firing_after_the_clear_activates_again_and_the_book_counts_a_reactivation() -> None:
    f = Feeder()
    f.run([10.0] * 8)
    steps = f.run([10.5, 10.0, 10.0, 10.0, 10.5])
    assert _events(steps) == [(0, "activate"), (3, "clear"), (4, "activate")]
    events = [e for _, evs in steps for e in evs]
    assert len({e["event_id"] for e in events}) == 3
    book = AlarmBook()
    states = []
    for e in events:
        book.apply(e)
        states.append(book.view()[0])
    # nobody acknowledged: unack → rtn_unack → unack again, the same occurrence re-activated (no new alarm)
    assert [s.state for s in states] == ["unack", "rtn_unack", "unack"]
    assert states[-1].reactivations == 1 and states[-1].occurrence == 1


def test_shape_rules_are_medium_and_the_clear_span_defaults_to_the_window() -> None:
    pa = ProcessAlarms(Options(window_subgroups=5).window_subgroups)
    v = Violation(rule=2, chart="x", seq=10, subgroup="#10", value=10.2, limit=None, event_time=T0)
    pa.subgroup_closed("L1", "bore", 10, T0, [v])
    (act,) = pa.take()
    assert act["severity"] == "medium" and act["rules"] == [2]
    assert "alert_id" not in act  # no alert given: the tracker suppressed it
    assert "limit" not in act  # a shape test crosses no limit
    for seq in range(11, 15):
        pa.subgroup_closed("L1", "bore", seq, T0 + seq, [])
    assert pa.take() == []  # four quiet subgroups of five
    pa.subgroup_closed("L1", "bore", 15, T0 + 15, [])
    assert [e["kind"] for e in pa.take()] == ["clear"]
    line = LineState("L1", Options(window_subgroups=7))
    assert line.alarms.clear_after == 7


def _grade_alert(type_: str, before: int, after: int, aid: str) -> dict[str, Any]:
    return {"type": type_, "alert_id": aid, "from_grade": grade_ref(before, chinese=False),
            "to_grade": grade_ref(after, chinese=False),
            "limiting": {"criterion": "cpk", "subject": "bore", "value": 1.1, "threshold": 1.33}}


@pytest.mark.parametrize(("drop_to", "severity"), [(3, "medium"), (2, "high")])
def test_grade_alarm_activates_on_a_degradation_and_clears_at_the_grade_before(
    drop_to: int, severity: str
) -> None:
    pa = ProcessAlarms(3)
    pa.grade_alerts("L1", [_grade_alert("grade_degraded", 4, drop_to, "a1")], 4, T0)
    (act,) = pa.take()
    assert (act["kind"], act["severity"], act["alert_id"]) == ("activate", severity, "a1")
    assert act["from_grade"]["level"] == 4 and act["to_grade"]["level"] == drop_to
    assert (act["value"], act["limit"]) == (1.1, 1.33)
    validate_strict(AlarmEvent, act)
    pa.grade_alerts("L1", [_grade_alert("grade_degraded", drop_to, 1, "a2")], drop_to, T0 + 1)
    assert pa.take() == []  # deeper while active: the same alarm, no chattering
    pa.grade_alerts("L1", [_grade_alert("grade_recovered", 1, 3, "a3")], 1, T0 + 2)
    assert pa.take() == []  # not yet back to 4
    pa.grade_alerts("L1", [_grade_alert("grade_recovered", 3, 4, "a4")], 3, T0 + 3)
    (clear,) = pa.take()
    assert (clear["kind"], clear["alert_id"], clear["source"]) == ("clear", "a4", {"kind": "grade"})
    assert clear["alarm_id"] == alarm_id("L1", "grade")
    pa.grade_alerts("L1", [_grade_alert("grade_recovered", 4, 5, "a5")], 4, T0 + 4)
    assert pa.take() == []  # a recovery with no alarm active


def test_a_line_raises_and_clears_its_grade_alarm_from_its_own_grade_alerts() -> None:
    """End to end through the ladder: a characteristic drifting off-centre then back."""
    opts = Options(window_subgroups=6, min_subgroups=3, confirm_evaluations=2, run_rules=(1,),
                   chart_points=20)
    f = Feeder(opts, seed=3)
    steps = f.run([10.0] * 10 + [10.7] * 14 + [10.0] * 14)
    alerts = [a for a, _ in steps for a in a]
    events = [e for _, evs in steps for e in evs if e["source"]["kind"] == "grade"]
    degraded = [a for a in alerts if a["type"] == "grade_degraded"]
    recovered = [a for a in alerts if a["type"] == "grade_recovered"]
    assert degraded and recovered
    assert [e["kind"] for e in events] == ["activate", "clear"]
    assert events[0]["alert_id"] == degraded[0]["alert_id"]
    assert events[1]["alert_id"] == recovered[-1]["alert_id"]
    assert recovered[-1]["to_grade"]["level"] >= degraded[0]["from_grade"]["level"]


def test_a_deleted_spec_clears_its_active_alarm() -> None:
    f = Feeder()
    f.run([10.0] * 8 + [10.5])
    assert f.line.retire("bore")
    (clear,) = f.line.take_alarm_events()
    assert clear["kind"] == "clear" and clear["source"]["characteristic"] == "bore"
    assert parse_ts(clear["at"]) == T0 + f.i  # its last event
    assert f.line.alarms.control == {}


def test_checkpoint_round_trip_continues_the_episode_with_the_same_ids() -> None:
    centres = [10.0] * 8 + [10.5, 10.5, 10.0, 10.0, 10.0, 10.5, 10.0, 10.0, 10.0]
    whole = Feeder()
    want = [e for _, evs in whole.run(centres) for e in evs]
    for cut in (9, 10, 14):
        f = Feeder()
        got = [e for _, evs in f.run(centres[:cut]) for e in evs]
        state = json.loads(json.dumps(f.line.to_dict()))
        f.line = LineState.from_dict(state, OPTS)
        got += [e for _, evs in f.run(centres[cut:]) for e in evs]
        assert got == want, cut
    assert [e["kind"] for e in want] == ["activate", "clear", "activate", "clear"]
    # deterministic: a replay produces the same ids; equal content still gets distinct ids
    assert [e["event_id"] for e in want] == [e["event_id"] for _, evs in Feeder().run(centres) for e in evs]
    assert len({e["event_id"] for e in want}) == len(want)


def test_a_checkpoint_written_before_alarms_loads_with_no_alarm_active() -> None:
    f = Feeder()
    f.run([10.0] * 8 + [10.5])
    old = f.line.to_dict()
    assert old["alarms"]["control"]
    del old["alarms"]
    line = LineState.from_dict(json.loads(json.dumps(old)), OPTS)
    assert line.alarms.control == {} and line.alarms.grade_base is None and line.alarms.emitted == 0
