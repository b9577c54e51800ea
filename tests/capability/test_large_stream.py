"""10⁶ values of 1e6 + N(0, 1e-3) through the window: flat memory, exact final statistics (SPEC §4, §9)."""

from __future__ import annotations

import math
import time
import tracemalloc
from fractions import Fraction

import numpy as np

from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.constants import d2
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

N = 1_000_000
SIZE = 5
WINDOW = 25
LSL, USL = 1e6 - 0.004, 1e6 + 0.005


def test_million_values_memory_flat_and_exact() -> None:
    values = (1e6 + np.random.default_rng(20261124).normal(0.0002, 1e-3, N)).tolist()
    ids = [f"m-{i}" for i in range(N)]
    ch = Characteristic(
        "L1",
        "bore",
        Spec(lsl=LSL, usl=USL, target=1e6, subgroup_size=SIZE),
        Options(window_subgroups=WINDOW, min_subgroups=20),
    )
    add = ch.add
    started = time.perf_counter()
    tracemalloc.start()
    try:
        for i in range(200_000):
            add(values[i], 1_763_626_502.0 + i * 1e-3, ids[i])
        _, peak_early = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for i in range(200_000, N):
            add(values[i], 1_763_626_502.0 + i * 1e-3, ids[i])
        current, peak_late = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    # State is bounded by the window: no growth between 2e5 and 1e6 values (slack for allocator noise).
    assert peak_late <= peak_early * 1.10 + 64 * 1024, (peak_early, peak_late)
    assert current <= peak_early * 1.10 + 64 * 1024
    assert ch.values_total == N

    # Two-pass batch over the final window (the last 25 subgroups of 5), with exact rational arithmetic.
    last = values[-WINDOW * SIZE :]
    groups = [last[j * SIZE : (j + 1) * SIZE] for j in range(WINDOW)]
    exact_sum = sum((Fraction(v) for v in last), Fraction(0))
    mean = exact_sum / len(last)
    m2 = sum(((Fraction(v) - mean) ** 2 for v in last), Fraction(0))
    sigma_overall = math.sqrt(m2 / (len(last) - 1))
    sigma_within = math.fsum(max(g) - min(g) for g in groups) / WINDOW / d2(SIZE)
    cpu = float(Fraction(USL) - mean) / (3 * sigma_within)
    cpl = float(mean - Fraction(LSL)) / (3 * sigma_within)
    ppk = min(float(Fraction(USL) - mean), float(mean - Fraction(LSL))) / (3 * sigma_overall)

    s = ch.status()
    assert s["n"] == WINDOW * SIZE and s["subgroups"] == WINDOW and s["state"] == "ok"
    for key, want in [
        ("sigma_within", sigma_within),
        ("sigma_overall", sigma_overall),
        ("cpk", min(cpu, cpl)),
        ("cpu", cpu),
        ("cpl", cpl),
        ("ppk", ppk),
        ("mean", float(mean)),
    ]:
        got = s[key]
        assert isinstance(got, float)
        assert abs(got - want) <= 1e-9 * abs(want), (key, got, want)
    assert elapsed < 180, elapsed  # a sanity bound, not a benchmark (bench/core.py measures speed)
