"""The app factory: one ``create_app(settings)`` builds a self-contained service (its own view, writer and
metrics registry on ``app.state``), so tests run several side by side in one process."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cpkmon.api.audit import AuditLog
from cpkmon.api.deps import parse_keys
from cpkmon.api.metrics import build_registry
from cpkmon.api.problems import install as install_problems
from cpkmon.api.routers import alarms, alerts, audit, health, lines, metrics, specs
from cpkmon.api.view import View
from cpkmon.api.writer import Writer
from cpkmon.settings import Settings, get_settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """\
Process capability, control charts, yield and the MIIT quality grade of every line, served from a
materialized view of the cpkmon output topics. Every error is RFC 9457 `application/problem+json`.
Writes (specs, acks, re-baseline) need `Authorization: Bearer <key>` with a key from `CPKMON_API_KEYS`.
"""


def _dashboard_router() -> object | None:
    """The control-room page lives in its own module (another owner); include it when it is there."""
    try:
        module = importlib.import_module("cpkmon.api.routers.dashboard")
    except ModuleNotFoundError as exc:
        if exc.name != "cpkmon.api.routers.dashboard":
            raise
        return None
    return getattr(module, "router", None)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    view = View(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await view.start()
        try:
            yield
        finally:
            await app.state.writer.close()
            await app.state.audit.close()
            await view.stop()

    app = FastAPI(
        title="cpkmon",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "lines", "description": "line status documents"},
            {"name": "alerts", "description": "grade and out-of-control alerts, acks, live stream"},
            {"name": "alarms", "description": "ISA-18.2 alarm states, operator actions, cause codes"},
            {"name": "specs", "description": "characteristic specifications"},
            {"name": "audit", "description": "the hash-chained audit trail of changes"},
            {"name": "health", "description": "liveness and readiness"},
            {"name": "metrics", "description": "Prometheus"},
        ],
    )
    app.state.settings = settings
    app.state.view = view
    app.state.writer = Writer(settings, view)
    app.state.audit = AuditLog(settings)
    app.state.registry = build_registry(view)
    app.state.api_keys = parse_keys(settings.api_keys)
    install_problems(app)
    for module in (lines, alerts, alarms, specs, audit, health, metrics):
        app.include_router(module.router)
    dashboard = _dashboard_router()
    if dashboard is not None:
        app.include_router(dashboard)  # type: ignore[arg-type]
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
