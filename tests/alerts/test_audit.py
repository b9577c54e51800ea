"""The audit trail's hash chains without a broker: building, and naming every removed, altered, reordered or
forked record by partition, chain, offset and seq; several chains (the API's, each line's worker chain)
sharing one partition, and identical re-publications (a worker's replay) accepted."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cpkmon.alerts.audit import (
    Chain,
    ChainWriter,
    Head,
    Stored,
    canonical,
    chain_of,
    check,
    heads,
    record_hash,
    verify,
    verify_partition,
    worker_chain,
)
from cpkmon.alerts.model import AUDIT_GENESIS, AuditRecord, validate_strict


def build(n: int, start: Chain | None = None) -> list[dict[str, Any]]:
    chain = start or Chain()
    out = []
    for i in range(n):
        rec = chain.build(
            at=f"2026-12-01T08:00:{i:02d}.000Z",
            who="ops" if i % 2 else "工程师",
            what="spec.put",
            subject=f"L1/char_{i}",
            before=None if i == 0 else {"usl": 10.0 + i, "lsl": 1.5},
            after={"usl": 11.0 + i, "lsl": 1.5, "note": "直径"},
        )
        chain.advance(rec)
        out.append(rec)
    return out


def stored(records: list[dict[str, Any]], partition: int = 0) -> list[Stored]:
    """As a topic would hold them: consecutive offsets from 0, the JSON a writer produces."""
    return [Stored(partition, i, json.dumps(r).encode()) for i, r in enumerate(records)]


def kinds(problems: list[Any]) -> list[tuple[str, int | None, int | None]]:
    return [(p.kind, p.offset, p.seq) for p in problems]


# ------------------------------------------------------------------------------------------------ building


def test_the_chain_links_each_record_to_the_one_before() -> None:
    recs = build(4)
    assert [r["seq"] for r in recs] == [1, 2, 3, 4]
    assert recs[0]["prev_hash"] == AUDIT_GENESIS
    for before, after in itertools.pairwise(recs):
        assert after["prev_hash"] == before["hash"]
    for r in recs:
        assert r["hash"] == record_hash(r)
        validate_strict(AuditRecord, r)  # the writer's record is exactly the documented document
    assert verify(stored(recs)) == []
    assert heads(stored(recs)) == {(0, "api"): Head(4, recs[-1]["hash"])}
    assert all("chain" not in r for r in recs)  # the API's chain: no field, as before chains existed


def test_the_hash_covers_every_field_but_itself_in_canonical_json() -> None:
    rec = build(1)[0]
    body = {k: v for k, v in rec.items() if k != "hash"}
    reordered = dict(reversed(list(body.items())))
    assert canonical(body) == canonical(reordered)  # key order does not matter
    assert b'"who":"\xe5\xb7\xa5' in canonical(body)  # UTF-8 text, not \u escapes
    assert record_hash({**rec, "hash": "x"}) == rec["hash"]  # hash itself excluded
    for key in body:  # every other field is covered, seq and prev_hash included
        assert record_hash({**rec, key: "changed"}) != rec["hash"], key
    assert record_hash({**rec, "extra": 1}) != rec["hash"]  # and fields a newer writer adds


def test_a_chain_continues_after_the_last_record_of_the_topic() -> None:
    first = build(3)
    more = build(2, Chain.after(first[-1]))
    assert [r["seq"] for r in more] == [4, 5]
    assert verify(stored(first + more)) == []
    assert Chain.after(None).head == Head(0, AUDIT_GENESIS)


# ------------------------------------------------------------------------------------------------ problems


def test_a_removed_record_is_named_as_a_gap() -> None:
    recs = build(5)
    kept = stored(recs)
    del kept[2]  # seq 3; a copy of the topic renumbers offsets, so re-offset
    copy = [Stored(0, i, s.value) for i, s in enumerate(kept)]
    problems = verify(copy)
    assert kinds(problems) == [("removed", 2, 4)]
    assert "seq 3 missing between offset 1 (seq 2) and offset 2 (seq 4)" in str(problems[0])
    assert str(problems[0]).startswith("partition 0 chain api offset 2 seq 4: removed:")


def test_removed_first_records_break_the_anchor_unless_truncation_is_allowed() -> None:
    recs = build(5)
    tail = [Stored(0, i + 2, json.dumps(r).encode()) for i, r in enumerate(recs[2:])]
    assert kinds(verify(tail)) == [("removed", 2, 3)]
    assert "seq 1-2 missing before offset 2" in str(verify(tail)[0])
    assert verify(tail, anchored=False) == []  # retention deleted the start


def test_an_altered_record_fails_its_own_hash() -> None:
    recs = build(4)
    recs[1] = {**recs[1], "who": "someone-else"}  # content changed, hash kept
    assert kinds(verify(stored(recs))) == [("altered", 1, 2)]


def test_an_altered_and_rehashed_record_breaks_the_next_link() -> None:
    recs = build(4)
    forged = {**recs[1], "after": {"usl": 99.0}}
    forged["hash"] = record_hash(forged)
    recs[1] = forged
    problems = verify(stored(recs))
    assert kinds(problems) == [("broken_link", 2, 3)]
    assert "does not match the hash of seq 2 (offset 1)" in problems[0].detail


def test_a_forger_who_rewrites_the_whole_tail_is_caught_only_by_a_noted_head() -> None:
    """What a hash chain alone cannot see, and why the CLI prints the head: a consistent rewrite of the
    last records verifies, but the head it reaches differs from the one noted before."""
    recs = build(4)
    noted = heads(stored(recs))[(0, "api")]
    chain = Chain.after(recs[1])
    rewritten = recs[:2]
    for r in recs[2:]:
        rec = chain.build(**{k: r[k] for k in ("at", "what", "subject", "before", "after")}, who="forger")
        chain.advance(rec)
        rewritten.append(rec)
    assert verify(stored(rewritten)) == []
    assert heads(stored(rewritten))[(0, "api")] != noted


def test_swapped_records_are_named_as_reordered() -> None:
    recs = build(5)
    swapped = [*recs[:2], recs[3], recs[2], *recs[4:]]
    problems = verify(stored(swapped))
    assert kinds(problems) == [("reordered", 2, 4), ("reordered", 3, 3)]
    assert "comes before seq 3" in problems[0].detail
    assert "comes after seq 4 (offset 2)" in problems[1].detail


def test_an_identical_republication_is_counted_and_a_fork_is_named() -> None:
    """The same record written again (a producer retry, a worker replaying after a crash) loses and changes
    nothing: counted, not a problem. A second record with the same seq and other content is a fork."""
    recs = build(3)
    dup = stored([*recs, recs[1], recs[2]])
    assert verify(dup) == []
    assert check(dup).republished == {(0, "api"): 2}
    assert check(dup).heads == {(0, "api"): Head(3, recs[2]["hash"])}
    more = build(1, Chain.after(recs[2]))  # the chain goes on after the re-published records
    assert verify(stored([*recs, recs[1], recs[2], *more])) == []
    other = Chain.after(recs[1]).build(at="t", who="replica-2", what="alert.ack", subject="a-1")
    forked = verify(stored([*recs, other]))
    assert kinds(forked) == [("duplicated", 3, 3)]
    assert "forked" in forked[0].detail


def test_unreadable_records_are_named_and_the_chain_goes_on() -> None:
    recs = build(3)
    raw = stored(recs)
    bad = [raw[0], Stored(0, 1, b"{not json"), Stored(0, 2, None), Stored(0, 3, b'{"seq": 2}'), *[
        Stored(0, 4 + i, s.value) for i, s in enumerate(raw[1:])
    ]]
    problems = verify(bad)
    assert kinds(problems) == [("unreadable", 1, None), ("unreadable", 2, None), ("unreadable", 3, None)]
    assert "tombstone" in problems[1].detail and "missing" in problems[2].detail


def test_problems_name_their_partition() -> None:
    p0 = stored(build(3), partition=0)
    recs = build(3)
    recs[0] = {**recs[0], "subject": "L9/x"}
    p1 = stored(recs, partition=1)
    problems = verify(p1 + p0)  # any input order
    assert [(p.partition, p.kind, p.offset, p.seq) for p in problems] == [(1, "altered", 0, 1)]
    assert verify_partition(0, reversed(p0))[0] == []  # walked in offset order


# --------------------------------------------------------------------------------------------- property


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=12),
    data=st.data(),
)
def test_any_single_removal_or_alteration_is_detected(n: int, data: st.DataObject) -> None:
    """Removing any record but the last, or changing any field of any record (with or without re-hashing
    it, except the last re-hashed: the head's job), is always reported, at the record it concerns."""
    recs = build(n)
    assert verify(stored(recs)) == []
    action = data.draw(st.sampled_from(["remove", "alter", "alter_rehash"]))
    if action == "remove":
        i = data.draw(st.integers(min_value=0, max_value=n - 2))
        copy = [Stored(0, k, json.dumps(r).encode()) for k, r in enumerate(recs[:i] + recs[i + 1 :])]
        problems = verify(copy)
        assert [(p.kind, p.offset, p.seq) for p in problems] == [("removed", i, i + 2)]
        return
    last = n - 1 if action == "alter" else n - 2
    i = data.draw(st.integers(min_value=0, max_value=last))
    key = data.draw(st.sampled_from(["seq", "prev_hash", "at", "who", "what", "subject", "before", "after"]))
    value: Any = recs[i]["seq"] + 100 if key == "seq" else ("0" * 63 + "1" if key == "prev_hash" else "x")
    forged = {**recs[i], key: value}
    if action == "alter_rehash":
        forged["hash"] = record_hash(forged)
    recs[i] = forged
    problems = verify(stored(recs))
    assert problems, (action, i, key)
    assert any(p.offset in (i, i + 1) for p in problems)


# ------------------------------------------------------------------------------------------ several chains


def worker_records(line: str, n: int, writer: ChainWriter | None = None) -> list[dict[str, Any]]:
    """``n`` records of a line's worker chain, as ``LineState`` builds them."""
    w = writer or ChainWriter(worker_chain(line))
    for i in range(n):
        w.append(at=f"2026-12-01T09:00:{i:02d}.000Z", what="alarm.activate" if i % 2 == 0 else "alarm.clear",
                 subject=f"alarm-{line}", before={"active": i % 2 == 1}, after={"active": i % 2 == 0})
    return w.take()


def interleave(*chains: list[dict[str, Any]], seed: int = 3) -> list[dict[str, Any]]:
    """The chains' records merged in a random order that keeps each chain's own order (how writers that
    share a partition append)."""
    rnd = random.Random(seed)
    queues = [list(c) for c in chains if c]
    out = []
    while queues:
        q = rnd.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


def test_chains_sharing_a_partition_verify_each_on_its_own() -> None:
    api = build(4)
    l1, l2 = worker_records("L1", 5), worker_records("L2", 3)
    recs = interleave(api, l1, l2)
    assert [r["seq"] for r in recs] != sorted(r["seq"] for r in recs)  # seqs repeat across chains
    assert verify(stored(recs)) == []
    assert heads(stored(recs)) == {
        (0, "api"): Head(4, api[-1]["hash"]),
        (0, "worker:L1"): Head(5, l1[-1]["hash"]),
        (0, "worker:L2"): Head(3, l2[-1]["hash"]),
    }
    for r in l1:
        assert r["chain"] == "worker:L1" and r["who"] == "worker" and chain_of(r) == "worker:L1"
        validate_strict(AuditRecord, r)
    assert chain_of(api[0]) == "api"


def test_the_chain_field_is_hashed_only_when_present() -> None:
    """A record without ``chain`` hashes as before chains existed (old topics verify unchanged); a worker
    record's chain is covered, so moving it to another chain fails its hash."""
    old = build(1)[0]
    assert old["hash"] == record_hash({k: v for k, v in old.items() if k != "chain"})
    assert record_hash({**old, "chain": "api"}) != old["hash"]
    rec = worker_records("L1", 1)[0]
    assert record_hash({**rec, "chain": "worker:L2"}) != rec["hash"]
    moved = [{**rec, "chain": "worker:L2"}]
    assert [(p.kind, p.chain) for p in verify(stored(moved))] == [("altered", "worker:L2")]


def test_a_record_removed_from_a_worker_chain_is_named_with_its_chain() -> None:
    api, l1 = build(3), worker_records("L1", 4)
    recs = interleave(api, l1, seed=7)
    victim = next(i for i, r in enumerate(recs) if r.get("chain") == "worker:L1" and r["seq"] == 2)
    kept = recs[:victim] + recs[victim + 1 :]
    problems = verify(stored(kept))
    after = next(i for i, r in enumerate(kept) if r.get("chain") == "worker:L1" and r["seq"] == 3)
    before = next(i for i, r in enumerate(kept) if r.get("chain") == "worker:L1" and r["seq"] == 1)
    assert [(p.kind, p.chain, p.offset, p.seq) for p in problems] == [("removed", "worker:L1", after, 3)]
    assert str(problems[0]) == (
        f"partition 0 chain worker:L1 offset {after} seq 3: removed: seq 2 missing between offset {before} "
        f"(seq 1) and offset {after} (seq 3)"
    )


def test_a_fork_of_a_worker_chain_is_caught_and_a_replay_is_not() -> None:
    """A worker that replays from its checkpoint rebuilds the same records: accepted. A chain continued from
    a stale head with other content (e.g. two writers of one line) is a fork."""
    w = ChainWriter(worker_chain("L1"))
    first = worker_records("L1", 3, w)
    saved = w.to_dict()
    tail = worker_records("L1", 2, w)
    replayed = worker_records("L1", 2, ChainWriter.from_dict(worker_chain("L1"), saved))
    assert replayed == tail
    ok = stored([*first, *tail, *replayed])
    assert verify(ok) == [] and check(ok).republished == {(0, "worker:L1"): 2}
    stale = ChainWriter.from_dict(worker_chain("L1"), saved)
    stale.append(at="2026-12-01T10:00:00.000Z", what="limits.freeze", subject="L1/bore", after={"ucl": 1.0})
    forked = verify(stored([*first, *tail, *stale.take()]))
    assert [(p.kind, p.chain, p.seq) for p in forked] == [("duplicated", "worker:L1", 4)]
    assert "forked" in forked[0].detail


def test_a_chain_writer_round_trips_its_head() -> None:
    w = ChainWriter(worker_chain("L1"))
    assert w.to_dict() == {"seq": 0, "hash": AUDIT_GENESIS}
    recs = worker_records("L1", 2, w)
    assert w.take() == [] and w.head == Head(2, recs[-1]["hash"])
    again = ChainWriter.from_dict("worker:L1", json.loads(json.dumps(w.to_dict())))
    assert again.head == w.head and again.name == "worker:L1"
    assert ChainWriter.from_dict("worker:L1", None).head == Head()  # an old checkpoint: a fresh chain


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=2, max_value=6), min_size=1, max_size=3),
    api_n=st.integers(min_value=0, max_value=5),
    seed=st.integers(0, 1000),
    data=st.data(),
)
def test_any_removal_in_any_chain_is_named_with_its_chain(
    sizes: list[int], api_n: int, seed: int, data: st.DataObject
) -> None:
    """However the chains interleave, they verify; removing any record that is not the last of its chain
    is reported once, as ``removed`` in that chain, at the next record of the chain."""
    chains = [worker_records(f"L{i}", n) for i, n in enumerate(sizes)] + [build(api_n)]
    recs = interleave(*chains, seed=seed)
    assert verify(stored(recs)) == []
    candidates = [i for i, r in enumerate(recs)
                  if r["seq"] < max(q["seq"] for q in recs if chain_of(q) == chain_of(r))]
    if not candidates:
        return
    i = data.draw(st.sampled_from(candidates))
    gone = recs[i]
    kept = recs[:i] + recs[i + 1 :]
    problems = verify(stored(kept))
    assert [(p.kind, p.chain, p.seq) for p in problems] == [("removed", chain_of(gone), gone["seq"] + 1)]
