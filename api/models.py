"""Pydantic models of the API's documents: they drive the OpenAPI schema (what integrators code against).

Status and alert documents are produced by the worker and stored in Kafka; the API serves them as stored.
Their models therefore type the known fields (SPEC §5/§6, docs/design.md) and allow extra ones, so a newer
worker that adds a field never breaks an older API."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cpkmon.capability.spec import target_problem

IDENT_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
IDENT_RE = re.compile(IDENT_PATTERN)
Ident = Annotated[str, Field(pattern=IDENT_PATTERN, examples=["L1"])]

Number = float | None


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class GradeRef(BaseModel):
    level: int = Field(ge=1, le=5, examples=[3])
    name: str = Field(examples=["assurance"])


class Grade(_Open):
    level: int = Field(ge=1, le=5, examples=[3])
    name: str = Field(examples=["assurance"])
    name_zh: str | None = Field(default=None, examples=["保证级"])


class Limiting(_Open):
    criterion: str | None = Field(default=None, examples=["cpk"])
    subject: str | None = Field(default=None, examples=["bore_diameter"])
    value: Number = Field(default=None, examples=[1.21])
    threshold: Number = Field(default=None, examples=[1.33])
    reason: str | None = Field(
        default=None,
        description="below_threshold | not_resolvable | unstable | not_assessed | within_band | confirming",
        examples=["below_threshold"],
    )
    needed: Number = Field(
        default=None,
        description="not_resolvable: opportunities still missing; within_band: the value to reach",
    )


class GradeChange(_Open):
    """One change of the published grade and what explains it (an alert, or a documented silent cause)."""

    n: int = Field(description="numbers every change of this line's published grade, without gaps")
    from_grade: GradeRef | None = None
    to_grade: GradeRef | None = None
    cause: str = Field(
        description="grade_degraded | grade_recovered (then alert_id names the alert) | first_grade "
        "| no_data | newly_assessed | newly_resolvable",
        examples=["grade_degraded"],
    )
    alert_id: str | None = None
    criteria: list[str] = Field(default_factory=list)
    event_time: str | None = None


class GradePending(_Open):
    """A grade change being confirmed (``confirm_evaluations`` consecutive evaluations beyond the band)."""

    direction: str = Field(examples=["falling"])
    to_grade: GradeRef | None = None
    evaluations: int
    confirm_evaluations: int


class ControlLimits(_Open):
    chart: str | None = Field(default=None, examples=["xbar_r"])
    center: Number = None
    ucl: Number = None
    lcl: Number = None
    range_center: Number = None
    range_ucl: Number = None
    range_lcl: Number = None


class CapabilityHistogram(_Open):
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


class CharacteristicStatus(_Open):
    characteristic: str = Field(examples=["bore_diameter"])
    station: str | None = Field(default=None, examples=["S10"])
    values_total: int | None = None
    last_event_time: str | None = None
    n: int | None = None
    subgroups: int | None = None
    mean: Number = None
    sigma_within: Number = None
    sigma_overall: Number = None
    cp: Number = None
    cpk: Number = None
    cpk_ci: list[Number] | None = None
    pp: Number = None
    ppk: Number = None
    cpm: Number = None
    lsl: Number = None
    usl: Number = None
    target: Number = None
    state: str | None = Field(default=None, examples=["ok"])
    stable: bool | None = None
    control: ControlLimits | None = None
    points: list[dict[str, Any]] = Field(default_factory=list)
    violations: list[dict[str, Any]] = Field(default_factory=list)
    histogram: CapabilityHistogram | None = Field(
        default=None, description="capability histogram of the window's individual values; null without data"
    )


class StationStatus(_Open):
    station: str = Field(examples=["S20"])
    units: int | None = None
    units_total: int | None = None
    first_pass_yield: Number = Field(default=None, examples=[0.985])


class LineRow(BaseModel):
    """One row of ``GET /api/v1/lines`` (and the data of an SSE ``status`` event)."""

    line: str = Field(examples=["L1"])
    grade: GradeRef | None = None
    cpk: Number = Field(default=None, examples=[1.41])
    rty: Number = Field(default=None, examples=[0.962])
    sigma_level: Number = Field(default=None, examples=[4.3])
    updated_at: str | None = Field(default=None, examples=["2026-11-20T08:15:02.125Z"])


class LineStatus(_Open):
    """The status document of a line as the worker published it to ``cpkmon.line-status``."""

    line: str = Field(examples=["L1"])
    grade: Grade | None = None
    cpk: Number = None
    rty: Number = None
    sigma_level: Number = None
    dpmo: Number = None
    updated_at: str | None = None
    limiting: Limiting | None = Field(default=None, description="why the published grade is not higher")
    evaluated_grade: Grade | None = Field(default=None, description="the grade of the latest evaluation")
    evaluated_limiting: Limiting | None = None
    grade_pending: GradePending | None = None
    grade_changes: list[GradeChange] = Field(default_factory=list, description="the last 20 changes")
    criteria: list[dict[str, Any]] = Field(default_factory=list)
    characteristics: list[CharacteristicStatus] = Field(default_factory=list)
    stations: list[StationStatus] = Field(default_factory=list)
    internal_loss_rate: Number = None
    external_loss_rate: Number = None
    degradations: int | None = None


class Ack(BaseModel):
    by: str = Field(examples=["shift-lead"])
    at: str = Field(examples=["2026-11-20T08:20:00.000Z"])
    comment: str | None = Field(default=None, examples=["tool changed on S10"])


class AckRecord(Ack):
    alert_id: str = Field(examples=["a-5f0c2e9b1d7a4c3e"])


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=2000, examples=["tool changed on S10"])


class Alert(_Open):
    """An alert document (SPEC §5) plus its acknowledgement, if any."""

    alert_id: str = Field(examples=["a-5f0c2e9b1d7a4c3e"])
    type: str | None = Field(default=None, examples=["grade_degraded"])
    line: str | None = Field(default=None, examples=["L1"])
    event_time: str | None = None
    detected_at: str | None = None
    incident: str | None = Field(
        default=None, description="grade_degraded: the id of the first degradation of the same drop"
    )
    ack: Ack | None = None


class AlertPage(BaseModel):
    items: list[Alert]
    next: str = Field(description="opaque cursor: pass it as `since` to get the alerts after this page")


def _finite(name: str, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return value


class SpecIn(BaseModel):
    """A characteristic's specification as written by ``PUT /api/v1/specs/{line}/{characteristic}``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"lsl": 73.95, "usl": 74.05, "target": 74.0, "subgroup_size": 5}]},
    )

    line: Ident | None = Field(default=None, description="optional; must equal the path")
    characteristic: Ident | None = Field(default=None, description="optional; must equal the path")
    lsl: float | None = None
    usl: float | None = None
    target: float | None = Field(default=None, description="lsl ≤ target ≤ usl; enables Cpm")
    subgroup_size: int | None = Field(default=None, ge=1, le=25, description="1..25; default 5")
    center: float | None = Field(default=None, description="known process center (no baseline needed)")
    sigma: float | None = Field(default=None, gt=0, description="known process sigma (> 0)")

    @field_validator("lsl", "usl", "target", "center", "sigma")
    @classmethod
    def _finite_numbers(cls, value: float | None, info: Any) -> float | None:
        return _finite(info.field_name, value)

    @model_validator(mode="after")
    def _limits(self) -> SpecIn:
        if self.lsl is None and self.usl is None:
            raise ValueError("a spec needs at least one of lsl and usl")
        if self.lsl is not None and self.usl is not None and not self.lsl < self.usl:
            raise ValueError(f"lsl ({self.lsl}) must be below usl ({self.usl})")
        problem = target_problem(self.lsl, self.usl, self.target)  # the core's rule and reason
        if problem is not None:
            raise ValueError(problem)
        return self


class Spec(BaseModel):
    line: str = Field(examples=["L1"])
    characteristic: str = Field(examples=["bore_diameter"])
    lsl: float | None = Field(default=None, examples=[73.95])
    usl: float | None = Field(default=None, examples=[74.05])
    target: float | None = Field(default=None, examples=[74.0])
    subgroup_size: int | None = Field(default=None, examples=[5])
    center: float | None = None
    sigma: float | None = None

    model_config = ConfigDict(extra="allow")


class BaselineRequest(BaseModel):
    line: str
    characteristic: str
    command: Literal["rebaseline"] = "rebaseline"
    requested_at: str = Field(examples=["2026-11-20T08:20:00.000Z"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    caught_up: bool = Field(description="caught up with the high watermark right now")
    lag_seconds: float = Field(description="seconds since the view last confirmed it was caught up")
    lines: int
    alerts: int
    specs: int
    reason: str | None = Field(
        default=None,
        description="why the view cannot read from Kafka right now (e.g. a TLS or SASL failure naming the "
        "broker), null when it can",
        examples=[None],
    )


class ProblemDoc(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(default="about:blank", examples=["about:blank"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no line 'L9'"])


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for problem+json errors."""
    ref = {"schema": {"$ref": "#/components/schemas/ProblemDoc"}}
    return {code: {"model": ProblemDoc, "content": {"application/problem+json": ref}} for code in codes}
