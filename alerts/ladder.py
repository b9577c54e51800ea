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

# The criterion names, level names and limiting reasons are defined once, in the document model; they stay
# importable from here.
from .model import (
    BELOW_THRESHOLD,
    CONFIRMING,
    CPK,
    CRITERIA,
    EXTERNAL_LOSS_RATE,
    INTERNAL_LOSS_RATE,
    LEVEL_NAMES,
    NOT_ASSESSED,
    NOT_RESOLVABLE,
    REASONS,
    RTY,
    SIGMA_LEVEL,
    STABILITY,
    UNSTABLE,
    WITHIN_BAND,
)

__all__ = [
    "BELOW_THRESHOLD",
    "COMPARISON",
    "CONFIRMING",
    "CRITERIA",
    "LEVELS",
    "MAX_LEVEL",
    "NOT_ASSESSED",
    "NOT_RESOLVABLE",
    "REASONS",
    "TRACKED",
    "UNSTABLE",
    "WITHIN_BAND",
    "Criterion",
    "GradeBand",
    "GradeResult",
    "Level",
    "Limiting",
    "LineMetrics",
    "grade",
    "grade_ref",
    "level_info",
    "level_met",
    "meets",
    "meets_threshold",
    "needed_to_clear",
    "opportunities_to_resolve",
    "published_limiting",
    "resolvable_level",
]

#: How each criterion compares with its threshold (rendered in the status so the dashboard can say it).
COMPARISON: dict[str, str] = {
    CPK: ">=",
    RTY: ">=",
    SIGMA_LEVEL: "<=",  # DPMO ≤ threshold
    INTERNAL_LOSS_RATE: "<",
    EXTERNAL_LOSS_RATE: "<",
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
        if criterion == CPK:
            return self.cpk
        if criterion == RTY:
            return self.rty
        if criterion == SIGMA_LEVEL:
            return self.dpmo
        if criterion == INTERNAL_LOSS_RATE:
            return self.internal
        if criterion == EXTERNAL_LOSS_RATE:
            return self.external
        raise KeyError(criterion)

    def ref(self) -> dict[str, object]:
        """``{"level", "name", "name_zh"}``: how a grade appears in documents."""
        return {"level": self.level, "name": self.name, "name_zh": self.chinese}


#: Thresholds per level: (cpk, rty, dpmo, internal, external, nominal sigma); names from the model.
_THRESHOLDS: dict[int, tuple[float | None, float | None, float | None, float | None, float | None,
                             float | None]] = {
    1: (None, None, None, None, None, None),
    2: (1.00, 0.90, 66807.0, None, None, 3.0),
    3: (1.33, 0.95, 6210.0, 0.030, 0.023, 4.0),
    4: (1.67, 0.97, 233.0, 0.015, 0.010, 5.0),
    5: (2.00, 0.98, 3.4, 0.0075, 0.005, 6.0),
}
LEVELS: tuple[Level, ...] = tuple(Level(lv, name, zh, *_THRESHOLDS[lv]) for lv, name, zh in LEVEL_NAMES)
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

    def standard_error(self, criterion: str) -> float:
        """The sampling standard error of a criterion's value (0 where none is known: the loss rates)."""
        se = {CPK: self.cpk_se, RTY: self.rty_se, SIGMA_LEVEL: self.dpmo_se}.get(criterion)
        return 0.0 if se is None or not math.isfinite(se) else float(se)

    def value(self, criterion: str) -> float | None:
        """The number compared with the thresholds (DPMO for the sigma criterion)."""
        if criterion in self.missing:
            return None
        raw = {
            CPK: self.cpk,
            RTY: self.rty,
            SIGMA_LEVEL: self.dpmo,
            INTERNAL_LOSS_RATE: self.internal_loss_rate,
            EXTERNAL_LOSS_RATE: self.external_loss_rate,
        }[criterion]
        if raw is None or math.isnan(raw):
            return None
        return float(raw)

    def subject(self, criterion: str) -> str | None:
        if criterion == CPK:
            return self.cpk_subject
        if criterion == RTY:
            return self.rty_subject
        return None

    def reported(self, criterion: str) -> float | None:
        """The value shown for a criterion: the sigma level (not DPMO) for ``sigma_level``."""
        if criterion == SIGMA_LEVEL:
            dpmo = self.value(SIGMA_LEVEL)
            if dpmo is None:
                return None
            if self.sigma_level is not None and math.isfinite(self.sigma_level):
                return float(self.sigma_level)
            if 0.0 < dpmo < 1e6:  # the caller gave DPMO only: Φ⁻¹(1 − DPMO/10⁶) + 1.5 (SPEC §4)
                return NormalDist().inv_cdf(1.0 - dpmo / 1e6) + 1.5
            return None
        return self.value(criterion)


#: Relative tolerance of a threshold comparison. The metrics are ratios computed in floating point: RTY
#: 494/511 × 511/520 is exactly 0.95 but computes as 0.9499999999999998. A value within this relative distance
#: of a threshold *is* the threshold: it meets a ``≥``/``≤`` threshold and fails a strict ``<`` one. 1e-12 is
#: thousands of ulps (so every rounding of a few operations is covered) and far below any real difference.
THRESHOLD_RTOL = 1e-12


def _at(value: float, threshold: float) -> bool:
    return abs(value - threshold) <= THRESHOLD_RTOL * max(abs(value), abs(threshold))


def meets_threshold(criterion: str, value: float, threshold: float | None) -> bool:
    """Whether ``value`` meets ``threshold`` under ``criterion``'s comparison (None: any value meets it)."""
    if threshold is None:
        return True  # level 1, or "tracked": any value
    op = COMPARISON[criterion]
    if op == ">=":
        return value >= threshold or _at(value, threshold)
    if op == "<=":
        return value <= threshold or _at(value, threshold)
    return value < threshold and not _at(value, threshold)


def meets(criterion: str, value: float, level: Level) -> bool:
    """Whether ``value`` meets ``level``'s threshold for ``criterion`` (SPEC §5 comparisons, tolerant of the
    last bits of floating point: see :data:`THRESHOLD_RTOL`)."""
    return meets_threshold(criterion, value, level.threshold(criterion))


def level_met(criterion: str, value: float) -> int:
    """Highest level whose threshold (and every lower one) this criterion alone meets."""
    met = 1
    for info in LEVELS[1:]:
        if not meets(criterion, value, info):
            break
        met = info.level
    return met


# Why a line is not at the next level (``Limiting.reason``): BELOW_THRESHOLD, NOT_ASSESSED, UNSTABLE,
# NOT_RESOLVABLE, WITHIN_BAND (see GradeBand), CONFIRMING: defined in the model (imported above).


@dataclass(frozen=True, slots=True)
class Limiting:
    """The criterion that stops the line from reaching the next level, and the threshold it missed.

    ``threshold`` is always in the units of ``value`` (a sigma level for the sigma criterion), and ``reason``
    says why the value does not count: it is below the threshold, not resolvable by its sample yet
    (``needed`` = opportunities still missing), or it meets the threshold but has not cleared the hysteresis
    band (``needed`` = the value it must reach) or is still being confirmed.
    """

    criterion: str
    subject: str | None
    value: float | None
    threshold: float | None
    reason: str = BELOW_THRESHOLD
    needed: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "criterion": self.criterion,
            "subject": self.subject,
            "value": self.value,
            "threshold": self.threshold,
            "reason": self.reason,
            "needed": self.needed,
        }

    def alert_dict(self) -> dict[str, object]:
        """The SPEC §5 alert ``limiting`` object, plus the reason."""
        return {"criterion": self.criterion, "subject": self.subject, "value": self.value,
                "threshold": self.threshold, "reason": self.reason}


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
    resolvable: int | None = None  # sigma criterion: the highest level its sample resolves
    opportunities_needed: int | None = None  # sigma criterion: opportunities missing for the next level

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
        if self.criterion == SIGMA_LEVEL:
            d["dpmo"] = self.dpmo
            # judged on DPMO against the table's DPMO column: the threshold in those units too
            top = self.level_met is None or self.level_met >= MAX_LEVEL
            nxt = None if top or self.level_met is None else level_info(self.level_met + 1)
            d["next_dpmo_threshold"] = None if nxt is None else nxt.threshold(SIGMA_LEVEL)
            d["resolvable_level"] = self.resolvable
            d["opportunities_needed"] = self.opportunities_needed
        if self.criterion == CPK and self.unstable:
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


def opportunities_to_resolve(level: int) -> int:
    """Opportunities a sample needs before DPMO can claim ``level``: N ≥ 3·10⁶/T (rule of three).

    2: 45, 3: 484, 4: 12 876, 5: 882 353 (6σ, T = 3.4 DPMO).
    """
    threshold = level_info(level).threshold(SIGMA_LEVEL)
    if threshold is None:
        return 0
    return math.ceil(RESOLUTION_DEFECTS * 1e6 / threshold - 1e-9)


def resolvable_level(opportunities: int) -> int:
    """The highest level whose DPMO threshold ``opportunities`` can resolve.

    A sample supports "DPMO ≤ T" only when T is at least three defects' worth of it (N ≥ 3·10⁶/T): by the rule
    of three, zero defects in N opportunities bound the rate at 3/N with 95 % confidence, and a sample that
    small cannot tell T from a handful of chance defects. So 5σ (233 DPMO) needs 12 876 opportunities and 6σ
    (3.4 DPMO) 882 353 (:func:`opportunities_to_resolve`). Without this cap the first defect-free units of a
    starting line grade it 6σ, and the first chance defect "degrades" it. The line ratchets this level (it
    never goes back down while the line lives: ``LineState``), so a count hovering at a bound cannot make the
    grade flap.
    """
    met = 1
    for info in LEVELS[1:]:
        if opportunities < opportunities_to_resolve(info.level):
            break
        met = info.level
    return met


@dataclass(frozen=True, slots=True)
class GradeBand:
    """The hysteresis (dead) band around every threshold, on both sides of it.

    A criterion *fails* a level only when its value misses the threshold by the band, and *clears* a level
    only when it beats the threshold by the band; in between, the published grade stays where it is. The
    band's half-width at threshold T is ``relative``·T — the same on both sides — plus a number of standard
    errors of the estimate (Bissell's for Cpk, the binomial delta method's for RTY, Poisson's for DPMO):
    ``se_fall`` on a fall, ``se_rise`` on a rise. For RTY the relative part applies to the failure share
    1 − T.

    Why both sides: judging falls on the raw estimate and only rises through a band held good lines below the
    grade they deserve and hid real drops behind that. Why a wider standard-error term on rises: a false
    promotion costs two alerts (the promotion and the drop back), a late fall delays a real alarm; the figures
    that chose the defaults are in ``bench/alerts.py`` and the README. ``bias`` −1 grades a fall (thresholds
    moved toward the bad side), +1 a rise.
    """

    relative: float = 0.0
    se_fall: float = 0.0
    se_rise: float = 0.0

    def threshold(
        self, criterion: str, threshold: float | None, bias: int, metrics: LineMetrics
    ) -> float | None:
        """``threshold`` moved by the band toward the bad side (``bias`` −1) or the good side (+1)."""
        if threshold is None or bias == 0:
            return threshold
        k = self.se_fall if bias < 0 else self.se_rise
        se = k * metrics.standard_error(criterion) if k else 0.0
        if criterion == RTY:
            return threshold + bias * (self.relative * (1.0 - threshold) + se)
        if criterion == CPK:
            return threshold + bias * (self.relative * abs(threshold) + se)
        # DPMO and the loss rates: lower is better, so a rise needs a value *below* the threshold by the band
        return threshold - bias * (self.relative * threshold + se)


NO_BAND = GradeBand()


def _next_threshold(criterion: str, met: int | None) -> float | None:
    """The threshold of the level above ``met`` (None at the top, or when not assessed), in the units of the
    criterion's reported value: the sigma criterion is judged on DPMO but reported, with its threshold, as a
    sigma level (e.g. 5.0 for DPMO ≤ 233), so ``value`` and ``threshold`` of a limiting criterion compare."""
    if met is None or met >= MAX_LEVEL:
        return None
    nxt = level_info(met + 1)
    if criterion == SIGMA_LEVEL:
        return nxt.sigma
    return nxt.threshold(criterion)


def _banded_level(criterion: str, value: float, metrics: LineMetrics, band: GradeBand, bias: int) -> int:
    """:func:`level_met` against thresholds moved by ``band`` (``bias`` −1: a fall, +1: a rise)."""
    met = 1
    for info in LEVELS[1:]:
        t = band.threshold(criterion, info.threshold(criterion), bias, metrics)
        if not meets_threshold(criterion, value, t):
            break
        met = info.level
    return met


def grade(
    metrics: LineMetrics,
    options: Options,
    *,
    band: GradeBand = NO_BAND,
    bias: int = 0,
    resolvable: int | None = None,
) -> GradeResult:
    """Grade one line (SPEC §5); see the module docstring for the comparisons and options.

    ``bias``/``band`` move every threshold by the hysteresis band (:class:`GradeBand`); ``resolvable`` is the
    line's ratcheted DPMO resolution (default: what ``metrics.opportunities`` resolves now).
    """
    unstable = tuple(metrics.unstable) if options.require_stability else ()
    if resolvable is None and metrics.opportunities is not None:
        resolvable = resolvable_level(metrics.opportunities)
    criteria: list[Criterion] = []
    capped_by_resolution = False
    for name in CRITERIA:
        value = metrics.value(name)
        dpmo = metrics.value(SIGMA_LEVEL) if name == SIGMA_LEVEL else None
        flagged = unstable if name == CPK else ()
        met: int | None = None
        if value is not None:
            met = level_met(name, value) if bias == 0 else _banded_level(name, value, metrics, band, bias)
        res: int | None = None
        needed: int | None = None
        if name == SIGMA_LEVEL and met is not None and resolvable is not None:
            res = resolvable
            if met > resolvable:
                met = resolvable
                capped_by_resolution = True
            if resolvable < MAX_LEVEL and metrics.opportunities is not None:
                needed = max(0, opportunities_to_resolve(resolvable + 1) - metrics.opportunities)
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
                resolvable=res,
                opportunities_needed=needed,
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
                limiting = Limiting(STABILITY, c.unstable[0], c.value, threshold, UNSTABLE)
            elif c.criterion == SIGMA_LEVEL and capped_by_resolution and c.resolvable == level:
                limiting = Limiting(c.criterion, c.subject, c.value, threshold, NOT_RESOLVABLE,
                                    None if c.opportunities_needed is None else float(c.opportunities_needed))
            else:
                limiting = Limiting(c.criterion, c.subject, c.value, threshold)
        else:  # capped by require_all_criteria
            c = missing[0]
            threshold = _next_threshold(c.criterion, level)
            limiting = Limiting(c.criterion, c.subject, None, threshold, NOT_ASSESSED)
    return GradeResult(level, level_info(level).name, limiting, criteria)


def needed_to_clear(criterion: str, level: int, metrics: LineMetrics, band: GradeBand) -> float | None:
    """The value ``criterion`` must reach to clear ``level``'s threshold by the band (in reported units: a
    sigma level for the sigma criterion); None where the level has no threshold for it."""
    info = level_info(level)
    t = band.threshold(criterion, info.threshold(criterion), +1, metrics)
    if t is None:
        return None
    if criterion == SIGMA_LEVEL:
        if not 0.0 < t < 1e6:
            return None
        return NormalDist().inv_cdf(1.0 - t / 1e6) + 1.5
    return t


def published_limiting(
    level: int | None,
    raw: GradeResult,
    metrics: LineMetrics,
    options: Options,
    band: GradeBand,
) -> Limiting | None:
    """What holds the *published* grade ``level`` below the next level, always with the real reason.

    The published grade can differ from the evaluated one (``raw``) while a change is being confirmed or while
    a metric sits inside the hysteresis band, so the limiting criterion of ``raw`` alone can be wrong for it
    (e.g. grade 4 published with Cpk 2.007 evaluated at level 5). In order:

    * a criterion whose evaluated level is at most ``level``: it misses the next threshold
      (``below_threshold``), is capped by its sample (``not_resolvable``) or unstable (``unstable``);
    * under ``require_all_criteria``, a criterion with no data (``not_assessed``);
    * else every criterion meets the next threshold: the first that has not cleared it by the band
      (``within_band``, ``needed`` = the value to reach); else the rise is being confirmed (``confirming``).
    """
    if level is None:
        return raw.limiting
    if level >= MAX_LEVEL:
        return None
    assessed = [c for c in raw.criteria if c.assessed and c.level_met is not None]
    holding = [c for c in assessed if c.level_met is not None and c.level_met <= level]
    if holding:
        c = min(holding, key=lambda x: x.level_met or 0)
        threshold = _next_threshold(c.criterion, level)
        if c.unstable:
            return Limiting(STABILITY, c.unstable[0], c.value, threshold, UNSTABLE)
        if c.criterion == SIGMA_LEVEL and c.resolvable is not None and c.resolvable <= level:
            raw_level = None if c.dpmo is None else level_met(SIGMA_LEVEL, c.dpmo)
            if raw_level is not None and raw_level > level:
                needed = c.opportunities_needed
                return Limiting(c.criterion, c.subject, c.value, threshold, NOT_RESOLVABLE,
                                None if needed is None else float(needed))
        return Limiting(c.criterion, c.subject, c.value, threshold)
    missing = [c for c in raw.criteria if not c.assessed]
    if options.require_all_criteria and missing:
        c = missing[0]
        return Limiting(c.criterion, None, None, _next_threshold(c.criterion, level), NOT_ASSESSED)
    for c in assessed:
        to_reach = needed_to_clear(c.criterion, level + 1, metrics, band)
        if c.value is None or to_reach is None:
            continue
        if not meets_threshold(c.criterion, _judged(c), band.threshold(
                c.criterion, level_info(level + 1).threshold(c.criterion), +1, metrics)):
            return Limiting(c.criterion, c.subject, c.value, _next_threshold(c.criterion, level), WITHIN_BAND,
                            to_reach)
    if not assessed:
        return None
    c = assessed[0]
    return Limiting(c.criterion, c.subject, c.value, _next_threshold(c.criterion, level), CONFIRMING)


def _judged(c: Criterion) -> float:
    """The value a criterion is compared on (DPMO for the sigma criterion)."""
    if c.criterion == SIGMA_LEVEL:
        return float(c.dpmo) if c.dpmo is not None else math.inf
    return float(c.value) if c.value is not None else -math.inf
