"""Plain options for the pure core (SPEC §4, §4.1, §5).

A frozen dataclass rather than the pydantic settings object: the core must not depend on how options are
loaded, and every test can build one in a line. :func:`cpkmon.settings.core_options` makes one from the
environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SigmaMethod = Literal["default", "pooled"]


@dataclass(frozen=True, slots=True)
class Options:
    window_subgroups: int = 25
    window_max_age: float | None = None  # seconds of event time, relative to the newest event
    min_subgroups: int = 20
    subgroup_size: int = 5  # used when a spec names none
    sigma_method: SigmaMethod = "default"
    chart_points: int = 50
    run_rules: tuple[int, ...] = (1, 2, 3, 5, 6)
    require_stability: bool = False
    baseline_exclude_flagged: bool = False  # Phase I revised limits (Characteristic._try_freeze)
    yield_window: int = 1000
    min_units: int = 50
    cost_window_days: float = 365.0
    confirm_evaluations: int = 3
    grade_hysteresis: float = 0.05  # relative half-width of the dead band around thresholds (GradeBand)
    grade_hysteresis_se_fall: float = 0.25  # plus this many standard errors of the estimate on a fall …
    grade_hysteresis_se_rise: float = 0.75  # … and on a rise (GradeBand)
    require_all_criteria: bool = False
    # a control alarm returns to normal after this many consecutive closed subgroups in which no enabled rule
    # fired (None: window_subgroups, the span after which the out-of-control tracker alerts again)
    alarm_clear_subgroups: int | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)
