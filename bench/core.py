"""Benchmark of the statistical core's hot path (not a test): ``python bench/core.py [--values N]``.

Why a raw ceiling in the same run: absolute values/s depend on the machine and its load; the ratio to a plain
Python loop that only appends the same floats to a list (the least any per-value Python code can cost) is the
comparable figure. Measured:

* ``Characteristic.add`` per value for subgroups of 5 and for individuals (every value closes a subgroup, so
  it also pays the window merge and the control chart point), with event ids as the worker passes them;
* ``Characteristic.status()`` snapshots per second on a full window (what each status publication costs).

Prints one line per figure and a JSON summary at the end. Runs in well under 60 s.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec


def _values(n: int, seed: int = 1) -> tuple[list[float], list[str], list[float]]:
    rnd = random.Random(seed)
    values = [74.0 + rnd.gauss(0.0, 0.01) for _ in range(n)]
    ids = [f"m-{i:08d}" for i in range(n)]
    ts = [1_763_626_502.0 + i * 0.001 for i in range(n)]
    return values, ids, ts


def raw_ceiling(values: list[float]) -> float:
    """values/s of a plain loop appending each value to a list."""
    out: list[float] = []
    append = out.append
    t = time.perf_counter()
    for v in values:
        append(v)
    return len(values) / (time.perf_counter() - t)


def add_rate(values: list[float], ids: list[str], ts: list[float], size: int) -> tuple[float, Characteristic]:
    ch = Characteristic(
        "L1", "bore", Spec(lsl=73.95, usl=74.05, target=74.0, subgroup_size=size), Options(), station="S10"
    )
    add = ch.add
    t = time.perf_counter()
    for v, e, s in zip(values, ids, ts, strict=True):
        add(v, s, e)
    return len(values) / (time.perf_counter() - t), ch


def status_rate(ch: Characteristic, seconds: float = 1.5) -> float:
    k = 0
    t = time.perf_counter()
    end = t + seconds
    while time.perf_counter() < end:
        for _ in range(100):
            ch.status()
        k += 100
    return k / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--values", type=int, default=300_000, help="values per measured run (default 300000)")
    args = ap.parse_args()
    values, ids, ts = _values(args.values)
    ceiling = max(raw_ceiling(values) for _ in range(3))
    print(f"raw ceiling (list.append loop):        {ceiling:>12,.0f} values/s")
    results: dict[str, float] = {"raw_ceiling_values_per_s": ceiling}
    for size, label in ((5, "subgroups of 5"), (1, "individuals")):
        rate, ch = add_rate(values, ids, ts, size)
        assert ch.values_total == len(values) and ch.state == "ok"
        print(
            f"Characteristic.add, {label:<15} {rate:>12,.0f} values/s   ratio to ceiling {rate / ceiling:.4f}"
        )
        results[f"add_{'size5' if size == 5 else 'individuals'}_values_per_s"] = rate
        results[f"add_{'size5' if size == 5 else 'individuals'}_ratio"] = rate / ceiling
        srate = status_rate(ch)
        print(f"Characteristic.status(), {label:<15} {srate:>9,.0f} snapshots/s")
        results[f"status_{'size5' if size == 5 else 'individuals'}_per_s"] = srate
    print(json.dumps(results))


if __name__ == "__main__":
    main()
