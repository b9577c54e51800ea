"""One characteristic: subgroups, rolling window, capability indices and control chart (SPEC §4, §4.1).

Why this shape: the stream worker calls :meth:`Characteristic.add` once per measured value, so the hot path is
plain Python with ``__slots__``, no validation beyond what the worker already did, and O(1) amortized work per
value (Welford add into the open subgroup; on a close, O(1) amortized merges in the two-stack window).
Everything the status needs is derived on demand from the window aggregate, which is cached between changes.

Values are stored as deviations from ``shift`` (the spec midpoint, or its one limit), fixed when the
characteristic is created, so that indices of data with a large offset and a tiny spread are exact (see
:mod:`cpkmon.capability.indices`).

The control chart's limits are frozen from a baseline: the window after the first ``min_subgroups`` subgroups
closed since the spec was set (center = window mean, σ = σ_within of the window, nominal n = the spec's
subgroup size) — or at once from the spec's known ``center``/``sigma``.
A baseline is then judged against its own limits (Phase I, :meth:`Characteristic._try_freeze`): its
violations come back from the close that froze the limits and count for ``stable``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, cast

from cpkmon.capability import batch as _batch
from cpkmon.capability.control import ChartPoint, ControlChart, Violation, chart_kind_for
from cpkmon.capability.estimators import sigma_overall, sigma_within
from cpkmon.capability.histogram import capability_histogram
from cpkmon.capability.indices import Indices
from cpkmon.capability.moments import Moments
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec
from cpkmon.capability.subgroups import ClosedSubgroup, SubgroupAssembler, _Open
from cpkmon.capability.timeutil import to_rfc3339
from cpkmon.capability.window import Agg, Entry, RollingWindow

STATE_OK = "ok"
STATE_INSUFFICIENT = "insufficient_data"
_FORMAT = 1


# not frozen: one is built per subgroup close, and a frozen dataclass's __init__ (object.__setattr__ each)
# costs twice as much (issue 11's profile); treated as a value — nothing assigns to it after construction
@dataclass(slots=True)
class ClosedSubgroupResult:
    """What closing one subgroup did: its sequence number and label, the plotted point and the violations
    raised."""

    seq: int
    subgroup: str
    n: int
    event_time: float
    point: ChartPoint
    violations: list[Violation]
    # the control limits (``ControlChart.limits()``) this close froze at the end of Phase I, else None: the
    # worker audits the freeze at the close that made it (``cpkmon.alerts.line``)
    limits: dict[str, object] | None = None


class Characteristic:
    """Capability and control state of one characteristic of one line. See the module docstring."""

    __slots__ = (
        "_assembler",
        "_cap",
        "_chart",
        "_epoch",
        "_hist",
        "_last_ts",
        "_seq",
        "_shift",
        "_since_spec",
        "_size",
        "_values_total",
        "_win",
        "line",
        "name",
        "options",
        "spec",
        "station",
        "version",
    )

    def __init__(
        self, line: str, name: str, spec: Spec, options: Options, station: str | None = None
    ) -> None:
        self.line = line
        self.name = name
        self.spec = spec
        self.options = options
        self.station = station
        self._shift = spec.shift
        self._size = spec.size(options.subgroup_size)
        self._assembler = SubgroupAssembler(self._size)
        self._win = RollingWindow(options.window_subgroups, options.window_max_age)
        self._chart = ControlChart(options)
        self._values_total = 0
        self._last_ts: float | None = None
        self._seq = 0
        self._since_spec = 0
        self._cap: _Capability | None = None
        self._hist: _Histogram | None = None
        # bumped by every change of the window, the chart or the spec — of everything ``cpk``, ``stable`` and
        # ``aggregate()`` depend on (not by a value that only enters the open subgroup): lets the line roll-up
        # reuse what it read from this characteristic while the version is unchanged
        self.version = 0
        self._epoch = 0  # limits frozen so far (baselines, re-baselines, known limits): see ``limits_epoch``
        if spec.known:
            self._freeze_known()

    def continue_from(self, seq: int, values_total: int, epoch: int = 0) -> None:
        """Continue the numbering of a characteristic this one replaces (a changed or re-added spec).

        Subgroup seqs are part of out-of-control alert ids and ``values_total`` counts since the start
        (SPEC §8): neither may restart when the spec changes. Called before the first value.
        """
        self._seq = max(self._seq, int(seq))
        self._values_total += int(values_total)
        self._epoch += int(epoch)

    # ------------------------------------------------------------------ updates
    def add(
        self,
        value: float,
        ts: float,
        event_id: str | None,
        subgroup: str | int | None = None,
        station: str | None = None,
    ) -> list[ClosedSubgroupResult]:
        """Accept one value (the caller has validated it and checked :meth:`holds`); returns the closes it
        caused."""
        if station is not None:
            self.station = station
        self._values_total += 1
        last = self._last_ts
        if last is None or ts > last:
            self._last_ts = last = ts
        closed = self._assembler.add(value - self._shift, ts, event_id, subgroup)
        max_age = self._win.max_age
        if max_age is not None and self._win.evict_before(last - max_age):
            self.version += 1
        if not closed:
            return []
        return [self._close(c) for c in closed]

    def add_batch(
        self,
        values: Sequence[float],
        ts: Sequence[float],
        event_ids: Sequence[str | None],
        subgroups: Sequence[str | int | None] | None = None,
        stations: Sequence[str | None] | None = None,
    ) -> list[ClosedSubgroupResult]:
        """Accept a batch of values at once; returns exactly what ``len(values)`` calls of :meth:`add` would
        have returned, concatenated, and leaves exactly the state they would have left (see
        :meth:`apply_batch`)."""
        out: list[ClosedSubgroupResult] = []

        def collect(_pos: int, closed: list[ClosedSubgroupResult]) -> None:
            out.extend(closed)

        self.apply_batch(values, ts, event_ids, subgroups, stations, on_change=collect)
        return out

    def apply_batch(
        self,
        values: Sequence[float],
        ts: Sequence[float],
        event_ids: Sequence[str | None],
        subgroups: Sequence[str | int | None] | None = None,
        stations: Sequence[str | None] | None = None,
        *,
        skip_held: bool = False,
        on_change: BatchObserver | None = None,
        numpy_min: int | None = None,
    ) -> list[bool]:
        """Apply a batch of this characteristic's values; returns which were accepted.

        Equivalent to, value by value, ``if not (skip_held and holds(id)): add(…)`` — the same closes with
        bit-identical floats, the same state and checkpoint — but the subgroups are cut in one pass
        (:func:`cpkmon.capability.batch.plan`) and the moments of the complete ones computed together
        (:func:`cpkmon.capability.batch.moments`, numpy from ``numpy_min`` subgroups of one length); only
        the closes (window merge, chart point, run rules) stay one at a time, since each depends on the
        last. ``on_change(pos, closes)`` is called right after the value at ``pos`` closed subgroups or
        changed the window, with the state as of that value — how :class:`cpkmon.alerts.line.LineState`
        evaluates the line at every close in input order.

        Per value instead: with ``window_max_age`` (an eviction by age can happen at any value and the
        two-stack aggregates depend on when), and for a value whose id may already be held (``skip_held``;
        its id is in the window or the open subgroup, or earlier in the batch) — rare, producer resends.
        """
        n = len(values)
        if not (len(ts) == len(event_ids) == n):
            raise ValueError("values, ts and event_ids must have the same length")
        accepted = [True] * n
        if n == 0:
            return accepted
        keys = None
        if subgroups is not None and any(k is not None for k in subgroups):
            keys = [None if k is None else str(k) for k in subgroups]
        if self._win.max_age is not None:
            for i in range(n):
                self._apply_one(i, values, ts, event_ids, keys, stations, skip_held, on_change, accepted)
            return accepted
        candidates: list[int] = []
        if skip_held:
            ids = [e for e in event_ids if e is not None]
            open_ids = self._assembler.open_event_ids
            if len(set(ids)) != len(ids) or self._win.holds_any(ids) or not set(open_ids).isdisjoint(ids):
                seen = set(open_ids)
                for i, e in enumerate(event_ids):
                    if e is not None:
                        if e in seen or self._win.holds(e):
                            candidates.append(i)
                        seen.add(e)
        lo = 0
        for c in candidates:
            if c > lo:
                self._apply_run(lo, c, values, ts, event_ids, keys, stations, on_change, numpy_min)
            self._apply_one(c, values, ts, event_ids, keys, stations, skip_held, on_change, accepted)
            lo = c + 1
        if lo < n:
            self._apply_run(lo, n, values, ts, event_ids, keys, stations, on_change, numpy_min)
        return accepted

    def _apply_one(
        self,
        i: int,
        values: Sequence[float],
        ts: Sequence[float],
        event_ids: Sequence[str | None],
        keys: list[str | None] | None,
        stations: Sequence[str | None] | None,
        skip_held: bool,
        on_change: BatchObserver | None,
        accepted: list[bool],
    ) -> None:
        """One value of a batch by the event path (see :meth:`apply_batch` for when)."""
        e = event_ids[i]
        if skip_held and e is not None and self.holds(e):
            accepted[i] = False
            return
        version = self.version
        closed = self.add(
            values[i], ts[i], e, None if keys is None else keys[i], None if stations is None else stations[i]
        )
        if on_change is not None and (closed or self.version != version):
            on_change(i, closed)

    def _apply_run(
        self,
        lo: int,
        hi: int,
        values: Sequence[float],
        ts_all: Sequence[float],
        ids_all: Sequence[str | None],
        keys_all: list[str | None] | None,
        stations_all: Sequence[str | None] | None,
        on_change: BatchObserver | None,
        numpy_min: int | None,
    ) -> None:
        """Values ``[lo, hi)`` of a batch, none of them held, no age bound: the batch path proper."""
        shift = self._shift
        xs = [v - shift for v in values[lo:hi]]
        ts = ts_all[lo:hi] if lo or hi != len(ts_all) else ts_all
        ids = ids_all[lo:hi]
        keys = None if keys_all is None else keys_all[lo:hi]
        stations = None if stations_all is None else stations_all[lo:hi]
        n = hi - lo
        asm = self._assembler
        op = asm._open
        if keys is None and op is None and asm.size == 1:
            self._apply_individuals(lo, xs, ts, ids, stations, on_change)
            return
        if op is None:
            pl = _batch.plan(asm.size, None, 0, False, keys, n)
        else:
            pl = _batch.plan(asm.size, op.key, op.moments.n, True, keys, n)
        cuts = pl.cuts
        summ = _batch.moments(xs, ts, cuts, numpy_min)
        no_none = None not in ids
        base_total = self._values_total
        last = self._last_ts
        station = self.station
        # the newest event time up to each value (``max`` keeps the earlier of equals, as ``add`` does)
        newest = list(accumulate(ts, max))
        if stations is not None and len(set(stations)) == 1:  # one station throughout (the usual case)
            if stations[0] is not None:
                station = stations[0]
            stations = None
        done = 0  # values whose time and station are folded into ``last``/``station``
        close = self._close
        closed: list[ClosedSubgroupResult] = []
        at = -1  # the position of the closes in ``closed`` (one value can close two subgroups)
        for k, (start, stop, key, pos, cont) in enumerate(cuts):
            if pos != at:
                if closed and on_change is not None:
                    on_change(lo + at, closed)
                closed = []
                at = pos
                m = newest[pos]
                if last is None or m > last:
                    last = m
                if stations is not None:
                    for s in reversed(stations[done:pos + 1]):
                        if s is not None:
                            station = s
                            break
                done = pos + 1
                self._last_ts = last
                self.station = station
                self._values_total = base_total + done
            if cont:
                assert op is not None
                mom = op.moments.copy()
                et = op.event_time
                for x in xs[start:stop]:
                    mom.add(x)
                for t in ts[start:stop]:
                    if t > et:
                        et = t
                sub_ids = tuple(op.event_ids) + tuple(e for e in ids[start:stop] if e is not None)
                vals = None if op.values is None else (*op.values, *xs[start:stop])
                sub = ClosedSubgroup(key, mom, op.first, xs[stop - 1] if stop > start else op.last,
                                     sub_ids, et, vals)
            else:
                mean, m2, mn, mx, et = summ[k]
                sub = ClosedSubgroup(
                    key,
                    Moments(stop - start, mean, m2, mn, mx),
                    xs[start],
                    xs[stop - 1],
                    cast(tuple[str, ...], tuple(ids[start:stop]))
                    if no_none
                    else tuple(e for e in ids[start:stop] if e is not None),
                    et,
                    tuple(xs[start:stop]),
                )
            closed.append(close(sub))
        if closed and on_change is not None:
            on_change(lo + at, closed)
        if done < n:
            m = newest[n - 1]
            if last is None or m > last:
                self._last_ts = m
            self.station = station
            if stations is not None:
                for s in reversed(stations[done:n]):
                    if s is not None:
                        self.station = s
                        break
        self._values_total = base_total + n
        first = pl.open_start
        if first is None:
            asm._open = None
            return
        if pl.open_cont:
            assert op is not None
            cur = op
        else:
            cur = _Open(pl.open_key, xs[first], ts[first], ids[first])
            first += 1
        for j in range(first, n):
            x = xs[j]
            cur.moments.add(x)
            cur.last = x
            if cur.values is not None:
                cur.values.append(x)
            e = ids[j]
            if e is not None:
                cur.event_ids.append(e)
            if ts[j] > cur.event_time:
                cur.event_time = ts[j]
        asm._open = cur

    def _apply_individuals(
        self,
        lo: int,
        xs: list[float],
        ts: Sequence[float],
        ids: Sequence[str | None],
        stations: Sequence[str | None] | None,
        on_change: BatchObserver | None,
    ) -> None:
        """Individuals without subgroup ids and nothing open: every value is a subgroup of its own, closed at
        once (the assembler's own shortcut), so there is nothing to plan or to sum."""
        close = self._close
        last = self._last_ts
        total = self._values_total
        station = self.station
        if stations is not None and len(set(stations)) == 1:
            if stations[0] is not None:
                station = stations[0]
            stations = None
        for j, x in enumerate(xs):
            t = ts[j]
            if last is None or t > last:
                last = t
            if stations is not None:
                s = stations[j]
                if s is not None:
                    station = s
            total += 1
            self._last_ts = last
            self.station = station
            self._values_total = total
            e = ids[j]
            sub = ClosedSubgroup(None, Moments(1, x, 0.0, x, x), x, x, () if e is None else (e,), t, (x,))
            res = close(sub)
            if on_change is not None:
                on_change(lo + j, [res])

    def flush(self) -> list[ClosedSubgroupResult]:
        """Close the open subgroup (end of an offline file)."""
        c = self._assembler.flush()
        return [] if c is None else [self._close(c)]

    def _close(self, c: ClosedSubgroup) -> ClosedSubgroupResult:
        self.version += 1
        self._seq = seq = self._seq + 1
        label = c.key if c.key is not None else str(seq)
        win = self._win
        win.push(Entry(seq, label, c))
        if win.max_age is not None and self._last_ts is not None:
            win.evict_before(self._last_ts - win.max_age)
        point = self._chart_point(seq, label, c.event_time, c.moments)
        violations = self._chart.add(point)
        self._since_spec += 1
        limits = None
        if not self._chart.frozen and self._since_spec >= self.options.min_subgroups:
            baseline = self._try_freeze()
            if baseline is not None:
                # Phase I: the baseline subgroups' own violations (each with its own seq), this one's too
                violations = baseline
                limits = self._chart.limits()
        return ClosedSubgroupResult(seq, label, c.moments.n, c.event_time, point, violations, limits)

    def _chart_point(self, seq: int, label: str, event_time: float, m: Moments) -> ChartPoint:
        """The chart point of one subgroup: its mean and, by the chart kind, its range or SD."""
        n = m.n
        r: float | None = None
        if n >= 2:
            kind = self._chart.chart or chart_kind_for(self._size)
            if kind == "xbar_s":
                r = math.sqrt(m.m2 / (n - 1))
            elif kind == "xbar_r":
                r = m.hi - m.lo
        return ChartPoint(seq, label, event_time, n, self._shift + m.mean, r)

    def _baseline_limits(self, agg: Agg | None) -> tuple[float, float] | None:
        """(centre, σ) of a baseline summary; None without within-subgroup variation."""
        if agg is None:
            return None
        sw, _ = sigma_within(agg, self.options.sigma_method, nominal=self._size)
        if sw is None or not sw > 0.0:
            return None
        return self._shift + agg.mean, sw

    def _try_freeze(self) -> list[Violation] | None:
        """Freeze the limits from the window and run Phase I over it; None if it has no σ_within yet.

        Phase I (SPEC §4.1): the window's subgroups are the baseline the limits come from, so they are judged
        against those limits with every enabled rule (:meth:`ControlChart.evaluate_baseline`) — a baseline
        subgroup beyond its own limits is flagged and keeps ``stable`` false while it is in the window. With
        ``options.baseline_exclude_flagged`` the limits are computed once more without the flagged subgroups
        (Minitab's revised limits; one revision, not iterated; on an I–MR chart the moving range bridges an
        excluded point) and the whole baseline is judged against those. Returns the baseline's violations in
        seq order. O(window), once per freeze.
        """
        limits = self._baseline_limits(self._win.aggregate())
        if limits is None:
            return None  # O(1): a window without spread is retried at every close until it has some
        entries = list(self._win)
        self._chart.freeze(limits[0], limits[1], self._size, "baseline")
        self.version += 1
        self._epoch += 1
        points = [self._chart_point(e.seq, e.label, e.event_time, e.moments) for e in entries]
        violations = self._chart.evaluate_baseline(points)
        if violations and self.options.baseline_exclude_flagged:
            flagged = {v.seq for v in violations}
            kept: Agg | None = None
            for e in entries:
                if e.seq not in flagged:
                    kept = e.agg if kept is None else kept.merge(e.agg)
            revised = self._baseline_limits(kept)
            if revised is not None:
                self._chart.freeze(revised[0], revised[1], self._size, "baseline")
                violations = self._chart.evaluate_baseline(points)
        return violations

    def _freeze_known(self) -> None:
        assert self.spec.center is not None and self.spec.sigma is not None
        self._chart.freeze(self.spec.center, self.spec.sigma, self._size, "known")
        self.version += 1
        self._epoch += 1

    def rebaseline(self) -> list[Violation]:
        """Re-freeze the chart limits from the current window and re-judge that window against them (Phase
        I); returns the baseline's violations. ``ValueError`` if the window has no σ_within yet."""
        violations = self._try_freeze()
        if violations is None:
            raise ValueError("cannot re-baseline: the window has no within-subgroup variation yet")
        return violations

    def set_spec(self, spec: Spec) -> None:
        """Replace the spec (a ``cpkmon.specs`` update). The window and ``shift`` stay; the chart starts over.

        The shift is kept because re-expressing stored deviations would round them; any point near the
        data serves.
        A changed subgroup size applies from the open subgroup on.
        """
        if spec == self.spec:
            return
        self.version += 1
        self.spec = spec
        self._size = spec.size(self.options.subgroup_size)
        self._assembler.size = self._size
        self._chart = ControlChart(self.options)
        self._since_spec = 0
        if spec.known:
            self._freeze_known()

    # ------------------------------------------------------------------ queries
    def holds(self, event_id: str) -> bool:
        """Whether ``event_id`` is in the open subgroup or the window (how replays are recognised)."""
        return self._win.holds(event_id) or self._assembler.holds(event_id)

    @property
    def values_total(self) -> int:
        return self._values_total

    @property
    def limits_epoch(self) -> int:
        """How many times limits were frozen on this characteristic (continued across spec changes): part of
        out-of-control alert ids, so a re-baselined Phase I that flags a subgroup again is a new alert."""
        return self._epoch

    @property
    def last_event_time(self) -> float | None:
        return self._last_ts

    @property
    def shift(self) -> float:
        return self._shift

    @property
    def subgroup_size(self) -> int:
        return self._size

    @property
    def chart(self) -> ControlChart:
        return self._chart

    @property
    def window(self) -> RollingWindow:
        return self._win

    @property
    def seq(self) -> int:
        """Number of subgroups closed so far (the seq of the newest)."""
        return self._seq

    def aggregate(self) -> Agg | None:
        return self._win.aggregate()

    def _capability(self) -> tuple[Agg | None, float | None, str | None, float | None, str, Indices]:
        """Estimates and indices of the current window, cached until the window or the spec changes.

        The window hands out a new :class:`Agg` object on every change (and its cache holds the one it
        returned), so the aggregate's identity, together with the spec's, is an exact cache key: the line
        roll-up reads every characteristic's Cpk on each evaluation, and only the one that closed a subgroup
        needs recomputing.
        """
        agg = self._win.aggregate()
        cap = self._cap
        if cap is not None and cap[0] is agg and cap[1] is self.spec:
            return cap[2]
        self._cap = (agg, self.spec, out := self._compute_capability(agg))
        return out

    def _compute_capability(self, agg: Agg | None) -> _CapabilityValue:
        if agg is None:
            return None, None, None, None, STATE_INSUFFICIENT, _NO_INDICES
        sw, est = sigma_within(agg, self.options.sigma_method, nominal=self._size)
        so = sigma_overall(agg)
        if len(self._win) < self.options.min_subgroups or sw is None or not sw > 0.0:
            return agg, sw, est, so, STATE_INSUFFICIENT, _NO_INDICES
        return agg, sw, est, so, STATE_OK, Indices.compute(self.spec, self._shift, agg.n, agg.mean, sw, so)

    def histogram(self) -> dict[str, object] | None:
        """The capability histogram of the window's individual values (:mod:`cpkmon.capability.histogram`);
        None while the window is empty. Cached like :meth:`_capability` (same exact key), so a status of an
        unchanged window costs nothing extra; recomputing is O(window values)."""
        agg = self._win.aggregate()
        h = self._hist
        if h is not None and h[0] is agg and h[1] is self.spec:
            return h[2]
        spec = self.spec
        out = None
        if agg is not None:
            out = capability_histogram(self._win.values(), self._shift, spec.lsl, spec.usl)
        self._hist = (agg, spec, out)
        return out

    @property
    def state(self) -> str:
        return self._capability()[4]

    @property
    def indices(self) -> Indices:
        """All None while ``insufficient_data``."""
        return self._capability()[5]

    @property
    def cpk(self) -> float | None:
        """None while ``insufficient_data``."""
        return self._capability()[5].cpk

    @property
    def stable(self) -> bool | None:
        """No enabled run rule fired inside the window; None before the chart has limits."""
        return self._chart.stable(self._since_seq())

    def _since_seq(self) -> int:
        oldest = self._win.oldest
        return oldest.seq if oldest is not None else self._seq + 1

    def status(self) -> dict[str, object]:
        """The SPEC §6 characteristic object (JSON-ready; see docs/design.md for the field list)."""
        agg, sw, est, so, state, ind = self._capability()
        since = self._since_seq()
        spec = self.spec
        return {
            "characteristic": self.name,
            "station": self.station,
            "values_total": self._values_total,
            "last_event_time": to_rfc3339(self._last_ts),
            "n": 0 if agg is None else agg.n,
            "subgroups": len(self._win),
            "mean": None if agg is None else self._shift + agg.mean,
            "sigma_within": sw,
            "sigma_overall": so,
            "cp": ind.cp,
            "cpu": ind.cpu,
            "cpl": ind.cpl,
            "cpk": ind.cpk,
            "cpk_ci": None if ind.cpk_ci is None else [ind.cpk_ci[0], ind.cpk_ci[1]],
            "pp": ind.pp,
            "ppu": ind.ppu,
            "ppl": ind.ppl,
            "ppk": ind.ppk,
            "cpm": ind.cpm,
            "lsl": spec.lsl,
            "usl": spec.usl,
            "target": spec.target,
            "subgroup_size": self._size,
            "sigma_method": self.options.sigma_method,
            "sigma_estimator": est,
            "state": state,
            "stable": self._chart.stable(since),
            "control": self._chart.limits(),
            "points": self._chart.points(),
            "violations": self._chart.violations(since),
            "open_subgroup_values": self._assembler.open_count,
            "histogram": self.histogram(),
        }

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, object]:
        """JSON-safe state; :meth:`from_dict` restores it exactly (identical ``status()``)."""
        return {
            "format": _FORMAT,
            "line": self.line,
            "name": self.name,
            "station": self.station,
            "spec": self.spec.to_dict(),
            "shift": self._shift,
            "values_total": self._values_total,
            "last_ts": self._last_ts,
            "seq": self._seq,
            "since_spec": self._since_spec,
            "epoch": self._epoch,
            "assembler": self._assembler.to_dict(),
            "window": self._win.to_dict(),
            "chart": self._chart.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], options: Options) -> Characteristic:
        spec = Spec.from_dict(d["spec"], restore=True)
        # the constructor, not ``cls.__new__(cls)``: mypyc's native classes cannot be allocated that way;
        # every field it sets is overwritten below (``_freeze_known``'s chart, epoch and version included)
        c = cls(str(d["line"]), str(d["name"]), spec, options, d.get("station"))
        c._shift = float(d["shift"])
        c._size = spec.size(options.subgroup_size)
        c._assembler = SubgroupAssembler.from_dict(d["assembler"])
        c._assembler.size = c._size
        c._win = RollingWindow.from_dict(d["window"], options.window_subgroups, options.window_max_age)
        c._chart = ControlChart.from_dict(d["chart"], options)
        c._values_total = int(d["values_total"])
        last = d.get("last_ts")
        c._last_ts = None if last is None else float(last)
        c._seq = int(d["seq"])
        c._since_spec = int(d["since_spec"])
        c._epoch = int(d.get("epoch", 0))
        c._cap = None
        c._hist = None
        c.version = 0
        return c


_NO_INDICES = Indices()
#: ``on_change(pos, closes)`` of :meth:`Characteristic.apply_batch`
BatchObserver = Callable[[int, list[ClosedSubgroupResult]], None]
_CapabilityValue = tuple[Agg | None, float | None, str | None, float | None, str, Indices]
_Capability = tuple[Agg | None, Spec, _CapabilityValue]  # (window aggregate, spec) the value was computed for
_Histogram = tuple[Agg | None, Spec, dict[str, object] | None]  # likewise for the capability histogram
