"""The Faust app: the worker process, its lifecycle, signals and web server (health and metrics).

The ingest loop runs as a ``mode`` service inside the Faust worker (see :mod:`cpkmon.stream.worker` for why
it is not a per-message agent). Faust's web server answers on ``CPKMON_WORKER_HOST:CPKMON_WORKER_PORT`` —
loopback by default, since Faust itself would bind every interface.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
import mode
import orjson

from cpkmon.kafka_security import faust_credentials
from cpkmon.settings import Settings
from cpkmon.stream.worker import Worker

log = logging.getLogger("cpkmon.worker")


class IngestService(mode.Service):
    """Starts the worker after the app, runs its loop, and checkpoints on the way out."""

    def __init__(self, worker: Worker, **kwargs: Any) -> None:
        self.worker = worker
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.worker.start()

    @mode.Service.task
    async def _ingest(self) -> None:
        await self.worker.run()

    async def on_stop(self) -> None:
        await self.worker.stop()


def create_app(settings: Settings, worker: Worker | None = None) -> tuple[faust.App, Worker]:
    worker = worker or Worker(settings)
    data_dir = settings.data_dir / "worker"
    data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        "cpkmon-faust",
        broker=[f"kafka://{hp}" for hp in settings.bootstrap_servers()],
        broker_credentials=faust_credentials(settings),  # Faust's own clients: same TLS/SASL as ours
        web_host=settings.worker_host,
        web_bind=settings.worker_host,
        web_port=settings.worker_port,
        datadir=str(data_dir),
        autodiscover=False,
        topic_partitions=settings.partitions,
        broker_session_timeout=settings.session_timeout_ms / 1000.0,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000.0,
        producer_acks=-1,
        store="memory://",
    )

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        snap = worker.snapshot()
        return web.json(
            {
                "status": "ok",
                "ready": worker.ready.is_set(),
                "partitions": sorted(snap.machines),
                "lines": snap.lines,
                "specs": len(worker.specs),
                "events": worker.metrics.snapshot(),
                "uptime_s": round(time.monotonic() - worker.started_at, 3),
                "first_event_s": None
                if worker.first_event_at is None
                else round(worker.first_event_at - worker.started_at, 3),
            }
        )

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ok = worker.ready.is_set()
        return web.json({"ready": ok}, status=200 if ok else 503)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # formatted by prometheus_client in the negotiated format; aiohttp refuses a charset inside
        # content_type, so the exposition's Content-Type header goes in whole
        out = worker.metrics.exposition(
            request.headers.get("Accept"),
            request.headers.get("Accept-Encoding"),
            {"name[]": request.query.getall("name[]", [])},
        )
        return web.bytes(out.body, headers=out.headers())

    @app.page("/debug/state/{line}")
    async def state(web: Any, request: Any, line: str) -> Any:
        doc = worker.line_status(line)
        if doc is not None:
            return web.bytes(orjson.dumps(doc), content_type="application/json")
        return web.json({"detail": f"line {line} is not held by this worker"}, status=404)

    return app, worker


def run_worker(settings: Settings, loglevel: str = "warn") -> None:
    """Run one worker in the foreground until SIGINT/SIGTERM (checkpoints on the way out)."""
    import mode.loop

    try:
        import uvloop  # noqa: F401

        mode.loop.use("uvloop")
    except ImportError:
        pass
    app, worker = create_app(settings)
    faust_worker = faust.Worker(
        app,
        IngestService(worker),
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,
    )
    faust_worker.execute_from_commandline()
