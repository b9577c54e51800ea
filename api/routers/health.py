"""``/healthz`` (the process answers) and ``/readyz`` (the view has caught up with the topics)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cpkmon.api.deps import ViewDep
from cpkmon.api.models import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="Liveness", response_model=Health)
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness: 200 once the view has caught up, 503 before",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "still catching up"}},
)
async def readyz(view: ViewDep) -> JSONResponse:
    """Caught up = on every partition of the status, alert, ack and spec topics the view's position reached
    the high watermark seen in fetch responses. Once ready it stays ready (it keeps serving what it has while
    a broker hiccups); ``caught_up`` and ``lag_seconds`` say how fresh it is right now, and ``reason`` why
    the view cannot read (e.g. "cannot connect to Kafka broker …: TLS: the broker's certificate is not
    trusted …")."""
    body = Readiness(
        ready=view.ready,
        caught_up=view.caught_up,
        lag_seconds=round(view.lag_seconds, 3),
        lines=len(view.lines),
        alerts=len(view.alerts),
        specs=len(view.specs),
        reason=view.broker_error,
    )
    return JSONResponse(body.model_dump(), status_code=200 if view.ready else 503)
