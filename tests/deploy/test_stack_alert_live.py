"""The grade-drop alert end to end on a real stack: the real `prometheus` binary, with the SHIPPED rule files,
scraping a real worker and a real API on loopback, sees CpkmonLineGradeDropped go pending/firing when a line's
process degrades — and not before.

Nothing is faked between the measurements and Prometheus: a Tansu broker, ``cpkmon worker`` and ``cpkmon api``
as processes; specs and measurements produced with kafka-python; the worker computes Cpk, grades the line and
raises ``grade_degraded``; the API exports ``cpkmon_line_grade`` and ``cpkmon_grade_degradations_total``;
Prometheus evaluates recording.yml and alerts.yml (``for`` shortened in a tmp copy, PromQL unchanged). Last,
the worker's own /metrics must have been scraped as well (``up{job="cpkmon-worker"}``, its event counters).

The line's data are deterministic (the recipe of line D4 in tests/stream/plantdata.py): every subgroup of five
is ``mean + z·h`` for z = −2..2 with h = (10/9)·d2(5)/4, so R = (10/9)·d2(5) and σ_within = R/d2(5) = 10/9
exactly. Spec 10..20: mean 15 → Cpk = 5/(3·10/9) = 1.5 (grade 3, assurance); then the mean steps to 13 →
once the 25-subgroup window holds only new subgroups Cpk = 3/(3·10/9) = 0.9 (grade 1, experience).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import Prometheus, require_binary, wait_for

from cpkmon.broker import EmbeddedBroker
from tests.stream.harness import Feed, base_env, start_api, start_worker

pytestmark = pytest.mark.broker

ALERT = "CpkmonLineGradeDropped"
LINE, CHARACTERISTIC = "P7", "torque"
LSL, USL, TARGET = 10.0, 20.0, 15.0
D2_5 = 2.3259289  # d2 for subgroups of five
HALF = (10.0 / 9.0) * D2_5 / 4  # subgroup values mean ± {0, h, 2h}: R = 4h, σ_within = R/d2 = 10/9
CAPABLE_MEAN, DEGRADED_MEAN = 15.0, 13.0  # Cpk 1.5 (grade 3) → 0.9 (grade 1)
CAPABLE_SUBGROUPS = 24  # ≥ min_subgroups (20): graded
DEGRADED_SUBGROUPS = 30  # > window_subgroups (25): the window holds only the degraded process
PARTITIONS = 8  # CPKMON_PARTITIONS default: the topics the worker creates
ALERT_DEADLINE_S = 90.0


def subgroups(feed: Feed, first: int, count: int, mean: float) -> None:
    t0 = int(time.time() * 1000)
    for sg in range(first, first + count):
        for k, z in enumerate((-2.0, -1.0, 0.0, 1.0, 2.0)):
            feed.add(
                "measurement",
                {
                    "event_id": f"{LINE}-{sg}-{k}",
                    "ts": t0 + (sg - first) * 50 + k,
                    "line": LINE,
                    "station": "S40",
                    "characteristic": CHARACTERISTIC,
                    "value": mean + z * HALF,
                    "subgroup": f"{LINE}-{sg}",
                },
            )


def line_status(api: Any) -> dict[str, Any] | None:
    try:
        return api.get(f"/api/v1/lines/{LINE}")  # type: ignore[no-any-return]
    except OSError:
        return None


@pytest.mark.timeout(150)
def test_grade_drop_alert_fires_through_prometheus_on_a_real_stack(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    require_binary("prometheus")
    env = base_env(broker.bootstrap, tmp_path, CPKMON_PARTITIONS=str(PARTITIONS))
    with contextlib.ExitStack() as stack:  # stops whatever started, in reverse order
        worker = start_worker(env, tmp_path)
        stack.callback(worker.stop)
        api = start_api(env, tmp_path)
        stack.callback(api.stop)
        prom = Prometheus(
            tmp_path / "prom",
            {"cpkmon-api": [f"127.0.0.1:{api.port}"], "cpkmon-worker": [f"127.0.0.1:{worker.port}"]},
        )
        stack.callback(prom.close)
        started = time.monotonic()

        # ---- a capable line: grade 3 in the worker, the API and Prometheus; no alert -------------------
        feed = Feed(PARTITIONS)
        feed.spec(line=LINE, characteristic=CHARACTERISTIC, lsl=LSL, usl=USL, target=TARGET, subgroup_size=5)
        subgroups(feed, 0, CAPABLE_SUBGROUPS, CAPABLE_MEAN)
        feed.produce(broker.bootstrap)
        doc = wait_for(
            lambda: (d := line_status(api)) and d["grade"] and d["grade"]["level"] == 3 and d,
            f"{LINE} graded 3 by the worker, seen by the API",
            30,
        )
        assert doc["cpk"] == pytest.approx(1.5, rel=1e-6), doc["cpk"]
        wait_for(
            lambda: prom.value("cpkmon:line_grade:min").get(LINE) == 3.0, "cpkmon:line_grade:min = 3", 30
        )
        wait_for(
            lambda: prom.value("cpkmon:grade_degradations:increase15m").get(LINE) == 0.0,
            "cpkmon:grade_degradations:increase15m = 0 recorded",
            30,
        )
        assert prom.value('up{job="cpkmon-api"}', "job") == {"cpkmon-api": 1.0}
        time.sleep(4)  # a few more scrape/evaluation rounds (`for: 2s`) with nothing wrong
        assert [a for a in prom.alerts(ALERT) if a["labels"].get("line") == LINE] == [], (
            "the grade-drop alert must be neither pending nor firing while the line is steady"
        )
        assert LINE not in prom.value("cpkmon:grade_drop:15m")
        print(f"\nsteady phase verified {time.monotonic() - started:.1f} s after Prometheus was ready")

        # ---- the process degrades: the grade falls, and Prometheus alerts ------------------------------
        feed = Feed(PARTITIONS)
        subgroups(feed, CAPABLE_SUBGROUPS, DEGRADED_SUBGROUPS, DEGRADED_MEAN)
        degraded_at = time.monotonic()
        feed.produce(broker.bootstrap)
        states: list[tuple[float, str]] = []  # (seconds after the degraded data, state) at each change

        def alert_state() -> str | None:
            found = [a for a in prom.alerts(ALERT) if a["labels"].get("line") == LINE]
            if not found:
                return None
            state = str(found[0]["state"])
            if not states or states[-1][1] != state:
                states.append((round(time.monotonic() - degraded_at, 1), state))
            return state

        first = wait_for(alert_state, f"{ALERT} pending or firing for {LINE}", ALERT_DEADLINE_S)
        seen_after = time.monotonic() - degraded_at
        assert first in ("pending", "firing"), states
        wait_for(lambda: alert_state() == "firing", f"{ALERT} firing for {LINE}", 20)
        print(f"{ALERT} {first} {seen_after:.1f} s after the degraded measurements; states {states}")

        (alert,) = [a for a in prom.alerts(ALERT) if a["labels"].get("line") == LINE]
        assert alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["runbook_url"].endswith("#runbook-cpkmonlinegradedropped")
        assert prom.value("cpkmon:grade_degradations:increase15m")[LINE] > 0
        # the worker confirmed the fall (3 → 2 → 1) and the API shows the degraded process
        doc = wait_for(
            lambda: (d := line_status(api)) and d["grade"] and d["grade"]["level"] == 1 and d,
            f"{LINE} at grade 1",
            20,
        )
        assert doc["cpk"] == pytest.approx(0.9, rel=1e-6), doc["cpk"]
        wait_for(
            lambda: prom.value("cpkmon:line_grade:min").get(LINE) == 1.0, "cpkmon:line_grade:min = 1", 20
        )
        degradations = [
            a
            for a in api.get(f"/api/v1/alerts?line={LINE}&limit=1000")["items"]
            if a["type"] == "grade_degraded"
        ]
        assert [(a["from_grade"]["level"], a["to_grade"]["level"]) for a in degradations] in (
            [(3, 2), (2, 1)],
            [(3, 1)],
        ), degradations
        assert all(a["limiting"]["criterion"] == "cpk" for a in degradations), degradations

        # ---- the worker's own metrics reached Prometheus too (inputs of CpkmonWorkerDown, -Lagging) ----
        (target,) = [t for t in prom.api("targets")["activeTargets"] if t["labels"]["job"] == "cpkmon-worker"]
        assert target["health"] == "up", f"worker scrape: {target['health']} {target['lastError']!r}"
        accepted = prom.value('sum by (topic) (cpkmon_events_total{outcome="accepted"})', "topic")
        assert accepted.get("cpkmon.measurements") == 5 * (CAPABLE_SUBGROUPS + DEGRADED_SUBGROUPS), accepted
