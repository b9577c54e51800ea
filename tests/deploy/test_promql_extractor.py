"""The PromQL metric-name extractor the metric-name tests rely on: every selector, and nothing else."""

from __future__ import annotations

import pytest
from deploy_helpers import github_anchor, grafana_query_metric_names, markdown_anchors, promql_metric_names


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("cpkmon_cpk", {"cpkmon_cpk"}),
        ('cpkmon_cpk{line="L1", characteristic=~"bore.*"}', {"cpkmon_cpk"}),
        ("min by (line) (cpkmon_cpk)", {"cpkmon_cpk"}),
        ("min(cpkmon_cpk) by (line, characteristic)", {"cpkmon_cpk"}),
        ("sum without (instance, job) (rate(cpkmon_events_total[5m]))", {"cpkmon_events_total"}),
        (
            'sum by (topic) (rate(cpkmon_events_total{outcome="dead_letter"}[5m]))',
            {"cpkmon_events_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(cpkmon_processing_latency_seconds_bucket[5m])))",
            {"cpkmon_processing_latency_seconds_bucket"},
        ),
        (
            "cpkmon:line_grade:min < on () group_left () cpkmon:min_acceptable_grade",
            {"cpkmon:line_grade:min", "cpkmon:min_acceptable_grade"},
        ),
        ("a * on(line) group_left(station, kind) b", {"a", "b"}),
        ("x / ignoring(kind) y", {"x", "y"}),
        ("(cpkmon:line_grade:min < bool (cpkmon:line_grade:min offset 15m)) == 1", {"cpkmon:line_grade:min"}),
        ("cpkmon_line_grade offset 1h30m", {"cpkmon_line_grade"}),
        ("cpkmon_line_grade @ start()", {"cpkmon_line_grade"}),
        ("delta(cpkmon_line_grade[15m]) < 0", {"cpkmon_line_grade"}),
        ("max_over_time(cpkmon_consumer_lag[10m:1m])", {"cpkmon_consumer_lag"}),
        ('up{job="cpkmon-worker"} == 0', {"up"}),
        ("vector(3)", set()),
        ("time() - 1e3", set()),
        ("-Inf < NaN", set()),
        ('{__name__="cpkmon_dpmo", line="L1"}', {"cpkmon_dpmo"}),
        ('count_values("grade", cpkmon_line_grade)', {"cpkmon_line_grade"}),
        ("topk(5, cpkmon_consumer_lag)", {"cpkmon_consumer_lag"}),
        ('label_replace(cpkmon_cpk, "c", "$1", "characteristic", "(.*)")', {"cpkmon_cpk"}),
        ("a and b or c unless d", {"a", "b", "c", "d"}),
        # Grafana variables and macros are not metrics
        (
            'sum by (line, type) (increase(cpkmon_alerts_total{line=~"$line"}[$__rate_interval]))',
            {"cpkmon_alerts_total"},
        ),
        (
            "increase(cpkmon_grade_degradations_total[$__range]) > ${threshold}",
            {"cpkmon_grade_degradations_total"},
        ),
        ("# a comment naming not_a_metric\ncpkmon_cp", {"cpkmon_cp"}),
    ],
)
def test_extracts_exactly_the_selected_metrics(expr: str, expected: set[str]) -> None:
    assert promql_metric_names(expr) == expected


def test_a_misspelt_metric_is_reported() -> None:
    # the point of the extractor: a typo in an expression surfaces as an unknown name
    assert promql_metric_names("min by (line) (cpkmon_cpkk)") == {"cpkmon_cpkk"}


def test_grafana_variable_queries() -> None:
    assert grafana_query_metric_names("label_values(cpkmon_line_grade, line)") == {"cpkmon_line_grade"}
    assert grafana_query_metric_names('label_values(cpkmon_cpk{line=~"$line"}, characteristic)') == {
        "cpkmon_cpk"
    }
    assert grafana_query_metric_names("label_values(line)") == set()
    assert grafana_query_metric_names("query_result(max by (line) (cpkmon_dpmo))") == {"cpkmon_dpmo"}


def test_untokenizable_input_is_an_error() -> None:
    with pytest.raises(ValueError):
        promql_metric_names("cpkmon_cpk $")


def test_github_anchor() -> None:
    assert github_anchor("Runbook: CpkmonLineGradeDropped") == "runbook-cpkmonlinegradedropped"
    assert markdown_anchors("## Runbook\n### Runbook: CpkmonApiDown\ntext\n") == {
        "runbook",
        "runbook-cpkmonapidown",
    }
