"""``cpkmon broker``: run the embedded Tansu broker in the foreground."""

from __future__ import annotations

import signal
import threading

import typer

from cpkmon.broker import EmbeddedBroker
from cpkmon.settings import get_settings


def broker(
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback unless told otherwise)"),
    port: int = typer.Option(0, help="port; 0 = CPKMON_EMBEDDED_BROKER_PORT"),
) -> None:
    """Run the embedded broker (Tansu, memory storage) until interrupted."""
    settings = get_settings()
    b = EmbeddedBroker(host=host, port=port or settings.embedded_broker_port, quiet=False).start()
    typer.echo(f"embedded broker on kafka://{b.bootstrap} (memory storage: a restart loses every topic)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if b.process is None or b.process.poll() is not None:
                raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()
