"""``/api/v1/alerts``: the cursor-paged alert feed, its live SSE stream, and acknowledgements."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Header, Path, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from cpkmon.alerts.model import AUDIT_ALERT_ACK
from cpkmon.api import cursor as cursors
from cpkmon.api.audit import AuditDep, IdentityDep
from cpkmon.api.deps import CallerDep, SettingsDep, ViewDep, WriterDep, require_ready
from cpkmon.api.models import IDENT_PATTERN, AckRecord, AckRequest, AlertPage, problem_responses
from cpkmon.api.problems import Problem
from cpkmon.capability.timeutil import to_rfc3339

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

SinceQuery = Annotated[
    str | None,
    Query(
        max_length=64_000,
        description="cursor from a previous page's `next`; omit to start at the oldest alert",
    ),
]
LineQuery = Annotated[str | None, Query(pattern=IDENT_PATTERN, description="only this line's alerts")]


def _decode(token: str | None) -> dict[int, int]:
    try:
        return cursors.decode(token)
    except ValueError as exc:
        raise Problem(400, f"bad cursor: {exc}", title="Bad cursor") from exc


@router.get(
    "",
    operation_id="listAlerts",
    summary="Alerts after a cursor, oldest first",
    response_model=AlertPage,
    response_model_exclude_unset=True,  # items as stored: no invented nulls for fields an alert type lacks
    responses=problem_responses(400, 422, 503),
)
async def list_alerts(
    view: ViewDep,
    since: SinceQuery = None,
    line: LineQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    """Poll with the returned ``next`` and every alert comes exactly once — also across API restarts and
    replicas: the cursor holds, per partition of the alerts topic, the offset already delivered, and an
    alert's place is the offset of its FIRST appearance (a republished duplicate is never shown again). Within
    a page, alerts are ordered by record time, then partition and offset. Each item carries its ack (or null).
    """
    require_ready(view)
    items, nxt = view.alerts_page(_decode(since), line, limit)
    return AlertPage.model_validate({"items": items, "next": cursors.encode(nxt)})


@router.get(
    "/stream",
    operation_id="streamAlerts",
    summary="Server-sent events: new alerts, status changes, acks",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "an endless event stream"},
        **problem_responses(400, 422),
    },
)
async def stream_alerts(
    request: Request,
    view: ViewDep,
    settings: SettingsDep,
    line: LineQuery = None,
    since: SinceQuery = None,
    last_event_id: Annotated[str | None, Header(max_length=64_000)] = None,
) -> EventSourceResponse:
    """``event: alert`` (data = the alert with its ack; ``id`` = the cursor after it, so a reconnecting client
    sends ``Last-Event-ID`` and gets what it missed), ``event: status`` (data = the line's list row;
    ``{"line": L, "removed": true}`` when deleted) and ``event: ack``. Status events are coalesced per line; a
    client too slow for its alert queue (``CPKMON_API_SSE_QUEUE``) is disconnected and resumes from its
    Last-Event-ID. A client that connects while the view is still catching up is held (pings only) until it
    has: an EventSource gives up for good on a non-200 answer, so the stream never answers 503."""
    token = last_event_id or since
    resume = _decode(token) if token else None

    async def events() -> AsyncIterator[ServerSentEvent]:
        while not view.ready:
            await view.wait_ready(5.0)
        sub, backlog = view.subscribe(line, resume)
        try:
            for entry in backlog:
                sub.cursor[entry.partition] = max(sub.cursor.get(entry.partition, -1), entry.offset)
                yield ServerSentEvent(
                    data=orjson.dumps(view.alert_item(entry)).decode(),
                    event="alert",
                    id=cursors.encode(sub.cursor),
                )
            while True:
                await sub.wake.wait()
                sub.wake.clear()
                if sub.overflowed:
                    return
                while sub.alerts:
                    entry = sub.alerts.popleft()
                    sub.cursor[entry.partition] = max(sub.cursor.get(entry.partition, -1), entry.offset)
                    yield ServerSentEvent(
                        data=orjson.dumps(view.alert_item(entry)).decode(),
                        event="alert",
                        id=cursors.encode(sub.cursor),
                    )
                status, sub.status = sub.status, {}
                for name, row in status.items():
                    data = row if row is not None else {"line": name, "removed": True}
                    yield ServerSentEvent(data=orjson.dumps(data).decode(), event="status")
                acks, sub.acks = sub.acks, []
                for ack in acks:
                    yield ServerSentEvent(data=orjson.dumps(ack).decode(), event="ack")
        finally:
            view.unsubscribe(sub)

    return EventSourceResponse(events(), ping=15, send_timeout=30)


@router.post(
    "/{alert_id}/ack",
    operation_id="ackAlert",
    summary="Acknowledge an alert (kept in Kafka)",
    response_model=AckRecord,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def ack_alert(
    alert_id: Annotated[str, Path(min_length=1, max_length=256)],
    view: ViewDep,
    writer: WriterDep,
    settings: SettingsDep,
    caller: CallerDep,
    audit: AuditDep,
    who: IdentityDep,
    body: Annotated[AckRequest | None, Body()] = None,
) -> AckRecord:
    """Who acknowledged (the API key's name), when, and why. The ack record goes to the acks topic (key =
    alert id), so it survives restarts and every replica shows it; acking again replaces the comment."""
    require_ready(view)  # whether the alert exists is only known once the view has read the topic
    if alert_id not in view.alerts:
        raise Problem(404, f"no alert {alert_id!r}")
    record = AckRecord(
        alert_id=alert_id, by=caller, at=to_rfc3339(time.time()) or "", comment=body.comment if body else None
    )
    async with audit.change(who, AUDIT_ALERT_ACK, alert_id) as change:
        change.before = view.acks.get(alert_id)  # the ack it replaces, if any
        await writer.send(settings.topic_acks, alert_id, orjson.dumps(record.model_dump()))
        change.after = record.model_dump()
    return record
