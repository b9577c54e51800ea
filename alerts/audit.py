"""The audit trail's hash chain: building the next record and verifying a partition's records.

Why a hash chain: the audit topic is an ordinary Kafka topic, and whoever can produce to it or copy it can
drop or edit a record. Each record carries ``seq`` (1, 2, 3 … per partition) and the ``hash`` of its
predecessor (``prev_hash``), and its own ``hash`` covers every other field, so

* an **altered** record no longer matches its own hash (or, re-hashed, no longer matches the ``prev_hash`` of
  the record after it);
* a **removed** record leaves a gap in ``seq``;
* **reordered** records show ``seq`` going backwards, or a gap that a later record fills.

What it cannot prove: a forger who rewrites a record *and every record after it* produces a consistent chain.
Against that, keep the head (``cpkmon audit verify`` prints its ``seq`` and ``hash``) somewhere the forger
cannot write — a ticket, a signed report — and compare later (``--expect-head``).

The hash is SHA-256 over :func:`canonical` JSON: keys sorted, no insignificant whitespace, UTF-8, no NaN.
Python's float repr is the shortest round-trip form, so parse-then-serialise gives the same bytes and a
verifier recomputes the writer's hash from the parsed record.

Pure (``hashlib`` and ``json`` only): the API's writer, ``cpkmon audit verify`` and the tests share it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cpkmon.alerts.model import AUDIT_FIRST_SEQ, AUDIT_GENESIS

#: Kinds of :class:`Problem`.
ProblemKind = Literal["unreadable", "altered", "removed", "reordered", "duplicated", "broken_link", "head"]

#: The fields a record must carry (``hash`` excluded); others are allowed and hashed too.
RECORD_FIELDS: tuple[str, ...] = ("seq", "prev_hash", "at", "who", "what", "subject", "before", "after")


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
    """Builds the records of one partition's chain, each linked to the one before.

    Not thread- or task-safe by itself: the caller serialises :meth:`next` *and* the write of the record it
    returned (the API's writer holds one lock across both), otherwise two records would share a ``seq``.
    """

    def __init__(self, head: Head | None = None) -> None:
        self.head = head or Head()

    @classmethod
    def after(cls, last: Mapping[str, Any] | None) -> Chain:
        """The chain continuing after ``last`` (the partition's last record; None: an empty partition)."""
        if last is None:
            return cls()
        return cls(Head(int(last["seq"]), str(last["hash"])))

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
        record["hash"] = record_hash(record)
        return record

    def advance(self, record: Mapping[str, Any]) -> None:
        """Move the head to ``record`` (once the broker has it)."""
        self.head = Head(int(record["seq"]), str(record["hash"]))


@dataclass(frozen=True, slots=True)
class Stored:
    """A record as read from the topic: where it is and its raw value."""

    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the chain, located by partition (-1: the chain as a whole), offset and (when
    readable) seq."""

    kind: ProblemKind
    partition: int
    offset: int | None
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = f"partition {self.partition}" if self.partition >= 0 else "chain"
        if self.offset is not None:
            where += f" offset {self.offset}"
        if self.seq is not None:
            where += f" seq {self.seq}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class _Parsed:
    offset: int
    seq: int
    prev_hash: str
    hash: str
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
    try:
        intact = record_hash(doc) == own
    except ValueError:  # NaN/Infinity: not canonical JSON, never written by a Chain
        intact = False
    return _Parsed(stored.offset, seq, prev, own, intact)


def _ranges(seqs: list[int]) -> str:
    """``[3, 4, 5, 9]`` → ``"3-5, 9"``."""
    runs: list[list[int]] = []
    for s in seqs:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def verify_partition(
    partition: int, records: Iterable[Stored], *, anchored: bool = True
) -> tuple[list[Problem], Head | None]:
    """Walk one partition's records in offset order; the problems found and the head reached.

    ``anchored``: the first record must be ``seq`` 1 after the genesis hash (retention never deleted the
    start). Without it the first readable record is taken as the anchor (its own hash is still checked).
    """
    stored = sorted(records, key=lambda r: r.offset)
    problems: list[Problem] = []
    parsed: list[_Parsed] = []
    for rec in stored:
        p = _parse(rec)
        if isinstance(p, str):
            problems.append(Problem("unreadable", partition, rec.offset, None, p))
        else:
            parsed.append(p)
    positions: dict[int, list[int]] = {}  # seq → offsets holding it
    for p in parsed:
        positions.setdefault(p.seq, []).append(p.offset)

    prev: _Parsed | None = None
    for p in parsed:
        if not p.intact:
            problems.append(
                Problem("altered", partition, p.offset, p.seq, "its hash does not match its content")
            )
        if prev is None:
            expected = AUDIT_FIRST_SEQ if anchored else p.seq
            if p.seq > expected:
                _gap(problems, partition, p, range(expected, p.seq), positions, after=None)
            elif p.seq == expected and anchored and p.prev_hash != AUDIT_GENESIS:
                problems.append(
                    Problem("broken_link", partition, p.offset, p.seq, "the first record does not start "
                            "from the genesis hash")
                )
            prev = p
            continue
        if p.seq <= prev.seq:
            first = next(q for q in parsed if q.seq == p.seq)
            if first.offset < p.offset:
                fork = "" if first.hash == p.hash else " with other content: two writers forked the chain"
                problems.append(
                    Problem("duplicated", partition, p.offset, p.seq,
                            f"seq {p.seq} already appeared at offset {first.offset}{fork}")
                )
            else:
                problems.append(
                    Problem("reordered", partition, p.offset, p.seq,
                            f"comes after seq {prev.seq} (offset {prev.offset})")
                )
            continue  # the chain goes on from the highest seq seen
        if p.seq > prev.seq + 1:
            _gap(problems, partition, p, range(prev.seq + 1, p.seq), positions, after=prev)
        elif p.prev_hash != prev.hash:
            problems.append(
                Problem("broken_link", partition, p.offset, p.seq,
                        f"prev_hash does not match the hash of seq {prev.seq} (offset {prev.offset}): that "
                        f"record was altered and re-hashed, or replaced")
            )
        prev = p
    head = Head(prev.seq, prev.hash) if prev is not None else None
    return problems, head


def _gap(
    problems: list[Problem],
    partition: int,
    p: _Parsed,
    missing: range,
    positions: Mapping[int, list[int]],
    after: _Parsed | None,
) -> None:
    """Seqs ``missing`` before ``p``: those found later in the partition were reordered, the rest removed."""
    later = [s for s in missing if any(o > p.offset for o in positions.get(s, ()))]
    gone = [s for s in missing if s not in later]
    where = f"between offset {after.offset} (seq {after.seq}) and" if after else "before"
    if gone:
        problems.append(
            Problem("removed", partition, p.offset, p.seq,
                    f"seq {_ranges(gone)} missing {where} offset {p.offset} (seq {p.seq})")
        )
    if later:
        problems.append(
            Problem("reordered", partition, p.offset, p.seq,
                    f"comes before seq {_ranges(later)}, which appear later in the partition")
        )


def verify(records: Iterable[Stored], *, anchored: bool = True) -> list[Problem]:
    """Every problem of every partition's chain (empty: intact). Records in any order; they are grouped by
    partition and walked in offset order."""
    by_partition: dict[int, list[Stored]] = {}
    for rec in records:
        by_partition.setdefault(rec.partition, []).append(rec)
    problems: list[Problem] = []
    for partition in sorted(by_partition):
        found, _ = verify_partition(partition, by_partition[partition], anchored=anchored)
        problems.extend(found)
    return problems


def heads(records: Iterable[Stored], *, anchored: bool = True) -> dict[int, Head]:
    """Each partition's head (last ``seq`` and ``hash`` of its chain), to record outside Kafka."""
    by_partition: dict[int, list[Stored]] = {}
    for rec in records:
        by_partition.setdefault(rec.partition, []).append(rec)
    out: dict[int, Head] = {}
    for partition, recs in by_partition.items():
        _, head = verify_partition(partition, recs, anchored=anchored)
        if head is not None:
            out[partition] = head
    return out


__all__ = [
    "RECORD_FIELDS",
    "Chain",
    "Head",
    "Problem",
    "ProblemKind",
    "Stored",
    "canonical",
    "heads",
    "record_hash",
    "verify",
    "verify_partition",
]
