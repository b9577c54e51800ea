"""The demo plant's alarm load, end to end: ``cpkmon up --demo`` on its compressed clock (issue 12).

The real command (embedded broker, worker, API, simulator as child processes, free loopback ports) runs until
the plant's event time has covered its back-filled shift and ``LIVE_MIN`` minutes of the live clock (≈ 45 s of
wall time at the demo's 60×). Then, from ``GET /api/v1/alerts`` and the alerts' ``event_time`` s:

- each steady line (L1, L4) raises ≤ 1 alert per 10 minutes of event time (``out_of_control`` and grade
  alerts);
- L2 raises ``grade_degraded`` down to grade ≤ 2, L3 ``out_of_control`` after its scripted 2σ shift;
- plant-wide, outside L3's incident, no 10-minute window holds 10 alerts or more (ISA-18.2's flood threshold).

The second test reads the same run's alarm KPIs from ``/metrics`` (one alarm per source groups these alerts,
so the alarm counts are at most the alert counts): steady lines ≤ 1 alarm per 10 minutes of event time, L2's
grade alarm and L3's control alarm raised, the plant's trailing-10-minute alarm rate below the flood
threshold.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from cpkmon.broker import free_port
from cpkmon.capability.timeutil import parse_ts
from cpkmon.simulate import DEFAULT_HISTORY_S, SHIFT_AFTER_S

pytestmark = [pytest.mark.broker, pytest.mark.slow]

LINES = ("L1", "L2", "L3", "L4")
STEADY = ("L1", "L4")
TIME_SCALE = 60  # the demo's default
LIVE_MIN = 35  # ≥ 30 minutes of live event time
TEN_MIN = 600.0
FLOOD = 10


def try_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as res:
            return json.loads(res.read())
    except (OSError, urllib.error.HTTPError, ValueError):
        return None


def newest_event_time(api: str, line: str) -> float | None:
    """The line's newest measurement, in event time (the status's ``last_event_time`` per characteristic)."""
    doc = try_json(f"{api}/api/v1/lines/{line}")
    chars = (doc or {}).get("characteristics") or []
    times = [parse_ts(c["last_event_time"]) for c in chars if c.get("last_event_time")]
    return max(times) if times else None


def all_alerts(api: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url = f"{api}/api/v1/alerts?limit=1000"
    while True:
        page = try_json(url)
        assert page is not None, "alerts page"
        items += page["items"]
        if not page["items"]:
            return items
        url = f"{api}/api/v1/alerts?limit=1000&since={page['next']}"


def max_in_window(times: list[float], width: float = TEN_MIN) -> int:
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$")


def metric_samples(api: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET /metrics`` as {(name, sorted labels): value} (no HELP/TYPE lines)."""
    with urllib.request.urlopen(f"{api}/metrics", timeout=5) as res:
        text = res.read().decode()
    out = {}
    for row in text.splitlines():
        m = METRIC_LINE.match(row)
        if m:
            labels = tuple(sorted(tuple(kv.split("=", 1)) for kv in m[2].split(","))) if m[2] else ()
            out[(m[1], tuple((k, v.strip('"')) for k, v in labels))] = float(m[3])
    return out


@dataclass
class DemoRun:
    """What one run of the demo showed: live clock start, newest event times, alerts, metrics."""

    live: float  # the live clock's start (event time = wall time then)
    wall: float  # seconds the run took
    newest: dict[str, float | None]
    alerts: list[dict[str, Any]]
    plant_gauge: list[float]  # cpkmon_plant_alarms_per_10min, sampled once a poll (≈ one event minute)
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]  # at the end
    alarms: list[dict[str, Any]]  # GET /api/v1/alarms at the end


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``cpkmon up --demo`` until its event time covers the back-filled shift and ``LIVE_MIN`` live
    minutes."""
    tmp_path = tmp_path_factory.mktemp("demo")
    broker_port, api_port, worker_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CPKMON_")}
    env.update(
        CPKMON_EMBEDDED_BROKER_PORT=str(broker_port),
        CPKMON_API_PORT=str(api_port),
        CPKMON_WORKER_PORT=str(worker_port),
        CPKMON_DATA_DIR=str(tmp_path / "data"),
    )
    api = f"http://127.0.0.1:{api_port}"
    log_path = tmp_path / "up.log"
    t0 = time.time()
    gauge: list[float] = []
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "cpkmon.cli", "up", "--demo", "--rate", "800",
             "--time-scale", str(TIME_SCALE)],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            # the simulator's live clock starts at the whole minute of its start (a few seconds after t0)
            live = (t0 // 60) * 60
            target = live + 60 + LIVE_MIN * 60  # +60: its start may fall into the next minute
            deadline = time.time() + 180
            newest: dict[str, float | None] = {}
            while time.time() < deadline:
                if up.poll() is not None:
                    pytest.fail(f"`cpkmon up` exited {up.returncode}:\n{log_path.read_text()[-3000:]}")
                newest = {line: newest_event_time(api, line) for line in LINES}
                with contextlib.suppress(OSError, ValueError):
                    value = metric_samples(api).get(("cpkmon_plant_alarms_per_10min", ()))
                    if value is not None:
                        gauge.append(value)
                if all(t is not None and t >= target for t in newest.values()):
                    break
                time.sleep(1.0)
            wall = time.time() - t0
            assert all(t is not None and t >= target for t in newest.values()), (newest, target)
            time.sleep(2.0)  # the last subgroups' alerts and alarm events reach the API
            alerts = all_alerts(api)
            metrics = metric_samples(api)
            alarms = try_json(f"{api}/api/v1/alarms")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(up.pid, signal.SIGTERM)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    return DemoRun(live, wall, newest, alerts, gauge, metrics, alarms if isinstance(alarms, list) else [])


def test_demo_plant_alert_load_on_its_compressed_clock(demo: DemoRun) -> None:
    live, wall, newest, alerts = demo.live, demo.wall, demo.newest, demo.alerts
    start = live - DEFAULT_HISTORY_S
    end = min(t for t in newest.values() if t is not None)
    span = end - start
    times = {a["alert_id"]: parse_ts(a["event_time"]) for a in alerts}
    counted = [a for a in alerts if times[a["alert_id"]] <= end]
    per_line = Counter(a["line"] for a in counted)
    rate = {line: per_line[line] / (span / TEN_MIN) for line in LINES}
    kinds = Counter((a["line"], a["type"]) for a in counted)
    # L3's incident: from its shift (15 event minutes into the live clock) for an hour (+60: see `target`)
    onset = live + SHIFT_AFTER_S
    incident = [
        a for a in counted if a["line"] == "L3" and onset <= times[a["alert_id"]] <= onset + 60 + 3600
    ]
    quiet = [times[a["alert_id"]] for a in counted if a not in incident]
    print(
        f"\n{wall:.0f} s of wall time, {span / 3600:.2f} h of event time "
        f"({(end - live) / 60:.0f} min live at {TIME_SCALE}×); alerts per 10 min of event time: "
        f"{ {k: round(v, 3) for k, v in rate.items()} }"
        f"\nalerts (line, type): {dict(sorted(kinds.items()))}"
        f"\nplant-wide max alerts in any 10 min: {max_in_window(quiet)} outside L3's incident, "
        f"{max_in_window(list(times.values()))} with it"
    )
    assert span >= DEFAULT_HISTORY_S + LIVE_MIN * 60
    for line in STEADY:
        assert rate[line] <= 1.0, (line, rate)
    drops = [a for a in counted if a["line"] == "L2" and a["type"] == "grade_degraded"]
    assert drops and min(a["to_grade"]["level"] for a in drops) <= 2, kinds
    assert [a for a in counted if a["line"] == "L3" and a["type"] == "out_of_control"
            and onset <= times[a["alert_id"]]], "L3's shift raised no out_of_control"
    assert max_in_window(quiet) < FLOOD


def test_demo_plant_alarm_kpis_on_metrics(demo: DemoRun) -> None:
    """The same run through the alarm KPIs on ``/metrics`` (one alarm per source: the worker's activations,
    the API's ISA-18.2 figures): each steady line ≤ 1 alarm per 10 minutes of event time, L2's grade alarm and
    L3's control alarms raised, and the plant's trailing-10-minute alarm rate never at the flood threshold."""
    span = min(t for t in demo.newest.values() if t is not None) - (demo.live - DEFAULT_HISTORY_S)
    activations: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in demo.metrics.items():
        if name == "cpkmon_alarm_activations_total":
            d = dict(labels)
            activations[(d["line"], d["kind"])] += int(value)
    per_line: Counter[str] = Counter()
    for (line, _), n in activations.items():
        per_line[line] += n
    rate = {line: per_line[line] / (span / TEN_MIN) for line in LINES}
    print(
        f"\nalarm activations (line, kind) over {span / 3600:.2f} h of event time: "
        f"{dict(sorted(activations.items()))}"
        f"\nalarms per 10 min: { {k: round(v, 3) for k, v in rate.items()} }; cpkmon_plant_alarms_per_10min "
        f"max {max(demo.plant_gauge, default=None)} over {len(demo.plant_gauge)} samples"
    )
    for line in STEADY:
        assert rate[line] <= 1.0, (line, rate)
    assert activations[("L2", "grade")] >= 1, activations
    assert activations[("L3", "control")] >= 1, activations
    # the shift (re-)activated L3's control alarms: active since it (an alarm still unacknowledged from a
    # false alarm of the history counts a re-activation, ISA-18.2: no new alarm)
    onset = demo.live + SHIFT_AFTER_S
    shifted = [
        a for a in demo.alarms
        if a["line"] == "L3" and a["source"]["kind"] == "control" and a["active"]
        and a.get("active_since") and parse_ts(a["active_since"]) >= onset
    ]
    assert shifted, [(a["line"], a["source"], a["state"], a.get("active_since")) for a in demo.alarms]
    assert demo.plant_gauge, "cpkmon_plant_alarms_per_10min never sampled"
    assert max(demo.plant_gauge) < FLOOD
