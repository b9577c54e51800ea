"""The shipped Prometheus config and rules: promtool accepts them, the promtool unit tests pass (and would
catch an alert that fires before its `for`), and every alert carries what an on-call engineer needs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import (
    PRODUCTION_DOC,
    PROM_CONFIG,
    PROM_DIR,
    PROM_TESTS,
    RULE_FILES,
    RULES_DIR,
    markdown_anchors,
    promql_metric_names,
    require_binary,
)

RUNBOOK_BASE = "https://github.com/cpkmon/cpkmon/blob/main/README.md#runbook-"
REQUIRED_RECORDINGS = {
    "cpkmon:line_grade:min",
    "cpkmon:cpk:min_by_line",
    "cpkmon:dead_letters:rate5m",
    "cpkmon:worker_lag:max",
    "cpkmon:min_acceptable_grade",
}
# alert -> the condition it must cover (the list); names are part of the runbook contract
REQUIRED_ALERTS = {
    "CpkmonLineGradeDropped": "cpkmon_grade_degradations_total",
    "CpkmonLineBelowMinimumGrade": "cpkmon:min_acceptable_grade",
    "CpkmonCharacteristicOutOfControl": "cpkmon_in_control",
    "CpkmonCpkBelowTarget": "cpkmon_cpk",
    "CpkmonWorkerLagging": "cpkmon_consumer_lag",
    "CpkmonWorkerDown": "up",
    "CpkmonDeadLettersRising": "cpkmon_events_total",
}

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    parts = _DURATION.findall(str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), f"bad duration {duration!r}"
    return sum(int(n) * _UNIT[u] for n, u in parts)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules_of(kind: str) -> list[dict[str, Any]]:
    return [r for f in RULE_FILES for g in load(f)["groups"] for r in g["rules"] if kind in r]


def recorded_names() -> set[str]:
    return {r["record"] for r in rules_of("record")}


# ---- promtool ----------------------------------------------------------------------------------------------


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    tool = require_binary("promtool")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_promtool_check_config() -> None:
    res = promtool("check", "config", str(PROM_CONFIG))
    assert res.returncode == 0, res.stdout + res.stderr
    # the config loads both rule files (promtool resolves them relative to the config)
    assert "2 rule files found" in res.stdout + res.stderr


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(rule_file: Path) -> None:
    res = promtool("check", "rules", str(rule_file))
    assert res.returncode == 0, res.stdout + res.stderr


def test_rule_files_are_the_ones_the_config_loads() -> None:
    config = load(PROM_CONFIG)
    loaded = {(PROM_DIR / f).resolve() for f in config["rule_files"]}
    assert loaded == {f.resolve() for f in RULE_FILES}
    assert {f.name for f in RULE_FILES} == {"recording.yml", "alerts.yml"}


@pytest.mark.parametrize("test_file", PROM_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Path) -> None:
    res = promtool("test", "rules", str(test_file))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def _mutated_copy(tmp_path: Path, mutate: Any) -> Path:
    """deploy/prometheus copied to tmp with a rule file changed; returns the copied alerts unit-test file."""
    root = tmp_path / "prometheus"
    shutil.copytree(PROM_DIR, root)
    for f in (root / "rules").glob("*.yml"):
        f.write_text(mutate(f.name, f.read_text(encoding="utf-8")), encoding="utf-8")
    return root / "tests" / "alerts_test.yml"


def test_unit_tests_catch_an_alert_firing_before_its_for(tmp_path: Path) -> None:
    # Same rules with every `for` dropped to 0s: the "not yet firing" checks must now fail.
    test_file = _mutated_copy(
        tmp_path,
        lambda name, text: re.sub(r"(?m)^(\s+for:) \S+$", r"\1 0s", text) if name == "alerts.yml" else text,
    )
    res = promtool("test", "rules", str(test_file))
    assert res.returncode != 0, res.stdout
    for alert in REQUIRED_ALERTS:
        assert f"alertname: {alert}," in res.stdout + res.stderr, (
            f"{alert}: no unit test noticed the early firing"
        )


def test_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    test_file = _mutated_copy(
        tmp_path,
        lambda name, text: (
            text.replace("expr: vector(3)", "expr: vector(2)") if name == "recording.yml" else text
        ),
    )
    res = promtool("test", "rules", str(test_file))
    assert res.returncode != 0
    assert "CpkmonLineBelowMinimumGrade" in res.stdout + res.stderr


# ---- the rules themselves ----------------------------------------------------------------------------------


def test_required_recording_rules_exist() -> None:
    assert recorded_names() >= REQUIRED_RECORDINGS
    for name in recorded_names():
        assert re.fullmatch(r"cpkmon:[a-z0-9_]+(:[a-z0-9_]+)?", name), f"{name}: use level:metric:operations"


def test_thresholds_are_series_not_literals_in_alerts() -> None:
    """Alerts only compare recorded series with a threshold: all PromQL logic lives in recording.yml."""
    recorded = recorded_names()
    for rule in rules_of("alert"):
        names = promql_metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= recorded | {"up"}, f"{rule['alert']} selects raw series {names - recorded}"
    grade = next(r for r in rules_of("alert") if r["alert"] == "CpkmonLineBelowMinimumGrade")
    assert "cpkmon:min_acceptable_grade" in promql_metric_names(grade["expr"])


def test_required_alerts_cover_their_conditions() -> None:
    alerts = {r["alert"]: r for r in rules_of("alert")}
    assert set(REQUIRED_ALERTS) <= set(alerts)
    by_record = {r["record"]: r for r in rules_of("record")}

    def closure(expr: str) -> set[str]:
        seen: set[str] = set()
        todo = promql_metric_names(expr)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in by_record:
                todo |= promql_metric_names(by_record[name]["expr"])
        return seen

    for alert, metric in REQUIRED_ALERTS.items():
        assert metric in closure(alerts[alert]["expr"]), f"{alert} does not depend on {metric}"
    # the grade drop is seen both through the counter and through the grade itself (offset)
    drop = closure(alerts["CpkmonLineGradeDropped"]["expr"])
    assert {"cpkmon_grade_degradations_total", "cpkmon_line_grade"} <= drop
    assert any("offset" in r["expr"] for r in rules_of("record") if "cpkmon:line_grade:min" in r["expr"])
    assert 'job="cpkmon-worker"' in alerts["CpkmonWorkerDown"]["expr"]
    assert 'outcome="dead_letter"' in by_record["cpkmon:dead_letters:rate5m"]["expr"]


def test_every_alert_is_documented_for_on_call() -> None:
    anchors = markdown_anchors(PRODUCTION_DOC.read_text(encoding="utf-8"))
    assert "runbook" in anchors, "README.md needs a '## Runbook' section"
    names = [r["alert"] for r in rules_of("alert")]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules_of("alert"):
        name = rule["alert"]
        assert seconds(rule["for"]) > 0, f"{name}: needs a `for`"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        ann = rule["annotations"]
        assert ann["summary"].strip() and ann["description"].strip(), name
        assert ann["runbook_url"] == RUNBOOK_BASE + name.lower(), name
        assert f"runbook-{name.lower()}" in anchors, f"README.md lacks '### Runbook: {name}'"


def _alert_tests() -> list[tuple[str, float, bool]]:
    """(alertname, eval seconds, expects firing) for every alert_rule_test in the shipped unit tests."""
    out = []
    for f in PROM_TESTS:
        for group in load(f)["tests"]:
            for case in group.get("alert_rule_test", []):
                out.append((case["alertname"], seconds(case["eval_time"]), bool(case.get("exp_alerts"))))
    return out


def test_every_alert_is_unit_tested_firing_and_pending() -> None:
    """Each alert: a test where it fires, and one inside the `for` window before that where it must not."""
    cases = _alert_tests()
    for rule in rules_of("alert"):
        name, hold = rule["alert"], seconds(rule["for"])
        firing = [t for n, t, fires in cases if n == name and fires]
        quiet = [t for n, t, fires in cases if n == name and not fires]
        assert firing, f"{name}: no unit test shows it firing"
        assert any(any(f - hold <= q < f for q in quiet) for f in firing), (
            f"{name}: no unit test checks it is still silent during its `for` ({rule['for']})"
        )


def test_every_recording_rule_is_unit_tested() -> None:
    tested: set[str] = set()
    for f in PROM_TESTS:
        for group in load(f)["tests"]:
            for case in group.get("promql_expr_test", []):
                tested |= promql_metric_names(case["expr"])
    assert recorded_names() <= tested, (
        f"recording rules without a promql_expr_test: {recorded_names() - tested}"
    )


def test_unit_tests_load_the_shipped_rules() -> None:
    for f in PROM_TESTS:
        doc = load(f)
        files = {(f.parent / r).resolve() for r in doc["rule_files"]}
        assert files <= {r.resolve() for r in RULES_DIR.glob("*.yml")}, f
        assert (RULES_DIR / "recording.yml").resolve() in files
