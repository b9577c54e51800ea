"""The document model of cpkmon: every document that crosses a topic or the API, defined once.

Why one module: the same documents used to be built as dicts by the worker, re-described for OpenAPI by the
API, re-parsed with ``isinstance`` guards by the API's view and re-typed by the dashboard, and the copies had
started to drift. Here they are pydantic models with a description per field, and the names that used to be
strings scattered over modules (criteria, alert types, ladder levels, limiting reasons, grade-change causes)
are constants, imported by :mod:`cpkmon.alerts.ladder`, :mod:`cpkmon.alerts.engine` and
:mod:`cpkmon.alerts.documents` rather than defined there.

Who uses what:

* the worker keeps building plain dicts on its hot path (a model instance per document would cost more than
  the statistics), and ``tests/alerts/test_model.py`` validates the documents ``LineState`` and
  ``Characteristic`` produce over a random stream against these models *strictly* (:func:`validate_strict`:
  no key the model lacks, no key the model declares missing) and against their JSON Schema, so the two cannot
  drift;
* the API uses them as response models (its OpenAPI) and to parse what it reads from Kafka;
* ``cpkmon schema`` exports their JSON Schema (committed under ``docs/schema/``) and ``api/static/fields.js``
  (the dashboard's field names and enum values) is generated from them (:func:`fields_js`).

Reading is tolerant, checking is strict: output documents accept unknown keys (``extra="allow"``: a newer
worker that adds a field never breaks an older API) and give absent keys a default (status documents written
before a field existed stay readable from the compacted topic). :func:`validate_strict` and the exported
schema's ``required`` lists say what the current worker always writes.

This module is pure (pydantic only): the import contract keeps Kafka, FastAPI and Prometheus out of it.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from cpkmon.capability.spec import target_problem
from cpkmon.capability.timeutil import parse_ts

# ---------------------------------------------------------------------------------------------- constants

#: Identifiers of lines, stations and characteristics (SPEC §1).
IDENT_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"

#: The ladder's criteria, in the order the status lists them.
CPK = "cpk"
RTY = "rty"
SIGMA_LEVEL = "sigma_level"  # judged on DPMO, reported as a sigma level
INTERNAL_LOSS_RATE = "internal_loss_rate"
EXTERNAL_LOSS_RATE = "external_loss_rate"
CRITERIA: tuple[str, ...] = (CPK, RTY, SIGMA_LEVEL, INTERNAL_LOSS_RATE, EXTERNAL_LOSS_RATE)
#: The limiting "criterion" when ``require_stability`` holds a line: a characteristic out of control.
STABILITY = "stability"
LIMITING_CRITERIA: tuple[str, ...] = (*CRITERIA, STABILITY)

#: The MIIT ladder's levels: (level, name, Chinese name). Thresholds live in :mod:`cpkmon.alerts.ladder`.
LEVEL_NAMES: tuple[tuple[int, str, str], ...] = (
    (1, "experience", "经验级"),
    (2, "inspection", "检验级"),
    (3, "assurance", "保证级"),
    (4, "prevention", "预防级"),
    (5, "excellence", "卓越级"),
)

#: Why a line is not at the next level (``limiting.reason``).
BELOW_THRESHOLD = "below_threshold"  # the value misses the next level's threshold
NOT_ASSESSED = "not_assessed"  # no data (only under require_all_criteria)
UNSTABLE = "unstable"  # require_stability: a characteristic is not in statistical control
NOT_RESOLVABLE = "not_resolvable"  # DPMO meets the threshold, but its sample is too small to resolve it
WITHIN_BAND = "within_band"  # meets the next threshold, not yet by the hysteresis band
CONFIRMING = "confirming"  # cleared the band; the rise is being confirmed (confirm_evaluations)
REASONS: tuple[str, ...] = (BELOW_THRESHOLD, NOT_ASSESSED, UNSTABLE, NOT_RESOLVABLE, WITHIN_BAND, CONFIRMING)

#: Alert types (SPEC §5).
GRADE_DEGRADED = "grade_degraded"
GRADE_RECOVERED = "grade_recovered"
OUT_OF_CONTROL = "out_of_control"
GRADE_ALERT_TYPES: tuple[str, ...] = (GRADE_DEGRADED, GRADE_RECOVERED)
ALERT_TYPES: tuple[str, ...] = (GRADE_DEGRADED, GRADE_RECOVERED, OUT_OF_CONTROL)

#: Causes of a published-grade change that raise no alert (``grade_changes[].cause``).
FIRST_GRADE = "first_grade"
NO_DATA = "no_data"
NEWLY_ASSESSED = "newly_assessed"
NEWLY_RESOLVABLE = "newly_resolvable"
SILENT_CAUSES: tuple[str, ...] = (FIRST_GRADE, NO_DATA, NEWLY_ASSESSED, NEWLY_RESOLVABLE)
CHANGE_CAUSES: tuple[str, ...] = (*GRADE_ALERT_TYPES, *SILENT_CAUSES)

#: Direction of a grade change being confirmed (``grade_pending.direction``).
FALLING = "falling"
RISING = "rising"
DIRECTIONS: tuple[str, ...] = (FALLING, RISING)

#: How a criterion compares with its thresholds (``criteria[].comparison``).
COMPARISONS: tuple[str, ...] = (">=", "<=", "<")

#: A characteristic's ``state``.
STATE_OK = "ok"
STATE_INSUFFICIENT = "insufficient_data"
STATES: tuple[str, ...] = (STATE_OK, STATE_INSUFFICIENT)

#: Control charts (SPEC §4.1), the chart a violation was seen on, where frozen limits came from.
CHART_KINDS: tuple[str, ...] = ("xbar_r", "xbar_s", "i_mr")
CHART_SIDES: tuple[str, ...] = ("x", "r")  # X̄/I chart, R/S/MR chart
LIMIT_SOURCES: tuple[str, ...] = ("baseline", "known")
RULES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)  # the Nelson tests

#: Checkpoint formats this release writes.
LINE_STATE_VERSION = 1
PARTITION_CHECKPOINT_VERSION = 2

# ---------------------------------------------------------------------------------------------- base classes

Number = float | None
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
Timestamp = Annotated[
    str, Field(description="RFC 3339, UTC, millisecond precision", examples=["2026-11-20T08:15:02.125Z"])
]


def _enum(values: tuple[Any, ...]) -> dict[str, Any]:
    """``json_schema_extra`` listing a field's known values: documents stay open to new values (an older API
    must not reject a newer worker's reason), integrators and the dashboard still learn the current ones."""
    return {"x-known-values": list(values)}


class Document(BaseModel):
    """A document the worker or the API writes (status, alert, ack, dead letter, checkpoint).

    Tolerant when read (unknown keys are kept, absent ones defaulted); strict under :func:`validate_strict`,
    which is how the tests hold the worker to the model: no extra key, and every key not listed in
    ``OPTIONAL_KEYS`` present.
    """

    model_config = ConfigDict(extra="allow")

    #: Keys the current worker writes only in some documents (everything else it always writes).
    OPTIONAL_KEYS: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _strict_keys(self, info: ValidationInfo) -> Document:
        ctx = info.context
        if not (isinstance(ctx, dict) and ctx.get("strict_keys")):
            return self
        extra = sorted(self.__pydantic_extra__ or {})
        if extra:
            raise ValueError(f"{type(self).__name__}: keys the model does not declare: {extra}")
        missing = [
            k
            for k in type(self).model_fields
            if k not in self.model_fields_set and k not in self.OPTIONAL_KEYS
        ]
        if missing:
            raise ValueError(f"{type(self).__name__}: keys the model requires are missing: {missing}")
        return self


# ---------------------------------------------------------------------------------------------- input events


class _Event(BaseModel):
    """What every input event carries (SPEC §2). Unknown keys are ignored: producers may add their own."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="the producer's id of the event; a resend with the same id inside its window counts once",
        examples=["cmm-7-000123"],
    )
    ts: str | StrictInt = Field(
        description="event time: RFC 3339 with a zone, or integer epoch milliseconds",
        examples=["2026-11-20T08:15:02.125Z"],
    )
    line: Ident = Field(description="line id (SPEC §1)", examples=["L1"])

    @model_validator(mode="after")
    def _check_ts(self) -> _Event:
        parse_ts(self.ts)
        return self


StrictNumber = StrictInt | StrictFloat


class MeasurementIn(_Event):
    """``cpkmon.measurements``: one value (``characteristic`` + ``value``) or a part's values (``values``)."""

    station: Ident | None = Field(default=None, description="station that measured", examples=["S10"])
    characteristic: Ident | None = Field(
        default=None, description="characteristic id (single-value form)", examples=["bore_diameter"]
    )
    value: StrictNumber | None = Field(
        default=None, description="the measured value (single-value form)", examples=[74.003]
    )
    values: dict[Ident, StrictNumber] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="per-part form: characteristic → value (event id of each: <event_id>/<characteristic>)",
        examples=[{"bore_diameter": 74.003, "bore_depth": 12.51}],
    )
    subgroup: Annotated[str, StringConstraints(min_length=1, max_length=128)] | StrictInt | None = Field(
        default=None,
        description="explicit rational subgroup; default: consecutive values of the spec's subgroup_size",
    )

    @model_validator(mode="after")
    def _one_form(self) -> MeasurementIn:
        single = self.characteristic is not None or self.value is not None
        if self.values is not None and single:
            raise ValueError("give either characteristic/value or values, not both")
        if self.values is None:
            if self.characteristic is None:
                raise ValueError("characteristic is required (or a values object)")
            if self.value is None:
                raise ValueError("value is required")
            if not math.isfinite(self.value):
                raise ValueError("value must be a finite number")
        elif not all(math.isfinite(v) for v in self.values.values()):
            raise ValueError("values must be finite numbers")
        return self


class InspectionIn(_Event):
    """``cpkmon.inspections``: one unit's pass/fail at a station, with optional defect counts (DPMO)."""

    station: Ident = Field(description="inspecting station", examples=["S20"])
    unit_id: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="the unit inspected"
    )
    passed: StrictBool = Field(description="the unit passed")
    first_pass: StrictBool = Field(
        default=True, description="false for a re-inspection (not in the FPY window)"
    )
    defects: Annotated[StrictInt, Field(ge=0, le=10**9)] | None = Field(
        default=None, description="defects found on the unit"
    )
    opportunities: Annotated[StrictInt, Field(ge=1, le=10**9)] | None = Field(
        default=None, description="defect opportunities per unit (DPMO denominator)"
    )


class QualityCostIn(_Event):
    """``cpkmon.quality-costs``: one period's quality losses and output value (the loss-rate criteria)."""

    internal_loss: Annotated[StrictNumber, Field(ge=0)] = Field(
        description="scrap, rework, … in currency units"
    )
    external_loss: Annotated[StrictNumber, Field(ge=0)] = Field(
        description="returns, warranty, … in currency units"
    )
    output_value: Annotated[StrictNumber, Field(gt=0)] = Field(description="output value of the period")
    currency: Annotated[str, StringConstraints(max_length=8)] | None = Field(default=None, examples=["CNY"])


class SpecDocument(BaseModel):
    """``cpkmon.specs`` (key ``line/characteristic``): a characteristic's specification (SPEC §2)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    line: Ident = Field(description="line id", examples=["L1"])
    characteristic: Ident = Field(description="characteristic id", examples=["bore_diameter"])
    lsl: StrictNumber | None = Field(default=None, description="lower spec limit", examples=[73.95])
    usl: StrictNumber | None = Field(default=None, description="upper spec limit", examples=[74.05])
    target: StrictNumber | None = Field(
        default=None, description="nominal; lsl ≤ target ≤ usl; enables Cpm", examples=[74.0]
    )
    subgroup_size: Annotated[StrictInt, Field(ge=1, le=25)] | None = Field(
        default=None, description="rational subgroup size 1..25 (default CPKMON_SUBGROUP_SIZE)", examples=[5]
    )
    center: StrictNumber | None = Field(
        default=None, description="known process center (with sigma: limits without a baseline)"
    )
    sigma: Annotated[StrictNumber, Field(gt=0)] | None = Field(
        default=None, description="known process sigma"
    )

    @model_validator(mode="after")
    def _limits(self) -> SpecDocument:
        if self.lsl is None and self.usl is None:
            raise ValueError("at least one of lsl/usl is required")
        if self.lsl is not None and self.usl is not None and not self.lsl < self.usl:
            raise ValueError("lsl must be below usl")
        if (self.center is None) != (self.sigma is None):
            raise ValueError("center and sigma go together (known control limits)")
        problem = target_problem(self.lsl, self.usl, self.target)  # the core's rule and reason
        if problem is not None:
            raise ValueError(problem)
        return self


class Command(BaseModel):
    """``cpkmon.commands`` (key = line): a request the owning worker applies once."""

    model_config = ConfigDict(extra="allow")

    line: str = Field(description="line id", examples=["L1"])
    characteristic: str = Field(description="characteristic id", examples=["bore_diameter"])
    command: Literal["rebaseline"] = Field(
        default="rebaseline", description="re-freeze the control limits from the current window"
    )
    requested_at: str = Field(
        description="when the API accepted it (RFC 3339)", examples=["2026-11-20T08:20:00.000Z"]
    )


# ---------------------------------------------------------------------------------------------- status


class GradeRef(Document):
    """A grade as alerts, grade changes and the line list name it."""

    level: int = Field(ge=1, le=5, description="1 (experience) … 5 (excellence)", examples=[3])
    name: str = Field(
        description="the level's English name",
        examples=["assurance"],
        json_schema_extra=_enum(tuple(n for _, n, _ in LEVEL_NAMES)),
    )


class Grade(GradeRef):
    """A grade in the status document, with its Chinese name."""

    name_zh: str | None = Field(
        default=None,
        description="the level's Chinese name",
        examples=["保证级"],
        json_schema_extra=_enum(tuple(z for _, _, z in LEVEL_NAMES)),
    )


class AlertLimiting(Document):
    """The criterion that holds a grade below the next level, as a grade alert carries it."""

    criterion: str | None = Field(
        default=None,
        description="a criterion, or 'stability'",
        examples=["cpk"],
        json_schema_extra=_enum(LIMITING_CRITERIA),
    )
    subject: str | None = Field(
        default=None,
        description="the characteristic (cpk, stability) or station (rty) behind the value",
        examples=["bore_diameter"],
    )
    value: Number = Field(
        default=None, description="the criterion's value (a sigma level for sigma_level)", examples=[1.21]
    )
    threshold: Number = Field(
        default=None, description="the next level's threshold in the units of value", examples=[1.33]
    )
    reason: str | None = Field(
        default=None,
        description="why the value does not reach the next level",
        examples=[BELOW_THRESHOLD],
        json_schema_extra=_enum(REASONS),
    )


class Limiting(AlertLimiting):
    """Why the published grade is not higher (status document)."""

    needed: Number = Field(
        default=None,
        description="not_resolvable: opportunities still missing; within_band: the value to reach; else null",
    )


class Criterion(Document):
    """One criterion's standing in the latest evaluation."""

    OPTIONAL_KEYS = frozenset(
        {"dpmo", "next_dpmo_threshold", "resolvable_level", "opportunities_needed", "unstable"}
    )

    criterion: str = Field(description="criterion name", examples=[CPK], json_schema_extra=_enum(CRITERIA))
    assessed: bool = Field(description="false: no data, the criterion does not count")
    value: Number = Field(default=None, description="reported value (a sigma level for sigma_level)")
    subject: str | None = Field(default=None, description="the characteristic or station behind the value")
    level_met: int | None = Field(default=None, description="highest level whose threshold it meets")
    met_level: int | None = Field(default=None, description="the same as level_met (docs/design.md's name)")
    next_threshold: Number = Field(default=None, description="the next level's threshold (reported units)")
    comparison: str | None = Field(
        default=None, description="how value compares with thresholds", json_schema_extra=_enum(COMPARISONS)
    )
    dpmo: Number = Field(default=None, description="sigma_level only: the DPMO it is judged on")
    next_dpmo_threshold: Number = Field(default=None, description="sigma_level only: next threshold in DPMO")
    resolvable_level: int | None = Field(
        default=None,
        description="sigma_level only: highest level its sample resolves (rule of three, ratcheted)",
    )
    opportunities_needed: int | None = Field(
        default=None, description="sigma_level only: opportunities missing to resolve the next level"
    )
    unstable: list[str] | None = Field(
        default=None, description="cpk under require_stability: the characteristics out of control"
    )


class GradeChange(Document):
    """One change of the published grade and what explains it (an alert, or a documented silent cause)."""

    n: int = Field(description="numbers every change of this line's published grade, without gaps")
    from_grade: GradeRef | None = Field(default=None, description="published grade before (null: none)")
    to_grade: GradeRef | None = Field(default=None, description="published grade after (null: none)")
    cause: str = Field(
        description="grade_degraded | grade_recovered (then alert_id names the alert) or a silent cause",
        examples=[GRADE_DEGRADED],
        json_schema_extra=_enum(CHANGE_CAUSES),
    )
    alert_id: str | None = Field(default=None, description="the alert that announced it (alerting causes)")
    criteria: list[str] = Field(default_factory=list, description="criteria behind the change")
    event_time: str | None = Field(default=None, description="event time of the evaluation (RFC 3339)")


class GradePending(Document):
    """A grade change being confirmed (``confirm_evaluations`` consecutive evaluations beyond the band)."""

    direction: str = Field(
        description="falling or rising", examples=[FALLING], json_schema_extra=_enum(DIRECTIONS)
    )
    to_grade: GradeRef | None = Field(default=None, description="the grade the run would confirm")
    evaluations: int = Field(description="consecutive evaluations so far")
    confirm_evaluations: int = Field(description="evaluations that confirm a change")


class ControlLimits(Document):
    """Frozen control limits for the nominal subgroup size (null before a baseline)."""

    chart: str | None = Field(
        default=None, examples=["xbar_r"], description="chart kind", json_schema_extra=_enum(CHART_KINDS)
    )
    center: Number = Field(default=None, description="X̄/I center line")
    ucl: Number = Field(default=None, description="X̄/I upper control limit")
    lcl: Number = Field(default=None, description="X̄/I lower control limit")
    range_center: Number = Field(default=None, description="R/S/MR center line")
    range_ucl: Number = Field(default=None, description="R/S/MR upper control limit")
    range_lcl: Number = Field(default=None, description="R/S/MR lower control limit")
    sigma: Number = Field(default=None, description="the process sigma the limits were frozen with")
    source: str | None = Field(
        default=None,
        description="baseline (from data) or known (from the spec)",
        json_schema_extra=_enum(LIMIT_SOURCES),
    )
    nominal_n: int | None = Field(default=None, description="the nominal subgroup size of the limits")


class ChartPoint(Document):
    """One plotted subgroup."""

    seq: int = Field(description="subgroup sequence number (never restarts)")
    subgroup: str = Field(description="subgroup label")
    event_time: str | None = Field(default=None, description="event time of its last value (RFC 3339)")
    n: int = Field(description="values in the subgroup")
    x: float = Field(description="mean (the value itself for individuals)")
    r: Number = Field(default=None, description="range, SD or moving range (null: the first individual)")
    rules: list[int] = Field(
        default_factory=list,
        description="Nelson tests that fired at this point",
        json_schema_extra=_enum(RULES),
    )


class Violation(Document):
    """One run-rule failure at one point."""

    rule: int = Field(description="Nelson test 1..8", json_schema_extra=_enum(RULES))
    chart: str = Field(description="x (X̄/I) or r (R/S/MR)", json_schema_extra=_enum(CHART_SIDES))
    seq: int = Field(description="the subgroup's sequence number")
    subgroup: str = Field(description="the subgroup's label")
    event_time: str | None = Field(default=None, description="RFC 3339")
    value: float = Field(description="the plotted value that failed")
    limit: Number = Field(default=None, description="the line it crossed (null for the shape tests)")


class CapabilityHistogram(Document):
    """The capability histogram of the window's individual values, computed by the worker (what the page
    draws under the normal curves of σ_within and σ_overall, scaled to counts by n·bin_width·pdf).

    Bins: width by numpy's "auto" rule (the narrower of Sturges and Freedman–Diaconis, 5–30 bins over the
    data's range), adjusted so that both spec limits fall on bin edges; edges cover every value; a value on
    an edge is counted on the in-spec side (toward the spec's midpoint), so a value exactly on a limit is in
    an in-spec bar. ``n`` equals the status's ``n`` (fewer only just after restoring a checkpoint written
    before values were kept)."""

    edges: list[float] = Field(
        description="bin edges in measurement units, ascending; len(counts) + 1",
        examples=[[73.95, 74.0, 74.05]],
    )
    counts: list[int] = Field(description="values per bin", examples=[[61, 64]])
    bin_width: float = Field(description="edges[i+1] − edges[i]", examples=[0.05])
    n: int = Field(description="values binned (the sum of counts)", examples=[125])
    below_lsl: int | None = Field(description="values strictly below the LSL; null: no LSL", examples=[0])
    above_usl: int | None = Field(description="values strictly above the USL; null: no USL", examples=[0])


class CharacteristicStatus(Document):
    """One characteristic of a line: capability over its window and its control chart (SPEC §6)."""

    characteristic: str = Field(description="characteristic id", examples=["bore_diameter"])
    station: str | None = Field(default=None, description="station of its latest value", examples=["S10"])
    values_total: int | None = Field(default=None, description="values since the start (SPEC §8)")
    last_event_time: str | None = Field(default=None, description="event time of the newest value")
    n: int | None = Field(default=None, description="values in the window")
    subgroups: int | None = Field(default=None, description="closed subgroups in the window")
    mean: Number = Field(default=None, description="window mean")
    sigma_within: Number = Field(default=None, description="within-subgroup sigma (the chart's estimator)")
    sigma_overall: Number = Field(default=None, description="overall sample standard deviation")
    cp: Number = Field(default=None, description="Cp")
    cpu: Number = Field(default=None, description="Cpu")
    cpl: Number = Field(default=None, description="Cpl")
    cpk: Number = Field(default=None, description="Cpk", examples=[1.41])
    cpk_ci: list[Number] | None = Field(default=None, description="Bissell 95 % interval of Cpk [low, high]")
    pp: Number = Field(default=None, description="Pp")
    ppu: Number = Field(default=None, description="Ppu")
    ppl: Number = Field(default=None, description="Ppl")
    ppk: Number = Field(default=None, description="Ppk")
    cpm: Number = Field(default=None, description="Cpm (needs a target)")
    lsl: Number = Field(default=None, description="lower spec limit")
    usl: Number = Field(default=None, description="upper spec limit")
    target: Number = Field(default=None, description="target")
    subgroup_size: int | None = Field(default=None, description="the spec's nominal subgroup size")
    sigma_method: str | None = Field(default=None, description="CPKMON_SIGMA_METHOD (default | pooled)")
    sigma_estimator: str | None = Field(
        default=None, description="estimator used for sigma_within", examples=["mvlue_r"]
    )
    state: str | None = Field(
        default=None,
        description="ok, or insufficient_data (indices null)",
        examples=[STATE_OK],
        json_schema_extra=_enum(STATES),
    )
    stable: bool | None = Field(
        default=None, description="no run rule fired in the window; null before limits"
    )
    control: ControlLimits | None = Field(
        default=None, description="frozen control limits; null before a baseline"
    )
    points: list[ChartPoint] = Field(
        default_factory=list, description="the last plotted points, oldest first"
    )
    violations: list[Violation] = Field(
        default_factory=list, description="recent rule failures, oldest first"
    )
    open_subgroup_values: int | None = Field(default=None, description="values in the open subgroup")
    histogram: CapabilityHistogram | None = Field(
        default=None, description="capability histogram of the window's individual values; null without data"
    )


class StationStatus(Document):
    """One station of a line: its first-pass yield and defect counts."""

    station: str = Field(description="station id", examples=["S20"])
    units: int | None = Field(default=None, description="first-pass units in the yield window")
    units_total: int | None = Field(default=None, description="units since the start")
    first_pass_yield: Number = Field(
        default=None, description="FPY over the window (null below min_units)", examples=[0.985]
    )
    dpmo: Number = Field(default=None, description="the station's DPMO (null without opportunities)")
    defects: int | None = Field(default=None, description="defects in the window")
    opportunities: int | None = Field(default=None, description="opportunities in the window")


class LineStatus(Document):
    """``cpkmon.line-status`` (key = line): the status document of a line (SPEC §6)."""

    line: str = Field(description="line id", examples=["L1"])
    grade: Grade | None = Field(default=None, description="the published grade (null: nothing assessed yet)")
    evaluated_grade: Grade | None = Field(default=None, description="the grade of the latest evaluation")
    evaluated_limiting: Limiting | None = Field(default=None, description="what limits the evaluated grade")
    grade_pending: GradePending | None = Field(default=None, description="a change being confirmed")
    grade_changes: list[GradeChange] = Field(
        default_factory=list, description="the last 20 changes of the published grade"
    )
    cpk: Number = Field(
        default=None, description="the line's Cpk: the lowest of its characteristics", examples=[1.41]
    )
    rty: Number = Field(
        default=None, description="rolled throughput yield: the product of station FPYs", examples=[0.962]
    )
    sigma_level: Number = Field(
        default=None,
        description="sigma level from DPMO (1.5σ shift; null at DPMO 0, where it is +∞)",
        examples=[4.3],
    )
    dpmo: Number = Field(default=None, description="defects per million opportunities")
    internal_loss_rate: Number = Field(default=None, description="internal quality loss / output value")
    external_loss_rate: Number = Field(default=None, description="external quality loss / output value")
    limiting: Limiting | None = Field(default=None, description="why the published grade is not higher")
    criteria: list[Criterion] = Field(default_factory=list, description="every criterion's standing")
    updated_at: str | None = Field(
        default=None,
        description="Kafka time of the last applied event",
        examples=["2026-11-20T08:15:02.125Z"],
    )
    degradations: int | None = Field(default=None, description="confirmed degradations so far")
    characteristics: list[CharacteristicStatus] = Field(default_factory=list, description="by name")
    stations: list[StationStatus] = Field(default_factory=list, description="by name")


class LineRow(BaseModel):
    """One row of ``GET /api/v1/lines`` (and the data of an SSE ``status`` event): derived by the API from a
    :class:`LineStatus`."""

    line: str = Field(examples=["L1"], description="line id")
    grade: GradeRef | None = Field(default=None, description="the published grade")
    cpk: Number = Field(default=None, examples=[1.41], description="the line's Cpk")
    rty: Number = Field(default=None, examples=[0.962], description="rolled throughput yield")
    sigma_level: Number = Field(default=None, examples=[4.3], description="sigma level")
    updated_at: str | None = Field(
        default=None,
        examples=["2026-11-20T08:15:02.125Z"],
        description="Kafka time of the last applied event",
    )

    @classmethod
    def of(cls, status: LineStatus | LineStatusHead, line: str | None = None) -> LineRow:
        """The row of a status document (``line``: the id when the document names none)."""
        grade = status.grade
        return cls(
            line=status.line or line or "",
            grade=None if grade is None else GradeRef(level=grade.level, name=grade.name),
            cpk=status.cpk,
            rty=status.rty,
            sigma_level=status.sigma_level,
            updated_at=status.updated_at,
        )


def _same(model: type[BaseModel], name: str) -> Any:
    """A copy of ``model``'s definition of field ``name`` (annotation checked: :func:`_check_projection`)."""
    return copy.copy(model.model_fields[name])


def _check_projection(proj: type[BaseModel], source: type[BaseModel], nested: frozenset[str] = frozenset(),
                      widened: frozenset[str] = frozenset()) -> None:
    """A projection declares a subset of ``source``'s fields with the same annotations (``nested`` fields
    hold a projection of the source's nested model; ``widened`` ones also accept null)."""
    for name, info in proj.model_fields.items():
        src = source.model_fields[name].annotation
        if name in nested:
            continue
        want: Any = src | None if name in widened and src is not None else src
        if info.annotation != want:
            raise TypeError(f"{proj.__name__}.{name}: {info.annotation} is not {source.__name__}'s {want}")


class CharacteristicHead(BaseModel):
    """The fields of :class:`CharacteristicStatus` the API derives its metrics from: a projection with the
    same definitions. Why: the API's view parses every status document it reads (SPEC §9: 100 000 of them in
    ≤ 5 s on a restart); validating these fields from the raw bytes takes ~0.14 ms for a 10-characteristic
    document, the full model ~0.6 ms, orjson alone ~0.18 ms."""

    model_config = ConfigDict(extra="ignore")

    characteristic: str = _same(CharacteristicStatus, "characteristic")
    cpk: Number = _same(CharacteristicStatus, "cpk")
    ppk: Number = _same(CharacteristicStatus, "ppk")
    cp: Number = _same(CharacteristicStatus, "cp")
    stable: bool | None = _same(CharacteristicStatus, "stable")


class StationHead(BaseModel):
    """The fields of :class:`StationStatus` the API reads (see :class:`CharacteristicHead`)."""

    model_config = ConfigDict(extra="ignore")

    station: str = _same(StationStatus, "station")
    first_pass_yield: Number = _same(StationStatus, "first_pass_yield")


class LineStatusHead(BaseModel):
    """The fields of :class:`LineStatus` the API reads: its list row and its metrics (see
    :class:`CharacteristicHead`). ``line`` may be absent: the record's key names the line then."""

    model_config = ConfigDict(extra="ignore")

    line: str | None = Field(default=None, description="line id (default: the record's key)")
    grade: Grade | None = _same(LineStatus, "grade")
    cpk: Number = _same(LineStatus, "cpk")
    rty: Number = _same(LineStatus, "rty")
    sigma_level: Number = _same(LineStatus, "sigma_level")
    dpmo: Number = _same(LineStatus, "dpmo")
    internal_loss_rate: Number = _same(LineStatus, "internal_loss_rate")
    external_loss_rate: Number = _same(LineStatus, "external_loss_rate")
    updated_at: str | None = _same(LineStatus, "updated_at")
    characteristics: list[CharacteristicHead] = Field(default_factory=list, description="by name")
    stations: list[StationHead] = Field(default_factory=list, description="by name")


_check_projection(CharacteristicHead, CharacteristicStatus)
_check_projection(StationHead, StationStatus)
_check_projection(LineStatusHead, LineStatus, nested=frozenset({"characteristics", "stations"}),
                  widened=frozenset({"line"}))


# ---------------------------------------------------------------------------------------------- alerts


class _AlertBase(Document):
    alert_id: str = Field(
        description="deterministic id: a replay republishes the same id",
        examples=["5f0c2e9b1d7a4c3e8a1b2c3d4e5f6a7b"],
    )
    line: str = Field(description="line id", examples=["L1"])
    event_time: str | None = Field(default=None, description="event time of what raised it (RFC 3339)")
    detected_at: str | None = Field(default=None, description="Kafka time of the record that raised it")


class GradeAlert(_AlertBase):
    """``grade_degraded`` / ``grade_recovered`` (SPEC §5): a confirmed change of the published grade."""

    type: Literal["grade_degraded", "grade_recovered"] = Field(description="alert type")
    from_grade: GradeRef | None = Field(default=None, description="published grade before")
    to_grade: GradeRef | None = Field(default=None, description="published grade after")
    limiting: AlertLimiting | None = Field(default=None, description="why the new grade is not higher")
    cpk: Number = Field(default=None, description="the line's Cpk at the change")
    rty: Number = Field(default=None, description="the line's RTY at the change")
    sigma_level: Number = Field(default=None, description="the line's sigma level at the change")
    incident: str | None = Field(
        default=None,
        description="grade_degraded: the id of the first degradation of the same drop; null on a recovery",
    )


class OutOfControlAlert(_AlertBase):
    """``out_of_control`` (SPEC §5): a run rule fired on a characteristic's chart (once per rule, window)."""

    type: Literal["out_of_control"] = Field(description="alert type")
    characteristic: str = Field(description="characteristic id", examples=["bore_diameter"])
    station: str | None = Field(default=None, description="station of the characteristic")
    rule: int = Field(description="Nelson test 1..8", json_schema_extra=_enum(RULES))
    chart: str = Field(description="x (X̄/I) or r (R/S/MR)", json_schema_extra=_enum(CHART_SIDES))
    value: Number = Field(default=None, description="the plotted value that failed")
    limit: Number = Field(default=None, description="the line it crossed (null for shape tests)")
    subgroup: str = Field(description="the violating subgroup's label")


Alert = Annotated[GradeAlert | OutOfControlAlert, Field(discriminator="type")]
ALERT_ADAPTER: TypeAdapter[GradeAlert | OutOfControlAlert] = TypeAdapter(Alert)


class Ack(Document):
    """An acknowledgement as it appears on an alert."""

    by: str = Field(description="the API key's name that acknowledged", examples=["shift-lead"])
    at: str = Field(description="when (RFC 3339)", examples=["2026-11-20T08:20:00.000Z"])
    comment: str | None = Field(default=None, description="why", examples=["tool changed on S10"])


class AckRecord(Ack):
    """``cpkmon.alert-acks`` (key = alert id): the last ack of an alert wins."""

    alert_id: str = Field(description="the acknowledged alert", examples=["5f0c2e9b1d7a4c3e8a1b2c3d4e5f6a7b"])


class GradeAlertItem(GradeAlert):
    """A grade alert as the API serves it: with its acknowledgement."""

    ack: Ack | None = Field(default=None, description="the acknowledgement, null when none")


class OutOfControlAlertItem(OutOfControlAlert):
    """An out-of-control alert as the API serves it: with its acknowledgement."""

    ack: Ack | None = Field(default=None, description="the acknowledgement, null when none")


AlertItem = Annotated[GradeAlertItem | OutOfControlAlertItem, Field(discriminator="type")]


# ---------------------------------------------------------------------------------- alarms (ISA-18.2)

#: An alarm's source kind: statistical control of one characteristic, or the grade of one line. One alarm
#: per source: the rules that fired are attributes of the control alarm, not separate alarms.
ALARM_CONTROL = "control"
ALARM_GRADE = "grade"
ALARM_SOURCE_KINDS: tuple[str, ...] = (ALARM_CONTROL, ALARM_GRADE)

#: ISA-18.2 alarm states (ANSI/ISA-18.2-2016 §5.3, the state diagram; IEC 62682 the same).
ALARM_NORMAL = "normal"
ALARM_UNACK = "unack"  # active, unacknowledged
ALARM_ACKED = "acked"  # active, acknowledged
ALARM_RTN_UNACK = "rtn_unack"  # returned to normal, unacknowledged
ALARM_SHELVED = "shelved"
ALARM_OUT_OF_SERVICE = "out_of_service"
ALARM_STATES: tuple[str, ...] = (
    ALARM_NORMAL, ALARM_UNACK, ALARM_ACKED, ALARM_RTN_UNACK, ALARM_SHELVED, ALARM_OUT_OF_SERVICE
)

#: Alarm event kinds on ``cpkmon.alarm-events``: the process side (written by the worker) and the operator
#: side (written by the API).
EV_ACTIVATE = "activate"
EV_CLEAR = "clear"
EV_ACK = "ack"
EV_SHELVE = "shelve"
EV_UNSHELVE = "unshelve"
EV_RESOLVE = "resolve"
EV_OUT_OF_SERVICE = "out_of_service"
EV_IN_SERVICE = "in_service"
PROCESS_EVENT_KINDS: tuple[str, ...] = (EV_ACTIVATE, EV_CLEAR)
OPERATOR_EVENT_KINDS: tuple[str, ...] = (
    EV_ACK, EV_SHELVE, EV_UNSHELVE, EV_RESOLVE, EV_OUT_OF_SERVICE, EV_IN_SERVICE
)
ALARM_EVENT_KINDS: tuple[str, ...] = (*PROCESS_EVENT_KINDS, *OPERATOR_EVENT_KINDS)
#: Not an event: the transition a shelve's ``until`` passing causes (``Transition.kind``).
SHELVE_EXPIRED = "shelve_expired"

#: Alarm priorities (ISA-18.2 §6.5: few priorities, most alarms low).
SEVERITY_HIGH = "high"
SEVERITY_MEDIUM = "medium"
SEVERITY_LOW = "low"
SEVERITIES: tuple[str, ...] = (SEVERITY_HIGH, SEVERITY_MEDIUM, SEVERITY_LOW)

#: The default assignable-cause codes (5M1E, 人机料法测环): (code, English name, Chinese name). A plant
#: replaces them with ``CPKMON_CAUSE_CODES_FILE`` (:func:`cpkmon.alerts.alarms.load_cause_codes`).
DEFAULT_CAUSE_CODES: tuple[tuple[str, str, str], ...] = (
    ("man", "Man (operator)", "人"),
    ("machine", "Machine", "机"),
    ("material", "Material", "料"),
    ("method", "Method", "法"),
    ("measurement", "Measurement", "测"),
    ("environment", "Environment", "环"),
)

_CAUSE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class CauseCode(BaseModel):
    """One assignable-cause code an operator picks when acknowledging an alarm (plant-configurable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, StringConstraints(pattern=_CAUSE_PATTERN)] = Field(
        description="the code stored on the ack", examples=["machine"]
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="display name", examples=["Machine"]
    )
    name_zh: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="Chinese display name, when given", examples=["机"]
    )


class AlarmSource(Document):
    """What an alarm is about: ``control`` (with ``characteristic``) or ``grade`` (the line's grade)."""

    OPTIONAL_KEYS = frozenset({"characteristic"})

    kind: str = Field(
        description="control (statistical control of a characteristic) or grade (the line's grade)",
        examples=[ALARM_CONTROL],
        json_schema_extra=_enum(ALARM_SOURCE_KINDS),
    )
    characteristic: str | None = Field(
        default=None, description="control alarms: the characteristic id", examples=["bore_diameter"]
    )

    @model_validator(mode="after")
    def _shape(self) -> AlarmSource:
        if self.kind == ALARM_CONTROL and not self.characteristic:
            raise ValueError("a control alarm's source names its characteristic")
        if self.kind == ALARM_GRADE and self.characteristic is not None:
            raise ValueError("a grade alarm's source has no characteristic")
        return self


class AlarmEvent(Document):
    """``cpkmon.alarm-events`` (key = line): one event of an alarm's history. The alarm state is a pure
    function of these events in topic order (:class:`cpkmon.alerts.alarms.AlarmBook`); kind-specific fields
    are present only on their kind."""

    OPTIONAL_KEYS = frozenset(
        {"by", "rules", "severity", "value", "limit", "alert_id", "from_grade", "to_grade", "cause",
         "comment", "until", "reason", "action"}
    )

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="deterministic id of the event: a re-published event counts once",
        examples=["9b1d7a4c3e8a1b2c3d4e5f6a7b5f0c2e"],
    )
    alarm_id: str = Field(
        description="32 hex of SHA-256 over the JSON of the source tuple (alarms.alarm_id)",
        examples=["5f0c2e9b1d7a4c3e8a1b2c3d4e5f6a7b"],
    )
    line: Ident = Field(description="line id", examples=["L1"])
    source: AlarmSource = Field(description="what the alarm is about")
    kind: str = Field(
        description="event kind", examples=[EV_ACTIVATE], json_schema_extra=_enum(ALARM_EVENT_KINDS)
    )
    at: Timestamp = Field(description="when: event time for process events, the API's time for operator ones")
    by: str | None = Field(
        default=None, description="who: the API key's name or trusted identity (operator events)",
        examples=["shift-lead"],
    )
    rules: list[int] | None = Field(
        default=None,
        description="activate (control): the Nelson tests that fired",
        json_schema_extra=_enum(RULES),
    )
    severity: str | None = Field(
        default=None, description="activate: alarm priority", json_schema_extra=_enum(SEVERITIES)
    )
    value: Number = Field(default=None, description="activate: the value that raised it")
    limit: Number = Field(default=None, description="activate: the limit it crossed (null: shape tests)")
    alert_id: str | None = Field(
        default=None, description="activate: the out_of_control / grade alert that raised it"
    )
    from_grade: GradeRef | None = Field(default=None, description="activate (grade): grade before")
    to_grade: GradeRef | None = Field(default=None, description="activate (grade): grade after")
    cause: str | None = Field(
        default=None, description="ack: assignable-cause code from the plant's list", examples=["machine"]
    )
    comment: str | None = Field(default=None, description="ack: free text", examples=["tool worn on S10"])
    until: Timestamp | None = Field(default=None, description="shelve: when the shelving expires")
    reason: str | None = Field(
        default=None, description="shelve / out_of_service: why", examples=["gauge recalibration"]
    )
    action: str | None = Field(
        default=None, description="resolve: the corrective action taken", examples=["replaced the insert"]
    )

    @model_validator(mode="after")
    def _check(self) -> AlarmEvent:
        parse_ts(self.at)
        if self.until is not None:
            parse_ts(self.until)
        if self.kind == EV_SHELVE and self.until is None:
            raise ValueError("a shelve event needs until")
        return self


class AlarmAck(Document):
    """The acknowledgement of an alarm's occurrence, with its assignable cause."""

    by: str | None = Field(default=None, description="who acknowledged", examples=["shift-lead"])
    at: str = Field(description="when (RFC 3339)")
    cause: str | None = Field(default=None, description="assignable-cause code", examples=["machine"])
    comment: str | None = Field(default=None, description="free text")


class AlarmResolution(Document):
    """The corrective action recorded on an alarm's occurrence."""

    by: str | None = Field(default=None, description="who resolved it")
    at: str = Field(description="when (RFC 3339)")
    action: str | None = Field(
        default=None, description="the corrective action", examples=["replaced the insert"]
    )


class AlarmShelve(Document):
    """An alarm's shelving: suppressed until ``until`` (the condition keeps being tracked)."""

    by: str | None = Field(default=None, description="who shelved it")
    at: str = Field(description="when (RFC 3339)")
    until: str = Field(description="when the shelving expires (RFC 3339)")
    reason: str | None = Field(default=None, description="why")


class AlarmOutOfService(Document):
    """An alarm taken out of service (a characteristic under maintenance, a line stopped)."""

    by: str | None = Field(default=None, description="who")
    at: str = Field(description="when (RFC 3339)")
    reason: str | None = Field(default=None, description="why")


class Alarm(Document):
    """One alarm's current state (``AlarmBook.view(now)``): what ``GET /api/v1/alarms`` serves."""

    alarm_id: str = Field(
        description="deterministic id over the source", examples=["5f0c2e9b1d7a4c3e8a1b2c3d4e5f6a7b"]
    )
    line: str = Field(description="line id", examples=["L1"])
    source: AlarmSource = Field(description="what the alarm is about")
    state: str = Field(
        description="ISA-18.2 state", examples=[ALARM_UNACK], json_schema_extra=_enum(ALARM_STATES)
    )
    active: bool = Field(description="the condition is active (tracked while shelved or out of service too)")
    occurrence: int = Field(description="occurrences so far (an activation from an inactive, closed alarm)")
    reactivations: int = Field(description="re-activations within the current occurrence (no new alarm)")
    activated_at: str | None = Field(default=None, description="start of the current/last occurrence")
    active_since: str | None = Field(
        default=None, description="since when the condition is active (null: inactive)"
    )
    cleared_at: str | None = Field(default=None, description="when the condition last returned to normal")
    unack_since: str | None = Field(default=None, description="unack/rtn_unack: since when it awaits an ack")
    rules: list[int] = Field(
        default_factory=list, description="control: Nelson tests of the occurrence so far"
    )
    severity: str | None = Field(default=None, description="priority of the last activation",
                                 json_schema_extra=_enum(SEVERITIES))
    value: Number = Field(default=None, description="the last activation's value")
    limit: Number = Field(default=None, description="the last activation's limit")
    alert_id: str | None = Field(default=None, description="the alert of the last activation")
    from_grade: GradeRef | None = Field(default=None, description="grade: grade before the last activation")
    to_grade: GradeRef | None = Field(default=None, description="grade: grade after the last activation")
    ack: AlarmAck | None = Field(default=None, description="the occurrence's acknowledgement")
    resolution: AlarmResolution | None = Field(default=None, description="the occurrence's corrective action")
    shelve: AlarmShelve | None = Field(default=None, description="state shelved: the shelving")
    out_of_service: AlarmOutOfService | None = Field(default=None, description="state out_of_service: why")
    updated_at: str | None = Field(default=None, description="time of the last transition (RFC 3339)")
    events: int = Field(description="events applied to this alarm (rejected and duplicate ones excluded)")


class AlarmRateKpis(BaseModel):
    """The alarm-load figures of one scope — a line, or the plant (``line`` null) — at the report's time
    (:class:`cpkmon.alerts.alarm_kpis.RateKpis`; definitions in the README's "Alarm management")."""

    line: str | None = Field(description="the line, or null for the plant", examples=["L1"])
    alarms_10min: int = Field(description="annunciations in the trailing 10 minutes of event time")
    annunciations_total: int = Field(description="annunciations (normal → unack) since the first transition")
    reactivations_total: int = Field(description="re-activations of open occurrences (not new alarms)")
    observed_seconds: float = Field(description="event time since the scope's first transition, s")
    mean_per_10min: float | None = Field(
        description="annunciations per 10 minutes over the observed span (null: no span yet)"
    )
    in_flood: bool = Field(description="more than 10 alarms in 10 minutes, until the count drops below 5")
    floods: int = Field(description="floods started")
    flood_seconds: float = Field(description="event time spent in flood, s")
    flood_fraction: float | None = Field(description="share of the observed span spent in flood")
    unack: int = Field(description="alarms awaiting acknowledgement (unack, rtn_unack)")
    unack_oldest_age: float | None = Field(description="age of the oldest of them, s (null: none)")
    stale: int = Field(description="standing alarms whose condition is active longer than 24 h")
    chattering: int = Field(
        description="alarms chattering (3 activations within 60 s) in the last 10 minutes"
    )


class AlarmTopSource(BaseModel):
    """One of the most frequent alarm sources (all activations, re-activations included)."""

    alarm_id: str = Field(description="the alarm's id")
    line: str = Field(description="line id", examples=["L1"])
    source: str = Field(description="source kind", json_schema_extra=_enum(ALARM_SOURCE_KINDS))
    characteristic: str | None = Field(description="control alarms: the characteristic")
    activations: int = Field(description="activations over the history")


class AlarmKpiTargets(BaseModel):
    """The ANSI/ISA-18.2-2016 §16 / EEMUA 191 figures the KPIs are judged against (the same constants the
    accumulator uses, so the page never hard-codes a second copy)."""

    per_10min: float = Field(description="alarms per 10 minutes per operator: very likely acceptable (~1)")
    per_10min_max: float = Field(description="alarms per 10 minutes: maximum manageable (2)")
    flood_threshold: int = Field(description="a flood: more than this many alarms in 10 minutes")
    flood_end: int = Field(description="a flood ends when the 10-minute count drops below this")
    flood_fraction: float = Field(description="time in flood: below this share of the time")
    top10_share: float = Field(description="the top 10 sources: about this share of the load or less")
    stale_after_s: float = Field(description="a standing alarm active longer than this is stale, s")
    chatter_count: int = Field(description="activations of one source that make it chatter …")
    chatter_window_s: float = Field(description="… within this many seconds")


class AlarmKpiReport(BaseModel):
    """``GET /api/v1/alarms/kpis``: the ISA-18.2 alarm-system KPIs at the API's now — what ``/metrics``
    exports, as one JSON document for the dashboard (:class:`cpkmon.alerts.alarm_kpis.KpiReport`)."""

    now: str = Field(description="the event time the KPIs are evaluated at (RFC 3339)")
    plant: AlarmRateKpis = Field(description="plant-wide figures (one operator position watches every line)")
    lines: dict[str, AlarmRateKpis] = Field(description="per line, by line id")
    top: list[AlarmTopSource] = Field(description="the 10 most frequent sources, most activations first")
    top10_share: float | None = Field(description="share of all activations from the top 10 (null: none)")
    chattering: list[str] = Field(description="alarm ids chattering within the trailing 10 minutes")
    chattering_ever: list[str] = Field(description="alarm ids that ever chattered")
    stale: list[str] = Field(description="alarm ids standing with the condition active > 24 h")
    tta_buckets: list[float] = Field(description="time-to-acknowledge histogram upper bounds, s")
    tta_counts: list[int] = Field(
        description="cumulative acks with a delay ≤ each bound; the last entry is +Inf (= tta_count)"
    )
    tta_sum: float = Field(description="sum of the delays, s")
    tta_count: int = Field(description="acknowledgements measured")
    targets: AlarmKpiTargets = Field(description="the ISA-18.2 / EEMUA 191 targets")


# ------------------------------------------------------------------------------- dead letters, checkpoints


class DeadLetter(Document):
    """``cpkmon.dead-letter``: an input the worker could not use, with why (SPEC §2)."""

    topic: str = Field(description="the input topic", examples=["cpkmon.measurements"])
    partition: int = Field(description="its partition")
    offset: int = Field(description="its offset")
    reason: str = Field(
        description="human-readable reason", examples=["value: value must be a finite number"]
    )
    payload: Any = Field(description="the bad element, or the raw message as text when it never parsed")


class PartitionCheckpoint(Document):
    """``cpkmon.worker-checkpoints`` key ``/partition``: what a partition's checkpoint covers, written after
    its line records."""

    version: int = Field(description="format version", examples=[PARTITION_CHECKPOINT_VERSION])
    applied: dict[str, int] = Field(description="input topic → the last offset applied")
    partitions: int = Field(description="the input topics' partition count it was written under")


class LineCheckpoint(Document):
    """``cpkmon.worker-checkpoints`` key = line: a line's state (``LineState.to_dict``). The header fields are
    typed; the nested state objects are the pure core's own formats, versioned by ``version``."""

    version: int = Field(description="format version", examples=[LINE_STATE_VERSION])
    line: str = Field(description="line id")
    applied: dict[str, int] = Field(description="input topic → the last offset applied to this line")
    updated_at: float | None = Field(description="Kafka time (epoch seconds) of the last applied event")
    assessed: list[str] = Field(description="criteria ever assessed on this line (ratchet)")
    resolved: int = Field(description="the highest DPMO level its sample ever resolved (ratchet)")
    retired: dict[str, list[int]] = Field(
        description="characteristics whose spec was deleted: [seq, values_total, epoch]"
    )
    characteristics: dict[str, dict[str, Any]] = Field(description="characteristic → its state")
    stations: dict[str, dict[str, Any]] = Field(description="station → its yield window")
    costs: dict[str, Any] = Field(description="the quality-cost window")
    grade_tracker: dict[str, Any] = Field(description="published grade, confirmation run, history")
    ooc: dict[str, Any] = Field(description="out-of-control tracker")
    alarms: dict[str, Any] | None = Field(
        default=None,
        description="the process condition of the line's alarm sources (ProcessAlarms: active control alarms "
        "with their last firing seq, the grade before an open grade incident, events emitted); absent in "
        "checkpoints written before alarms existed",
    )
    audit: dict[str, Any] | None = Field(
        default=None,
        description="the head {seq, hash} of the line's audit chain (worker:<line>) as of this state; absent "
        "in checkpoints written before the worker audited (the chain then starts at seq 1)",
    )


# ---------------------------------------------------------------------------------------------- audit trail

#: ``prev_hash`` of the first record of a partition's chain (``cpkmon.alerts.audit``).
AUDIT_GENESIS = "0" * 64
#: ``seq`` of the first record of a partition's chain.
AUDIT_FIRST_SEQ = 1
#: What an audit record records (``what``): ``<object>.<verb>``. Open: a newer API may add verbs.
AUDIT_SPEC_PUT = "spec.put"
AUDIT_SPEC_DELETE = "spec.delete"
AUDIT_LIMITS_REBASELINE = "limits.rebaseline"
AUDIT_ALERT_ACK = "alert.ack"
AUDIT_ALARM_VERBS: tuple[str, ...] = (
    "alarm.ack",
    "alarm.shelve",
    "alarm.unshelve",
    "alarm.resolve",
    "alarm.out_of_service",
    "alarm.in_service",
)
#: What the worker records in its per-line chains (``chain`` = ``worker:<line>``, ``who`` = ``worker``): an
#: alarm's condition becoming active or clearing, limits frozen at the end of Phase I, limits re-frozen by an
#: applied re-baseline command (the API's ``limits.rebaseline`` records the request).
AUDIT_ALARM_ACTIVATE = "alarm.activate"
AUDIT_ALARM_CLEAR = "alarm.clear"
AUDIT_LIMITS_FREEZE = "limits.freeze"
AUDIT_LIMITS_REBASELINE_APPLIED = "limits.rebaseline_applied"
AUDIT_WORKER_WHATS: tuple[str, ...] = (
    AUDIT_ALARM_ACTIVATE,
    AUDIT_ALARM_CLEAR,
    AUDIT_LIMITS_FREEZE,
    AUDIT_LIMITS_REBASELINE_APPLIED,
)
AUDIT_WHATS: tuple[str, ...] = (
    AUDIT_SPEC_PUT,
    AUDIT_SPEC_DELETE,
    AUDIT_LIMITS_REBASELINE,
    AUDIT_ALERT_ACK,
    *AUDIT_ALARM_VERBS,
    *AUDIT_WORKER_WHATS,
)
_HEX64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AuditRecord(Document):
    """``cpkmon.audit`` (one partition): one change a person made through the API (key = ``what``) or one
    alarm transition or limit change the worker made (key = ``chain``), hash-chained per (partition, chain).

    ``hash`` is SHA-256 over the canonical JSON (:func:`cpkmon.alerts.audit.canonical`) of every other field
    of the record — ``seq``, ``prev_hash`` and ``chain`` (when present) included, and any field a newer
    writer adds — so changing, removing or reordering a record breaks the chain that ``cpkmon audit verify``
    walks."""

    OPTIONAL_KEYS = frozenset({"chain"})

    seq: int = Field(
        ge=AUDIT_FIRST_SEQ, description="position in the record's chain: 1, 2, 3 … without gaps"
    )
    chain: str | None = Field(
        default=None,
        description="the chain the record extends: absent for the API's (\"api\"), \"worker:<line>\" for a "
        "line's worker records; each chain has its own seq and hash links",
        examples=["worker:L1"],
    )
    prev_hash: _HEX64 = Field(
        description=f"the previous record's hash; {AUDIT_GENESIS[:8]}… (64 zeros) for the first record",
        examples=[AUDIT_GENESIS],
    )
    hash: _HEX64 = Field(
        description="SHA-256 (hex) of the canonical JSON of every other field of this record",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    at: str = Field(
        description="when the API accepted the change (RFC 3339, wall clock); for the worker's records the "
        "event time of the transition or freeze (so a replay rebuilds the same record)"
    )
    who: str = Field(
        description="the API key's name, or the trusted identity header's value when one is configured; "
        "\"worker\" for the worker's records",
        examples=["shift-lead"],
    )
    what: str = Field(
        description="what was done: <object>.<verb>",
        examples=[AUDIT_SPEC_PUT],
        json_schema_extra=_enum(AUDIT_WHATS),
    )
    subject: str = Field(
        description="what it was done to: line/characteristic for specs and limits, the alert or alarm id "
        "(alarm.activate/alarm.clear: the alarm id)",
        examples=["L1/bore_diameter"],
    )
    before: Any = Field(description="the subject before the change (null: it did not exist or is unknown)")
    after: Any = Field(description="the subject after the change (null: it was deleted)")


# ------------------------------------------------------------------------------------- validation, export


def validate_strict(model: Any, doc: Any) -> Any:
    """Validate ``doc`` as the current worker must write it: no key the model lacks, none it requires
    missing (at every level). ``model`` is a model class or a :class:`TypeAdapter`."""
    ctx = {"strict_keys": True}
    if isinstance(model, TypeAdapter):
        return model.validate_python(doc, context=ctx)
    return model.model_validate(doc, context=ctx)


#: The exported documents: file stem → model (or adapter of a union).
DOCUMENTS: dict[str, Any] = {
    "measurement": MeasurementIn,
    "inspection": InspectionIn,
    "quality_cost": QualityCostIn,
    "spec": SpecDocument,
    "command": Command,
    "line_status": LineStatus,
    "alert": ALERT_ADAPTER,
    "ack": AckRecord,
    "dead_letter": DeadLetter,
    "checkpoint_line": LineCheckpoint,
    "checkpoint_partition": PartitionCheckpoint,
    "audit": AuditRecord,
    "alarm_event": AlarmEvent,
    "alarm": Alarm,
}
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _DocumentSchema(GenerateJsonSchema):
    """pydantic's generator, plus what the worker always writes: every key of a :class:`Document` not in its
    ``OPTIONAL_KEYS`` is ``required`` (pydantic would list only fields without a default, which here are few
    because reading is tolerant). ``closed`` also forbids keys the model lacks (the tests' variant)."""

    closed = False

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        js = super().model_schema(schema)
        cls = schema["cls"]
        if isinstance(cls, type) and issubclass(cls, Document) and "properties" in js:
            js["required"] = [k for k in js["properties"] if k not in cls.OPTIONAL_KEYS]
            if self.closed:
                js["additionalProperties"] = False
        return js


class _ClosedSchema(_DocumentSchema):
    closed = True


def document_schema(name: str, *, closed: bool = False) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one document of :data:`DOCUMENTS`."""
    model = DOCUMENTS[name]
    gen = _ClosedSchema if closed else _DocumentSchema
    if isinstance(model, TypeAdapter):
        body = model.json_schema(schema_generator=gen)
        body.setdefault("title", "Alert")
    else:
        body = model.model_json_schema(schema_generator=gen)
    return {"$schema": SCHEMA_DIALECT, "$id": f"https://cpkmon.example/schema/{name}.schema.json", **body}


def export_schemas(*, closed: bool = False) -> dict[str, str]:
    """File name → JSON text of every document's schema (what ``cpkmon schema`` writes)."""
    return {
        f"{name}.schema.json": json.dumps(
            document_schema(name, closed=closed), indent=2, ensure_ascii=False, sort_keys=False
        )
        + "\n"
        for name in DOCUMENTS
    }


# ---------------------------------------------------------------------------------------------- dashboard

#: The documents whose field names the dashboard reads (JavaScript constant → model).
DASHBOARD_DOCUMENTS: dict[str, type[BaseModel]] = {
    "ROW": LineRow,
    "STATUS": LineStatus,
    "GRADE": Grade,
    "LIMITING": Limiting,
    "CRITERION": Criterion,
    "CHARACTERISTIC": CharacteristicStatus,
    "CONTROL": ControlLimits,
    "POINT": ChartPoint,
    "VIOLATION": Violation,
    "HISTOGRAM": CapabilityHistogram,
    "STATION": StationStatus,
    "GRADE_ALERT": GradeAlertItem,
    "OOC_ALERT": OutOfControlAlertItem,
    "ACK": AckRecord,
    "ALARM": Alarm,
    "ALARM_SOURCE": AlarmSource,
    "ALARM_ACK": AlarmAck,
    "ALARM_RESOLUTION": AlarmResolution,
    "ALARM_SHELVE": AlarmShelve,
    "ALARM_OOS": AlarmOutOfService,
    "CAUSE": CauseCode,
    "KPIS": AlarmKpiReport,
    "RATE": AlarmRateKpis,
    "TOP_SOURCE": AlarmTopSource,
    "TARGETS": AlarmKpiTargets,
}


def fields_js() -> str:
    """``api/static/fields.js``: the dashboard's field names and enum values, generated from this module.

    Each document is a frozen object whose keys are its fields (``STATUS.grade === 'grade'``), so the page
    reads ``doc[STATUS.grade]``; ``tests/api/test_fields_js.py`` checks the committed file is current and that
    every ``DOC.field`` app.js names exists here."""

    def obj(d: dict[str, Any]) -> str:
        return "Object.freeze(" + json.dumps(d, ensure_ascii=False, indent=2) + ")"

    lines = [
        "// Generated by `cpkmon schema --fields-js` from cpkmon/alerts/model.py: do not edit by hand.",
        "// Field names of the documents the dashboard reads, and the values of their enumerations.",
        "",
    ]
    for const, model in DASHBOARD_DOCUMENTS.items():
        lines.append(f"export const {const} = {obj({k: k for k in model.model_fields})};")
    # an alert of either type (the feed mixes them): the union of their fields
    union = {k: k for m in (GradeAlertItem, OutOfControlAlertItem) for k in m.model_fields}
    lines.append(f"export const ALERT = {obj(union)};")
    enums: dict[str, Any] = {
        "LEVELS": [{"level": lv, "name": n, "zh": z} for lv, n, z in LEVEL_NAMES],
        "CRITERIA": list(CRITERIA),
        "STABILITY": STABILITY,
        "REASONS": {r.upper(): r for r in REASONS},
        "ALERT_TYPES": {t.upper(): t for t in ALERT_TYPES},
        "CAUSES": {c.upper(): c for c in CHANGE_CAUSES},
        "DIRECTIONS": {d.upper(): d for d in DIRECTIONS},
        "STATES": {s.upper(): s for s in STATES},
        "CHART_KINDS": list(CHART_KINDS),
        "ALARM_STATES": {a.upper(): a for a in ALARM_STATES},
        "ALARM_KINDS": {k.upper(): k for k in ALARM_SOURCE_KINDS},
        "SEVERITIES": {v.upper(): v for v in SEVERITIES},
    }
    for name, value in enums.items():
        text = json.dumps(value, ensure_ascii=False)
        lines.append(f"export const {name} = {text};" if isinstance(value, str) else
                     f"export const {name} = Object.freeze({text});")
    return "\n".join(lines) + "\n"
