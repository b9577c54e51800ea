"""RollingWindow and persisted state: bounds, event ids, age eviction between closes, JSON-native state."""

from __future__ import annotations

import json

from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.costs import CostWindow
from cpkmon.capability.moments import Moments
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec
from cpkmon.capability.subgroups import ClosedSubgroup
from cpkmon.capability.window import Entry, RollingWindow
from cpkmon.capability.yields import StationYield


def _entry(seq: int, values: list[float], ts: float, ids: tuple[str, ...]) -> Entry:
    sub = ClosedSubgroup(None, Moments.of(values), values[0], values[-1], ids, ts)
    return Entry(seq, str(seq), sub)


def test_count_bound_ids_and_order() -> None:
    w = RollingWindow(3)
    for i in range(7):
        evicted = w.push(_entry(i, [float(i), float(i) + 1], float(i), (f"a{i}", "dup")))
        assert len(evicted) == (1 if i >= 3 else 0)
        assert [e.seq for e in w] == list(range(max(0, i - 2), i + 1))
        agg = w.aggregate()
        assert agg is not None and agg.k == len(w) and agg.n == 2 * len(w)
    assert w.holds("dup") and not w.holds("a3") and w.holds("a4")
    # an id carried by several subgroups stays held until the last of them leaves
    w.push(_entry(7, [1.0], 7.0, ()))
    w.push(_entry(8, [1.0], 8.0, ()))
    assert w.holds("dup")
    w.push(_entry(9, [1.0], 9.0, ()))
    assert not w.holds("dup") and w.oldest is not None and w.oldest.seq == 7


def test_evict_before_and_empty() -> None:
    w = RollingWindow(10, max_age=5.0)
    for i in range(6):
        w.push(_entry(i, [float(i)], float(i), ()))
    assert [e.seq for e in w.evict_before(2.0)] == [0, 1]
    assert w.aggregate() is not None and len(w) == 4
    w.evict_before(100.0)
    assert len(w) == 0 and w.aggregate() is None and w.oldest is None


def test_age_evicts_without_a_close() -> None:
    """A value newer than the window's subgroups by more than window_max_age empties the window at once."""
    ch = Characteristic(
        "L", "c", Spec(lsl=0, usl=10, subgroup_size=5), Options(min_subgroups=1, window_max_age=60)
    )
    for i in range(50):
        ch.add(5.0 + 0.01 * (i % 7), float(i), f"e{i}")
    assert ch.status()["subgroups"] == 10
    ch.add(5.0, 200.0, "late")  # opens a subgroup, closes none
    s = ch.status()
    assert s["subgroups"] == 0 and s["n"] == 0 and s["state"] == "insufficient_data"
    assert ch.holds("late") and not ch.holds("e49")


def _json_native(x: object) -> bool:
    if x is None or isinstance(x, str | bool | int | float):
        return True
    if isinstance(x, list):
        return all(_json_native(v) for v in x)
    if isinstance(x, dict):
        return all(isinstance(k, str) and _json_native(v) for k, v in x.items())
    return False


def test_persisted_state_is_json_native() -> None:
    ch = Characteristic("L", "c", Spec(lsl=0, usl=10, target=5, subgroup_size=3), Options(min_subgroups=2))
    for i in range(40):
        ch.add(5.0 + 0.1 * (i % 5), float(i), f"e{i}", subgroup=i // 3)
    y = StationYield(10, 2, "S")
    for i in range(15):
        y.add(i % 4 != 0, event_id=f"u{i}", defects=1, opportunities=3)
    cw = CostWindow(30)
    cw.add(0.0, 1.0, 2.0, 100.0, "q")
    for state in (ch.to_dict(), y.to_dict(), cw.to_dict(), ch.status()):
        assert _json_native(state), state
        assert json.loads(json.dumps(state, allow_nan=False)) == state
