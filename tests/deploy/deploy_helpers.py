"""Shared helpers for the deployment tests: paths, external tools, a small PromQL metric-name extractor."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

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
