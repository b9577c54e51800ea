"""GradeTracker confirmation and OutOfControlTracker dedupe (SPEC §5), with deterministic documents."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from cpkmon.alerts.documents import alert_id
from cpkmon.alerts.engine import GradeTracker, OutOfControlTracker
from cpkmon.alerts.ladder import LineMetrics, grade
from cpkmon.capability.control import ChartPoint, ControlChart, Violation
from cpkmon.capability.options import Options

OPTS = Options(confirm_evaluations=3)
T0 = 1_763_626_502.125
CPK_FOR_LEVEL = {1: 0.8, 2: 1.1, 3: 1.4, 4: 1.8, 5: 2.4}
GRADE_KEYS = {"alert_id", "type", "line", "from_grade", "to_grade", "limiting", "cpk", "rty", "sigma_level",
              "event_time", "detected_at", "incident"}
OOC_KEYS = {"alert_id", "type", "line", "characteristic", "station", "rule", "chart", "value", "limit",
            "subgroup", "event_time", "detected_at"}


def metrics_at(level: int | None, rty: float | None = 0.99) -> LineMetrics:
    if level is None:
        return LineMetrics()
    return LineMetrics(cpk=CPK_FOR_LEVEL[level], cpk_subject="bore", rty=rty, rty_subject="S10", dpmo=2.0,
                       sigma_level=6.1, internal_loss_rate=0.001, external_loss_rate=0.001)


class Driver:
    """Feeds a tracker one evaluation per call, with event time and detection time advancing together."""

    def __init__(self, tracker: GradeTracker | None = None, line: str = "L1") -> None:
        self.tracker = tracker or GradeTracker(OPTS)
        self.line = line
        self.i = 0
        self.alerts: list[dict[str, object]] = []

    def step(self, level: int | None, newly: set[str] | None = None, metrics: LineMetrics | None = None
             ) -> list[dict[str, object]]:
        m = metrics or metrics_at(level)
        result = grade(m, OPTS)
        assert result.level == level
        self.i += 1
        out: list[dict[str, object]] = self.tracker.evaluate(
            self.line, result, m, T0 + self.i, T0 + self.i + 0.25, newly or set()
        )
        self.alerts += out
        return out

    def run(self, levels: list[int | None]) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for lv in levels:
            out += self.step(lv)
        return out


def transitions(alerts: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(a["type"], a["from_grade"]["level"], a["to_grade"]["level"]) for a in alerts]


# ---------------------------------------------------------------------------------------------- grade
def test_start_up_sets_the_grade_without_an_alert() -> None:
    d = Driver()
    assert d.run([None, None, 4]) == []
    assert d.tracker.current == 4


def test_two_evaluations_below_are_not_enough_three_are() -> None:
    d = Driver()
    d.run([4])
    assert d.run([3, 3]) == []
    assert d.tracker.current == 4
    out = d.step(3)
    assert transitions(out) == [("grade_degraded", 4, 3)]
    assert d.tracker.current == 3
    assert d.tracker.degradations == 1


def test_an_evaluation_at_the_grade_restarts_the_count() -> None:
    d = Driver()
    assert d.run([4, 3, 3, 4, 3, 3, 5, 3, 3]) == []
    assert d.tracker.current == 4
    assert transitions(d.run([3])) == [("grade_degraded", 4, 3)]


def test_confirm_evaluations_is_an_option() -> None:
    d = Driver(GradeTracker(Options(confirm_evaluations=1)))
    d.run([4])
    assert transitions(d.run([2])) == [("grade_degraded", 4, 2)]
    d5 = Driver(GradeTracker(Options(confirm_evaluations=5)))
    assert d5.run([4, 2, 2, 2, 2]) == []
    assert len(d5.run([2])) == 1


def test_recovery_needs_the_same_confirmation() -> None:
    d = Driver()
    d.run([4, 2, 2, 2])
    assert d.tracker.current == 2
    assert d.run([4, 4]) == []
    assert transitions(d.run([4])) == [("grade_recovered", 2, 4)]
    assert d.tracker.degradations == 1
    assert d.tracker.recoveries == 1


def test_a_degradation_confirms_the_highest_level_of_the_run() -> None:
    d = Driver()
    d.run([5])
    assert transitions(d.run([2, 3, 2])) == [("grade_degraded", 5, 3)]
    assert transitions(d.run([2, 2, 2])) == [("grade_degraded", 3, 2)]
    assert d.tracker.degradations == 2


def test_a_recovery_confirms_the_lowest_level_of_the_run() -> None:
    d = Driver()
    d.run([1])
    assert transitions(d.run([5, 3, 4])) == [("grade_recovered", 1, 3)]


def test_no_alert_to_or_from_null() -> None:
    d = Driver()
    d.run([4])
    assert d.run([None, None]) == []
    assert d.tracker.current == 4  # a blip of no data keeps the grade
    assert d.run([None]) == []
    assert d.tracker.current is None  # confirmed: no data any more, silently
    assert d.run([2, 2, 2, 2]) == []
    assert d.tracker.current == 2


def test_null_interrupts_a_confirmation_run() -> None:
    d = Driver()
    assert d.run([4, 3, 3, None, 3, 3]) == []
    assert len(d.run([3])) == 1


def test_a_newly_assessed_criterion_rebases_silently() -> None:
    d = Driver()
    d.run([5, 5])
    # RTY reports for the first time, at 0.92: the line is really at level 2, nothing degraded
    m = metrics_at(5, rty=0.92)
    assert d.step(2, {"rty"}, m) == []
    assert d.tracker.current == 2
    for _ in range(5):
        assert d.step(2, None, m) == []
    assert d.tracker.degradations == 0


def test_a_newly_assessed_criterion_does_not_hide_a_real_drop() -> None:
    d = Driver()
    d.run([5])
    m = metrics_at(3, rty=0.92)  # RTY appears at level 2 *and* Cpk fell to level 3 meanwhile
    assert d.step(2, {"rty"}, m) == []
    assert d.step(2, None, m) == []
    assert transitions(d.step(2, None, m)) == [("grade_degraded", 5, 2)]


def test_lifting_a_require_all_cap_is_not_a_recovery() -> None:
    options = Options(require_all_criteria=True)
    tracker = GradeTracker(options)
    partial = LineMetrics(cpk=2.4, dpmo=2.0, internal_loss_rate=0.001, external_loss_rate=0.001)
    full = LineMetrics(cpk=2.4, rty=0.99, dpmo=2.0, internal_loss_rate=0.001, external_loss_rate=0.001)
    assert tracker.evaluate("L1", grade(partial, options), partial, T0, T0, set()) == []
    assert tracker.current == 1
    assert tracker.evaluate("L1", grade(full, options), full, T0 + 1, T0 + 1, {"rty"}) == []
    assert tracker.current == 5


@pytest.mark.parametrize(("current", "pattern"), [(4, [3, 4]), (4, [2, 4]), (4, [3, 5]), (3, [3, 4]),
                                                  (2, [1, 3])])
def test_flapping_never_alerts(current: int, pattern: list[int]) -> None:
    d = Driver()
    d.run([current])
    for i in range(1000):
        d.step(pattern[i % 2])
    assert d.alerts == []
    assert d.tracker.current == current


def test_alert_document_is_exactly_the_spec() -> None:
    d = Driver()
    d.run([4, 2, 2])
    (alert,) = d.step(2)
    assert set(alert) == GRADE_KEYS
    assert alert["type"] == "grade_degraded"
    assert alert["line"] == "L1"
    assert alert["from_grade"] == {"level": 4, "name": "prevention"}
    assert alert["to_grade"] == {"level": 2, "name": "inspection"}
    assert alert["limiting"] == {"criterion": "cpk", "subject": "bore", "value": 1.1, "threshold": 1.33,
                                 "reason": "below_threshold"}
    assert alert["incident"] == alert["alert_id"]  # the first degradation of an incident names it
    assert (alert["cpk"], alert["rty"], alert["sigma_level"]) == (1.1, 0.99, 6.1)
    assert alert["event_time"] == "2025-11-20T08:15:06.125Z"
    assert alert["detected_at"] == "2025-11-20T08:15:06.375Z"
    assert isinstance(alert["alert_id"], str) and len(alert["alert_id"]) == 32
    int(alert["alert_id"], 16)
    json.dumps(alert, allow_nan=False)


def random_levels(seed: int, n: int = 600) -> list[int | None]:
    rng = random.Random(seed)
    levels: list[int | None] = []
    level = 4
    for _ in range(n):
        if rng.random() < 0.08:
            level = rng.randint(1, 5)
        levels.append(None if rng.random() < 0.01 else level)
    return levels


@pytest.mark.parametrize("seed", range(5))
def test_identical_inputs_give_byte_identical_alerts(seed: int) -> None:
    levels = random_levels(seed)
    a, b = Driver(), Driver()
    a.run(levels)
    b.run(levels)
    assert a.alerts, "the sequence should produce some alerts"
    dump = [json.dumps(x, sort_keys=True) for x in a.alerts]
    assert dump == [json.dumps(x, sort_keys=True) for x in b.alerts]
    assert len({x["alert_id"] for x in a.alerts}) == len(a.alerts)  # repeated 4→3 transitions differ


@pytest.mark.parametrize("cut", [0, 1, 2, 50, 101, 333, 599])
def test_replay_from_a_checkpoint_rebuilds_the_same_alerts(cut: int) -> None:
    levels = random_levels(7)
    straight = Driver()
    straight.run(levels)
    first = Driver()
    first.run(levels[:cut])
    blob = json.dumps(first.tracker.to_dict())
    resumed = Driver(GradeTracker.from_dict(json.loads(blob), OPTS))
    resumed.i = first.i
    resumed.run(levels[cut:])
    combined = first.alerts + resumed.alerts
    assert [json.dumps(x, sort_keys=True) for x in combined] == [
        json.dumps(x, sort_keys=True) for x in straight.alerts]
    assert resumed.tracker.to_dict() == straight.tracker.to_dict()


def test_alert_ids_differ_by_line() -> None:
    a, b = Driver(line="L1"), Driver(line="L2")
    a.run([4, 3, 3, 3])
    b.run([4, 3, 3, 3])
    assert a.alerts[0]["alert_id"] != b.alerts[0]["alert_id"]


def test_alert_id_is_unambiguous() -> None:
    assert alert_id("a:b", "c") != alert_id("a", "b:c")
    assert alert_id("L1", 1) != alert_id("L1", "1")
    assert alert_id("L1", 1) == alert_id("L1", 1)


# ------------------------------------------------------------------------------------- out of control
def v(seq: int, rule: int = 2, chart: str = "x") -> Violation:
    return Violation(rule, chart, seq, f"s-{seq}", T0 + seq, 0.5, 0.0)


def observe(t: OutOfControlTracker, seq: int, violations: list[Violation], window: int = 25,
            char: str = "bore") -> list[dict[str, object]]:
    out: list[dict[str, object]] = t.observe("L1", char, "S10", violations, seq, window, T0 + seq + 0.5)
    return out


def test_a_drifting_process_raises_one_alert_then_another_after_a_clear_window() -> None:
    chart = ControlChart(Options(run_rules=(1, 2, 3, 5, 6)))
    chart.freeze(0.0, 1.0, 1)
    tracker = OutOfControlTracker()
    alerts: list[dict[str, object]] = []
    fired_rule2 = 0
    seq = 0

    def close(x: float) -> None:
        nonlocal seq, fired_rule2
        vs = chart.add(ChartPoint(seq, f"s-{seq}", T0 + seq, 1, x, None))
        fired_rule2 += sum(1 for v in vs if v.rule == 2)
        alerts.extend(tracker.observe("L1", "bore", "S10", [v for v in vs if v.rule == 2], seq, 25, T0 + seq))
        seq += 1

    for _ in range(38):  # a shifted mean inside 1σ: Test 2 fires on points 8..37
        close(0.5)
    assert fired_rule2 == 30
    assert len(alerts) == 1
    assert alerts[0]["rule"] == 2 and alerts[0]["subgroup"] == "s-8"
    for i in range(25):  # back on target, alternating sides: clear for a whole window
        close(0.5 if i % 2 else -0.5)
    for _ in range(9):
        close(0.5)
    assert len(alerts) == 2
    assert alerts[1]["subgroup"] == f"s-{seq - 1}"


@pytest.mark.parametrize("only_violations", [False, True])
def test_clear_for_one_subgroup_less_than_a_window_stays_silent(only_violations: bool) -> None:
    t = OutOfControlTracker()
    window = 10
    assert len(observe(t, 5, [v(5)], window)) == 1
    # clear for window − 1 subgroups (6..14), fires again at 15: still the same episode
    for seq in range(6, 15):
        if not only_violations:
            assert observe(t, seq, [], window) == []
    assert observe(t, 15, [v(15)], window) == []
    # clear for exactly a window (16..25), fires at 26: a new alert
    for seq in range(16, 26):
        if not only_violations:
            assert observe(t, seq, [], window) == []
    assert len(observe(t, 26, [v(26)], window)) == 1


def test_rules_and_characteristics_are_separate_but_charts_are_not() -> None:
    t = OutOfControlTracker()
    out = observe(t, 1, [v(1, rule=1, chart="x"), v(1, rule=1, chart="r"), v(1, rule=5)])
    assert [(a["rule"], a["chart"]) for a in out] == [(1, "x"), (5, "x")]
    assert [a["rule"] for a in observe(t, 1, [v(1, rule=1)], char="length")] == [1]
    assert observe(t, 2, [v(2, rule=1, chart="r")]) == []
    assert t.alerts == 3


def test_out_of_control_document_is_exactly_the_spec() -> None:
    t = OutOfControlTracker()
    (alert,) = observe(t, 42, [Violation(1, "r", 42, "s-42", T0, 5.0, 4.918)])
    assert set(alert) == OOC_KEYS
    assert alert == {
        "alert_id": alert_id("L1", "bore", 1, 42, 0),  # (line, characteristic, rule, seq, limits epoch)
        "type": "out_of_control",
        "line": "L1",
        "characteristic": "bore",
        "station": "S10",
        "rule": 1,
        "chart": "r",
        "value": 5.0,
        "limit": 4.918,
        "subgroup": "s-42",
        "event_time": "2025-11-20T08:15:02.125Z",
        "detected_at": "2025-11-20T08:15:44.625Z",
    }


def test_out_of_control_state_round_trips_mid_episode() -> None:
    t = OutOfControlTracker()
    assert len(observe(t, 1, [v(1)])) == 1
    restored = OutOfControlTracker.from_dict(json.loads(json.dumps(t.to_dict())))
    assert observe(restored, 2, [v(2)]) == []
    assert restored.to_dict() == {"last_fired": {"bore": {"2": 2}}, "alerts": 1}
    for seq in range(3, 28):
        observe(restored, seq, [])
    assert restored.to_dict()["last_fired"] == {}  # pruned: bounded state
    assert len(observe(restored, 28, [v(28)])) == 1


def test_forget_drops_a_characteristic() -> None:
    t = OutOfControlTracker()
    observe(t, 1, [v(1)])
    t.forget("bore")
    assert len(observe(t, 2, [v(2)])) == 1
