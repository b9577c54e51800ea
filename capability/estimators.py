"""σ_within estimators over a window aggregate (SPEC §4).

* ``mvlue_r`` — Σ fᵢRᵢ/d₂(nᵢ) / Σ fᵢ, fᵢ = d₂(nᵢ)²/d₃(nᵢ)² (qcc ``MVLUE-R``); R̄/d₂ for equal sizes. Subgroups
  of one value carry no range and do not enter it.
* ``moving_range`` — mean |xᵢ − xᵢ₋₁| over consecutive values in the window / d₂(2) (individuals).
* ``pooled`` — √(Σ(nᵢ−1)sᵢ² / d) / c₄(d+1), d = Σ(nᵢ−1) (qcc ``RMSDF``, Minitab's pooled SD).

Which one applies is decided by the characteristic's **chart** — its nominal subgroup size (the spec's
``subgroup_size``, :func:`cpkmon.capability.control.chart_kind_for`) — never by what happened to arrive. Why:
deciding from the data let one re-measured part (two values under one subgroup id) on an individuals
characteristic switch the whole window from moving ranges to that one pair's range (σ_within 0.0945 →
0.00177, Cpk 0.969 → 51.55). The rules:

* **I–MR (nominal 1)**, both ``sigma_method`` values: the moving range over consecutive *values* in arrival
  order across the whole window. A stray subgroup of several values (a re-measured part) is just more
  consecutive values: its internal moving ranges count like any other pair, so it moves σ_within exactly as
  the same values arriving as individuals would.
* **X̄–R / X̄–S (nominal ≥ 2)**: MVLUE-R (``"default"``) or pooled (``"pooled"``) over the subgroups with two
  or more values. A stray subgroup of one value carries no within-subgroup information and does not enter
  σ_within; it does enter the mean and σ_overall. A window with no subgroup of two or more values has no
  σ_within (``insufficient_data``) rather than one borrowed from another chart.
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


def sigma_within(agg: Agg, method: str = "default", *, nominal: int) -> tuple[float | None, str | None]:
    """(σ_within, estimator name) for a chart of nominal subgroup size ``nominal`` (see the module docstring)
    — names ``"mvlue_r"``, ``"pooled"``, ``"moving_range"``; (None, None) if the window cannot feed the
    chart's estimator."""
    if nominal < 1:
        raise ValueError(f"nominal subgroup size must be ≥ 1, got {nominal}")
    if nominal == 1:
        return (moving_range(agg), "moving_range") if agg.mr_n > 0 else (None, None)
    if agg.sdf > 0:
        if method == "pooled":
            return pooled(agg), "pooled"
        return mvlue_r(agg), "mvlue_r"
    return None, None


def sigma_overall(agg: Agg) -> float | None:
    """Sample standard deviation (n − 1) of every value in the window; None below two values."""
    return math.sqrt(agg.m2 / (agg.n - 1)) if agg.n >= 2 else None
