"""``GET /api/v1/audit``: the audit trail, oldest first, cursor-paged like the alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, ValidationError

from cpkmon.alerts.model import AuditRecord
from cpkmon.api import cursor as cursors
from cpkmon.api.audit import AuditDep
from cpkmon.api.models import problem_responses
from cpkmon.api.problems import Problem

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditPage(BaseModel):
    """One page of ``GET /api/v1/audit``: the records exactly as stored (recompute a ``hash`` with the
    canonical JSON of the other fields), oldest first."""

    items: list[AuditRecord]
    next: str = Field(description="opaque cursor: pass it as `since` to get the records after this page")


@router.get(
    "",
    operation_id="listAudit",
    summary="Audit records after a cursor, oldest first",
    response_model=AuditPage,
    # records exactly as stored: a field the record lacks (``chain`` of the API's records) is not added as
    # null, which would change what a client hashes
    response_model_exclude_unset=True,
    responses=problem_responses(400, 422, 503),
)
async def list_audit(
    audit: AuditDep,
    since: Annotated[
        str | None,
        Query(max_length=64_000, description="cursor from a previous page's `next`; omit: the oldest record"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Who changed what, when, with the value before and after: spec writes and deletions, re-baselines,
    acknowledgements. Read from the ``cpkmon.audit`` topic on every call, so any replica answers a cursor
    alike. ``cpkmon audit verify`` checks the chain; this endpoint only serves it."""
    try:
        start = cursors.decode(since)
    except ValueError as exc:
        raise Problem(400, f"bad cursor: {exc}", title="Bad cursor") from exc
    docs, delivered = await audit.page(start, limit)
    items = []
    for doc in docs:
        try:
            items.append(AuditRecord.model_validate(doc))
        except ValidationError:  # not a record cpkmon wrote: skipped here, named by `cpkmon audit verify`
            continue
    return AuditPage(items=items, next=cursors.encode(delivered))
