"""The rolling window of closed subgroups and its O(1) amortized aggregate.

Why a two-stack sliding-window aggregation: the window's statistics must equal a batch recomputation over
exactly the subgroups in the window (SPEC §4) after every close, for any stream length, without rescanning the
window and without running sums that are decremented on eviction (subtracting from a float sum drifts, and
from a sum of squares cancels). So every subgroup becomes a :class:`Agg` summary, summaries combine with an
associative :meth:`Agg.merge`, and the window keeps

* a *back* stack of the newest subgroups with one running aggregate (pushed from the right), and
* a *front* stack of the oldest subgroups, each carrying the aggregate of itself and every newer front
  element.

Evicting pops the front (when it is empty the back is flipped into it, computing the suffix aggregates: each
subgroup is moved once, so O(1) amortized); the window's aggregate is ``front_top ⊕ back``. Nothing is ever
subtracted, and the state is bounded by the window.

:class:`Agg` holds the overall moments (Chan merge) and the sums every σ_within estimator needs: Σ fᵢ and Σ
fᵢRᵢ/d₂(nᵢ) over subgroups with nᵢ ≥ 2 (MVLUE-R), Σ M2ᵢ and Σ (nᵢ − 1) (pooled), and for moving ranges the
first and last value of the segment with the sum and count of the moving ranges *inside* it — those between
consecutive values of one subgroup (a re-measured part on an individuals chart is such a pair) and those
across the seams between subgroups; the merge adds the one moving range across its seam, so the moving range
between the oldest subgroup in the window and an evicted one never counts. Which sums an estimate uses is the
chart's choice, not the data's (:mod:`cpkmon.capability.estimators`).

Each :class:`Entry` also keeps its subgroup's values (deviations from the shift, arrival order) for the
capability histogram; ≤ 25 per subgroup, so the state stays O(window).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cpkmon.capability.constants import D2_TABLE as _D2
from cpkmon.capability.constants import MVLUE_WEIGHTS as _F
from cpkmon.capability.moments import Moments
from cpkmon.capability.subgroups import ClosedSubgroup

#: :class:`Agg`'s fields, for ``repr`` and tests: a mypyc-compiled class has no ``__slots__`` attribute
AGG_FIELDS = (
    "first",
    "hi",
    "k",
    "last",
    "lo",
    "m2",
    "mean",
    "mr_n",
    "mr_sum",
    "n",
    "sdf",
    "sf",
    "sfr",
    "sm2",
)


class Agg:
    """Associative summary of a run of consecutive subgroups (see the module docstring)."""

    __slots__ = AGG_FIELDS

    def __init__(
        self,
        n: int,
        mean: float,
        m2: float,
        lo: float,
        hi: float,
        k: int,
        sf: float,
        sfr: float,
        sm2: float,
        sdf: int,
        first: float,
        last: float,
        mr_sum: float,
        mr_n: int,
    ) -> None:
        self.n = n
        self.mean = mean
        self.m2 = m2
        self.lo = lo
        self.hi = hi
        self.k = k
        self.sf = sf
        self.sfr = sfr
        self.sm2 = sm2
        self.sdf = sdf
        self.first = first
        self.last = last
        self.mr_sum = mr_sum
        self.mr_n = mr_n

    @classmethod
    def of_subgroup(
        cls, m: Moments, first: float, last: float, values: tuple[float, ...] | list[float] | None = None
    ) -> Agg:
        """The summary of one subgroup. Size-1 subgroups add nothing to the range and pooled sums.

        ``values`` (arrival order) give the moving ranges inside the subgroup. Without them (a subgroup
        restored from state written before values were kept) they are known only for n = 2 (|x₂ − x₁| is
        the range); a larger subgroup then contributes only its seams.
        """
        n = m.n
        if n >= 2:
            mr_sum = 0.0
            mr_n = 0
            if values is not None and len(values) == n:
                prev = values[0]
                for x in values[1:]:
                    d = x - prev
                    mr_sum += d if d >= 0.0 else -d
                    prev = x
                mr_n = n - 1
            elif n == 2:
                mr_sum, mr_n = m.hi - m.lo, 1
            f = _F[n - 2]
            return cls(
                n,
                m.mean,
                m.m2,
                m.lo,
                m.hi,
                1,
                f,
                f * (m.hi - m.lo) / _D2[n - 2],
                m.m2,
                n - 1,
                first,
                last,
                mr_sum,
                mr_n,
            )
        return cls(n, m.mean, m.m2, m.lo, m.hi, 1, 0.0, 0.0, 0.0, 0, first, last, 0.0, 0)

    def merge(self, b: Agg) -> Agg:
        """``self`` followed by ``b`` (order matters only for the moving ranges)."""
        na = self.n
        nb = b.n
        n = na + nb
        delta = b.mean - self.mean
        mr = b.first - self.last
        return Agg(
            n,
            self.mean + delta * (nb / n),
            self.m2 + b.m2 + delta * delta * (na * nb / n),
            self.lo if self.lo < b.lo else b.lo,
            self.hi if self.hi > b.hi else b.hi,
            self.k + b.k,
            self.sf + b.sf,
            self.sfr + b.sfr,
            self.sm2 + b.sm2,
            self.sdf + b.sdf,
            self.first,
            b.last,
            self.mr_sum + b.mr_sum + (mr if mr >= 0.0 else -mr),
            self.mr_n + b.mr_n + 1,
        )

    @property
    def moments(self) -> Moments:
        return Moments(self.n, self.mean, self.m2, self.lo, self.hi)

    def __repr__(self) -> str:
        return "Agg(" + ", ".join(f"{s}={getattr(self, s)!r}" for s in AGG_FIELDS) + ")"


class Entry:
    """One closed subgroup in the window: identity, event ids, newest event time, its summary and its values
    (deviations from the shift; None for a subgroup restored from state written before values were kept)."""

    __slots__ = ("agg", "event_ids", "event_time", "first", "label", "last", "moments", "seq", "values")

    def __init__(self, seq: int, label: str, sub: ClosedSubgroup) -> None:
        self.seq = seq
        self.label = label
        self.moments = sub.moments
        self.first = sub.first
        self.last = sub.last
        self.event_ids = sub.event_ids
        self.event_time = sub.event_time
        self.values = sub.values
        self.agg = Agg.of_subgroup(sub.moments, sub.first, sub.last, sub.values)

    def to_list(self) -> list[object]:
        """``[seq, label, event_time, moments, first, last, ids, values]``; older state lacks ``values``."""
        return [
            self.seq,
            self.label,
            self.event_time,
            self.moments.to_list(),
            self.first,
            self.last,
            list(self.event_ids),
            None if self.values is None else list(self.values),
        ]

    @classmethod
    def from_list(cls, d: list[Any]) -> Entry:
        seq, label, event_time, moments, first, last, ids = d[:7]
        values = d[7] if len(d) > 7 else None
        sub = ClosedSubgroup(
            label,
            Moments.from_list(list(moments)),
            float(first),
            float(last),
            tuple(str(e) for e in ids),
            float(event_time),
            None if values is None else tuple(float(v) for v in values),
        )
        return cls(int(seq), str(label), sub)


class RollingWindow:
    """The last ``max_subgroups`` closed subgroups (optionally also no older than ``max_age`` seconds)."""

    __slots__ = ("_agg", "_back", "_back_agg", "_front", "_front_aggs", "_ids", "max_age", "max_subgroups")

    def __init__(self, max_subgroups: int, max_age: float | None = None) -> None:
        if max_subgroups < 1:
            raise ValueError(f"window_subgroups must be >= 1, not {max_subgroups}")
        if max_age is not None and not max_age > 0:
            raise ValueError(f"window_max_age must be > 0 seconds, not {max_age}")
        self.max_subgroups = max_subgroups
        self.max_age = max_age
        self._front: list[Entry] = []  # oldest at the end (stack top)
        self._front_aggs: list[Agg] = []  # _front_aggs[i] = _front[i] ⊕ … ⊕ _front[0] in time order
        self._back: list[Entry] = []  # newest at the end
        self._back_agg: Agg | None = None
        self._ids: dict[str, int] = {}
        self._agg: Agg | None = None  # cached window aggregate
        # (the cache is reset to None on every change)

    def __len__(self) -> int:
        return len(self._front) + len(self._back)

    def __iter__(self) -> Iterator[Entry]:
        """Entries oldest first."""
        yield from reversed(self._front)
        yield from self._back

    def push(self, entry: Entry) -> list[Entry]:
        """Append a closed subgroup; returns the entries evicted by the count bound."""
        self._back.append(entry)
        b = self._back_agg
        self._back_agg = entry.agg if b is None else b.merge(entry.agg)
        ids = self._ids
        for e in entry.event_ids:
            ids[e] = ids.get(e, 0) + 1
        self._agg = None
        evicted: list[Entry] = []
        while len(self._front) + len(self._back) > self.max_subgroups:
            evicted.append(self._pop())
        return evicted

    def evict_before(self, event_time: float) -> list[Entry]:
        """Evict from the oldest end while the oldest subgroup's newest event is older than ``event_time``."""
        evicted: list[Entry] = []
        while True:
            oldest = self.oldest
            if oldest is None or oldest.event_time >= event_time:
                return evicted
            evicted.append(self._pop())

    @property
    def oldest(self) -> Entry | None:
        if self._front:
            return self._front[-1]
        return self._back[0] if self._back else None

    def _pop(self) -> Entry:
        front = self._front
        if not front:
            aggs = self._front_aggs
            acc: Agg | None = None
            for e in reversed(self._back):
                acc = e.agg if acc is None else e.agg.merge(acc)
                front.append(e)
                aggs.append(acc)
            self._back.clear()
            self._back_agg = None
        e = front.pop()
        self._front_aggs.pop()
        ids = self._ids
        for i in e.event_ids:
            c = ids[i] - 1
            if c:
                ids[i] = c
            else:
                del ids[i]
        self._agg = None
        return e

    def aggregate(self) -> Agg | None:
        """The summary of every subgroup in the window, oldest first; None when empty. Cached until a
        change."""
        agg = self._agg
        if agg is None:
            f = self._front_aggs[-1] if self._front_aggs else None
            b = self._back_agg
            agg = b if f is None else (f if b is None else f.merge(b))
            self._agg = agg
        return agg

    def holds(self, event_id: str) -> bool:
        return event_id in self._ids

    def holds_any(self, event_ids: Iterable[str]) -> bool:
        """Whether any of ``event_ids`` is held (one C-level pass: a batch without resends costs no lookups
        per value)."""
        return not self._ids.keys().isdisjoint(event_ids)

    def values(self) -> Iterator[float]:
        """Every kept value in the window (deviations from the shift), oldest subgroup first, arrival order
        within a subgroup; subgroups restored without values contribute none."""
        for e in self:
            if e.values is not None:
                yield from e.values

    def to_dict(self) -> dict[str, object]:
        """Front and back stacks separately, so ``from_dict`` rebuilds bit-identical aggregates."""
        return {
            "max_subgroups": self.max_subgroups,
            "max_age": self.max_age,
            "front": [e.to_list() for e in reversed(self._front)],  # oldest first
            "back": [e.to_list() for e in self._back],
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], max_subgroups: int | None = None, max_age: float | None = None
    ) -> RollingWindow:
        """Rebuild; the bounds of the current options win over the stored ones when given."""
        w = cls(
            max_subgroups or int(d["max_subgroups"]), max_age if max_age is not None else d.get("max_age")
        )
        front = [Entry.from_list(x) for x in d["front"]]
        acc: Agg | None = None
        for e in reversed(front):  # newest front element first, as in _pop
            acc = e.agg if acc is None else e.agg.merge(acc)
            w._front.append(e)
            w._front_aggs.append(acc)
        for x in d["back"]:
            w._back.append(Entry.from_list(x))
            b = w._back_agg
            e = w._back[-1]
            w._back_agg = e.agg if b is None else b.merge(e.agg)
        for e in w:
            for i in e.event_ids:
                w._ids[i] = w._ids.get(i, 0) + 1
        while len(w) > w.max_subgroups:
            w._pop()
        return w
