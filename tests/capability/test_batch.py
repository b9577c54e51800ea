"""The batch path of one characteristic equals the event path bit for bit (issue 11, batch application).

``Characteristic.add_batch``/``apply_batch`` must return exactly the closes N calls of ``add`` return and
leave exactly the state they leave — for any split of the stream into batches, with the numpy moments and with
the pure-Python ones. Floats are compared through ``repr`` (JSON), so ``-0.0`` against ``0.0`` or a last-bit
difference fails the test.
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpkmon.capability import batch as _batch
from cpkmon.capability.characteristic import Characteristic, ClosedSubgroupResult
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

T0 = 1_763_626_502.0
SPECS = [
    Spec(lsl=9.0, usl=11.0, target=10.0, subgroup_size=5),
    Spec(lsl=9.0, usl=11.0, subgroup_size=1),
    Spec(lsl=9.0, usl=11.0, subgroup_size=3, center=10.0, sigma=0.2),
    Spec(usl=11.0, subgroup_size=2),
]


def _dump(x: Any) -> str:
    return json.dumps(x, default=repr)


def _res(rs: list[ClosedSubgroupResult]) -> str:
    return _dump([repr(r) for r in rs])


Row = tuple[float, float, str, str | None, str | None]


def _stream(seed: int, n: int, keyed: float, dup: float) -> list[Row]:
    """(value, ts, id, subgroup id, station): regime shifts, ties, negative zeros, keyed runs, resent ids."""
    rnd = random.Random(seed)
    out: list[Row] = []
    key = 0
    left = 0
    mean = 10.0
    for i in range(n):
        if rnd.random() < 0.03:
            mean = 10.0 + rnd.choice([-0.6, -0.2, 0.0, 0.3, 0.8])
        r = rnd.random()
        value = 0.0 if r < 0.01 else -0.0 if r < 0.02 else mean if r < 0.05 else rnd.gauss(mean, 0.15)
        ts = T0 + i * 0.5 + rnd.choice([0.0, 0.0, -3.0, 2.0])  # out of order now and then
        sg: str | None = None
        if rnd.random() < keyed:
            if left == 0:
                key += 1
                left = rnd.randint(1, 30)
            left -= 1
            sg = str(key)
        eid = f"e{i}"
        if out and rnd.random() < dup:
            eid = out[rnd.randrange(max(0, len(out) - 40), len(out))][2]
        out.append((value, ts, eid, sg, rnd.choice([None, "S1", "S2"])))
    return out


def _event_path(ch: Characteristic, rows: list[Any], skip_held: bool) -> tuple[list[bool], list[Any]]:
    acc: list[bool] = []
    res: list[Any] = []
    for v, t, e, sg, s in rows:
        if skip_held and ch.holds(e):
            acc.append(False)
            continue
        acc.append(True)
        res.append(ch.add(v, t, e, sg, s))
    return acc, res


def _batch_path(
    ch: Characteristic, rows: list[Any], skip_held: bool, numpy_min: int
) -> tuple[list[bool], list[Any]]:
    res: dict[int, list[ClosedSubgroupResult]] = {}

    def seen(pos: int, closed: list[ClosedSubgroupResult]) -> None:
        assert pos not in res
        res[pos] = closed

    acc = ch.apply_batch(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        [r[4] for r in rows], skip_held=skip_held, on_change=seen, numpy_min=numpy_min,
    )
    # the event path's per-value results, reconstructed: accepted values without a change closed nothing
    out = [res.get(i, []) for i, a in enumerate(acc) if a]
    return acc, out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 400),
    spec_i=st.integers(0, len(SPECS) - 1),
    keyed=st.sampled_from([0.0, 0.5, 1.0]),
    dup=st.sampled_from([0.0, 0.05]),
    window=st.integers(1, 12),
    max_age=st.sampled_from([None, None, 20.0]),
    numpy_min=st.sampled_from([1, 1000]),
    skip_held=st.booleans(),
    cuts=st.lists(st.integers(0, 400), max_size=8),
    spec_change=st.integers(-1, 3),
    restore=st.booleans(),
)
def test_batch_equals_event_path(
    seed: int, n: int, spec_i: int, keyed: float, dup: float, window: int, max_age: float | None,
    numpy_min: int, skip_held: bool, cuts: list[int], spec_change: int, restore: bool,
) -> None:
    opts = Options(window_subgroups=window, window_max_age=max_age, min_subgroups=min(window, 4),
                   run_rules=(1, 2, 3, 4, 5, 6, 7, 8), chart_points=30)
    rows = _stream(seed, n, keyed, dup)
    a = Characteristic("L", "c", SPECS[spec_i], opts, station="S0")
    b = Characteristic("L", "c", SPECS[spec_i], opts, station="S0")
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if k == 1 and spec_change >= 0:  # a spec change between batches (a changed subgroup size too)
            a.set_spec(SPECS[spec_change])
            b.set_spec(SPECS[spec_change])
        if k == 2 and restore:  # a restored characteristic continues identically
            a = Characteristic.from_dict(json.loads(json.dumps(a.to_dict())), opts)
            b = Characteristic.from_dict(json.loads(json.dumps(b.to_dict())), opts)
        ea, er = _event_path(a, rows[lo:hi], skip_held)
        ba, br = _batch_path(b, rows[lo:hi], skip_held, numpy_min)
        assert ea == ba
        assert _dump([[repr(r) for r in x] for x in er]) == _dump([[repr(r) for r in x] for x in br])
        assert _dump(a.to_dict()) == _dump(b.to_dict())
    a_flush, b_flush = a.flush(), b.flush()
    assert _res(a_flush) == _res(b_flush)
    assert _dump(a.status()) == _dump(b.status())
    assert _dump(a.to_dict()) == _dump(b.to_dict())
    assert a.version == b.version


@pytest.mark.parametrize("size", [1, 2, 5, 13])
def test_add_batch_returns_what_add_returns(size: int) -> None:
    """``add_batch`` is the concatenation of ``add``'s returns; numpy and Python moments agree exactly."""
    rows = _stream(7, 3000, 0.0, 0.0)
    spec = Spec(lsl=9.0, usl=11.0, target=10.0, subgroup_size=size)
    ev = Characteristic("L", "c", spec, Options(), station="S0")
    want: list[ClosedSubgroupResult] = []
    for v, t, e, sg, s in rows:
        want += ev.add(v, t, e, sg, s)
    got = {}
    for numpy_min in (1, 10**9):
        old = _batch.NUMPY_MIN_SUBGROUPS
        _batch.NUMPY_MIN_SUBGROUPS = numpy_min
        try:
            ch = Characteristic("L", "c", spec, Options(), station="S0")
            args = ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], None,
                    [r[4] for r in rows])
            got[numpy_min] = ch.add_batch(*args)
        finally:
            _batch.NUMPY_MIN_SUBGROUPS = old
        assert _dump(ch.to_dict()) == _dump(ev.to_dict())
        assert _dump(ch.status()) == _dump(ev.status())
    assert len(want) == len(rows) // size
    assert _res(got[1]) == _res(want) == _res(got[10**9])


def test_plan_cuts_like_the_assembler() -> None:
    """The subgroup plan of a keyed batch: a new id closes the open subgroup at the value that brings it;
    25 values close a keyed subgroup; an unkeyed value after a keyed one closes it too."""
    keys: list[str | None] = ["a", "a", "b", *(["c"] * 26), None, None]
    p = _batch.plan(3, "z", 2, True, keys, len(keys))
    assert [(c.start, c.stop, c.key, c.pos, c.cont) for c in p.cuts] == [
        (0, 0, "z", 0, True), (0, 2, "a", 2, False), (2, 3, "b", 3, False), (3, 28, "c", 27, False),
        (28, 29, "c", 29, False),
    ]
    assert (p.open_start, p.open_key, p.open_cont) == (29, None, False)
    # no ids: the open subgroup is completed first, then fixed-size chunks
    p = _batch.plan(5, None, 3, True, None, 11)
    assert [(c.start, c.stop, c.pos, c.cont) for c in p.cuts] == [(0, 2, 1, True), (2, 7, 6, False)]
    assert (p.open_start, p.open_cont) == (7, False)


def test_numpy_moments_keep_negative_zero_like_python() -> None:
    """min/max with the event path's strict comparisons: a subgroup of 0.0 and -0.0 keeps the first."""
    xs = [0.0, -0.0, -0.0, 0.0] * 30
    ts = [T0] * len(xs)
    cuts = _batch.plan(2, None, 0, False, None, len(xs)).cuts
    py = _batch.moments(xs, ts, cuts, numpy_min=10**9)
    nps = _batch.moments(xs, ts, cuts, numpy_min=1)
    assert _dump({k: [repr(x) for x in v] for k, v in py.items()}) == _dump(
        {k: [repr(x) for x in v] for k, v in nps.items()}
    )
    assert repr(py[0][2]) == "0.0" and repr(py[1][2]) == "-0.0"
