"""Determinism does not depend on batching (issue 11), and the machine's numbers are SPEC §4's.

Random streams (specs, a spec change, per-part measurements with drift, inspections, costs, producer resends,
Kafka redeliveries, bad input, a characteristic without a spec, a foreign line, a re-baseline) applied one
record at a time and in random batch splits give byte-identical status documents, alerts (ids included), alarm
events (ids included), audit records (per chain, seq and hash included), dead letters, forwards, counts and
``values_total``; and each stable characteristic's
window equals an independent numpy/scipy recompute of SPEC §4 over the subgroups the stream put in it, to 1e-9
relative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpkmon.stream.machine import Effects, PartitionMachine
from cpkmon.stream.specs import SpecRegistry
from tests.capability.test_streaming_equals_batch import _constants
from tests.capability.test_streaming_equals_batch import batch as recompute
from tests.stream.streams import OPTIONS, Stream, build, by_line, drive, machine, statuses


def _run(stream: Stream, cuts: set[int] | None, batch: bool = True) -> tuple[PartitionMachine, Effects]:
    specs = SpecRegistry()
    m = machine(specs, batch=batch)
    return m, drive(m, specs, stream.items, cuts)


def _by_chain(records: list[dict[str, Any]]) -> dict[str, list[bytes]]:
    """Audit records per chain, in order (each line's chain is ordered; across lines, like alerts, not)."""
    out: dict[str, list[bytes]] = {}
    for r in records:
        out.setdefault(str(r["chain"]), []).append(orjson.dumps(r))
    return out


def _fingerprint(m: PartitionMachine, eff: Effects) -> dict[str, Any]:
    return {
        "status": statuses(m),
        "alerts": by_line(eff.alerts),
        "alarm_events": by_line(eff.alarm_events),
        "audit": _by_chain(eff.audit),
        "dead_letters": [orjson.dumps(d, default=str) for d in eff.dead_letters],
        "forwards": eff.forwards,
        "counts": dict(eff.counts),
        "values_total": {
            (line, name): c.values_total
            for line, st_ in m.lines.items()
            for name, c in sorted(st_.characteristics.items())
        },
        "checkpoint": m.checkpoint(),
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    subgroups=st.integers(12, 45),
    dup_rate=st.sampled_from([0.0, 0.05, 0.15]),
    bad_rate=st.sampled_from([0.0, 0.03, 0.1]),
    data=st.data(),
)
def test_any_batch_split_gives_identical_documents_alerts_and_counts(
    seed: int, subgroups: int, dup_rate: float, bad_rate: float, data: st.DataObject
) -> None:
    stream = build(seed, subgroups=subgroups, dup_rate=dup_rate, bad_rate=bad_rate)
    n = len(stream.items)
    # the reference: one record at a time, every event through LineState.measurement/inspection/…
    one_by_one = _fingerprint(*_run(stream, None, batch=False))
    cuts = data.draw(st.sets(st.integers(0, n - 1), max_size=max(1, n // 3)), label="cuts")
    assert _fingerprint(*_run(stream, cuts)) == one_by_one  # random splits, measurements per line in batch
    assert _fingerprint(*_run(stream, cuts, batch=False)) == one_by_one  # random splits, event by event
    assert _fingerprint(*_run(stream, set())) == one_by_one  # the whole stream as one batch


def test_the_streams_raise_what_the_property_is_about() -> None:
    """The generator is not vacuous: grade and out-of-control alerts, holds, duplicates, dead letters."""
    _, eff = _run(build(11, subgroups=40, dup_rate=0.1, bad_rate=0.1), set())
    types = {str(a["type"]) for a in eff.alerts}
    assert {"grade_degraded", "out_of_control"} <= types
    outcomes = {outcome for (_, outcome) in eff.counts}
    assert {"accepted", "duplicate", "dead_letter", "rekeyed"} <= outcomes
    assert any(d["reason"].startswith("no_spec") for d in eff.dead_letters)
    alarm = {(e["source"]["kind"], e["kind"]) for e in eff.alarm_events}
    assert {("control", "activate"), ("grade", "activate")} <= alarm
    audited = {r["what"] for r in eff.audit}
    assert {"limits.freeze", "limits.rebaseline_applied", "alarm.activate"} <= audited
    assert len([r for r in eff.audit if r["what"].startswith("alarm.")]) == len(eff.alarm_events)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), subgroups=st.integers(10, 40), data=st.data())
def test_capability_numbers_equal_the_spec_recompute(
    shared_data: Path, seed: int, subgroups: int, data: st.DataObject
) -> None:
    stream = build(seed, subgroups=subgroups)
    cuts = data.draw(st.sets(st.integers(0, len(stream.items) - 1)), label="cuts")
    m, _ = _run(stream, cuts)
    D2, D3 = _constants(shared_data)
    for line, char in sorted(stream.stable):
        status = next(c for c in m.lines[line].status()["characteristics"] if c["characteristic"] == char)
        closed = stream.subgroups[(line, char)][:-1]  # the last subgroup is still open
        window = [np.array([v for _, v in g]) for g in closed[-OPTIONS.window_subgroups :]]
        want = recompute(window, OPTIONS.sigma_method, D2, D3, 5)
        assert status["n"] == want["n"]
        for k, v in want.items():
            if k == "n":
                continue
            got = status[k]
            if v is None:
                assert got is None, (k, got)
            else:
                assert abs(float(got) - v) <= 1e-9 * abs(v), f"{line}/{char} {k}: {got!r} vs {v!r}"
