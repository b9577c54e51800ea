"""The alert engine: when a grade change or a run-rule firing becomes an alert (SPEC §5).

Both trackers are pure state machines driven by the worker, checkpointed with the line
(``to_dict``/``from_dict``) and deterministic, so a replay after a crash rebuilds the same alerts with the
same ids (see ``documents``).

GradeTracker
    The published grade of a line and why it changed. Every change of the published grade is *explained*:
    by a ``grade_degraded``/``grade_recovered`` alert, or by one of the documented non-alerting causes
    (:data:`SILENT_CAUSES`); the last :data:`HISTORY` changes are kept, numbered, in the status
    (``grade_changes``), so a reader can replay the published grade from the alerts and those causes.

    * **Dead band, symmetric** (``ladder.GradeBand``): an evaluation counts as *below* the published grade G
      only when some criterion misses G's threshold by the band (its grade with thresholds moved toward the
      bad side, ``fall``, is below G), and as *above* only when every criterion clears G+1's threshold by the
      band (``rise`` above G). Inside the band the count restarts. Falls and rises are judged alike, so a
      process at a threshold does not chatter and a good process is not held below the grade it deserves.
    * **Confirmation**: ``confirm_evaluations`` consecutive evaluations below (above) confirm the change. A
      fall confirms the **highest** banded level seen during its run (the line has surely been at or below
      it), a rise the **lowest**; a later, deeper fall is a second, confirmed degradation.
    * **Incidents**: degradations that follow each other without a recovery in between, each within
      :data:`INCIDENT_SPAN_WINDOWS` windows' worth of evaluations of the previous one, share an ``incident``
      (the id of the first): one real drop across several levels raises one alert per level crossed, grouped.
    * **Silent causes**, each recorded with its cause: ``first_grade`` (from no grade to a grade: start-up),
      ``no_data`` (``confirm_evaluations`` consecutive evaluations with nothing assessed), ``newly_assessed``
      (a criterion assessed *for the first time in the line's life* lowers the grade and the other criteria
      alone do not explain the drop: new knowledge, not a process change; also a lifted
      ``require_all_criteria`` cap) and ``newly_resolvable`` (the DPMO sample grew enough to resolve a higher
      level for the first time; the line ratchets its resolution, so this happens at most four times in a
      line's life and never flaps). A criterion that was assessed once and drops out or comes back is *not*
      new: the grade changes it causes are alerted like any other.
    * ``degradations`` counts confirmed degradations (``cpkmon_grade_degradations_total``).

OutOfControlTracker
    One ``out_of_control`` alert per (characteristic, rule) — Test 1 on the X̄ and on the R chart count as the
    same rule, as SPEC §5 words it — then silence while the rule keeps firing. It may alert again only after
    it stayed clear for a whole window: ``window_subgroups`` closed subgroups with no firing since its last
    firing (whether that firing alerted or not), so a drifting process that fires Test 2 on every subgroup
    raises one alert. The decision uses the distance between subgroup seqs, so the caller may observe only the
    subgroups that raised violations; quiet subgroups observed just let the state be pruned sooner.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Set
from typing import Any

from cpkmon.capability.control import Violation
from cpkmon.capability.options import Options
from cpkmon.capability.timeutil import to_rfc3339

from .documents import alert_id, grade_alert, out_of_control_alert
from .ladder import GradeBand, GradeResult, LineMetrics, grade_ref, published_limiting

# Causes of a published-grade change that raise no alert (documented in the README and the status), alert
# types and directions: defined once in the document model, importable from here as before.
from .model import (
    EXTERNAL_LOSS_RATE,
    FALLING,
    FIRST_GRADE,
    GRADE_DEGRADED,
    GRADE_RECOVERED,
    INTERNAL_LOSS_RATE,
    NEWLY_ASSESSED,
    NEWLY_RESOLVABLE,
    NO_DATA,
    RISING,
    SIGMA_LEVEL,
    SILENT_CAUSES,
)

__all__ = [
    "FALLING", "FIRST_GRADE", "NEWLY_ASSESSED", "NEWLY_RESOLVABLE", "NO_DATA", "RISING", "SILENT_CAUSES",
    "GradeTracker", "OutOfControlTracker", "alert_id",
]

_ALIASES = {"dpmo": SIGMA_LEVEL, "sigma": SIGMA_LEVEL, "internal": INTERNAL_LOSS_RATE,
            "external": EXTERNAL_LOSS_RATE}
#: Grade changes kept in the status (``grade_changes``).
HISTORY = 20
#: Degradations this many windows (× ``window_subgroups`` evaluations) apart are separate incidents.
INCIDENT_SPAN_WINDOWS = 2


def _grade_without(result: GradeResult, names: Iterable[str]) -> int | None:
    """The grade the other assessed criteria alone would give (no require_all cap); None if none is left."""
    skip = {_ALIASES.get(n, n) for n in names}
    levels = [c.level_met for c in result.criteria if c.assessed and c.criterion not in skip and c.level_met]
    return min(levels) if levels else None


class GradeTracker:
    """Published grade of one line, the confirmation run in progress and the history of changes; see the
    module docstring."""

    __slots__ = ("_band", "_confirm", "_incident_span", "_options", "changes", "current", "degradations",
                 "evaluations", "history", "incident", "incident_eval", "null_run", "pending_count",
                 "pending_direction", "pending_level", "recoveries", "sequence")

    def __init__(self, options: Options | None = None, *, confirm_evaluations: int | None = None) -> None:
        opts = options or Options()
        self._options = opts
        if confirm_evaluations is None:
            confirm_evaluations = opts.confirm_evaluations
        self._confirm = max(1, int(confirm_evaluations))
        self._band = GradeBand(
            opts.grade_hysteresis, opts.grade_hysteresis_se_fall, opts.grade_hysteresis_se_rise
        )
        self._incident_span = INCIDENT_SPAN_WINDOWS * max(1, opts.window_subgroups)
        self.current: int | None = None
        self.pending_direction = 0  # −1 falling run, +1 rising run, 0 none
        self.pending_count = 0
        self.pending_level: int | None = None  # the level the run would confirm
        self.null_run = 0
        self.sequence = 0  # confirmed (alerted) transitions so far: part of every grade alert id
        self.degradations = 0
        self.recoveries = 0
        self.evaluations = 0
        self.changes = 0  # every change of the published grade, alerted or not: numbers ``history``
        self.history: deque[dict[str, object]] = deque(maxlen=HISTORY)
        self.incident: str | None = None  # the id of the first degradation of the open incident
        self.incident_eval = 0  # evaluation count at the last degradation of that incident

    @property
    def confirm_evaluations(self) -> int:
        return self._confirm

    @property
    def band(self) -> GradeBand:
        return self._band

    def _reset_pending(self) -> None:
        self.pending_direction = 0
        self.pending_count = 0
        self.pending_level = None

    def _record(self, to_level: int | None, cause: str, event_time: float, alert: str | None = None,
                criteria: Iterable[str] = ()) -> None:
        self.changes += 1
        self.history.append({
            "n": self.changes,
            "from_grade": grade_ref(self.current, chinese=False),
            "to_grade": grade_ref(to_level, chinese=False),
            "cause": cause,
            "alert_id": alert,
            "criteria": sorted(criteria),
            "event_time": to_rfc3339(event_time),
        })
        self.current = to_level

    def evaluate(
        self,
        line: str,
        result: GradeResult,
        metrics: LineMetrics,
        event_time: float,
        detected_at: float,
        newly_assessed: Set[str] = frozenset(),
        *,
        fall: GradeResult | None = None,
        rise: GradeResult | None = None,
        newly_resolvable: bool = False,
    ) -> list[dict[str, object]]:
        """Feed one evaluation; returns the alerts it confirms (zero or one document).

        ``result`` is the evaluated grade; ``fall``/``rise`` the same metrics graded with every threshold
        moved by the band toward the bad / good side (``grade(..., bias=-1 / +1)``). Where they are not given
        the band is zero (they equal ``result``).
        """
        self.evaluations += 1
        level = result.level
        if level is None:
            self._reset_pending()
            self.null_run += 1
            if self.null_run >= self._confirm and self.current is not None:
                self._record(None, NO_DATA, event_time)
            return []
        self.null_run = 0
        current = self.current
        if current is None:
            self._reset_pending()
            self._record(level, FIRST_GRADE, event_time)  # start-up: no alert from null
            return []
        fall_level = level if fall is None or fall.level is None else fall.level
        rise_level = level if rise is None or rise.level is None else rise.level
        if newly_assessed or newly_resolvable:
            # New knowledge, not a process change: a drop that the other criteria alone do not explain, a rise
            # that only a lifted require_all cap or a newly resolvable DPMO level allows, is adopted silently.
            others_fall = _grade_without(fall or result, newly_assessed)
            if level < current and not (others_fall is not None and others_fall < current):
                self._reset_pending()
                self._record(level, NEWLY_ASSESSED if newly_assessed else NEWLY_RESOLVABLE, event_time,
                             criteria=newly_assessed or {SIGMA_LEVEL})
                return []
            if level > current:
                new_names = set(newly_assessed) | ({SIGMA_LEVEL} if newly_resolvable else set())
                others_rise = _grade_without(rise or result, new_names)
                target = level if others_rise is None else max(current, min(level, others_rise))
                if target > current:
                    self._reset_pending()
                    self._record(target, NEWLY_ASSESSED if newly_assessed else NEWLY_RESOLVABLE, event_time,
                                 criteria=newly_assessed or {SIGMA_LEVEL})
                    return []

        if fall_level < current:
            direction, candidate = -1, fall_level
        elif rise_level > current:
            direction, candidate = 1, rise_level
        else:
            self._reset_pending()  # inside the band: nothing to confirm
            return []
        if direction != self.pending_direction:
            self.pending_direction = direction
            self.pending_count = 0
            self.pending_level = candidate
        self.pending_count += 1
        assert self.pending_level is not None
        if direction < 0:
            self.pending_level = max(self.pending_level, candidate)  # surely fallen to at most this
        else:
            self.pending_level = min(self.pending_level, candidate)  # surely risen to at least this
        if self.pending_count < self._confirm:
            return []

        from_level, to_level = current, self.pending_level
        type_ = GRADE_DEGRADED if direction < 0 else GRADE_RECOVERED
        self.sequence += 1
        if direction < 0:
            self.degradations += 1
        else:
            self.recoveries += 1
        new_id = alert_id(line, type_, self.sequence, from_level, to_level)
        if direction < 0:
            if self.incident is None or self.evaluations - self.incident_eval > self._incident_span:
                self.incident = new_id
            self.incident_eval = self.evaluations
            incident: str | None = self.incident
        else:
            incident, self.incident = None, None
        limiting = published_limiting(to_level, result, metrics, self._options, self._band)
        doc = grade_alert(
            type_=type_,
            line=line,
            sequence=self.sequence,
            from_level=from_level,
            to_level=to_level,
            limiting=limiting,
            cpk=metrics.cpk,
            rty=metrics.rty,
            sigma_level=metrics.reported("sigma_level"),
            event_time=event_time,
            detected_at=detected_at,
            incident=incident,
        )
        self._reset_pending()
        self._record(to_level, type_, event_time, str(doc["alert_id"]),
                     criteria=() if limiting is None else (limiting.criterion,))
        return [doc]

    def to_dict(self) -> dict[str, object]:
        return {
            "current": self.current,
            "pending_direction": self.pending_direction,
            "pending_count": self.pending_count,
            "pending_level": self.pending_level,
            "null_run": self.null_run,
            "sequence": self.sequence,
            "degradations": self.degradations,
            "recoveries": self.recoveries,
            "evaluations": self.evaluations,
            "changes": self.changes,
            "history": [dict(h) for h in self.history],
            "incident": self.incident,
            "incident_eval": self.incident_eval,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], options: Options | None = None) -> GradeTracker:
        t = cls(options)
        t.current = None if d.get("current") is None else int(d["current"])
        t.pending_direction = int(d.get("pending_direction", 0))
        t.pending_count = int(d.get("pending_count", 0))
        t.pending_level = None if d.get("pending_level") is None else int(d["pending_level"])
        t.null_run = int(d.get("null_run", 0))
        t.sequence = int(d.get("sequence", 0))
        t.degradations = int(d.get("degradations", 0))
        t.recoveries = int(d.get("recoveries", 0))
        t.evaluations = int(d.get("evaluations", 0))
        t.changes = int(d.get("changes", 0))
        t.history.extend(dict(h) for h in d.get("history", []))
        t.incident = d.get("incident")
        t.incident_eval = int(d.get("incident_eval", 0))
        return t


class OutOfControlTracker:
    """Per characteristic and rule: the seq of its last firing, kept until it has been clear for a window."""

    __slots__ = ("alerts", "last_fired")

    def __init__(self) -> None:
        self.last_fired: dict[str, dict[int, int]] = {}
        self.alerts = 0

    def observe(
        self,
        line: str,
        characteristic: str,
        station: str | None,
        violations: list[Violation],
        closed_seq: int,
        window_subgroups: int,
        detected_at: float,
        epoch: int = 0,
    ) -> list[dict[str, object]]:
        """Feed the violations raised by the subgroup ``closed_seq``; returns the new alerts.

        Calling it for quiet subgroups is optional (it only prunes state earlier): whether a firing alerts
        depends on the seq distance to the rule's previous firing, not on how many calls came between.
        """
        window = max(1, int(window_subgroups))
        state = self.last_fired.setdefault(characteristic, {})
        out: list[dict[str, object]] = []
        seen: set[tuple[int, int]] = set()
        for v in sorted(violations, key=lambda x: x.seq):  # a Phase I pass hands in many subgroups at once
            if (v.rule, v.seq) in seen:
                continue  # Test 1 on both charts at one subgroup: one signal
            seen.add((v.rule, v.seq))
            last = state.get(v.rule)
            if last is None or v.seq - last - 1 >= window:
                out.append(
                    out_of_control_alert(
                        line=line,
                        characteristic=characteristic,
                        station=station,
                        rule=v.rule,
                        chart=v.chart,
                        value=v.value,
                        limit=v.limit,
                        subgroup=v.subgroup,
                        seq=v.seq,
                        event_time=v.event_time,
                        detected_at=detected_at,
                        epoch=epoch,
                    )
                )
            if last is None or v.seq > last:
                state[v.rule] = v.seq
        for rule, last in list(state.items()):
            if closed_seq - last >= window:
                del state[rule]  # clear for a whole window: the next firing alerts again
        if not state:
            del self.last_fired[characteristic]
        self.alerts += len(out)
        return out

    def forget(self, characteristic: str) -> None:
        """Drop a characteristic (its spec was deleted)."""
        self.last_fired.pop(characteristic, None)

    def to_dict(self) -> dict[str, object]:
        return {
            "last_fired": {c: {str(r): s for r, s in rules.items()} for c, rules in self.last_fired.items()},
            "alerts": self.alerts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OutOfControlTracker:
        t = cls()
        for c, rules in dict(d.get("last_fired", {})).items():
            t.last_fired[str(c)] = {int(r): int(s) for r, s in dict(rules).items()}
        t.alerts = int(d.get("alerts", 0))
        return t
