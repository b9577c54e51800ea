"""The worker's own Prometheus metrics, on its own registry (served on CPKMON_WORKER_HOST/PORT).

Counters are bumped once per batch from the state machine's aggregated counts, not per event. Lag and the
lines held are read at scrape time from a snapshot (:class:`RuntimeGauges`) returned by the callable the
worker hands over through :meth:`WorkerMetrics.bind` (lag from fetch high watermarks: SPEC §10, end offsets
are wrong on the embedded broker), so this module never reads the worker's internals. ``/metrics`` is
formatted by prometheus_client's own exposition code in the format the scraper negotiates
(:mod:`cpkmon.exposition`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cpkmon.exposition import Exposition, expose, select


class Counted(Protocol):
    """A batch's aggregated counts (the state machine's effects satisfy it)."""

    @property
    def counts(self) -> Mapping[tuple[str, str], int]:
        """(topic, outcome) -> events; outcome one of accepted, duplicate, dead_letter, rekeyed."""

    @property
    def rejected_reasons(self) -> Mapping[tuple[str, str], int]:
        """(topic, reason class) -> dead letters."""


class RuntimeGauges(Protocol):
    """What the worker's state says at scrape time (the worker's own snapshot type satisfies it)."""

    @property
    def lag(self) -> Mapping[tuple[str, int], int]:
        """(topic, partition) -> input records not yet applied."""

    @property
    def lines(self) -> int:
        """Lines whose state this worker holds."""


GaugeSource = Callable[[], RuntimeGauges]


def _lag_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "cpkmon_consumer_lag",
        "Input records not yet applied, per partition (fetch high watermark minus position)",
        labels=["topic", "partition"],
    )


def _lines_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("cpkmon_worker_lines", "Lines whose state this worker holds", labels=[])


class _RuntimeCollector(Collector):
    """Lag and lines from the bound source; before a worker is bound both families have no samples (an
    unknown value is an absent series, not 0)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[GaugeMetricFamily]:
        """Names without calling the source (registration happens before any worker exists)."""
        return [_lag_family(), _lines_family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        source = self.metrics.source
        gauges = source() if source is not None else None
        lag, lines = _lag_family(), _lines_family()
        if gauges is not None:
            for (topic, partition), value in sorted(gauges.lag.items()):
                lag.add_metric([topic, str(partition)], float(value))
            lines.add_metric([], float(gauges.lines))
        yield lag
        yield lines


class WorkerMetrics:
    """The worker's registry and the few calls the worker makes on it (once per batch, never per event)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.source: GaugeSource | None = None
        self.events = Counter(
            "cpkmon_events",
            "Input events by outcome (accepted, duplicate, dead_letter, rekeyed)",
            ["topic", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "cpkmon_dead_letters",
            "Events sent to the dead-letter topic, by reason class",
            ["topic", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "cpkmon_processing_latency_seconds",
            "From an input record's Kafka timestamp to its application (last record of each batch)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.status_docs = Counter("cpkmon_status_published", "Line status documents published", registry=r)
        self.checkpoints = Counter("cpkmon_checkpoint_bytes", "Bytes of line state checkpointed", registry=r)
        self.restored_lines = Counter(
            "cpkmon_restored_lines", "Line states restored from checkpoints", registry=r
        )
        self.restored_records = Counter(
            "cpkmon_restore_records", "Checkpoint records read while restoring", registry=r
        )
        self.partitions = Gauge(
            "cpkmon_worker_assigned_partitions", "Input partition numbers assigned", registry=r
        )
        r.register(_RuntimeCollector(self))

    def bind(self, source: GaugeSource) -> None:
        """Read lag and lines from ``source`` at each scrape (the worker passes a method of its own)."""
        self.source = source

    def count(self, out: Counted) -> None:
        for (topic, outcome), n in out.counts.items():
            self.events.labels(topic, outcome).inc(n)
        for (topic, reason), n in out.rejected_reasons.items():
            self.dead_letters.labels(topic, reason).inc(n)

    def spec_rejected(self, topic: str, reason: str) -> None:
        self.events.labels(topic, "dead_letter").inc()
        self.dead_letters.labels(topic, reason).inc()

    def observe_latency(self, seconds: float) -> None:
        self.latency.observe(max(0.0, seconds))

    def status_published(self, n: int) -> None:
        self.status_docs.inc(n)

    def checkpointed(self, nbytes: int) -> None:
        self.checkpoints.inc(nbytes)

    def restored(self, lines: int, records: int) -> None:
        self.restored_lines.inc(lines)
        self.restored_records.inc(records)

    def assigned(self, n: int) -> None:
        self.partitions.set(n)

    def exposition(
        self,
        accept: str | None = None,
        accept_encoding: str | None = None,
        params: Mapping[str, Sequence[str]] | None = None,
    ) -> Exposition:
        """``/metrics``: the registry as prometheus_client formats it for this request's headers."""
        return expose(select(self.registry, params), accept, accept_encoding)

    def snapshot(self) -> dict[str, Any]:
        """Event counts as a plain dict (for /healthz and tests)."""
        out: dict[str, Any] = {}
        for metric in self.events.collect():
            for s in metric.samples:
                if s.name.endswith("_total"):
                    out[f"{s.labels['topic']}:{s.labels['outcome']}"] = s.value
        return out
