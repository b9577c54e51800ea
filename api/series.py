"""The SPEC §7 series of one status document, derived once when the document arrives.

The view keeps each line's series (and their exposition text) instead of the parsed document: a plant's parsed
status documents are ~10⁶ small dicts and lists that the garbage collector would walk on every full
collection (pauses of 100+ ms on the request path); tuples of floats and the raw bytes cost it nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


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


def _num(value: Any) -> float | None:
    """A finite or infinite number from a document field; None for null, NaN, bools and junk."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        v = float(value)
        return None if math.isnan(v) else v
    if isinstance(value, str) and value.strip().lower() in {"inf", "+inf", "infinity", "+infinity"}:
        return math.inf
    return None


def _fmt(value: float) -> str:
    """Exposition float: ``+Inf``, ``-Inf``, ``NaN`` as Prometheus spells them; finite values exact (repr)."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value != value:
        return "NaN"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def line_rows(doc: dict[str, Any]) -> dict[Family, list[Row]]:
    """Every SPEC §7 sample a status document yields, by family (absent values left out)."""
    line = str(doc.get("line"))
    out: dict[Family, list[Row]] = {f: [] for f in LINE_FAMILIES}
    for ch in doc.get("characteristics") or ():
        if not isinstance(ch, dict) or not isinstance(ch.get("characteristic"), str):
            continue
        labels = (line, ch["characteristic"])
        for fam, key in ((CPK, "cpk"), (PPK, "ppk"), (CP, "cp")):
            v = _num(ch.get(key))
            if v is not None:
                out[fam].append((labels, v))
        stable = ch.get("stable")
        if isinstance(stable, bool):
            out[IN_CONTROL].append((labels, 1.0 if stable else 0.0))
    for st in doc.get("stations") or ():
        if isinstance(st, dict) and isinstance(st.get("station"), str):
            v = _num(st.get("first_pass_yield"))
            if v is not None:
                out[FPY].append(((line, st["station"]), v))
    rty = _num(doc.get("rty"))
    if rty is not None:
        out[RTY].append(((line,), rty))
    dpmo = _num(doc.get("dpmo"))
    sigma = _num(doc.get("sigma_level"))
    if sigma is None and dpmo == 0.0:
        sigma = math.inf  # DPMO 0: Φ⁻¹(1) + 1.5 is +Inf; JSON cannot carry it, Prometheus can
    if sigma is not None:
        out[SIGMA].append(((line,), sigma))
    if dpmo is not None:
        out[DPMO].append(((line,), dpmo))
    grade = doc.get("grade")
    if isinstance(grade, dict):
        level = _num(grade.get("level"))
        if level is not None:
            out[GRADE].append(((line,), level))
    for kind in ("internal", "external"):
        v = _num(doc.get(f"{kind}_loss_rate"))
        if v is not None:
            out[LOSS].append(((line, kind), v))
    return out


def render_rows(fam: Family, rows: Iterable[Row]) -> str:
    name = fam.sample_name
    parts = []
    for labels, value in rows:
        if fam.labels:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(fam.labels, labels, strict=True))
            parts.append(f"{name}{{{inner}}} {_fmt(value)}\n")
        else:
            parts.append(f"{name} {_fmt(value)}\n")
    return "".join(parts)


def line_series(doc: dict[str, Any]) -> tuple[dict[Family, list[Row]], dict[Family, str]]:
    """A document's samples and their exposition text, by family."""
    rows = line_rows(doc)
    return rows, {f: render_rows(f, r) for f, r in rows.items()}
