"""Points exactly on a control limit or zone line (issue 9, finding 4).

Gauges round, so real data sit exactly on the lines a chart displays. "More than kσ" must be strict and
"within 1σ" inclusive *against the lines as displayed* (μ₀ ± k·σ₀/√n as floats), whatever the last bit of the
decimal value or of the line says, and symmetric: data mirrored around the centre give mirrored violations.
The rule (capability/control.py, "Boundary conventions"): beyond iff the value passes the line by more than
4 ulps of |μ₀| + 3·se.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cpkmon.capability.control import ChartPoint, ControlChart, Violation
from cpkmon.capability.options import Options

ALL = (1, 2, 3, 4, 5, 6, 7, 8)
T0 = 1_763_626_502.0


def chart(center: float, sigma: float, *, rules: tuple[int, ...] = ALL, kind: str = "xbar_r", n: int = 1
          ) -> ControlChart:
    c = ControlChart(Options(run_rules=rules), kind)
    c.freeze(center, sigma, n)
    return c


def feed(c: ControlChart, xs: list[float], *, n: int = 1, r: float | None = None) -> list[Violation]:
    out: list[Violation] = []
    for i, x in enumerate(xs):
        out += c.add(ChartPoint(i, f"s{i}", T0 + i, n, x, r))
    return out


def x_fired(center: float, sigma: float, xs: list[float], rules: tuple[int, ...] = ALL, n: int = 1
            ) -> list[tuple[int, int]]:
    return [(v.seq, v.rule) for v in feed(chart(center, sigma, rules=rules, n=n), xs, n=n) if v.chart == "x"]


# ------------------------------------------------------------------------------------ the reported cases
def test_the_displayed_ucl_is_not_beyond_it() -> None:
    c = chart(74.0, 0.01)
    lcl, _, ucl = c.x_limits(1)
    assert (lcl, ucl) == (73.97, 74.03)  # the lines as displayed are the decimal values
    assert (74.03 - 74.0) / 0.01 > 3.0  # what the old z comparison saw: 3.0000000000001137
    assert x_fired(74.0, 0.01, [74.03, 73.97]) == []
    assert x_fired(74.0, 0.01, [74.0300001]) == [(0, 1)]
    assert x_fired(74.0, 0.01, [73.9699999]) == [(0, 1)]


def test_both_limits_alike_when_the_floats_disagree() -> None:
    # 1.1 ∓ 3·0.1: the float LCL is 0.8 exactly, the float UCL 1.4000000000000001; z said −3.0000000000000004
    # for 0.8 (fired) and 2.9999999999999982 for 1.4 (did not)
    assert x_fired(1.1, 0.1, [0.8]) == []
    assert x_fired(1.1, 0.1, [1.4]) == []
    assert x_fired(1.1, 0.1, [0.79]) == [(0, 1)]
    assert x_fired(1.1, 0.1, [1.41]) == [(0, 1)]


def test_alternating_exactly_on_one_sigma_is_within_test7_not_test8() -> None:
    xs = [1.0, 1.2] * 8  # 1.1 ∓ 0.1: sixteen points on the ±1σ lines
    assert x_fired(1.1, 0.1, xs, (7, 8)) == [(14, 7), (15, 7)]
    assert x_fired(1.1, 0.1, xs, (6, 8)) == []
    # just beyond the lines: Test 8 from the 8th point, never Test 7
    beyond = [0.99, 1.21] * 5
    assert x_fired(1.1, 0.1, beyond, (7, 8)) == [(7, 8), (8, 8), (9, 8)]


def test_two_sigma_and_one_sigma_lines_for_tests_5_and_6() -> None:
    # 74.0 ± 2·0.01 and ± 1·0.01, as a gauge reading to 0.01 reports them
    assert x_fired(74.0, 0.01, [74.02, 74.0, 74.02], (5,)) == []
    assert x_fired(74.0, 0.01, [73.98, 74.0, 73.98], (5,)) == []
    assert x_fired(74.0, 0.01, [74.021, 74.0, 74.021], (5,)) == [(2, 5)]
    assert x_fired(74.0, 0.01, [74.01] * 5, (6,)) == []
    assert x_fired(74.0, 0.01, [73.99] * 5, (6,)) == []
    assert x_fired(74.0, 0.01, [73.989] * 5, (6,)) == [(3, 6), (4, 6)]


def test_subgroup_means_on_the_lines_of_their_own_size() -> None:
    # n = 4: se = σ/2 exactly; 10.0 ± 3·0.02/2 = 9.97 / 10.03
    assert x_fired(10.0, 0.02, [10.03, 9.97], (1,), n=4) == []
    assert x_fired(10.0, 0.02, [10.031], (1,), n=4) == [(0, 1)]


def test_a_point_on_the_centre_line_within_rounding_breaks_test2() -> None:
    # 0.1 + 0.2 is the float 0.30000000000000004: on the centre line 0.3 as displayed, so no side
    xs = [0.35] * 8 + [0.1 + 0.2] + [0.35]
    assert x_fired(0.3, 0.1, xs, (2,)) == []


def test_range_charts_compare_with_the_displayed_limit() -> None:
    c = chart(74.0, 0.01, rules=(1,), n=5)
    ucl = c.range_limits(5)
    assert ucl is not None
    top = ucl[2]
    assert feed(c, [74.0], n=5, r=top) == []
    assert feed(c, [74.0], n=5, r=math.nextafter(top, math.inf)) == []  # one ulp: the same line
    # ranges are differences of values near 74, known to ~1e-14: ε is 4 ulps of 74 + UCL
    assert feed(c, [74.0], n=5, r=top + 4 * math.ulp(74.0)) == []
    assert [v.chart for v in feed(c, [74.0], n=5, r=top + 1e-9)] == ["r"]


def test_moving_range_equal_to_the_ucl_as_data_carry_it() -> None:
    """Two individuals whose moving range *is* the MR UCL to the data's precision: the float difference may
    land a few ulps of the data above the limit (the old ``r > ucl`` fired); the rule keeps it within."""
    naive_fired = 0
    for i in range(40):
        center = 50.0 + 1.37 * i
        c = chart(center, 0.01, rules=(1,), kind="i_mr")
        mr_limits = c.range_limits(1)
        assert mr_limits is not None
        ucl = mr_limits[2]
        x2 = center + ucl
        naive_fired += (x2 - center) > ucl
        assert [v for v in feed(c, [center, x2]) if v.chart == "r"] == [], center
        c2 = chart(center, 0.01, rules=(1,), kind="i_mr")
        assert [v.chart for v in feed(c2, [center, center + ucl * 1.000001]) if v.chart == "r"] == ["r"]
    assert naive_fired > 0  # the case exists in this sample: the old comparison fired on it


def test_a_checkpoint_written_with_z_values_still_restores() -> None:
    c = chart(0.0, 1.0, rules=(2,))
    feed(c, [0.5] * 8)
    d = c.to_dict()
    d["history"] = [[0.5, 0.5] for _ in range(8)]  # the older [x, z] form
    restored = ControlChart.from_dict(json.loads(json.dumps(d)), Options(run_rules=(2,)))
    assert [v.rule for v in restored.add(ChartPoint(8, "s8", T0, 1, 0.5, None))] == [2]


# ------------------------------------------------------------------------------------ properties on grids
def _grid(units: int, decimals: int) -> Decimal:
    return Decimal(units).scaleb(-decimals)


@settings(max_examples=300, deadline=None)
@given(
    decimals=st.integers(0, 5),
    center_units=st.integers(-10**7, 10**7),
    sigma_units=st.integers(1, 10**4),
    n=st.sampled_from([1, 4]),
    kind=st.sampled_from(["xbar_r", "i_mr"]),
)
def test_values_exactly_on_the_lines_never_fire(
    decimals: int, center_units: int, sigma_units: int, n: int, kind: str
) -> None:
    """Centre and σ on a gauge's decimal grid, values at μ₀ ± kσ/√n on the same grid: never beyond a line."""
    if kind == "i_mr":
        n = 1
    center = _grid(center_units, decimals)
    sigma = _grid(sigma_units * (2 if n == 4 else 1), decimals)  # σ/2 on the grid too when n = 4
    se = sigma / 2 if n == 4 else sigma
    mu, sg = float(center), float(sigma)

    def on(k: int, sign: int) -> float:
        return float(center + sign * k * se)

    step = float(_grid(1, decimals))
    # Test 1 (k = 3), both sides; a grid step beyond fires
    assert x_fired(mu, sg, [on(3, 1), on(3, -1)], (1,), n=n) == []
    assert x_fired(mu, sg, [on(3, 1) + step], (1,), n=n) == [(0, 1)]
    assert x_fired(mu, sg, [on(3, -1) - step], (1,), n=n) == [(0, 1)]
    # Test 5 (k = 2)
    for sign in (1, -1):
        assert x_fired(mu, sg, [on(2, sign)] * 3, (5,), n=n) == []
    # Tests 6 and 8 never fire on the 1σ lines, Test 7 does (inclusive)
    ones = [on(1, 1), on(1, -1)] * 8
    assert x_fired(mu, sg, ones, (6, 8), n=n) == []
    assert x_fired(mu, sg, ones, (7,), n=n) == [(14, 7), (15, 7)]
    for sign in (1, -1):
        assert x_fired(mu, sg, [on(1, sign)] * 5, (6,), n=n) == []


@settings(max_examples=300, deadline=None)
@given(
    decimals=st.integers(0, 4),
    center_units=st.integers(-10**6, 10**6),
    sigma_units=st.integers(1, 500),
    offsets=st.lists(st.integers(-4, 4), min_size=1, max_size=40),
    fine=st.integers(0, 3),
)
def test_mirrored_data_give_mirrored_violations(
    decimals: int, center_units: int, sigma_units: int, offsets: list[int], fine: int
) -> None:
    """Values on the grid, many exactly on a line (offsets are in σ, or σ/2, σ/4 … with ``fine``): mirroring
    them around μ₀ (exactly, in decimal) gives the same violations at the same points, limits mirrored."""
    center = _grid(center_units, decimals)
    unit = _grid(sigma_units * 2**fine, decimals)  # σ = unit; offsets in unit / 2**fine stay on the grid
    part = unit / 2**fine
    xs = [float(center + o * part) for o in offsets]
    mirrored = [float(center - o * part) for o in offsets]
    a = feed(chart(float(center), float(unit)), xs)
    b = feed(chart(float(center), float(unit)), mirrored)
    assert [(v.seq, v.rule, v.chart) for v in a] == [(v.seq, v.rule, v.chart) for v in b]
    for va, vb in zip(a, b, strict=True):
        if va.limit is not None:
            assert vb.limit is not None
            assert Decimal(va.limit) + Decimal(vb.limit) - 2 * center == 0 or math.isclose(
                va.limit - float(center), float(center) - vb.limit, rel_tol=1e-12, abs_tol=1e-12
            )
