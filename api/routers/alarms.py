"""``/api/v1/alarms``: ISA-18.2 alarm states and the operator's lifecycle actions; ``/api/v1/causes``.

The states are the view's fold of ``cpkmon.alarm-events`` (:class:`cpkmon.alerts.alarms.AlarmBook`), served
at the API's ``now`` (shelve expiry applied), so every replica and a restarted API answer the same. A write
(ack, shelve, unshelve, resolve, out-of-service, in-service) is an operator event on that same topic:

1. the book's :meth:`~cpkmon.alerts.alarms.AlarmBook.check` judges it first (409 when the state does not
   allow it, 422 when the request is wrong — e.g. an ack without a cause under ``CPKMON_REQUIRE_CAUSE``);
2. it is produced (key = line, ``by`` = the caller: the API key's name or the trusted identity header) and
   the answer waits until this API's view has read it back, like a spec PUT;
3. the audit record (``alarm.<kind>``, before/after = the alarm document) is appended under the audit lock,
   which is held across 1–3, so two writes through one API are judged in the order they are written.

Two replicas racing can still both pass step 1; the topic then orders them and the fold rejects the loser
on every replica alike. The loser's request learns it when it reads its event back (409, no audit record:
nothing changed).
"""

from __future__ import annotations

import copy
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cpkmon.alerts.alarm_kpis import (
    CHATTER_COUNT,
    CHATTER_WINDOW,
    FLOOD_END,
    FLOOD_THRESHOLD,
    STALE_AFTER,
    TARGET_FLOOD_FRACTION,
    TARGET_PER_10MIN,
    TARGET_TOP10_SHARE,
)
from cpkmon.alerts.alarms import AlarmBook, Rejection, alarm_event
from cpkmon.alerts.model import (
    ALARM_SOURCE_KINDS,
    ALARM_STATES,
    EV_ACK,
    EV_IN_SERVICE,
    EV_OUT_OF_SERVICE,
    EV_RESOLVE,
    EV_SHELVE,
    EV_UNSHELVE,
    Alarm,
    AlarmKpiReport,
    AlarmKpiTargets,
    CauseCode,
)
from cpkmon.api.audit import AuditDep, IdentityDep
from cpkmon.api.deps import CallerDep, ViewDep, WriterDep, require_ready
from cpkmon.api.models import IDENT_PATTERN, problem_responses
from cpkmon.api.problems import Problem
from cpkmon.api.view import View
from cpkmon.api.writer import Writer
from cpkmon.capability.timeutil import parse_ts, to_rfc3339

router = APIRouter(tags=["alarms"])

#: The longest shelving accepted (ISA-18.2 §11: shelving is time-limited). 30 days.
MAX_SHELVE_SECONDS = 30 * 24 * 3600.0
_TEXT = 2000

AlarmIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the alarm's id (32 hex)")]


class AckIn(BaseModel):
    """``POST /api/v1/alarms/{id}/ack``: the assignable cause (a code of ``GET /api/v1/causes``)."""

    model_config = ConfigDict(extra="forbid")
    cause: str | None = Field(default=None, max_length=64, description="cause code", examples=["machine"])
    comment: str | None = Field(default=None, max_length=_TEXT, examples=["tool worn on S10"])


class ShelveIn(BaseModel):
    """``POST /api/v1/alarms/{id}/shelve``: exactly one of ``until`` (RFC 3339) and ``minutes``."""

    model_config = ConfigDict(extra="forbid")
    until: str | None = Field(default=None, description="RFC 3339", examples=["2026-12-01T18:00:00Z"])
    minutes: float | None = Field(default=None, gt=0, le=MAX_SHELVE_SECONDS / 60, examples=[60])
    reason: str | None = Field(default=None, max_length=_TEXT, examples=["gauge recalibration"])

    @model_validator(mode="after")
    def _one(self) -> ShelveIn:
        if (self.until is None) == (self.minutes is None):
            raise ValueError("give exactly one of until and minutes")
        if self.until is not None:
            try:
                parse_ts(self.until)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"until: not an RFC 3339 time: {exc}") from exc
        return self


class ResolveIn(BaseModel):
    """``POST /api/v1/alarms/{id}/resolve``: the corrective action taken."""

    model_config = ConfigDict(extra="forbid")
    action: str | None = Field(default=None, max_length=_TEXT, examples=["replaced the insert"])


class ReasonIn(BaseModel):
    """``POST /api/v1/alarms/{id}/out-of-service``: why."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=_TEXT, examples=["line stopped for maintenance"])


def _choice(values: tuple[str, ...]) -> str:
    return "^(" + "|".join(values) + ")$"


@router.get(
    "/api/v1/alarms",
    operation_id="listAlarms",
    summary="Current alarm states (ISA-18.2), by line then id",
    response_model=list[Alarm],
    responses=problem_responses(422, 503),
)
async def list_alarms(
    view: ViewDep,
    line: Annotated[str | None, Query(pattern=IDENT_PATTERN, description="only this line")] = None,
    state: Annotated[str | None, Query(pattern=_choice(ALARM_STATES), description="only this state")] = None,
    kind: Annotated[
        str | None, Query(pattern=_choice(ALARM_SOURCE_KINDS), description="only this source kind")
    ] = None,
) -> list[Alarm]:
    """Every alarm that ever had an event, at the API's now (a shelving whose ``until`` passed has
    expired)."""
    require_ready(view)
    docs = view.alarm_book.view(view.alarm_now())
    return [
        d for d in docs
        if (line is None or d.line == line) and (state is None or d.state == state)
        and (kind is None or d.source.kind == kind)
    ]


@router.get(
    "/api/v1/alarms/kpis",
    operation_id="getAlarmKpis",
    summary="The ISA-18.2 alarm-system KPIs (what /metrics exports), as one document",
    response_model=AlarmKpiReport,
    responses=problem_responses(503),
)
async def alarm_kpis(view: ViewDep) -> AlarmKpiReport:
    """The view's KPI report at the API's now, with the targets it is judged against: the dashboard reads
    this rather than parsing the Prometheus exposition. Declared before ``/alarms/{alarm_id}`` so that
    ``kpis`` is never taken for an (invalid) alarm id."""
    require_ready(view)
    doc = view.alarm_report().to_dict()
    doc["now"] = to_rfc3339(doc["now"])
    doc["targets"] = AlarmKpiTargets(
        per_10min=TARGET_PER_10MIN, per_10min_max=2.0, flood_threshold=FLOOD_THRESHOLD, flood_end=FLOOD_END,
        flood_fraction=TARGET_FLOOD_FRACTION, top10_share=TARGET_TOP10_SHARE, stale_after_s=STALE_AFTER,
        chatter_count=CHATTER_COUNT, chatter_window_s=CHATTER_WINDOW,
    )
    return AlarmKpiReport.model_validate(doc)


@router.get(
    "/api/v1/alarms/{alarm_id}",
    operation_id="getAlarm",
    summary="One alarm's current state",
    response_model=Alarm,
    responses=problem_responses(404, 422, 503),
)
async def get_alarm(alarm_id: AlarmIdPath, view: ViewDep) -> Alarm:
    require_ready(view)
    doc = view.alarm_book.get(alarm_id, view.alarm_now())
    if doc is None:
        raise Problem(404, f"no alarm {alarm_id!r}")
    return doc


@router.get(
    "/api/v1/causes",
    operation_id="listCauses",
    summary="The plant's assignable-cause codes (CPKMON_CAUSE_CODES_FILE; default 5M1E)",
    response_model=list[CauseCode],
)
async def list_causes(view: ViewDep) -> list[CauseCode]:
    return list(view.cause_codes)


def _predict(book: AlarmBook, event: dict[str, Any], now: float) -> Alarm | None:
    """The alarm document ``event`` leads to, folded on a copy (what every replica's view will hold)."""
    ev = book.parse(event)
    if isinstance(ev, Rejection):
        return None
    st = book.alarms.get(ev.alarm_id)
    if st is None:
        return None
    st = copy.deepcopy(st)
    out = st.apply(ev, require_cause=book.require_cause, causes=frozenset(c.code for c in book.cause_codes))
    return None if isinstance(out, Rejection) else st.document(now)


async def _operate(
    kind: str, alarm_id: str, view: View, writer: Writer, audit: AuditDep, who: str, **fields: Any
) -> Alarm:
    """Check, write, read back and audit one operator event (see the module docstring)."""
    require_ready(view)
    async with audit.change(who, f"alarm.{kind}", alarm_id) as change:
        st = view.alarm_book.alarms.get(alarm_id)
        if st is None:
            raise Problem(404, f"no alarm {alarm_id!r}")
        # dated at the API's now, never before the latest event seen: on a compressed clock (the demo) an
        # ack lands after the activation it answers and "shelve 60 minutes" means 60 minutes of plant time
        now = view.alarm_now()
        if fields.get("until") is not None and parse_ts(fields["until"]) - now > MAX_SHELVE_SECONDS:
            raise Problem(422, "a shelving may last at most 30 days", reason="until_too_far")
        event = alarm_event(
            kind, line=st.line, source=st.source, characteristic=st.characteristic, at=now, by=who,
            event_id=uuid.uuid4().hex, **fields,
        )
        before = view.alarm_book.get(alarm_id, now)
        verdict = view.alarm_book.check(event)
        if isinstance(verdict, Rejection):
            raise Problem(verdict.status, verdict.detail, reason=verdict.reason)
        predicted = _predict(view.alarm_book, event, now)
        await writer.alarm_event(st.line, orjson.dumps(event))
        lost = view.alarm_rejections.get(event["event_id"])
        if lost is not None:  # another replica's event got there first
            raise Problem(lost.status, f"refused once written: {lost.detail}", reason=lost.reason)
        current = view.alarm_book.alarms.get(alarm_id)
        after = (
            view.alarm_book.get(alarm_id, view.alarm_now())
            if current is not None and event["event_id"] in current.recent
            else predicted  # not read back within CPKMON_API_WRITE_WAIT_MS: what the fold will give
        )
        change.before = None if before is None else before.model_dump(mode="json")
        change.after = {
            "event": event, "alarm": None if after is None else after.model_dump(mode="json"),
        }
    assert after is not None
    return after


_WRITE = problem_responses(401, 403, 404, 409, 422, 503)


@router.post("/api/v1/alarms/{alarm_id}/ack", operation_id="ackAlarm", response_model=Alarm,
             summary="Acknowledge an alarm with an assignable cause", responses=_WRITE)
async def ack_alarm(
    alarm_id: AlarmIdPath, view: ViewDep, writer: WriterDep, caller: CallerDep, audit: AuditDep,
    who: IdentityDep, body: Annotated[AckIn | None, Body()] = None,
) -> Alarm:
    """unack → acked, rtn_unack → normal. With ``CPKMON_REQUIRE_CAUSE=true`` the cause is mandatory (422)."""
    body = body or AckIn()
    return await _operate(EV_ACK, alarm_id, view, writer, audit, who, cause=body.cause, comment=body.comment)


@router.post("/api/v1/alarms/{alarm_id}/shelve", operation_id="shelveAlarm", response_model=Alarm,
             summary="Shelve an alarm until a time (at most 30 days)", responses=_WRITE)
async def shelve_alarm(
    alarm_id: AlarmIdPath, view: ViewDep, writer: WriterDep, caller: CallerDep, audit: AuditDep,
    who: IdentityDep, body: Annotated[ShelveIn, Body()],
) -> Alarm:
    """Suppressed until ``until`` (or ``minutes`` from now); the condition keeps being tracked, and at the
    expiry the alarm is unack if its condition is active, else normal."""
    until = body.until if body.until is not None else to_rfc3339(view.alarm_now() + (body.minutes or 0) * 60)
    return await _operate(EV_SHELVE, alarm_id, view, writer, audit, who, until=until, reason=body.reason)


@router.post("/api/v1/alarms/{alarm_id}/unshelve", operation_id="unshelveAlarm", response_model=Alarm,
             summary="Unshelve an alarm", responses=_WRITE)
async def unshelve_alarm(
    alarm_id: AlarmIdPath, view: ViewDep, writer: WriterDep, caller: CallerDep, audit: AuditDep,
    who: IdentityDep,
) -> Alarm:
    return await _operate(EV_UNSHELVE, alarm_id, view, writer, audit, who)


@router.post("/api/v1/alarms/{alarm_id}/resolve", operation_id="resolveAlarm", response_model=Alarm,
             summary="Record the corrective action of an acknowledged occurrence", responses=_WRITE)
async def resolve_alarm(
    alarm_id: AlarmIdPath, view: ViewDep, writer: WriterDep, caller: CallerDep, audit: AuditDep,
    who: IdentityDep, body: Annotated[ResolveIn | None, Body()] = None,
) -> Alarm:
    """Allowed once the occurrence was acknowledged (409 before); the action is mandatory (422) with
    ``CPKMON_REQUIRE_CAUSE=true``."""
    body = body or ResolveIn()
    return await _operate(EV_RESOLVE, alarm_id, view, writer, audit, who, action=body.action)


@router.post("/api/v1/alarms/{alarm_id}/out-of-service", operation_id="removeAlarmFromService",
             response_model=Alarm, summary="Take an alarm out of service", responses=_WRITE)
async def out_of_service(
    alarm_id: AlarmIdPath, view: ViewDep, writer: WriterDep, caller: CallerDep, audit: AuditDep,
    who: IdentityDep, body: Annotated[ReasonIn | None, Body()] = None,
) -> Alarm:
    """E.g. a characteristic under maintenance or a line stopped; the condition keeps being tracked."""
    body = body or ReasonIn()
    return await _operate(EV_OUT_OF_SERVICE, alarm_id, view, writer, audit, who, reason=body.reason)


@router.post("/api/v1/alarms/{alarm_id}/in-service", operation_id="returnAlarmToService",
             response_model=Alarm, summary="Return an alarm to service", responses=_WRITE)
async def in_service(
    alarm_id: AlarmIdPath, view: ViewDep, writer: WriterDep, caller: CallerDep, audit: AuditDep,
    who: IdentityDep,
) -> Alarm:
    """unack if its condition is active, else normal."""
    return await _operate(EV_IN_SERVICE, alarm_id, view, writer, audit, who)
