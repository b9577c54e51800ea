"""``cpkmon worker``: one stream worker (several may run; they split the partitions)."""

from __future__ import annotations

import typer

from cpkmon.settings import get_settings


def worker(
    loglevel: str = typer.Option("warn", help="crit|error|warn|info|debug"),
) -> None:
    """Consume the input topics, keep every line's capability, yield and grade, publish status and alerts."""
    from cpkmon.stream.app import run_worker

    run_worker(get_settings(), loglevel=loglevel)
