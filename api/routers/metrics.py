"""``/metrics``: Prometheus text format from the app-owned registry (see :mod:`cpkmon.api.metrics`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from cpkmon.api.deps import RegistryDep
from cpkmon.api.metrics import CONTENT_TYPE, render

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics (SPEC §7)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format 0.0.4"}},
)
async def metrics(registry: RegistryDep) -> Response:
    return Response(render(registry), media_type=CONTENT_TYPE)
