"""The SPEC §5 ladder: every threshold of every criterion, exactly at, just below and just above it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from cpkmon.alerts.ladder import LEVELS, LineMetrics, grade, level_info
from cpkmon.capability.options import Options

OPTS = Options()
EPS = 1e-9

TOP = LineMetrics(cpk=2.5, cpk_subject="bore", rty=0.995, rty_subject="S10", dpmo=1.0, sigma_level=6.2,
                  internal_loss_rate=0.001, external_loss_rate=0.001)


def only(**kw: Any) -> int | None:
    level: int | None = grade(LineMetrics(**kw), OPTS).level
    return level


def test_levels_table() -> None:
    assert [(lv.level, lv.name, lv.chinese) for lv in LEVELS] == [
        (1, "experience", "经验级"),
        (2, "inspection", "检验级"),
        (3, "assurance", "保证级"),
        (4, "prevention", "预防级"),
        (5, "excellence", "卓越级"),
    ]
    assert level_info(1).cpk is None and level_info(1).rty is None and level_info(1).dpmo is None


# (criterion, level, threshold): ≥ for cpk and rty
GE = [("cpk", 2, 1.00), ("cpk", 3, 1.33), ("cpk", 4, 1.67), ("cpk", 5, 2.00),
      ("rty", 2, 0.90), ("rty", 3, 0.95), ("rty", 4, 0.97), ("rty", 5, 0.98)]


@pytest.mark.parametrize(("criterion", "level", "threshold"), GE)
def test_greater_or_equal_thresholds(criterion: str, level: int, threshold: float) -> None:
    assert only(**{criterion: threshold}) == level
    assert only(**{criterion: threshold - EPS}) == level - 1
    assert only(**{criterion: threshold + EPS}) == level


@pytest.mark.parametrize(("level", "dpmo"), [(2, 66807.0), (3, 6210.0), (4, 233.0), (5, 3.4)])
def test_dpmo_at_most_the_table_value(level: int, dpmo: float) -> None:
    assert only(dpmo=dpmo) == level
    assert only(dpmo=dpmo * (1 + EPS)) == level - 1
    assert only(dpmo=dpmo * (1 - EPS)) == level


def test_dpmo_is_judged_not_the_computed_sigma() -> None:
    # 6210 DPMO is 3.99998σ by the 1.5σ-shift formula: still level 3 by the table's DPMO column
    result = grade(LineMetrics(dpmo=6210.0, sigma_level=3.9999809070915524), OPTS)
    assert result.level == 3
    c = result.criterion("sigma_level").to_dict()
    assert c["value"] == 3.9999809070915524 and c["dpmo"] == 6210.0 and c["comparison"] == "<="


def test_sigma_level_is_derived_from_dpmo_when_not_given() -> None:
    c = grade(LineMetrics(dpmo=66807.0), OPTS).criterion("sigma_level")
    assert c.value == pytest.approx(3.0, abs=1e-5)


@pytest.mark.parametrize(
    ("criterion", "level", "threshold"),
    [("internal_loss_rate", 3, 0.030), ("internal_loss_rate", 4, 0.015), ("internal_loss_rate", 5, 0.0075),
     ("external_loss_rate", 3, 0.023), ("external_loss_rate", 4, 0.010), ("external_loss_rate", 5, 0.005)],
)
def test_loss_rates_are_strictly_below(criterion: str, level: int, threshold: float) -> None:
    assert only(**{criterion: threshold}) == level - 1  # strict <: exactly at fails
    assert only(**{criterion: threshold - EPS}) == level
    assert only(**{criterion: threshold + EPS}) == level - 1


@pytest.mark.parametrize("criterion", ["internal_loss_rate", "external_loss_rate"])
def test_tracked_loss_rate_meets_level_2_whatever_its_value(criterion: str) -> None:
    assert only(**{criterion: 0.9}) == 2
    assert only(**{criterion: 0.0}) == 5


def test_below_level_2_is_level_1() -> None:
    assert only(cpk=0.5) == 1
    assert only(rty=0.5) == 1
    assert only(dpmo=300_000.0) == 1


@pytest.mark.parametrize("missing", ["cpk", "rty", "sigma_level", "internal_loss_rate", "external_loss_rate"])
def test_a_missing_criterion_is_listed_and_not_assessed(missing: str) -> None:
    metrics = {
        "cpk": replace(TOP, cpk=None),
        "rty": replace(TOP, rty=None),
        "sigma_level": replace(TOP, dpmo=None, sigma_level=None),
        "internal_loss_rate": replace(TOP, internal_loss_rate=None),
        "external_loss_rate": replace(TOP, external_loss_rate=None),
    }[missing]
    result = grade(metrics, OPTS)
    assert result.level == 5
    assert result.limiting is None
    c = result.criterion(missing)
    assert (c.assessed, c.value, c.level_met) == (False, None, None)
    assert sum(1 for c in result.criteria if c.assessed) == 4
    capped = grade(metrics, Options(require_all_criteria=True))
    assert capped.level == 1
    assert capped.limiting is not None
    assert capped.limiting.to_dict() == {
        "criterion": missing, "subject": None, "value": None,
        # the sigma criterion's threshold is reported as a sigma level, like its value (3.0 for level 2)
        "threshold": level_info(2).sigma if missing == "sigma_level" else level_info(2).threshold(missing),
        "reason": "not_assessed", "needed": None,
    }


def test_nothing_assessed_is_null() -> None:
    for options in (OPTS, Options(require_all_criteria=True), Options(require_stability=True)):
        result = grade(LineMetrics(), options)
        assert (result.level, result.name, result.limiting) == (None, None, None)
        assert result.to_dict()["grade"] is None
        assert [c.assessed for c in result.criteria] == [False] * 5


def test_require_all_criteria_with_everything_present_changes_nothing() -> None:
    assert grade(TOP, Options(require_all_criteria=True)).level == 5


def test_require_stability() -> None:
    metrics = replace(TOP, unstable=("bore", "length"))
    assert grade(metrics, OPTS).level == 5  # option off: stability is not a criterion
    result = grade(metrics, Options(require_stability=True))
    assert result.level == 1
    assert result.limiting is not None
    assert result.limiting.alert_dict() == {"criterion": "stability", "subject": "bore", "value": 2.5,
                                            "threshold": 1.00, "reason": "unstable"}
    cpk = result.criterion("cpk").to_dict()
    assert cpk["level_met"] == 1 and cpk["unstable"] == ["bore", "length"]
    assert grade(TOP, Options(require_stability=True)).level == 5


def test_limiting_names_the_criterion_subject_value_and_missed_threshold() -> None:
    result = grade(replace(TOP, cpk=1.5, dpmo=100.0), OPTS)
    assert result.level == 3
    assert result.limiting is not None
    assert result.limiting.to_dict() == {
        "criterion": "cpk", "subject": "bore", "value": 1.5, "threshold": 1.67, "reason": "below_threshold",
        "needed": None,
    }
    result = grade(replace(TOP, rty=0.92), OPTS)
    assert result.level == 2
    assert result.limiting is not None
    assert result.limiting.alert_dict() == {
        "criterion": "rty", "subject": "S10", "value": 0.92, "threshold": 0.95, "reason": "below_threshold",
    }
    result = grade(replace(TOP, external_loss_rate=0.01), OPTS)
    assert result.level == 3
    assert result.limiting is not None
    assert result.limiting.alert_dict() == {"criterion": "external_loss_rate", "subject": None, "value": 0.01,
                                            "threshold": 0.010, "reason": "below_threshold"}


def test_criteria_report_level_met_and_next_threshold() -> None:
    result = grade(replace(TOP, cpk=1.4, rty=0.96, dpmo=5000.0), OPTS)
    by = {c.criterion: c.to_dict() for c in result.criteria}
    assert by["cpk"]["level_met"] == 3 and by["cpk"]["next_threshold"] == 1.67
    assert by["rty"]["level_met"] == 3 and by["rty"]["next_threshold"] == 0.97
    assert by["sigma_level"]["level_met"] == 3
    assert by["sigma_level"]["next_threshold"] == 5.0  # a sigma level, like its value
    assert by["sigma_level"]["next_dpmo_threshold"] == 233.0  # what it is judged on
    assert by["internal_loss_rate"]["level_met"] == 5 and by["internal_loss_rate"]["next_threshold"] is None
    assert result.level == 3


def test_to_dict_is_json_ready() -> None:
    result = grade(replace(TOP, cpk=1.1), OPTS)
    d = result.to_dict()
    assert d["grade"] == {"level": 2, "name": "inspection", "name_zh": "检验级"}
    assert json.loads(json.dumps(d, ensure_ascii=False)) == d
    assert [c.criterion for c in result.criteria] == [
        "cpk", "rty", "sigma_level", "internal_loss_rate", "external_loss_rate"]


def test_nan_counts_as_no_data() -> None:
    assert grade(LineMetrics(cpk=float("nan"), rty=0.99), OPTS).criterion("cpk").assessed is False
