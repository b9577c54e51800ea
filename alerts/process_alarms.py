"""The process side of the alarms (issue 12): when a line's condition activates or clears an alarm.

Why here and not in the worker: whether a control alarm is active is a function of the subgroups a
characteristic closed and the violations they raised, and whether the grade alarm is active a function of
the confirmed grade alerts — both already decided, deterministically, inside
:class:`cpkmon.alerts.line.LineState`.
Deciding the alarm condition at the same place, from the same inputs, and checkpointing it with the line keeps
the replay contract of the alerts: a worker that replays after a crash republishes byte-identical
``activate``/``clear`` events with the same ``event_id``, and ``AlarmBook`` counts them once.

What this module writes is only the *condition* (ISA-18.2 "process" events); acknowledgement, shelving and
service state are the operator's (``cpkmon.alerts.alarms``). Chattering is impossible by construction: an
alarm emits ``activate`` only when it goes from inactive to active and ``clear`` only on the way back, so a
rule that keeps firing is one activation, however often it fires.

* **Control alarm** ``("control", line, characteristic)``: activates at the first close whose violations
  (enabled Nelson rules only: the chart evaluates no others) fire while the alarm is inactive. It clears at
  the close of the ``alarm_clear_subgroups``-th consecutive closed subgroup without a firing (default
  ``window_subgroups``: the span after which ``OutOfControlTracker`` alerts again for the same rule, so a
  re-activation after a clear comes with a fresh ``out_of_control`` alert). Counting uses subgroup seqs, which
  continue across spec changes, so a spec change does not reset it. Severity ``high`` when Test 1 (beyond the
  control limits) is among the rules, else ``medium``. A deleted spec clears its alarm (:meth:`retire`).
* **Grade alarm** ``("grade", line)``: activates on a confirmed ``grade_degraded``, remembering the grade
  before the drop; clears on the confirmed ``grade_recovered`` that brings the grade back to at least that
  level. Deeper falls while it is active raise no new event (they are the same incident for the operator,
  and the ``grade_degraded`` alerts keep the detail). Severity ``high`` when the first drop crossed two levels
  or more, else ``medium``.

Event ids are ``alarm_event``'s digest over the event together with the line's running count of alarm
events (checkpointed), so two events with equal content (two clears of one alarm at the same event time)
still get distinct ids, and a replay from a checkpoint reproduces the same ids.

Every event is also an audit record (``alarm.activate``/``alarm.clear``) in the line's chain (``audit``, a
:class:`cpkmon.alerts.audit.ChainWriter` the line owns), built from the event alone, so a replay rebuilds it
byte for byte too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cpkmon.capability.control import Violation

from .alarms import alarm_event
from .audit import ChainWriter
from .documents import alert_id as _digest
from .ladder import grade_ref
from .model import (
    ALARM_CONTROL,
    ALARM_GRADE,
    AUDIT_ALARM_ACTIVATE,
    AUDIT_ALARM_CLEAR,
    EV_ACTIVATE,
    EV_CLEAR,
    GRADE_DEGRADED,
    GRADE_RECOVERED,
    SEVERITY_HIGH,
    SEVERITY_MEDIUM,
)

__all__ = ["ProcessAlarms"]

AlarmEventDoc = dict[str, Any]


class ProcessAlarms:
    """The alarm condition of one line's sources and the events not yet taken by the caller.

    ``control``: characteristic → seq of its last firing, for the active control alarms only (an inactive
    alarm holds no state); ``grade_base``: the published grade before the open grade incident (None: the
    grade alarm is inactive); ``emitted``: alarm events written so far (part of every ``event_id``);
    ``audit``: the line's audit chain, which gets a record per event (None: not audited)."""

    __slots__ = ("_clear_after", "audit", "control", "emitted", "grade_base", "outbox")

    def __init__(self, clear_after: int, audit: ChainWriter | None = None) -> None:
        self._clear_after = max(1, int(clear_after))
        self.control: dict[str, int] = {}
        self.grade_base: int | None = None
        self.emitted = 0
        self.outbox: list[AlarmEventDoc] = []
        self.audit = audit

    @property
    def clear_after(self) -> int:
        return self._clear_after

    def take(self) -> list[AlarmEventDoc]:
        """The events produced since the last call, in order (the caller publishes them)."""
        out, self.outbox = self.outbox, []
        return out

    def _emit(self, kind: str, *, line: str, source: str, at: float, characteristic: str | None = None,
              **fields: Any) -> None:
        self.emitted += 1
        doc = alarm_event(kind, line=line, source=source, at=at, characteristic=characteristic, **fields)
        doc["event_id"] = _digest("alarm-event", doc["event_id"], self.emitted)
        self.outbox.append(doc)
        if self.audit is not None:
            self._audit(doc)

    def _audit(self, doc: AlarmEventDoc) -> None:
        """The audit record of one event: the alarm's condition before and after it. ``after`` carries the
        event's own fields (its ``event_id`` links the record to ``cpkmon.alarm-events``)."""
        assert self.audit is not None
        active = doc["kind"] == EV_ACTIVATE
        detail = {k: v for k, v in doc.items() if k not in ("alarm_id", "kind", "at")}
        self.audit.append(
            at=doc["at"],
            what=AUDIT_ALARM_ACTIVATE if active else AUDIT_ALARM_CLEAR,
            subject=doc["alarm_id"],
            before={"active": not active},
            after={"active": active, **detail},
        )

    # ------------------------------------------------------------------------------------------ control
    def subgroup_closed(
        self,
        line: str,
        characteristic: str,
        seq: int,
        event_time: float,
        violations: Sequence[Violation],
        alerts: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Feed one closed subgroup of ``characteristic`` (every close, quiet ones too: they count toward the
        clear) with the violations it raised and the ``out_of_control`` alerts those raised."""
        last = self.control.get(characteristic)
        if violations:
            newest = max(v.seq for v in violations)
            if last is not None:
                self.control[characteristic] = max(last, newest)
            elif seq - newest < self._clear_after:  # a Phase I firing already quiet for the span: no alarm
                self._activate(line, characteristic, newest, violations, alerts)
                return
        last = self.control.get(characteristic)
        if last is not None and seq - last >= self._clear_after:
            del self.control[characteristic]
            self._emit(EV_CLEAR, line=line, source=ALARM_CONTROL, characteristic=characteristic,
                       at=event_time)

    def rebaselined(
        self,
        line: str,
        characteristic: str,
        violations: Sequence[Violation],
        alerts: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """The window was judged against new limits (Phase I re-baseline): its firings count like live ones.
        A quiet window leaves the alarm to clear by the quiet subgroups that follow, as any other."""
        if not violations:
            return
        newest = max(v.seq for v in violations)
        last = self.control.get(characteristic)
        if last is not None:
            self.control[characteristic] = max(last, newest)
        else:
            self._activate(line, characteristic, newest, violations, alerts)

    def _activate(self, line: str, characteristic: str, newest: int, violations: Sequence[Violation],
                  alerts: Sequence[Mapping[str, Any]]) -> None:
        self.control[characteristic] = newest
        rules = sorted({v.rule for v in violations})
        # the alert that raised it (the first of the close); with no alert (the rule's out_of_control was
        # suppressed by the tracker's window) the newest violation tells what fired
        first = next((a for a in alerts if a.get("characteristic") == characteristic), None)
        newest_v = max(violations, key=lambda v: (v.seq, -v.rule))
        at = newest_v.event_time
        if first is not None:
            value, limit, raised = first.get("value"), first.get("limit"), first.get("alert_id")
        else:
            value, limit, raised = newest_v.value, newest_v.limit, None
        self._emit(
            EV_ACTIVATE, line=line, source=ALARM_CONTROL, characteristic=characteristic, at=at, rules=rules,
            severity=SEVERITY_HIGH if 1 in rules else SEVERITY_MEDIUM, value=value, limit=limit,
            alert_id=raised,
        )

    def retire(self, line: str, characteristic: str, at: float) -> None:
        """The characteristic's spec was deleted: its alarm (if active) clears, nothing is measured now."""
        if self.control.pop(characteristic, None) is not None:
            self._emit(EV_CLEAR, line=line, source=ALARM_CONTROL, characteristic=characteristic, at=at)

    # -------------------------------------------------------------------------------------------- grade
    def grade_alerts(self, line: str, alerts: Sequence[Mapping[str, Any]], before: int | None,
                     event_time: float) -> None:
        """Feed the alerts of one grade evaluation; ``before`` is the published grade before it (the
        tracker confirms at most one change per evaluation)."""
        for doc in alerts:
            type_ = doc.get("type")
            to_ref = doc.get("to_grade")
            to_level = to_ref.get("level") if isinstance(to_ref, Mapping) else None
            if type_ == GRADE_DEGRADED and self.grade_base is None and before is not None:
                self.grade_base = before
                limiting = doc.get("limiting")
                lim = limiting if isinstance(limiting, Mapping) else {}
                drop = before - to_level if isinstance(to_level, int) else 0
                self._emit(
                    EV_ACTIVATE, line=line, source=ALARM_GRADE, at=event_time,
                    severity=SEVERITY_HIGH if drop >= 2 else SEVERITY_MEDIUM,
                    value=lim.get("value"), limit=lim.get("threshold"), alert_id=doc.get("alert_id"),
                    from_grade=grade_ref(before, chinese=False), to_grade=to_ref,
                )
            elif (
                type_ == GRADE_RECOVERED
                and self.grade_base is not None
                and isinstance(to_level, int)
                and to_level >= self.grade_base
            ):
                self.grade_base = None
                self._emit(EV_CLEAR, line=line, source=ALARM_GRADE, at=event_time,
                           alert_id=doc.get("alert_id"))

    # ----------------------------------------------------------------------------------------- snapshot
    def to_dict(self) -> dict[str, Any]:
        return {"control": dict(sorted(self.control.items())), "grade_base": self.grade_base,
                "emitted": self.emitted}

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any] | None, clear_after: int, audit: ChainWriter | None = None
    ) -> ProcessAlarms:
        """Restore; ``None`` (a checkpoint written before alarms existed) is a line with no active alarm.
        ``audit``: the restored line's chain (its head is checkpointed by the line, not here)."""
        pa = cls(clear_after, audit)
        if d:
            pa.control = {str(k): int(v) for k, v in dict(d.get("control", {})).items()}
            base = d.get("grade_base")
            pa.grade_base = None if base is None else int(base)
            pa.emitted = int(d.get("emitted", 0))
        return pa
