"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

Integrators (MES, Grafana, scripts) get one error shape for everything — our own 404/401/403, FastAPI's
request validation errors and anything unexpected — so they never have to parse two formats.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from a route to answer with a problem document (status, title, detail, optional extensions)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extensions)
    return Response(
        orjson.dumps(body, default=str), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _validation_detail(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """One human sentence (the reason) plus a JSON-safe list of the individual errors."""
    parts: list[str] = []
    clean: list[dict[str, Any]] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"] or [str(p) for p in err.get("loc", ())]
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        where = ".".join(loc)
        parts.append(f"{where}: {msg}" if where else msg)
        clean.append({"loc": loc, "msg": msg, "type": str(err.get("type", ""))})
    return "; ".join(parts) or "invalid request", clean


def install(app: FastAPI) -> None:
    """Route every error through :func:`problem_response`."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> Response:
        return problem_response(
            exc.status, exc.detail, title=exc.title, type_=exc.type, headers=exc.headers, **exc.extensions
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else orjson.dumps(exc.detail).decode()
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer to a body it cannot even decode: to a client that is a malformed body like any
            # other, so it gets the same 422 as invalid JSON
            return problem_response(422, "the body is not valid JSON", title="Invalid request")
        return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        detail, errors = _validation_detail(list(exc.errors()))
        return problem_response(422, detail, title="Invalid request", errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(500, "internal error; see the server log")
