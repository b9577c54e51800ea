"""/metrics: SPEC §7 series equal to the status documents, absent (not 0) when null, fast at 10 000 series,
and byte for byte what prometheus_client's own exposition code makes of the app's registry."""

from __future__ import annotations

import math
import time

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from conftest import Publisher, wait_until
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from statusdocs import grade_alert, ooc_alert, status

from cpkmon.api.metrics import build_registry
from cpkmon.api.view import View
from cpkmon.settings import Settings


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get(ss: dict, name: str, **labels: str) -> float | None:
    return ss.get((name, tuple(sorted(labels.items()))))


def test_series_equal_the_documents(client: TestClient, publish: Publisher) -> None:
    full = status("L1", level=4, chars=3, stations=3, internal=0.012, external=0.004)
    sparse = status(
        "L2",
        level=None,
        cpks=[None, 1.2],
        stations=1,
        fpy=None,
        dpmo=None,
        sigma_level=None,
        internal=None,
        external=None,
    )
    perfect = status("L3", level=5, chars=1, dpmo=0.0, sigma_level=None)  # DPMO 0: sigma level +Inf
    for doc in (full, sparse, perfect):
        publish.status(doc)
    a1, a2, a3 = grade_alert("L1", 1), grade_alert("L1", 2), ooc_alert("L1", 3)
    for a in (a1, a2, a3, a1):  # a1 twice: counted once
        publish.alert(a)
    wait_until(
        lambda: client.get("/readyz").json()["alerts"] == 3 and len(client.get("/api/v1/lines").json()) == 3
    )
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    ss = samples(r.text)

    for ch in full["characteristics"]:
        c = ch["characteristic"]
        assert get(ss, "cpkmon_cpk", line="L1", characteristic=c) == ch["cpk"]
        assert get(ss, "cpkmon_ppk", line="L1", characteristic=c) == ch["ppk"]
        assert get(ss, "cpkmon_cp", line="L1", characteristic=c) == ch["cp"]
        assert get(ss, "cpkmon_in_control", line="L1", characteristic=c) == (1.0 if ch["stable"] else 0.0)
    for st in full["stations"]:
        assert (
            get(ss, "cpkmon_first_pass_yield_ratio", line="L1", station=st["station"])
            == st["first_pass_yield"]
        )
    assert get(ss, "cpkmon_rolled_throughput_yield_ratio", line="L1") == full["rty"]
    assert get(ss, "cpkmon_sigma_level", line="L1") == full["sigma_level"]
    assert get(ss, "cpkmon_line_grade", line="L1") == 4
    assert get(ss, "cpkmon_dpmo", line="L1") == full["dpmo"]
    assert get(ss, "cpkmon_loss_rate_ratio", line="L1", kind="internal") == 0.012
    assert get(ss, "cpkmon_loss_rate_ratio", line="L1", kind="external") == 0.004
    assert get(ss, "cpkmon_grade_degradations_total", line="L1") == 2
    assert get(ss, "cpkmon_alerts_total", line="L1", type="grade_degraded") == 2
    assert get(ss, "cpkmon_alerts_total", line="L1", type="out_of_control") == 1
    assert get(ss, "cpkmon_view_ready") == 1.0
    assert get(ss, "cpkmon_view_lag_seconds") is not None

    # null values are absent series, never 0
    assert get(ss, "cpkmon_cpk", line="L2", characteristic="char_0") is None
    assert get(ss, "cpkmon_in_control", line="L2", characteristic="char_0") is None
    assert get(ss, "cpkmon_cpk", line="L2", characteristic="char_1") == 1.2
    for name in (
        "cpkmon_line_grade",
        "cpkmon_rolled_throughput_yield_ratio",
        "cpkmon_sigma_level",
        "cpkmon_dpmo",
    ):
        assert get(ss, name, line="L2") is None, name
    assert get(ss, "cpkmon_first_pass_yield_ratio", line="L2", station="S10") is None
    assert get(ss, "cpkmon_loss_rate_ratio", line="L2", kind="internal") is None
    assert get(ss, "cpkmon_loss_rate_ratio", line="L1", kind="external") is not None
    assert get(ss, "cpkmon_grade_degradations_total", line="L2") == 0  # a counter that has not moved

    assert get(ss, "cpkmon_sigma_level", line="L3") == math.inf
    assert 'cpkmon_sigma_level{line="L3"} +Inf' in r.text

    # what is served is prometheus_client's own rendering of the app's registry, byte for byte (the view is
    # caught up and quiet, so the lag gauge is 0 in both)
    registry = client.app.state.registry  # type: ignore[attr-defined]
    assert r.content == generate_latest(registry)


def test_render_10000_series_fast() -> None:
    """SPEC §9: ``/metrics`` with 10 000 series in ≤ 250 ms — 200 lines × 10 characteristics (≈ 10 000
    series) formatted by prometheus_client's ``generate_latest`` (50 000 series: bench/api.py)."""
    view = View(Settings())
    recs = []
    for i in range(200):
        doc = status(f"line-{i:04d}", chars=10, stations=3, points=5, internal=0.01, external=0.002)
        raw = orjson.dumps(doc)
        recs.append(
            ConsumerRecord("cpkmon.line-status", 0, i, 0, 0, doc["line"].encode(), raw, None, 0, 0, ())
        )
    view._apply({TopicPartition("cpkmon.line-status", 0): recs})
    registry = build_registry(view)
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        text = generate_latest(registry)
        best = min(best, time.perf_counter() - t)
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    assert series >= 10_000
    assert best < 0.25, f"{series} series rendered in {best * 1000:.0f} ms"


# ---- content negotiation, compression, name[] — all prometheus_client's own -----------------------------

PROMETHEUS_2_ACCEPT = (  # what Prometheus 2.42 sends when it scrapes
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
# the families of one status document and its alerts, without the view's clock (cpkmon_view_lag_seconds
# grows while a view that never started is not caught up, so it cannot be compared between two renders)
STATIC = [
    "cpkmon_cpk",
    "cpkmon_in_control",
    "cpkmon_sigma_level",
    "cpkmon_loss_rate_ratio",
    "cpkmon_alerts_total",
    "cpkmon_grade_degradations_total",
]


def _fed_app() -> tuple[TestClient, CollectorRegistry]:
    """An app whose view holds two lines and three alerts, fed directly (no broker, no lifespan)."""
    from cpkmon.api.app import create_app

    app = create_app(Settings(broker="kafka://127.0.0.1:9"))
    view: View = app.state.view
    registry: CollectorRegistry = app.state.registry
    docs = [status("L1", level=4, chars=3, stations=2, internal=0.01), status('L\\2 "q"', cpks=[None, 1.5])]
    alerts = [grade_alert("L1", 1), grade_alert("L1", 2), ooc_alert("L1", 3)]
    view._apply(
        {
            TopicPartition("cpkmon.line-status", 0): [
                ConsumerRecord(
                    "cpkmon.line-status", 0, i, 0, 0, d["line"].encode(), orjson.dumps(d), None, 0, 0, ()
                )
                for i, d in enumerate(docs)
            ],
            TopicPartition("cpkmon.alerts", 0): [
                ConsumerRecord(
                    "cpkmon.alerts", 0, i, 0, 0, a["line"].encode(), orjson.dumps(a), None, 0, 0, ()
                )
                for i, a in enumerate(alerts)
            ],
        }
    )
    assert set(view.lines) == {"L1", 'L\\2 "q"'} and sum(view.alert_counts.values()) == 3
    return TestClient(app), registry


def test_plain_text_by_default_byte_for_byte() -> None:
    client, registry = _fed_app()
    r = client.get("/metrics", params={"name[]": STATIC}, headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "content-encoding" not in r.headers
    assert r.content == generate_latest(registry.restricted_registry(STATIC))
    # the label value with a backslash and quotes is escaped by the library, labels in its (sorted) order
    assert 'cpkmon_cpk{characteristic="char_1",line="L\\\\2 \\"q\\""} 1.5' in r.text
    assert get(samples(r.text), "cpkmon_cpk", line='L\\2 "q"', characteristic="char_0") is None
    # only the families asked for
    assert {f.name for f in text_string_to_metric_families(r.text)} == {
        "cpkmon_cpk",
        "cpkmon_in_control",
        "cpkmon_sigma_level",
        "cpkmon_loss_rate_ratio",
        "cpkmon_alerts",
        "cpkmon_grade_degradations",
    }


def test_openmetrics_when_prometheus_asks_for_it() -> None:
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    client, registry = _fed_app()
    r = client.get("/metrics", params={"name[]": STATIC}, headers={"Accept": PROMETHEUS_2_ACCEPT})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert r.content == openmetrics_latest(registry.restricted_registry(STATIC))
    assert r.content.endswith(b"# EOF\n")
    fams = {f.name: f for f in parse_openmetrics(r.text)}
    assert fams["cpkmon_alerts"].type == "counter" and fams["cpkmon_cpk"].type == "gauge"
    degr = {s.labels["line"]: s.value for s in fams["cpkmon_grade_degradations"].samples}
    assert degr == {"L1": 2.0, 'L\\2 "q"': 0.0}


def test_gzip_when_accepted() -> None:
    client, registry = _fed_app()
    r = client.get("/metrics", params={"name[]": STATIC}, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == generate_latest(registry.restricted_registry(STATIC))
    whole = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert {f.name for f in text_string_to_metric_families(whole.text)} >= {"cpkmon_view_lag_seconds"}
