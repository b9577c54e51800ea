"""``cpkmon notify``: deliver alarm transitions to webhooks (README "Notifications")."""

from __future__ import annotations

from pathlib import Path

import typer

from cpkmon.settings import get_settings


def notify(
    config: Path | None = typer.Option(
        None, "--config", help="endpoint file (YAML/JSON); default CPKMON_NOTIFY_CONFIG"
    ),
    port: int | None = typer.Option(
        None, "--port", help="/metrics port on CPKMON_NOTIFY_HOST; default CPKMON_NOTIFY_PORT, 0: none"
    ),
    start: str = typer.Option(
        "earliest",
        "--start",
        help="where a new consumer group starts: earliest (nothing lost) or latest (a first deployment "
        "onto a long alarm history); a group with committed offsets always resumes from them",
    ),
    group: str = typer.Option("cpkmon-notify", "--group", help="consumer group"),
    loglevel: str = typer.Option("info", help="crit|error|warn|info|debug"),
) -> None:
    """Deliver every alarm transition of cpkmon.alarm-events to the configured webhooks, at least once."""
    import asyncio
    import contextlib
    import signal

    from prometheus_client import CollectorRegistry, start_http_server

    from cpkmon.kafka_security import require_broker
    from cpkmon.notify.config import ConfigError, load
    from cpkmon.notify.service import Notifier, configure_logging
    from cpkmon.topics import ensure_topics

    settings = get_settings()
    path = config or settings.notify_config
    if path is None:
        typer.echo("error: no endpoint file: set CPKMON_NOTIFY_CONFIG or pass --config", err=True)
        raise typer.Exit(2)
    if start not in ("earliest", "latest"):
        typer.echo("error: --start is earliest or latest", err=True)
        raise typer.Exit(2)
    try:
        cfg = load(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(loglevel)  # the scrubbing log format (the file registered its secrets with it)
    require_broker(settings)  # a wrong CA or password: one line naming the broker and the cause, exit 1
    # The worker normally creates the topic; a notifier started first creates it once the input topics exist
    # (their partition count). Not allowed to create topics: the consumer waits for it.
    with contextlib.suppress(Exception):
        asyncio.run(ensure_topics(settings, only=[settings.topic_alarm_events], own_count=False))
    registry = CollectorRegistry()
    metrics_port = settings.notify_port if port is None else port
    notifier = Notifier(settings, cfg, registry, group=group, start=start)
    if metrics_port:
        try:
            start_http_server(metrics_port, addr=settings.notify_host, registry=registry)
        except OSError as exc:
            typer.echo(
                f"error: cannot serve /metrics on {settings.notify_host}:{metrics_port}: "
                f"{exc.strerror or exc} (CPKMON_NOTIFY_PORT, or --port 0 for none)",
                err=True,
            )
            raise typer.Exit(2) from None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, notifier.stop)
        await notifier.run()

    asyncio.run(main())
