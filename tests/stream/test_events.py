"""The validation fast path accepts only what the pydantic models accept, and normalizes identically."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cpkmon.stream.events import (
    Rejected,
    _fast_inspection,
    _fast_measurement,
    _model_inspection,
    _model_measurement,
    decode,
)

IDENTS = st.one_of(
    st.sampled_from(["L1", "S10", "bore", "site1.area2.line3", "a:b-c_d", "x" * 64]),
    st.sampled_from(["", "L 1", "x" * 65, "é", "a/b"]),  # invalid ones
    st.integers(-3, 3),
    st.none(),
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
TS = st.one_of(
    st.sampled_from(
        [
            "2026-11-20T08:15:02.125Z",
            "2026-11-20T08:15:02Z",
            "2026-11-20T08:15:02+08:00",
            "2026-11-20T08:15:02",
            "yesterday",
            "",
        ]
    ),
    st.integers(-5, 10**15),
    st.floats(allow_nan=False),
    st.booleans(),
)
EVENT_IDS = st.one_of(st.text(min_size=0, max_size=130), st.integers(), st.none())


def _drop_missing(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not _MISSING}


_MISSING = object()


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(_MISSING), strategy)


VALID_M = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=128),
        "ts": st.sampled_from(["2026-11-20T08:15:02.125Z", "2026-11-20T08:15:02Z", 1763626502125]),
        "line": st.sampled_from(["L1", "site1.area2.line3"]),
        "station": st.sampled_from(["S10", "a:b-c_d"]),
        "characteristic": st.sampled_from(["bore", "x" * 64]),
        "value": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**6), 10**6)),
        "subgroup": st.one_of(st.text(min_size=1, max_size=128), st.integers()),
    }
)
VALID_I = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=128),
        "ts": st.sampled_from(["2026-11-20T08:15:02.125Z", 1763626502125]),
        "line": st.just("L1"),
        "station": st.just("S20"),
        "unit_id": st.text(max_size=128),
        "passed": st.booleans(),
        "first_pass": st.booleans(),
        "defects": st.integers(0, 5),
        "opportunities": st.integers(1, 12),
    }
)
ANY = st.one_of(
    NUMBERS,
    IDENTS,
    TS,
    EVENT_IDS,
    st.just(_MISSING),
    st.dictionaries(st.text(max_size=3), NUMBERS, max_size=2),
)


@st.composite
def corrupted(
    draw: Any, valid: st.SearchStrategy[dict[str, Any]], extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A valid event with zero to two fields replaced by anything (or removed): mostly near-misses."""
    doc = dict(draw(valid))
    fields = sorted(doc) + list(extra)
    for name in draw(st.lists(st.sampled_from(fields), max_size=2, unique=True)):
        doc[name] = draw(ANY)
    return _drop_missing(doc)


@st.composite
def per_part(draw: Any) -> dict[str, Any]:
    doc = draw(corrupted(VALID_M))
    if draw(st.booleans()):
        doc.pop("characteristic", None)
        doc.pop("value", None)
        names = st.sampled_from(["a", "b", "x" * 64, "a b", ""])
        doc["values"] = draw(st.dictionaries(names, st.one_of(NUMBERS, st.floats()), max_size=3))
    return doc


MEASUREMENTS = per_part()
INSPECTIONS = corrupted(VALID_I)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@settings(max_examples=1500, deadline=None)
@given(MEASUREMENTS)
def test_measurement_fast_path_is_a_subset_of_the_model(doc: dict[str, Any]) -> None:
    fast = _fast_measurement(doc)
    if fast is None:
        return  # the model decides; nothing to compare
    model = _model_measurement(doc)
    assert not isinstance(model, Rejected), (
        f"fast path accepted what the model rejects: {doc} ({model.reason})"
    )
    assert len(fast) == len(model)
    for f, m in zip(fast, model, strict=True):
        for field in ("event_id", "ts", "line", "station", "characteristic", "value", "subgroup"):
            assert _same(getattr(f, field), getattr(m, field)), (field, doc)


@settings(max_examples=1500, deadline=None)
@given(INSPECTIONS)
def test_inspection_fast_path_is_a_subset_of_the_model(doc: dict[str, Any]) -> None:
    fast = _fast_inspection(doc)
    if fast is None:
        return
    model = _model_inspection(doc)
    assert not isinstance(model, Rejected), (
        f"fast path accepted what the model rejects: {doc} ({model.reason})"
    )
    assert fast == model


def test_the_fast_path_takes_the_common_shapes() -> None:
    """The common shapes must not fall through to the (slower) model: that is the fast path's point."""
    m = {
        "event_id": "m-1",
        "ts": "2026-11-20T08:15:02.125Z",
        "line": "L1",
        "station": "S10",
        "characteristic": "bore",
        "value": 74.0012,
        "subgroup": "s-25",
    }
    assert _fast_measurement(m) is not None
    part = {"event_id": "p-1", "ts": 1763626502125, "line": "L1", "values": {"a": 1.0, "b": 2}}
    assert [ev.event_id for ev in _fast_measurement(part) or []] == ["p-1/a", "p-1/b"]
    i = {
        "event_id": "i-9",
        "ts": 1763626502125,
        "line": "L1",
        "station": "S20",
        "unit_id": "SN-0042",
        "passed": True,
        "first_pass": True,
        "defects": 0,
        "opportunities": 12,
    }
    assert _fast_inspection(i) is not None
    good, bad = decode(
        "measurement", b'[{"event_id":"a","ts":1,"line":"L1","characteristic":"x","value":1}]', 4096
    )
    assert len(good) == 1 and not bad
