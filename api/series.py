"""The SPEC §7 series of one status document, derived once when the document arrives.

The view keeps each line's samples instead of the parsed document: a plant's parsed
status documents are ~10⁶ small dicts and lists that the garbage collector would walk on every full
collection (pauses of 100+ ms on the request path); tuples of floats and the raw bytes cost it nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cpkmon.alerts.model import LineStatusHead


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # without _total for counters (prometheus_client's convention)
    type: str
    help: str
    labels: tuple[str, ...]

    @property
    def sample_name(self) -> str:
        return self.name + "_total" if self.type == "counter" else self.name


CPK = Family("cpkmon_cpk", "gauge", "Cpk of a characteristic over its window", ("line", "characteristic"))
PPK = Family("cpkmon_ppk", "gauge", "Ppk of a characteristic over its window", ("line", "characteristic"))
CP = Family("cpkmon_cp", "gauge", "Cp of a characteristic over its window", ("line", "characteristic"))
IN_CONTROL = Family(
    "cpkmon_in_control", "gauge", "1 when no enabled run rule fired in the window", ("line", "characteristic")
)
FPY = Family("cpkmon_first_pass_yield_ratio", "gauge", "First-pass yield of a station", ("line", "station"))
RTY = Family("cpkmon_rolled_throughput_yield_ratio", "gauge", "Rolled throughput yield of a line", ("line",))
SIGMA = Family(
    "cpkmon_sigma_level", "gauge", "Sigma level of a line (1.5 sigma shift; +Inf at DPMO 0)", ("line",)
)
GRADE = Family("cpkmon_line_grade", "gauge", "MIIT quality grade of a line (1-5)", ("line",))
DPMO = Family("cpkmon_dpmo", "gauge", "Defects per million opportunities of a line", ("line",))
LOSS = Family("cpkmon_loss_rate_ratio", "gauge", "Quality loss / output value of a line", ("line", "kind"))
DEGRADATIONS = Family(
    "cpkmon_grade_degradations", "counter", "grade_degraded alerts of a line (deduplicated)", ("line",)
)
ALERTS = Family("cpkmon_alerts", "counter", "Alerts by line and type (deduplicated)", ("line", "type"))
VIEW_LAG = Family("cpkmon_view_lag_seconds", "gauge", "Seconds since the API view was last caught up", ())
VIEW_READY = Family("cpkmon_view_ready", "gauge", "1 once the API view has caught up with the topics", ())
VIEW_RECORDS = Family("cpkmon_view_records", "counter", "Records the API view consumed", ("topic",))
VIEW_MALFORMED = Family("cpkmon_view_malformed", "counter", "Records the API view could not use", ("topic",))

LINE_FAMILIES = (CPK, PPK, CP, IN_CONTROL, FPY, RTY, SIGMA, GRADE, DPMO, LOSS)

Row = tuple[tuple[str, ...], float]


def _num(value: float | None) -> float | None:
    """A sample value from a typed document field: None for null and NaN (absent, not a sample)."""
    if value is None or value != value:
        return None
    return float(value)


def line_rows(doc: LineStatusHead, line: str | None = None) -> dict[Family, list[Row]]:
    """Every SPEC §7 sample a status document yields, by family (absent values left out).

    The view validated the document against the document model (its projection :class:`LineStatusHead`), so
    fields have their types here; only nulls and NaN are left to skip. ``line``: the id when the document
    names none (the record's key)."""
    line = doc.line or line or ""
    out: dict[Family, list[Row]] = {f: [] for f in LINE_FAMILIES}
    for ch in doc.characteristics:
        labels = (line, ch.characteristic)
        for fam, v in ((CPK, ch.cpk), (PPK, ch.ppk), (CP, ch.cp)):
            num = _num(v)
            if num is not None:
                out[fam].append((labels, num))
        if ch.stable is not None:
            out[IN_CONTROL].append((labels, 1.0 if ch.stable else 0.0))
    for st in doc.stations:
        v = _num(st.first_pass_yield)
        if v is not None:
            out[FPY].append(((line, st.station), v))
    rty = _num(doc.rty)
    if rty is not None:
        out[RTY].append(((line,), rty))
    dpmo = _num(doc.dpmo)
    sigma = _num(doc.sigma_level)
    if sigma is None and dpmo == 0.0:
        sigma = math.inf  # DPMO 0: Φ⁻¹(1) + 1.5 is +Inf; JSON cannot carry it, Prometheus can
    if sigma is not None:
        out[SIGMA].append(((line,), sigma))
    if dpmo is not None:
        out[DPMO].append(((line,), dpmo))
    if doc.grade is not None:
        out[GRADE].append(((line,), float(doc.grade.level)))
    for kind, v in (("internal", doc.internal_loss_rate), ("external", doc.external_loss_rate)):
        num = _num(v)
        if num is not None:
            out[LOSS].append(((line, kind), num))
    return out
