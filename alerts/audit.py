"""The audit trail's hash chain: building the next record and verifying a partition's records.

Why a hash chain: the audit topic is an ordinary Kafka topic, and whoever can produce to it or copy it can
drop or edit a record. Each record carries ``seq`` (1, 2, 3 … per chain) and the ``hash`` of its
predecessor (``prev_hash``), and its own ``hash`` covers every other field, so

* an **altered** record no longer matches its own hash (or, re-hashed, no longer matches the ``prev_hash`` of
  the record after it);
* a **removed** record leaves a gap in ``seq``;
* **reordered** records show ``seq`` going backwards, or a gap that a later record fills.

What it cannot prove: a forger who rewrites a record *and every record after it* produces a consistent chain.
Against that, keep the head (``cpkmon audit verify`` prints its ``seq`` and ``hash``) somewhere the forger
cannot write — a ticket, a signed report — and compare later (``--expect-head``).

**Several chains per partition.** Several writers share the topic: the API (chain ``"api"``) and every line's
worker state (chain ``"worker:<line>"``: its alarm transitions and limit freezes, :class:`ChainWriter`). Two
writers cannot extend one chain without coordinating, so each writes its own, named in the record's
``chain`` field, and a chain is the records of one (partition, chain) in offset order. A record without
``chain`` belongs to ``"api"`` (records written before chains existed), and ``chain`` is hashed only when
present, so those records verify unchanged. An **identical** re-publication of a record (same ``seq``, same
``hash``: what a worker replaying after a crash writes — its records are deterministic) is harmless and only
counted (:class:`Verdict` ``republished``); a second record with the same ``seq`` and other content is a fork.

The hash is SHA-256 over :func:`canonical` JSON: keys sorted, no insignificant whitespace, UTF-8, no NaN.
Python's float repr is the shortest round-trip form, so parse-then-serialise gives the same bytes and a
verifier recomputes the writer's hash from the parsed record.

Pure (``hashlib`` and ``json`` only): the API's writer, the worker's line state, ``cpkmon audit verify`` and
the tests share it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from cpkmon.alerts.model import AUDIT_FIRST_SEQ, AUDIT_GENESIS

#: Kinds of :class:`Problem`.
ProblemKind = Literal["unreadable", "altered", "removed", "reordered", "duplicated", "broken_link", "head"]

#: The fields a record must carry (``hash`` excluded); others are allowed and hashed too.
RECORD_FIELDS: tuple[str, ...] = ("seq", "prev_hash", "at", "who", "what", "subject", "before", "after")

#: The chain of a record without a ``chain`` field: the API's (the only writer before chains existed).
API_CHAIN = "api"
#: ``who`` of the worker's records: the process decided them, no person.
WORKER_WHO = "worker"


def worker_chain(line: str) -> str:
    """The chain of one line's worker records: each line's state (owned by one worker at a time, checkpointed
    with the line) extends its own chain, so no two workers ever extend one."""
    return f"worker:{line}"


def chain_of(record: Mapping[str, Any]) -> str:
    """The chain a record belongs to (``chain``, or :data:`API_CHAIN` when absent)."""
    name = record.get("chain")
    return name if isinstance(name, str) else API_CHAIN


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, compact separators, UTF-8 text (not ``\\u`` escapes)."""
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of every field of ``record`` except ``hash``."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


@dataclass(frozen=True, slots=True)
class Head:
    """Where a chain stands: the last record's ``seq`` and ``hash`` (the genesis before the first)."""

    seq: int = AUDIT_FIRST_SEQ - 1
    hash: str = AUDIT_GENESIS


class Chain:
    """Builds the records of one chain, each linked to the one before.

    ``name``: written as the records' ``chain`` field; None writes none (the API's chain, as before chains
    existed). Not thread- or task-safe by itself: the caller serialises :meth:`build` *and* the write of the
    record it returned (the API's writer holds one lock across both), otherwise two records would share a
    ``seq``.
    """

    def __init__(self, head: Head | None = None, name: str | None = None) -> None:
        self.head = head or Head()
        self.name = name

    @classmethod
    def after(cls, last: Mapping[str, Any] | None, name: str | None = None) -> Chain:
        """The chain continuing after ``last`` (the chain's last record; None: no record yet)."""
        if last is None:
            return cls(name=name)
        return cls(Head(int(last["seq"]), str(last["hash"])), name)

    def build(
        self, *, at: str, who: str, what: str, subject: str, before: Any = None, after: Any = None
    ) -> dict[str, Any]:
        """The next record (not yet appended: call :meth:`advance` once it is written)."""
        record: dict[str, Any] = {
            "seq": self.head.seq + 1,
            "prev_hash": self.head.hash,
            "at": at,
            "who": who,
            "what": what,
            "subject": subject,
            "before": before,
            "after": after,
        }
        if self.name is not None:
            record["chain"] = self.name
        record["hash"] = record_hash(record)
        return record

    def advance(self, record: Mapping[str, Any]) -> None:
        """Move the head to ``record`` (once the broker has it)."""
        self.head = Head(int(record["seq"]), str(record["hash"]))


class ChainWriter:
    """A chain kept in pure state, its records waiting in an outbox: how a line's state audits itself.

    Unlike the API's writer, which advances only once the broker has the record, this one advances at once:
    the head is part of the line's checkpointed state and the outbox is not, and the worker publishes what
    :meth:`take` returns (acknowledged) before it writes the checkpoint that holds the head. After a crash the
    restored head is the one of the last checkpoint, and replaying the same input rebuilds the same records
    (every field comes from event data), so what is published twice is identical — harmless to
    :func:`verify`.
    """

    __slots__ = ("chain", "outbox")

    def __init__(self, name: str, head: Head | None = None) -> None:
        self.chain = Chain(head, name)
        self.outbox: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        assert self.chain.name is not None
        return self.chain.name

    @property
    def head(self) -> Head:
        return self.chain.head

    def append(
        self,
        *,
        at: str,
        what: str,
        subject: str,
        before: Any = None,
        after: Any = None,
        who: str = WORKER_WHO,
    ) -> dict[str, Any]:
        """Build the next record, advance the head to it and queue it for :meth:`take`."""
        record = self.chain.build(at=at, who=who, what=what, subject=subject, before=before, after=after)
        self.chain.advance(record)
        self.outbox.append(record)
        return record

    def take(self) -> list[dict[str, Any]]:
        """The records built since the last call, in order (the caller publishes them)."""
        out, self.outbox = self.outbox, []
        return out

    def to_dict(self) -> dict[str, Any]:
        """Checkpoint form: the head only (the outbox is published before the checkpoint is written)."""
        return {"seq": self.chain.head.seq, "hash": self.chain.head.hash}

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any] | None) -> ChainWriter:
        """Restore; ``None`` (a checkpoint written before the worker audited) starts the chain at seq 1 —
        there can be no record of that chain yet, since no worker wrote any before."""
        if not d:
            return cls(name)
        return cls(name, Head(int(d["seq"]), str(d["hash"])))


@dataclass(frozen=True, slots=True)
class Stored:
    """A record as read from the topic: where it is and its raw value."""

    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a chain, located by partition (-1: the trail as a whole), chain (None: not
    readable enough to tell), offset and (when readable) seq."""

    kind: ProblemKind
    partition: int
    offset: int | None
    seq: int | None
    detail: str
    chain: str | None = None

    def __str__(self) -> str:
        where = f"partition {self.partition}" if self.partition >= 0 else "chain"
        if self.chain is not None:
            where += f" chain {self.chain}"
        if self.offset is not None:
            where += f" offset {self.offset}"
        if self.seq is not None:
            where += f" seq {self.seq}"
        return f"{where}: {self.kind}: {self.detail}"


class Verdict(NamedTuple):
    """What :func:`check` found: the problems (empty: intact), each (partition, chain)'s head, and how many
    identical re-publications each chain holds (information, not a problem)."""

    problems: list[Problem]
    heads: dict[tuple[int, str], Head]
    republished: dict[tuple[int, str], int]


@dataclass(frozen=True, slots=True)
class _Parsed:
    offset: int
    seq: int
    prev_hash: str
    hash: str
    chain: str
    intact: bool  # its stored hash matches its content


def _parse(stored: Stored) -> _Parsed | str:
    """The fields the chain needs, or why the value is not an audit record."""
    if stored.value is None:
        return "a tombstone (null value) where a record should be"
    try:
        doc = json.loads(stored.value)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not JSON ({exc})"
    if not isinstance(doc, dict):
        return "not a JSON object"
    missing = [k for k in (*RECORD_FIELDS, "hash") if k not in doc]
    if missing:
        return f"not an audit record: missing {missing}"
    seq, prev, own = doc["seq"], doc["prev_hash"], doc["hash"]
    if type(seq) is not int or not isinstance(prev, str) or not isinstance(own, str):
        return "not an audit record: seq must be an integer, prev_hash and hash strings"
    if "chain" in doc and not isinstance(doc["chain"], str):
        return "not an audit record: chain must be a string"
    try:
        intact = record_hash(doc) == own
    except ValueError:  # NaN/Infinity: not canonical JSON, never written by a Chain
        intact = False
    return _Parsed(stored.offset, seq, prev, own, chain_of(doc), intact)


def _ranges(seqs: list[int]) -> str:
    """``[3, 4, 5, 9]`` → ``"3-5, 9"``."""
    runs: list[list[int]] = []
    for s in seqs:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _walk_chain(
    partition: int, chain: str, parsed: list[_Parsed], anchored: bool
) -> tuple[list[Problem], Head | None, int]:
    """Walk one chain's records (offset order): its problems, its head and its identical re-publications."""
    problems: list[Problem] = []
    republished = 0
    positions: dict[int, list[int]] = {}  # seq → offsets holding it
    for p in parsed:
        positions.setdefault(p.seq, []).append(p.offset)

    def problem(kind: ProblemKind, p: _Parsed, detail: str) -> None:
        problems.append(Problem(kind, partition, p.offset, p.seq, detail, chain))

    prev: _Parsed | None = None
    for p in parsed:
        if not p.intact:
            problem("altered", p, "its hash does not match its content")
        if prev is None:
            expected = AUDIT_FIRST_SEQ if anchored else p.seq
            if p.seq > expected:
                _gap(problem, p, range(expected, p.seq), positions, after=None)
            elif p.seq == expected and anchored and p.prev_hash != AUDIT_GENESIS:
                problem("broken_link", p, "the first record does not start from the genesis hash")
            prev = p
            continue
        if p.seq <= prev.seq:
            first = next(q for q in parsed if q.seq == p.seq)
            if first.offset < p.offset:
                if first.hash == p.hash and p.intact:
                    republished += 1  # the same record written again (a producer's or a replay's retry)
                else:
                    problem("duplicated", p, f"seq {p.seq} already appeared at offset {first.offset} with "
                                             f"other content: two writers forked the chain")
            else:
                problem("reordered", p, f"comes after seq {prev.seq} (offset {prev.offset})")
            continue  # the chain goes on from the highest seq seen
        if p.seq > prev.seq + 1:
            _gap(problem, p, range(prev.seq + 1, p.seq), positions, after=prev)
        elif p.prev_hash != prev.hash:
            problem("broken_link", p, f"prev_hash does not match the hash of seq {prev.seq} (offset "
                                      f"{prev.offset}): that record was altered and re-hashed, or replaced")
        prev = p
    head = Head(prev.seq, prev.hash) if prev is not None else None
    return problems, head, republished


def _gap(
    problem: Callable[[ProblemKind, _Parsed, str], None],
    p: _Parsed,
    missing: range,
    positions: Mapping[int, list[int]],
    after: _Parsed | None,
) -> None:
    """Seqs ``missing`` before ``p``: those found later in the chain were reordered, the rest removed."""
    later = [s for s in missing if any(o > p.offset for o in positions.get(s, ()))]
    gone = [s for s in missing if s not in later]
    where = f"between offset {after.offset} (seq {after.seq}) and" if after else "before"
    if gone:
        problem("removed", p, f"seq {_ranges(gone)} missing {where} offset {p.offset} (seq {p.seq})")
    if later:
        problem("reordered", p, f"comes before seq {_ranges(later)}, which appear later in the partition")


def verify_partition(partition: int, records: Iterable[Stored], *, anchored: bool = True) -> Verdict:
    """Walk one partition's records in offset order, chain by chain (in the order each chain first
    appears); unreadable records first, then each chain's problems.

    ``anchored``: each chain's first record must be ``seq`` 1 after the genesis hash (retention never deleted
    its start). Without it each chain's first readable record is taken as its anchor (its own hash is still
    checked).
    """
    stored = sorted(records, key=lambda r: r.offset)
    problems: list[Problem] = []
    chains: dict[str, list[_Parsed]] = {}
    for rec in stored:
        p = _parse(rec)
        if isinstance(p, str):
            problems.append(Problem("unreadable", partition, rec.offset, None, p))
        else:
            chains.setdefault(p.chain, []).append(p)
    heads: dict[tuple[int, str], Head] = {}
    republished: dict[tuple[int, str], int] = {}
    for chain, parsed in chains.items():
        found, head, again = _walk_chain(partition, chain, parsed, anchored)
        problems.extend(found)
        if head is not None:
            heads[(partition, chain)] = head
        if again:
            republished[(partition, chain)] = again
    return Verdict(problems, heads, republished)


def check(records: Iterable[Stored], *, anchored: bool = True) -> Verdict:
    """Every (partition, chain)'s problems, head and re-publications. Records in any order; they are grouped
    by partition and chain and walked in offset order."""
    by_partition: dict[int, list[Stored]] = {}
    for rec in records:
        by_partition.setdefault(rec.partition, []).append(rec)
    out = Verdict([], {}, {})
    for partition in sorted(by_partition):
        found = verify_partition(partition, by_partition[partition], anchored=anchored)
        out.problems.extend(found.problems)
        out.heads.update(found.heads)
        out.republished.update(found.republished)
    return out


def verify(records: Iterable[Stored], *, anchored: bool = True) -> list[Problem]:
    """Every problem of every (partition, chain) (empty: intact); see :func:`check`."""
    return check(records, anchored=anchored).problems


def heads(records: Iterable[Stored], *, anchored: bool = True) -> dict[tuple[int, str], Head]:
    """Each (partition, chain)'s head (last ``seq`` and ``hash``), to record outside Kafka."""
    return check(records, anchored=anchored).heads


__all__ = [
    "API_CHAIN",
    "RECORD_FIELDS",
    "WORKER_WHO",
    "Chain",
    "ChainWriter",
    "Head",
    "Problem",
    "ProblemKind",
    "Stored",
    "Verdict",
    "canonical",
    "chain_of",
    "check",
    "heads",
    "record_hash",
    "verify",
    "verify_partition",
    "worker_chain",
]
