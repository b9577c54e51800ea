"""Subgroup assembly: explicit ids, the 25-value cap, fixed size, individuals, flush, round trip."""

from __future__ import annotations

from cpkmon.capability.subgroups import SubgroupAssembler


def test_explicit_ids_close_on_new_id() -> None:
    a = SubgroupAssembler(5)
    assert a.add(1.0, 1.0, "a", "s1") == []
    assert a.add(2.0, 2.0, "b", "s1") == []
    out = a.add(3.0, 3.0, "c", "s2")
    assert len(out) == 1 and out[0].key == "s1" and out[0].moments.n == 2
    assert out[0].event_ids == ("a", "b") and out[0].event_time == 2.0
    assert a.holds("c") and not a.holds("a")
    last = a.flush()
    assert last is not None and last.key == "s2" and last.moments.n == 1
    assert a.flush() is None


def test_explicit_ids_compare_as_strings_and_cap_at_25() -> None:
    a = SubgroupAssembler(5)
    closed = []
    for i in range(30):
        closed += a.add(float(i), float(i), None, 7 if i % 2 else "7")
    assert [c.moments.n for c in closed] == [25]
    assert a.open_count == 5


def test_fixed_size_and_individuals() -> None:
    a = SubgroupAssembler(4)
    closed = []
    for i in range(10):
        closed += a.add(float(i), float(i), f"e{i}")
    assert [c.moments.n for c in closed] == [4, 4] and a.open_count == 2
    assert closed[1].first == 4.0 and closed[1].last == 7.0 and closed[1].moments.range == 3.0
    ind = SubgroupAssembler(1)
    assert [len(ind.add(float(i), 0.0, None)) for i in range(3)] == [1, 1, 1]


def test_id_then_no_id_closes() -> None:
    a = SubgroupAssembler(3)
    a.add(1.0, 0.0, None, "x")
    out = a.add(2.0, 0.0, None)
    assert len(out) == 1 and out[0].key == "x"
    out = a.add(3.0, 0.0, None, "y")
    assert len(out) == 1 and out[0].key is None and out[0].moments.n == 1


def test_round_trip() -> None:
    a = SubgroupAssembler(5)
    for i in range(3):
        a.add(float(i) * 0.1, float(i), f"e{i}", "g")
    b = SubgroupAssembler.from_dict(a.to_dict())
    ca, cb = a.add(9.0, 9.0, "z", "g"), b.add(9.0, 9.0, "z", "g")
    assert ca == cb == []
    fa, fb = a.flush(), b.flush()
    assert fa is not None and fb is not None
    assert fa.moments == fb.moments and fa.event_ids == fb.event_ids and fa.first == fb.first


def test_values_kept_in_arrival_order_and_round_trip() -> None:
    """Each subgroup keeps its values (for the moving ranges inside it and the capability histogram)."""
    a = SubgroupAssembler(3)
    closed = []
    for i, v in enumerate([0.3, -0.1, 0.2, 0.5, 0.4]):
        closed += a.add(v, float(i), f"e{i}")
    assert [c.values for c in closed] == [(0.3, -0.1, 0.2)]
    b = SubgroupAssembler.from_dict(a.to_dict())
    fa, fb = a.flush(), b.flush()
    assert fa is not None and fb is not None and fa.values == fb.values == (0.5, 0.4)
    ind = SubgroupAssembler(1)
    assert [c.values for c in ind.add(1.5, 0.0, None)] == [(1.5,)]
    # state written before values were kept: the restored open subgroup has none (and gets none)
    a.add(0.1, 9.0, "x", "g")
    old = a.to_dict()
    assert isinstance(old["open"], dict)
    del old["open"]["values"]
    c = SubgroupAssembler.from_dict(old)
    c.add(0.2, 10.0, "y", "g")
    last = c.flush()
    assert last is not None and last.values is None and last.moments.n == 2
