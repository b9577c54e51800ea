"""The MIIT five-level quality ladder (SPEC §5): which level a line has reached, and what holds it back.

From the MIIT *Manufacturing Excellent Quality Engineering* guidance (2023). A line's grade is the highest
level whose every **assessed** criterion meets its threshold; a criterion without data is not assessed (and
listed as such) rather than failed, so a line that has no cost data yet is still graded on what it has.

Comparisons, exactly as the SPEC table states them
    * line Cpk ≥ 1.00 / 1.33 / 1.67 / 2.00 and RTY ≥ 0.90 / 0.95 / 0.97 / 0.98 (levels 2–5);
    * the sigma criterion is judged on **DPMO ≤ 66 807 / 6 210 / 233 / 3.4**, the table's DPMO column, not on
      the computed sigma level ≥ 3/4/5/6. Why: the DPMO column is the conventional rounding of the 1.5σ-shift
      table, and the sigma level computed back from those rounded DPMO values lands a hair *below* the integer
      (6 210 DPMO → 3.99998σ, 233 → 4.99958σ; ``../shared/data/sigma_level.csv``), so judging on sigma would
      fail a line sitting exactly at the published value. The criterion still reports ``sigma_level`` as its
      value and ``dpmo`` beside it;
    * loss rates use a **strict** ``<``: internal < "tracked" / 3.0 % / 1.5 % / 0.75 %, external < "tracked" /
      2.3 % / 1.0 % / 0.5 %. "Tracked" (level 2) means any reported value meets it.
    * Level 1 (experience) has no thresholds: every line with any assessed criterion is at least level 1.

Options
    ``require_all_criteria`` caps a line with any criterion not assessed at level 1 (the limiting criterion is
    then the first missing one, ``reason: "not_assessed"``). ``require_stability``: any characteristic not in
    statistical control makes the Cpk criterion fail every level above 1 (limiting criterion ``stability``,
    subject the first unstable characteristic) — a Cpk of an unstable process predicts nothing (SPEC §4.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

from cpkmon.capability.options import Options

CRITERIA: tuple[str, ...] = ("cpk", "rty", "sigma_level", "internal_loss_rate", "external_loss_rate")
#: How each criterion compares with its threshold (rendered in the status so the dashboard can say it).
COMPARISON: dict[str, str] = {
    "cpk": ">=",
    "rty": ">=",
    "sigma_level": "<=",  # DPMO ≤ threshold
    "internal_loss_rate": "<",
    "external_loss_rate": "<",
}
TRACKED = "tracked"


@dataclass(frozen=True, slots=True)
class Level:
    """One rung. Thresholds are None at level 1 (none) and for the loss rates at level 2 ("tracked": any
    value)."""

    level: int
    name: str
    chinese: str
    cpk: float | None
    rty: float | None
    dpmo: float | None
    internal: float | None
    external: float | None
    sigma: float | None = None  # the nominal sigma level the DPMO threshold stands for (3, 4, 5, 6)

    def threshold(self, criterion: str) -> float | None:
        if criterion == "cpk":
            return self.cpk
        if criterion == "rty":
            return self.rty
        if criterion == "sigma_level":
            return self.dpmo
        if criterion == "internal_loss_rate":
            return self.internal
        if criterion == "external_loss_rate":
            return self.external
        raise KeyError(criterion)

    def ref(self) -> dict[str, object]:
        """``{"level", "name", "name_zh"}``: how a grade appears in documents."""
        return {"level": self.level, "name": self.name, "name_zh": self.chinese}


LEVELS: tuple[Level, ...] = (
    Level(1, "experience", "经验级", None, None, None, None, None),
    Level(2, "inspection", "检验级", 1.00, 0.90, 66807.0, None, None, 3.0),
    Level(3, "assurance", "保证级", 1.33, 0.95, 6210.0, 0.030, 0.023, 4.0),
    Level(4, "prevention", "预防级", 1.67, 0.97, 233.0, 0.015, 0.010, 5.0),
    Level(5, "excellence", "卓越级", 2.00, 0.98, 3.4, 0.0075, 0.005, 6.0),
)
MAX_LEVEL = LEVELS[-1].level


def level_info(level: int) -> Level:
    """The :class:`Level` for 1..5."""
    if not 1 <= level <= MAX_LEVEL:
        raise ValueError(f"no such level: {level}")
    return LEVELS[level - 1]


def grade_ref(level: int | None, *, chinese: bool = True) -> dict[str, object] | None:
    """``{"level", "name"[, "name_zh"]}`` for a level, None for None."""
    if level is None:
        return None
    info = level_info(level)
    ref: dict[str, object] = {"level": info.level, "name": info.name}
    if chinese:
        ref["name_zh"] = info.chinese
    return ref


@dataclass(frozen=True)
class LineMetrics:
    """What the ladder judges a line on. None means "no data": the criterion is not assessed."""

    cpk: float | None = None
    cpk_subject: str | None = None  # the characteristic with the minimum Cpk
    rty: float | None = None
    rty_subject: str | None = None  # the station with the lowest FPY
    dpmo: float | None = None
    sigma_level: float | None = None
    internal_loss_rate: float | None = None
    external_loss_rate: float | None = None
    unstable: tuple[str, ...] = ()  # characteristics not in statistical control (require_stability)
    missing: tuple[str, ...] = ()  # criteria the caller declares not assessed even if a value is present
    opportunities: int | None = None  # Σ units·opportunities behind ``dpmo`` (its measurement resolution)
    cpk_se: float | None = None  # standard errors of the estimates (sampling noise), for the hysteresis band
    rty_se: float | None = None
    dpmo_se: float | None = None

    def penalized(self, band: float) -> LineMetrics:
        """These metrics moved ``band`` (relative) toward the bad side of every threshold.

        The alert engine grades *recoveries* on these (a Schmitt trigger): a metric that hovers at a threshold
        degrades once and recovers only when it clears the threshold by the band, so it cannot chatter.
        Cpk/(1+b); the failure share of RTY, DPMO and the loss rates times (1+b); where a standard error is
        known, the metric is further moved by one standard error, so a recovery must also rise above the
        estimate's own sampling noise (a single defect moves DPMO by 10⁶/N).
        """
        k = 1.0 + band
        cpk = None
        if self.cpk is not None:
            cpk = (self.cpk / k if self.cpk >= 0 else self.cpk * k) - (self.cpk_se or 0.0)
        dpmo = None if self.dpmo is None else self.dpmo * k + (self.dpmo_se or 0.0)

        def worse(x: float | None, up_is_good: bool) -> float | None:
            if x is None:
                return None
            return x / k if up_is_good else x * k

        rty = None if self.rty is None else 1.0 - (1.0 - self.rty) * k - (self.rty_se or 0.0)
        return LineMetrics(
            cpk=cpk,
            cpk_subject=self.cpk_subject,
            rty=rty,
            rty_subject=self.rty_subject,
            dpmo=dpmo,
            sigma_level=None,
            internal_loss_rate=worse(self.internal_loss_rate, False),
            external_loss_rate=worse(self.external_loss_rate, False),
            unstable=self.unstable,
            missing=self.missing,
            opportunities=self.opportunities,
        )

    def value(self, criterion: str) -> float | None:
        """The number compared with the thresholds (DPMO for the sigma criterion)."""
        if criterion in self.missing:
            return None
        raw = {
            "cpk": self.cpk,
            "rty": self.rty,
            "sigma_level": self.dpmo,
            "internal_loss_rate": self.internal_loss_rate,
            "external_loss_rate": self.external_loss_rate,
        }[criterion]
        if raw is None or math.isnan(raw):
            return None
        return float(raw)

    def subject(self, criterion: str) -> str | None:
        if criterion == "cpk":
            return self.cpk_subject
        if criterion == "rty":
            return self.rty_subject
        return None

    def reported(self, criterion: str) -> float | None:
        """The value shown for a criterion: the sigma level (not DPMO) for ``sigma_level``."""
        if criterion == "sigma_level":
            dpmo = self.value("sigma_level")
            if dpmo is None:
                return None
            if self.sigma_level is not None and math.isfinite(self.sigma_level):
                return float(self.sigma_level)
            if 0.0 < dpmo < 1e6:  # the caller gave DPMO only: Φ⁻¹(1 − DPMO/10⁶) + 1.5 (SPEC §4)
                return NormalDist().inv_cdf(1.0 - dpmo / 1e6) + 1.5
            return None
        return self.value(criterion)


def meets(criterion: str, value: float, level: Level) -> bool:
    """Whether ``value`` meets ``level``'s threshold for ``criterion`` (SPEC §5 comparisons)."""
    threshold = level.threshold(criterion)
    if threshold is None:
        return True  # level 1, or "tracked": any value
    op = COMPARISON[criterion]
    if op == ">=":
        return value >= threshold
    if op == "<=":
        return value <= threshold
    return value < threshold


def level_met(criterion: str, value: float) -> int:
    """Highest level whose threshold (and every lower one) this criterion alone meets."""
    met = 1
    for info in LEVELS[1:]:
        if not meets(criterion, value, info):
            break
        met = info.level
    return met


@dataclass(frozen=True, slots=True)
class Limiting:
    """The criterion that stopped the line from reaching the next level, and the threshold it missed."""

    criterion: str
    subject: str | None
    value: float | None
    threshold: float | None
    reason: str = "below_threshold"  # | "not_assessed" | "unstable"

    def to_dict(self) -> dict[str, object]:
        return {
            "criterion": self.criterion,
            "subject": self.subject,
            "value": self.value,
            "threshold": self.threshold,
            "reason": self.reason,
        }

    def alert_dict(self) -> dict[str, object]:
        """Exactly the SPEC §5 alert ``limiting`` object."""
        return {"criterion": self.criterion, "subject": self.subject, "value": self.value,
                "threshold": self.threshold}


@dataclass(frozen=True, slots=True)
class Criterion:
    """One criterion's standing. ``level_met`` is None when not assessed."""

    criterion: str
    assessed: bool
    value: float | None
    subject: str | None
    level_met: int | None
    next_threshold: float | None
    dpmo: float | None = None  # only for the sigma criterion
    unstable: tuple[str, ...] = ()  # only for cpk under require_stability

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "criterion": self.criterion,
            "assessed": self.assessed,
            "value": self.value,
            "subject": self.subject,
            "level_met": self.level_met,
            "met_level": self.level_met,  # the name docs/design.md uses
            "next_threshold": self.next_threshold,
            "comparison": COMPARISON[self.criterion],
        }
        if self.criterion == "sigma_level":
            d["dpmo"] = self.dpmo
            # judged on DPMO against the table's DPMO column: the threshold in those units too
            top = self.level_met is None or self.level_met >= MAX_LEVEL
            nxt = None if top or self.level_met is None else level_info(self.level_met + 1)
            d["next_dpmo_threshold"] = None if nxt is None else nxt.threshold("sigma_level")
        if self.criterion == "cpk" and self.unstable:
            d["unstable"] = list(self.unstable)
        return d


@dataclass(frozen=True)
class GradeResult:
    """A line's grade (None when nothing is assessed), its limiting criterion, every criterion's standing."""

    level: int | None
    name: str | None
    limiting: Limiting | None
    criteria: list[Criterion] = field(default_factory=list)

    @property
    def name_zh(self) -> str | None:
        return None if self.level is None else level_info(self.level).chinese

    def criterion(self, name: str) -> Criterion:
        for c in self.criteria:
            if c.criterion == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        """``{"grade": {"level","name","name_zh"} | None, "limiting": {...} | None, "criteria": [...]}``."""
        return {
            "grade": grade_ref(self.level),
            "limiting": None if self.limiting is None else self.limiting.to_dict(),
            "criteria": [c.to_dict() for c in self.criteria],
        }


RESOLUTION_DEFECTS = 3  # the rule of three (see resolvable_level)


def resolvable_level(opportunities: int) -> int:
    """The highest level whose DPMO threshold ``opportunities`` can resolve.

    A sample supports "DPMO ≤ T" only when T is at least three defects' worth of it (N ≥ 3·10⁶/T): by the rule
    of three, zero defects in N opportunities bound the rate at 3/N with 95 % confidence, and a sample that
    small cannot tell T from a handful of chance defects. So 5σ (233 DPMO) needs 12 876 opportunities and 6σ
    (3.4 DPMO) 882 353. Without this cap the first defect-free units of a starting line grade it 6σ, and the
    first chance defect "degrades" it.
    """
    met = 1
    for info in LEVELS[1:]:
        threshold = info.threshold("sigma_level")
        if threshold is not None and opportunities * threshold < RESOLUTION_DEFECTS * 1e6:
            break
        met = info.level
    return met


def _next_threshold(criterion: str, met: int | None) -> float | None:
    """The threshold of the level above ``met`` (None at the top, or when not assessed), in the units of the
    criterion's reported value: the sigma criterion is judged on DPMO but reported, with its threshold, as a
    sigma level (e.g. 5.0 for DPMO ≤ 233), so ``value`` and ``threshold`` of a limiting criterion compare."""
    if met is None or met >= MAX_LEVEL:
        return None
    nxt = level_info(met + 1)
    if criterion == "sigma_level":
        return nxt.sigma
    return nxt.threshold(criterion)


def grade(metrics: LineMetrics, options: Options) -> GradeResult:
    """Grade one line (SPEC §5); see the module docstring for the comparisons and options."""
    unstable = tuple(metrics.unstable) if options.require_stability else ()
    criteria: list[Criterion] = []
    for name in CRITERIA:
        value = metrics.value(name)
        dpmo = metrics.value("sigma_level") if name == "sigma_level" else None
        flagged = unstable if name == "cpk" else ()
        met: int | None = None if value is None else level_met(name, value)
        if name == "sigma_level" and met is not None and metrics.opportunities is not None:
            met = min(met, resolvable_level(metrics.opportunities))
        if flagged:
            met = 1  # an unstable process's Cpk meets nothing above level 1, whatever its value
        criteria.append(
            Criterion(
                criterion=name,
                assessed=met is not None,
                value=metrics.reported(name),
                subject=metrics.subject(name) if met is not None else None,
                level_met=met,
                next_threshold=_next_threshold(name, met),
                dpmo=dpmo,
                unstable=flagged,
            )
        )

    assessed = [c for c in criteria if c.assessed and c.level_met is not None]
    if not assessed:
        return GradeResult(None, None, None, criteria)
    level = min(c.level_met for c in assessed if c.level_met is not None)
    missing = [c for c in criteria if not c.assessed]
    if options.require_all_criteria and missing:
        level = 1

    limiting: Limiting | None = None
    if level < MAX_LEVEL:
        holding = [c for c in assessed if c.level_met == level]
        if holding:
            c = holding[0]
            threshold = _next_threshold(c.criterion, level)
            if c.unstable:
                limiting = Limiting("stability", c.unstable[0], c.value, threshold, "unstable")
            else:
                limiting = Limiting(c.criterion, c.subject, c.value, threshold)
        else:  # capped by require_all_criteria
            c = missing[0]
            threshold = _next_threshold(c.criterion, level)
            limiting = Limiting(c.criterion, c.subject, None, threshold, "not_assessed")
    return GradeResult(level, level_info(level).name, limiting, criteria)
