"""First-pass yield and DPMO sums of one station (SPEC §4).

Why integer running counts over a deque: FPY and DPMO are ratios of counts, so adding on arrival and
subtracting on eviction is exact (unlike float sums), and each inspection costs O(1). Only first-pass
inspections enter the window (a re-inspection after rework says nothing about first-pass yield); DPMO sums
cover the window's units that carry ``opportunities`` (``defects`` defaults to 0 there).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from cpkmon.capability.options import Options


class StationYield:
    """The last ``yield_window`` first-pass units of a station; FPY reported from ``min_units`` units on."""

    __slots__ = (
        "_defects",
        "_ids",
        "_opportunities",
        "_passed",
        "_units",
        "min_units",
        "station",
        "units_total",
        "yield_window",
    )

    def __init__(self, yield_window: int = 1000, min_units: int = 50, station: str | None = None) -> None:
        if yield_window < 1:
            raise ValueError(f"yield_window must be >= 1, not {yield_window}")
        if min_units < 1:
            raise ValueError(f"min_units must be >= 1, not {min_units}")
        self.yield_window = yield_window
        self.min_units = min_units
        self.station = station
        # one unit per entry: (passed, defects, opportunities (0 = none given), event_id)
        self._units: deque[tuple[bool, int, int, str | None]] = deque()
        self._ids: dict[str, int] = {}
        self._passed = 0
        self._defects = 0
        self._opportunities = 0
        self.units_total = 0

    @classmethod
    def from_options(cls, options: Options, station: str | None = None) -> StationYield:
        return cls(options.yield_window, options.min_units, station)

    def add(
        self,
        passed: bool,
        first_pass: bool = True,
        event_id: str | None = None,
        defects: int | None = None,
        opportunities: int | None = None,
    ) -> bool:
        """Record one inspection; returns whether it entered the window (i.e. was a first-pass unit)."""
        if not first_pass:
            return False
        opp = opportunities or 0
        dfx = (defects or 0) if opp else 0
        units = self._units
        units.append((bool(passed), dfx, opp, event_id))
        self.units_total += 1
        if passed:
            self._passed += 1
        self._defects += dfx
        self._opportunities += opp
        if event_id is not None:
            self._ids[event_id] = self._ids.get(event_id, 0) + 1
        if len(units) > self.yield_window:
            p, d, o, e = units.popleft()
            self._passed -= p
            self._defects -= d
            self._opportunities -= o
            if e is not None:
                c = self._ids[e] - 1
                if c:
                    self._ids[e] = c
                else:
                    del self._ids[e]
        return True

    def holds(self, event_id: str) -> bool:
        return event_id in self._ids

    @property
    def units(self) -> int:
        """First-pass units in the window."""
        return len(self._units)

    @property
    def passed(self) -> int:
        return self._passed

    @property
    def first_pass_yield(self) -> float | None:
        """Passed / first-pass units over the window; None below ``min_units`` units."""
        n = len(self._units)
        return self._passed / n if n >= self.min_units and n > 0 else None

    @property
    def fpy(self) -> float | None:
        """Alias of :attr:`first_pass_yield` (a property of its own: mypyc cannot alias a property in the
        class body)."""
        return self.first_pass_yield

    @property
    def defects(self) -> int:
        """Σ defects of window units that carry opportunities."""
        return self._defects

    @property
    def opportunities(self) -> int:
        """Σ units·opportunities over the window (each entry is one unit)."""
        return self._opportunities

    @property
    def dpmo(self) -> float | None:
        """Σ defects / Σ opportunities × 10⁶ over the window; None when no unit carried opportunities."""
        return self._defects / self._opportunities * 1e6 if self._opportunities else None

    def status(self) -> dict[str, object]:
        """The SPEC §6 station object (plus DPMO inputs)."""
        return {
            "station": self.station,
            "units": len(self._units),
            "units_total": self.units_total,
            "first_pass_yield": self.first_pass_yield,
            "dpmo": self.dpmo,
            "defects": self._defects,
            "opportunities": self._opportunities,
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "yield_window": self.yield_window,
            "min_units": self.min_units,
            "station": self.station,
            "units_total": self.units_total,
            "units": [[int(p), d, o, e] for p, d, o, e in self._units],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], options: Options | None = None) -> StationYield:
        """Restore; ``options`` (when given) supplies the current window bounds."""
        window = options.yield_window if options is not None else int(d["yield_window"])
        min_units = options.min_units if options is not None else int(d["min_units"])
        y = cls(window, min_units, d.get("station"))
        for p, dfx, opp, e in d["units"]:
            y._units.append((bool(p), int(dfx), int(opp), e))
            y._passed += bool(p)
            y._defects += int(dfx)
            y._opportunities += int(opp)
            if e is not None:
                y._ids[e] = y._ids.get(e, 0) + 1
        while len(y._units) > y.yield_window:
            p, dfx, opp, e = y._units.popleft()
            y._passed -= p
            y._defects -= dfx
            y._opportunities -= opp
            if e is not None:
                c = y._ids[e] - 1
                if c:
                    y._ids[e] = c
                else:
                    del y._ids[e]
        y.units_total = int(d["units_total"])
        return y
