"""Alarm-rate KPIs (``cpkmon.alerts.alarm_kpis``) on hand-built histories whose figures are worked out by
hand: alarms per 10 minutes, flood start and end (EEMUA 191 hysteresis), chattering, stale alarms, the
top-10 sources, unacknowledged count and age, time to acknowledge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cpkmon.alerts.alarm_kpis import AlarmKpis, KpiReport
from cpkmon.alerts.alarms import AlarmBook, Transition, alarm_event, alarm_id
from cpkmon.capability.timeutil import to_rfc3339

T0 = 1_764_000_000.0


class Plant:
    """An alarm book and the KPIs fed from it, driven in event time (seconds after T0)."""

    def __init__(self) -> None:
        self.book = AlarmBook()
        self.kpis = AlarmKpis()

    def __call__(
        self, kind: str, t: float, char: str | None = "c0", line: str = "L1", **f: Any
    ) -> Transition:
        if isinstance(f.get("until"), (int, float)):
            f["until"] = to_rfc3339(T0 + f["until"])
        out = self.book.apply(alarm_event(kind, line=line, source="control" if char else "grade",
                                          characteristic=char, at=T0 + t, **f))
        assert isinstance(out, Transition), out
        self.kpis.observe(out)
        return out

    def report(self, t: float) -> KpiReport:
        return self.kpis.report(T0 + t)


def test_alarms_per_10_minutes_and_a_flood_from_start_to_end() -> None:
    p = Plant()
    p("activate", 0, char="x", line="L2")  # another line, no flood there
    for i in range(10):
        p("activate", 10 * i, char=f"c{i}")
    r = p.report(99.0)
    assert (r.lines["L1"].alarms_10min, r.lines["L1"].in_flood) == (10, False)
    p("activate", 100, char="c10")  # 11 sources in 100 s on L1: the 11th starts a flood at t=100
    r = p.report(100.0)
    assert r.lines["L1"].alarms_10min == 11 and r.lines["L1"].in_flood and r.lines["L1"].floods == 1
    assert r.plant.alarms_10min == 12 and r.plant.in_flood
    assert not r.lines["L2"].in_flood
    r = p.report(300.0)
    assert r.lines["L1"].flood_seconds == pytest.approx(200.0)
    # the window (t-600, t]: at 650 the activations at 0..50 have left, 5 remain: still a flood (ends < 5)
    r = p.report(650.0)
    assert (r.lines["L1"].alarms_10min, r.lines["L1"].in_flood) == (5, True)
    # at 660 the one at 60 leaves: 4 remain → the flood ended at 660, whenever asked
    for t in (660.0, 5000.0):
        r = p.report(t)
        line = r.lines["L1"]
        assert not line.in_flood and line.floods == 1
        assert line.flood_seconds == pytest.approx(560.0)
    r = p.report(6000.0)
    assert r.lines["L1"].flood_fraction == pytest.approx(560.0 / 6000.0)
    assert r.lines["L1"].mean_per_10min == pytest.approx(11 * 600 / 6000.0)
    assert r.plant.annunciations_total == 12
    # the plant (12 annunciations) left its flood when it dropped below 5 too: at 670 (0, 0, 10..60 gone)
    assert r.plant.flood_seconds == pytest.approx(670.0 - 100.0)
    # reporting changed nothing: an earlier time still reads the same
    assert p.report(650.0).lines["L1"].in_flood


def test_reactivations_and_suppressed_activations_are_not_annunciations() -> None:
    p = Plant()
    for i in range(5):
        p("activate", 100 * i)  # one alarm, re-activated 4 times while unacknowledged
    p("shelve", 500, char="c1", until=5000)
    p("activate", 510, char="c1")  # shelved: suppressed
    r = p.report(599.0)  # (at 600 the one at 0 has left the window (t-600, t])
    assert (r.plant.annunciations_total, r.plant.reactivations_total, r.plant.alarms_10min) == (1, 4, 1)
    assert p.report(600.0).plant.alarms_10min == 0
    assert r.top[0].alarm_id == alarm_id("L1", "control", "c0") and r.top[0].activations == 5


def test_chattering_is_three_activations_within_a_minute() -> None:
    p = Plant()
    p("activate", 0, char="slow")
    p("activate", 40, char="slow")
    p("activate", 80, char="slow")  # 3 activations, but never 3 within 60 s
    p("activate", 1000, char="fast")
    p("clear", 1010, char="fast")
    p("activate", 1020, char="fast")
    r = p.report(1030.0)
    assert r.chattering == [] and r.plant.chattering == 0
    p("activate", 1059.0, char="fast")  # 1000, 1020, 1059 within 60 s
    fast = alarm_id("L1", "control", "fast")
    r = p.report(1100.0)
    assert r.chattering == [fast] and r.lines["L1"].chattering == 1
    r = p.report(1659.0 + 1)  # 10 minutes later it is no longer "chattering now", but it did chatter
    assert r.chattering == [] and r.chattering_ever == [fast]


def test_stale_alarms_stand_active_for_more_than_a_day() -> None:
    day = 24 * 3600.0
    p = Plant()
    p("activate", 0, char="standing")
    p("activate", 0, char="acked")
    p("ack", 60, char="acked")
    p("activate", 0, char="cleared")
    p("clear", 100, char="cleared")
    p("activate", 0, char="shelved")
    p("shelve", 10, char="shelved", until=3 * day)
    assert p.report(day).stale == []
    r = p.report(day + 1)
    assert r.stale == sorted(alarm_id("L1", "control", c) for c in ("standing", "acked"))
    assert r.plant.stale == 2
    # the shelving expires at 3 days: the alarm, still active since 0, stands again and is stale
    assert alarm_id("L1", "control", "shelved") in p.report(3 * day).stale


def test_unacknowledged_count_age_and_time_to_acknowledge() -> None:
    p = Plant()
    for c, t in (("a", 0), ("b", 0), ("c", 0), ("d", 100), ("e", 0)):
        p("activate", t, char=c)
    p("ack", 5, char="a")  # 5 s
    p("ack", 45, char="b")  # 45 s
    p("clear", 50, char="c")  # rtn_unack: still unacknowledged
    r = p.report(200.0)
    assert r.plant.unack == 3 and r.plant.unack_oldest_age == pytest.approx(200.0)  # c, d (100 s) and e
    p("ack", 4000, char="e")  # > 1 h
    r = p.report(4000.0)
    assert r.tta_count == 3 and r.tta_sum == pytest.approx(5 + 45 + 4000)
    bounds = dict(zip(r.tta_buckets, r.tta_counts, strict=False))
    assert (bounds[10.0], bounds[30.0], bounds[60.0], bounds[3600.0], r.tta_counts[-1]) == (1, 1, 2, 2, 3)
    # a shelved alarm awaits a new ack from its expiry: time to acknowledge counts from there
    p("shelve", 4100, char="d", until=5000)
    p("ack", 5030, char="d")
    assert p.report(5030.0).tta_counts[1] == 2  # d: 30 s after its shelve expired


def test_top_ten_sources_and_their_share() -> None:
    p = Plant()
    t = 0.0
    for i in range(12):  # source c<i> activates i+1 times (with clears in between)
        for _ in range(i + 1):
            t += 120.0
            p("activate", t, char=f"c{i}")
            p("ack", t + 1, char=f"c{i}")
            p("clear", t + 2, char=f"c{i}")
    r = p.report(t + 10)
    assert [s.characteristic for s in r.top] == [f"c{i}" for i in range(11, 1, -1)]
    total = sum(range(1, 13))
    assert r.top10_share == pytest.approx((total - 1 - 2) / total)


def test_a_checkpointed_accumulator_continues_identically() -> None:
    p = Plant()
    for i in range(15):
        p("activate", 7 * i, char=f"c{i % 4}")
    copy_ = AlarmKpis.from_dict(json.loads(json.dumps(p.kpis.to_dict())))
    for i in range(15, 30):
        out = p("activate", 7 * i, char=f"c{i % 4}")
        copy_.observe(out)
    for now in (150.0, 800.0, 90_000.0):
        assert copy_.report(T0 + now) == p.report(now)
    assert p.report(800.0).to_dict()["plant"]["annunciations_total"] == 4
