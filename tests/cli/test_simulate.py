"""The simulated plant's sampling plan and compressed clock, and its alarm load through the real core.

Pure and fast: the plant's messages are fed to ``LineState`` (what the worker runs per line) in event time,
over many more hours than a broker test can cover, so the steady lines' false-alarm rate is measured on a
sample large enough to mean something. ``tests/cli/test_demo_alarm_load.py`` checks the same figures end to
end.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from cpkmon.alerts.line import LineState
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec
from cpkmon.capability.timeutil import parse_ts
from cpkmon.simulate import (
    DEFAULT_HISTORY_S,
    SHIFT_AFTER_S,
    SHIFT_S,
    SUBGROUP_INTERVAL_S,
    TAKT_S,
    PlantClock,
    build_plant,
    cost_message,
    subgroup_messages,
)

LIVE_WALL = 1_764_600_000.0  # 2025-12-01T14:40:00Z, a whole minute
TEN_MIN = 600.0
FLOOD = 10  # ISA-18.2: more than 10 alarms in 10 minutes is a flood


def test_clock_backfills_the_history_then_runs_event_time_n_times_faster() -> None:
    clock = PlantClock(LIVE_WALL + 12.5, time_scale=60)
    assert clock.live_ms == LIVE_WALL * 1000  # whole minutes
    assert clock.start_ms == clock.live_ms - DEFAULT_HISTORY_S * 1000
    h = clock.history_subgroups
    assert h == DEFAULT_HISTORY_S / SUBGROUP_INTERVAL_S == 96
    # every subgroup of the history is due at once; the first live one when the clock has made its 5 minutes
    assert all(clock.due_s(k) == clock.live_wall_s for k in range(h))
    assert clock.due_s(h) == pytest.approx(clock.live_wall_s + SUBGROUP_INTERVAL_S / 60)
    # then one subgroup per 5 event minutes = 5 wall seconds at 60×
    assert clock.due_s(h + 10) - clock.due_s(h) == pytest.approx(10 * SUBGROUP_INTERVAL_S / 60)
    assert clock.subgroup_ms(h + 1) - clock.subgroup_ms(h) == SUBGROUP_INTERVAL_S * 1000
    # L3's lot arrives 15 event minutes into the live demo: the 4th live subgroup (numbers are 1-based)
    assert clock.subgroup_at(SHIFT_AFTER_S) == h + 4
    assert clock.subgroup_ms(clock.subgroup_at(SHIFT_AFTER_S) - 1) == clock.live_ms + SHIFT_AFTER_S * 1000
    fast = PlantClock(LIVE_WALL, time_scale=0)
    assert fast.due_s(10_000) == 0.0  # no clock: as fast as the rate allows


def test_a_subgroup_is_five_consecutive_units_at_the_takt_inspected_at_every_station() -> None:
    model = build_plant(4, 7)[0]  # L1: one message per value, batched per characteristic
    t = 1_764_600_000_000
    msgs = list(subgroup_messages(model, t, int(TAKT_S * 1000)))
    batches = [m for kind, m in msgs if kind == "measurement"]
    assert len(batches) == len(model.characteristics)
    for batch in batches:
        assert isinstance(batch, list) and len(batch) == 5
        made = [e["ts"] - 10_000 * model.stations.index(e["station"]) for e in batch]
        assert made == [t + k * 60_000 for k in range(5)]  # one unit a minute
    first_pass = [m for kind, m in msgs if kind == "inspection" and isinstance(m, dict) and m["first_pass"]]
    assert len(first_pass) == 5 * len(model.stations)
    assert {m["ts"] for m in first_pass} == {t + k * 60_000 + j * 10_000 for k in range(5) for j in range(3)}
    assert all(t <= m["ts"] < t + SUBGROUP_INTERVAL_S * 1000 for m in first_pass)


def feed(lines: int, seed: int, rounds: int) -> tuple[PlantClock, list[dict[str, Any]]]:
    """The plant's first ``rounds`` subgroups per line (and shift costs) through one ``LineState`` per line,
    exactly as ``cpkmon simulate`` dates them; the alerts raised."""
    clock = PlantClock(LIVE_WALL)
    plant = build_plant(lines, seed, shift_at=clock.subgroup_at(SHIFT_AFTER_S))
    states = {m.line: LineState(m.line, Options()) for m in plant}
    specs = {
        m.line: {
            s["characteristic"]: Spec(lsl=s["lsl"], usl=s["usl"], target=s["target"], subgroup_size=5)
            for s in m.specs()
        }
        for m in plant
    }
    per_shift = round(SHIFT_S / SUBGROUP_INTERVAL_S)
    alerts: list[dict[str, Any]] = []
    for k in range(rounds):
        for m in plant:
            st, sp = states[m.line], specs[m.line]
            for kind, msg in subgroup_messages(m, clock.subgroup_ms(k), int(TAKT_S * 1000)):
                for e in msg if isinstance(msg, list) else [msg]:
                    ts = e["ts"] / 1000
                    if kind == "inspection":
                        alerts += st.inspection(
                            e["station"], e["passed"], e["first_pass"], e.get("defects"),
                            e.get("opportunities"), ts, e["event_id"], ts,
                        )[1]
                        continue
                    per_part = "values" in e
                    values = e["values"].items() if per_part else [(e["characteristic"], e["value"])]
                    for name, v in values:
                        eid = f"{e['event_id']}/{name}" if per_part else e["event_id"]
                        alerts += st.measurement(
                            name, sp[name], e["station"], v, ts, eid, e["subgroup"], ts
                        )[1]
            if m.subgroups % per_shift == 0:
                c = cost_message(m, m.subgroups // per_shift, clock.subgroup_ms(k + 1) - 1)
                ts = c["ts"] / 1000
                st.quality_cost(
                    c["internal_loss"], c["external_loss"], c["output_value"], ts, c["event_id"], ts
                )
    return clock, alerts


def max_in_window(times: list[float], width: float = TEN_MIN) -> int:
    """The most events in any ``width``-second window (sliding, not fixed buckets)."""
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_steady_lines_stay_quiet_and_the_scenarios_raise_their_alerts(seed: int) -> None:
    rounds = 96 + 12 * 12  # the back-filled shift and 12 live hours: 20 h of event time
    clock, alerts = feed(4, seed, rounds)
    span = rounds * SUBGROUP_INTERVAL_S
    per_line = Counter(a["line"] for a in alerts)
    rate = {line: per_line[line] / (span / TEN_MIN) for line in ("L1", "L2", "L3", "L4")}
    print(f"\nseed {seed}: alerts per 10 min of event time over {span / 3600:.0f} h: {rate}")
    # steady: in control and capable, so only the run rules' own false alarms (≈ 0.05-0.2 per 10 min)
    for line in ("L1", "L4"):
        assert rate[line] <= 1.0, (line, rate)
        assert not [a for a in alerts if a["line"] == line and a["type"] != "out_of_control"], "grade flapped"
    # L2: tool wear takes the grade down to ≤ 2, one grade_degraded alert per step
    drops = [a for a in alerts if a["line"] == "L2" and a["type"] == "grade_degraded"]
    assert drops and min(a["to_grade"]["level"] for a in drops) <= 2, drops
    # L3: the 2σ shift 15 minutes into the live clock trips rule 1 on its first subgroup (n = 5: the
    # subgroup mean moves by 2·√5 ≈ 4.5 of its σ), when that subgroup is complete
    onset = clock.live_ms / 1000 + SHIFT_AFTER_S
    l3 = [a for a in alerts if a["line"] == "L3" and a["type"] == "out_of_control"]
    first = [a for a in l3 if onset <= parse_ts(a["event_time"]) < onset + SUBGROUP_INTERVAL_S]
    assert 1 in {a["rule"] for a in first}, [(a["event_time"], a["rule"]) for a in l3]
    # plant-wide, outside the scripted L3 incident (its first hour), never a flood
    incident = (onset, onset + 3600)
    quiet = [
        parse_ts(a["event_time"])
        for a in alerts
        if not (a["line"] == "L3" and incident[0] <= parse_ts(a["event_time"]) <= incident[1])
    ]
    plant_max = max_in_window(quiet)
    print(f"  plant-wide max alerts in 10 min: {plant_max} outside the incident, "
          f"{max_in_window([parse_ts(a['event_time']) for a in alerts])} with it")
    assert plant_max < FLOOD
