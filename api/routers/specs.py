"""``/api/v1/specs/{line}/{characteristic}``: read, write and delete specifications, request a re-baseline.

Specs live in the compacted ``cpkmon.specs`` topic (key ``line/characteristic``); the worker consumes it. The
API validates a spec (SPEC §2) before producing it, so bad input gets a 422 with the reason instead of
reaching the worker's dead-letter topic.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Response

from cpkmon.alerts.model import AUDIT_LIMITS_REBASELINE, AUDIT_SPEC_DELETE, AUDIT_SPEC_PUT
from cpkmon.api.audit import AuditDep, IdentityDep
from cpkmon.api.deps import CallerDep, SettingsDep, ViewDep, WriterDep, require_ready
from cpkmon.api.models import BaselineRequest, Spec, SpecIn, problem_responses
from cpkmon.api.problems import Problem
from cpkmon.api.routers.common import CharPath, LinePath
from cpkmon.capability.timeutil import to_rfc3339

router = APIRouter(prefix="/api/v1/specs", tags=["specs"])


def _spec_or_404(view: ViewDep, line: str, characteristic: str) -> Spec:
    require_ready(view)  # "no such spec" is only known once the view has read the topic
    entry = view.specs.get((line, characteristic))
    if entry is None:
        raise Problem(404, f"no spec for {line}/{characteristic}")
    return Spec.model_validate(entry.doc)


def _spec_doc(view: ViewDep, line: str, characteristic: str) -> dict[str, Any] | None:
    """The spec as the view holds it, for an audit record's ``before`` (None: none, or not read yet)."""
    entry = view.specs.get((line, characteristic))
    return dict(entry.doc) if entry is not None else None


def _control_limits(view: ViewDep, line: str, characteristic: str) -> Any:
    """The characteristic's frozen control limits from the line's status (an audit record's ``before`` for a
    re-baseline; None when the line or its limits are not known yet)."""
    entry = view.lines.get(line)
    if entry is None:
        return None
    try:
        status = orjson.loads(entry.body)
    except orjson.JSONDecodeError:
        return None
    for char in status.get("characteristics") or ():
        if isinstance(char, dict) and char.get("characteristic") == characteristic:
            return char.get("control")
    return None


@router.get(
    "/{line}/{characteristic}",
    operation_id="getSpec",
    summary="A characteristic's specification",
    response_model=Spec,
    response_model_exclude_none=True,
    responses=problem_responses(404, 422, 503),
)
async def get_spec(line: LinePath, characteristic: CharPath, view: ViewDep) -> Spec:
    return _spec_or_404(view, line, characteristic)


@router.put(
    "/{line}/{characteristic}",
    operation_id="putSpec",
    summary="Create or replace a specification",
    response_model=Spec,
    response_model_exclude_none=True,
    responses=problem_responses(401, 403, 422, 503),
)
async def put_spec(
    line: LinePath,
    characteristic: CharPath,
    spec: Annotated[SpecIn, Body()],
    view: ViewDep,
    writer: WriterDep,
    settings: SettingsDep,
    caller: CallerDep,
    audit: AuditDep,
    who: IdentityDep,
) -> Spec:
    """At least one of lsl/usl, lsl < usl, finite numbers, a target within the limits, subgroup_size 1..25
    (default ``CPKMON_SUBGROUP_SIZE``), sigma > 0; anything else is 422 with the reason. Answers once the
    broker acknowledged the record."""
    for name, given, path in (
        ("line", spec.line, line),
        ("characteristic", spec.characteristic, characteristic),
    ):
        if given is not None and given != path:
            raise Problem(
                422, f"body {name} {given!r} differs from the path's {path!r}", title="Invalid spec"
            )
    doc = Spec(
        line=line,
        characteristic=characteristic,
        lsl=spec.lsl,
        usl=spec.usl,
        target=spec.target,
        subgroup_size=spec.subgroup_size or settings.subgroup_size,
        center=spec.center,
        sigma=spec.sigma,
    )
    after = doc.model_dump(exclude_none=True)
    async with audit.change(who, AUDIT_SPEC_PUT, f"{line}/{characteristic}") as c:
        c.before = _spec_doc(view, line, characteristic)  # under the audit lock: no change in between
        await writer.send(settings.topic_specs, f"{line}/{characteristic}", orjson.dumps(after))
        c.after = after
    return doc


@router.delete(
    "/{line}/{characteristic}",
    operation_id="deleteSpec",
    summary="Remove a specification (a tombstone in the specs topic)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def delete_spec(
    line: LinePath,
    characteristic: CharPath,
    view: ViewDep,
    writer: WriterDep,
    settings: SettingsDep,
    caller: CallerDep,
    audit: AuditDep,
    who: IdentityDep,
) -> Response:
    before = _spec_or_404(view, line, characteristic).model_dump(exclude_none=True)
    async with audit.change(who, AUDIT_SPEC_DELETE, f"{line}/{characteristic}", before):
        await writer.send(settings.topic_specs, f"{line}/{characteristic}", None)
    return Response(status_code=204)


@router.post(
    "/{line}/{characteristic}/baseline",
    operation_id="rebaseline",
    summary="Re-baseline the control limits from the current window",
    status_code=202,
    response_model=BaselineRequest,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def rebaseline(
    line: LinePath,
    characteristic: CharPath,
    view: ViewDep,
    writer: WriterDep,
    caller: CallerDep,
    audit: AuditDep,
    who: IdentityDep,
) -> BaselineRequest:
    """Produces a command ``{"line", "characteristic", "command": "rebaseline", "requested_at"}`` to the
    commands topic (``CPKMON_TOPIC_COMMANDS``, key = line); the worker that owns the line applies it once (a
    restart never applies it again) and re-freezes the chart limits (202: accepted, the new limits show
    in the line's status once the worker applied it). Never written to the compacted specs topic: there its
    key would be the spec's and compaction would keep the command instead of the spec."""
    _spec_or_404(view, line, characteristic)
    req = BaselineRequest(
        line=line, characteristic=characteristic, requested_at=to_rfc3339(time.time()) or ""
    )
    before = _control_limits(view, line, characteristic)
    async with audit.change(who, AUDIT_LIMITS_REBASELINE, f"{line}/{characteristic}", before) as c:
        await writer.command(line, orjson.dumps(req.model_dump()))
        c.after = req.model_dump()  # the request: the new limits show once the worker applied it
    return req
