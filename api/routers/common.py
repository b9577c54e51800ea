"""Helpers shared by the routers: conditional GET and path identifiers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import Response

from cpkmon.api.models import IDENT_PATTERN

LinePath = Annotated[str, Path(pattern=IDENT_PATTERN, description="line id (SPEC §1)", examples=["L1"])]
CharPath = Annotated[
    str, Path(pattern=IDENT_PATTERN, description="characteristic id (SPEC §1)", examples=["bore_diameter"])
]


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    tags = [t.strip() for t in if_none_match.split(",")]
    return etag in tags or f"W/{etag}" in tags


def json_or_304(request: Request, body: bytes, etag: str) -> Response:
    """200 with the body and its strong ETag, or 304 when the client already holds it."""
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    inm = request.headers.get("if-none-match")
    if inm is not None and _matches(inm, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
