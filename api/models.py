"""Pydantic models of the API's documents: they drive the OpenAPI schema (what integrators code against).

Status and alert documents are produced by the worker and stored in Kafka; the API serves them as stored.
Their models therefore type the known fields (SPEC §5/§6, docs/design.md) and allow extra ones, so a newer
worker that adds a field never breaks an older API."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class ControlLimits(_Open):
    chart: str | None = Field(default=None, examples=["xbar_r"])
    center: Number = None
    ucl: Number = None
    lcl: Number = None
    range_center: Number = None
    range_ucl: Number = None
    range_lcl: Number = None


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
    limiting: Limiting | None = None
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
    target: float | None = None
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
