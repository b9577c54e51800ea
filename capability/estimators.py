"""σ_within estimators over a window aggregate (SPEC §4).

* ``mvlue_r`` — Σ fᵢRᵢ/d₂(nᵢ) / Σ fᵢ, fᵢ = d₂(nᵢ)²/d₃(nᵢ)² (qcc ``MVLUE-R``); R̄/d₂ for equal sizes. Subgroups
  of one value carry no range and do not enter it.
* ``moving_range`` — mean |xᵢ − xᵢ₋₁| over consecutive values in the window / d₂(2) (individuals).
* ``pooled`` — √(Σ(nᵢ−1)sᵢ² / d) / c₄(d+1), d = Σ(nᵢ−1) (qcc ``RMSDF``, Minitab's pooled SD).

Which one applies is decided by the data in the window, so a window is never judged by an estimator it cannot
feed: ``sigma_method="pooled"`` uses pooled and ``"default"`` uses MVLUE-R when any subgroup has two or more
values; otherwise (individuals) both use the moving range.
"""

from __future__ import annotations

import math

from cpkmon.capability.constants import c4, d2
from cpkmon.capability.window import Agg

_D2_2 = d2(2)


def mvlue_r(agg: Agg) -> float | None:
    return agg.sfr / agg.sf if agg.sf > 0.0 else None


def moving_range(agg: Agg) -> float | None:
    return agg.mr_sum / agg.mr_n / _D2_2 if agg.mr_n > 0 else None


def pooled(agg: Agg) -> float | None:
    d = agg.sdf
    return math.sqrt(agg.sm2 / d) / c4(d + 1) if d > 0 else None


def sigma_within(agg: Agg, method: str = "default") -> tuple[float | None, str | None]:
    """(σ_within, estimator name) — names ``"mvlue_r"``, ``"pooled"``, ``"moving_range"``; (None, None) if
    undefined."""
    if agg.sdf > 0:
        if method == "pooled":
            return pooled(agg), "pooled"
        return mvlue_r(agg), "mvlue_r"
    if agg.mr_n > 0:
        return moving_range(agg), "moving_range"
    return None, None


def sigma_overall(agg: Agg) -> float | None:
    """Sample standard deviation (n − 1) of every value in the window; None below two values."""
    return math.sqrt(agg.m2 / (agg.n - 1)) if agg.n >= 2 else None
