"""A line's measurements applied in batches equal them applied one by one (issue 11, determinism).

``LineState.measurements`` applies a batch characteristic by characteristic, yet must produce the same
alerts (out-of-control *and* grade alerts, ids included), the same alarm events (``take_alarm_events``:
control and grade activations and clears, ids included), the same audit records (``take_audit_records``:
limit freezes, re-baselines and alarm transitions, seq and hash included), the same status documents and the
same checkpoints
as ``LineState.measurement`` value by value — for any split of the stream into batches, with inspections,
quality costs, spec changes, spec deletions, re-baselines and resent ids in between. Everything is compared as
JSON text, so a float that differs in its last bit fails.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpkmon.alerts.audit import Stored, verify
from cpkmon.alerts.line import LineState, MeasurementInput
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

T0 = 1_763_626_502.0
SPECS: dict[str, list[Spec]] = {
    "bore": [Spec(lsl=9.0, usl=11.0, target=10.0, subgroup_size=4),
             Spec(lsl=9.2, usl=10.8, target=10.0, subgroup_size=3)],
    "depth": [Spec(lsl=4.0, usl=6.0, subgroup_size=1), Spec(lsl=4.0, usl=6.0, subgroup_size=1, center=5.0,
                                                           sigma=0.1)],
    "flat": [Spec(usl=1.0, subgroup_size=2), Spec(usl=0.8, subgroup_size=5)],
}
CENTRE = {"bore": 10.0, "depth": 5.0, "flat": 0.5}
OPTIONS = Options(window_subgroups=6, min_subgroups=3, confirm_evaluations=2, min_units=5, yield_window=20,
                  run_rules=(1, 2, 3, 4, 5, 6, 7, 8), chart_points=20)

Op = tuple[str, tuple[Any, ...]]


def _stream(seed: int, n: int) -> list[Op]:
    """Random events of one line: measurements in drifting regimes (keyed and unkeyed subgroups, resent
    ids), inspections, costs, spec changes, spec deletions and re-baselines."""
    rnd = random.Random(seed)
    spec_at = {name: specs[0] for name, specs in SPECS.items()}
    shift = dict.fromkeys(SPECS, 0.0)
    spread = dict.fromkeys(SPECS, 0.15)
    sent: list[str] = []
    ops: list[Op] = []
    key = 0
    for i in range(n):
        ts = T0 + i * 0.25
        det = T0 + 1.0 + i * 0.25
        r = rnd.random()
        if r < 0.04:
            name = rnd.choice(list(SPECS))
            shift[name] = rnd.choice([-0.9, -0.4, 0.0, 0.0, 0.3, 0.7])
            spread[name] = rnd.choice([0.02, 0.15, 0.3, 0.6])
            continue
        if r < 0.06:
            name = rnd.choice(list(SPECS))
            spec_at[name] = rnd.choice(SPECS[name])  # often the same spec again: not a change
            continue
        if r < 0.065:
            ops.append(("retire", (rnd.choice(list(SPECS)),)))
            continue
        if r < 0.075:
            ops.append(("rebaseline", (rnd.choice(list(SPECS)), det)))
            continue
        if r < 0.16:
            passed = rnd.random() < 0.9
            ops.append(("inspection", (rnd.choice(["S1", "S2"]), passed, rnd.random() < 0.9,
                                       rnd.randint(0, 2), 10, ts, f"i{i}", det)))
            continue
        if r < 0.17:
            ops.append(("cost", (rnd.uniform(0, 50), rnd.uniform(0, 20), 1000.0, ts, f"q{i}", det)))
            continue
        name = rnd.choice(list(SPECS))
        value = rnd.gauss(CENTRE[name] + shift[name], spread[name])
        if rnd.random() < 0.02:
            value = CENTRE[name]
        sg: str | None = None
        if name == "flat" and rnd.random() < 0.5:
            if rnd.random() < 0.3:
                key += 1
            sg = f"k{key}"
        eid = f"m{i}"
        if sent and rnd.random() < 0.03:
            eid = sent[rnd.randrange(max(0, len(sent) - 30), len(sent))]  # a producer resend
        sent.append(eid)
        station = rnd.choice([None, "S1", "S2"])
        ops.append(("m", (name, spec_at[name], station, value, ts, eid, sg, det)))
    return ops


def _apply_single(st_: LineState, op: Op) -> tuple[list[bool], list[Any]]:
    """Apply one op; the alerts it returns are followed by the alarm events and the audit records it
    produced."""
    ok, alerts = _apply_op(st_, op)
    return ok, [*alerts, *st_.take_alarm_events(), *st_.take_audit_records()]


def _split(docs: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """(alerts, alarm events, audit records) of a mixed list, each in its order."""
    return ([a for a in docs if "event_id" not in a and "chain" not in a],
            [a for a in docs if "event_id" in a], [a for a in docs if "chain" in a])


def _apply_op(st_: LineState, op: Op) -> tuple[list[bool], list[Any]]:
    kind, a = op
    if kind == "m":
        ok, alerts = st_.measurement(*a)
        return [ok], alerts
    if kind == "inspection":
        ok, alerts = st_.inspection(*a)
        return [ok], alerts
    if kind == "cost":
        ok, alerts = st_.quality_cost(*a)
        return [ok], alerts
    if kind == "retire":
        return [st_.retire(a[0])], []
    got = st_.rebaseline(*a)
    return [got is not None], got or []


def _dump(x: Any) -> str:
    return json.dumps(x, default=repr)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(50, 700),
    split_seed=st.integers(0, 1000),
    numpy_min=st.sampled_from([1, 1000]),
    restore_at=st.integers(-1, 6),
)
def test_batches_equal_one_by_one(
    seed: int, n: int, split_seed: int, numpy_min: int, restore_at: int
) -> None:
    ops = _stream(seed, n)
    ref = LineState("L1", OPTIONS)
    got = LineState("L1", OPTIONS)
    rnd = random.Random(split_seed)
    i = 0
    boundary = 0
    while i < len(ops):
        if ops[i][0] != "m":
            a1, al1 = _apply_single(ref, ops[i])
            a2, al2 = _apply_single(got, ops[i])
            assert a1 == a2 and _dump(al1) == _dump(al2)
            i += 1
            continue
        j = i
        limit = i + rnd.choice([1, 2, 5, 17, 60, 400])
        while j < len(ops) and j < limit and ops[j][0] == "m":
            j += 1
        want_ok: list[bool] = []
        want_alerts: list[Any] = []
        for op in ops[i:j]:
            ok, alerts = _apply_single(ref, op)
            want_ok += ok
            want_alerts += alerts
        batch = [MeasurementInput(*op[1]) for op in ops[i:j]]
        ok2, alerts2 = got.measurements(batch, numpy_min=numpy_min)
        assert ok2 == want_ok
        # alerts first, then the batch's alarm events and audit records, each in their order, compared apart
        want_only, want_events, want_audit = _split(want_alerts)
        assert _dump(alerts2) == _dump(want_only)
        assert _dump(got.take_alarm_events()) == _dump(want_events)
        assert _dump(got.take_audit_records()) == _dump(want_audit)
        assert _dump(got.status()) == _dump(ref.status())
        assert _dump(got.to_dict()) == _dump(ref.to_dict())
        boundary += 1
        if boundary == restore_at:  # restore from the checkpoint and carry on: still identical
            ref = LineState.from_dict(json.loads(_dump(ref.to_dict())), OPTIONS)
            got = LineState.from_dict(json.loads(_dump(got.to_dict())), OPTIONS)
        i = j
    assert _dump(got.status()) == _dump(ref.status())
    assert _dump(got.to_dict()) == _dump(ref.to_dict())


def test_a_stream_exercises_alerts_and_grade_changes() -> None:
    """The generator is not vacuous: its streams raise out-of-control and grade alerts, and the batched
    application reproduces them with the same ids."""
    kinds: set[str] = set()
    for seed in range(6):
        ops = _stream(seed, 1500)
        ref = LineState("L1", OPTIONS)
        got = LineState("L1", OPTIONS)
        want: list[Any] = []
        have: list[Any] = []
        run: list[MeasurementInput] = []
        for op in [*ops, ("end", ())]:
            if op[0] == "m":
                want += _apply_single(ref, op)[1]
                run.append(MeasurementInput(*op[1]))
                continue
            have += got.measurements(run)[1] + got.take_alarm_events() + got.take_audit_records()
            run = []
            if op[0] != "end":
                want += _apply_single(ref, op)[1]
                have += _apply_single(got, op)[1]
        have_alerts, have_events, have_audit = _split(have)
        want_alerts, want_events, want_audit = _split(want)
        assert [a["alert_id"] for a in have_alerts] == [a["alert_id"] for a in want_alerts]
        assert _dump(have_alerts) == _dump(want_alerts)
        assert _dump(have_events) == _dump(want_events)
        assert _dump(have_audit) == _dump(want_audit)
        assert verify([Stored(0, i, _dump(r).encode()) for i, r in enumerate(have_audit)]) == []
        assert [r["seq"] for r in have_audit] == list(range(1, len(have_audit) + 1))
        kinds |= {a["type"] for a in want_alerts}
        kinds |= {f'{e["source"]["kind"]}:{e["kind"]}' for e in want_events}
        kinds |= {r["what"] for r in want_audit}
    assert {"out_of_control", "grade_degraded", "grade_recovered"} <= kinds
    assert {"control:activate", "control:clear", "grade:activate", "grade:clear"} <= kinds
    assert {"limits.freeze", "limits.rebaseline_applied", "alarm.activate", "alarm.clear"} <= kinds
