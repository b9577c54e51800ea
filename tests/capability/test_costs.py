"""CostWindow: loss rates over the last cost_window_days of event time, order-independent, round trip."""

from __future__ import annotations

import json
import math

from cpkmon.capability.costs import DAY, CostWindow


def test_rates_and_eviction_by_event_time() -> None:
    w = CostWindow(cost_window_days=10)
    assert w.internal_loss_rate is None and w.external_loss_rate is None
    w.add(0.0, 100.0, 10.0, 1000.0, "q0")
    w.add(5 * DAY, 50.0, 0.0, 1000.0, "q5")
    assert math.isclose(w.internal_loss_rate or 0, 150 / 2000) and w.external_loss_rate == 10 / 2000
    w.add(10 * DAY, 0.0, 0.0, 1000.0, "q10")  # exactly 10 days after q0: still inside
    assert len(w) == 3 and w.holds("q0")
    w.add(10.5 * DAY, 0.0, 0.0, 1000.0, "q10b")  # q0 is now older than 10 days
    assert len(w) == 3 and not w.holds("q0") and w.internal_loss_rate == 50 / 3000
    assert not w.add(0.2 * DAY, 1.0, 1.0, 1.0, "old")  # already outside the window
    w.add(4 * DAY, 30.0, 3.0, 500.0, "late")  # out of order but inside
    assert len(w) == 4 and w.internal_loss_rate == 80 / 3500 and w.external_loss_rate == 3 / 3500


def test_order_independent_and_round_trip() -> None:
    events = [(i * DAY * 0.7, 0.1 * i, 0.01 * i, 1000.0 + i, f"q{i}") for i in range(40)]
    a, b = CostWindow(7), CostWindow(7)
    for e in events:
        a.add(*e)
    for e in sorted(events, key=lambda e: -e[0]):
        b.add(*e)
    assert a.internal_loss_rate == b.internal_loss_rate and a.external_loss_rate == b.external_loss_rate
    back = CostWindow.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back.internal_loss_rate == a.internal_loss_rate and back.holds("q39") and not back.holds("q0")
    assert back.to_dict() == a.to_dict()
