"""The alert engine: when a grade change or a run-rule firing becomes an alert (SPEC §5).

Both trackers are pure state machines driven by the worker, checkpointed with the line
(``to_dict``/``from_dict``) and deterministic, so a replay after a crash rebuilds the same alerts with the
same ids (see ``documents``).

GradeTracker
    * The evaluated grade must stay below (above) the confirmed grade for ``confirm_evaluations`` consecutive
      evaluations before ``grade_degraded`` (``grade_recovered``) is raised. An evaluation at the confirmed
      grade, or on the other side of it, restarts the count — so a grade alternating every evaluation
      (flapping) never confirms and never storms.
    * The grade confirmed by a degradation is the **highest** level seen during the confirming run: the line
      has surely been at or below it for the whole run (e.g. 4 → {2, 3, 3} confirms 3, not 2). Symmetrically a
      recovery confirms the **lowest** level seen during its run. A later evaluation that is lower still
      starts a new run from the new confirmed grade, so a deeper fall is reported as a second, confirmed
      degradation.
    * No alert to or from ``None``: the first non-null grade becomes current silently (start-up); a null grade
      interrupts a confirming run, and after ``confirm_evaluations`` consecutive nulls the current grade is
      forgotten silently, so the next grade re-bases without an alert.
    * Re-basing on newly assessed criteria: when a criterion reports for the first time (``newly_assessed``,
      e.g. a starting line's RTY once its stations reach ``min_units``), a drop that the *other* criteria do
      not explain is not a process change but new knowledge: the tracker adopts the new grade silently and
      counts nothing; if the other criteria alone dropped too, the usual confirmation applies. A rise at that
      moment can only come from a lifted ``require_all_criteria`` cap, so it is adopted silently as well.
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

from collections.abc import Iterable, Mapping, Set
from typing import Any

from cpkmon.capability.control import Violation
from cpkmon.capability.options import Options

from .documents import GRADE_DEGRADED, GRADE_RECOVERED, alert_id, grade_alert, out_of_control_alert
from .ladder import GradeResult, LineMetrics

__all__ = ["GradeTracker", "OutOfControlTracker", "alert_id"]

_ALIASES = {"dpmo": "sigma_level", "sigma": "sigma_level", "internal": "internal_loss_rate",
            "external": "external_loss_rate"}


def _grade_without(result: GradeResult, names: Iterable[str]) -> int | None:
    """The grade the other assessed criteria alone would give (no require_all cap); None if none is left."""
    skip = {_ALIASES.get(n, n) for n in names}
    levels = [c.level_met for c in result.criteria if c.assessed and c.criterion not in skip and c.level_met]
    return min(levels) if levels else None


class GradeTracker:
    """Confirmed grade of one line and the confirmation run in progress; see the module docstring."""

    __slots__ = ("_confirm", "current", "degradations", "null_run", "pending_count", "pending_direction",
                 "pending_level", "recoveries", "sequence")

    def __init__(self, options: Options | None = None, *, confirm_evaluations: int | None = None) -> None:
        if confirm_evaluations is None:
            confirm_evaluations = (options or Options()).confirm_evaluations
        confirm = confirm_evaluations
        self._confirm = max(1, int(confirm))
        self.current: int | None = None
        self.pending_direction = 0  # −1 falling run, +1 rising run, 0 none
        self.pending_count = 0
        self.pending_level: int | None = None  # the level the run would confirm
        self.null_run = 0
        self.sequence = 0  # confirmed transitions so far: part of every grade alert id
        self.degradations = 0
        self.recoveries = 0

    @property
    def confirm_evaluations(self) -> int:
        return self._confirm

    def _reset_pending(self) -> None:
        self.pending_direction = 0
        self.pending_count = 0
        self.pending_level = None

    def evaluate(
        self,
        line: str,
        result: GradeResult,
        metrics: LineMetrics,
        event_time: float,
        detected_at: float,
        newly_assessed: Set[str] = frozenset(),
        rising_level: int | None = None,
    ) -> list[dict[str, object]]:
        """Feed one evaluation; returns the alerts it confirms (zero or one document).

        ``rising_level`` is the grade of the metrics moved by the hysteresis band toward the bad side
        (``LineMetrics.penalized``): a rise counts only up to that level, so a metric hovering at a threshold
        cannot degrade and recover over and over (a Schmitt trigger on top of the confirmation count).
        """
        level = result.level
        if (
            level is not None
            and rising_level is not None
            and self.current is not None
            and level > self.current
            and not newly_assessed
        ):
            level = max(self.current, min(level, rising_level))
        if level is None:
            self._reset_pending()
            self.null_run += 1
            if self.null_run >= self._confirm:
                self.current = None
            return []
        self.null_run = 0
        if self.current is None:
            self.current = level  # start-up: no alert from null
            self._reset_pending()
            return []
        if level == self.current:
            self._reset_pending()
            return []
        if newly_assessed:
            # A criterion that just appeared can only lower the minimum; a rise at that moment comes from a
            # lifted require_all_criteria cap, never from the process: always silent. A drop is silent unless
            # the other criteria alone dropped too.
            others = _grade_without(result, newly_assessed)
            explained_by_others = level < self.current and others is not None and others < self.current
            if not explained_by_others:
                self.current = level  # new knowledge, not a process change: re-base silently
                self._reset_pending()
                return []

        direction = -1 if level < self.current else 1
        if direction != self.pending_direction:
            self.pending_direction = direction
            self.pending_count = 0
            self.pending_level = level
        self.pending_count += 1
        assert self.pending_level is not None
        if direction < 0:
            self.pending_level = max(self.pending_level, level)  # surely fallen to at most this
        else:
            self.pending_level = min(self.pending_level, level)  # surely risen to at least this
        if self.pending_count < self._confirm:
            return []

        from_level, to_level = self.current, self.pending_level
        type_ = GRADE_DEGRADED if direction < 0 else GRADE_RECOVERED
        self.sequence += 1
        if direction < 0:
            self.degradations += 1
        else:
            self.recoveries += 1
        self.current = to_level
        self._reset_pending()
        return [
            grade_alert(
                type_=type_,
                line=line,
                sequence=self.sequence,
                from_level=from_level,
                to_level=to_level,
                limiting=result.limiting,
                cpk=metrics.cpk,
                rty=metrics.rty,
                sigma_level=metrics.reported("sigma_level"),
                event_time=event_time,
                detected_at=detected_at,
            )
        ]

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
    ) -> list[dict[str, object]]:
        """Feed the violations raised by the subgroup ``closed_seq``; returns the new alerts.

        Calling it for quiet subgroups is optional (it only prunes state earlier): whether a firing alerts
        depends on the seq distance to the rule's previous firing, not on how many calls came between.
        """
        window = max(1, int(window_subgroups))
        state = self.last_fired.setdefault(characteristic, {})
        out: list[dict[str, object]] = []
        seen: set[int] = set()
        for v in violations:
            if v.rule in seen:
                continue  # Test 1 on both charts at one subgroup: one signal
            seen.add(v.rule)
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
