"""The worker's /metrics: prometheus_client's own rendering of the worker registry, byte for byte, in the
format the scraper negotiates; lag and lines read from the snapshot the worker binds (absent before one is
bound). No broker: the registry is fed the way the worker feeds it."""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from cpkmon.stream.metrics import WorkerMetrics

PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@dataclass(frozen=True)
class Snap:
    lag: Mapping[tuple[str, int], int]
    lines: int


@dataclass
class Batch:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)


def fed() -> WorkerMetrics:
    m = WorkerMetrics()
    m.count(
        Batch(
            Counter({("m", "accepted"): 7, ("m", "duplicate"): 2, ("m", "dead_letter"): 1}),
            Counter({("m", "missing_field"): 1}),
        )
    )
    m.spec_rejected("specs", "invalid_spec")
    m.observe_latency(0.03)
    m.status_published(4)
    m.checkpointed(1234)
    m.restored(3, 9)
    m.assigned(2)
    m.bind(lambda: Snap({("m", 1): 5, ("m", 0): 0, ("q", 0): 12}, 3))
    return m


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_text_exposition_is_generate_latest_byte_for_byte() -> None:
    m = fed()
    out = m.exposition()
    assert out.content_type == "text/plain; version=0.0.4; charset=utf-8" and out.content_encoding is None
    assert out.body == generate_latest(m.registry)
    v = values(out.body.decode())
    assert v[("cpkmon_events_total", (("outcome", "accepted"), ("topic", "m")))] == 7
    assert v[("cpkmon_events_total", (("outcome", "dead_letter"), ("topic", "specs")))] == 1
    assert v[("cpkmon_dead_letters_total", (("reason", "missing_field"), ("topic", "m")))] == 1
    assert v[("cpkmon_consumer_lag", (("partition", "1"), ("topic", "m")))] == 5
    assert v[("cpkmon_consumer_lag", (("partition", "0"), ("topic", "q")))] == 12
    assert v[("cpkmon_worker_lines", ())] == 3
    assert v[("cpkmon_processing_latency_seconds_count", ())] == 1
    assert out.headers() == {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


def test_openmetrics_and_gzip_when_negotiated() -> None:
    m = fed()
    out = m.exposition(PROMETHEUS_2_ACCEPT, "gzip, deflate")
    assert out.content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert out.headers()["Content-Encoding"] == "gzip"
    body = gzip.decompress(out.body)
    assert body == openmetrics_latest(m.registry) and body.endswith(b"# EOF\n")
    fams = {f.name: f for f in parse_openmetrics(body.decode())}
    assert fams["cpkmon_events"].type == "counter"
    assert fams["cpkmon_processing_latency_seconds"].type == "histogram"


def test_name_filter_uses_the_registry_restriction() -> None:
    m = fed()
    out = m.exposition(params={"name[]": ["cpkmon_consumer_lag", "cpkmon_events_total"]})
    assert out.body == generate_latest(
        m.registry.restricted_registry(["cpkmon_consumer_lag", "cpkmon_events_total"])
    )
    assert {f.name for f in text_string_to_metric_families(out.body.decode())} == {
        "cpkmon_consumer_lag",
        "cpkmon_events",
    }


def test_unbound_gauges_are_absent_not_zero() -> None:
    """Before a worker binds its snapshot, lag and lines are unknown: the families carry no sample."""
    m = WorkerMetrics()
    text = m.exposition().body.decode()
    assert "# TYPE cpkmon_consumer_lag gauge" in text and "# TYPE cpkmon_worker_lines gauge" in text
    names = {name for name, _ in values(text)}
    assert "cpkmon_consumer_lag" not in names and "cpkmon_worker_lines" not in names
    calls = []

    def snapshot() -> Snap:
        calls.append(1)
        return Snap({}, 0)

    m.bind(snapshot)
    assert not calls  # registration and binding never read the worker
    assert values(m.exposition().body.decode())[("cpkmon_worker_lines", ())] == 0
    assert calls == [1]


def test_the_worker_page_serves_the_registry_byte_for_byte(tmp_path: Path) -> None:
    """The Faust web page itself (aiohttp, no broker): the same bytes as ``generate_latest``, headers passed
    through for negotiation."""
    from aiohttp.test_utils import TestClient, TestServer

    from cpkmon.settings import Settings
    from cpkmon.stream.app import create_app

    app, worker = create_app(Settings(broker="kafka://127.0.0.1:9", data_dir=tmp_path))
    worker.metrics.status_published(3)

    async def scrape() -> list[tuple[int, dict[str, str], bytes]]:
        out = []
        async with TestClient(TestServer(app.web.web_app)) as client:
            for headers in (
                {"Accept-Encoding": "identity"},
                {"Accept": PROMETHEUS_2_ACCEPT, "Accept-Encoding": "identity"},
            ):
                r = await client.get("/metrics", headers=headers)
                out.append((r.status, dict(r.headers), await r.read()))
        return out

    (s1, h1, plain), (s2, h2, om) = asyncio.run(scrape())
    assert s1 == s2 == 200
    assert h1["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert plain == generate_latest(worker.metrics.registry)
    assert b"cpkmon_status_published_total 3.0\n" in plain
    assert h2["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om == openmetrics_latest(worker.metrics.registry)
