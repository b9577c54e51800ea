"""``cpkmon up``: the whole stack on one box — embedded broker (unless CPKMON_BROKER is set), worker, API.

Each part runs as its own child process (the same processes production runs), supervised here: if one dies,
the rest are stopped and ``up`` exits non-zero, rather than leaving a half-working stack behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

import typer

from cpkmon.broker import EmbeddedBroker, free_port
from cpkmon.kafka_security import require_broker
from cpkmon.settings import get_settings
from cpkmon.simulate import DEFAULT_TIME_SCALE


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cpkmon.cli", *args], env=env, start_new_session=True)


def _name(p: subprocess.Popen[bytes]) -> str:
    args = p.args
    return " ".join(str(a) for a in args[3:]) if isinstance(args, list) else str(args)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def up(
    demo: bool = typer.Option(False, "--demo", help="also run a simulated plant (cpkmon simulate)"),
    lines: int = typer.Option(4, min=1, help="simulated lines with --demo"),
    rate: float = typer.Option(400.0, min=0, help="simulated events per second at most with --demo"),
    time_scale: float = typer.Option(
        DEFAULT_TIME_SCALE,
        "--time-scale",
        min=0,
        help="with --demo: the plant's event time runs N× faster than the wall clock (see cpkmon simulate)",
    ),
    duration: float = typer.Option(0.0, min=0, help="stop after this many seconds (0 = until interrupted)"),
) -> None:
    """Start the embedded broker, a worker and the API (and with --demo a simulated plant)."""
    settings = get_settings()
    env = dict(os.environ)
    broker: EmbeddedBroker | None = None
    procs: list[subprocess.Popen[bytes]] = []
    stop_requested = False

    def _on_signal(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if not settings.broker and settings.kafka_security_protocol != "PLAINTEXT":
        # the embedded broker speaks plaintext only (README, Security): refuse rather than start a stack
        # whose every client fails its TLS or SASL handshake
        raise SystemExit(
            f"error: CPKMON_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs CPKMON_BROKER "
            "(the embedded broker speaks PLAINTEXT only)"
        )
    if settings.broker:
        require_broker(settings)  # a wrong CA or password: one clear line now, not three dying children
    try:
        if not settings.broker:
            port = settings.embedded_broker_port
            try:
                broker = EmbeddedBroker(port=port).start()
            except (RuntimeError, TimeoutError):
                broker = EmbeddedBroker(port=free_port()).start()
                typer.echo(f"port {port} is busy: embedded broker moved to {broker.port}")
            env["CPKMON_BROKER"] = f"kafka://{broker.bootstrap}"
            # Tansu makes a group join wait half the session timeout (SPEC §10): keep joins short here.
            env.setdefault("CPKMON_SESSION_TIMEOUT_MS", "2000")
            env.setdefault("CPKMON_HEARTBEAT_INTERVAL_MS", "500")
            typer.echo(f"embedded broker (Tansu, memory only) on {env['CPKMON_BROKER']}")
        procs.append(_spawn(["worker"], env))
        procs.append(_spawn(["api"], env))
        api = f"http://{settings.api_host}:{settings.api_port}"
        worker = f"http://{settings.worker_host}:{settings.worker_port}"
        if demo:
            sim = ["simulate", "--lines", str(lines), "--rate", str(rate), "--time-scale", str(time_scale)]
            procs.append(_spawn(sim, env))
        if _wait_http(f"{api}/healthz", 20):
            typer.echo(f"dashboard  {api}/\nAPI        {api}/docs")
            typer.echo(f"metrics    {api}/metrics  (worker: {worker}/metrics)")
        else:
            typer.echo(f"the API did not answer on {api} within 20 s", err=True)
        start = time.monotonic()
        while not stop_requested:
            for p in procs:
                if p.poll() is not None:
                    typer.echo(f"{_name(p)} exited with status {p.returncode}: stopping", err=True)
                    raise typer.Exit(1)
            if duration and time.monotonic() - start >= duration:
                break
            time.sleep(0.2)
    finally:
        _stop(procs)
        if broker is not None:
            broker.stop()
