"""Characteristic: status object, insufficient data, dedupe ids, counting, chart baseline, persistence,
invariances."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpkmon.capability.characteristic import Characteristic, ClosedSubgroupResult
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

STATUS_FIELDS = {
    "characteristic",
    "station",
    "values_total",
    "last_event_time",
    "n",
    "subgroups",
    "mean",
    "sigma_within",
    "sigma_overall",
    "cp",
    "cpu",
    "cpl",
    "cpk",
    "cpk_ci",
    "pp",
    "ppu",
    "ppl",
    "ppk",
    "cpm",
    "lsl",
    "usl",
    "target",
    "subgroup_size",
    "sigma_method",
    "state",
    "stable",
    "control",
    "points",
    "violations",
}
CAPABILITY = ("cp", "cpu", "cpl", "cpk", "cpk_ci", "pp", "ppu", "ppl", "ppk", "cpm")
SPEC = Spec(lsl=9.0, usl=11.0, target=10.0, subgroup_size=5)


def feed(
    ch: Characteristic, values: list[float], start: int = 0, t0: float = 1_763_626_502.0
) -> list[ClosedSubgroupResult]:
    out: list[ClosedSubgroupResult] = []
    for i, v in enumerate(values, start=start):
        out += ch.add(v, t0 + i, f"e{i}")
    return out


def normal(n: int, seed: int = 1, mu: float = 10.0, sd: float = 0.2) -> list[float]:
    return list(np.random.default_rng(seed).normal(mu, sd, n))


def test_status_fields_and_insufficient_data() -> None:
    ch = Characteristic("L1", "bore", SPEC, Options(), station="S10")
    s = ch.status()
    assert set(s) >= STATUS_FIELDS
    assert s["state"] == "insufficient_data" and s["n"] == 0 and s["mean"] is None and s["stable"] is None
    assert all(s[k] is None for k in CAPABILITY)
    feed(ch, normal(19 * 5 + 3))
    s = ch.status()
    assert (
        s["subgroups"] == 19 and s["n"] == 95 and s["values_total"] == 98 and s["open_subgroup_values"] == 3
    )
    assert s["state"] == "insufficient_data" and all(s[k] is None for k in CAPABILITY)
    assert s["sigma_within"] is not None and s["mean"] is not None  # descriptive statistics are still shown
    assert ch.cpk is None and s["control"] is None
    feed(ch, normal(2, seed=2), start=98)
    s = ch.status()
    assert s["state"] == "ok" and s["subgroups"] == 20 and ch.cpk == s["cpk"] is not None
    assert isinstance(s["cpk_ci"], list) and s["cpk_ci"][0] < s["cpk"] < s["cpk_ci"][1]
    assert s["last_event_time"] == "2025-11-20T08:16:41.000Z" and s["station"] == "S10"
    assert json.loads(json.dumps(s, allow_nan=False)) == s


def test_zero_spread_is_insufficient() -> None:
    ch = Characteristic("L1", "c", SPEC, Options(min_subgroups=2))
    feed(ch, [10.0] * 50)
    s = ch.status()
    assert s["subgroups"] == 10 and s["sigma_within"] == 0.0 and s["state"] == "insufficient_data"
    assert s["cpk"] is None and s["control"] is None  # no baseline from a zero sigma


def test_holds_and_values_total_with_eviction() -> None:
    ch = Characteristic("L1", "c", SPEC, Options(window_subgroups=3, min_subgroups=1))
    feed(ch, normal(22))
    assert ch.values_total == 22
    # closed: e0-4, e5-9, e10-14, e15-19; window (3 subgroups): e5..e19; open: e20, e21
    assert (
        not ch.holds("e4") and ch.holds("e5") and ch.holds("e19") and ch.holds("e21") and not ch.holds("e22")
    )
    assert ch.status()["n"] == 15


def test_cpk_ci_order_for_negative_cpk() -> None:
    ch = Characteristic("L1", "c", Spec(lsl=9.6, usl=10.4, target=10.0, subgroup_size=5), Options())
    feed(ch, normal(125, mu=10.5, sd=0.1))
    s = ch.status()
    cpk, ci = s["cpk"], s["cpk_ci"]
    assert isinstance(cpk, float) and isinstance(ci, list)
    assert cpk < 0 and ci[0] < cpk < ci[1]


def test_chart_baseline_freezes_after_min_subgroups() -> None:
    ch = Characteristic("L1", "c", SPEC, Options(min_subgroups=20))
    feed(ch, normal(99))
    assert not ch.chart.frozen
    feed(ch, normal(1, seed=5), start=99)
    assert ch.chart.frozen
    s = ch.status()
    c = s["control"]
    assert isinstance(c, dict)
    assert c["chart"] == "xbar_r" and c["source"] == "baseline"
    assert c["center"] == pytest.approx(s["mean"], rel=1e-15)
    assert c["sigma"] == pytest.approx(s["sigma_within"], rel=1e-15)
    assert s["stable"] is True
    before = dict(c)
    feed(ch, normal(200, seed=9, mu=10.1), start=100)  # phase II: the limits do not move
    c2 = ch.status()["control"]
    assert isinstance(c2, dict)
    assert c2["center"] == before["center"] and c2["ucl"] == before["ucl"]


def test_known_center_and_sigma_freeze_at_once() -> None:
    spec = Spec(lsl=9.0, usl=11.0, subgroup_size=1, center=10.0, sigma=0.2)
    ch = Characteristic("L1", "c", spec, Options())
    assert ch.chart.frozen
    c = ch.status()["control"]
    assert isinstance(c, dict) and c["source"] == "known" and c["chart"] == "i_mr" and c["center"] == 10.0
    assert ch.status()["stable"] is True


def test_stable_only_looks_inside_the_window() -> None:
    ch = Characteristic(
        "L1",
        "c",
        Spec(lsl=9.0, usl=11.0, subgroup_size=5, center=10.0, sigma=0.2),
        Options(window_subgroups=5, min_subgroups=1, run_rules=(1,)),
    )
    feed(ch, normal(25, seed=3, sd=0.1))
    assert ch.stable is True
    res = feed(ch, [12.0] * 5, start=25)  # a subgroup mean 20σ/√5 out: test 1
    assert res and any(v.rule == 1 for r in res for v in r.violations)
    s = ch.status()
    assert s["stable"] is False and s["violations"]
    feed(ch, normal(5 * 5, seed=4, sd=0.1), start=30)  # the outlier subgroup leaves the 5-subgroup window
    s = ch.status()
    assert s["stable"] is True and s["violations"] == []


def test_rebaseline_and_set_spec() -> None:
    ch = Characteristic("L1", "c", SPEC, Options(min_subgroups=5))
    with pytest.raises(ValueError):
        ch.rebaseline()
    feed(ch, normal(50))
    old = ch.status()["control"]
    feed(ch, normal(50, seed=8, mu=10.3), start=50)
    ch.rebaseline()
    new = ch.status()["control"]
    assert isinstance(old, dict) and isinstance(new, dict) and new["center"] > old["center"] + 0.1
    ch.set_spec(Spec(lsl=9.5, usl=11.0, subgroup_size=5))
    s = ch.status()
    assert s["lsl"] == 9.5 and s["control"] is None and s["subgroups"] == 20 and s["cpl"] is not None


def test_explicit_subgroups_and_flush() -> None:
    ch = Characteristic("L1", "c", SPEC, Options(min_subgroups=1))
    out = []
    for i in range(10):
        out += ch.add(10.0 + 0.01 * i, float(i), f"e{i}", subgroup=f"s{i // 3}")
    assert [r.subgroup for r in out] == ["s0", "s1", "s2"] and [r.n for r in out] == [3, 3, 3]
    last = ch.flush()
    assert [r.subgroup for r in last] == ["s3"] and last[0].n == 1
    assert ch.flush() == []
    pts = ch.status()["points"]
    assert isinstance(pts, list) and [p["subgroup"] for p in pts] == ["s0", "s1", "s2", "s3"]


@pytest.mark.parametrize("size", [1, 5])
def test_to_dict_from_dict_round_trip_is_exact(size: int) -> None:
    opts = Options(window_subgroups=7, min_subgroups=4, window_max_age=500.0)
    spec = Spec(lsl=999999.996, usl=1000000.005, target=1e6, subgroup_size=size)
    ch = Characteristic("L1", "c", spec, opts, station="S1")
    values = [1e6 + v for v in normal(233, seed=size, mu=0.0, sd=1e-3)]
    feed(ch, values[:200])
    blob = json.loads(json.dumps(ch.to_dict(), allow_nan=False))
    back = Characteristic.from_dict(blob, opts)
    assert back.status() == ch.status()
    assert back.to_dict() == ch.to_dict()
    # and they keep evolving identically (same open subgroup, same window stacks, same chart history)
    feed(ch, values[200:], start=200)
    feed(back, values[200:], start=200)
    assert back.status() == ch.status()
    assert back.holds("e232") and back.values_total == 233


def test_shift_is_fixed_and_reported_in_own_units() -> None:
    spec = Spec(lsl=999999.996, usl=1000000.005, subgroup_size=5)
    ch = Characteristic("L1", "c", spec, Options(min_subgroups=1))
    feed(ch, [1e6 + 0.001 * k for k in range(10)])
    s = ch.status()
    assert ch.shift == spec.shift and s["mean"] == pytest.approx(1e6 + 0.0045, abs=1e-9)


# ---------------------------------------------------------------- hypothesis properties
sub_values = st.lists(st.floats(min_value=-1.0, max_value=1.0, allow_nan=False), min_size=2, max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(sub_values, min_size=3, max_size=12), st.randoms(use_true_random=False))
def test_order_within_a_subgroup_does_not_matter(groups: list[list[float]], rnd: random.Random) -> None:
    def run(gs: list[list[float]]) -> dict[str, object]:
        ch = Characteristic(
            "L",
            "c",
            Spec(lsl=-3.0, usl=3.0, target=0.1, subgroup_size=5),
            Options(window_subgroups=8, min_subgroups=1),
        )
        for gi, g in enumerate(gs):
            for v in g:
                ch.add(v, float(gi), None, subgroup=gi)
        ch.flush()
        return ch.status()

    shuffled = [rnd.sample(g, len(g)) for g in groups]
    a, b = run(groups), run(shuffled)
    assert a["state"] == b["state"]
    for k in ("n", "subgroups", "mean", "sigma_within", "sigma_overall", "cp", "cpk", "pp", "ppk", "cpm"):
        va, vb = a[k], b[k]
        if va is None or vb is None:
            assert va is vb, k
        else:
            assert isinstance(va, int | float) and isinstance(vb, int | float)
            assert math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-12), (k, va, vb)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=-1.0, max_value=1.0, allow_nan=False), min_size=30, max_size=80),
    st.sampled_from([1, 3, 5]),
    st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
)
def test_shifting_values_and_limits_leaves_cp_cpk_unchanged(values: list[float], size: int, c: float) -> None:
    def run(offset: float) -> dict[str, object]:
        spec = Spec(lsl=offset - 2.0, usl=offset + 2.5, target=offset, subgroup_size=size)
        ch = Characteristic("L", "c", spec, Options(window_subgroups=10, min_subgroups=2))
        for i, v in enumerate(values):
            ch.add(offset + v, float(i), None)
        return ch.status()

    a, b = run(0.0), run(c)
    assert a["state"] == b["state"]
    for k in ("cp", "cpk", "pp", "ppk"):
        va, vb = a[k], b[k]
        if va is None:
            assert vb is None
            continue
        assert isinstance(va, float) and isinstance(vb, float)
        # values offset + v carry the rounding of that sum; the indices must not amplify it beyond 1e-9
        spread = max(values) - min(values)
        if spread > 1e-3:
            assert math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-9), (k, va, vb)
