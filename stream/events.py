"""Input validation: raw Kafka message bytes → normalized events or dead letters with a reason.

The pydantic models are the definition of a valid event (SPEC §2) and produce the human-readable reasons.
They cost ~3 µs per event, which alone is more than the whole decode ceiling of a message, so the hot path
first tries :func:`_fast_measurement` / :func:`_fast_inspection`: exact type checks that accept only a
*subset* of what the models accept and hand everything else to the models. A property test checks that the
fast path never accepts what the models reject and that both normalize identically.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from cpkmon.alerts.model import InspectionIn, MeasurementIn, QualityCostIn
from cpkmon.alerts.model import SpecDocument as SpecIn
from cpkmon.capability.timeutil import parse_ts

IDENT_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_SUBGROUP_ID = 128

# The input documents (SPEC §2) are defined once, in the document model of the pure core; they stay importable
# from here.
__all__ = [
    "IDENT_RE", "MAX_SUBGROUP_ID", "Event", "Inspection", "InspectionIn", "Kind", "Measurement",
    "MeasurementIn", "QualityCost", "QualityCostIn", "Rejected", "SpecIn", "decode", "parse_spec",
]


# ------------------------------------------------------------------------------------------------------------
# normalized events (what the processor consumes)


@dataclass(slots=True)
class Measurement:
    """One measured value. Not ``frozen`` on purpose: a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__`` (≈ 0.8 µs for these seven, four times a plain slots ``__init__``), and the
    decoder builds one per value. Treat it as immutable all the same."""

    event_id: str
    ts: float
    line: str
    station: str | None
    characteristic: str
    value: float
    subgroup: str | None


@dataclass(frozen=True, slots=True)
class Inspection:
    event_id: str
    ts: float
    line: str
    station: str
    passed: bool
    first_pass: bool
    defects: int | None
    opportunities: int | None


@dataclass(frozen=True, slots=True)
class QualityCost:
    event_id: str
    ts: float
    line: str
    internal_loss: float
    external_loss: float
    output_value: float


Kind = Literal["measurement", "inspection", "quality_cost"]
Event = Measurement | Inspection | QualityCost


@dataclass(frozen=True, slots=True)
class Rejected:
    """One bad element: why, and the element itself (or the raw message when it never parsed)."""

    reason: str
    payload: Any


def _subgroup_key(sub: object) -> str | None:
    if sub is None:
        return None
    return sub if isinstance(sub, str) else f"#{sub}"


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "event"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


_KNOWN_IDENTS: set[str] = set()


def _ident_ok(value: object) -> bool:
    if value.__class__ is not str:
        return False
    if value in _KNOWN_IDENTS:
        return True
    if IDENT_RE.fullmatch(value):
        if len(_KNOWN_IDENTS) < 100_000:
            _KNOWN_IDENTS.add(value)
        return True
    return False


def _finite_number(value: object) -> bool:
    """An exact int or a finite float (bools, strings, NaN and inf go to the model, which rejects them)."""
    cls = value.__class__
    return cls is int or (cls is float and math.isfinite(value))  # type: ignore[arg-type]


def _fast_ts(ts: object) -> float | None:
    if ts.__class__ is int:
        if 0 <= ts < 10**14:
            return ts / 1000.0
        return None
    if ts.__class__ is str and 20 <= len(ts) <= 35 and ts[-1] == "Z":
        try:
            return parse_ts(ts)
        except ValueError:
            return None
    return None


def _fast_header(d: dict[str, Any], station_required: bool) -> tuple[str, float, str, Any] | None:
    """``(event_id, ts, line, station)`` when the fields every event shares have exact valid types."""
    eid = d.get("event_id")
    if eid.__class__ is not str or not 0 < len(eid) <= 128:
        return None
    ts = _fast_ts(d.get("ts"))
    line = d.get("line")
    station = d.get("station")
    if ts is None or not _ident_ok(line):
        return None
    if (station is None and station_required) or (station is not None and not _ident_ok(station)):
        return None
    return eid, ts, line, station  # type: ignore[return-value]


def _fast_measurement(d: dict[str, Any]) -> list[Measurement] | None:
    """The common single-value or per-part shape with exact types; None = let the model decide."""
    head = _fast_header(d, station_required=False)
    if head is None:
        return None
    eid, ts, line, station = head
    sub = d.get("subgroup")
    if sub is not None and not (
        (sub.__class__ is str and 0 < len(sub) <= MAX_SUBGROUP_ID) or sub.__class__ is int
    ):
        return None
    subgroup = _subgroup_key(sub)
    values = d.get("values")
    if values is None:
        char = d.get("characteristic")
        value = d.get("value")
        if not _ident_ok(char) or not _finite_number(value):
            return None
        return [Measurement(eid, ts, line, station, char, float(value), subgroup)]  # type: ignore[arg-type]
    if (
        values.__class__ is not dict
        or not values
        or len(values) > 1000
        or "characteristic" in d
        or "value" in d
    ):
        return None
    out = []
    for name, value in values.items():
        if not _ident_ok(name) or not _finite_number(value):
            return None
        out.append(Measurement(f"{eid}/{name}", ts, line, station, name, float(value), subgroup))
    return out


def _model_measurement(d: Any) -> list[Measurement] | Rejected:
    try:
        m = MeasurementIn.model_validate(d)
    except ValidationError as exc:
        return Rejected(_reason(exc), d)
    ts = parse_ts(m.ts)
    sub = _subgroup_key(m.subgroup)
    if m.values is None:
        assert m.characteristic is not None and m.value is not None
        return [Measurement(m.event_id, ts, m.line, m.station, m.characteristic, float(m.value), sub)]
    return [
        Measurement(f"{m.event_id}/{name}", ts, m.line, m.station, name, float(v), sub)
        for name, v in m.values.items()
    ]


def _fast_inspection(d: dict[str, Any]) -> Inspection | None:
    head = _fast_header(d, station_required=True)
    if head is None:
        return None
    eid, ts, line, station = head
    passed = d.get("passed")
    first = d.get("first_pass", True)
    defects = d.get("defects")
    opp = d.get("opportunities")
    unit = d.get("unit_id")
    if (
        passed.__class__ is not bool
        or first.__class__ is not bool
        or (defects is not None and not (defects.__class__ is int and 0 <= defects <= 10**9))
        or (opp is not None and not (opp.__class__ is int and 1 <= opp <= 10**9))
        or (unit is not None and not (unit.__class__ is str and len(unit) <= 128))
    ):
        return None
    return Inspection(eid, ts, line, station, passed, first, defects, opp)


def _model_inspection(d: Any) -> Inspection | Rejected:
    try:
        m = InspectionIn.model_validate(d)
    except ValidationError as exc:
        return Rejected(_reason(exc), d)
    return Inspection(
        m.event_id, parse_ts(m.ts), m.line, m.station, m.passed, m.first_pass, m.defects, m.opportunities
    )


def _model_cost(d: Any) -> QualityCost | Rejected:
    try:
        m = QualityCostIn.model_validate(d)
    except ValidationError as exc:
        return Rejected(_reason(exc), d)
    return QualityCost(
        m.event_id,
        parse_ts(m.ts),
        m.line,
        float(m.internal_loss),
        float(m.external_loss),
        float(m.output_value),
    )


def _elements(raw: bytes | None, max_bytes: int) -> list[Any] | Rejected:
    if raw is None:
        return Rejected("empty message (null value)", None)
    if len(raw) > max_bytes:
        return Rejected(f"message of {len(raw)} bytes exceeds max_message_bytes {max_bytes}", None)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected(f"not JSON: {exc}", _raw_payload(raw))
    except RecursionError:
        return Rejected("not JSON: nested too deeply", _raw_payload(raw))
    if isinstance(doc, list):
        if not doc:
            return Rejected("empty batch (JSON array with no events)", doc)
        return doc
    return [doc]


def _raw_payload(raw: bytes) -> str:
    """The raw bytes as text for the dead-letter document (invalid UTF-8 replaced, size bounded)."""
    return raw[:65536].decode("utf-8", errors="replace")


def decode(kind: Kind, raw: bytes | None, max_bytes: int) -> tuple[list[Event], list[Rejected]]:
    """Every valid event of one message, and every bad element with its reason (SPEC §2)."""
    elements = _elements(raw, max_bytes)
    if isinstance(elements, Rejected):
        return [], [elements]
    good: list[Event] = []
    bad: list[Rejected] = []
    for el in elements:
        if el.__class__ is not dict:
            bad.append(Rejected(f"an event must be a JSON object, not {type(el).__name__}", el))
            continue
        if kind == "measurement":
            ms = _fast_measurement(el)
            res: Any = ms if ms is not None else _model_measurement(el)
            if isinstance(res, Rejected):
                bad.append(res)
            else:
                good.extend(res)
            continue
        res = (_fast_inspection(el) or _model_inspection(el)) if kind == "inspection" else _model_cost(el)
        if isinstance(res, Rejected):
            bad.append(res)
        else:
            good.append(res)
    return good, bad


def parse_spec(raw: dict[str, Any]) -> SpecIn:
    """Raises pydantic ``ValidationError`` with the reason."""
    return SpecIn.model_validate(raw)
