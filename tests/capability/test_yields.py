"""StationYield: first-pass units only, window eviction with exact integer counts, DPMO sums, round trip."""

from __future__ import annotations

import json

from cpkmon.capability.options import Options
from cpkmon.capability.yields import StationYield


def test_fpy_window_and_min_units() -> None:
    y = StationYield(yield_window=10, min_units=5, station="S20")
    for i in range(4):
        assert y.add(passed=i != 0, event_id=f"i{i}")
    assert y.first_pass_yield is None and y.units == 4
    assert not y.add(passed=True, first_pass=False, event_id="re1")  # re-inspection: not counted
    y.add(passed=True, event_id="i4")
    assert y.units == 5 and y.first_pass_yield == 4 / 5 and y.units_total == 5
    for i in range(5, 15):
        y.add(passed=True, event_id=f"i{i}")
    assert y.units == 10 and y.first_pass_yield == 1.0 and y.units_total == 15
    assert not y.holds("i0") and y.holds("i14") and not y.holds("re1")
    s = y.status()
    assert s == {
        "station": "S20",
        "units": 10,
        "units_total": 15,
        "first_pass_yield": 1.0,
        "dpmo": None,
        "defects": 0,
        "opportunities": 0,
    }


def test_dpmo_only_counts_units_with_opportunities() -> None:
    y = StationYield(yield_window=3, min_units=1)
    y.add(passed=False, defects=5)  # no opportunities: not in DPMO
    y.add(passed=False, defects=2, opportunities=10)
    y.add(passed=True, opportunities=10)  # defects default 0
    assert y.defects == 2 and y.opportunities == 20 and y.dpmo == 2 / 20 * 1e6
    y.add(passed=True, defects=1, opportunities=100)  # evicts the first unit
    assert y.defects == 3 and y.opportunities == 120
    y.add(passed=True, opportunities=100)  # evicts the 2-defect unit
    assert y.defects == 1 and y.opportunities == 210 and y.dpmo == 1 / 210 * 1e6


def test_round_trip() -> None:
    y = StationYield.from_options(Options(yield_window=7, min_units=2), station="S1")
    for i in range(12):
        y.add(passed=i % 3 != 0, event_id=f"u{i}", defects=i % 2, opportunities=4)
    back = StationYield.from_dict(json.loads(json.dumps(y.to_dict())))
    assert back.status() == y.status() and back.holds("u11") and not back.holds("u4")
    y.add(passed=False, event_id="u12", defects=3, opportunities=4)
    back.add(passed=False, event_id="u12", defects=3, opportunities=4)
    assert back.status() == y.status() and back.to_dict() == y.to_dict()
