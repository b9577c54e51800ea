"""ISA-18.2 alarm states: one alarm per source, its state a pure function of its ordered event history.

Why states and not alerts: the alert feed (``cpkmon.alerts``) is an event history — one record per rule per
firing — and a control room drowning in 110 open alerts cannot work from it. ANSI/ISA-18.2-2016 (and IEC
62682) instead give every alarm *source* one state: ``normal``, ``unack`` (active, unacknowledged), ``acked``
(active, acknowledged), ``rtn_unack`` (returned to normal, unacknowledged), ``shelved`` and
``out_of_service``. Here a source is ``("control", line, characteristic)`` — the Nelson rules that fired are
attributes of the alarm — or ``("grade", line)``.

Why a pure function of the events: the state is rebuilt from ``cpkmon.alarm-events`` by every API replica
and after every restart, and they must agree. So nothing here reads a clock: shelve expiry (the only
time-based transition) happens at the shelve's ``until`` and is evaluated at each event's ``at`` and at a
query's ``now`` (:meth:`AlarmBook.view`); the transition it causes is dated ``until`` whenever it is noticed,
so it does not matter when (or whether) someone asked before. Rejections are pure too: an operator event
that makes no sense in the alarm's state (ack of a normal alarm, ack without a cause under
``require_cause``, …) leaves the state untouched and returns a typed :class:`Rejection` that the API turns
into 409/422 — and if such an event reaches the topic anyway (two API replicas racing), every replica rejects
it identically. A re-published event (same ``event_id``, e.g. the worker replaying after a crash) counts
once: each alarm remembers its last :data:`DEDUP_EVENTS` event ids (checkpointed with it).

Transitions (``round3.md``'s design; ``README`` "Alarm states")::

    normal    -activate->  unack            unack   -ack->      acked
    unack     -clear->     rtn_unack        acked   -clear->    normal
    rtn_unack -ack->       normal           rtn_unack -activate-> unack  (same alarm, reactivations + 1)
    unack|acked -activate-> same state, reactivations + 1
    any but out_of_service -shelve-> shelved (the condition keeps being tracked)
    shelved -unshelve | until passed-> unack if active else normal
    any -out_of_service-> out_of_service    out_of_service -in_service-> unack if active else normal

An *occurrence* starts with an activation of an alarm that has no open occurrence and ends when the alarm
reaches ``normal``; ``ack`` (with its cause) and ``resolve`` (the corrective action, allowed once the
occurrence was acknowledged, also after it returned to normal) belong to the occurrence.

Pure: pydantic and the standard library (PyYAML only to read a plant's YAML cause-code file).
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cpkmon.capability.timeutil import parse_ts, to_rfc3339

from .documents import alert_id as _digest
from .model import (
    ALARM_ACKED,
    ALARM_CONTROL,
    ALARM_EVENT_KINDS,
    ALARM_GRADE,
    ALARM_NORMAL,
    ALARM_OUT_OF_SERVICE,
    ALARM_RTN_UNACK,
    ALARM_SHELVED,
    ALARM_UNACK,
    DEFAULT_CAUSE_CODES,
    EV_ACK,
    EV_ACTIVATE,
    EV_CLEAR,
    EV_IN_SERVICE,
    EV_OUT_OF_SERVICE,
    EV_RESOLVE,
    EV_SHELVE,
    EV_UNSHELVE,
    SHELVE_EXPIRED,
    Alarm,
    AlarmEvent,
    CauseCode,
)

__all__ = [
    "ALARM_STATE_VERSION", "DEDUP_EVENTS", "AlarmBook", "AlarmState", "Rejection", "Transition",
    "alarm_event",
    "alarm_id", "default_cause_codes", "load_cause_codes", "parse_cause_codes",
]

#: Format of :meth:`AlarmBook.to_dict`.
ALARM_STATE_VERSION = 1
#: Event ids each alarm remembers to count a re-published event once (a worker replays at most the events
#: since its last checkpoint, a handful per alarm).
DEDUP_EVENTS = 64

# Rejection reasons (``Rejection.reason``) and the HTTP status the API answers with.
INVALID_EVENT = "invalid_event"  # 422: not an alarm event (schema)
ALARM_ID_MISMATCH = "alarm_id_mismatch"  # 422: alarm_id is not the id of the event's source
UNKNOWN_KIND = "unknown_kind"  # 422
CAUSE_REQUIRED = "cause_required"  # 422: require_cause and an ack without a cause
UNKNOWN_CAUSE = "unknown_cause"  # 422: a cause code not in the plant's list
ACTION_REQUIRED = "action_required"  # 422: require_cause and a resolve without an action
UNTIL_NOT_AFTER_AT = "until_not_after_at"  # 422: a shelve that would already have expired
NOT_ACKNOWLEDGEABLE = "not_acknowledgeable"  # 409: ack of a normal, acked, shelved or out-of-service alarm
NOT_ACKNOWLEDGED = "not_acknowledged"  # 409: resolve of an occurrence nobody acknowledged
NOT_SHELVED = "not_shelved"  # 409: unshelve of an alarm that is not shelved
IS_OUT_OF_SERVICE = "alarm_out_of_service"  # 409: shelve or out_of_service of an out-of-service alarm
NOT_OUT_OF_SERVICE = "not_out_of_service"  # 409: in_service of an alarm in service
REJECTION_STATUS: dict[str, int] = {
    INVALID_EVENT: 422, ALARM_ID_MISMATCH: 422, UNKNOWN_KIND: 422, CAUSE_REQUIRED: 422, UNKNOWN_CAUSE: 422,
    ACTION_REQUIRED: 422, UNTIL_NOT_AFTER_AT: 422, NOT_ACKNOWLEDGEABLE: 409, NOT_ACKNOWLEDGED: 409,
    NOT_SHELVED: 409, IS_OUT_OF_SERVICE: 409, NOT_OUT_OF_SERVICE: 409,
}
_ACTIVE_STATES = (ALARM_UNACK, ALARM_ACKED, ALARM_RTN_UNACK)


def alarm_id(line: str, kind: str, characteristic: str | None = None) -> str:
    """The deterministic id of the alarm of a source: 32 hex of SHA-256 over the JSON of the source tuple
    (``("control", line, characteristic)`` or ``("grade", line)``), as ``documents.alert_id`` does."""
    if kind == ALARM_CONTROL:
        if not characteristic:
            raise ValueError("a control alarm needs its characteristic")
        return _digest(ALARM_CONTROL, line, characteristic)
    if kind == ALARM_GRADE:
        return _digest(ALARM_GRADE, line)
    raise ValueError(f"unknown alarm source kind {kind!r}")


def alarm_event(
    kind: str,
    *,
    line: str,
    source: str,
    at: float | str,
    characteristic: str | None = None,
    by: str | None = None,
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An alarm event document (``cpkmon.alarm-events``), ``fields`` being its kind-specific fields.

    The default ``event_id`` is deterministic over everything else, so a worker that replays after a crash
    republishes the same id and the alarm counts the event once; the API passes its own (a uuid) since two
    operators may legitimately send identical acks."""
    at_text = at if isinstance(at, str) else to_rfc3339(at)
    src: dict[str, Any] = {"kind": source}
    if characteristic is not None:
        src["characteristic"] = characteristic
    doc: dict[str, Any] = {
        "alarm_id": alarm_id(line, source, characteristic),
        "line": line,
        "source": src,
        "kind": kind,
        "at": at_text,
    }
    if by is not None:
        doc["by"] = by
    doc.update({k: v for k, v in fields.items() if v is not None})
    if isinstance(doc.get("until"), (int, float)):  # epoch seconds, like ``at``
        doc["until"] = to_rfc3339(float(doc["until"]))
    doc = {"event_id": event_id or _digest("alarm-event", doc), **doc}
    return doc


# ------------------------------------------------------------------------------------------- cause codes


def default_cause_codes() -> tuple[CauseCode, ...]:
    """The default assignable-cause list, 5M1E (man, machine, material, method, measurement, environment)."""
    return tuple(CauseCode(code=c, name=n, name_zh=z) for c, n, z in DEFAULT_CAUSE_CODES)


def parse_cause_codes(data: Any) -> tuple[CauseCode, ...]:
    """A plant's cause list from parsed JSON/YAML: a non-empty list of ``{"code", "name", "name_zh"?}``
    with unique codes (``ValueError`` otherwise, naming the entry, so a typo stops the start-up)."""
    if not isinstance(data, list) or not data:
        raise ValueError("the cause-code file must hold a non-empty list of {code, name, name_zh?}")
    out: list[CauseCode] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        try:
            code = CauseCode.model_validate(item)
        except ValidationError as exc:
            raise ValueError(f"cause code #{i + 1}: {exc.errors()[0]['msg']}") from exc
        if code.code in seen:
            raise ValueError(f"cause code #{i + 1}: {code.code!r} is listed twice")
        seen.add(code.code)
        out.append(code)
    return tuple(out)


def load_cause_codes(path: str | Path | None) -> tuple[CauseCode, ...]:
    """``CPKMON_CAUSE_CODES_FILE``: JSON, or YAML for a ``.yaml``/``.yml`` file; None → the 5M1E default."""
    if path is None or str(path) == "":
        return default_cause_codes()
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml  # only plants with a YAML file need PyYAML

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    return parse_cause_codes(data)


# ------------------------------------------------------------------------------------ transitions, refusals


@dataclass(frozen=True, slots=True)
class Rejection:
    """An operator (or malformed) event the alarm's state refuses: nothing changed. ``status`` is the HTTP
    status the API answers with (409: the state does not allow it; 422: the request itself is wrong)."""

    reason: str
    detail: str
    event_id: str | None = None
    alarm_id: str | None = None
    kind: str | None = None

    @property
    def status(self) -> int:
        """409 or 422 (see the reason constants)."""
        return REJECTION_STATUS.get(self.reason, 422)


@dataclass(frozen=True, slots=True)
class Transition:
    """What one event (or a shelve's expiry) did to an alarm. Times are epoch seconds (event time).

    ``from_state == to_state`` is a transition too (a re-activation, a resolve, a re-shelve): the
    notification and KPI consumers want those. ``expiry``: a shelve that expired at its ``until`` before this
    event (KPI consumers observe it first)."""

    alarm_id: str
    line: str
    source: str
    characteristic: str | None
    kind: str  # an event kind, or SHELVE_EXPIRED
    from_state: str
    to_state: str
    at: float
    occurrence: int
    event_id: str | None = None
    by: str | None = None
    new_occurrence: bool = False  # an activation that opened an occurrence
    reactivation: bool = False  # an activation of an open occurrence (no new alarm)
    active: bool = False  # the condition after the transition
    active_since: float | None = None
    unack_since: float | None = None  # after the transition (None: nothing awaits an ack)
    ack_delay: float | None = None  # ack: seconds the alarm awaited it (time to acknowledge)
    until: float | None = None  # to_state shelved: the expiry
    severity: str | None = None
    expiry: Transition | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON document of the transition (RFC 3339 times), e.g. for a notification."""
        src: dict[str, Any] = {"kind": self.source}
        if self.characteristic is not None:
            src["characteristic"] = self.characteristic
        return {
            "alarm_id": self.alarm_id,
            "line": self.line,
            "source": src,
            "kind": self.kind,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "at": to_rfc3339(self.at),
            "occurrence": self.occurrence,
            "event_id": self.event_id,
            "by": self.by,
            "new_occurrence": self.new_occurrence,
            "reactivation": self.reactivation,
            "active": self.active,
            "severity": self.severity,
            "ack_delay": self.ack_delay,
            "until": to_rfc3339(self.until),
        }


# ------------------------------------------------------------------------------------------------ one alarm


@dataclass
class AlarmState:
    """One alarm: its ISA-18.2 state, its condition and its current (or last) occurrence."""

    alarm_id: str
    line: str
    source: str
    characteristic: str | None = None
    state: str = ALARM_NORMAL
    active: bool = False
    occurrence: int = 0
    open: bool = False  # the current occurrence has not reached normal yet
    reactivations: int = 0
    activated_at: float | None = None
    active_since: float | None = None
    cleared_at: float | None = None
    unack_since: float | None = None
    rules: list[int] = field(default_factory=list)
    severity: str | None = None
    value: float | None = None
    limit: float | None = None
    alert_id: str | None = None
    from_grade: dict[str, Any] | None = None
    to_grade: dict[str, Any] | None = None
    ack: dict[str, Any] | None = None  # by, at (epoch s), cause, comment
    resolution: dict[str, Any] | None = None  # by, at, action
    shelve: dict[str, Any] | None = None  # by, at, until, reason
    out_of_service: dict[str, Any] | None = None  # by, at, reason
    updated_at: float | None = None
    events: int = 0
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=DEDUP_EVENTS))

    # -- time

    def expiry_due(self, at: float) -> bool:
        """The alarm is shelved and its shelving has expired at ``at``."""
        return self.state == ALARM_SHELVED and self.shelve is not None and at >= self.shelve["until"]

    def _expire(self) -> Transition:
        """Apply the due shelve expiry, dated at ``until``."""
        assert self.shelve is not None
        until = float(self.shelve["until"])
        self.shelve = None
        if self.active:
            self.state, self.unack_since = ALARM_UNACK, until
        else:
            self._to_normal()
        self.updated_at = until
        return self._transition(SHELVE_EXPIRED, ALARM_SHELVED, until)

    def _to_normal(self) -> None:
        self.state, self.unack_since, self.open = ALARM_NORMAL, None, False

    def _transition(
        self, kind: str, before: str, at: float, ev: AlarmEvent | None = None, **kw: Any
    ) -> Transition:
        return Transition(
            alarm_id=self.alarm_id, line=self.line, source=self.source, characteristic=self.characteristic,
            kind=kind, from_state=before, to_state=self.state, at=at, occurrence=self.occurrence,
            event_id=None if ev is None else ev.event_id, by=None if ev is None else ev.by,
            active=self.active,
            active_since=self.active_since, unack_since=self.unack_since, severity=self.severity,
            until=None if self.shelve is None else float(self.shelve["until"]), **kw,
        )

    # -- events

    def refusal(self, ev: AlarmEvent, state: str, at: float, *, require_cause: bool,
                causes: frozenset[str] | None) -> tuple[str, str] | None:
        """(reason, detail) if ``ev`` is refused in ``state`` (the state after any due expiry)."""
        kind = ev.kind
        if kind == EV_ACK:
            if state not in (ALARM_UNACK, ALARM_RTN_UNACK):
                return NOT_ACKNOWLEDGEABLE, f"the alarm is {state}: only unack and rtn_unack take an ack"
            if require_cause and not ev.cause:
                return CAUSE_REQUIRED, "an acknowledgement needs a cause code (CPKMON_REQUIRE_CAUSE)"
            if ev.cause and causes is not None and ev.cause not in causes:
                return UNKNOWN_CAUSE, f"cause {ev.cause!r} is not in the plant's cause-code list"
        elif kind == EV_SHELVE:
            if state == ALARM_OUT_OF_SERVICE:
                return IS_OUT_OF_SERVICE, "the alarm is out of service: put it in service before shelving it"
            assert ev.until is not None  # the model requires it on a shelve
            if parse_ts(ev.until) <= at:
                return UNTIL_NOT_AFTER_AT, f"until {ev.until} is not after the shelve's time {ev.at}"
        elif kind == EV_UNSHELVE:
            if state != ALARM_SHELVED:
                return NOT_SHELVED, f"the alarm is {state}, not shelved"
        elif kind == EV_RESOLVE:
            if self.occurrence == 0 or self.ack is None:
                return NOT_ACKNOWLEDGED, "only an acknowledged occurrence can be resolved (ack it first)"
            if require_cause and not ev.action:
                return ACTION_REQUIRED, "a resolve needs the corrective action (CPKMON_REQUIRE_CAUSE)"
        elif kind == EV_OUT_OF_SERVICE:
            if state == ALARM_OUT_OF_SERVICE:
                return IS_OUT_OF_SERVICE, "the alarm is already out of service"
        elif kind == EV_IN_SERVICE:
            if state != ALARM_OUT_OF_SERVICE:
                return NOT_OUT_OF_SERVICE, f"the alarm is {state}, not out of service"
        elif kind not in ALARM_EVENT_KINDS:
            return UNKNOWN_KIND, f"unknown alarm event kind {kind!r}"
        return None

    def apply(
        self, ev: AlarmEvent, *, require_cause: bool = False, causes: frozenset[str] | None = None,
        clock: float | None = None,
    ) -> Transition | Rejection | None:
        """Apply one event (already validated, of this alarm). None: a duplicate, or a ``clear`` of an
        inactive condition (nothing to do). ``clock``: the history's latest event time so far (the book's):
        a shelving is judged expired at it even when this event is dated earlier (time does not run back)."""
        if ev.event_id in self.recent:
            return None
        at = parse_ts(ev.at)
        due = self.expiry_due(at if clock is None else max(at, clock))
        effective = (ALARM_UNACK if self.active else ALARM_NORMAL) if due else self.state
        refused = self.refusal(ev, effective, at, require_cause=require_cause, causes=causes)
        if refused is not None:
            return Rejection(reason=refused[0], detail=refused[1], event_id=ev.event_id,
                             alarm_id=self.alarm_id, kind=ev.kind)
        expiry = self._expire() if due else None
        before = self.state
        kw: dict[str, Any] = {}
        kind = ev.kind
        if kind == EV_ACTIVATE:
            kw = self._activate(ev, at)
        elif kind == EV_CLEAR:
            if not self.active:
                self.recent.append(ev.event_id)
                self.events += 1
                return expiry
            self.active, self.active_since, self.cleared_at = False, None, at
            if self.state == ALARM_UNACK:
                self.state = ALARM_RTN_UNACK
            elif self.state == ALARM_ACKED:
                self._to_normal()
        elif kind == EV_ACK:
            kw["ack_delay"] = None if self.unack_since is None else max(0.0, at - self.unack_since)
            self.ack = {"by": ev.by, "at": at, "cause": ev.cause, "comment": ev.comment}
            if self.state == ALARM_UNACK:
                self.state, self.unack_since = ALARM_ACKED, None
            else:  # rtn_unack
                self._to_normal()
        elif kind == EV_SHELVE:
            assert ev.until is not None
            self.shelve = {"by": ev.by, "at": at, "until": parse_ts(ev.until), "reason": ev.reason}
            self.state, self.unack_since = ALARM_SHELVED, None
        elif kind == EV_UNSHELVE:
            self.shelve = None
            self._return_to_service(at)
        elif kind == EV_RESOLVE:
            self.resolution = {"by": ev.by, "at": at, "action": ev.action}
        elif kind == EV_OUT_OF_SERVICE:
            self.out_of_service = {"by": ev.by, "at": at, "reason": ev.reason}
            self.shelve = None
            self.state, self.unack_since = ALARM_OUT_OF_SERVICE, None
        else:  # in_service
            self.out_of_service = None
            self._return_to_service(at)
        self.recent.append(ev.event_id)
        self.events += 1
        self.updated_at = at
        return self._transition(kind, before, at, ev, expiry=expiry, **kw)

    def _return_to_service(self, at: float) -> None:
        if self.active:
            self.state, self.unack_since = ALARM_UNACK, at
        else:
            self._to_normal()

    def _activate(self, ev: AlarmEvent, at: float) -> dict[str, Any]:
        if not self.active:
            self.active, self.active_since = True, at
        new = not self.open
        if new:
            self.occurrence += 1
            self.open, self.activated_at, self.reactivations = True, at, 0
            self.rules, self.ack, self.resolution = [], None, None
        else:
            self.reactivations += 1
        self.rules = sorted(set(self.rules) | set(ev.rules or ()))
        self.severity, self.value, self.limit, self.alert_id = ev.severity, ev.value, ev.limit, ev.alert_id
        self.from_grade = None if ev.from_grade is None else ev.from_grade.model_dump(mode="json")
        self.to_grade = None if ev.to_grade is None else ev.to_grade.model_dump(mode="json")
        if self.state == ALARM_NORMAL:
            self.state, self.unack_since = ALARM_UNACK, at
        elif self.state == ALARM_RTN_UNACK:
            self.state = ALARM_UNACK  # still awaiting the ack it awaited since unack_since
        return {"new_occurrence": new, "reactivation": not new}

    # -- documents

    def document(self, now: float | None = None) -> Alarm:
        """The alarm as the API serves it, with a shelve expiry due at ``now`` applied (without changing
        this state: a view is not an event)."""
        st = self
        if now is not None and self.expiry_due(now):
            st = copy.deepcopy(self)
            st._expire()

        def stamp(d: dict[str, Any] | None, *keys: str) -> dict[str, Any] | None:
            if d is None:
                return None
            return {k: (to_rfc3339(v) if k in keys else v) for k, v in d.items()}

        src: dict[str, Any] = {"kind": st.source}
        if st.characteristic is not None:
            src["characteristic"] = st.characteristic
        return Alarm.model_validate({
            "alarm_id": st.alarm_id, "line": st.line, "source": src, "state": st.state, "active": st.active,
            "occurrence": st.occurrence, "reactivations": st.reactivations,
            "activated_at": to_rfc3339(st.activated_at), "active_since": to_rfc3339(st.active_since),
            "cleared_at": to_rfc3339(st.cleared_at), "unack_since": to_rfc3339(st.unack_since),
            "rules": list(st.rules), "severity": st.severity, "value": st.value, "limit": st.limit,
            "alert_id": st.alert_id, "from_grade": st.from_grade, "to_grade": st.to_grade,
            "ack": stamp(st.ack, "at"), "resolution": stamp(st.resolution, "at"),
            "shelve": stamp(st.shelve, "at", "until"), "out_of_service": stamp(st.out_of_service, "at"),
            "updated_at": to_rfc3339(st.updated_at), "events": st.events,
        })

    def to_dict(self) -> dict[str, Any]:
        """Checkpoint form: JSON-able, exact (times as epoch-second floats)."""
        d = {k: getattr(self, k) for k in _STATE_FIELDS}
        d["rules"] = list(self.rules)
        d["recent"] = list(self.recent)
        for k in ("ack", "resolution", "shelve", "out_of_service", "from_grade", "to_grade"):
            d[k] = None if d[k] is None else dict(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlarmState:
        """Inverse of :meth:`to_dict`."""
        kw = {k: copy.deepcopy(d[k]) for k in _STATE_FIELDS if k in d}
        st = cls(**kw)
        st.recent = deque((str(e) for e in d.get("recent", ())), maxlen=DEDUP_EVENTS)
        return st


_STATE_FIELDS: tuple[str, ...] = (
    "alarm_id", "line", "source", "characteristic", "state", "active", "occurrence", "open", "reactivations",
    "activated_at", "active_since", "cleared_at", "unack_since", "rules", "severity", "value", "limit",
    "alert_id", "from_grade", "to_grade", "ack", "resolution", "shelve", "out_of_service", "updated_at",
    "events",
)


# -------------------------------------------------------------------------------------------- all alarms


class AlarmBook:
    """The alarms of a partition or of the whole plant, built by applying ``cpkmon.alarm-events`` in order.

    ``require_cause`` (``CPKMON_REQUIRE_CAUSE``) and ``cause_codes`` (the plant's list; an ack naming
    another code is refused) are configuration, not state: replicas must share them to agree."""

    def __init__(
        self, *, require_cause: bool = False, cause_codes: Iterable[CauseCode] | None = None
    ) -> None:
        self.require_cause = require_cause
        self.cause_codes: tuple[CauseCode, ...] = (
            default_cause_codes() if cause_codes is None else tuple(cause_codes)
        )
        self._codes = frozenset(c.code for c in self.cause_codes)
        self.alarms: dict[str, AlarmState] = {}
        # the latest event time the history has reached (refused events included): a view or an expiry at an
        # earlier ``now`` is taken at this time instead, because event times are not monotonic across sources
        # (the worker dates events in event time, the API its operator events) and time never runs back
        self.clock: float | None = None

    def _now(self, now: float | None) -> float | None:
        """``now`` moved up to the book's clock; None (no time: the stored state as it is) stays None."""
        if now is None or self.clock is None:
            return now
        return max(now, self.clock)

    @staticmethod
    def parse(event: Mapping[str, Any] | AlarmEvent) -> AlarmEvent | Rejection:
        """Validate an event document; a :class:`Rejection` (``invalid_event`` / ``alarm_id_mismatch``)
        when it is not a well-formed event of the alarm it names."""
        if isinstance(event, AlarmEvent):
            ev = event
        else:
            try:
                ev = AlarmEvent.model_validate(event)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raw_id = event.get("event_id") if isinstance(event, Mapping) else None
                detail = f"{where}: {first['msg']}" if where else str(first["msg"])
                return Rejection(reason=INVALID_EVENT, detail=detail,
                                 event_id=raw_id if isinstance(raw_id, str) else None)
        try:
            expected = alarm_id(ev.line, ev.source.kind, ev.source.characteristic)
        except ValueError as exc:
            return Rejection(reason=INVALID_EVENT, detail=str(exc), event_id=ev.event_id, kind=ev.kind)
        if ev.alarm_id != expected:
            return Rejection(reason=ALARM_ID_MISMATCH,
                             detail=f"alarm_id should be {expected} for this source",
                             event_id=ev.event_id, alarm_id=ev.alarm_id, kind=ev.kind)
        return ev

    def _state_for(self, ev: AlarmEvent) -> AlarmState:
        st = self.alarms.get(ev.alarm_id)
        if st is None:
            st = AlarmState(alarm_id=ev.alarm_id, line=ev.line, source=ev.source.kind,
                            characteristic=ev.source.characteristic)
        return st

    def apply(self, event: Mapping[str, Any] | AlarmEvent) -> Transition | Rejection | None:
        """Apply the next event of the history: the transition it caused, a :class:`Rejection` (state
        unchanged), or None (a duplicate, or a clear of an inactive condition)."""
        ev = self.parse(event)
        if isinstance(ev, Rejection):
            return ev
        at = parse_ts(ev.at)
        self.clock = at if self.clock is None else max(self.clock, at)
        st = self._state_for(ev)
        out = st.apply(ev, require_cause=self.require_cause, causes=self._codes, clock=self.clock)
        if not isinstance(out, Rejection) and ev.alarm_id not in self.alarms and st.events:
            self.alarms[ev.alarm_id] = st
        return out

    def check(self, event: Mapping[str, Any] | AlarmEvent) -> Transition | Rejection | None:
        """What :meth:`apply` would return, without changing anything (the API's pre-check before it
        writes an operator event)."""
        ev = self.parse(event)
        if isinstance(ev, Rejection):
            return ev
        st = copy.deepcopy(self._state_for(ev))
        at = parse_ts(ev.at)
        clock = at if self.clock is None else max(self.clock, at)
        return st.apply(ev, require_cause=self.require_cause, causes=self._codes, clock=clock)

    def expire(self, now: float) -> list[Transition]:
        """Apply every shelve expiry due at ``now`` (ordered by ``until``, then alarm id). Optional: the
        expiry would be applied at the alarm's next event anyway, dated ``until`` either way; a consumer that
        notifies or counts transitions calls this as its event time advances."""
        if self.clock is not None:
            now = max(now, self.clock)
        due = sorted((float(st.shelve["until"]), aid) for aid, st in self.alarms.items()
                     if st.expiry_due(now) and st.shelve is not None)
        return [self.alarms[aid]._expire() for _, aid in due]

    def view(self, now: float | None = None) -> list[Alarm]:
        """Every alarm's document at ``now`` (shelve expiry applied, nothing changed), by line then id."""
        order = sorted(self.alarms, key=lambda a: (self.alarms[a].line, a))
        now = self._now(now)
        return [self.alarms[k].document(now) for k in order]

    def get(self, alarm_id_: str, now: float | None = None) -> Alarm | None:
        """One alarm's document at ``now``, None if it never had an event."""
        st = self.alarms.get(alarm_id_)
        return None if st is None else st.document(self._now(now))

    def to_dict(self) -> dict[str, Any]:
        """Checkpoint: JSON-able; :meth:`from_dict` restores a book that continues identically."""
        return {"version": ALARM_STATE_VERSION, "clock": self.clock,
                "alarms": {k: self.alarms[k].to_dict() for k in sorted(self.alarms)}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, require_cause: bool = False,
                  cause_codes: Sequence[CauseCode] | None = None) -> AlarmBook:
        """Inverse of :meth:`to_dict` (configuration passed again: it is not state)."""
        if d.get("version") != ALARM_STATE_VERSION:
            raise ValueError(f"unsupported alarm state version {d.get('version')!r}")
        book = cls(require_cause=require_cause, cause_codes=cause_codes)
        book.alarms = {str(k): AlarmState.from_dict(v) for k, v in d["alarms"].items()}
        clock = d.get("clock")
        book.clock = None if clock is None else float(clock)
        return book
