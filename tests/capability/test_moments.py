"""Welford add and Chan merge: agree with a two-pass batch, associative, exact JSON round trip."""

from __future__ import annotations

import math
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cpkmon.capability.moments import Moments

values = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False), max_size=30
)


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), scale) + 1e-300


def _same(a: Moments, b: Moments) -> None:
    assert a.n == b.n
    if a.n == 0:
        return
    scale = max(abs(a.lo), abs(a.hi), 1e-12)
    assert _close(a.mean, b.mean, scale)
    assert _close(a.m2, b.m2, scale * scale * max(1, a.n))
    assert a.lo == b.lo and a.hi == b.hi


def test_welford_matches_two_pass_with_large_offset() -> None:
    """As deviations from a shift (how the core stores values) Welford matches a two-pass fsum to 1e-12;
    on the raw 1e6-scale values each delta carries an ulp of 1e6 (~1e-7 of the spread) and M2 is only ~1e-8
    close, which is why the core never feeds raw values."""
    rng = np.random.default_rng(7)
    x = 1e6 + rng.normal(0, 1e-3, 10_000)
    mean = math.fsum(x) / len(x)
    m2 = math.fsum((v - mean) ** 2 for v in x)
    raw = Moments.of(x.tolist())
    assert abs(raw.mean / mean - 1) <= 1e-14
    assert abs(raw.m2 / m2 - 1) <= 1e-6
    assert raw.lo == x.min() and raw.hi == x.max()
    dev = [v - 1e6 for v in x.tolist()]  # exact (Sterbenz)
    md = Moments.of(dev)
    assert abs(md.mean - (math.fsum(dev) / len(dev))) <= 1e-12 * 1e-3
    assert abs(md.m2 / m2 - 1) <= 1e-12
    assert md.std is not None and abs(md.std / np.std(x, ddof=1) - 1) <= 1e-9


@settings(max_examples=300, deadline=None)
@given(values, values, values)
def test_merge_is_associative(a: list[float], b: list[float], c: list[float]) -> None:
    ma, mb, mc = Moments.of(a), Moments.of(b), Moments.of(c)
    left = ma.merge(mb).merge(mc)
    right = ma.merge(mb.merge(mc))
    _same(left, right)
    _same(left, Moments.of(a + b + c))


@settings(max_examples=200, deadline=None)
@given(values)
def test_add_order_does_not_matter(a: list[float]) -> None:
    b = list(a)
    random.Random(len(a)).shuffle(b)
    _same(Moments.of(a), Moments.of(b))


def test_merge_leaves_operands_untouched_and_round_trips() -> None:
    a, b = Moments.of([1.0, 2.0]), Moments.of([5.0])
    c = a.merge(b)
    assert a == Moments.of([1.0, 2.0]) and b == Moments.of([5.0])
    assert c.n == 3 and c.mean == 8 / 3
    assert Moments.from_list(c.to_list()) == c
    assert Moments.from_list(Moments().to_list()).n == 0
    assert Moments().std is None and Moments.of([3.0]).variance is None
