"""Streaming moments of a set of values: count, mean, M2 (sum of squared deviations from the mean), min, max.

Why Welford/Chan and not Σx, Σx²: the SPEC requires streaming = batch to 1e-9 relative even for values like
1e6 ± 1e-3, where Σx² − (Σx)²/n cancels catastrophically. ``add`` is Welford's update and ``merge`` Chan et
al.'s pairwise combination; both only ever add non-negative squared terms to M2, so there is no subtraction of
large sums. ``merge`` is associative up to rounding (a hypothesis test checks it), which is what the rolling
window's two-stack aggregation needs.
"""

from __future__ import annotations

import math


class Moments:
    """(n, mean, m2, lo, hi) of the values seen; the empty summary has n = 0, lo = +inf, hi = −inf."""

    __slots__ = ("hi", "lo", "m2", "mean", "n")

    def __init__(
        self, n: int = 0, mean: float = 0.0, m2: float = 0.0, lo: float = math.inf, hi: float = -math.inf
    ) -> None:
        self.n = n
        self.mean = mean
        self.m2 = m2
        self.lo = lo
        self.hi = hi

    @classmethod
    def of(cls, values: list[float] | tuple[float, ...]) -> Moments:
        """Moments of a sequence, by repeated ``add`` (the same arithmetic as streaming)."""
        m = cls()
        for x in values:
            m.add(x)
        return m

    def add(self, x: float) -> None:
        """Welford's update with one value."""
        n = self.n + 1
        delta = x - self.mean
        mean = self.mean + delta / n
        self.m2 += delta * (x - mean)
        self.mean = mean
        self.n = n
        if x < self.lo:
            self.lo = x
        if x > self.hi:
            self.hi = x

    def merge(self, other: Moments) -> Moments:
        """A new summary of both sets (Chan's parallel combination); neither operand changes."""
        na = self.n
        nb = other.n
        if na == 0:
            return Moments(nb, other.mean, other.m2, other.lo, other.hi)
        if nb == 0:
            return Moments(na, self.mean, self.m2, self.lo, self.hi)
        n = na + nb
        delta = other.mean - self.mean
        mean = self.mean + delta * (nb / n)
        m2 = self.m2 + other.m2 + delta * delta * (na * nb / n)
        return Moments(n, mean, m2, min(self.lo, other.lo), max(self.hi, other.hi))

    def copy(self) -> Moments:
        return Moments(self.n, self.mean, self.m2, self.lo, self.hi)

    @property
    def range(self) -> float:
        """hi − lo (0 for fewer than two values)."""
        return self.hi - self.lo if self.n >= 2 else 0.0

    @property
    def variance(self) -> float | None:
        """Sample variance (n − 1); None below two values."""
        return self.m2 / (self.n - 1) if self.n >= 2 else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n − 1); None below two values."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n >= 2 else None

    def to_list(self) -> list[object]:
        """JSON-safe and exact (floats round-trip through JSON's repr); empty lo/hi as None."""
        return [
            self.n,
            self.mean,
            self.m2,
            None if self.n == 0 else self.lo,
            None if self.n == 0 else self.hi,
        ]

    @classmethod
    def from_list(cls, data: list[object]) -> Moments:
        n, mean, m2, lo, hi = data
        assert isinstance(n, int) and isinstance(mean, int | float) and isinstance(m2, int | float)
        if n == 0:
            return cls()
        assert isinstance(lo, int | float) and isinstance(hi, int | float)
        return cls(n, float(mean), float(m2), float(lo), float(hi))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Moments):
            return NotImplemented
        return (self.n, self.mean, self.m2, self.lo, self.hi) == (
            other.n,
            other.mean,
            other.m2,
            other.lo,
            other.hi,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Moments(n={self.n}, mean={self.mean!r}, m2={self.m2!r}, lo={self.lo!r}, hi={self.hi!r})"
