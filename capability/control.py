"""Shewhart control charts with frozen (phase II) limits and Nelson's eight tests (SPEC §4.1).

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

    * "more than kσ" is strict: |z| > 3 (Test 1), z > 2 (Test 5), z > 1 (Tests 6, 8); "within 1σ" is
      inclusive: |z| ≤ 1 (Test 7). A point exactly on a zone line is therefore *within* it.
    * A point exactly on the centre line is on neither side: it breaks a Test 2 run.
    * Equal consecutive values are neither up nor down: a tie breaks a Test 3 trend and a Test 4 alternation.
    * Tests 3 and 4 look at the plotted values x (what the operator sees rising); the zone tests use
      z = (x − μ₀)/(σ₀/√n), which is what makes them valid for unequal subgroup sizes.

Incremental evaluation
    The chart keeps only the last ``HISTORY`` = 15 plotted (x, z) pairs since the limits were frozen — the
    longest pattern (Test 4's 15 points, Test 7's 15 points) needs no more — so a point costs O(1) whatever
    the stream length, and the buffer is part of :meth:`ControlChart.to_dict`, so a restored chart keeps
    detecting a run that began before the checkpoint. Re-freezing (re-baselining) clears the buffer: old
    z-values are meaningless against new limits.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
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

#: Violations kept for ``violations()``; stability itself never depends on this list (see ``stable``).
MIN_VIOLATIONS_KEPT = 200


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One plotted subgroup: its mean ``x`` (the value itself for individuals) and its range or SD ``r``."""

    seq: int
    subgroup: str
    event_time: float
    n: int
    x: float
    r: float | None


@dataclass(frozen=True, slots=True)
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
        "_nominal_n",
        "_options",
        "_points",
        "_prev_x",
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
        # (x, z) of the last HISTORY points plotted since the limits were frozen.
        self._history: deque[tuple[float, float]] = deque(maxlen=HISTORY)
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
        """(LCL, centre, UCL) of the X̄/I chart for a subgroup of size ``n``."""
        center, sigma = self._require_frozen()
        half = TEST1_SIGMA * sigma / math.sqrt(n)
        return center - half, center, center + half

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
            for v in violations:
                self._violations.append(v)
                if self._last_violation_seq is None or v.seq > self._last_violation_seq:
                    self._last_violation_seq = v.seq
        self._points.append(
            {
                "seq": point.seq,
                "subgroup": point.subgroup,
                "event_time": point.event_time,
                "n": point.n,
                "x": x,
                "r": r,
                "rules": sorted({v.rule for v in violations}),
            }
        )
        self._times.append(None)
        return violations

    def _evaluate(self, point: ChartPoint, x: float, r: float | None) -> list[Violation]:
        center, sigma = self._require_frozen()
        n = 1 if self._chart == "i_mr" else point.n
        se = sigma / math.sqrt(n)
        z = (x - center) / se
        self._history.append((x, z))
        hist = self._history
        h = list(hist)  # one copy for every rule's "last k points" (h[-k:] is _last(hist, k))
        rules = self._rules
        out: list[Violation] = []

        def hit(rule: int, limit: float | None) -> None:
            out.append(Violation(rule, "x", point.seq, point.subgroup, point.event_time, x, limit))

        # Test 1: one point more than 3σ from the centre line.
        if 1 in rules and abs(z) > TEST1_SIGMA:
            hit(1, center + math.copysign(TEST1_SIGMA, z) * se)
        # Test 2: nine points in a row strictly on one side.
        if 2 in rules and len(hist) >= TEST2_POINTS and z != 0.0:
            side = z > 0.0
            if all((hz > 0.0) == side and hz != 0.0 for _, hz in h[-TEST2_POINTS:]):
                hit(2, center)
        # Test 3: six consecutive increases or six consecutive decreases (seven points).
        if 3 in rules and len(hist) >= TREND_MOVES + 1:
            moves = _moves(h[-(TREND_MOVES + 1):])
            if all(m > 0 for m in moves) or all(m < 0 for m in moves):
                hit(3, None)
        # Test 4: fourteen moves in a row alternating up and down (fifteen points).
        if 4 in rules and len(hist) >= ALTERNATING_MOVES + 1:
            moves = _moves(h[-(ALTERNATING_MOVES + 1):])
            if all(m != 0 for m in moves) and all(a * b < 0 for a, b in pairwise(moves)):
                hit(4, None)
        # Test 5: two out of three points more than 2σ, same side; the current point is one of them.
        if 5 in rules:
            k, of = TEST5_OF
            if abs(z) > 2.0 and _count_beyond(h[-of:], 2.0, z > 0.0) >= k:
                hit(5, center + math.copysign(2.0, z) * se)
        # Test 6: four out of five points more than 1σ, same side; the current point is one of them.
        if 6 in rules:
            k, of = TEST6_OF
            if abs(z) > 1.0 and _count_beyond(h[-of:], 1.0, z > 0.0) >= k:
                hit(6, center + math.copysign(1.0, z) * se)
        # Test 7: fifteen points in a row within 1σ (either side, inclusive).
        if 7 in rules and len(hist) >= TEST7_POINTS and all(abs(hz) <= 1.0 for _, hz in hist):
            hit(7, None)
        # Test 8: eight points in a row more than 1σ from the centre line (either side).
        last8 = h[-TEST8_POINTS:]
        if 8 in rules and len(last8) == TEST8_POINTS and all(abs(hz) > 1.0 for _, hz in last8):
            hit(8, None)

        # Test 1 on the R / S / MR chart: above the UCL, or below a positive LCL.
        if 1 in rules and r is not None:
            rl = self.range_limits(point.n)
            if rl is not None:
                lcl, _, ucl = rl
                if r > ucl:
                    out.append(Violation(1, "r", point.seq, point.subgroup, point.event_time, r, ucl))
                elif lcl > 0.0 and r < lcl:
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
            "history": [[hx, hz] for hx, hz in self._history],
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
        for hx, hz in d.get("history", []):
            chart._history.append((float(hx), float(hz)))
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


def _last(hist: deque[tuple[float, float]], k: int) -> list[tuple[float, float]]:
    """The last ``k`` entries (fewer if the history is shorter), oldest first; k ≤ 15, so O(1)."""
    if k >= len(hist):
        return list(hist)
    return list(hist)[-k:]


def _moves(pairs: Iterable[tuple[float, float]]) -> list[int]:
    """Signs of consecutive differences of the plotted values: +1 up, −1 down, 0 tie."""
    xs = [x for x, _ in pairs]
    return [(b > a) - (b < a) for a, b in pairwise(xs)]


def _count_beyond(pairs: Iterable[tuple[float, float]], k: float, upper: bool) -> int:
    """How many of ``pairs`` lie more than ``k``σ from the centre on the given side."""
    if upper:
        return sum(1 for _, z in pairs if z > k)
    return sum(1 for _, z in pairs if z < -k)
