"""``cpkmon api``: serve the HTTP API (view, SSE, metrics, dashboard) with uvicorn."""

from __future__ import annotations

import typer

from cpkmon.settings import get_settings


def api(
    host: str = typer.Option("", help="address to bind; default CPKMON_API_HOST (127.0.0.1)"),
    port: int = typer.Option(0, help="port; default CPKMON_API_PORT (8000)"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Run the API against CPKMON_BROKER (or the embedded broker). Ready once /readyz answers 200."""
    import uvicorn

    from cpkmon.api.app import create_app

    settings = get_settings()
    app = create_app(settings)
    typer.echo(
        f"cpkmon api on http://{host or settings.api_host}:{port or settings.api_port} "
        f"(broker {','.join(settings.bootstrap_servers())})"
    )
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=log_level,
        timeout_graceful_shutdown=3,
    )
