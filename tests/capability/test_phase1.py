"""Phase I: the baseline the control limits come from is itself judged against them (issue 9, finding 2).

Before, the run rules started only after the limits froze, so a baseline subgroup far beyond its own limits
was never flagged, yet it stayed in the window ``stable`` covers: stable=true, no violation, no alert.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from cpkmon.alerts.line import LineState
from cpkmon.capability.characteristic import Characteristic, ClosedSubgroupResult
from cpkmon.capability.constants import d2
from cpkmon.capability.control import ChartPoint, ControlChart
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

T0 = 1_763_626_502.0
SPEC = Spec(lsl=9.0, usl=11.0, subgroup_size=5)


def subgroups(count: int, *, shifted: dict[int, float] | None = None, seed: int = 7) -> list[list[float]]:
    """``count`` subgroups of 5 from N(10, 0.1), rounded like a gauge; ``shifted`` adds to whole subgroups
    (keys are 1-based subgroup numbers = seqs)."""
    rng = random.Random(seed)
    out = []
    for i in range(1, count + 1):
        add = (shifted or {}).get(i, 0.0)
        out.append([round(rng.gauss(10.0, 0.1) + add, 3) for _ in range(5)])
    return out


def st(ch: Characteristic) -> Any:
    """The status object, typed for indexing."""
    return ch.status()


def feed(ch: Characteristic, groups: list[list[float]], start: int = 1) -> list[ClosedSubgroupResult]:
    """Values with subgroup ids ``g<seq>``; the last subgroup is closed by a flush."""
    results = []
    for i, g in enumerate(groups, start=start):
        for j, x in enumerate(g):
            results += ch.add(x, T0 + 10 * i + j, f"e{i}-{j}", f"g{i}")
    return results + ch.flush()


def test_a_baseline_subgroup_beyond_its_own_limits_is_flagged() -> None:
    ch = Characteristic("L1", "bore", SPEC, Options())
    groups = subgroups(20, shifted={7: 0.5})
    results = feed(ch, groups)
    assert [r.violations for r in results[:19]] == [[]] * 19  # nothing to judge by before the limits
    freeze = results[19]
    assert freeze.seq == 20
    control = st(ch)["control"]
    assert isinstance(control, dict)
    mean7 = sum(groups[6]) / 5
    assert mean7 > control["ucl"]  # the subgroup is above its own baseline's UCL
    assert (1, "x", 7, "g7") in {(v.rule, v.chart, v.seq, v.subgroup) for v in freeze.violations}
    assert all(v.seq <= 20 for v in freeze.violations)
    assert [v.seq for v in freeze.violations] == sorted(v.seq for v in freeze.violations)
    status = st(ch)
    assert status["stable"] is False
    assert any(v["rule"] == 1 and v["subgroup"] == "g7" for v in status["violations"])
    point7 = next(p for p in status["points"] if p["subgroup"] == "g7")
    assert 1 in point7["rules"]
    # the capability numbers do not depend on the chart
    assert status["cpk"] is not None


def test_stable_again_once_the_flagged_subgroup_leaves_the_window() -> None:
    opts = Options(window_subgroups=20, min_subgroups=20)
    ch = Characteristic("L1", "bore", SPEC, opts)
    feed(ch, subgroups(20, shifted={3: 0.5}))
    assert ch.stable is False
    # in-control subgroups at the baseline's centre: the flagged seq 3 leaves after three more closes
    for i in range(21, 24):
        feed(ch, [[10.02, 9.98, 10.0, 10.01, 9.99]], start=i)
    assert ch.window.oldest is not None and ch.window.oldest.seq == 4
    assert not any(v["seq"] >= 4 for v in st(ch)["violations"])
    assert ch.stable is True


def test_known_limits_need_no_baseline() -> None:
    spec = Spec(lsl=9.0, usl=11.0, subgroup_size=5, center=10.0, sigma=0.1)
    ch = Characteristic("L1", "bore", spec, Options())
    results = feed(ch, subgroups(20, shifted={3: 0.5}))
    assert [r.seq for r in results if r.violations] == [3]  # judged when it closed, and only then
    assert {v.seq for v in results[19].violations} <= {20}


def test_out_of_control_alert_for_a_baseline_subgroup_through_the_line() -> None:
    line = LineState("L1", Options())
    alerts = []
    groups = subgroups(20, shifted={7: 0.5, 12: 0.5})
    groups.append([10.0])  # its first value closes subgroup 20, the one that freezes the limits
    for i, g in enumerate(groups, start=1):
        for j, x in enumerate(g):
            ts = T0 + 10 * i + j
            ok, raised = line.measurement("bore", SPEC, "S1", x, ts, f"e{i}-{j}", f"g{i}", ts)
            assert ok
            alerts += [a for a in raised if a["type"] == "out_of_control"]
    status = st(line.characteristics["bore"])
    flagged = {(v["rule"], v["subgroup"]) for v in status["violations"]}
    assert {(1, "g7"), (1, "g12")} <= flagged
    # one alert per rule, the first firing of each, raised by the close that froze the limits
    assert [a["rule"] for a in alerts] == sorted({a["rule"] for a in alerts})
    rule1 = next(a for a in alerts if a["rule"] == 1)
    assert rule1["subgroup"] == "g7" and rule1["chart"] == "x"
    assert {(a["rule"], a["subgroup"]) for a in alerts} <= flagged
    assert line.characteristics["bore"].stable is False


def test_rebaseline_rejudges_the_window_instead_of_adding_to_it() -> None:
    ch = Characteristic("L1", "bore", SPEC, Options(window_subgroups=30))
    feed(ch, subgroups(20, shifted={7: 0.5}))
    first = st(ch)["violations"]
    again = ch.rebaseline()  # same window, same limits: the same verdicts, not twice
    assert [v.to_dict() for v in again] == first
    assert st(ch)["violations"] == first
    # a wider window: later subgroups join the baseline; seq 7 is still judged once
    feed(ch, subgroups(5, seed=99), start=21)
    ch.rebaseline()
    sevens = [v for v in st(ch)["violations"] if v["subgroup"] == "g7" and v["rule"] == 1]
    assert len(sevens) == 1


def test_revised_limits_exclude_the_flagged_baseline_subgroups() -> None:
    groups = subgroups(20, shifted={7: 0.5})
    plain = Characteristic("L1", "bore", SPEC, Options())
    feed(plain, groups)
    revised = Characteristic("L1", "bore", SPEC, Options(baseline_exclude_flagged=True))
    feed(revised, groups)
    flagged = {v["seq"] for v in st(plain)["violations"]}
    assert 7 in flagged
    kept = [g for i, g in enumerate(groups, start=1) if i not in flagged]
    values = [x for g in kept for x in g]
    center = sum(values) / len(values)
    rbar = sum(max(g) - min(g) for g in kept) / len(kept)
    assert revised.chart.center == pytest.approx(center, rel=1e-13)
    assert revised.chart.sigma == pytest.approx(rbar / d2(5), rel=1e-12)
    assert plain.chart.center is not None and revised.chart.center is not None
    assert revised.chart.center < plain.chart.center
    # the excluded subgroup is still shown flagged (against the revised limits) and the chart unstable
    assert any(v["rule"] == 1 and v["subgroup"] == "g7" for v in st(revised)["violations"])
    assert revised.stable is False
    # the capability numbers are the window's, whatever the chart
    assert st(revised)["cpk"] == st(plain)["cpk"]


def test_phase1_state_round_trips() -> None:
    ch = Characteristic("L1", "bore", SPEC, Options())
    feed(ch, subgroups(20, shifted={7: 0.5}))
    blob = json.dumps(ch.to_dict(), sort_keys=True)
    restored = Characteristic.from_dict(json.loads(blob), Options())
    assert st(restored) == st(ch)
    more = subgroups(10, seed=3)
    a = [r.violations for r in feed(ch, more, start=21)]
    b = [r.violations for r in feed(restored, more, start=21)]
    assert a == b


# ---------------------------------------------------------------------------------------------- chart level
def _points(xs: list[float], start: int = 0) -> list[ChartPoint]:
    return [ChartPoint(i, f"s{i}", T0 + i, 1, x, None) for i, x in enumerate(xs, start=start)]


def test_the_rule_history_continues_from_the_baseline_into_phase_two() -> None:
    chart = ControlChart(Options(run_rules=(2,)), "xbar_r")
    baseline = _points([0.1, -0.2, -0.3] + [0.5] * 8)
    for p in baseline:
        chart.add(p)
    chart.freeze(0.0, 1.0, 1)
    assert chart.evaluate_baseline(baseline) == []  # eight in a row above: not yet nine
    (v,) = chart.add(ChartPoint(11, "s11", T0 + 11, 1, 0.5, None))  # the ninth, in phase II
    assert (v.rule, v.seq) == (2, 11)


def test_a_refreeze_clears_old_verdicts_of_the_baseline_points() -> None:
    chart = ControlChart(Options(run_rules=(1,)), "xbar_r")
    pts = _points([0.0, 4.0, 0.0])
    for p in pts:
        chart.add(p)
    chart.freeze(0.0, 1.0, 1)
    assert [(v.seq, v.rule) for v in chart.evaluate_baseline(pts)] == [(1, 1)]
    assert chart.stable(0) is False and chart.points()[1]["rules"] == [1]
    chart.freeze(0.0, 2.0, 1)  # wider limits: 4.0 is within 3σ = 6
    assert chart.evaluate_baseline(pts) == []
    assert chart.stable(0) is True
    assert chart.violations(0) == [] and chart.points()[1]["rules"] == []


def test_revised_limits_are_an_environment_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from cpkmon.settings import Settings, core_options

    monkeypatch.delenv("CPKMON_BASELINE_EXCLUDE_FLAGGED", raising=False)
    assert core_options(Settings()).baseline_exclude_flagged is False
    monkeypatch.setenv("CPKMON_BASELINE_EXCLUDE_FLAGGED", "true")
    assert core_options(Settings()).baseline_exclude_flagged is True
