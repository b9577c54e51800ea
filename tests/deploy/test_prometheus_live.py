"""The shipped rules in a real Prometheus: it scrapes a live target on loopback, evaluates recording.yml and
alerts.yml (with `for` shortened in a tmp copy), and the grade-drop alert goes pending/firing when a line's
grade falls 4 → 2 and its degradation counter increments — and not while the grade is steady.

Two targets: a small prometheus_client HTTP server driven by the test, and the real `cpkmon api` process
reading status and alert documents from a real (embedded) broker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pytest
from deploy_helpers import Prometheus, require_binary, wait_for
from deploy_helpers import http_get as _get
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from cpkmon.broker import free_port

ALERT = "CpkmonLineGradeDropped"
DEADLINE_S = 60.0


class Target(Protocol):
    address: str

    def set_grade(self, level: int) -> None: ...
    def degrade(self) -> None: ...


# ---- a fake target: prometheus_client exposition served over real HTTP -------------------------------------


class FakeApi:
    """Serves cpkmon_line_grade{line} and cpkmon_grade_degradations_total{line} as the API would."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.grade = Gauge("cpkmon_line_grade", "grade", ["line"], registry=self.registry)
        self.degradations = Counter(
            "cpkmon_grade_degradations", "degradations", ["line"], registry=self.registry
        )
        self.grade.labels(line="L1").set(4)
        self.degradations.labels(line="L1").inc(0)  # the API exports 0 for every known line
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set_grade(self, level: int) -> None:
        self.grade.labels(line="L1").set(level)

    def degrade(self) -> None:
        self.degradations.labels(line="L1").inc()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- the real API: `cpkmon api` against an embedded broker -------------------------------------------------


class RealApi:
    def __init__(self, bootstrap: str, workdir: Path) -> None:
        from kafka import KafkaProducer

        from cpkmon.settings import Settings
        from cpkmon.topics import ensure_topics_sync

        self.settings = Settings(broker=f"kafka://{bootstrap}", partitions=2, data_dir=workdir / "api")
        ensure_topics_sync(self.settings)
        self.producer = KafkaProducer(bootstrap_servers=[bootstrap], acks="all")
        self.set_grade(4)
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CPKMON_")}
        env.update(
            CPKMON_BROKER=self.settings.broker or "",
            CPKMON_PARTITIONS="2",
            CPKMON_API_HOST="127.0.0.1",
            CPKMON_API_PORT=str(port),
            CPKMON_API_KEYS="live-test-key",
            CPKMON_DATA_DIR=str(workdir / "api"),
        )
        self.log = (workdir / "api.log").open("wb")
        cli = shutil.which("cpkmon")
        cmd = [cli, "api"] if cli else [sys.executable, "-m", "cpkmon.cli", "api"]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for(
                lambda: self._alive() and _get(f"http://{self.address}/readyz")[0] == 200,
                "cpkmon api /readyz",
                30,
            )
        except AssertionError:
            self.close()
            raise AssertionError((workdir / "api.log").read_text(errors="replace")[-3000:]) from None

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"cpkmon api exited with {self.proc.returncode}")
        return True

    def _send(self, topic: str, key: str, doc: dict[str, Any]) -> None:
        self.producer.send(topic, key=key.encode(), value=json.dumps(doc).encode()).get(timeout=10)

    def set_grade(self, level: int) -> None:
        names = {2: "inspection", 4: "prevention"}
        self._send(self.settings.topic_line_status, "L1", {
            "line": "L1", "grade": {"level": level, "name": names[level]}, "cpk": None, "rty": None,
            "sigma_level": None, "updated_at": "2026-11-24T08:00:00.000Z",
            "characteristics": [], "stations": [],
        })  # fmt: skip

    def degrade(self) -> None:
        self._send(self.settings.topic_alerts, "L1", {
            "alert_id": "live-test-degradation-1", "type": "grade_degraded", "line": "L1",
            "from_grade": {"level": 4, "name": "prevention"}, "to_grade": {"level": 2, "name": "inspection"},
            "limiting": {"criterion": "cpk", "subject": "bore_diameter", "value": 1.1, "threshold": 1.33},
            "cpk": 1.1, "rty": None, "sigma_level": None,
            "event_time": "2026-11-24T08:00:00.000Z", "detected_at": "2026-11-24T08:00:00.000Z",
        })  # fmt: skip

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.producer.close()
        self.log.close()


# ---- the test ----------------------------------------------------------------------------------------------


@pytest.fixture(params=["fake-target", pytest.param("cpkmon-api", marks=pytest.mark.broker)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    require_binary("prometheus")
    if request.param == "fake-target":
        fake = FakeApi()
        yield fake
        fake.close()
        return
    try:
        import cpkmon.api.app  # noqa: F401
    except ModuleNotFoundError as exc:
        pytest.skip(f"cpkmon.api cannot build an app yet ({exc})")
    from cpkmon.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        real = RealApi(broker.bootstrap, tmp_path)
        try:
            yield real
        finally:
            real.close()


@pytest.mark.timeout(150)
def test_grade_drop_alert_fires_in_a_real_prometheus(target: Target, tmp_path: Path) -> None:
    prom = Prometheus(tmp_path / "prom", target.address)
    try:
        deadline = time.monotonic() + DEADLINE_S
        # steady grade 4: scraped, recorded, and no alert
        wait_for(lambda: prom.value("cpkmon:line_grade:min").get("L1") == 4.0, "cpkmon:line_grade:min = 4",
                 deadline - time.monotonic())  # fmt: skip
        wait_for(lambda: "L1" in prom.value("cpkmon:grade_degradations:increase15m"), "increase15m recorded",
                 deadline - time.monotonic())  # fmt: skip
        time.sleep(3)  # a few more scrape/evaluation rounds (for: 2s) with nothing wrong
        assert prom.alerts(ALERT) == [], "the alert must not fire while the grade is steady"
        assert prom.value("cpkmon:grade_drop:15m") == {}

        target.set_grade(2)
        target.degrade()
        states: list[str] = []

        def alert_state() -> str | None:
            found = [a for a in prom.alerts(ALERT) if a["labels"].get("line") == "L1"]
            if found:
                states.append(found[0]["state"])
                return found[0]["state"] if found[0]["state"] == "firing" else None
            return None

        wait_for(alert_state, f"{ALERT} firing", max(deadline - time.monotonic(), 1))
        assert set(states) <= {"pending", "firing"}
        (alert,) = [a for a in prom.alerts(ALERT) if a["labels"].get("line") == "L1"]
        assert alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["runbook_url"].endswith("#runbook-cpkmonlinegradedropped")
        # the degradation was seen through the counter (the grade series is too young for the offset path)
        assert prom.value("cpkmon:grade_degradations:increase15m")["L1"] > 0
        assert prom.value("cpkmon:line_grade:min")["L1"] == 2.0
    finally:
        prom.close()
