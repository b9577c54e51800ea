"""``cpkmon worker``: one stream worker (several may run; they split the partitions)."""

from __future__ import annotations

import typer

from cpkmon.settings import get_settings


def worker(
    loglevel: str = typer.Option("warn", help="crit|error|warn|info|debug"),
) -> None:
    """Consume the input topics, keep every line's capability, yield and grade, publish status and alerts."""
    from cpkmon.kafka_security import require_broker
    from cpkmon.stream.app import run_worker
    from cpkmon.topics import TopicConflict, ensure_topics_sync

    settings = get_settings()
    # A wrong CA, client certificate or SASL password: one line naming the broker and the cause, exit 1
    require_broker(settings)
    # Topics first, before Faust starts: input topics that disagree stop here with the fix and nothing
    # written, as a plain message rather than a service traceback (Worker.start checks again).
    try:
        ensure_topics_sync(settings).check()
    except TopicConflict as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception:  # broker not reachable yet: the worker's own start retries and reports it
        pass
    run_worker(settings, loglevel=loglevel)
