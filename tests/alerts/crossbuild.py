"""A transcript of one line's documents for a fixed set of random streams, to compare core builds.

Why a separate script: the compiled and the pure core cannot both be imported into one process (one
module name, one loaded module), so ``test_compiled_equals_pure`` computes the transcript in its own process
(whatever build that imports) and in a child started with ``CPKMON_PURE_PYTHON=1``, which runs this file.
The streams are ``test_line_batch``'s (measurements, resent ids, keyed subgroups, inspections, costs, spec
changes and deletions, re-baselines), applied one by one and in random batch splits, with and without numpy,
and restored from checkpoints; every alert, alarm event, status document and checkpoint enters the digest as
JSON text, so a float that differs in its last bit changes it.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test_line_batch beside this file, run as a script

from test_line_batch import OPTIONS, _apply_single, _stream

from cpkmon.alerts.line import LineState, MeasurementInput


def _dump(x: Any) -> str:
    return json.dumps(x, default=repr, sort_keys=False)


def transcript(seeds: range = range(4), n: int = 1200) -> str:
    """sha256 of every document the streams produce, with the count of documents (so an empty run shows)."""
    h = hashlib.sha256()
    docs = 0
    for seed in seeds:
        ops = _stream(seed, n)
        rnd = random.Random(seed)
        for numpy_min in (1, 1000):
            one = LineState("L1", OPTIONS)
            many = LineState("L1", OPTIONS)
            i = 0
            while i < len(ops):
                if ops[i][0] != "m":
                    for st_ in (one, many):
                        ok, alerts = _apply_single(st_, ops[i])
                        h.update(_dump([ok, alerts]).encode())
                        docs += 1 + len(alerts)
                    i += 1
                    continue
                j = i
                while j < len(ops) and j < i + rnd.choice([1, 5, 60, 400]) and ops[j][0] == "m":
                    j += 1
                for op in ops[i:j]:
                    ok, alerts = _apply_single(one, op)
                    h.update(_dump([ok, alerts]).encode())
                    docs += len(alerts)
                batch = [MeasurementInput(*op[1]) for op in ops[i:j]]
                oks, alerts = many.measurements(batch, numpy_min=numpy_min)
                h.update(_dump([oks, alerts, many.take_alarm_events()]).encode())
                for st_ in (one, many):
                    h.update(_dump(st_.status()).encode())
                    h.update(_dump(st_.to_dict()).encode())
                    docs += 2
                if rnd.random() < 0.02:  # restore from the checkpoint and carry on
                    one = LineState.from_dict(json.loads(_dump(one.to_dict())), OPTIONS)
                    many = LineState.from_dict(json.loads(_dump(many.to_dict())), OPTIONS)
                i = j
    return f"{h.hexdigest()} {docs}"


if __name__ == "__main__":
    print(transcript())
