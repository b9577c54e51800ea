"""Quality-cost loss rates of a line over the last ``cost_window_days`` of event time (SPEC §5).

Why a time-sorted list and ``math.fsum``: cost events are few (one per shift or day, ~10³ a year), may arrive
out of order, and the rates are ratios of sums of money; keeping the events sorted lets eviction by event time
be exact whatever the arrival order, and ``fsum`` makes the rates independent of summation order (a restored
window gives the same bits).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from typing import Any

DAY = 86400.0


class CostWindow:
    """Quality-cost events (ts, internal_loss, external_loss, output_value) no older than the window."""

    __slots__ = ("_events", "_ids", "_sums", "cost_window_days", "events_total")

    def __init__(self, cost_window_days: float = 365.0) -> None:
        if not cost_window_days > 0:
            raise ValueError(f"cost_window_days must be > 0, not {cost_window_days}")
        self.cost_window_days = cost_window_days
        # sorted by (ts, arrival number) so ties keep arrival order
        self._events: list[tuple[float, int, float, float, float, str | None]] = []
        self._ids: set[str] = set()
        self.events_total = 0
        # ((events_total, len), Σ internal, Σ external, Σ output): the line re-reads the rates on every
        # evaluation; the window changes only in add(), which always bumps events_total
        self._sums: tuple[tuple[int, int], float, float, float] | None = None

    @property
    def span(self) -> float:
        return self.cost_window_days * DAY

    def add(
        self,
        ts: float,
        internal_loss: float,
        external_loss: float,
        output_value: float,
        event_id: str | None = None,
    ) -> bool:
        """Record one period's costs; returns False if it is already older than the window (then ignored)."""
        self.events_total += 1
        if self._events and ts < self._events[-1][0] - self.span:
            return False
        entry = (
            float(ts),
            self.events_total,
            float(internal_loss),
            float(external_loss),
            float(output_value),
            event_id,
        )
        bisect.insort(self._events, entry)
        if event_id is not None:
            self._ids.add(event_id)
        self._evict()
        return True

    def _evict(self) -> None:
        ev = self._events
        if not ev:
            return
        cutoff = ev[-1][0] - self.span
        k = 0
        while k < len(ev) and ev[k][0] < cutoff:
            e = ev[k][5]
            if e is not None:
                self._ids.discard(e)
            k += 1
        if k:
            del ev[:k]

    def holds(self, event_id: str) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._events)

    def _totals(self) -> tuple[float, float, float]:
        """(Σ internal loss, Σ external loss, Σ output value) over the window, cached until it changes."""
        ev = self._events
        key = (self.events_total, len(ev))
        sums = self._sums
        if sums is None or sums[0] != key:
            sums = self._sums = (
                key,
                math.fsum(e[2] for e in ev),
                math.fsum(e[3] for e in ev),
                math.fsum(e[4] for e in ev),
            )
        return sums[1], sums[2], sums[3]

    @property
    def output_value(self) -> float:
        return self._totals()[2]

    @property
    def internal_loss_rate(self) -> float | None:
        """Σ internal loss / Σ output value over the window; None without events (or zero output)."""
        internal, _, out = self._totals()
        return internal / out if out > 0 else None

    @property
    def external_loss_rate(self) -> float | None:
        _, external, out = self._totals()
        return external / out if out > 0 else None

    def to_dict(self) -> dict[str, object]:
        return {
            "cost_window_days": self.cost_window_days,
            "events_total": self.events_total,
            "events": [list(e) for e in self._events],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], cost_window_days: float | None = None) -> CostWindow:
        w = cls(cost_window_days if cost_window_days is not None else float(d["cost_window_days"]))
        for ts, k, i, x, o, e in d["events"]:
            w._events.append((float(ts), int(k), float(i), float(x), float(o), e))
            if e is not None:
                w._ids.add(e)
        w._events.sort()
        w.events_total = int(d["events_total"])
        w._evict()
        return w
