"""Shared helpers for the deployment tests: paths, external tools, a real Prometheus with the shipped rules, a
small PromQL metric-name extractor."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cpkmon.broker import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROM_DIR = DEPLOY / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
RULES_DIR = PROM_DIR / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
PROM_TESTS = sorted((PROM_DIR / "tests").glob("*.yml"))
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "cpkmon.json"
GRAFANA_ALERTS = GRAFANA / "provisioning" / "alerting" / "cpkmon-alerts.yml"
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_OVERRIDE = REPO / "docker-compose.override.yml"
PRODUCTION_DOC = REPO / "README.md"


def require_binary(name: str) -> str:
    """Path of an external tool. Absent: skip locally, FAIL in CI (env CI set), where it must be installed."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(
            f"`{name}` is not installed, and CI is set: install it (Debian: apt-get install prometheus)"
        )
    pytest.skip(f"`{name}` not installed (set CI=1 to make this a failure)")
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------------------------
# A real Prometheus on loopback, loading the shipped rules
# ------------------------------------------------------------------------------------------------------------


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(check: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll ``check`` every 0.2 s until it returns something truthy (an OSError counts as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


class Prometheus:
    """The `prometheus` binary on a free loopback port, scraping ``jobs`` every second, evaluating the SHIPPED
    rule files.

    The rules are copied to ``workdir`` and only the alerts' ``for`` is shortened (to ``alert_for``) so a test
    runs in seconds; the PromQL is unchanged. ``jobs``: ``{job name: ["host:port", ...]}``, or one address for
    the ``cpkmon-api`` job.
    """

    def __init__(self, workdir: Path, jobs: dict[str, list[str]] | str, alert_for: str = "2s") -> None:
        binary = require_binary("prometheus")
        if isinstance(jobs, str):
            jobs = {"cpkmon-api": [jobs]}
        rules = workdir / "rules"
        rules.mkdir(parents=True)
        for f in RULES_DIR.glob("*.yml"):
            text = f.read_text(encoding="utf-8")
            if f.name == "alerts.yml":
                text = re.sub(r"(?m)^(\s+for:) \S+$", rf"\1 {alert_for}", text)
            (rules / f.name).write_text(text, encoding="utf-8")
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules / "recording.yml"), str(rules / "alerts.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items()
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workdir = workdir
        try:
            wait_for(
                lambda: self._alive() and http_get(f"{self.url}/-/ready")[0] == 200, "prometheus /-/ready", 30
            )
        except AssertionError:
            self.close()
            raise

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-2000:]}"
            )
        return True

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_get(f"{self.url}/api/v1/{path}{query}")
        assert status == 200, body[:500]
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return doc["data"]

    def value(self, expr: str, label: str = "line") -> dict[str, float]:
        """Instant query → {``label`` value: sample value}."""
        return {
            r["metric"].get(label, ""): float(r["value"][1]) for r in self.api("query", query=expr)["result"]
        }

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"].get("alertname") == name]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


# ------------------------------------------------------------------------------------------------------------
# PromQL metric-name extraction
#
# Not a parser: a tokenizer that knows where a PromQL metric name can stand. Strings, range/subquery
# brackets and Grafana variables are dropped; label matchers `{...}` are skipped (except `__name__="x"`); an
# identifier followed by `(` is a function or an aggregation; the label lists after by/without/on/ignoring/
# group_left/group_right are skipped; keywords and operators are not names. What remains are the selectors'
# metric names.
# ------------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\])
  | (?P<range>\[[^\]]*\])
  | (?P<num>0[xX][0-9a-fA-F]+
      |(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>[{}(),]|[^\sA-Za-z0-9_{}(),"'`$\[\]]+)
    """,
    re.VERBOSE,
)

KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
        "bool", "atan2", "inf", "nan", "start", "end",
    }
)  # fmt: skip
AGGREGATIONS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
        "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot tokenize PromQL at {pos}: {expr[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append((kind, m.group()))
        pos = m.end()
    return out


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (``foo{a="b"}``, bare ``foo``, ``{__name__="foo"}``)."""
    toks = _tokens(expr)
    names: set[str] = set()
    i = 0
    brace = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "op" and text == "{":
            brace += 1
        elif kind == "op" and text == "}":
            brace -= 1
        elif brace > 0:
            # inside label matchers: only `__name__ = "metric"` names a metric
            if (
                kind == "ident"
                and text == "__name__"
                and i + 2 < len(toks)
                and toks[i + 1][1] == "="
                and toks[i + 2][0] == "str"
            ):
                names.add(toks[i + 2][1][1:-1])
        elif kind == "ident":
            word = text.lower()  # PromQL keywords, aggregations, Inf and NaN are case-insensitive
            if word in _LABEL_LIST_KEYWORDS and nxt == ("op", "("):
                depth, i = 0, i + 1
                while i < len(toks):  # skip the label list "( a, b )"
                    if toks[i][1] == "(":
                        depth += 1
                    elif toks[i][1] == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    i += 1
            elif word in KEYWORDS or word in AGGREGATIONS or nxt == ("op", "("):
                pass  # keyword, aggregation or function call
            else:
                names.add(text)
        i += 1
    return names


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<sel>.+?)\s*,\s*)?(?P<label>[A-Za-z_]\w*)\s*\)\s*$")
_GRAFANA_FUNCS = re.compile(r"^\s*(?:label_names|metrics|query_result)\((?P<sel>.*)\)\s*$")


def grafana_query_metric_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus *variable* query (``label_values(metric, label)`` and friends)."""
    m = _LABEL_VALUES.match(query)
    if m:
        return promql_metric_names(m.group("sel")) if m.group("sel") else set()
    m = _GRAFANA_FUNCS.match(query)
    if m:
        return promql_metric_names(m.group("sel")) if query.lstrip().startswith("query_result") else set()
    return promql_metric_names(query)


def github_anchor(heading: str) -> str:
    """GitHub's slug of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_anchors(markdown: str) -> set[str]:
    return {
        github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", markdown, re.MULTILINE)
    }
