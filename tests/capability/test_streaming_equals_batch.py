"""Streaming = batch (SPEC §4): after every subgroup close the rolling window's statistics equal an
independent numpy/scipy recomputation over exactly the subgroups in the window, to 1e-9 relative.

The batch side uses nothing from the core: constants from ``shared/data/constants.csv`` and c4 from scipy's
``gammaln``; the window contents are tracked here from the generated subgroups. σ_within follows the chart
(the spec's nominal subgroup size), as the README states: nominal 1 → moving ranges over every consecutive
pair of values in arrival order (inside a subgroup too); nominal ≥ 2 → MVLUE-R / pooled over the subgroups
of two or more values, none if there is no such subgroup.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.moments import Moments
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec
from cpkmon.capability.window import AGG_FIELDS, Agg

LSL, USL, TARGET = 9.0, 11.5, 10.0


def _constants(shared_data: Path) -> tuple[dict[int, float], dict[int, float]]:
    with (shared_data / "constants.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return (
        {int(r["n"]): float(r["d2_integration"]) for r in rows},
        {int(r["n"]): float(r["d3_integration"]) for r in rows},
    )


def _c4(n: int) -> float:
    return float(math.sqrt(2.0 / (n - 1)) * math.exp(special.gammaln(n / 2) - special.gammaln((n - 1) / 2)))


def batch(
    groups: list[np.ndarray], method: str, D2: dict[int, float], D3: dict[int, float], nominal: int
) -> dict[str, float | None]:
    """σ_within/σ_overall/mean/indices of a window of subgroups, straight from the SPEC §4 formulas, for a
    chart of nominal subgroup size ``nominal``."""
    x = np.concatenate(groups)
    n = len(x)
    mean = math.fsum(x) / n
    so = float(np.std(x, ddof=1))
    sizes = [len(g) for g in groups]
    multi = [g for g in groups if len(g) >= 2]
    sw: float | None
    if nominal == 1:
        sw = float(np.mean(np.abs(np.diff(x)))) / D2[2]
    elif not multi:
        sw = None
    elif method == "pooled":
        d = sum(len(g) - 1 for g in multi)
        sw = math.sqrt(math.fsum((len(g) - 1) * np.var(g, ddof=1) for g in multi) / d) / _c4(d + 1)
    else:
        f = [(D2[len(g)] / D3[len(g)]) ** 2 for g in multi]
        sw = math.fsum(
            fi * (g.max() - g.min()) / D2[len(g)] for fi, g in zip(f, multi, strict=True)
        ) / math.fsum(f)
        if len(set(sizes)) == 1:  # equal sizes: the same as R̄/d2
            assert sw == pytest.approx(np.mean([g.max() - g.min() for g in groups]) / D2[sizes[0]], rel=1e-12)
    ppk = min((USL - mean) / (3 * so), (mean - LSL) / (3 * so))
    if sw is None:
        return {"n": n, "mean": mean, "sigma_within": None, "sigma_overall": so, "cpk": None}
    cpu = (USL - mean) / (3 * sw)
    cpl = (mean - LSL) / (3 * sw)
    return {
        "n": n,
        "mean": mean,
        "sigma_within": sw,
        "sigma_overall": so,
        "cp": (USL - LSL) / (6 * sw),
        "cpk": min(cpu, cpl),
        "ppk": ppk,
        "cpm": (USL - LSL) / (6 * math.sqrt(sw**2 + (mean - TARGET) ** 2)),
    }


def _check(status: dict[str, object], want: dict[str, float | None]) -> None:
    assert status["n"] == want["n"]
    for k, v in want.items():
        if k == "n":
            continue
        got = status[k]
        if v is None:  # the chart's estimator has nothing to work on: no σ_within, no indices
            assert got is None, (k, got)
            continue
        assert isinstance(got, float), (k, got)
        assert abs(got - v) <= 1e-9 * abs(v), f"{k}: {got!r} vs batch {v!r}"


def _groups(rng: np.random.Generator, k: int, sizes: list[int]) -> list[np.ndarray]:
    return [10.0 + rng.normal(0, 0.05) + rng.normal(0, 0.2, int(rng.choice(sizes))) for _ in range(k)]


@pytest.mark.parametrize("window", [2, 7, 25])
@pytest.mark.parametrize(
    ("sizes", "method"),
    [
        ([5], "default"),
        ([2, 3, 4, 5, 6, 7, 9], "default"),
        ([2, 3, 5, 8, 13], "pooled"),
        ([4], "pooled"),
        ([1, 2, 5], "default"),
    ],
)
def test_rolling_window_equals_batch(shared_data: Path, window: int, sizes: list[int], method: str) -> None:
    D2, D3 = _constants(shared_data)
    rng = np.random.default_rng(abs(hash((window, tuple(sizes), method))) % 2**32)
    groups = _groups(rng, 80, sizes)
    assert _run_ids(groups, window, method, D2, D3) > 60


def _run_ids(
    groups: list[np.ndarray],
    window: int,
    method: str,
    D2: dict[int, float],
    D3: dict[int, float],
    max_age: float | None = None,
    nominal: int | None = None,
) -> int:
    """Explicit subgroup ids: a subgroup closes when the next one's first value arrives (or at flush). The
    spec's nominal size is ``nominal``, else the first subgroup's size."""
    opts = Options(
        window_subgroups=window,
        min_subgroups=1,
        sigma_method=method,  # type: ignore[arg-type]
        window_max_age=max_age,
    )
    nominal = nominal or len(groups[0])
    ch = Characteristic("L", "x", Spec(lsl=LSL, usl=USL, target=TARGET, subgroup_size=nominal), opts)
    closed: list[tuple[float, np.ndarray]] = []
    ts = 0.0
    last_ts: list[float] = []
    checks = 0

    def compare(now: float) -> int:
        in_window = closed[-window:]
        if max_age is not None:
            in_window = [(t, v) for t, v in in_window if t >= now - max_age]
        st_ = ch.status()
        assert st_["subgroups"] == len(in_window)
        if sum(len(v) for _, v in in_window) >= 2:
            _check(st_, batch([v for _, v in in_window], method, D2, D3, nominal))
            return 1
        return 0

    for gi, g in enumerate(groups):
        for v in g:
            ts += 1.0
            res = ch.add(float(v), ts, f"e{ts}", f"g{gi}")
            if res:
                assert len(res) == 1 and res[0].subgroup == f"g{gi - 1}" and res[0].n == len(groups[gi - 1])
                closed.append((last_ts[-1], groups[gi - 1]))
                checks += compare(ts)
        last_ts.append(ts)
    ch.flush()
    closed.append((last_ts[-1], groups[-1]))
    checks += compare(ts)
    return checks


@pytest.mark.parametrize("method", ["default", "pooled"])
@pytest.mark.parametrize(
    ("nominal", "sizes"),
    [
        (1, [1, 1, 1, 1, 1, 1, 2, 3]),  # individuals with re-measured parts (stray pairs and triples)
        (5, [5, 5, 5, 5, 1]),  # X̄–R with stray single values
        (12, [12, 12, 11, 1]),  # X̄–S likewise
    ],
)
def test_mixed_sizes_follow_the_chart(shared_data: Path, nominal: int, sizes: list[int], method: str) -> None:
    """The estimator is the chart's whatever arrives: stray subgroups of another size never switch it."""
    D2, D3 = _constants(shared_data)
    rng = np.random.default_rng(7 * nominal + len(method))
    groups = _groups(rng, 90, sizes)
    assert _run_ids(groups, 25, method, D2, D3, nominal=nominal) > 80


@pytest.mark.parametrize("window", [2, 10, 25])
def test_individuals_moving_range_equals_batch(shared_data: Path, window: int) -> None:
    """Fixed grouping, size 1: MR̄/d2(2) over the window only (the MR to an evicted value never counts)."""
    D2, D3 = _constants(shared_data)
    rng = np.random.default_rng(window)
    x = 50 + rng.normal(0, 1.5, 300)
    ch = Characteristic(
        "L",
        "x",
        Spec(lsl=LSL, usl=USL, target=TARGET, subgroup_size=1),
        Options(window_subgroups=window, min_subgroups=1),
    )
    for i, v in enumerate(x):
        res = ch.add(float(v), float(i), f"e{i}")
        assert len(res) == 1
        w = x[max(0, i + 1 - window) : i + 1]
        if len(w) >= 2:
            _check(ch.status(), batch([np.array([u]) for u in w], "default", D2, D3, 1))
    assert ch.status()["sigma_estimator"] == "moving_range"


@pytest.mark.parametrize("size", [1, 5])
def test_fixed_size_grouping_equals_batch(shared_data: Path, size: int) -> None:
    D2, D3 = _constants(shared_data)
    rng = np.random.default_rng(size + 100)
    x = 10 + rng.normal(0, 0.3, 400)
    window = 12
    ch = Characteristic(
        "L",
        "x",
        Spec(lsl=LSL, usl=USL, target=TARGET, subgroup_size=size),
        Options(window_subgroups=window, min_subgroups=1),
    )
    for i, v in enumerate(x):
        if ch.add(float(v), float(i), f"e{i}") and (i + 1) // size >= 2:
            groups = [x[j * size : (j + 1) * size] for j in range((i + 1) // size)][-window:]
            _check(ch.status(), batch(groups, "default", D2, D3, size))


@pytest.mark.parametrize(("sizes", "method"), [([5], "default"), ([1], "default"), ([2, 4, 6], "pooled")])
def test_window_max_age_equals_batch(shared_data: Path, sizes: list[int], method: str) -> None:
    """Age bound (event time relative to the newest event) together with the count bound."""
    D2, D3 = _constants(shared_data)
    rng = np.random.default_rng(42 + len(sizes))
    groups = _groups(rng, 120, sizes)
    if sizes == [1]:
        # individuals with explicit ids; ages short enough that the age bound is the binding one
        assert _run_ids(groups, 30, method, D2, D3, max_age=12.5) > 100
    else:
        assert _run_ids(groups, 25, method, D2, D3, max_age=40.0) > 100


def _agg_of(values: list[float]) -> Agg:
    return Agg.of_subgroup(Moments.of(values), values[0], values[-1], values)


subgroup = st.lists(st.floats(min_value=-100, max_value=100, allow_nan=False), min_size=1, max_size=25)


@settings(max_examples=200, deadline=None)
@given(subgroup, subgroup, subgroup)
def test_window_summary_merge_is_associative(a: list[float], b: list[float], c: list[float]) -> None:
    left = _agg_of(a).merge(_agg_of(b)).merge(_agg_of(c))
    right = _agg_of(a).merge(_agg_of(b).merge(_agg_of(c)))
    for name in AGG_FIELDS:
        lv, rv = getattr(left, name), getattr(right, name)
        assert lv == pytest.approx(rv, rel=1e-9, abs=1e-9 * (1 + abs(lv))), name
