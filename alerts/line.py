"""One production line's state: its characteristics, stations and quality costs, rolled up and graded.

This is the unit the stream layer owns, checkpoints and restores. It is pure: the caller passes event time and
``detected_at`` (the Kafka timestamp of the message being applied) so that replaying the same messages after a
crash rebuilds the same state and the same alert documents, byte for byte.

Audit: the line's alarm transitions and limit freezes are records of its own audit chain (``worker:<line>``,
:class:`cpkmon.alerts.audit.ChainWriter`; head checkpointed with the line, records taken like the alarm
events), built from event data only, so a replay rebuilds them byte for byte.

Duplicates: an event whose id is held by the window it would enter (the characteristic's open subgroup and
window, the station's yield window, the cost window) is a duplicate and counts once (SPEC §2). Kafka
redeliveries are caught earlier, by source offsets (``applied``), so ids only need to cover what producers
resend while the original is still in its window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from cpkmon.alerts.audit import ChainWriter, worker_chain
from cpkmon.alerts.engine import GradeTracker, OutOfControlTracker
from cpkmon.alerts.ladder import (
    GradeResult,
    LineMetrics,
    grade,
    grade_ref,
    published_limiting,
    resolvable_level,
)
from cpkmon.alerts.model import AUDIT_LIMITS_FREEZE, AUDIT_LIMITS_REBASELINE_APPLIED, FALLING, RISING
from cpkmon.alerts.process_alarms import ProcessAlarms
from cpkmon.capability.characteristic import Characteristic, ClosedSubgroupResult
from cpkmon.capability.costs import CostWindow
from cpkmon.capability.options import Options
from cpkmon.capability.sigma import sigma_level
from cpkmon.capability.spec import Spec
from cpkmon.capability.timeutil import to_rfc3339
from cpkmon.capability.yields import StationYield

STATE_VERSION = 1
Alert = dict[str, Any]


class MeasurementInput(NamedTuple):
    """One measurement for :meth:`LineState.measurements`: the arguments of :meth:`LineState.measurement`,
    in the same order."""

    characteristic: str
    spec: Spec
    station: str | None
    value: float
    ts: float
    event_id: str
    subgroup: str | None
    detected_at: float


#: what the roll-up reads from one characteristic: (it, its version, cpk, stable, window n)
_Read = tuple[Characteristic, int, float | None, bool | None, int]


def _read(char: Characteristic) -> _Read:
    """The roll-up's reading of ``char`` as it is now."""
    agg = char.aggregate()
    return char, char.version, char.cpk, char.stable, 0 if agg is None else int(agg.n)


def _first(change: tuple[Any, ...]) -> int:
    return int(change[0])


def _cpk_key(names: list[str], rollup: dict[str, _Read]) -> tuple[Any, ...]:
    """What :meth:`LineState.metrics` takes from the characteristics into the grade: the minimum Cpk, its
    subject (the first in line order among equals) and the unstable ones, sorted."""
    cpk: float | None = None
    subject: str | None = None
    unstable: list[str] = []
    for name in names:
        seen = rollup[name]
        c = seen[2]
        if c is not None and (cpk is None or c < cpk):
            cpk, subject = c, name
        if seen[3] is False:
            unstable.append(name)
    return cpk, subject, tuple(sorted(unstable))


def _clear_after(options: Options) -> int:
    """Closed quiet subgroups after which a control alarm clears (``alarm_clear_subgroups`` or the window)."""
    n = options.alarm_clear_subgroups
    return options.window_subgroups if n is None else n


def _bissell_se(cpk: float | None, n: int) -> float | None:
    """Bissell's standard error of Cpk (the SPEC §4 confidence interval without z)."""
    if cpk is None or n < 2:
        return None
    return math.sqrt(1.0 / (9.0 * n) + cpk * cpk / (2.0 * (n - 1)))


class LineState:
    """Everything cpkmon knows about one line; see the module docstring for the replay contract."""

    __slots__ = (
        "_assessed",
        "_graded",
        "_resolved",
        "_retired",
        "_rollup",
        "alarms",
        "applied",
        "audit",
        "characteristics",
        "costs",
        "grade_tracker",
        "last_result",
        "line",
        "ooc",
        "options",
        "stations",
        "updated_at",
    )

    def __init__(self, line: str, options: Options) -> None:
        self.line = line
        self.options = options
        self.characteristics: dict[str, Characteristic] = {}
        self.stations: dict[str, StationYield] = {}
        self.costs = CostWindow(options.cost_window_days)
        self.grade_tracker = GradeTracker(options)
        self.ooc = OutOfControlTracker()
        self.applied: dict[str, int] = {}
        self.updated_at: float | None = None
        self.last_result: GradeResult | None = None
        self._assessed: frozenset[str] = frozenset()  # every criterion ever assessed on this line (ratchet)
        self._resolved = 0  # the highest DPMO level its sample ever resolved (ratchet; 0: never assessed)
        # (seq, values_total) of characteristics whose spec was deleted: a re-added spec continues them
        self._retired: dict[str, tuple[int, int, int]] = {}
        self._graded: tuple[tuple[Any, ...], GradeResult] | None = None  # see _grade
        # name → (characteristic, its version, cpk, stable) as last read by metrics()
        self._rollup: dict[str, _Read] = {}
        # the line's audit chain (alarm transitions, limit freezes): head in the state, records in an outbox
        self.audit = ChainWriter(worker_chain(line))
        # the process condition of the line's alarm sources (activate/clear events, issue 12)
        self.alarms = ProcessAlarms(_clear_after(options), self.audit)

    # ---------------------------------------------------------------------------------------------- inputs
    def characteristic_for(self, name: str, spec: Spec, station: str | None) -> Characteristic:
        """The characteristic under ``spec``; a changed spec restarts its window and baseline.

        What must *not* restart with it: the subgroup numbering (``seq``, part of every out-of-control alert
        id, so an alert after the change can never take the id of one before it), the count of values since
        the start (``values_total``, SPEC §8) and the limits epoch. They continue from the characteristic the
        new one replaces, or from the one whose spec was deleted (:meth:`retire`). The out-of-control tracker
        forgets the old chart's firings: they were judged against limits that no longer exist.
        """
        char = self.characteristics.get(name)
        if char is None or (char.spec is not spec and char.spec != spec):
            if char is not None:
                seq, total, epoch = char.seq, char.values_total, char.limits_epoch
            else:
                seq, total, epoch = self._retired.pop(name, (0, 0, 0))
            char = Characteristic(self.line, name, spec, self.options, station=station)
            char.continue_from(seq, total, epoch)
            self.characteristics[name] = char
            self.ooc.forget(name)
        return char

    def retire(self, name: str) -> bool:
        """The spec of ``name`` was deleted: drop the characteristic from the line (its roll-up, status and
        alert tracking), remembering its numbering and count for a spec that re-adds it."""
        char = self.characteristics.pop(name, None)
        if char is None:
            return False
        self._retired[name] = (char.seq, char.values_total, char.limits_epoch)
        self._rollup.pop(name, None)
        self.ooc.forget(name)
        # its control alarm clears, dated by its last event (deterministic: a replay clears it identically)
        at = char.last_event_time
        self.alarms.retire(self.line, name, at if at is not None else (self.updated_at or 0.0))
        return True

    def measurement(
        self,
        characteristic: str,
        spec: Spec,
        station: str | None,
        value: float,
        ts: float,
        event_id: str,
        subgroup: str | None,
        detected_at: float,
    ) -> tuple[bool, list[Alert]]:
        """Apply one value. Returns (accepted, alerts); accepted is False for a duplicate."""
        char = self.characteristic_for(characteristic, spec, station)
        if char.holds(event_id):
            return False, []
        closed = char.add(value, ts, event_id, subgroup, station)
        self.updated_at = detected_at
        alerts: list[Alert] = []
        if closed:
            for res in closed:
                if res.limits is not None:
                    self._audit_freeze(characteristic, res)
                raised: list[Alert] = []
                if res.violations:
                    raised = self.ooc.observe(
                        self.line,
                        characteristic,
                        char.station,
                        res.violations,
                        res.seq,
                        self.options.window_subgroups,
                        detected_at,
                        epoch=char.limits_epoch,
                    )
                    alerts += raised
                self.alarms.subgroup_closed(self.line, characteristic, res.seq, res.event_time,
                                            res.violations, raised)
            alerts += self.evaluate(closed[-1].event_time, detected_at)
        return True, alerts

    def measurements(
        self, batch: Sequence[MeasurementInput], *, numpy_min: int | None = None
    ) -> tuple[list[bool], list[Alert]]:
        """Apply a batch of measurements of this line; returns (accepted per measurement, alerts).

        Identical to calling :meth:`measurement` for each in order — the same state, checkpoint, status and
        alerts, byte for byte — but applied characteristic by characteristic
        (:meth:`Characteristic.apply_batch`). Grade confirmation counts evaluations, so the line is still
        evaluated at every subgroup close in input order: each characteristic records what the roll-up reads
        from it (Cpk, stable, n, station, limits epoch) at each of its closes, and those records are then
        merged by input position, each evaluation seeing every characteristic as of that position.

        The batch is cut where a characteristic first appears or its spec changes (both must happen at their
        position, between the evaluations before and after); ``numpy_min`` is passed to
        :meth:`Characteristic.apply_batch` (tests force both paths).
        """
        n = len(batch)
        accepted = [False] * n
        alerts: list[Alert] = []
        start = 0
        while start < n:
            stop = self._segment_end(batch, start)
            self._apply_segment(batch, start, stop, accepted, alerts, numpy_min)
            start = stop
        return accepted, alerts

    def _segment_end(self, batch: Sequence[MeasurementInput], start: int) -> int:
        """The end of the run from ``start`` in which no characteristic is created or changes its spec
        after the first measurement (which may do either)."""
        specs: dict[str, Spec] = {}
        chars = self.characteristics
        for i in range(start, len(batch)):
            m = batch[i]
            name, spec = m[0], m[1]
            cur = specs.get(name)
            if cur is None:
                char = chars.get(name)
                if i > start and (char is None or (char.spec is not spec and char.spec != spec)):
                    return i
                specs[name] = spec
            elif cur is not spec and cur != spec:
                return i
        return len(batch)

    def _apply_segment(
        self,
        batch: Sequence[MeasurementInput],
        start: int,
        stop: int,
        accepted: list[bool],
        alerts: list[Alert],
        numpy_min: int | None,
    ) -> None:
        groups: dict[str, list[int]] = {}
        for i in range(start, stop):
            groups.setdefault(batch[i][0], []).append(i)
        chars = {}
        for name, pos in groups.items():
            m = batch[pos[0]]
            chars[name] = self.characteristic_for(name, m[1], m[2])
        rollup = self._rollup
        for name, char in self.characteristics.items():  # every characteristic as of the segment's start
            seen = rollup.get(name)
            if seen is None or seen[0] is not char or seen[1] != char.version:
                rollup[name] = _read(char)
        # (position, characteristic, closes, roll-up reading, station, limits epoch) after each change
        changes: list[tuple[int, str, list[ClosedSubgroupResult], _Read, str | None, int]] = []
        for name, pos in groups.items():
            char = chars[name]
            cols = list(zip(*[batch[i] for i in pos], strict=True))  # the batch's columns, one C-level pass

            def on_change(
                j: int, closed: list[ClosedSubgroupResult], char: Characteristic = char,
                pos: list[int] = pos, name: str = name,
            ) -> None:
                changes.append((pos[j], name, closed, _read(char), char.station, char.limits_epoch))

            acc = char.apply_batch(
                cols[3],
                cols[4],
                cols[5],
                cols[6],
                cols[2],
                skip_held=True,
                on_change=on_change,
                numpy_min=numpy_min,
            )
            for i, a in zip(pos, acc, strict=True):
                accepted[i] = a
        changes.sort(key=_first)
        window = self.options.window_subgroups
        tracker = self.grade_tracker
        names = list(self.characteristics)
        quiet: tuple[Any, ...] | None = None  # the Cpk key of the last evaluation, if it was a no-op
        for p, name, closed, read, station, epoch in changes:
            rollup[name] = read
            if not closed:
                continue
            detected_at = batch[p][7]
            for res in closed:
                if res.limits is not None:
                    self._audit_freeze(name, res)
                raised: list[Alert] = []
                if res.violations:
                    raised = self.ooc.observe(self.line, name, station, res.violations, res.seq, window,
                                              detected_at, epoch=epoch)
                    alerts += raised
                self.alarms.subgroup_closed(self.line, name, res.seq, res.event_time, res.violations, raised)
            # Evaluated once per change it needs: stations and costs are fixed inside a segment, so an
            # evaluation whose Cpk key (minimum, its subject, the unstable set) equals that of the previous
            # one, and that previous one confirmed nothing, changed nothing and left no run pending, grades
            # the same and is a no-op again — except that it counts (confirmation and incidents count
            # evaluations).
            key = _cpk_key(names, rollup)
            if key == quiet:
                tracker.evaluations += 1
                continue
            out = self.evaluate(closed[-1].event_time, detected_at, refresh=False)
            alerts += out
            last = self.last_result
            quiet = (
                key
                if not out and last is not None and last.level is not None and tracker.current == last.level
                and tracker.pending_direction == 0 and tracker.null_run == 0
                else None
            )
        for i in range(stop - 1, start - 1, -1):
            if accepted[i]:
                self.updated_at = batch[i][7]
                break

    def inspection(
        self,
        station: str,
        passed: bool,
        first_pass: bool,
        defects: int | None,
        opportunities: int | None,
        ts: float,
        event_id: str,
        detected_at: float,
    ) -> tuple[bool, list[Alert]]:
        st = self.stations.get(station)
        if st is None:
            st = self.stations[station] = StationYield.from_options(self.options, station)
        if st.holds(event_id):
            return False, []
        # A re-inspection (first_pass false) is accepted but never enters the first-pass yield window.
        st.add(passed, first_pass, event_id, defects, opportunities)
        self.updated_at = detected_at
        return True, self.evaluate(ts, detected_at)

    def quality_cost(
        self, internal: float, external: float, output: float, ts: float, event_id: str, detected_at: float
    ) -> tuple[bool, list[Alert]]:
        if self.costs.holds(event_id):
            return False, []
        self.costs.add(ts, internal, external, output, event_id)
        self.updated_at = detected_at
        # A cost period changes the loss-rate criteria: the line is re-graded (without an evaluation count
        # of its own, SPEC §5 counts evaluations on subgroups and inspections only).
        self.last_result = grade(self.metrics(), self.options)
        return True, []

    def rebaseline(self, characteristic: str, detected_at: float | None = None) -> list[Alert] | None:
        """Re-freeze a characteristic's limits from its window and judge that window against them (Phase I).

        Returns the ``out_of_control`` alerts the new baseline raises (its own subgroups beyond the new
        limits), or None when the characteristic is unknown or its window has no within-subgroup variation
        yet. ``detected_at`` defaults to the characteristic's newest event time, so a replay is identical.
        """
        char = self.characteristics.get(characteristic)
        if char is None:
            return None
        before = char.chart.limits()
        try:
            violations = char.rebaseline()
        except ValueError:
            return None
        when = detected_at if detected_at is not None else (char.last_event_time or 0.0)
        self.audit.append(at=to_rfc3339(when) or "", what=AUDIT_LIMITS_REBASELINE_APPLIED,
                          subject=f"{self.line}/{characteristic}", before=before, after=char.chart.limits())
        self.ooc.forget(characteristic)  # firings judged against the old limits say nothing about the new
        closed = char.seq
        alerts = self.ooc.observe(self.line, characteristic, char.station, violations, closed,
                                  self.options.window_subgroups, when, epoch=char.limits_epoch)
        self.alarms.rebaselined(self.line, characteristic, violations, alerts)
        return alerts

    # ------------------------------------------------------------------------------------------- roll-up
    def metrics(self, *, refresh: bool = True) -> LineMetrics:
        """The line's roll-up. ``refresh=False`` takes every characteristic's (Cpk, stable, n) as last
        recorded in ``_rollup`` — how :meth:`measurements` evaluates the line as of a position inside a batch
        whose characteristics have already been applied to its end."""
        cpk: float | None = None
        cpk_subject: str | None = None
        cpk_n = 0
        unstable: list[str] = []
        rollup = self._rollup
        for name, char in self.characteristics.items():
            # an evaluation follows a change of one characteristic: re-read only what changed since last time
            seen = rollup.get(name)
            if refresh and (seen is None or seen[0] is not char or seen[1] != char.version):
                seen = rollup[name] = _read(char)
            assert seen is not None
            c = seen[2]
            if c is not None and (cpk is None or c < cpk):
                cpk, cpk_subject = c, name
                cpk_n = seen[4]
            if seen[3] is False:
                unstable.append(name)
        rty: float | None = None
        rty_subject: str | None = None
        rty_rel_var = 0.0  # delta method: Var(RTY)/RTY² ≈ Σ (1 − pᵢ)/(pᵢ nᵢ)
        lowest: float | None = None
        defects = 0
        opportunities = 0
        for name, st in self.stations.items():
            fpy = st.first_pass_yield
            if fpy is not None:
                rty = fpy if rty is None else rty * fpy
                if fpy > 0:
                    rty_rel_var += (1.0 - fpy) / (fpy * st.units)
                if lowest is None or fpy < lowest:
                    lowest, rty_subject = fpy, name
            # DPMO, like FPY, is assessed only from min_units units on: a handful of defect-free first units
            # would otherwise grade a starting line at 6σ and then "degrade" it (a false alarm at start-up).
            if st.units >= self.options.min_units:
                defects += st.defects
                opportunities += st.opportunities
        dpmo = defects / opportunities * 1e6 if opportunities else None
        return LineMetrics(
            cpk=cpk,
            cpk_subject=cpk_subject,
            rty=rty,
            rty_subject=rty_subject,
            dpmo=dpmo,
            sigma_level=sigma_level(dpmo) if dpmo is not None else None,
            internal_loss_rate=self.costs.internal_loss_rate,
            external_loss_rate=self.costs.external_loss_rate,
            unstable=tuple(sorted(unstable)),
            opportunities=opportunities or None,
            cpk_se=_bissell_se(cpk, cpk_n),
            rty_se=None if rty is None else rty * math.sqrt(rty_rel_var),
            dpmo_se=math.sqrt(defects) / opportunities * 1e6 if opportunities else None,
        )

    def _grade(self, metrics: LineMetrics) -> GradeResult:
        """``grade(metrics, options)``, reusing the previous result when the graded inputs are unchanged.

        Most evaluations follow a subgroup close of a characteristic that is not the line's minimum, so the
        roll-up — and therefore the grade — is the same as the last time. The key holds every field
        :func:`grade` reads (not the standard errors, which only the hysteresis band uses); results are
        immutable and shared.
        """
        key = (
            metrics.cpk, metrics.cpk_subject, metrics.rty, metrics.rty_subject, metrics.dpmo,
            metrics.sigma_level, metrics.internal_loss_rate, metrics.external_loss_rate, metrics.unstable,
            metrics.missing, metrics.opportunities, self._resolved,
        )
        graded = self._graded
        if graded is not None and graded[0] == key:
            return graded[1]
        result = grade(metrics, self.options, resolvable=self._resolved or None)
        self._graded = (key, result)
        return result

    def evaluate(self, event_time: float, detected_at: float, *, refresh: bool = True) -> list[Alert]:
        """One evaluation (SPEC §5): grade the line and let the tracker confirm a change.

        The grade is computed three times at most: as evaluated, and — only when it differs from the
        published grade — with thresholds moved by the dead band toward the bad side (is the fall sure?) or
        the good side (is the rise sure?). ``newly`` holds the criteria assessed for the first time in the
        line's life; ``newly_resolvable`` is set when the DPMO sample resolves a higher level for the first
        time. ``refresh``: see :meth:`metrics`.
        """
        metrics = self.metrics(refresh=refresh)
        newly_resolvable = False
        if metrics.opportunities:
            r = resolvable_level(metrics.opportunities)
            if r > self._resolved:
                newly_resolvable = self._resolved > 0
                self._resolved = r
        result = self._grade(metrics)
        assessed = frozenset(c.criterion for c in result.criteria if c.assessed)
        newly = assessed - self._assessed
        self._assessed = self._assessed | assessed
        self.last_result = result
        tracker = self.grade_tracker
        current = tracker.current
        fall = rise = None
        if result.level is not None and current is not None:
            resolvable = self._resolved or None
            if result.level < current or newly:
                fall = grade(metrics, self.options, band=tracker.band, bias=-1, resolvable=resolvable)
            if result.level > current:
                rise = grade(metrics, self.options, band=tracker.band, bias=+1, resolvable=resolvable)
        alerts = tracker.evaluate(
            self.line, result, metrics, event_time, detected_at, newly,
            fall=fall, rise=rise, newly_resolvable=newly_resolvable,
        )
        if alerts:
            self.alarms.grade_alerts(self.line, alerts, current, event_time)
        return alerts

    def _audit_freeze(self, characteristic: str, res: ClosedSubgroupResult) -> None:
        """Audit the limits frozen by the close ``res`` (the end of Phase I), dated by its event time. Both
        application paths call it in close order, before the close's alarm transition (judged against the
        new limits), so the chain is the same however the measurements were batched."""
        self.audit.append(at=to_rfc3339(res.event_time) or "", what=AUDIT_LIMITS_FREEZE,
                          subject=f"{self.line}/{characteristic}", before=None, after=res.limits)

    def take_audit_records(self) -> list[Alert]:
        """The audit records (chain ``worker:<line>``) built since the last call, in order; taken and
        published like :meth:`take_alarm_events`, before the checkpoint that holds the chain's head."""
        return self.audit.take()

    def take_alarm_events(self) -> list[Alert]:
        """The alarm events (``activate``/``clear`` documents of ``cpkmon.alarm-events``) produced since the
        last call, in the order their causes were applied. They sit beside the alerts every input method
        returns; the caller takes them after each application and publishes them before the checkpoint that
        holds the state which produced them (the state is checkpointed, the outbox never is)."""
        return self.alarms.take()

    def status(self) -> dict[str, Any]:
        """The SPEC §6 status document of this line."""
        metrics = self.metrics()
        result = self.last_result if self.last_result is not None else grade(metrics, self.options)
        rd = result.to_dict()
        tracker = self.grade_tracker
        limiting = published_limiting(tracker.current, result, metrics, self.options, tracker.band)
        pending = None
        if tracker.pending_direction:
            pending = {
                "direction": FALLING if tracker.pending_direction < 0 else RISING,
                "to_grade": grade_ref(tracker.pending_level, chinese=False),
                "evaluations": tracker.pending_count,
                "confirm_evaluations": tracker.confirm_evaluations,
            }
        return {
            "line": self.line,
            "grade": grade_ref(tracker.current),
            "evaluated_grade": rd.get("grade"),
            "evaluated_limiting": rd.get("limiting"),
            "grade_pending": pending,
            "grade_changes": list(tracker.history),
            "cpk": metrics.cpk,
            "rty": metrics.rty,
            "sigma_level": metrics.sigma_level,
            "dpmo": metrics.dpmo,
            "internal_loss_rate": metrics.internal_loss_rate,
            "external_loss_rate": metrics.external_loss_rate,
            "limiting": None if limiting is None else limiting.to_dict(),
            "criteria": rd.get("criteria", []),
            "updated_at": to_rfc3339(self.updated_at),
            "degradations": self.grade_tracker.degradations,
            "characteristics": [c.status() for _, c in sorted(self.characteristics.items())],
            "stations": [st.status() for _, st in sorted(self.stations.items())],
        }

    # ------------------------------------------------------------------------------------------ snapshot
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "line": self.line,
            "applied": dict(self.applied),
            "updated_at": self.updated_at,
            "assessed": sorted(self._assessed),
            "resolved": self._resolved,
            "retired": {k: list(v) for k, v in sorted(self._retired.items())},
            "characteristics": {k: c.to_dict() for k, c in self.characteristics.items()},
            "stations": {k: s.to_dict() for k, s in self.stations.items()},
            "costs": self.costs.to_dict(),
            "grade_tracker": self.grade_tracker.to_dict(),
            "ooc": self.ooc.to_dict(),
            "alarms": self.alarms.to_dict(),
            "audit": self.audit.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], options: Options) -> LineState:
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported line state version {d.get('version')!r}")
        st = cls(str(d["line"]), options)
        st.applied = {str(k): int(v) for k, v in d["applied"].items()}
        st.updated_at = d["updated_at"]
        # checkpoints before the ratchet stored "resolvable:N" among the assessed criteria
        assessed = [str(a) for a in d["assessed"]]
        st._assessed = frozenset(a for a in assessed if not a.startswith("resolvable:"))
        older = [int(a.split(":", 1)[1]) for a in assessed if a.startswith("resolvable:")]
        st._resolved = int(d.get("resolved", max(older, default=0)))
        st._retired = {str(k): (int(v[0]), int(v[1]), int(v[2])) for k, v in d.get("retired", {}).items()}
        chars = d["characteristics"]
        st.characteristics = {k: Characteristic.from_dict(v, options) for k, v in chars.items()}
        st.stations = {k: StationYield.from_dict(v, options) for k, v in d["stations"].items()}
        st.costs = CostWindow.from_dict(d["costs"], options.cost_window_days)
        st.grade_tracker = GradeTracker.from_dict(d["grade_tracker"], options)
        st.ooc = OutOfControlTracker.from_dict(d["ooc"])
        # absent in a checkpoint written before the worker audited: the chain starts at seq 1 (no worker
        # record of it can exist yet)
        st.audit = ChainWriter.from_dict(worker_chain(st.line), d.get("audit"))
        # absent in a checkpoint written before alarms existed: no alarm active
        st.alarms = ProcessAlarms.from_dict(d.get("alarms"), _clear_after(options), st.audit)
        st.last_result = st._grade(st.metrics())
        return st
