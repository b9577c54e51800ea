"""The ISA-18.2 alarm state machine (``cpkmon.alerts.alarms``): every transition of the design, the
refusals, shelve expiry at an event and at a query's ``now``, require_cause, cause codes — and the property
that the state is a pure function of the ordered event history (prefix + checkpoint + rest = all; replicas
agree; asking for a view or expiring early changes nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpkmon.alerts import alarms as A
from cpkmon.alerts.alarm_kpis import AlarmKpis
from cpkmon.alerts.alarms import AlarmBook, Rejection, Transition, alarm_event, alarm_id
from cpkmon.alerts.model import (
    ALARM_ACKED,
    ALARM_EVENT_KINDS,
    ALARM_NORMAL,
    ALARM_OUT_OF_SERVICE,
    ALARM_RTN_UNACK,
    ALARM_SHELVED,
    ALARM_STATES,
    ALARM_UNACK,
    SHELVE_EXPIRED,
    Alarm,
    AlarmEvent,
    CauseCode,
    validate_strict,
)
from cpkmon.capability.timeutil import parse_ts, to_rfc3339

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z


def ev(kind: str, t: float, *, line: str = "L1", char: str | None = "bore", **fields: Any) -> dict[str, Any]:
    """An event of the control alarm of (line, char) — or of the line's grade alarm when char is None —
    at T0 + t seconds."""
    source = "grade" if char is None else "control"
    if kind == "shelve" and "until" not in fields:
        fields["until"] = T0 + t + 3600
    if isinstance(fields.get("until"), float):
        fields["until"] = to_rfc3339(fields["until"])
    return alarm_event(kind, line=line, source=source, characteristic=char, at=T0 + t, by="op", **fields)


SETUPS: dict[str, list[dict[str, Any]]] = {
    "normal": [],
    "unack": [ev("activate", 0, rules=[1])],
    "acked": [ev("activate", 0, rules=[1]), ev("ack", 10, cause="machine")],
    "rtn_unack": [ev("activate", 0, rules=[1]), ev("clear", 10)],
    "shelved_active": [ev("activate", 0), ev("shelve", 10)],
    "shelved_inactive": [ev("shelve", 10)],
    "oos_active": [ev("activate", 0), ev("out_of_service", 10, reason="maintenance")],
    "oos_inactive": [ev("out_of_service", 10, reason="maintenance")],
}

# (setup, event kind, expected: a state after, a rejection reason, or None for "no transition")
TABLE: list[tuple[str, str, str | None]] = [
    ("normal", "activate", ALARM_UNACK),
    ("normal", "clear", None),
    ("normal", "ack", A.NOT_ACKNOWLEDGEABLE),
    ("normal", "shelve", ALARM_SHELVED),
    ("normal", "unshelve", A.NOT_SHELVED),
    ("normal", "resolve", A.NOT_ACKNOWLEDGED),
    ("normal", "out_of_service", ALARM_OUT_OF_SERVICE),
    ("normal", "in_service", A.NOT_OUT_OF_SERVICE),
    ("unack", "activate", ALARM_UNACK),
    ("unack", "ack", ALARM_ACKED),
    ("unack", "clear", ALARM_RTN_UNACK),
    ("unack", "shelve", ALARM_SHELVED),
    ("unack", "unshelve", A.NOT_SHELVED),
    ("unack", "resolve", A.NOT_ACKNOWLEDGED),
    ("unack", "out_of_service", ALARM_OUT_OF_SERVICE),
    ("unack", "in_service", A.NOT_OUT_OF_SERVICE),
    ("acked", "activate", ALARM_ACKED),
    ("acked", "clear", ALARM_NORMAL),
    ("acked", "ack", A.NOT_ACKNOWLEDGEABLE),
    ("acked", "resolve", ALARM_ACKED),
    ("acked", "shelve", ALARM_SHELVED),
    ("acked", "out_of_service", ALARM_OUT_OF_SERVICE),
    ("acked", "unshelve", A.NOT_SHELVED),
    ("rtn_unack", "ack", ALARM_NORMAL),
    ("rtn_unack", "activate", ALARM_UNACK),
    ("rtn_unack", "clear", None),
    ("rtn_unack", "shelve", ALARM_SHELVED),
    ("rtn_unack", "resolve", A.NOT_ACKNOWLEDGED),
    ("rtn_unack", "out_of_service", ALARM_OUT_OF_SERVICE),
    ("shelved_active", "unshelve", ALARM_UNACK),
    ("shelved_inactive", "unshelve", ALARM_NORMAL),
    ("shelved_active", "activate", ALARM_SHELVED),
    ("shelved_inactive", "activate", ALARM_SHELVED),
    ("shelved_active", "clear", ALARM_SHELVED),
    ("shelved_active", "shelve", ALARM_SHELVED),
    ("shelved_active", "ack", A.NOT_ACKNOWLEDGEABLE),
    ("shelved_active", "out_of_service", ALARM_OUT_OF_SERVICE),
    ("shelved_active", "in_service", A.NOT_OUT_OF_SERVICE),
    ("oos_active", "in_service", ALARM_UNACK),
    ("oos_inactive", "in_service", ALARM_NORMAL),
    ("oos_active", "out_of_service", A.IS_OUT_OF_SERVICE),
    ("oos_active", "shelve", A.IS_OUT_OF_SERVICE),
    ("oos_active", "activate", ALARM_OUT_OF_SERVICE),
    ("oos_active", "clear", ALARM_OUT_OF_SERVICE),
    ("oos_active", "ack", A.NOT_ACKNOWLEDGEABLE),
    ("oos_active", "unshelve", A.NOT_SHELVED),
]


def book_at(setup: str, **kw: Any) -> AlarmBook:
    book = AlarmBook(**kw)
    for e in SETUPS[setup]:
        out = book.apply(e)
        assert isinstance(out, Transition), (setup, e, out)
    return book


@pytest.mark.parametrize(("setup", "kind", "expected"), TABLE, ids=[f"{s}-{k}" for s, k, _ in TABLE])
def test_transition_table(setup: str, kind: str, expected: str | None) -> None:
    book = book_at(setup)
    before = json.dumps(book.to_dict()["alarms"], sort_keys=True)
    extra: dict[str, Any] = {"cause": "machine"} if kind == "ack" else {}
    out = book.apply(ev(kind, 100, **extra))
    if expected is None:
        assert out is None
        return
    if expected in ALARM_STATES:
        assert isinstance(out, Transition), out
        assert out.kind == kind
        assert out.to_state == expected
        assert book.get(alarm_id("L1", "control", "bore")) is not None
        doc = book.view(T0 + 100)[0]
        assert doc.state == expected
        validate_strict(Alarm, doc.model_dump(mode="json"))
    else:
        assert isinstance(out, Rejection), out
        assert out.reason == expected
        assert out.status == 409
        # a rejection changes no alarm (the book's clock still learns the time it was made at)
        assert json.dumps(book.to_dict()["alarms"], sort_keys=True) == before, "a rejection changed an alarm"


def test_every_state_and_event_kind_is_in_the_table() -> None:
    kinds = {k for _, k, _ in TABLE}
    assert kinds == set(ALARM_EVENT_KINDS)
    reached = {e for _, _, e in TABLE if e in ALARM_STATES}
    assert reached == set(ALARM_STATES)


def test_reactivation_while_unacknowledged_is_the_same_alarm() -> None:
    book = AlarmBook()
    first = book.apply(ev("activate", 0, rules=[1], severity="high", value=3.4, limit=3.0, alert_id="a1"))
    assert isinstance(first, Transition) and first.new_occurrence and not first.reactivation
    outs = [book.apply(ev("activate", 10 * i, rules=[i])) for i in (2, 5, 6)]
    assert all(isinstance(o, Transition) and o.reactivation and o.occurrence == 1 for o in outs)
    book.apply(ev("clear", 70))
    back = book.apply(ev("activate", 80, rules=[1]))  # rtn_unack -activate-> unack: same alarm
    assert isinstance(back, Transition)
    assert (back.from_state, back.to_state) == (ALARM_RTN_UNACK, ALARM_UNACK)
    [doc] = book.view(T0 + 80)
    assert (doc.occurrence, doc.reactivations, doc.rules) == (1, 4, [1, 2, 5, 6])
    assert doc.unack_since == to_rfc3339(T0)  # still awaiting the ack it awaited since the first activation
    assert len(book.alarms) == 1
    # acknowledged and back to normal: the next activation is a new occurrence, ack and resolution reset
    assert isinstance(book.apply(ev("ack", 90, cause="method")), Transition)
    assert isinstance(book.apply(ev("clear", 95)), Transition)
    assert book.view()[0].state == ALARM_NORMAL
    assert isinstance(book.apply(ev("resolve", 99, action="re-centred the tool")), Transition)
    assert book.view()[0].resolution is not None
    nxt = book.apply(ev("activate", 200, rules=[3]))
    assert isinstance(nxt, Transition) and nxt.new_occurrence and nxt.occurrence == 2
    [doc] = book.view()
    assert (doc.state, doc.reactivations, doc.rules) == (ALARM_UNACK, 0, [3])
    assert (doc.ack, doc.resolution) == (None, None)


def test_rules_are_attributes_of_one_control_alarm_and_the_grade_alarm_is_per_line() -> None:
    book = AlarmBook()
    book.apply(ev("activate", 0, rules=[1]))
    book.apply(ev("activate", 1, rules=[2]))
    book.apply(ev("activate", 2, char="depth", rules=[1]))
    book.apply(ev("activate", 3, char=None, severity="medium", from_grade={"level": 4, "name": "prevention"},
                  to_grade={"level": 3, "name": "assurance"}))
    docs = {(d.source.kind, d.source.characteristic): d for d in book.view()}
    assert set(docs) == {("control", "bore"), ("control", "depth"), ("grade", None)}
    assert docs[("control", "bore")].rules == [1, 2]
    grade = docs[("grade", None)]
    assert grade.to_grade is not None and grade.to_grade.level == 3
    assert grade.alarm_id == alarm_id("L1", "grade")


def test_shelve_expires_at_the_next_event_dated_until() -> None:
    book = book_at("shelved_active")  # shelved at 10 until 10 + 3600
    until = T0 + 10 + 3600
    out = book.apply(ev("activate", 5000, rules=[2]))
    assert isinstance(out, Transition)
    assert out.expiry is not None
    exp = out.expiry
    assert (exp.kind, exp.from_state, exp.to_state) == (SHELVE_EXPIRED, ALARM_SHELVED, ALARM_UNACK)
    assert exp.at == until
    assert (out.from_state, out.to_state, out.reactivation) == (ALARM_UNACK, ALARM_UNACK, True)
    assert book.view()[0].unack_since == to_rfc3339(until)
    # and an ack after the expiry time is accepted although no event materialized the expiry before it
    book2 = book_at("shelved_active")
    ack = book2.apply(ev("ack", 3700, cause="man"))
    assert isinstance(ack, Transition) and ack.expiry is not None and ack.to_state == ALARM_ACKED
    assert ack.ack_delay == pytest.approx(3700 - 3610)


def test_shelve_expiry_of_an_inactive_alarm_returns_to_normal() -> None:
    book = book_at("shelved_active")
    book.apply(ev("clear", 20))
    out = book.apply(ev("ack", 4000))  # expired to normal at until: nothing to acknowledge then
    assert isinstance(out, Rejection) and out.reason == A.NOT_ACKNOWLEDGEABLE
    assert book.view(T0 + 4000)[0].state == ALARM_NORMAL
    assert book.view()[0].state == ALARM_SHELVED  # the rejection changed nothing


def test_shelve_expiry_at_a_query_now_changes_nothing() -> None:
    book = book_at("shelved_active")
    before = book.to_dict()
    assert book.view(T0 + 3609)[0].state == ALARM_SHELVED
    doc = book.view(T0 + 3610)[0]  # exactly until
    assert doc.state == ALARM_UNACK and doc.shelve is None and doc.unack_since == to_rfc3339(T0 + 3610)
    assert book.to_dict() == before
    assert book.expire(T0 + 100) == []
    [tr] = book.expire(T0 + 9999)
    assert (tr.kind, tr.at, tr.to_state) == (SHELVE_EXPIRED, T0 + 3610, ALARM_UNACK)
    assert book.view()[0].state == ALARM_UNACK


def test_shelve_until_must_be_after_its_time() -> None:
    out = book_at("unack").apply(ev("shelve", 100, until=T0 + 100))
    assert isinstance(out, Rejection) and out.reason == A.UNTIL_NOT_AFTER_AT and out.status == 422
    bad = book_at("unack").apply({**ev("unshelve", 100), "kind": "shelve"})  # no until at all
    assert isinstance(bad, Rejection) and bad.reason == A.INVALID_EVENT


def test_out_of_service_while_active_keeps_tracking_the_condition() -> None:
    book = book_at("oos_active")
    assert isinstance(book.apply(ev("clear", 20)), Transition)
    assert isinstance(book.apply(ev("activate", 30, rules=[4])), Transition)
    doc = book.view()[0]
    assert (doc.state, doc.active, doc.out_of_service is not None) == (ALARM_OUT_OF_SERVICE, True, True)
    back = book.apply(ev("in_service", 40))
    assert isinstance(back, Transition) and back.to_state == ALARM_UNACK and back.unack_since == T0 + 40
    assert book.view()[0].out_of_service is None


def test_require_cause_makes_cause_and_action_mandatory() -> None:
    book = book_at("unack", require_cause=True)
    no_cause = book.apply(ev("ack", 20, comment="looked at it"))
    assert isinstance(no_cause, Rejection) and no_cause.reason == A.CAUSE_REQUIRED and no_cause.status == 422
    assert isinstance(book.apply(ev("ack", 21, cause="measurement", comment="gauge drift")), Transition)
    no_action = book.apply(ev("resolve", 30))
    assert isinstance(no_action, Rejection) and no_action.reason == A.ACTION_REQUIRED
    done = book.apply(ev("resolve", 31, action="recalibrated the gauge"))
    assert isinstance(done, Transition)
    doc = book.view()[0]
    assert doc.ack is not None and (doc.ack.cause, doc.ack.comment) == ("measurement", "gauge drift")
    assert doc.resolution is not None and doc.resolution.action == "recalibrated the gauge"
    # without require_cause both are optional
    lax = book_at("unack")
    assert isinstance(lax.apply(ev("ack", 20)), Transition)
    assert isinstance(lax.apply(ev("resolve", 30)), Transition)


def test_resolve_after_the_occurrence_returned_to_normal() -> None:
    book = book_at("acked")
    book.apply(ev("clear", 20))
    assert book.view()[0].state == ALARM_NORMAL
    out = book.apply(ev("resolve", 30, action="replaced the insert"))
    assert isinstance(out, Transition) and out.from_state == out.to_state == ALARM_NORMAL


def test_cause_codes_default_custom_and_unknown(tmp_path: Path) -> None:
    codes = A.default_cause_codes()
    assert [c.code for c in codes] == ["man", "machine", "material", "method", "measurement", "environment"]
    assert [c.name_zh for c in codes] == ["人", "机", "料", "法", "测", "环"]
    assert A.load_cause_codes(None) == codes
    j = tmp_path / "causes.json"
    j.write_text(json.dumps([{"code": "tool", "name": "Tool wear", "name_zh": "刀具磨损"}, {"code": "setup",
                                                                                          "name": "Setup"}]))
    y = tmp_path / "causes.yaml"
    y.write_text("- code: tool\n  name: Tool wear\n  name_zh: 刀具磨损\n- code: setup\n  name: Setup\n",
                 encoding="utf-8")
    assert A.load_cause_codes(j) == A.load_cause_codes(y)
    custom = A.load_cause_codes(y)
    assert custom[1] == CauseCode(code="setup", name="Setup")
    book = book_at("unack", cause_codes=custom)
    out = book.apply(ev("ack", 20, cause="machine"))
    assert isinstance(out, Rejection) and out.reason == A.UNKNOWN_CAUSE
    assert isinstance(book.apply(ev("ack", 21, cause="tool")), Transition)
    with pytest.raises(ValueError, match="twice"):
        A.parse_cause_codes([{"code": "a", "name": "A"}, {"code": "a", "name": "B"}])
    with pytest.raises(ValueError, match="non-empty"):
        A.parse_cause_codes([])
    with pytest.raises(ValueError, match="#1"):
        A.parse_cause_codes([{"code": "bad code", "name": "A"}])


def test_duplicates_count_once_and_malformed_events_are_refused() -> None:
    book = AlarmBook()
    e = ev("activate", 0)
    assert isinstance(book.apply(e), Transition)
    assert book.apply(e) is None
    assert book.view()[0].reactivations == 0 and book.view()[0].events == 1
    wrong_id = {**ev("activate", 1), "alarm_id": alarm_id("L2", "control", "bore")}
    assert isinstance(out := book.apply(wrong_id), Rejection) and out.reason == A.ALARM_ID_MISMATCH
    no_char = {**ev("activate", 1), "source": {"kind": "control"}}
    assert isinstance(out := book.apply(no_char), Rejection) and out.reason == A.INVALID_EVENT
    unknown = {**ev("activate", 1), "kind": "explode"}
    assert isinstance(out := book.apply(unknown), Rejection) and out.reason == A.UNKNOWN_KIND
    assert isinstance(out := book.apply({"kind": "ack"}), Rejection) and out.reason == A.INVALID_EVENT
    assert book.view()[0].events == 1


def test_check_predicts_apply_without_changing_anything() -> None:
    book = book_at("unack", require_cause=True)
    before = book.to_dict()
    assert isinstance(book.check(ev("ack", 20)), Rejection)
    predicted = book.check(ev("ack", 21, cause="man"))
    assert book.to_dict() == before
    assert predicted == book.apply(ev("ack", 21, cause="man"))
    fresh = AlarmBook()
    refused = fresh.check(ev("ack", 1))
    assert isinstance(refused, Rejection) and refused.reason == A.NOT_ACKNOWLEDGEABLE
    assert refused.event_id == ev("ack", 1)["event_id"]
    assert refused.alarm_id == alarm_id("L1", "control", "bore")
    assert fresh.alarms == {}


def test_event_documents_match_the_model() -> None:
    for kind, extra in (("activate", {"rules": [1, 2], "severity": "high", "value": 1.0, "limit": 0.5,
                                      "alert_id": "x"}),
                        ("ack", {"cause": "man", "comment": "c"}), ("shelve", {"reason": "r"}),
                        ("resolve", {"action": "a"}), ("clear", {})):
        validate_strict(AlarmEvent, ev(kind, 1, **extra))


# ------------------------------------------------------------------------------ the pure-function property

KINDS = ["activate", "activate", "activate", "clear", "clear", "ack", "ack", "shelve", "unshelve", "resolve",
         "out_of_service", "in_service"]


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random event histories over three alarms: monotonic times, shelves of random length, causes and
    actions sometimes missing, re-published duplicates."""
    n = draw(st.integers(min_value=1, max_value=60))
    t = 0.0
    out: list[dict[str, Any]] = []
    for _ in range(n):
        if out and draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(out)))  # a duplicate
            continue
        t += draw(st.sampled_from([0.0, 1.0, 5.0, 30.0, 400.0, 4000.0]))
        kind = draw(st.sampled_from(KINDS))
        char = draw(st.sampled_from(["bore", "depth", None]))
        fields: dict[str, Any] = {}
        if kind == "activate":
            fields["rules"] = draw(st.lists(st.integers(1, 8), max_size=2))
            fields["severity"] = draw(st.sampled_from(["high", "medium", "low"]))
        elif kind == "ack" and draw(st.booleans()):
            fields["cause"] = draw(st.sampled_from(["man", "machine", "nonsense"]))
        elif kind == "resolve" and draw(st.booleans()):
            fields["action"] = "fixed"
        elif kind == "shelve":
            fields["until"] = T0 + t + draw(st.sampled_from([-1.0, 60.0, 600.0, 7200.0]))
        e = ev(kind, t, char=char, line=draw(st.sampled_from(["L1", "L2"])), **fields)
        out.append(e)
    return out


def _invariants(book: AlarmBook, now: float) -> None:
    for doc in book.view(now):
        assert doc.state in ALARM_STATES
        assert (doc.unack_since is not None) == (doc.state in (ALARM_UNACK, ALARM_RTN_UNACK))
        if doc.state in (ALARM_UNACK, ALARM_ACKED):
            assert doc.active
        if doc.state == ALARM_RTN_UNACK:
            assert not doc.active
        assert (doc.shelve is not None) == (doc.state == ALARM_SHELVED)
        assert (doc.out_of_service is not None) == (doc.state == ALARM_OUT_OF_SERVICE)
        assert (doc.active_since is not None) == doc.active


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), cut=st.floats(0, 1), require_cause=st.booleans())
def test_state_is_a_pure_function_of_the_ordered_history(
    history: list[dict[str, Any]], cut: float, require_cause: bool
) -> None:
    k = int(cut * len(history))
    whole = AlarmBook(require_cause=require_cause)
    results = [whole.apply(e) for e in history]
    now = parse_ts(history[-1]["at"]) + 5000

    # a replica agrees, transition for transition
    replica = AlarmBook(require_cause=require_cause)
    assert [replica.apply(e) for e in history] == results
    assert replica.to_dict() == whole.to_dict()

    # prefix, checkpoint through JSON, views and early expiries in between, then the rest: identical
    part = AlarmBook(require_cause=require_cause)
    head = [part.apply(e) for e in history[:k]]
    assert head == results[:k]
    restored = AlarmBook.from_dict(json.loads(json.dumps(part.to_dict())), require_cause=require_cause)
    if k < len(history):
        next_at = parse_ts(history[k]["at"])
        restored.view(next_at + 10_000)  # a view changes nothing
        early = restored.expire(next_at)  # expiries reported early, before the next event
    else:
        early = []
    tail = [restored.apply(e) for e in history[k:]]
    assert [d.model_dump() for d in restored.view(now)] == [d.model_dump() for d in whole.view(now)]
    if not early:  # (an early expiry materializes what ``whole`` still holds as "shelved, until passed")
        assert tail == results[k:]
        assert restored.to_dict() == whole.to_dict()
    _invariants(whole, now)
    _invariants(whole, parse_ts(history[-1]["at"]))

    # the KPIs see the same history whichever way the expiries were packaged
    kpis_whole, kpis_split = AlarmKpis(), AlarmKpis()
    kpis_whole.observe_all(results)
    kpis_split.observe_all(head)
    kpis_split = AlarmKpis.from_dict(json.loads(json.dumps(kpis_split.to_dict())))
    kpis_split.observe_all(early)
    kpis_split.observe_all(tail)
    if not early:  # an early expiry is a transition ``whole`` may hold latent (refused events only after it)
        assert kpis_split.report(now) == kpis_whole.report(now)
