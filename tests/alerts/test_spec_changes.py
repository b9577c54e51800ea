"""Spec changes, deletions and re-additions never lose, suppress or collide out-of-control alerts (issue 9,
finding 1), and ``values_total`` counts since the start (SPEC §8)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cpkmon.alerts.line import LineState
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

T0 = 1_763_626_502.0
KNOWN = Spec(lsl=9.0, usl=11.0, target=10.0, subgroup_size=1, center=10.0, sigma=0.1)


class Feed:
    def __init__(self) -> None:
        self.line = LineState("L1", Options())
        self.k = 0
        self.alerts: list[dict[str, Any]] = []

    def value(self, spec: Spec, x: float, name: str = "bore") -> list[dict[str, Any]]:
        self.k += 1
        t = T0 + self.k
        accepted, alerts = self.line.measurement(name, spec, "S10", x, t, f"m{self.k}", None, t)
        assert accepted
        self.alerts += alerts
        return alerts

    def ooc(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a for a in alerts if a["type"] == "out_of_control"]


def test_outliers_after_a_target_change_alert() -> None:
    """The reproduced case: individuals, known centre/σ; only the target changes; outliers at new subgroups 35
    and 91 raised no alert although the chart recorded the violation."""
    f = Feed()
    for i in range(400):
        f.value(KNOWN, 10.0 + (0.5 if i in (100, 300) else 0.01 * (i % 3 - 1)))
    before = f.ooc(f.alerts)
    assert len(before) == 2
    changed = Spec(lsl=9.0, usl=11.0, target=10.05, subgroup_size=1, center=10.0, sigma=0.1)
    raised = []
    for i in range(1, 120):
        raised += f.ooc(f.value(changed, 10.5 if i in (35, 91) else 10.0 + 0.01 * (i % 3 - 1)))
    assert [a["rule"] for a in raised] == [1, 1]
    ids = [a["alert_id"] for a in f.alerts]
    assert len(ids) == len(set(ids)), "an alert after the change took the id of one before it"
    assert f.line.characteristics["bore"].values_total == 519  # counted since the start, not since the change


def test_delete_and_re_add_continue_numbering_and_counting() -> None:
    f = Feed()
    for i in range(60):
        f.value(KNOWN, 10.5 if i == 30 else 10.0)
    assert len(f.ooc(f.alerts)) == 1
    assert f.line.retire("bore")
    assert "bore" not in f.line.characteristics
    assert all(c["characteristic"] != "bore" for c in f.line.status()["characteristics"])
    for i in range(40):  # the same spec re-added: the old tracker must not suppress this outlier
        f.value(KNOWN, 10.5 if i == 5 else 10.0)
    ooc = f.ooc(f.alerts)
    assert len(ooc) == 2 and len({a["alert_id"] for a in ooc}) == 2
    assert f.line.characteristics["bore"].values_total == 100
    assert f.line.characteristics["bore"].seq == 100  # subgroup numbering continued


def test_retired_numbering_survives_a_checkpoint() -> None:
    f = Feed()
    for _ in range(30):
        f.value(KNOWN, 10.0)
    f.line.retire("bore")
    restored = LineState.from_dict(f.line.to_dict(), Options())
    f.line = restored
    f.value(KNOWN, 10.0)
    assert restored.characteristics["bore"].values_total == 31


def test_a_rebaseline_that_flags_a_subgroup_again_is_a_new_alert() -> None:
    """Phase I of a re-baseline may flag a subgroup that already fired against the old limits: the limits
    epoch in the id keeps the two alerts apart."""
    spec = Spec(lsl=9.0, usl=11.0, subgroup_size=1)
    f = Feed()
    for i in range(40):
        f.value(spec, 10.0 + 0.01 * ((i * 7) % 5 - 2) + (0.5 if i == 30 else 0.0))
    first = [a for a in f.ooc(f.alerts) if a["rule"] == 1]
    assert first
    again = f.line.rebaseline("bore")
    assert again is not None
    ids = [a["alert_id"] for a in f.alerts + again]
    assert len(ids) == len(set(ids))


ops = st.lists(
    st.one_of(
        st.tuples(st.just("normal"), st.integers(1, 30)),
        st.just(("outlier", 0)),
        st.just(("change", 0)),
        st.just(("delete", 0)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops)
def test_random_spec_change_sequences(ops: list[tuple[str, int]]) -> None:
    """After any sequence of spec changes, deletions and re-additions: the first outlier under a (new) spec
    alerts, no alert id repeats, and values_total counts every accepted value."""
    f = Feed()
    target = 10.0
    spec = KNOWN
    accepted = 0
    fresh = True  # no rule-1 firing since the spec was (re)set
    for op, n in ops:
        if op == "normal":
            for i in range(n):
                f.value(spec, 10.0 + 0.01 * (i % 3 - 1))
                accepted += 1
        elif op == "outlier":
            alerts = f.ooc(f.value(spec, 10.6))
            accepted += 1
            if fresh:
                assert [a["rule"] for a in alerts] == [1]
            fresh = False
        elif op == "change":
            target += 0.01
            spec = Spec(lsl=9.0, usl=11.0, target=target, subgroup_size=1, center=10.0, sigma=0.1)
            fresh = True
        else:
            f.line.retire("bore")
            fresh = True
        char = f.line.characteristics.get("bore")
        if char is not None:
            assert char.values_total == accepted
    ids = [a["alert_id"] for a in f.alerts]
    assert len(ids) == len(set(ids))
