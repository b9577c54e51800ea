"""Nelson's eight tests on the X̄/I chart, Minitab's defaults (see capability/control.py for the sources).

Series are in z units: centre 0, σ 1, so with n = 1 a value *is* its z-score. The table drives every rule to
fire exactly once, at a known point, with all eight rules enabled, so a rule that fires early, late, twice or
for the wrong pattern fails. A brute-force reference (whole-series windows, written independently of the
incremental code) cross-checks random series.
"""

from __future__ import annotations

import json
import math
import random
from itertools import pairwise

import pytest

from cpkmon.capability.constants import d2, d3
from cpkmon.capability.control import ChartPoint, ControlChart, Violation
from cpkmon.capability.options import Options

ALL = (1, 2, 3, 4, 5, 6, 7, 8)
T0 = 1_763_626_502.125


def chart_for(rules: tuple[int, ...] = ALL, *, kind: str = "xbar_r", n: int = 1) -> ControlChart:
    chart = ControlChart(Options(run_rules=rules), kind)
    chart.freeze(0.0, 1.0, n)
    return chart


def feed(chart: ControlChart, xs: list[float], *, n: int = 1, start: int = 0) -> list[Violation]:
    out: list[Violation] = []
    for i, x in enumerate(xs, start=start):
        out += chart.add(ChartPoint(i, f"s{i}", T0 + i, n, x, None))
    return out


def fired(xs: list[float], rules: tuple[int, ...] = ALL, n: int = 1) -> list[tuple[int, int]]:
    """(index, rule) of every X̄-chart violation; ``r`` is None so the range chart stays silent."""
    return [(v.seq, v.rule) for v in feed(chart_for(rules, n=n), xs, n=n) if v.chart == "x"]


# Each series fires its rule exactly once, at the last point, and no other rule anywhere.
TABLE: list[tuple[int, list[float], int]] = [
    (1, [0.5, -0.5, 3.5, 0.5, -0.5], 2),
    # nine in a row above the centre (points 1..9), all within 1σ, no trend, no 15-long pattern
    (2, [-0.5, 0.5, 0.3, 0.6, 0.4, 0.7, 0.2, 0.5, 0.3, 0.6], 9),
    # one fall, then six rises: points 1..7 are seven points = six increases (Minitab counts the moves)
    (3, [0.5, -0.9, -0.6, -0.3, 0.1, 0.4, 0.7, 0.9], 7),
    # fifteen points alternating (fourteen alternating moves); the 1.5 keeps Test 7 from firing
    (4, [0.5, -0.5, 0.5, -0.5, 1.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5], 14),
    # points 1 and 3 beyond +2σ: two of the three points 1..3
    (5, [0.0, 2.5, 0.5, 2.2], 3),
    # four of the five points 1..5 beyond +1σ
    (6, [0.0, 1.5, 1.2, 0.5, 1.8, 1.3], 5),
    # fifteen within 1σ, sides mixed, no alternation, no trend
    (7, [0.5, 0.3, -0.2, -0.4, 0.1, 0.6, 0.6, -0.5, 0.2, -0.1, -0.3, 0.4, 0.0, -0.6, 0.3], 14),
    # eight beyond 1σ, alternating sides (so never four of five on one side)
    (8, [1.5, -1.5, 1.2, -1.8, 1.6, -1.3, 1.4, -1.2], 7),
]


@pytest.mark.parametrize(("rule", "xs", "at"), TABLE, ids=[f"test{r}" for r, _, _ in TABLE])
def test_each_rule_fires_exactly_once_where_expected(rule: int, xs: list[float], at: int) -> None:
    assert fired(xs) == [(at, rule)]


@pytest.mark.parametrize(("rule", "xs", "at"), TABLE, ids=[f"test{r}" for r, _, _ in TABLE])
def test_a_disabled_rule_does_not_fire(rule: int, xs: list[float], at: int) -> None:
    others = tuple(r for r in ALL if r != rule)
    assert fired(xs, others) == []


def test_default_rule_set_is_1_2_3_5_6() -> None:
    chart = ControlChart(Options(), "xbar_r")
    chart.freeze(0.0, 1.0, 1)
    for _, xs, _ in TABLE:
        got = {v.rule for v in feed(chart, xs)}
        assert got <= {1, 2, 3, 5, 6}
    default_only = [(r, xs) for r, xs, _ in TABLE if r in (4, 7, 8)]
    for _, xs in default_only:
        c = ControlChart(Options(), "xbar_r")
        c.freeze(0.0, 1.0, 1)
        assert feed(c, xs) == []


def test_points_on_the_centre_line_are_on_neither_side() -> None:
    # no side (Test 2), no move (Tests 3, 4): only "fifteen within 1σ" (Test 7) applies, from the 15th point
    # on
    assert fired([0.0] * 16) == [(14, 7), (15, 7)]


IN_CONTROL: list[list[float]] = [
    [],
    [0.2],
    # a pattern that breaks every run: ties break trends/alternation, a 1.5 every < 15 points breaks Test 7
    [0.5, -0.3, 0.2, 1.5, -0.4, 0.1, -1.2, 0.6, 0.0, -0.7, 0.3, 0.3, -0.2, 1.1, -0.9, 0.4, 0.4, -0.1] * 4,
]


@pytest.mark.parametrize("xs", IN_CONTROL)
def test_in_control_series_trigger_nothing(xs: list[float]) -> None:
    assert fired(xs) == []


# ---------------------------------------------------------------------------------------------- boundaries
def test_exactly_3_sigma_is_not_beyond() -> None:
    assert fired([3.0, -3.0]) == []
    assert fired([3.0000001]) == [(0, 1)]
    assert fired([-3.0000001]) == [(0, 1)]


def test_exactly_2_sigma_is_not_beyond_for_test5() -> None:
    assert fired([2.0, 0.0, 2.0]) == []
    assert fired([-2.5, 0.0, -2.1]) == [(2, 5)]
    assert fired([2.5, 0.0, -2.1]) == []  # not the same side


def test_test5_needs_the_current_point_beyond() -> None:
    assert fired([2.5, 2.2, 0.5]) == [(1, 5)]  # fires at the 2nd, not again at the 3rd


def test_test5_counts_from_the_first_two_points() -> None:
    assert fired([2.5, 2.5]) == [(1, 5)]


def test_exactly_1_sigma_is_within_for_tests_6_7_8() -> None:
    assert fired([1.0, 1.0, 1.0, 1.0, 1.0]) == []
    assert fired([1.0] * 15, (7,)) == [(14, 7)]
    assert fired([1.5, -1.5, 1.5, -1.5, 1.0, -1.5, 1.5, -1.5, 1.5], (8,)) == []


def test_a_point_on_the_centre_breaks_a_test2_run() -> None:
    xs = [0.5] * 8 + [0.0] + [0.5] * 8
    assert fired(xs, (2,)) == []
    assert fired([*xs, 0.5], (2,)) == [(17, 2)]


def test_a_long_run_fails_at_every_point_after_the_ninth() -> None:
    assert fired([0.5] * 11, (2,)) == [(8, 2), (9, 2), (10, 2)]


def test_six_points_five_increases_is_not_a_trend() -> None:
    assert fired([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], (3,)) == []
    assert fired([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], (3,)) == [(6, 3)]
    assert fired([0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0], (3,)) == [(6, 3)]


def test_a_tie_breaks_a_trend() -> None:
    assert fired([0.0, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6], (3,)) == []


def test_fourteen_points_are_not_enough_for_test4() -> None:
    alt = [0.5 if i % 2 == 0 else -0.5 for i in range(15)]
    assert fired(alt[:14], (4,)) == []
    assert fired(alt, (4,)) == [(14, 4)]
    tied = [*alt[:7], alt[6], *alt[7:]]
    assert fired(tied, (4,)) == []


def test_zone_tests_use_the_points_own_subgroup_size() -> None:
    # σ/√n: 1.4 is 3.13σ of a mean of 5, 2.8σ of a mean of 4
    chart = chart_for((1,), n=5)
    assert [v.rule for v in chart.add(ChartPoint(0, "a", T0, 5, 1.4, None))] == [1]
    assert chart.add(ChartPoint(1, "b", T0, 4, 1.4, None)) == []


# ---------------------------------------------------------------------------------------------- range chart
def test_test1_on_the_range_chart_above_ucl() -> None:
    chart = chart_for((1,), n=5)  # R UCL for n = 5, σ = 1: d2 + 3 d3 = 4.9182
    assert chart.add(ChartPoint(0, "a", T0, 5, 0.0, 4.9)) == []
    vs = chart.add(ChartPoint(1, "b", T0, 5, 0.0, 5.0))
    assert [(v.rule, v.chart, v.value) for v in vs] == [(1, "r", 5.0)]
    assert vs[0].limit == pytest.approx(d2(5) + 3 * d3(5), rel=1e-15)
    assert vs[0].limit == pytest.approx(4.9182, abs=1e-4)  # the textbook D4·d2 = 2.114 · 2.326


def test_test1_on_the_range_chart_below_a_positive_lcl() -> None:
    chart = chart_for((1,), n=7)  # n = 7: LCL = (d2 − 3 d3)σ = 0.2047 > 0
    vs = chart.add(ChartPoint(0, "a", T0, 7, 0.0, 0.1))
    assert [(v.rule, v.chart) for v in vs] == [(1, "r")]
    assert chart.add(ChartPoint(1, "b", T0, 5, 0.0, 0.0)) == []  # n = 5: LCL is 0, nothing is below it


def test_test1_on_the_s_chart() -> None:
    chart = ControlChart(Options(run_rules=(1,)), "xbar_s")
    chart.freeze(0.0, 1.0, 12)
    # c4(12) = 0.9776, UCL = c4 + 3√(1−c4²) = 1.6077
    assert chart.add(ChartPoint(0, "a", T0, 12, 0.0, 1.60)) == []
    assert [v.chart for v in chart.add(ChartPoint(1, "b", T0, 12, 0.0, 1.62))] == ["r"]


def test_test1_on_the_moving_range_chart() -> None:
    chart = ControlChart(Options(run_rules=(1,)))
    chart.freeze(0.0, 1.0, 1)  # i_mr: MR UCL = d2(2) + 3 d3(2) = 3.6859
    assert chart.chart == "i_mr"
    assert chart.add(ChartPoint(0, "a", T0, 1, 1.9, None)) == []  # no MR for the first point
    vs = chart.add(ChartPoint(1, "b", T0, 1, -1.9, 0.0))  # the caller's r is ignored: MR = 3.8
    assert [(v.rule, v.chart) for v in vs] == [(1, "r")]
    assert vs[0].value == pytest.approx(3.8)
    assert chart.points()[-1]["r"] == pytest.approx(3.8)


# ---------------------------------------------------------------------------------------------- state
def test_round_trip_mid_run_continues_the_run() -> None:
    xs = [0.5, 0.3, -0.2, 0.6, 0.4, 0.7, 0.2, 0.5, 0.3, 0.6, 0.8, 0.4, 0.1, 0.6, 0.3, 0.2]
    straight = chart_for()
    expected = feed(straight, xs)
    assert {v.rule for v in expected} == {2, 7}  # sanity: the run spans the checkpoint

    for cut in range(len(xs) + 1):
        first = chart_for()
        got = feed(first, xs[:cut])
        blob = json.dumps(first.to_dict(), sort_keys=True)
        restored = ControlChart.from_dict(json.loads(blob), Options(run_rules=ALL))
        assert json.dumps(restored.to_dict(), sort_keys=True) == blob
        got += feed(restored, xs[cut:], start=cut)
        assert got == expected, f"cut at {cut}"
        assert restored.to_dict() == straight.to_dict()


def test_round_trip_keeps_the_moving_range() -> None:
    chart = ControlChart(Options(run_rules=(1,)))
    chart.freeze(0.0, 1.0, 1)
    feed(chart, [1.9])
    restored = ControlChart.from_dict(json.loads(json.dumps(chart.to_dict())), Options(run_rules=(1,)))
    assert [v.chart for v in feed(restored, [-1.9], start=1)] == ["r"]


def test_refreeze_restarts_the_rule_history() -> None:
    chart = chart_for((2,))
    feed(chart, [0.5] * 8)
    chart.freeze(0.0, 1.0, 1)
    assert feed(chart, [0.5], start=8) == []


def test_history_is_bounded() -> None:
    chart = chart_for()
    feed(chart, [0.5 * math.sin(i) for i in range(500)])
    history = chart.to_dict()["history"]
    assert isinstance(history, list) and len(history) == 15


# ---------------------------------------------------------------------------------------------- reference
def reference(xs: list[float]) -> set[tuple[int, int]]:
    """Whole-series Nelson tests with Minitab's counts, written as plainly as possible (n = 1, μ 0, σ 1)."""
    out: set[tuple[int, int]] = set()
    for i in range(len(xs)):
        def win(k: int, i: int = i) -> list[float] | None:
            return xs[i - k + 1 : i + 1] if i - k + 1 >= 0 else None

        if abs(xs[i]) > 3:
            out.add((i, 1))
        w = win(9)
        if w and (all(v > 0 for v in w) or all(v < 0 for v in w)):
            out.add((i, 2))
        w = win(7)
        if w and (all(b > a for a, b in pairwise(w)) or all(b < a for a, b in pairwise(w))):
            out.add((i, 3))
        w = win(15)
        if w:
            d = [b - a for a, b in pairwise(w)]
            if all(x != 0 for x in d) and all((p > 0) != (q > 0) for p, q in pairwise(d)):
                out.add((i, 4))
        w3 = xs[max(0, i - 2) : i + 1]
        if (xs[i] > 2 and sum(v > 2 for v in w3) >= 2) or (xs[i] < -2 and sum(v < -2 for v in w3) >= 2):
            out.add((i, 5))
        w5 = xs[max(0, i - 4) : i + 1]
        if (xs[i] > 1 and sum(v > 1 for v in w5) >= 4) or (xs[i] < -1 and sum(v < -1 for v in w5) >= 4):
            out.add((i, 6))
        w = win(15)
        if w and all(abs(v) <= 1 for v in w):
            out.add((i, 7))
        w = win(8)
        if w and all(abs(v) > 1 for v in w):
            out.add((i, 8))
    return out


def random_series(seed: int) -> list[float]:
    """Four styles, so that every rule fires somewhere; rounding makes ties and exact zone lines common."""
    rng = random.Random(seed)
    style = seed % 4
    xs: list[float] = []
    for i in range(300):
        if style == 0:
            xs.append(round(rng.gauss(0.0, 1.0), 1))
        elif style == 1:
            xs.append(round(rng.gauss(0.0, 0.45), 2))  # too quiet: Test 7
        elif style == 2:
            xs.append(round(rng.gauss(0.8 * math.sin(i / 9), 1.0), 1))  # wandering mean: 2, 3, 5, 6
        else:
            xs.append(round(rng.choice((-1.6, 1.6)) + rng.gauss(0.0, 0.3), 1))  # mixture: Tests 4, 8
    return xs


SEEDS = range(40)


def test_the_random_series_exercise_every_rule() -> None:
    rules = {rule for seed in SEEDS for _, rule in reference(random_series(seed))}
    assert rules == set(ALL)


@pytest.mark.parametrize("seed", SEEDS)
def test_incremental_rules_match_the_reference(seed: int) -> None:
    xs = random_series(seed)
    assert set(fired(xs)) == reference(xs)
