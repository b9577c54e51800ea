"""The worker's own Prometheus metrics, on its own registry (served on CPKMON_WORKER_HOST/PORT).

Counters are bumped once per batch from the processor's aggregated counts, not per event; lag is read at
scrape time from fetch high watermarks by a collector (SPEC §10: end offsets are wrong on the embedded
broker).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from cpkmon.stream.processor import Outputs
    from cpkmon.stream.worker import Worker


class _LagCollector(Collector):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        worker = self.metrics.worker
        lag = GaugeMetricFamily(
            "cpkmon_consumer_lag",
            "Input records not yet applied, per partition (fetch high watermark minus position)",
            labels=["topic", "partition"],
        )
        if worker is not None:
            for (topic, partition), value in sorted(worker.lag().items()):
                lag.add_metric([topic, str(partition)], float(value))
        yield lag
        lines = GaugeMetricFamily("cpkmon_worker_lines", "Lines whose state this worker holds")
        lines.add_metric([], float(sum(len(p.lines) for p in worker.processors.values())) if worker else 0.0)
        yield lines


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.worker: Worker | None = None
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
        r.register(_LagCollector(self))

    def bind(self, worker: Worker) -> None:
        self.worker = worker

    def count(self, out: Outputs) -> None:
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

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """Event counts as a plain dict (for /healthz and tests)."""
        out: dict[str, Any] = {}
        for metric in self.events.collect():
            for s in metric.samples:
                if s.name.endswith("_total"):
                    out[f"{s.labels['topic']}:{s.labels['outcome']}"] = s.value
        return out
