"""/metrics: SPEC §7 series equal to the status documents, absent (not 0) when null, fast at 10 000 series."""

from __future__ import annotations

import math
import time

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from conftest import Publisher, wait_until
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from statusdocs import grade_alert, ooc_alert, status

from cpkmon.api.metrics import build_registry, render
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

    # the fast renderer and prometheus_client's own generate_latest agree sample for sample
    registry = client.app.state.registry  # type: ignore[attr-defined]
    slow = samples(generate_latest(registry).decode())
    fast = samples(render(registry).decode())
    slow.pop(("cpkmon_view_lag_seconds", ()))
    fast.pop(("cpkmon_view_lag_seconds", ()))
    assert slow == fast


def test_render_10000_characteristics_fast() -> None:
    """1 000 lines × 10 characteristics (≈ 50 000 series): SPEC §9 asks ≤ 250 ms for 10 000 series."""
    view = View(Settings())
    recs = []
    for i in range(1000):
        doc = status(f"line-{i:04d}", chars=10, stations=3, points=5, internal=0.01, external=0.002)
        raw = orjson.dumps(doc)
        recs.append(
            ConsumerRecord("cpkmon.line-status", 0, i, 0, 0, doc["line"].encode(), raw, None, 0, 0, ())
        )
    view._apply({TopicPartition("cpkmon.line-status", 0): recs})
    registry = build_registry(view)
    render(registry)  # first scrape derives every line's series once
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        text = render(registry)
        best = min(best, time.perf_counter() - t)
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    assert series >= 50_000
    assert best < 0.25, f"{series} series rendered in {best * 1000:.0f} ms"
