"""ControlChart limits, chart kinds, points, violations and stability (docs/design.md contract)."""

from __future__ import annotations

import json
import math

import pytest

from cpkmon.capability.constants import c4, d2, d3
from cpkmon.capability.control import ChartPoint, ControlChart, chart_kind_for
from cpkmon.capability.options import Options
from cpkmon.capability.timeutil import to_rfc3339

T0 = 1_763_626_502.125


def num(value: object) -> float:
    assert isinstance(value, float)
    return value


def pt(seq: int, x: float, n: int = 5, r: float | None = None) -> ChartPoint:
    return ChartPoint(seq, f"s-{seq}", T0 + seq, n, x, r)


@pytest.mark.parametrize(("n", "kind"), [(1, "i_mr"), (2, "xbar_r"), (5, "xbar_r"), (10, "xbar_r"),
                                         (11, "xbar_s"), (25, "xbar_s")])
def test_chart_kind_from_nominal_size(n: int, kind: str) -> None:
    assert chart_kind_for(n) == kind
    chart = ControlChart(Options())
    assert chart.chart is None
    chart.freeze(0.0, 1.0, n)
    assert chart.chart == kind


def test_explicit_chart_kind_wins() -> None:
    chart = ControlChart(Options(), "xbar_s")
    chart.freeze(0.0, 1.0, 5)
    lim = chart.limits()
    assert lim is not None and lim["chart"] == "xbar_s"
    with pytest.raises(ValueError):
        ControlChart(Options(), "p_chart")


def test_xbar_r_limits_by_hand() -> None:
    chart = ControlChart(Options())
    chart.freeze(74.001, 0.0099, 5)
    lim = chart.limits()
    assert lim is not None
    half = 3 * 0.0099 / math.sqrt(5)
    assert lim["chart"] == "xbar_r"
    assert lim["center"] == 74.001
    assert lim["ucl"] == pytest.approx(74.001 + half, rel=1e-15)
    assert lim["lcl"] == pytest.approx(74.001 - half, rel=1e-15)
    assert lim["range_center"] == pytest.approx(d2(5) * 0.0099, rel=1e-15)
    assert lim["range_ucl"] == pytest.approx((d2(5) + 3 * d3(5)) * 0.0099, rel=1e-15)
    assert lim["range_lcl"] == 0.0  # d2(5) − 3 d3(5) < 0
    assert (lim["sigma"], lim["source"], lim["nominal_n"]) == (0.0099, "baseline", 5)
    # textbook cross-check: A2 = 3/(d2√n) = 0.577, D4 = 1 + 3 d3/d2 = 2.114 for n = 5
    rbar = d2(5) * 0.0099
    assert (num(lim["ucl"]) - 74.001) / rbar == pytest.approx(0.577, abs=5e-4)
    assert num(lim["range_ucl"]) / rbar == pytest.approx(2.114, abs=5e-4)


def test_xbar_r_positive_range_lcl_for_n_7() -> None:
    chart = ControlChart(Options())
    chart.freeze(10.0, 2.0, 7)
    lim = chart.limits()
    assert lim is not None
    assert lim["range_lcl"] == pytest.approx((d2(7) - 3 * d3(7)) * 2.0, rel=1e-15)
    assert num(lim["range_lcl"]) > 0
    rbar = d2(7) * 2.0
    assert num(lim["range_lcl"]) / rbar == pytest.approx(0.076, abs=5e-4)  # textbook D3 for n = 7


def test_xbar_s_limits_by_hand() -> None:
    chart = ControlChart(Options())
    chart.freeze(5.0, 0.5, 12)
    lim = chart.limits()
    assert lim is not None
    c = c4(12)
    assert lim["chart"] == "xbar_s"
    assert lim["ucl"] == pytest.approx(5.0 + 1.5 / math.sqrt(12), rel=1e-15)
    assert lim["range_center"] == pytest.approx(c * 0.5, rel=1e-15)
    assert lim["range_ucl"] == pytest.approx(c * 0.5 + 1.5 * math.sqrt(1 - c * c), rel=1e-15)
    assert lim["range_lcl"] == pytest.approx(c * 0.5 - 1.5 * math.sqrt(1 - c * c), rel=1e-15)
    sbar = c * 0.5
    assert num(lim["range_ucl"]) / sbar == pytest.approx(1.646, abs=5e-4)  # textbook B4 for n = 12
    assert num(lim["range_lcl"]) / sbar == pytest.approx(0.354, abs=5e-4)  # textbook B3 for n = 12


def test_s_chart_lcl_is_clamped_at_zero() -> None:
    chart = ControlChart(Options(), "xbar_s")
    chart.freeze(0.0, 1.0, 5)
    rl = chart.range_limits(5)
    assert rl is not None and rl[0] == 0.0


def test_i_mr_limits_by_hand() -> None:
    chart = ControlChart(Options())
    chart.freeze(-3.0, 0.25, 1, source="known")
    lim = chart.limits()
    assert lim is not None
    assert lim["chart"] == "i_mr"
    assert (lim["ucl"], lim["lcl"]) == (pytest.approx(-2.25), pytest.approx(-3.75))
    assert lim["range_center"] == pytest.approx(d2(2) * 0.25, rel=1e-15)
    assert lim["range_ucl"] == pytest.approx((d2(2) + 3 * d3(2)) * 0.25, rel=1e-15)
    assert lim["range_lcl"] == 0.0
    assert lim["source"] == "known"
    assert num(lim["range_ucl"]) / num(lim["range_center"]) == pytest.approx(3.267, abs=5e-4)  # D4(2)


def test_per_point_limits_follow_the_points_size() -> None:
    chart = ControlChart(Options())
    chart.freeze(0.0, 1.0, 5)
    assert chart.x_limits(4) == pytest.approx((-1.5, 0.0, 1.5))
    rl3 = chart.range_limits(3)
    assert rl3 is not None and rl3[2] == pytest.approx(d2(3) + 3 * d3(3), rel=1e-15)
    assert chart.range_limits(1) is None


@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf])
def test_freeze_rejects_a_useless_sigma(sigma: float) -> None:
    with pytest.raises(ValueError):
        ControlChart(Options()).freeze(0.0, sigma, 5)


def test_before_a_baseline_points_are_recorded_but_not_judged() -> None:
    chart = ControlChart(Options())
    assert not chart.frozen
    assert chart.limits() is None
    assert chart.stable(0) is None
    assert chart.add(pt(0, 1e9, r=1e9)) == []
    assert len(chart.points()) == 1
    chart.freeze(0.0, 1.0, 5)
    assert chart.stable(0) is True
    assert [v.rule for v in chart.add(pt(1, 10.0))] == [1]


def test_points_carry_the_rules_they_triggered() -> None:
    chart = ControlChart(Options(run_rules=(1, 5)))
    chart.freeze(0.0, 1.0, 1)
    chart.add(pt(0, 2.5, n=1))
    chart.add(pt(1, 3.5, n=1))
    points = chart.points()
    assert [p["rules"] for p in points] == [[], [1, 5]]
    assert points[1] == {"seq": 1, "subgroup": "s-1", "event_time": to_rfc3339(T0 + 1), "n": 1, "x": 3.5,
                         "r": 1.0, "rules": [1, 5]}
    json.dumps(points)


def test_points_keep_the_last_chart_points() -> None:
    chart = ControlChart(Options(chart_points=10))
    chart.freeze(0.0, 1.0, 5)
    for i in range(25):
        chart.add(pt(i, 0.1 * (i % 3)))
    assert [p["seq"] for p in chart.points()] == list(range(15, 25))


def test_violations_and_stability_since_a_seq() -> None:
    chart = ControlChart(Options())
    chart.freeze(0.0, 1.0, 5)
    for i in range(10):
        chart.add(pt(i, 0.1 if i % 2 else -0.1))
    chart.add(pt(10, 5.0))  # Test 1
    for i in range(11, 20):
        chart.add(pt(i, 0.1 if i % 2 else -0.1))
    assert chart.stable(0) is False
    assert chart.stable(10) is False
    assert chart.stable(11) is True
    vs = chart.violations(5)
    assert vs == [{"rule": 1, "chart": "x", "seq": 10, "subgroup": "s-10", "event_time": to_rfc3339(T0 + 10),
                   "value": 5.0, "limit": pytest.approx(3 / math.sqrt(5))}]
    assert chart.violations(11) == []


def test_violation_list_is_bounded_but_stability_stays_exact() -> None:
    chart = ControlChart(Options(chart_points=50))
    chart.freeze(0.0, 1.0, 5)
    for i in range(1000):
        chart.add(pt(i, 5.0))
    chart.add(pt(1000, 0.0))
    assert len(chart.violations(0)) <= 200
    assert chart.stable(999) is False
    assert chart.stable(1000) is True
    assert len(json.dumps(chart.to_dict())) < 100_000


def test_round_trip_is_exact_and_json_safe() -> None:
    options = Options(run_rules=(1, 2, 3, 4, 5, 6, 7, 8), chart_points=20)
    chart = ControlChart(options)
    for i in range(5):
        chart.add(pt(i, 0.01 * i, r=1.0))
    chart.freeze(0.02, 0.9, 5)
    for i in range(5, 40):
        chart.add(pt(i, math.sin(i) * 1.3, r=abs(math.cos(i)) * 5.5))
    blob = json.dumps(chart.to_dict(), sort_keys=True, allow_nan=False)
    restored = ControlChart.from_dict(json.loads(blob), options)
    assert json.dumps(restored.to_dict(), sort_keys=True) == blob
    assert restored.points() == chart.points()
    assert restored.violations(0) == chart.violations(0)
    assert restored.limits() == chart.limits()
    assert restored.stable(30) == chart.stable(30)
    for i in range(40, 60):
        p = pt(i, math.cos(i) * 1.7, r=abs(math.sin(i)) * 4.0)
        assert restored.add(p) == chart.add(p)


def test_unfrozen_round_trip() -> None:
    chart = ControlChart(Options())
    chart.add(pt(0, 1.0))
    restored = ControlChart.from_dict(json.loads(json.dumps(chart.to_dict())), Options())
    assert not restored.frozen and restored.chart is None
    assert restored.points() == chart.points()
