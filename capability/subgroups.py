"""Rational subgroups from a stream of values of one characteristic (SPEC §2).

Why an assembler of its own: the grouping rule is part of the contract and must be identical for the live
worker and the offline ``cpkmon capability`` study. Rules:

* a value with an explicit ``subgroup`` id joins the open subgroup if that has the same id; any other id (or a
  value without an id) closes the open subgroup first; a subgroup with an id also closes at 25 values;
* values without an id are grouped ``size`` at a time (``size == 1`` means individuals, each value its own
  subgroup);
* ids are compared as strings (``5`` and ``"5"`` are the same subgroup), which is also how they are reported.

Values arrive already as deviations from the characteristic's shift. A subgroup keeps its moments (Welford,
for the exact window statistics), its first and last value (for moving ranges across subgroups), its event ids
and its values in arrival order (at most 25): the values give the moving ranges *inside* a subgroup, which an
individuals chart counts like any other consecutive pair, and the capability histogram of the window's
individual values. State stays bounded by the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cpkmon.capability.moments import Moments

MAX_SUBGROUP_VALUES = 25


class ClosedSubgroup:
    """A finished subgroup: its moments, first/last value, event ids, newest event time, explicit id and its
    values in arrival order (``values`` None only for a subgroup restored from state written before values
    were kept)."""

    __slots__ = ("event_ids", "event_time", "first", "key", "last", "moments", "values")

    def __init__(
        self,
        key: str | None,
        moments: Moments,
        first: float,
        last: float,
        event_ids: tuple[str, ...],
        event_time: float,
        values: tuple[float, ...] | None = None,
    ) -> None:
        self.key = key
        self.moments = moments
        self.first = first
        self.last = last
        self.event_ids = event_ids
        self.event_time = event_time
        self.values = values


class _Open:
    __slots__ = ("event_ids", "event_time", "first", "key", "last", "moments", "values")

    def __init__(self, key: str | None, x: float, ts: float, event_id: str | None) -> None:
        self.key = key
        self.moments = Moments(1, x, 0.0, x, x)
        self.first = x
        self.last = x
        self.event_ids: list[str] = [] if event_id is None else [event_id]
        self.event_time = ts
        self.values: list[float] | None = [x]

    def close(self) -> ClosedSubgroup:
        v = self.values
        return ClosedSubgroup(
            self.key,
            self.moments,
            self.first,
            self.last,
            tuple(self.event_ids),
            self.event_time,
            None if v is None else tuple(v),
        )


class SubgroupAssembler:
    """Turns values into closed subgroups; ``add`` returns the subgroups it closed (0, 1 or 2)."""

    __slots__ = ("_open", "size")

    def __init__(self, size: int) -> None:
        if not 1 <= size <= MAX_SUBGROUP_VALUES:
            raise ValueError(f"subgroup size must be 1..{MAX_SUBGROUP_VALUES}, not {size}")
        self.size = size
        self._open: _Open | None = None

    def add(
        self, x: float, ts: float, event_id: str | None, key: str | int | None = None
    ) -> list[ClosedSubgroup]:
        cur = self._open
        if key is None and cur is None and self.size == 1:  # individuals: the hot path of an I-MR stream
            return [
                ClosedSubgroup(
                    None, Moments(1, x, 0.0, x, x), x, x, () if event_id is None else (event_id,), ts, (x,)
                )
            ]
        out: list[ClosedSubgroup] = []
        k = None if key is None else str(key)
        if cur is not None and cur.key != k:
            out.append(cur.close())
            cur = None
        if cur is None:
            cur = _Open(k, x, ts, event_id)
        else:
            cur.moments.add(x)
            cur.last = x
            if cur.values is not None:
                cur.values.append(x)
            if event_id is not None:
                cur.event_ids.append(event_id)
            if ts > cur.event_time:
                cur.event_time = ts
        limit = self.size if k is None else MAX_SUBGROUP_VALUES
        if cur.moments.n >= limit:
            out.append(cur.close())
            self._open = None
        else:
            self._open = cur
        return out

    def flush(self) -> ClosedSubgroup | None:
        """Close the open subgroup, if any (end of an offline file)."""
        cur = self._open
        self._open = None
        return None if cur is None else cur.close()

    @property
    def open_count(self) -> int:
        """Values in the open subgroup."""
        return 0 if self._open is None else self._open.moments.n

    @property
    def open_event_ids(self) -> list[str]:
        return [] if self._open is None else self._open.event_ids

    def holds(self, event_id: str) -> bool:
        return self._open is not None and event_id in self._open.event_ids

    def to_dict(self) -> dict[str, object]:
        o = self._open
        return {
            "size": self.size,
            "open": None
            if o is None
            else {
                "key": o.key,
                "moments": o.moments.to_list(),
                "first": o.first,
                "last": o.last,
                "event_ids": list(o.event_ids),
                "event_time": o.event_time,
                "values": None if o.values is None else list(o.values),
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SubgroupAssembler:
        asm = cls(int(d["size"]))
        o = d.get("open")
        if o is not None:
            op = _Open(o["key"], float(o["first"]), float(o["event_time"]), None)
            op.moments = Moments.from_list(list(o["moments"]))
            op.last = float(o["last"])
            op.event_ids = [str(e) for e in o["event_ids"]]
            values = o.get("values")  # absent in state written before values were kept
            op.values = None if values is None else [float(v) for v in values]
            asm._open = op
        return asm
