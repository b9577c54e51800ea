"""σ_within follows the characteristic's chart, not what arrived (issue 9, finding 3).

A re-measured part on an individuals chart (two values under one subgroup id) used to switch the whole window
from moving ranges to that pair's range (Cpk 0.969 → 51.55); a window of single values on an X̄–R chart used to
borrow the moving range. The rules (module docstring of ``cpkmon.capability.estimators``): nominal 1 → moving
ranges over consecutive values; nominal ≥ 2 → MVLUE-R / pooled over subgroups with ≥ 2 values.
"""

from __future__ import annotations

import itertools
import random

import pytest

from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.estimators import sigma_within
from cpkmon.capability.moments import Moments
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec
from cpkmon.capability.window import Agg

SPEC_I = Spec(lsl=9.7, usl=10.3, target=10.0, subgroup_size=1)
SPEC_5 = Spec(lsl=9.7, usl=10.3, target=10.0, subgroup_size=5)


def _values(seed: int, k: int, sd: float = 0.09) -> list[float]:
    rng = random.Random(seed)
    return [round(10.0 + rng.gauss(0, sd), 4) for _ in range(k)]


def _individuals(stream: list[tuple[float, str]], method: str = "default") -> Characteristic:
    opts = Options(window_subgroups=100, min_subgroups=20, sigma_method=method)  # type: ignore[arg-type]
    ch = Characteristic("L", "x", SPEC_I, opts)
    for i, (v, sg) in enumerate(stream):
        ch.add(v, float(i), f"e{i}", sg)
    ch.flush()
    return ch


@pytest.mark.parametrize("method", ["default", "pooled"])
def test_a_re_measured_part_moves_cpk_like_one_more_individual(method: str) -> None:
    xs = _values(1, 40)
    again = round(xs[17] + 0.0005, 4)  # the gauge re-reads part 17: almost the same value
    plain = [(v, f"p{i}") for i, v in enumerate(xs)]
    remeasured = [*plain[:18], (again, "p17"), *plain[18:]]  # same subgroup id: one subgroup of two values
    as_individual = [*plain[:18], (again, "p17b"), *plain[18:]]  # the same value as its own individual

    base, pair, single = (_individuals(s, method) for s in (plain, remeasured, as_individual))
    sp, ss, sb = pair.status(), single.status(), base.status()
    assert sp["sigma_estimator"] == ss["sigma_estimator"] == "moving_range"
    assert sp["subgroups"] == 40 and ss["subgroups"] == 41 and sp["n"] == ss["n"] == 41
    # the pair's own moving range counts like any consecutive pair: exactly the one-more-individual answer
    for k in ("sigma_within", "sigma_overall", "mean", "cpk", "ppk", "cpm"):
        assert sp[k] == pytest.approx(ss[k], rel=1e-12), k
    # and that is a small move from the stream without the re-measurement (the old code gave Cpk ≈ 50×)
    assert isinstance(sp["cpk"], float) and isinstance(sb["cpk"], float)
    assert abs(sp["cpk"] - sb["cpk"]) <= 0.05 * sb["cpk"]
    assert 0.5 < sb["cpk"] < 2.0


def test_stray_single_in_an_xbar_r_window_adds_no_within_information() -> None:
    rng = random.Random(5)
    groups = [[round(10 + rng.gauss(0, 0.08), 4) for _ in range(5)] for _ in range(24)]
    stray = 10.21

    def run(with_stray: bool) -> dict[str, object]:
        ch = Characteristic("L", "x", SPEC_5, Options(window_subgroups=100, min_subgroups=20))
        t = 0.0
        for gi, g in enumerate(groups):
            if with_stray and gi == 12:
                ch.add(stray, t, "stray", "s12")  # one value under its own id between two full subgroups
                t += 1
            for v in g:
                ch.add(v, t, f"e{t}", f"g{gi}")
                t += 1
        ch.flush()
        return ch.status()

    with_, without = run(True), run(False)
    assert with_["sigma_estimator"] == without["sigma_estimator"] == "mvlue_r"
    assert with_["sigma_within"] == without["sigma_within"]  # the single value carries no range
    assert with_["n"] == 121 and with_["subgroups"] == 25
    all_values = [v for g in groups for v in g] + [stray]
    assert with_["mean"] == pytest.approx(sum(all_values) / 121, rel=1e-12)  # but enters mean and σ_overall
    assert with_["sigma_overall"] != without["sigma_overall"]


def test_single_values_on_an_xbar_r_chart_give_no_sigma_within() -> None:
    """Nominal 5 but every subgroup id carries one value: the X̄–R estimator has nothing to work on; the
    moving range of another chart is not borrowed."""
    ch = Characteristic("L", "x", SPEC_5, Options(window_subgroups=25, min_subgroups=5))
    for i, v in enumerate(_values(3, 30)):
        ch.add(v, float(i), f"e{i}", f"g{i}")
    s = ch.status()
    assert s["subgroups"] == 25
    assert s["sigma_within"] is None and s["sigma_estimator"] is None and s["cpk"] is None
    assert s["state"] == "insufficient_data" and s["sigma_overall"] is not None


def test_individuals_window_of_pairs_uses_moving_ranges_inside_them() -> None:
    """Nominal 1 whatever arrives: a window made only of pairs is still judged by moving ranges, over
    every consecutive pair of values (inside and across the pairs)."""
    xs = _values(9, 20)
    agg: Agg | None = None
    for a, b in zip(xs[::2], xs[1::2], strict=True):
        s = Agg.of_subgroup(Moments.of([a, b]), a, b, (a, b))
        agg = s if agg is None else agg.merge(s)
    assert agg is not None
    mr = sum(abs(y - x) for x, y in itertools.pairwise(xs)) / (len(xs) - 1)
    for method in ("default", "pooled"):
        sw, est = sigma_within(agg, method, nominal=1)
        assert est == "moving_range" and sw == pytest.approx(mr / 1.1283791670955126, rel=1e-12)
    sw5, est5 = sigma_within(agg, "default", nominal=2)
    assert est5 == "mvlue_r" and sw5 is not None
    with pytest.raises(ValueError):
        sigma_within(agg, nominal=0)


def test_restored_subgroup_without_values_keeps_its_pair_range() -> None:
    """State written before values were kept: a pair's internal moving range is its range."""
    a, b = 10.02, 9.95
    with_values = Agg.of_subgroup(Moments.of([a, b]), a, b, (a, b))
    without = Agg.of_subgroup(Moments.of([a, b]), a, b)
    assert (with_values.mr_n, with_values.mr_sum) == (without.mr_n, without.mr_sum) == (1, abs(b - a))
