"""The capability histogram of a window's individual values (issue 9, finding 8).

Why the worker computes it: a capability histogram shows the *individual values* behind Cp/Cpk under the
normal curves of σ_within and σ_overall (Minitab's does), with the values beyond the spec limits visible. The
page used to bin the last 50 subgroup *means* under curves of individual values — the tallest bar reached
2.2× the curve's peak and out-of-spec parts were invisible. Only the worker holds the values, so the status
carries the bin counts, and the page draws them.

The bin rule (deterministic, so the same window always gives the same bars):

1. **Width**: numpy's ``"auto"`` rule — the narrower of Sturges (range / (⌈log₂ n⌉ + 1)) and
   Freedman–Diaconis (2·IQR·n^(−1/3)), then clamped so that the data's range spans 5…30 bins: h₀.
2. **Spec limits on edges**: with both limits, h = (USL − LSL) / j with j = round((USL − LSL) / h₀) ≥ 1, so
   both limits fall on bin edges and no bar straddles a limit (h stays within ½…1½ × h₀, except that h is
   the spec width when that is narrower than h₀/2); with one limit, h = h₀ anchored at that limit. If
   aligning would need more than :data:`MAX_BINS` bins (data far wider than the spec), the width is h₀ and
   only the lower limit is an edge.
3. **Edges** cover every value: from the last edge at or below the smallest value to the first at or above
   the largest (one bin — a tenth of the spec width wide — centred on the data when all values are equal
   to 1e-9 of their magnitude).
4. **Closed toward the spec**: a bin holds the values strictly inside it and a value on an edge goes to the
   bin on the in-spec side of it — for a two-sided spec the side toward the midpoint (a value exactly on the
   midpoint goes to the lower bin), for an upper-only spec the lower bin, for a lower-only spec the upper
   bin. So a value exactly on a limit (gauges round; real
   data sit there) is drawn in an in-spec bar, and the rule is mirror-symmetric about the midpoint.

``below_lsl`` / ``above_usl`` count the values strictly beyond a limit (a value on a limit is in spec, as
everywhere in cpkmon); None when the spec has no such limit. Counting is done on the stored deviations from
the shift, against the limits expressed the same way, so a value on a limit compares exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

MIN_BINS = 5
MAX_DATA_BINS = 30
MAX_BINS = 60


def base_width(ds: list[float]) -> float:
    """h₀ of sorted values with a positive range (rule 1 of the module docstring)."""
    n = len(ds)
    spread = ds[-1] - ds[0]
    h = spread / (math.ceil(math.log2(n)) + 1)  # Sturges
    iqr = _quantile(ds, 0.75) - _quantile(ds, 0.25)
    if iqr > 0.0:
        h = min(h, 2.0 * iqr / n ** (1.0 / 3.0))  # Freedman–Diaconis
    return min(spread / MIN_BINS, max(spread / MAX_DATA_BINS, h))


def _quantile(ds: list[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (numpy's default)."""
    pos = q * (len(ds) - 1)
    i = math.floor(pos)
    j = min(i + 1, len(ds) - 1)
    return ds[i] + (ds[j] - ds[i]) * (pos - i)


def capability_histogram(
    deviations: Iterable[float], shift: float, lsl: float | None, usl: float | None
) -> dict[str, object] | None:
    """The histogram object of the status document for values ``shift + d`` (``d`` in ``deviations``);
    None without values. Keys: ``edges`` (measurement units, ascending, len(counts) + 1), ``counts``,
    ``bin_width``, ``n``, ``below_lsl``, ``above_usl``."""
    ds = sorted(deviations)
    n = len(ds)
    if n == 0:
        return None
    lo_d = None if lsl is None else lsl - shift  # the same expression a value on the limit is stored by
    hi_d = None if usl is None else usl - shift
    dmin, dmax = ds[0], ds[-1]
    spread = dmax - dmin
    # magnitudes involved: a spread below 1e-9 of them is "all values equal" (bins that narrow would not
    # have distinct edges in measurement units)
    scale = max(abs(shift), abs(dmin), abs(dmax), abs(lo_d or 0.0), abs(hi_d or 0.0), 1e-300)
    spread_ok = spread > 1e-9 * scale
    if spread_ok:
        h0 = base_width(ds)
    elif lo_d is not None and hi_d is not None:
        h0 = (hi_d - lo_d) / 10.0
    else:
        limit = lo_d if lo_d is not None else hi_d
        assert limit is not None
        h0 = abs(dmin - limit) / 5.0
    h0 = max(h0, 1e-6 * scale) if not spread_ok else h0
    h = h0
    anchor = lo_d if lo_d is not None else hi_d
    assert anchor is not None
    if spread_ok and lo_d is not None and hi_d is not None:
        j = max(1, round((hi_d - lo_d) / h0))
        aligned = (hi_d - lo_d) / j
        if (max(dmax, hi_d) - min(dmin, lo_d)) / aligned <= MAX_BINS:
            h = aligned
    if spread_ok and abs(dmin - anchor) / h <= 1e6:
        i0 = math.floor((dmin - anchor) / h)
        i1 = math.ceil((dmax - anchor) / h)
    elif spread_ok:  # data a million bins away from the limit: bins anchored on the data instead
        anchor, i0, i1 = dmin, 0, math.ceil(spread / h)
    else:  # all values equal: one bin around them (no limit alignment to keep)
        anchor, i0, i1 = dmin - h / 2.0, 0, 1
    edges = [anchor + i * h for i in range(i0, i1 + 1)]
    # the exact limits where they are edges, so a value on a limit is compared with the limit itself
    for lim in (lo_d, hi_d):
        if lim is None:
            continue
        idx = min(range(len(edges)), key=lambda t: abs(edges[t] - lim))
        if abs(edges[idx] - lim) <= 1e-9 * h:
            edges[idx] = lim
    # floating point may leave the extreme values a hair outside: widen the outer edges to cover them
    while edges[0] > dmin:
        edges.insert(0, edges[0] - h)
    while edges[-1] < dmax:
        edges.append(edges[-1] + h)
    counts = _count(ds, edges, lo_d, hi_d)
    below = None if lo_d is None else bisect_left(ds, lo_d)
    above = None if hi_d is None else n - bisect_right(ds, hi_d)
    # a limit edge is reported as the limit itself, not as shift + (limit − shift)
    limits: dict[float, float] = {}
    if lo_d is not None and lsl is not None:
        limits[lo_d] = lsl
    if hi_d is not None and usl is not None:
        limits[hi_d] = usl
    return {
        "edges": [limits.get(e, shift + e) for e in edges],
        "counts": counts,
        "bin_width": h,
        "n": n,
        "below_lsl": below,
        "above_usl": above,
    }


def _count(ds: list[float], edges: list[float], lo_d: float | None, hi_d: float | None) -> list[int]:
    """Counts per bin of the sorted values ``ds``; a value on an interior edge goes to the bin on the
    in-spec side (toward ``mid``), see the module docstring."""
    if lo_d is not None and hi_d is not None:
        mid = lo_d + (hi_d - lo_d) / 2.0
    elif hi_d is not None:
        mid = math.inf  # upper limit only: every edge's in-spec side is below it
    else:
        mid = -math.inf
    k = len(edges) - 1
    counts = [0] * k
    for d in ds:
        # on or above the midpoint: bins (e_i, e_i+1], an edge value goes to the bin below; below the
        # midpoint: bins [e_i, e_i+1), an edge value goes to the bin above
        i = (bisect_left(edges, d) if d >= mid else bisect_right(edges, d)) - 1
        counts[min(k - 1, max(0, i))] += 1
    return counts
