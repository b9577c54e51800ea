"""A real Prometheus scrapes the running API and answers a query with the test line's Cpk."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import Publisher, serve, wait_until
from statusdocs import status

from cpkmon.api.app import create_app
from cpkmon.broker import free_port
from cpkmon.settings import Settings

PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None and not os.environ.get("CI"), reason="prometheus binary not installed")
def test_prometheus_scrapes_the_api(settings: Settings, publish: Publisher, tmp_path: Path) -> None:
    assert PROMETHEUS is not None, "CI is set: the prometheus binary must be installed"
    doc = status("Lprom", chars=2, cpks=[1.234, 1.5])
    publish.status(doc)
    with serve(create_app(settings)) as base:
        wait_until(lambda: httpx.get(base + "/api/v1/lines/Lprom").status_code == 200)
        target = base.removeprefix("http://")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: cpkmon\n    static_configs:\n      - targets: ['{target}']\n"
        )
        port = free_port()
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/api/v1/query"

            def cpk() -> float | None:
                try:
                    r = httpx.get(url, params={"query": 'cpkmon_cpk{line="Lprom",characteristic="char_0"}'})
                except httpx.HTTPError:
                    return None
                result = r.json().get("data", {}).get("result", []) if r.status_code == 200 else []
                return float(result[0]["value"][1]) if result else None

            t0 = time.monotonic()
            value = wait_until(cpk, timeout=30, interval=0.25)
            assert value == pytest.approx(1.234, rel=1e-12)
            assert time.monotonic() - t0 < 30
            r = httpx.get(url, params={"query": 'cpkmon_line_grade{line="Lprom"}'}).json()
            assert float(r["data"]["result"][0]["value"][1]) == 3
        finally:
            proc.terminate()
            proc.wait(timeout=10)
