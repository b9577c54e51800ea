"""``/metrics``: the app-owned registry in the format the scraper negotiates, formatted by prometheus_client.

Collected in the event loop (the view is only consistent there), formatted in a thread of the threadpool:
50 000 series take 0.2–0.5 s of pure-Python formatting, which would otherwise hold the event loop — every
other request and SSE stream — for as long (in the thread they share the CPU with it instead). See
:mod:`cpkmon.exposition` for the negotiation and :mod:`cpkmon.api.metrics` for the collector.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, CONTENT_TYPE_PLAIN_1_0_0
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from starlette.concurrency import run_in_threadpool

from cpkmon.api.deps import RegistryDep
from cpkmon.exposition import expose, freeze, select

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics (SPEC §7)",
    description=(
        "Text format 0.0.4 by default; OpenMetrics 1.0.0 or text 1.0.0 when `Accept` asks for them "
        "(prometheus_client's negotiation); gzip when `Accept-Encoding` allows it."
    ),
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_PLAIN_0_0_4: {}, CONTENT_TYPE_PLAIN_1_0_0: {}, OPENMETRICS: {}},
            "description": "Prometheus exposition",
        }
    },
)
async def metrics(
    request: Request,
    registry: RegistryDep,
    names: Annotated[
        list[str] | None,
        Query(alias="name[]", description="only these series (e.g. `cpkmon_cpk`); all if absent"),
    ] = None,
) -> Response:
    frozen = freeze(select(registry, {"name[]": names or []}))
    out = await run_in_threadpool(
        expose, frozen, request.headers.get("accept"), request.headers.get("accept-encoding")
    )
    return Response(out.body, headers=out.headers())
