"""Prometheus metrics (SPEC §7) read from the view at scrape time.

A custom collector in an app-owned :class:`CollectorRegistry` (no global registry: several apps in one
process, as in the tests, never collide). Values come from the status documents and the deduplicated alert
topic, so every API replica exports the same numbers. A value that is null in the document (insufficient data)
is an ABSENT series, never 0.

Speed: a plant of 1 000 lines × 10 characteristics is ~50 000 series, and ``generate_latest`` formats each
sample on every scrape (~5 µs each). So each line's series are derived and formatted once, when its document
arrives (:mod:`cpkmon.api.series`), and the collector yields :class:`PrerenderedMetric` families whose text
:func:`render` concatenates. ``samples`` are still built on demand, so ``generate_latest`` and any other
prometheus_client consumer see exactly the same families (a test checks both agree)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

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
    render_rows,
)
from cpkmon.api.view import View

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PrerenderedMetric(Metric):
    """A metric family that carries its exposition text; ``samples`` are materialized only when asked for."""

    def __init__(self, fam: Family, chunks: list[str], rows: Iterable[Row]) -> None:
        # Metric.__init__ would assign self.samples; the property below replaces that attribute.
        self.name = fam.name
        self.documentation = fam.help
        self.unit = ""
        self.type = fam.type
        self.family = fam
        self.chunks = chunks
        self._rows = rows

    @property
    def samples(self) -> list[Sample]:  # type: ignore[override]
        name = self.family.sample_name
        return [
            Sample(name, dict(zip(self.family.labels, labels, strict=True)), v) for labels, v in self._rows
        ]


class ViewCollector(Collector):
    """Reads the view at scrape time: each line's samples were derived when its document arrived."""

    def __init__(self, view: View) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        view = self.view
        lines = [view.lines[name] for name in sorted(view.lines)]
        for fam in LINE_FAMILIES:
            yield PrerenderedMetric(
                fam, [e.text[fam] for e in lines], [row for e in lines for row in e.series[fam]]
            )
        counts = view.alert_counts
        degr_lines = sorted(set(view.lines) | {line for line, _ in counts})
        for fam, rows in (
            (
                DEGRADATIONS,
                [((line,), float(counts.get((line, "grade_degraded"), 0))) for line in degr_lines],
            ),
            (ALERTS, [((line, kind), float(n)) for (line, kind), n in sorted(counts.items())]),
            (VIEW_LAG, [((), view.lag_seconds)]),
            (VIEW_READY, [((), 1.0 if view.ready else 0.0)]),
            (VIEW_RECORDS, [((t,), float(n)) for t, n in sorted(view.stats.records.items())]),
            (VIEW_MALFORMED, [((t,), float(n)) for t, n in sorted(view.stats.malformed.items())]),
        ):
            yield PrerenderedMetric(fam, [render_rows(fam, rows)], rows)


class _One(Collector):
    """A registry-shaped wrapper so ``generate_latest`` formats one foreign metric family."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> Iterable[Metric]:
        return [self.metric]


def build_registry(view: View) -> CollectorRegistry:
    """The app-owned registry: the view's collector only (no process-global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ViewCollector(view))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """Prometheus text format 0.0.4, the same bytes ``generate_latest`` would give, but prerendered families
    are concatenated instead of formatted sample by sample."""
    out: list[str] = []
    for metric in registry.collect():
        if isinstance(metric, PrerenderedMetric):
            name = metric.family.sample_name
            out.append(f"# HELP {name} {metric.documentation}\n# TYPE {name} {metric.type}\n")
            out.extend(metric.chunks)
        else:
            out.append(generate_latest(_One(metric)).decode())
    return "".join(out).encode()


__all__ = ["CONTENT_TYPE", "Family", "ViewCollector", "build_registry", "render"]
