"""Prometheus metrics (SPEC §7) read from the view at scrape time, rendered by prometheus_client itself.

A custom collector in an app-owned :class:`CollectorRegistry` (no global registry: several apps in one
process, as in the tests, never collide). Values come from the status documents and the deduplicated alert
topic, so every API replica exports the same numbers. A value that is null in the document (insufficient data)
is an ABSENT series, never 0.

The collector yields prometheus_client's own ``GaugeMetricFamily`` / ``CounterMetricFamily`` and the route
formats them with the library's exposition code (``generate_latest``, or its OpenMetrics twin when Prometheus
asks for it: :mod:`cpkmon.exposition`). An earlier version concatenated text it had formatted itself when each
document arrived; it was faster (15 ms for 50 000 series) but had drifted from the library (label order, HELP
escaping), and SPEC §9 asks 250 ms for 10 000 series, which the library's formatter meets with room (see the
README's API figures). What is still done once per document is the costly part of reading it: each line's
samples are derived when its document arrives (:mod:`cpkmon.api.series`), so a scrape only wraps those rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from cpkmon.api.series import (
    ALERTS,
    DEGRADATIONS,
    LINE_FAMILIES,
    VIEW_LAG,
    VIEW_MALFORMED,
    VIEW_READY,
    VIEW_RECORDS,
    Family,
    Row,
)
from cpkmon.api.view import View

FAMILIES: tuple[Family, ...] = (
    *LINE_FAMILIES,
    DEGRADATIONS,
    ALERTS,
    VIEW_LAG,
    VIEW_READY,
    VIEW_RECORDS,
    VIEW_MALFORMED,
)


def metric_family(fam: Family, rows: Sequence[Row] = ()) -> Metric:
    """The library's family object for ``fam``, one sample per row (label values in ``fam.labels`` order)."""
    metric: GaugeMetricFamily | CounterMetricFamily
    if fam.type == "counter":
        metric = CounterMetricFamily(fam.name, fam.help, labels=fam.labels)
    else:
        metric = GaugeMetricFamily(fam.name, fam.help, labels=fam.labels)
    for labels, value in rows:
        metric.add_metric(labels, value)
    return metric


class ViewCollector(Collector):
    """Reads the view at scrape time: each line's rows were derived when its document arrived.

    Must run where the view is consistent (the event loop that applies records to it); the samples it
    returns are copies, safe to format anywhere afterwards.
    """

    def __init__(self, view: View) -> None:
        self.view = view

    def describe(self) -> list[Metric]:
        """Every family, without samples: lets the registry refuse duplicates at registration and lets
        ``?name[]=`` find this collector (``restricted_registry``) without a scrape."""
        return [metric_family(fam) for fam in FAMILIES]

    def collect(self) -> Iterator[Metric]:
        view = self.view
        lines = [view.lines[name] for name in sorted(view.lines)]
        for fam in LINE_FAMILIES:
            yield metric_family(fam, [row for e in lines for row in e.series[fam]])
        counts = view.alert_counts
        degr_lines = sorted(set(view.lines) | {line for line, _ in counts})
        yield metric_family(
            DEGRADATIONS, [((line,), float(counts.get((line, "grade_degraded"), 0))) for line in degr_lines]
        )
        yield metric_family(ALERTS, [((line, kind), float(n)) for (line, kind), n in sorted(counts.items())])
        yield metric_family(VIEW_LAG, [((), view.lag_seconds)])
        yield metric_family(VIEW_READY, [((), 1.0 if view.ready else 0.0)])
        yield metric_family(VIEW_RECORDS, [((t,), float(n)) for t, n in sorted(view.stats.records.items())])
        yield metric_family(
            VIEW_MALFORMED, [((t,), float(n)) for t, n in sorted(view.stats.malformed.items())]
        )


def build_registry(view: View) -> CollectorRegistry:
    """The app-owned registry: the view's collector only (no process-global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ViewCollector(view))
    return registry


__all__ = ["FAMILIES", "ViewCollector", "build_registry", "metric_family"]
