"""The API-only models (requests, health, problems, the alert page) and the document model it serves.

The documents themselves — line status, alerts, acks, specs, commands — are defined once, in the pure core's
document model (:mod:`cpkmon.alerts.model`): the worker builds them, the API serves and parses them with the
same classes, so the OpenAPI schema and the exported JSON Schema (``cpkmon schema``) cannot drift from what
the worker writes. They are re-exported here for the routers.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cpkmon.alerts.model import (
    IDENT_PATTERN,
    Ack,
    AckRecord,
    AlertItem,
    CapabilityHistogram,
    CharacteristicStatus,
    ControlLimits,
    Grade,
    GradeAlertItem,
    GradeChange,
    GradePending,
    GradeRef,
    Limiting,
    LineRow,
    LineStatus,
    OutOfControlAlertItem,
    StationStatus,
)
from cpkmon.alerts.model import Command as BaselineRequest
from cpkmon.alerts.model import SpecDocument as Spec
from cpkmon.capability.spec import target_problem

__all__ = [
    "IDENT_PATTERN", "IDENT_RE", "Ack", "AckRecord", "AckRequest", "AlertItem", "AlertPage",
    "BaselineRequest", "CapabilityHistogram", "CharacteristicStatus", "ControlLimits", "Grade",
    "GradeAlertItem", "GradeChange", "GradePending", "GradeRef", "Health", "Ident", "Limiting", "LineRow",
    "LineStatus", "OutOfControlAlertItem", "ProblemDoc", "Readiness", "Spec", "SpecIn", "StationStatus",
    "problem_responses",
]

IDENT_RE = re.compile(IDENT_PATTERN)
Ident = Annotated[str, Field(pattern=IDENT_PATTERN, examples=["L1"])]


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=2000, examples=["tool changed on S10"])


class AlertPage(BaseModel):
    """One page of ``GET /api/v1/alerts``: the alerts as stored, each with its ack (or null)."""

    items: list[AlertItem]
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
        if (self.center is None) != (self.sigma is None):  # the spec document's rule (the worker's too)
            raise ValueError("center and sigma go together (known control limits)")
        return self


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
