"""Subgroup assembly of a whole batch of one characteristic's values (issue 11, batch application).

Why a module of its own: :meth:`cpkmon.capability.characteristic.Characteristic.add` pays a method call, an
``_Open`` object and a Welford step in Python for every value. A batch of one characteristic's values can be
cut into subgroups first (:func:`plan`, one cheap pass over the subgroup ids) and the moments of all its
complete subgroups computed together (:func:`moments`), over arrays with numpy when there are enough of them.

Bit-identity with the event path is the contract, not an approximation: :func:`moments` performs exactly the
floating-point operations :meth:`cpkmon.capability.moments.Moments.add` performs, in the same order — the
columns of a ``subgroups × length`` matrix are folded in one at a time with Welford's update (``delta = x −
mean; mean += delta / n; m2 += delta · (x − mean)``), elementwise IEEE operations that round exactly as
Python's floats do, and min/max are taken with the same strict comparisons (``x < lo``), so even ``-0.0``
is kept or not as the event path keeps it. The pure-Python loop beside it (:func:`_moments_py`) is the same
arithmetic; tests hold both, and the event path, to identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from cpkmon.capability.subgroups import MAX_SUBGROUP_VALUES

if TYPE_CHECKING:
    import numpy as np

#: Complete subgroups of one length from which the numpy path pays off (below it, array set-up costs more
#: than the Python loop saves). Module-level so tests can force either path.
NUMPY_MIN_SUBGROUPS = 24


class Cut(NamedTuple):
    """One subgroup a batch closes: batch values ``[start, stop)``, its id, the batch position whose value
    closed it (the value that filled it, or the first value of the next subgroup), and whether it continues
    the subgroup that was open before the batch."""

    start: int
    stop: int
    key: str | None
    pos: int
    cont: bool


class Plan(NamedTuple):
    """The subgroups a batch closes, in close order, and the subgroup left open after it (``open_start``
    None when none is; ``open_cont`` when the open one is still the one from before the batch)."""

    cuts: list[Cut]
    open_start: int | None
    open_key: str | None
    open_cont: bool


def plan(
    size: int,
    open_key: str | None,
    open_count: int,
    has_open: bool,
    keys: Sequence[str | None] | None,
    n: int,
) -> Plan:
    """Cut ``n`` values into subgroups exactly as :meth:`SubgroupAssembler.add` would, value by value.

    ``keys`` are the subgroup ids already as strings (None: no id); None for a batch without ids.
    ``open_key``/``open_count``/``has_open`` describe the subgroup open before the batch.
    """
    cuts: list[Cut] = []
    has = has_open
    cont = has_open
    cur_key = open_key
    cur_start = 0
    cur_count = open_count
    if keys is None and not (has and open_key is not None):
        # no ids anywhere: fixed-size chunks (the open subgroup, if any, has no id either)
        i = 0
        if has:
            need = max(1, size - cur_count)  # a spec change may have shrunk the size below the open count
            if n < need:
                return Plan(cuts, 0, None, True)
            cuts.append(Cut(0, need, None, need - 1, True))
            i = need
        append = cuts.append
        if size == 1:
            for j in range(i, n):
                append(Cut(j, j + 1, None, j, False))
            return Plan(cuts, None, None, False)
        while i + size <= n:
            append(Cut(i, i + size, None, i + size - 1, False))
            i += size
        return Plan(cuts, i if i < n else None, None, False)
    for i in range(n):
        k = None if keys is None else keys[i]
        if k is None and not has and size == 1:
            cuts.append(Cut(i, i + 1, None, i, False))
            continue
        if has and cur_key != k:
            cuts.append(Cut(cur_start, i, cur_key, i, cont))
            has = cont = False
        if has:
            cur_count += 1
        else:
            has = True
            cur_key = k
            cur_start = i
            cur_count = 1
        if cur_count >= (size if k is None else MAX_SUBGROUP_VALUES):
            cuts.append(Cut(cur_start, i + 1, cur_key, i, cont))
            has = cont = False
    if has:
        return Plan(cuts, cur_start, cur_key, cont)
    return Plan(cuts, None, None, False)


#: (mean, m2, lo, hi, event_time) of one subgroup
Summary = tuple[float, float, float, float, float]


def moments(
    xs: Sequence[float], ts: Sequence[float], cuts: Sequence[Cut], numpy_min: int | None = None
) -> dict[int, Summary]:
    """Welford moments and newest event time of every cut that does not continue an open subgroup, keyed
    by its index in ``cuts``. Cuts of one length are computed together: with numpy when there are at least
    ``numpy_min`` (default :data:`NUMPY_MIN_SUBGROUPS`) of them, else in Python — identical results."""
    limit = NUMPY_MIN_SUBGROUPS if numpy_min is None else numpy_min
    by_len: dict[int, list[int]] = {}
    for ci, c in enumerate(cuts):
        if not c.cont:
            by_len.setdefault(c.stop - c.start, []).append(ci)
    out: dict[int, Summary] = {}
    xa: np.ndarray | None = None
    ta: np.ndarray | None = None
    for length, idx in by_len.items():
        if len(idx) >= limit and length > 1:
            import numpy as np  # only here: importing it costs ~50 ms of start-up the event path never needs

            if xa is None or ta is None:
                xa = np.asarray(xs, dtype=np.float64)
                ta = np.asarray(ts, dtype=np.float64)
            starts = np.fromiter((cuts[i].start for i in idx), dtype=np.intp, count=len(idx))
            _moments_np(xa, ta, starts, length, idx, out)
        else:
            _moments_py(xs, ts, cuts, idx, out)
    return out


def _moments_py(
    xs: Sequence[float], ts: Sequence[float], cuts: Sequence[Cut], idx: list[int], out: dict[int, Summary]
) -> None:
    """Moments.add's arithmetic, inlined: one Welford step per value after the first."""
    for ci in idx:
        start, stop = cuts[ci].start, cuts[ci].stop
        mean = lo = hi = xs[start]
        m2 = 0.0
        et = ts[start]
        n = 1
        for j in range(start + 1, stop):
            x = xs[j]
            n += 1
            delta = x - mean
            mean = mean + delta / n
            m2 += delta * (x - mean)
            if x < lo:
                lo = x
            if x > hi:
                hi = x
            t = ts[j]
            if t > et:
                et = t
        out[ci] = (mean, m2, lo, hi, et)


def _moments_np(
    xa: np.ndarray, ta: np.ndarray, starts: np.ndarray, length: int, idx: list[int], out: dict[int, Summary]
) -> None:
    """The same Welford steps, one column (the j-th value of every subgroup) at a time."""
    import numpy as np
    cols = starts[:, None] + np.arange(length)
    x_mat = xa[cols]
    t_mat = ta[cols]
    mean = x_mat[:, 0].copy()
    m2 = np.zeros_like(mean)
    lo = mean.copy()
    hi = mean.copy()
    et = t_mat[:, 0].copy()
    for j in range(1, length):
        x = x_mat[:, j]
        delta = x - mean
        mean = mean + delta / float(j + 1)
        m2 = m2 + delta * (x - mean)
        lo = np.where(x < lo, x, lo)
        hi = np.where(x > hi, x, hi)
        t = t_mat[:, j]
        et = np.where(t > et, t, et)
    for ci, row in zip(idx, zip(mean.tolist(), m2.tolist(), lo.tolist(), hi.tolist(), et.tolist(),
                                strict=True), strict=True):
        out[ci] = row
