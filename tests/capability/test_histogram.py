"""The capability histogram of the window's individual values (issue 9, finding 8).

Checked against an independent numpy count of the values the test itself knows are in the window; the bin
rule's promises (limits on edges, values on a limit drawn in spec, edges covering the data), the out-of-spec
counts, the cache, and checkpoints (exact round trip; state written before values were kept still loads).
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.histogram import MAX_BINS, capability_histogram
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

SPEC = Spec(lsl=73.95, usl=74.05, target=74.0, subgroup_size=5)


def numpy_counts(x: np.ndarray, edges: np.ndarray, mid: float) -> np.ndarray:
    """Bins closed toward the spec midpoint: (e_i, e_i+1] at or above it, [e_i, e_i+1) below."""
    right = np.searchsorted(edges, x, side="left") - 1
    left = np.searchsorted(edges, x, side="right") - 1
    idx = np.clip(np.where(x >= mid, right, left), 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1)


def _feed(ch: Characteristic, groups: list[list[float]], t0: int = 0) -> None:
    t = t0
    for g in groups:
        for v in g:
            ch.add(v, float(t), f"e{t}")
            t += 1


def _groups(seed: int, k: int, mean: float = 74.0, sd: float = 0.012) -> list[list[float]]:
    rng = random.Random(seed)
    return [[round(rng.gauss(mean, sd), 3) for _ in range(5)] for _ in range(k)]


def test_counts_are_the_window_values_binned() -> None:
    groups = _groups(1, 60)
    groups[50][2] = 74.05  # exactly on the USL (in spec)
    groups[51][0] = 73.95  # exactly on the LSL (in spec)
    groups[52][1] = 74.07  # beyond the USL
    groups[53][3] = 73.93  # beyond the LSL
    groups[54][4] = 73.92
    ch = Characteristic("L", "ring", SPEC, Options(window_subgroups=25, min_subgroups=20))
    _feed(ch, groups)
    s = ch.status()
    h = s["histogram"]
    assert isinstance(h, dict)
    x = np.array([v for g in groups[-25:] for v in g])  # the window: the last 25 subgroups
    edges = np.array(h["edges"])
    counts = np.array(h["counts"])
    assert h["n"] == s["n"] == len(x) == 125 and counts.sum() == 125
    assert len(edges) == len(counts) + 1 and np.all(np.diff(edges) > 0)
    assert edges[0] <= x.min() and edges[-1] >= x.max()
    assert np.array_equal(counts, numpy_counts(x, edges, 74.0))
    assert h["below_lsl"] == int(np.sum(x < 73.95)) == 2 and h["above_usl"] == int(np.sum(x > 74.05)) == 1
    # both limits are bin edges, and the values on them are drawn on the in-spec side
    assert 73.95 in h["edges"] and 74.05 in h["edges"]
    i_usl, i_lsl = h["edges"].index(74.05), h["edges"].index(73.95)
    assert sum(h["counts"][i_usl:]) == 1 and sum(h["counts"][:i_lsl]) == 2
    assert h["bin_width"] == pytest.approx(edges[1] - edges[0])
    assert 5 <= len(counts) <= MAX_BINS
    # the curves the page draws (n·h·pdf) are on the scale of these counts: the peak bar is near the peak
    sw = s["sigma_within"]
    assert isinstance(sw, float)
    peak = 125 * h["bin_width"] / (sw * np.sqrt(2 * np.pi))
    assert 0.5 < counts.max() / peak < 1.6


def test_individuals_and_one_sided_spec() -> None:
    rng = random.Random(4)
    ch = Characteristic(
        "L", "flat", Spec(usl=0.05, subgroup_size=1), Options(window_subgroups=30, min_subgroups=5)
    )
    xs = [abs(round(rng.gauss(0.02, 0.01), 4)) for _ in range(50)] + [0.05, 0.061]
    for i, v in enumerate(xs):
        ch.add(v, float(i), f"e{i}")
    h = ch.status()["histogram"]
    assert isinstance(h, dict)
    x = np.array(xs[-30:])
    assert h["below_lsl"] is None and h["above_usl"] == 1 and h["n"] == 30
    assert 0.05 in h["edges"]
    assert np.array_equal(np.array(h["counts"]), numpy_counts(x, np.array(h["edges"]), np.inf))


def test_empty_and_degenerate() -> None:
    ch = Characteristic("L", "x", SPEC, Options())
    assert ch.status()["histogram"] is None
    assert capability_histogram([], 74.0, 73.95, 74.05) is None
    same = capability_histogram([0.001] * 7, 74.0, 73.95, 74.05)
    assert same is not None and same["counts"] == [7] and same["n"] == 7
    e = same["edges"]
    assert isinstance(e, list) and e[0] < 74.001 < e[1]


def test_cached_while_the_window_is_unchanged() -> None:
    ch = Characteristic("L", "ring", SPEC, Options(window_subgroups=25, min_subgroups=20))
    _feed(ch, _groups(2, 30))
    first = ch.status()["histogram"]
    assert ch.status()["histogram"] is first  # the same object: nothing recomputed
    ch.add(74.001, 1e6, "open")  # enters the open subgroup only
    assert ch.status()["histogram"] is first
    _feed(ch, [[74.0, 74.01, 73.99, 74.0]], t0=10**6 + 1)  # closes a subgroup
    assert ch.status()["histogram"] is not first


def test_checkpoint_round_trip_is_exact() -> None:
    opts = Options(window_subgroups=25, min_subgroups=20)
    ch = Characteristic("L", "ring", SPEC, opts)
    groups = _groups(3, 40)
    _feed(ch, groups)
    ch.add(74.003, 1e6, "open-1")  # an open subgroup with values
    state = json.loads(json.dumps(ch.to_dict(), allow_nan=False))
    back = Characteristic.from_dict(state, opts)
    assert back.status() == ch.status()
    assert back.to_dict() == ch.to_dict()
    more = _groups(5, 3)
    _feed(ch, more, t0=10**6 + 1)
    _feed(back, more, t0=10**6 + 1)
    assert back.status() == ch.status()


def _strip_values(state: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint written before values were kept looks like."""
    win = state["window"]
    for side in ("front", "back"):
        win[side] = [e[:7] for e in win[side]]
    if state["assembler"]["open"] is not None:
        del state["assembler"]["open"]["values"]
    return state


def test_checkpoint_without_values_still_loads() -> None:
    opts = Options(window_subgroups=25, min_subgroups=20)
    ch = Characteristic("L", "ring", SPEC, opts)
    _feed(ch, _groups(6, 30))
    ch.add(74.003, 1e6, "open-1")
    old = _strip_values(json.loads(json.dumps(ch.to_dict())))
    back = Characteristic.from_dict(old, opts)
    s, s0 = back.status(), ch.status()
    for k in ("n", "mean", "sigma_within", "sigma_overall", "cpk", "subgroups"):
        assert s[k] == s0[k], k
    assert s["histogram"] is None  # no values kept yet: nothing to bin
    new = _groups(7, 2)
    _feed(back, new, t0=10**6 + 1)
    h = back.status()["histogram"]
    assert isinstance(h, dict)
    # only whole subgroups with their values are binned: the one that was open (its first value unknown)
    # is not; the next five values make one that is (and the tenth opens another)
    assert h["n"] == 5 and sum(h["counts"]) == 5 and back.status()["n"] == 125


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=-3000, max_value=3000), min_size=1, max_size=300),
    st.sampled_from([(-1.0, 1.0), (-0.1, 0.25), (None, 0.5), (-0.5, None), (0.5, 0.6)]),
)
def test_property_counts_match_numpy(raw: list[int], limits: tuple[float | None, float | None]) -> None:
    """Values on a 1e-3 grid (gauges round; many sit exactly on limits): counts sum to n, match numpy's
    count with the same edges, out-of-spec counts are exact, edges cover the data, limits on edges."""
    lsl, usl = limits
    if lsl is not None and usl is not None:
        shift = lsl + (usl - lsl) / 2.0
    else:
        one = lsl if usl is None else usl
        assert one is not None
        shift = one
    xs = np.array([v / 1000.0 for v in raw])
    h = capability_histogram([float(v) - shift for v in xs], shift, lsl, usl)
    assert h is not None
    edges, counts = np.array(h["edges"]), np.array(h["counts"])
    assert counts.sum() == h["n"] == len(xs) and len(edges) == len(counts) + 1
    assert np.all(np.diff(edges) > 0) and edges[0] <= xs.min() and edges[-1] >= xs.max()
    assert len(counts) <= MAX_BINS + 2
    mid = shift if lsl is not None and usl is not None else (np.inf if lsl is None else -np.inf)
    assert_counts_match(counts, numpy_counts(xs, edges, mid), xs, edges, (lsl, usl))
    assert h["below_lsl"] == (None if lsl is None else int(np.sum(xs < lsl)))
    assert h["above_usl"] == (None if usl is None else int(np.sum(xs > usl)))
    if xs.max() > xs.min():
        width = float(h["bin_width"])  # type: ignore[arg-type]
        aligned = lsl is None or usl is None or abs((usl - lsl) / width - round((usl - lsl) / width)) < 1e-6
        for lim in (lsl, usl) if aligned else (lsl,):  # the module docstring: too many bins → only LSL
            if lim is not None and edges[0] <= lim <= edges[-1]:
                assert lim in edges.tolist()


def assert_counts_match(
    counts: np.ndarray, ref: np.ndarray, xs: np.ndarray, edges: np.ndarray, limits: tuple[float | None, ...]
) -> None:
    """Equal counts, except that a value within float noise of an interior edge that is not a spec limit may
    sit in either bin beside it: the worker bins the stored deviations from the shift, the reference the
    values in measurement units, and the two round a tie differently (a limit edge is exact in both)."""
    diff = (counts - ref).astype(int)
    scale = max(1.0, float(np.max(np.abs(edges))))
    for x in xs:
        for k in range(1, len(edges) - 1):
            if abs(x - edges[k]) <= 1e-9 * scale and edges[k] not in limits:
                if diff[k - 1] > 0 > diff[k]:
                    diff[k - 1] -= 1
                    diff[k] += 1
                elif diff[k - 1] < 0 < diff[k]:
                    diff[k - 1] += 1
                    diff[k] -= 1
    assert not diff.any(), (counts.tolist(), ref.tolist())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=1, max_size=60),
    st.sampled_from([0.0, 1.0, 1e6, -250.0]),
    st.sampled_from([(-1.0, 1.0), (-1e-9, 1e-9), (None, 1e-300), (-5.0, None), (0.0, 1e3)]),
)
def test_property_any_data_gives_a_sound_histogram(
    devs: list[float], shift: float, limits: tuple[float | None, float | None]
) -> None:
    """Tiny, huge, subnormal or equal spreads, data far from the limits: a histogram whose counts sum to n
    and whose edges increase and cover the values."""
    lsl = None if limits[0] is None else shift + limits[0]
    usl = None if limits[1] is None else shift + limits[1]
    if lsl is not None and usl is not None and not lsl < usl:
        return  # the offset swallowed the spec width: no valid spec
    h = capability_histogram(devs, shift, lsl, usl)
    assert h is not None
    edges, counts = h["edges"], h["counts"]
    assert isinstance(edges, list) and isinstance(counts, list)
    assert sum(counts) == h["n"] == len(devs) and len(edges) == len(counts) + 1
    assert all(b > a for a, b in itertools.pairwise(edges))
    assert len(counts) <= MAX_BINS + 2
