"""Shewhart control charts with frozen limits, Phase I and II, and Nelson's eight tests (SPEC §4.1).

Why a chart at all: a Cpk describes a process only while it is in statistical control, so every characteristic
runs one of these beside its capability window and the ladder can refuse to trust the Cpk of an unstable
process.

Chart kinds
    ``xbar_r`` (nominal subgroup size 2–10), ``xbar_s`` (above 10, or asked for explicitly) and ``i_mr``
    (individuals). Limits are *frozen* from a baseline (centre μ₀ and σ₀ from the first ``min_subgroups``
    closed subgroups, or a spec's known ``center``/``sigma``) and never drift with the data they judge.

    * X̄ / I: μ₀ ± 3σ₀/√n, with n the size of *that* point's subgroup (sizes may vary).
    * R:  centre d₂(n)σ₀, UCL (d₂(n)+3d₃(n))σ₀, LCL max(0, (d₂(n)−3d₃(n))σ₀).
    * S:  centre c₄(n)σ₀, UCL/LCL c₄(n)σ₀ ± 3σ₀√(1−c₄(n)²), LCL ≥ 0.
    * MR: centre d₂(2)σ₀, UCL (d₂(2)+3d₃(2))σ₀, LCL 0. The chart computes the moving range itself from the
      previous plotted individual (the caller's ``r`` is ignored for ``i_mr``), so it survives a checkpoint.

Nelson's tests, as Minitab runs them with its default K values
    Sources followed (retrieved through the project's reference search):

    * Minitab Support, "Using tests for special causes in control charts" and "Select tests for special
      causes" (support.minitab.com, Minitab 20/21): Test 1 one point more than 3σ from the centre line; Test 2
      nine points in a row on the same side of the centre line; Test 3 six points in a row, all increasing or
      all decreasing; Test 4 fourteen points in a row, alternating up and down; Test 5 two out of three points
      more than 2σ from the centre line (same side); Test 6 four out of five points more than 1σ from the
      centre line (same side); Test 7 fifteen points in a row within 1σ of the centre line (either side); Test
      8 eight points in a row more than 1σ from the centre line (either side). Tests 5 and 6 are "K out of K+1
      points". Minitab marks the point that completes a pattern, and a point that extends a pattern fails
      again (every point of a 10-long run on one side fails Test 2 from the 9th on); only tests 1–4 apply to
      R, S and MR charts — we run only Test 1 there, as SPEC §4.1 asks.
    * How Minitab *counts* Tests 3 and 4: its K counts the moves between points, not the points. The CRAN
      package Rspc (``Rule3``/``Rule4``, ``convention = 'minitab'``), which reproduces Minitab and JMP side by
      side, documents "minitab — seven points in a row steadily increasing or decreasing" (K = 6 → 6
      increases, 7 points; JMP uses 6 points) and "minitab — 15 points (14 changes of direction) in a row
      alternate" (K = 14 → 14 alternating moves, 15 points). We follow that: ``TREND_MOVES = 6`` and
      ``ALTERNATING_MOVES = 14``.

    Boundary conventions (Minitab's wording "more than", "within", "same side"; Rspc's strict inequalities):

    * "more than kσ" is strict and "within 1σ" is inclusive, judged **against the lines as displayed**: the
      chart's lines are L±k = μ₀ ± k·se with se = σ₀/√n (the very floats :meth:`ControlChart.x_limits` and
      the zone lines show), and a point x is beyond the upper line iff ``x − L₊ₖ > ε``, beyond the lower one
      iff ``L₋ₖ − x > ε``, with ε = ``LINE_ULPS`` (4) ulps of |μ₀| + 3·se, the largest magnitude involved.
      Why a tolerance: gauges round, so real data sit exactly on these lines, but the decimal value 74.03 and
      the float 74.0 + 3·0.01 (or 1.1 − 3·0.1 and 0.8) can differ in the last bit, and dividing by se (the
      old z-score comparison) adds more: 74.03 became z = 3.0000000000001 and fired Test 1 while 1.4 sat
      below its twin line. ε covers the rounding of x, μ₀, se and the sum (≤ 2.5 ulps) and is ≈ 1e-15 of the
      data's magnitude, far below any gauge resolution; so a value equal to a line to the float's display
      precision is *on* it (within), and mirroring the data around μ₀ mirrors the violations.
    * The same ε decides the side of the centre line: a point within ε of μ₀ is *on* it, on neither side,
      and breaks a Test 2 run.
    * Test 1 on R/S/MR: r − UCL > ε or LCL − r > ε (LCL > 0 only), ε = 4 ulps of |μ₀| + UCL (a range is a
      difference of values of magnitude |μ₀|).
    * Equal consecutive values are neither up nor down: a tie breaks a Test 3 trend and a Test 4 alternation.
    * Tests 3 and 4 look at the plotted values x (what the operator sees rising); the zone tests classify x
      against the zone lines of its own subgroup size n, which is what makes them valid for unequal sizes.

Phase I and phase II
    When limits are frozen from a baseline, :meth:`ControlChart.evaluate_baseline` judges the baseline
    subgroups themselves against those limits, in order, with every enabled rule (Phase I, as Minitab or
    qcc do when they draw a chart of the data the limits come from); the rule history then continues into
    phase II from those points. Known limits (a spec's ``center``/``sigma``) need no baseline.

Incremental evaluation
    The chart keeps only the last ``HISTORY`` = 15 plotted points, each as (x, side, level) — its side of
    the centre line (−1, 0, +1) and how many of the 1σ/2σ/3σ lines on that side it is strictly beyond —
    the longest pattern (Test 4's 15 points, Test 7's 15 points) needs no more, so a point costs O(1)
    whatever the stream length, and the buffer is part of :meth:`ControlChart.to_dict`, so a restored chart
    keeps detecting a run that began before the checkpoint. Re-freezing clears the buffer (old points mean
    nothing against new limits); a baseline evaluation refills it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice, pairwise
from typing import Any, Literal, cast

from cpkmon.capability.constants import c4, d2, d3
from cpkmon.capability.options import Options
from cpkmon.capability.timeutil import to_rfc3339

ChartKind = Literal["xbar_r", "xbar_s", "i_mr"]
CHART_KINDS: tuple[str, ...] = ("xbar_r", "xbar_s", "i_mr")
ALL_RULES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)

#: Longest history any test needs (Tests 4 and 7: 15 points).
HISTORY = 15
#: Minitab defaults (K values); see the module docstring for how K is counted.
TEST1_SIGMA = 3.0
TEST2_POINTS = 9
TREND_MOVES = 6  # Test 3: six consecutive increases (or decreases) = seven points
ALTERNATING_MOVES = 14  # Test 4: fourteen alternating moves = fifteen points
TEST5_OF = (2, 3)
TEST6_OF = (4, 5)
TEST7_POINTS = 15
TEST8_POINTS = 8
#: Tolerance of a comparison with a chart line, in ulps of the largest magnitude involved (see the module
#: docstring, "Boundary conventions").
LINE_ULPS = 4

#: Violations kept for ``violations()``; stability itself never depends on this list (see ``stable``).
MIN_VIOLATIONS_KEPT = 200


# not frozen: one is built per subgroup close, and a frozen dataclass's __init__ (object.__setattr__ each)
# costs twice as much (issue 11's profile); treated as a value — nothing assigns to it after construction
@dataclass(slots=True)
class ChartPoint:
    """One plotted subgroup: its mean ``x`` (the value itself for individuals) and its range or SD ``r``."""

    seq: int
    subgroup: str
    event_time: float
    n: int
    x: float
    r: float | None


# not frozen: one is built per subgroup close, and a frozen dataclass's __init__ (object.__setattr__ each)
# costs twice as much (issue 11's profile); treated as a value — nothing assigns to it after construction
@dataclass(slots=True)
class Violation:
    """One test failure at one point. ``chart`` is ``"x"`` (X̄/I) or ``"r"`` (R/S/MR).

    ``value`` is the plotted value that failed (x, or r for the range chart); ``limit`` the line it crossed:
    the control limit for Test 1, the centre line for Test 2, the 2σ/1σ zone line on the failing side for
    Tests 5/6, and None for the shape tests (3, 4, 7, 8) that cross no single line.
    """

    rule: int
    chart: str
    seq: int
    subgroup: str
    event_time: float
    value: float
    limit: float | None

    def to_dict(self) -> dict[str, object]:
        """Status form (SPEC §6): event time as RFC 3339."""
        return {
            "rule": self.rule,
            "chart": self.chart,
            "seq": self.seq,
            "subgroup": self.subgroup,
            "event_time": to_rfc3339(self.event_time),
            "value": self.value,
            "limit": self.limit,
        }


def chart_kind_for(nominal_n: int) -> ChartKind:
    """SPEC §4.1: I–MR for individuals, X̄–R for 2–10, X̄–S above 10."""
    if nominal_n < 1:
        raise ValueError(f"nominal subgroup size must be ≥ 1, got {nominal_n}")
    if nominal_n == 1:
        return "i_mr"
    if nominal_n <= 10:
        return "xbar_r"
    return "xbar_s"


def _finite(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


class ControlChart:
    """Frozen-limit Shewhart chart of one characteristic; see the module docstring for the rules followed."""

    __slots__ = (
        "_center",
        "_chart",
        "_explicit_chart",
        "_history",
        "_last_violation_seq",
        "_lines",
        "_nominal_n",
        "_options",
        "_points",
        "_prev_x",
        "_rlines",
        "_rules",
        "_sigma",
        "_source",
        "_times",
        "_violations",
    )

    def __init__(self, options: Options, chart: str | None = None) -> None:
        if chart is not None and chart not in CHART_KINDS:
            raise ValueError(f"unknown chart kind {chart!r}; expected one of {CHART_KINDS}")
        self._options = options
        self._explicit_chart: ChartKind | None = cast(ChartKind | None, chart)
        self._chart: ChartKind | None = self._explicit_chart
        self._rules: frozenset[int] = frozenset(r for r in options.run_rules if r in ALL_RULES)
        self._center: float | None = None
        self._sigma: float | None = None
        self._nominal_n: int | None = None
        self._source: str | None = None
        # (x, side, level) of the last HISTORY points plotted since the limits were frozen (module docstring)
        self._history: deque[tuple[float, int, int]] = deque(maxlen=HISTORY)
        # subgroup size → (ε, lower lines, upper lines): computed once per size and freeze, not per point
        self._lines: dict[int, tuple[float, tuple[float, float, float], tuple[float, float, float]]] = {}
        # subgroup size → (LCL, UCL, ε) of the R/S/MR chart (None: no range limits for that size); likewise
        self._rlines: dict[int, tuple[float, float, float] | None] = {}
        self._prev_x: float | None = None  # previous individual, for the moving range
        self._points: deque[dict[str, object]] = deque(maxlen=max(1, options.chart_points))
        # each point's event time as RFC 3339 (None until a status first shows it), formatted once per point
        # rather than on every status document
        self._times: deque[str | None] = deque(maxlen=max(1, options.chart_points))
        self._violations: deque[Violation] = deque(maxlen=max(options.chart_points, MIN_VIOLATIONS_KEPT))
        self._last_violation_seq: int | None = None

    # ------------------------------------------------------------------ limits
    def freeze(self, center: float, sigma: float, nominal_n: int, source: str = "baseline") -> None:
        """Freeze the limits (phase II). Re-freezing replaces them and restarts the rule history.

        The chart kind is the one given to the constructor, else chosen from ``nominal_n`` (SPEC §4.1).
        """
        center = _finite(center, "center")
        sigma = _finite(sigma, "sigma")
        if sigma <= 0.0:
            raise ValueError(f"sigma must be > 0 to freeze control limits, got {sigma}")
        if source not in ("baseline", "known"):
            raise ValueError(f"source must be 'baseline' or 'known', got {source!r}")
        kind = self._explicit_chart or chart_kind_for(nominal_n)
        if nominal_n < 1:
            raise ValueError(f"nominal subgroup size must be ≥ 1, got {nominal_n}")
        self._chart = kind
        self._center = center
        self._sigma = sigma
        self._nominal_n = int(nominal_n)
        self._source = source
        self._history.clear()
        self._lines.clear()
        self._rlines.clear()

    @property
    def frozen(self) -> bool:
        return self._sigma is not None

    @property
    def chart(self) -> str | None:
        """The chart kind, None until frozen unless given to the constructor."""
        return self._chart

    @property
    def center(self) -> float | None:
        return self._center

    @property
    def sigma(self) -> float | None:
        return self._sigma

    def x_limits(self, n: int) -> tuple[float, float, float]:
        """(LCL, centre, UCL) of the X̄/I chart for a subgroup of size ``n``: the lines Test 1 judges by."""
        center, _ = self._require_frozen()
        _, lower, upper = self._zone_lines(n)
        return lower[2], center, upper[2]

    def zone_lines(self, n: int) -> list[tuple[float, float]]:
        """[(lower, upper)] of the 1σ, 2σ and 3σ lines of the X̄/I chart for a subgroup of size ``n``, exactly
        the floats the zone tests compare with (the 3σ pair is :meth:`x_limits`)."""
        _, lower, upper = self._zone_lines(n)
        return list(zip(lower, upper, strict=True))

    def _zone_lines(self, n: int) -> tuple[float, tuple[float, float, float], tuple[float, float, float]]:
        """(ε, lower 1σ/2σ/3σ lines, upper ones) for subgroups of size ``n`` (module docstring)."""
        center, sigma = self._require_frozen()
        se = sigma / math.sqrt(n)
        eps = LINE_ULPS * math.ulp(abs(center) + TEST1_SIGMA * se)
        return (
            eps,
            (center - se, center - 2.0 * se, center - TEST1_SIGMA * se),
            (center + se, center + 2.0 * se, center + TEST1_SIGMA * se),
        )

    def range_limits(self, n: int) -> tuple[float, float, float] | None:
        """(LCL, centre, UCL) of the R/S/MR chart for subgroups of size ``n``; None where undefined."""
        _, sigma = self._require_frozen()
        if self._chart == "i_mr":
            n = 2  # the moving range of two consecutive individuals
        if n < 2:
            return None
        if self._chart == "xbar_s":
            c = c4(n)
            spread = TEST1_SIGMA * sigma * math.sqrt(max(0.0, 1.0 - c * c))
            mid = c * sigma
            return max(0.0, mid - spread), mid, mid + spread
        if n > 25:  # d₂/d₃ are tabulated to n = 25; subgroups close at 25 values anyway
            return None
        a, b = d2(n), d3(n)
        return max(0.0, (a - TEST1_SIGMA * b) * sigma), a * sigma, (a + TEST1_SIGMA * b) * sigma

    def limits(self) -> dict[str, object] | None:
        """The status ``control`` object (SPEC §6) for the nominal subgroup size; None before a baseline."""
        if not self.frozen:
            return None
        assert self._nominal_n is not None
        lcl, center, ucl = self.x_limits(1 if self._chart == "i_mr" else self._nominal_n)
        rl = self.range_limits(self._nominal_n)
        return {
            "chart": self._chart,
            "center": center,
            "ucl": ucl,
            "lcl": lcl,
            "range_center": rl[1] if rl else None,
            "range_ucl": rl[2] if rl else None,
            "range_lcl": rl[0] if rl else None,
            "sigma": self._sigma,
            "source": self._source,
            "nominal_n": self._nominal_n,
        }

    def _require_frozen(self) -> tuple[float, float]:
        if self._center is None or self._sigma is None:
            raise RuntimeError("control limits are not frozen yet")
        return self._center, self._sigma

    # ------------------------------------------------------------------ points and rules
    def add(self, point: ChartPoint) -> list[Violation]:
        """Plot one closed subgroup; evaluate the enabled rules if the limits are frozen.

        Always records the point (so the status shows the baseline period too); returns the violations this
        point raised, in rule order, X̄/I chart first.
        """
        if point.n < 1:
            raise ValueError(f"a chart point needs n ≥ 1, got {point.n}")
        x = _finite(point.x, "x")
        r = point.r
        if self._chart == "i_mr" or (self._chart is None and point.n == 1):
            r = None if self._prev_x is None else abs(x - self._prev_x)
            self._prev_x = x
        elif r is not None:
            r = _finite(r, "r")
        violations: list[Violation] = []
        if self.frozen:
            violations = self._evaluate(point, x, r)
            self._record(violations)
        self._points.append(
            {
                "seq": point.seq,
                "subgroup": point.subgroup,
                "event_time": point.event_time,
                "n": point.n,
                "x": x,
                "r": r,
                "rules": sorted({v.rule for v in violations}) if violations else [],
            }
        )
        self._times.append(None)
        return violations

    def evaluate_baseline(self, points: Iterable[ChartPoint]) -> list[Violation]:
        """Phase I: judge the subgroups the frozen limits were computed from against those limits.

        ``points`` are the baseline subgroups (already plotted by :meth:`add`, or older ones still in the
        caller's window); they are evaluated in seq order with every enabled rule exactly as in phase II (the
        moving range of an I–MR chart between consecutive baseline points), their violations are recorded —
        replacing any verdict an earlier baseline gave the same subgroups, so a re-baseline re-judges its
        window instead of counting it twice — plotted points get their ``rules``, and the rule history is left
        holding the last baseline points, so a run that starts in the baseline completes in phase II. Runs
        once per freeze: O(baseline) then, nothing per later point. Returns the violations in seq order.
        """
        self._require_frozen()
        pts = sorted(points, key=lambda p: p.seq)
        if not pts:
            return []
        first = pts[0].seq
        kept = [v for v in self._violations if v.seq < first]
        self._violations.clear()
        self._violations.extend(kept)
        # the trimmed, older violations are older than every kept one, and older than ``first``: for
        # ``stable`` (which asks about seqs ≥ the window's oldest ≤ first) the newest kept one is exact
        self._last_violation_seq = max((v.seq for v in kept), default=None)
        self._history.clear()
        i_mr = self._chart == "i_mr"
        prev: float | None = None
        out: list[Violation] = []
        for p in pts:
            if p.n < 1:
                raise ValueError(f"a chart point needs n ≥ 1, got {p.n}")
            x = _finite(p.x, "x")
            r: float | None
            if i_mr:
                r = None if prev is None else abs(x - prev)
                prev = x
            else:
                r = None if p.r is None else _finite(p.r, "r")
            out += self._evaluate(p, x, r)
        self._record(out)
        rules_at: dict[int, set[int]] = {}
        for v in out:
            rules_at.setdefault(v.seq, set()).add(v.rule)
        for stored in self._points:
            seq = cast(int, stored["seq"])
            if seq >= first:
                stored["rules"] = sorted(rules_at.get(seq, ()))
        return out

    def _record(self, violations: list[Violation]) -> None:
        for v in violations:
            self._violations.append(v)
            if self._last_violation_seq is None or v.seq > self._last_violation_seq:
                self._last_violation_seq = v.seq

    def _evaluate(self, point: ChartPoint, x: float, r: float | None) -> list[Violation]:
        center, _ = self._require_frozen()
        n = 1 if self._chart == "i_mr" else point.n
        lines = self._lines.get(n)
        if lines is None:
            lines = self._lines[n] = self._zone_lines(n)
        # see "Boundary conventions": compare with the displayed lines, within ε of a line is on it; the
        # lines on a side are increasingly far, so the count of lines passed is the zone level
        eps, lower, upper = lines
        if x - center > eps:
            side = 1
            level = (x - upper[0] > eps) + (x - upper[1] > eps) + (x - upper[2] > eps)
        elif center - x > eps:
            side = -1
            level = (lower[0] - x > eps) + (lower[1] - x > eps) + (lower[2] - x > eps)
        else:
            side = level = 0
        hist = self._history
        hist.append((x, side, level))
        nh = len(hist)
        rules = self._rules
        out: list[Violation] = []
        # The run tests walk the history back from the newest point and stop at the first point that breaks
        # the run (in control, after one or two): O(1) per point in practice, the same verdicts as checking
        # "the last k points all …".

        def hit(rule: int, k: int | None) -> None:
            """Record a failure; ``k`` names the kσ line crossed on the point's side (0: the centre line)."""
            limit = None if k is None else center if k == 0 else (upper if side > 0 else lower)[k - 1]
            out.append(Violation(rule, "x", point.seq, point.subgroup, point.event_time, x, limit))

        # Test 1: one point more than 3σ from the centre line.
        if 1 in rules and level >= 3:
            hit(1, 3)
        # Test 2: nine points in a row strictly on one side.
        if 2 in rules and side != 0 and nh >= TEST2_POINTS:
            run = 0
            for _, hs, _ in reversed(hist):
                if hs != side:
                    break
                run += 1
            if run >= TEST2_POINTS:
                hit(2, 0)
        # Test 3: six consecutive increases or six consecutive decreases (seven points).
        if 3 in rules and nh >= TREND_MOVES + 1 and _trend_moves(hist) >= TREND_MOVES:
            hit(3, None)
        # Test 4: fourteen moves in a row alternating up and down (fifteen points).
        if 4 in rules and nh >= ALTERNATING_MOVES + 1 and _alternating_moves(hist) >= ALTERNATING_MOVES:
            hit(4, None)
        # Test 5: two out of three points more than 2σ, same side; the current point is one of them.
        if 5 in rules and level >= 2:
            k, of = TEST5_OF
            if _count_beyond(islice(reversed(hist), of), 2, side) >= k:
                hit(5, 2)
        # Test 6: four out of five points more than 1σ, same side; the current point is one of them.
        if 6 in rules and level >= 1:
            k, of = TEST6_OF
            if _count_beyond(islice(reversed(hist), of), 1, side) >= k:
                hit(6, 1)
        # Test 7: fifteen points in a row within 1σ (either side, inclusive) — this one among them.
        if 7 in rules and level == 0 and nh >= TEST7_POINTS:
            run = 0
            for _, _, hl in reversed(hist):
                if hl != 0:
                    break
                run += 1
            if run >= TEST7_POINTS:
                hit(7, None)
        # Test 8: eight points in a row more than 1σ from the centre line (either side) — this one too.
        if 8 in rules and level >= 1 and nh >= TEST8_POINTS:
            run = 0
            for _, _, hl in reversed(hist):
                if hl < 1:
                    break
                run += 1
            if run >= TEST8_POINTS:
                hit(8, None)

        # Test 1 on the R / S / MR chart: above the UCL, or below a positive LCL (same ε rule).
        if 1 in rules and r is not None:
            if point.n in self._rlines:
                rlines = self._rlines[point.n]
            else:
                rl = self.range_limits(point.n)
                rlines = self._rlines[point.n] = (
                    None if rl is None else (rl[0], rl[2], LINE_ULPS * math.ulp(abs(center) + rl[2]))
                )
            if rlines is not None:
                lcl, ucl, eps_r = rlines
                if r - ucl > eps_r:
                    out.append(Violation(1, "r", point.seq, point.subgroup, point.event_time, r, ucl))
                elif lcl > 0.0 and lcl - r > eps_r:
                    out.append(Violation(1, "r", point.seq, point.subgroup, point.event_time, r, lcl))
        return out

    # ------------------------------------------------------------------ status
    def points(self) -> list[dict[str, object]]:
        """The last ``options.chart_points`` plotted points, oldest first, event time as RFC 3339."""
        times = self._times
        if times and times[-1] is None:  # points plotted since the last status (appended at the end)
            for i, (p, t) in enumerate(zip(self._points, times, strict=True)):
                if t is None:
                    times[i] = to_rfc3339(cast(float, p["event_time"]))
        return [
            {**p, "event_time": t, "rules": list(cast(list[int], p["rules"]))}
            for p, t in zip(self._points, times, strict=True)
        ]

    def violations(self, since_seq: int) -> list[dict[str, object]]:
        """Recorded violations of subgroups with ``seq ≥ since_seq``, oldest first (bounded history)."""
        return [v.to_dict() for v in self._violations if v.seq >= since_seq]

    def violation_objects(self, since_seq: int) -> list[Violation]:
        """As :meth:`violations`, as :class:`Violation` objects."""
        return [v for v in self._violations if v.seq >= since_seq]

    def stable(self, since_seq: int) -> bool | None:
        """No enabled rule fired at a subgroup with ``seq ≥ since_seq``; None while no limits are frozen.

        Exact even after old violations were trimmed from the list: it compares with the newest violation.
        """
        if not self.frozen:
            return None
        return self._last_violation_seq is None or self._last_violation_seq < since_seq

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, object]:
        """JSON-safe state, including the rule history, for an exact round trip."""
        return {
            "chart": self._chart,
            "explicit_chart": self._explicit_chart,
            "center": self._center,
            "sigma": self._sigma,
            "nominal_n": self._nominal_n,
            "source": self._source,
            "history": [[hx, hs, hl] for hx, hs, hl in self._history],
            "prev_x": self._prev_x,
            "points": [dict(p, rules=list(cast(list[int], p["rules"]))) for p in self._points],
            "violations": [
                [v.rule, v.chart, v.seq, v.subgroup, v.event_time, v.value, v.limit] for v in self._violations
            ],
            "last_violation_seq": self._last_violation_seq,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], options: Options) -> ControlChart:
        chart = cls(options, d.get("explicit_chart"))
        kind = d.get("chart")
        chart._chart = cast(ChartKind | None, kind) if kind in CHART_KINDS else chart._explicit_chart
        chart._center = _opt_float(d.get("center"))
        chart._sigma = _opt_float(d.get("sigma"))
        nominal = d.get("nominal_n")
        chart._nominal_n = int(nominal) if nominal is not None else None
        chart._source = d.get("source")
        for item in d.get("history", []):
            chart._history.append(_history_item(item))
        chart._prev_x = _opt_float(d.get("prev_x"))
        for p in d.get("points", []):
            chart._points.append(dict(p, rules=[int(r) for r in p.get("rules", [])]))
            chart._times.append(None)
        for rule, kind_, seq, subgroup, event_time, value, limit in d.get("violations", []):
            chart._violations.append(
                Violation(int(rule), str(kind_), int(seq), str(subgroup), float(event_time), float(value),
                          _opt_float(limit))
            )
        lvs = d.get("last_violation_seq")
        chart._last_violation_seq = int(lvs) if lvs is not None else None
        return chart


def _opt_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _history_item(item: list[Any]) -> tuple[float, int, int]:
    """A stored history point: ``[x, side, level]``, or a checkpoint's older ``[x, z]``, which is
    classified by z with the strict/inclusive rule it was written under."""
    if len(item) == 2:
        x, z = float(item[0]), float(item[1])
        side = (z > 0.0) - (z < 0.0)
        return x, side, sum(1 for k in (1.0, 2.0, TEST1_SIGMA) if abs(z) > k)
    x, side, level = item
    return float(x), int(side), int(level)


def _trend_moves(hist: deque[tuple[float, int, int]]) -> int:
    """How many moves in a row, newest back, go the same way (all up or all down; a tie ends the run)."""
    it = reversed(hist)
    newer = next(it)[0]
    direction = 0
    count = 0
    for older, _, _ in it:
        d = (newer > older) - (newer < older)
        if d == 0 or (direction and d != direction):
            break
        direction = d
        count += 1
        newer = older
    return count


def _alternating_moves(hist: deque[tuple[float, int, int]]) -> int:
    """How many moves in a row, newest back, alternate up and down (a tie ends the run)."""
    it = reversed(hist)
    newer = next(it)[0]
    last = 0
    count = 0
    for older, _, _ in it:
        d = (newer > older) - (newer < older)
        if d == 0 or d == last:
            break
        last = d
        count += 1
        newer = older
    return count


def _moves(points: Iterable[tuple[float, int, int]]) -> list[int]:
    """Signs of consecutive differences of the plotted values: +1 up, −1 down, 0 tie."""
    xs = [x for x, _, _ in points]
    return [(b > a) - (b < a) for a, b in pairwise(xs)]


def _count_beyond(points: Iterable[tuple[float, int, int]], level: int, side: int) -> int:
    """How many of ``points`` lie beyond the ``level``σ line on ``side`` of the centre."""
    return sum(1 for _, s, lv in points if s == side and lv >= level)
