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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from cpkmon.alerts.alarm_kpis import KpiReport
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


# ISA-18.2 alarm-system KPIs (README "Alarm management"), computed at scrape time from the view's fold of
# cpkmon.alarm-events (cpkmon.alerts.alarm_kpis), on event time. A flood is a plant-wide condition (one
# operator position watches every line), so the flood metrics and the time-to-acknowledge histogram carry no
# line label; the rate has a per-line metric and a plant one of its own (not line="", so that a sum over
# lines never counts the plant twice).
ALARMS_10MIN = Family(
    "cpkmon_alarms_per_10min", "gauge", "Alarms annunciated in the trailing 10 minutes of event time",
    ("line",),
)
PLANT_ALARMS_10MIN = Family(
    "cpkmon_plant_alarms_per_10min", "gauge",
    "Alarms annunciated plant-wide in the trailing 10 minutes (ISA-18.2 flood above 10)", (),
)
ALARM_FLOOD = Family("cpkmon_alarm_flood", "gauge", "1 while the plant is in an alarm flood (ISA-18.2)", ())
ALARM_FLOOD_SECONDS = Family(
    "cpkmon_alarm_flood_seconds", "counter", "Seconds of event time the plant spent in alarm flood", ()
)
ALARMS_CHATTERING = Family(
    "cpkmon_alarms_chattering", "gauge", "Alarms chattering (3 activations in 60 s) in the last 10 minutes",
    ("line",),
)
ALARMS_STALE = Family("cpkmon_alarms_stale", "gauge", "Standing alarms active longer than 24 h", ("line",))
ALARMS_UNACK = Family(
    "cpkmon_alarms_unacknowledged", "gauge", "Alarms awaiting acknowledgement (unack, rtn_unack)", ("line",)
)
ALARM_UNACK_OLDEST = Family(
    "cpkmon_alarm_unacknowledged_oldest_seconds", "gauge",
    "Age of the oldest alarm awaiting acknowledgement (absent when none)", ("line",),
)
ALARM_ACTIVATIONS = Family(
    "cpkmon_alarm_activations", "counter",
    "Alarm activations (new occurrences and re-activations) by line and source kind", ("line", "kind"),
)
ALARM_TTA = Family(
    "cpkmon_alarm_time_to_ack_seconds", "histogram", "Time from annunciation to acknowledgement", ()
)
ALARM_FAMILIES: tuple[Family, ...] = (
    ALARMS_10MIN, PLANT_ALARMS_10MIN, ALARM_FLOOD, ALARM_FLOOD_SECONDS, ALARMS_CHATTERING, ALARMS_STALE,
    ALARMS_UNACK, ALARM_UNACK_OLDEST, ALARM_ACTIVATIONS, ALARM_TTA,
)


def alarm_metrics(report: KpiReport, activations: dict[tuple[str, str], int]) -> list[Metric]:
    """The alarm KPI families of ``report``; ``activations``: (line, source kind) → count."""
    lines = sorted(report.lines.items())
    tta = HistogramMetricFamily(ALARM_TTA.name, ALARM_TTA.help, labels=[])
    bounds = [str(b) for b in report.tta_buckets] + ["+Inf"]
    tta.add_metric([], list(zip(bounds, (float(c) for c in report.tta_counts), strict=True)),
                   report.tta_sum)
    return [
        metric_family(ALARMS_10MIN, [((ln,), float(k.alarms_10min)) for ln, k in lines]),
        metric_family(PLANT_ALARMS_10MIN, [((), float(report.plant.alarms_10min))]),
        metric_family(ALARM_FLOOD, [((), 1.0 if report.plant.in_flood else 0.0)]),
        metric_family(ALARM_FLOOD_SECONDS, [((), report.plant.flood_seconds)]),
        metric_family(ALARMS_CHATTERING, [((ln,), float(k.chattering)) for ln, k in lines]),
        metric_family(ALARMS_STALE, [((ln,), float(k.stale)) for ln, k in lines]),
        metric_family(ALARMS_UNACK, [((ln,), float(k.unack)) for ln, k in lines]),
        metric_family(ALARM_UNACK_OLDEST, [((ln,), k.unack_oldest_age) for ln, k in lines
                                           if k.unack_oldest_age is not None]),
        metric_family(
            ALARM_ACTIVATIONS, [((ln, kind), float(n)) for (ln, kind), n in sorted(activations.items())]
        ),
        tta,
    ]


class AlarmCollector(Collector):
    """The alarm KPIs of the view's alarm fold, at the view's alarm clock (see :meth:`View.alarm_now`)."""

    def __init__(self, view: View) -> None:
        self.view = view

    def describe(self) -> list[Metric]:
        return [
            HistogramMetricFamily(f.name, f.help, labels=list(f.labels)) if f.type == "histogram"
            else metric_family(f) for f in ALARM_FAMILIES
        ]

    def collect(self) -> Iterator[Metric]:
        view = self.view
        activations: dict[tuple[str, str], int] = {}
        for track in view.alarm_kpis.alarms.values():
            if track.activations:
                key = (track.line, track.source)
                activations[key] = activations.get(key, 0) + track.activations
        yield from alarm_metrics(view.alarm_report(), activations)


def build_registry(view: View) -> CollectorRegistry:
    """The app-owned registry: the view's collectors only (no process-global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ViewCollector(view))
    registry.register(AlarmCollector(view))
    return registry


__all__ = ["ALARM_FAMILIES", "FAMILIES", "AlarmCollector", "ViewCollector", "alarm_metrics", "build_registry",
           "metric_family"]
