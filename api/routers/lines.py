"""``/api/v1/lines``: the status of every line, and one line's full status document."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cpkmon.api.deps import ViewDep
from cpkmon.api.models import LineRow, LineStatus, problem_responses
from cpkmon.api.problems import Problem
from cpkmon.api.routers.common import LinePath, json_or_304

router = APIRouter(prefix="/api/v1/lines", tags=["lines"])

_ETAG = {"ETag": {"description": "strong entity tag of the body", "schema": {"type": "string"}}}


@router.get(
    "",
    operation_id="listLines",
    summary="Every line's grade and headline figures",
    response_model=list[LineRow],
    responses={200: {"headers": _ETAG}, 304: {"description": "not modified (If-None-Match)"}},
)
async def list_lines(request: Request, view: ViewDep) -> Response:
    """Sorted by line. Conditional: send the last ``ETag`` as ``If-None-Match`` to get 304 when nothing
    changed."""
    body, etag = view.list_body()
    return json_or_304(request, body, etag)


@router.get(
    "/{line}",
    operation_id="getLine",
    summary="A line's status document as the worker published it",
    response_model=LineStatus,
    responses={
        200: {"headers": _ETAG},
        304: {"description": "not modified (If-None-Match)"},
        **problem_responses(404, 422),
    },
)
async def get_line(request: Request, line: LinePath, view: ViewDep) -> Response:
    """The stored bytes are served as is (no re-encoding): cheap, and the ETag is a hash of exactly them."""
    entry = view.lines.get(line)
    if entry is None:
        raise Problem(404, f"no line {line!r}")
    return json_or_304(request, entry.body, entry.etag)
