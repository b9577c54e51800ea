"""``cpkmon api``: the command serves the app with uvicorn on CPKMON_API_HOST:CPKMON_API_PORT."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
from conftest import wait_until

from cpkmon.broker import EmbeddedBroker, free_port


def test_cpkmon_api_command(session_broker: EmbeddedBroker) -> None:
    port = free_port()
    prefix = f"cmd{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        CPKMON_BROKER=f"kafka://{session_broker.bootstrap}",
        CPKMON_API_PORT=str(port),
        CPKMON_TOPIC_LINE_STATUS=f"{prefix}.line-status",
        CPKMON_TOPIC_ALERTS=f"{prefix}.alerts",
        CPKMON_TOPIC_ACKS=f"{prefix}.acks",
        CPKMON_TOPIC_SPECS=f"{prefix}.specs",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpkmon.cli", "api", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(base + "/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=20, interval=0.1)
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        assert httpx.get(base + "/openapi.json").json()["info"]["title"] == "cpkmon"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert f"127.0.0.1:{port}".encode() in out
