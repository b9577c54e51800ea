"""Benchmark of the statistical core's hot path (not a test): ``python bench/core.py [--values N]``.

Why a raw ceiling in the same run: absolute values/s depend on the machine and its load; the ratio to a plain
Python loop that only appends the same floats to a list (the least any per-value Python code can cost) is the
comparable figure. Measured:

* ``Characteristic.add`` per value for subgroups of 5 and for individuals (every value closes a subgroup, so
  it also pays the window merge and the control chart point), with event ids as the worker passes them;
* ``Characteristic.status()`` snapshots per second on a full window (what each status publication costs);
* the batch path beside the event path (issue 11): ``Characteristic.add_batch`` against ``add`` on the same
  values, and — what the worker pays — ``LineState.measurements`` on batches of one line's values against
  ``LineState.measurement`` per value, on the pipeline benchmark's shape (10 characteristics per line,
  subgroups of 5 with explicit ids, and individuals); each with the ratio batch ÷ event;
* state size: a characteristic's checkpoint JSON after N/10, N/3 and N values (flat: O(window), not
  O(stream)) and a line's checkpoint bytes with 10 characteristics.

Every throughput is the best of ``--repeat`` runs, event and batch runs alternating (the machine is shared;
load only ever slows a run down). Batch runs also assert that they left exactly the event path's state.

Prints one line per figure and a JSON summary at the end. Runs in well under 60 s.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from cpkmon.alerts.line import LineState, MeasurementInput
from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

CHARS_PER_LINE = 10


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


def add_batch_rate(
    values: list[float], ids: list[str], ts: list[float], size: int, batch: int
) -> tuple[float, Characteristic]:
    """values/s of ``Characteristic.add_batch`` fed ``batch`` values at a time (slicing included)."""
    ch = Characteristic(
        "L1", "bore", Spec(lsl=73.95, usl=74.05, target=74.0, subgroup_size=size), Options(), station="S10"
    )
    t = time.perf_counter()
    for lo in range(0, len(values), batch):
        ch.add_batch(values[lo:lo + batch], ts[lo:lo + batch], ids[lo:lo + batch], None, None)
    return len(values) / (time.perf_counter() - t), ch


def line_inputs(values: list[float], ids: list[str], ts: list[float], size: int) -> list[MeasurementInput]:
    """One line's measurements as the worker applies them: characteristics in turn, value by value, ``size``
    consecutive values of a characteristic sharing a subgroup id (none for individuals), the spec object
    the registry holds, one station per characteristic."""
    specs = [Spec(lsl=73.95, usl=74.05, target=74.0, subgroup_size=size) for _ in range(CHARS_PER_LINE)]
    out = []
    for i, (v, e, s) in enumerate(zip(values, ids, ts, strict=True)):
        c = i % CHARS_PER_LINE
        k = i // CHARS_PER_LINE
        sg = None if size == 1 else str(k // size)
        out.append(MeasurementInput(f"c{c:02d}", specs[c], f"S{c}", v, s, e, sg, s + 0.05))
    return out


def line_rates(items: list[MeasurementInput], batch: int) -> tuple[float, float, LineState, LineState]:
    """values/s of ``LineState.measurement`` per value and of ``LineState.measurements`` per ``batch``."""
    ev = LineState("L1", Options())
    measurement = ev.measurement
    t = time.perf_counter()
    for m in items:
        measurement(*m)
    event_rate = len(items) / (time.perf_counter() - t)
    bt = LineState("L1", Options())
    t = time.perf_counter()
    for lo in range(0, len(items), batch):
        bt.measurements(items[lo:lo + batch])
    batch_rate = len(items) / (time.perf_counter() - t)
    return event_rate, batch_rate, ev, bt


def state_bytes(
    values: list[float], ids: list[str], ts: list[float], counts: tuple[int, ...]
) -> list[tuple[int, int]]:
    """Checkpoint JSON bytes of a characteristic (subgroups of 5) after each of ``counts`` values: flat once
    the window and the bounded chart histories are full, whatever the stream length."""
    sizes = []
    for k in counts:
        spec = Spec(lsl=73.95, usl=74.05, subgroup_size=5)
        ch = Characteristic("L1", "bore", spec, Options(), station="S10")
        ch.add_batch(values[:k], ts[:k], ids[:k])
        sizes.append((k, len(json.dumps(ch.to_dict()))))
    return sizes


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
    ap.add_argument(
        "--profile", choices=("event", "batch"),
        help="only run one line's values (10 characteristics, subgroups of 5) through LineState.measurement "
        "per value (event) or LineState.measurements per 1000 (batch), for py-spy",
    )
    ap.add_argument("--line-values", type=int, default=50_000,
                    help="values per LineState run (default 50000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure, best taken (default 3)")
    args = ap.parse_args()
    values, ids, ts = _values(args.values)
    if args.profile:
        items = line_inputs(values, ids, ts, 5)
        st = LineState("L1", Options())
        t = time.perf_counter()
        if args.profile == "event":
            for m in items:
                st.measurement(*m)
        else:
            for lo in range(0, len(items), 1000):
                st.measurements(items[lo:lo + 1000])
        print(f"{args.profile}: {len(items) / (time.perf_counter() - t):,.0f} values/s")
        return
    ceiling = max(raw_ceiling(values) for _ in range(3))
    import cpkmon

    core = "compiled (mypyc)" if cpkmon.compiled_core() else "pure Python"
    print(f"core: {core} ({Path(cpkmon.__file__).parent})")
    print(f"raw ceiling (list.append loop):        {ceiling:>12,.0f} values/s")
    results: dict[str, float] = {"raw_ceiling_values_per_s": ceiling}
    best = max  # the least disturbed of ``--repeat`` runs: the machine is shared, noise only slows down
    for size, label in ((5, "subgroups of 5"), (1, "individuals")):
        tag = "size5" if size == 5 else "individuals"
        rates: dict[str, list[float]] = {}
        ch: Characteristic | None = None
        for _ in range(args.repeat):  # event and batch runs alternate, so load drifts hit both alike
            rate, ch = add_rate(values, ids, ts, size)
            rates.setdefault("add", []).append(rate)
            for batch in (50, 1000):
                brate, bch = add_batch_rate(values, ids, ts, size, batch)
                assert json.dumps(bch.to_dict()) == json.dumps(ch.to_dict()), "batch path state differs"
                rates.setdefault(f"add_batch{batch}", []).append(brate)
        assert ch is not None and ch.values_total == len(values) and ch.state == "ok"
        rate = best(rates["add"])
        print(f"Characteristic.add, {label:<15} {rate:>12,.0f} values/s   "
              f"ratio to ceiling {rate / ceiling:.4f}")
        results[f"add_{tag}_values_per_s"] = rate
        results[f"add_{tag}_ratio"] = rate / ceiling
        for batch in (50, 1000):
            brate = best(rates[f"add_batch{batch}"])
            print(f"Characteristic.add_batch({batch:>4}), {label:<15} {brate:>9,.0f} values/s   "
                  f"batch / event {brate / rate:.2f}")
            results[f"add_batch{batch}_{tag}_values_per_s"] = brate
            results[f"add_batch{batch}_{tag}_over_add"] = brate / rate
        srate = status_rate(ch)
        print(f"Characteristic.status(), {label:<15} {srate:>9,.0f} snapshots/s")
        results[f"status_{tag}_per_s"] = srate
        k = min(len(values), args.line_values)
        items = line_inputs(values[:k], ids[:k], ts[:k], size)
        lrates: dict[int, list[float]] = {}
        erates: list[float] = []
        bt: LineState | None = None
        for _ in range(args.repeat):
            for batch in (100, 1000):
                erate, lrate, ev, bt = line_rates(items, batch)
                assert json.dumps(ev.to_dict()) == json.dumps(bt.to_dict()), "batch path line state differs"
                erates.append(erate)
                lrates.setdefault(batch, []).append(lrate)
        assert bt is not None
        erate = best(erates)
        results[f"line_measurement_{tag}_values_per_s"] = erate
        print(f"LineState.measurement, 10 chars, {label:<15} {erate:>9,.0f} values/s")
        for batch in (100, 1000):
            lrate = best(lrates[batch])
            print(f"LineState.measurements({batch:>4}), {label:<15} {lrate:>9,.0f} values/s   "
                  f"batch / event {lrate / erate:.2f}")
            results[f"line_measurements{batch}_{tag}_values_per_s"] = lrate
            results[f"line_measurements{batch}_{tag}_over_measurement"] = lrate / erate
        cp = len(json.dumps(bt.to_dict()))
        results[f"line_checkpoint_bytes_{tag}"] = cp
        print(f"line checkpoint ({label}, 10 characteristics, {k:,} values): {cp:,} bytes")
    sizes = state_bytes(values, ids, ts, (len(values) // 10, len(values) // 3, len(values)))
    print("characteristic checkpoint (subgroups of 5) after "
          + ", ".join(f"{n:,} values: {b:,} bytes" for n, b in sizes))
    for n, b in sizes:
        results[f"char_state_bytes_after_{n}"] = b
    print(json.dumps(results))

if __name__ == "__main__":
    main()
