"""The state machine of one input partition: records in, effects out — no broker, no clock, no exceptions.

Why a machine: the worker used to reach into the partition processor (toggling ``specs_verified`` around a
retry after catching ``SpecsBehind``, clearing its dirty sets), so neither could be reasoned about or tested
alone. Now the boundary is explicit and one-way:

* :meth:`PartitionMachine.apply` takes a batch of records ``(topic, partition, offset, timestamp, key,
  value)`` — aiokafka's ``ConsumerRecord`` fits, so does :class:`Record` — applies them in order and returns
  an :class:`Effects`: alerts, alarm events (``activate``/``clear``, decided by ``LineState``), the audit
  records of the lines' chains (``worker:<line>``: alarm transitions, limit freezes), dead letters
  and re-keyed forwards to publish, event counts for the metrics,
  and ``held`` when a record names a characteristic the spec registry does not know (yet).
* A **spec hold** is a returned value, not an exception: the machine keeps the held record and every record
  behind it (nothing of them is applied, their offsets stay unapplied) until the shell has read the specs
  topic to its end and calls :meth:`PartitionMachine.release`, which hands the held record in once more with
  the registry taken as complete — a spec still missing then is dead-lettered (``no_spec``) — and goes on
  with the rest (which may hold again). Records given to :meth:`apply` while a hold is pending queue behind
  it, so application order is input order whatever the shell does.
* :meth:`PartitionMachine.status_due` returns the status documents due (the shell passes its clock),
  :meth:`PartitionMachine.checkpoint` the checkpoint records to write, line states first and the partition
  record last (:mod:`cpkmon.stream.checkpoint`: any prefix of them is a consistent checkpoint), and
  :meth:`PartitionMachine.snapshot` the numbers metrics and health read.

The shell (:mod:`cpkmon.stream.worker`) is then poll → apply → publish → checkpoint → commit.

**Determinism does not depend on batching.** Every effect of a record is a function of the state before it
and the record itself (``detected_at`` is the record's Kafka timestamp, never a clock; evaluation order is
record order, then event order within a message), so applying a sequence of records one at a time or in any
split into batches gives the same state, the same alerts byte for byte, the same dead letters and counts
(``tests/stream/test_machine_property.py`` proves it over random streams). What the machine cannot decide
is the order *across* the input topics of its partition — a line's grade reads measurements, inspections
and costs, so that order matters for grade alerts (not for out-of-control alerts, which read one topic in
offset order). The shell used to apply a fetch topic after topic, which made it an accident of the fetch
split; it now merges each fetch with :func:`merge_topics` (Kafka timestamp, then topic rank), so a replay
that fetches a backlog at once applies what the live run applied in small fetches. What remains: records
of two topics whose arrival at the worker disagrees with their timestamps by more than a fetch (producer
skew) are applied in arrival order live and in timestamp order on replay. Spec changes are the one input
outside the partition: the registry is what the spec follower has read when a record is applied.

Exactly-once effect without broker transactions (SPEC §10): ``applied`` records, per input topic, the last
offset whose effect is in the state. A checkpoint stores the line states together with ``applied``; after a
restore the shell seeks every input partition to :meth:`PartitionMachine.position` and replays, and a line
whose own checkpoint is newer than the partition record skips the offsets it already holds
(``LineState.applied``). A line is owned by partition ``murmur2(line) % partitions`` (Kafka's default
partitioner) for every input topic alike; events of lines owned elsewhere are forwarded (re-keyed) once.

Operator commands (``POST …/baseline``) arrive the same way: the commands topic is keyed by line and
co-partitioned with the input topics, so a command is one more input record of its line's partition, applied
once, in order, under the same ``applied`` bookkeeping — a restart never runs an old command again.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from cpkmon.alerts.line import LineState, MeasurementInput
from cpkmon.capability.options import Options
from cpkmon.stream import checkpoint
from cpkmon.stream.checkpoint import owner_partition
from cpkmon.stream.events import IDENT_RE, Inspection, Kind, Measurement, QualityCost, decode
from cpkmon.stream.specs import SpecRegistry

Event = Measurement | Inspection | QualityCost
_GRADE_ALERTS = frozenset(("grade_degraded", "grade_recovered"))


class RecordLike(Protocol):
    """What the machine reads of a Kafka record (aiokafka's ``ConsumerRecord`` has these attributes)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Record:
    """A record built by hand (tests, benchmarks, the batch recompute): ``timestamp`` in epoch ms."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Hold:
    """The record at ``topic``/``offset`` names ``line``/``characteristic``, which has no spec yet."""

    topic: str
    offset: int
    line: str
    characteristic: str


@dataclass
class Effects:
    """What applying records produced, for the shell to publish; accumulates with :meth:`extend`.

    ``counts``: (topic, outcome) → events, outcome one of accepted, duplicate, dead_letter, rekeyed;
    ``rejected_reasons``: (topic, reason class) → dead letters (bounded labels for the metrics).
    """

    alerts: list[dict[str, Any]] = field(default_factory=list)
    # activate/clear documents for ``cpkmon.alarm-events`` (key = line), in application order
    alarm_events: list[dict[str, Any]] = field(default_factory=list)
    # audit records of the lines' chains for ``cpkmon.audit`` (key = chain), in application order; like the
    # alarm events they must be acknowledged before the checkpoint holding the chains' heads is written
    audit: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    forwards: list[tuple[str, int, str, bytes]] = field(default_factory=list)  # topic, partition, key, value
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    held: Hold | None = None

    def __bool__(self) -> bool:
        return bool(
            self.alerts or self.alarm_events or self.audit or self.dead_letters or self.forwards
            or self.counts
        )

    def extend(self, other: Effects) -> None:
        """Append ``other`` (later effects); ``held`` becomes ``other``'s."""
        self.alerts.extend(other.alerts)
        self.alarm_events.extend(other.alarm_events)
        self.audit.extend(other.audit)
        self.dead_letters.extend(other.dead_letters)
        self.forwards.extend(other.forwards)
        self.counts.update(other.counts)
        self.rejected_reasons.update(other.rejected_reasons)
        self.held = other.held

    def clear(self) -> None:
        self.alerts.clear()
        self.alarm_events.clear()
        self.audit.clear()
        self.dead_letters.clear()
        self.forwards.clear()
        self.counts.clear()
        self.rejected_reasons.clear()
        self.held = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What metrics and health read of a machine (copies: safe to keep)."""

    partition: int
    lines: int
    applied: Mapping[str, int]
    held_records: int


def merge_topics(streams: Sequence[Sequence[RecordLike]], rank: Mapping[str, int]) -> list[RecordLike]:
    """The records of one partition's input topics in one application order: each topic's records keep their
    offset order, and across topics the head with the earliest Kafka timestamp goes first (ties: ``rank`` of
    the topic, then the offset).

    Why: a line's grade evaluations read measurements *and* inspections and costs, so the order in which
    records of different topics are applied changes the grade alerts (out-of-control alerts read one
    characteristic, i.e. one topic partition, in offset order, and never depended on it). aiokafka hands a
    fetch over per topic-partition; applying it topic after topic made that order an accident of the fetch
    split — and a replay after a crash, which fetches the backlog in large batches, applied all measurements
    of a batch before all inspections. Merging by timestamp makes the order a function of the records a fetch
    holds and follows event order, so a replay reproduces what the live run applied in small batches.
    """
    streams = [s for s in streams if s]
    if len(streams) <= 1:
        return list(streams[0]) if streams else []
    return list(
        heapq.merge(*streams, key=lambda r: (r.timestamp, rank.get(r.topic, len(rank)), r.offset))
    )


def _reason_class(reason: str) -> str:
    """A bounded label for the dead-letter counter (the full reason goes into the dead-letter record)."""
    head = reason.split(":", 1)[0].strip()
    return head if len(head) <= 40 and IDENT_RE.fullmatch(head.replace(" ", "_")) else "invalid"


class PartitionMachine:
    """The lines owned by one partition number, how far each input topic has been applied, what is dirty and
    what is held; see the module docstring for the contract."""

    def __init__(
        self,
        partition: int,
        partitions: int,
        options: Options,
        specs: SpecRegistry,
        kinds: Mapping[str, Kind],
        max_message_bytes: int,
        commands_topic: str | None = None,
        *,
        batch: bool = True,
    ) -> None:
        self.partition = partition
        # True: a call's measurements are applied per line with LineState.measurements (characteristic by
        # characteristic, identical to one by one — tests/stream/test_machine_property.py compares both)
        self.batch = batch
        self.partitions = partitions
        self.options = options
        self.specs = specs
        self.kinds = dict(kinds)
        self.max_message_bytes = max_message_bytes
        self.commands_topic = commands_topic
        self.lines: dict[str, LineState] = {}
        self.applied: dict[str, int] = {}
        self.checkpointed: dict[str, int] = {}  # ``applied`` as of the last partition record returned
        self._held: list[RecordLike] = []  # the held record first, then every record behind it
        self._hold: Hold | None = None
        self._missing: set[tuple[str, str]] = set()  # verified missing at registry version _missing_version
        self._missing_version = -1
        self._dirty_status: set[str] = set()
        self._dirty_checkpoint: set[str] = set()
        self._grade_changed: set[str] = set()  # dirty lines whose status is due at once (grade alert)
        self._last_status: dict[str, float] = {}
        self._owners: dict[str, int] = {}  # line → owner partition (murmur2 once per line, not per event)
        self._out = Effects()  # the effects of the call in progress
        # alarm events produced outside apply/release (a spec deletion's retire, a restore): handed out first
        # by the next apply/release, or by take_alarm_events (the shell, right before it checkpoints)
        self._alarm_pending: list[dict[str, Any]] = []
        self._audit_pending: list[dict[str, Any]] = []  # their audit records, likewise
        # measurements of the call in progress not yet applied, per line (batch mode): the line's state, its
        # inputs in order and the topic of each (for the counts)
        self._pending: dict[str, tuple[LineState, list[MeasurementInput], list[str]]] = {}

    # ------------------------------------------------------------------------------------------- queries
    def owner(self, line: str) -> int:
        """:func:`owner_partition` of ``line``, memoized (bounded, like the decoder's identifier cache)."""
        p = self._owners.get(line)
        if p is None:
            p = owner_partition(line, self.partitions)
            if len(self._owners) < 100_000:
                self._owners[line] = p
        return p

    def position(self, topic: str) -> int:
        """The first offset of ``topic`` still to apply: where the shell seeks after a restore. Held records
        are not applied, so a revocation while holding hands them to the next owner."""
        return self.applied.get(topic, -1) + 1

    @property
    def hold(self) -> Hold | None:
        return self._hold

    def snapshot(self) -> Snapshot:
        return Snapshot(self.partition, len(self.lines), dict(self.applied), len(self._held))

    def status_of(self, line: str) -> dict[str, Any] | None:
        st = self.lines.get(line)
        return None if st is None else st.status()

    # ----------------------------------------------------------------------------------------- lifecycle
    def restore(self, applied: Mapping[str, int], lines: Mapping[str, LineState]) -> None:
        """Start from a checkpoint (``checkpoint.fold``/``restore``): a characteristic whose spec is gone is
        retired as the deletion would have done (the registry is read to its end before partitions are
        assigned), and every restored line's status is due again (republishing it is idempotent)."""
        self.applied = dict(applied)
        self.checkpointed = dict(applied)
        self.lines = dict(lines)
        for name, st in self.lines.items():
            for char in [c for c in st.characteristics if self.specs.get(name, c) is None]:
                self.retire(name, char)
        self._dirty_status.update(self.lines)

    # ---------------------------------------------------------------------------------------------- input
    def apply(self, records: Iterable[RecordLike]) -> Effects:
        """Apply ``records`` in order; bad input is dead-lettered, never raised. See :class:`Effects`."""
        if self._hold is not None:
            self._held.extend(records)
            return Effects(held=self._hold)
        return self._run(records if isinstance(records, Sequence) else list(records), verified=False)

    def release(self) -> Effects:
        """The shell has read the specs topic to its end: apply the held record taking the registry as
        complete, then the records behind it (which may hold again). Without a hold: nothing to do."""
        if self._hold is None:
            return Effects()
        records, self._held, self._hold = self._held, [], None
        return self._run(records, verified=True)

    def take_alarm_events(self) -> list[dict[str, Any]]:
        """The alarm events produced outside :meth:`apply` (:meth:`retire`, :meth:`restore`) and not yet
        handed out. The shell takes them together with :meth:`checkpoint` (no await in between) and publishes
        them before the checkpoint records: the checkpoint holds the state that produced them."""
        out, self._alarm_pending = self._alarm_pending, []
        return out

    def take_audit_records(self) -> list[dict[str, Any]]:
        """The audit records produced outside :meth:`apply` (with the alarm events of
        :meth:`take_alarm_events`), taken and published the same way, before the checkpoint records."""
        out, self._audit_pending = self._audit_pending, []
        return out

    def _take(self, st: LineState) -> None:
        """Move the line's alarm events and audit records into the effects of the call in progress."""
        self._out.alarm_events.extend(st.take_alarm_events())
        self._out.audit.extend(st.take_audit_records())

    def _run(self, records: Sequence[RecordLike], verified: bool) -> Effects:
        out = self._out = Effects()
        out.alarm_events.extend(self.take_alarm_events())  # caused before these records: published first
        out.audit.extend(self.take_audit_records())
        for i, rec in enumerate(records):
            hold = self._handle(rec, verified=verified and i == 0)
            if hold is not None:
                self._hold = out.held = hold
                self._held = list(records[i:])
                break
        self._flush_all()
        self._out = Effects()
        return out

    def _flush(self, line: str) -> None:
        """Apply the pending measurements of ``line`` (before anything else of that line is applied)."""
        pending = self._pending.pop(line, None)
        if pending is None:
            return
        st, inputs, topics = pending
        accepted, alerts = st.measurements(inputs)
        self._take(st)
        counts = self._out.counts
        any_accepted = False
        for topic, ok in zip(topics, accepted, strict=True):
            counts[(topic, "accepted" if ok else "duplicate")] += 1
            any_accepted = any_accepted or ok
        if any_accepted:
            self._dirty_status.add(line)
            self._dirty_checkpoint.add(line)
        if alerts:
            self._out.alerts.extend(alerts)
            if any(a.get("type") in _GRADE_ALERTS for a in alerts):
                self._grade_changed.add(line)

    def _flush_all(self) -> None:
        for line in list(self._pending):
            self._flush(line)

    def _handle(self, rec: RecordLike, verified: bool) -> Hold | None:
        """Apply one record, or return the hold it needs (before anything of it is applied)."""
        topic, offset = rec.topic, rec.offset
        if offset <= self.applied.get(topic, -1):
            return None  # replayed record whose effect the restored state already has
        if topic == self.commands_topic:
            self._command(topic, offset, rec.timestamp, rec.value)
            self.applied[topic] = offset
            return None
        kind = self.kinds[topic]
        events, rejected = decode(kind, rec.value, self.max_message_bytes)
        if kind == "measurement":
            if verified:
                self._missing_version = self.specs.version
                self._missing.clear()
            else:
                hold = self._needs_spec(topic, offset, events)
                if hold is not None:
                    return hold
        out = self._out
        for bad in rejected:
            self._dead_letter(topic, offset, bad.reason, bad.payload)
        detected_at = rec.timestamp / 1000.0
        foreign: dict[str, list[Event]] = {}
        accepted = duplicates = 0
        line: str | None = None
        st: LineState | None = None  # the events of a message usually share their line: look it up once
        for ev in events:
            if ev.line != line:
                line = ev.line
                st = self._line_state(line) if self.owner(line) == self.partition else None
            if st is None:
                foreign.setdefault(ev.line, []).append(ev)
                continue
            if offset <= st.applied.get(topic, -1):
                continue
            if self.batch and isinstance(ev, Measurement):
                spec = self.specs.get(ev.line, ev.characteristic)
                if spec is not None:
                    pending = self._pending.get(ev.line)
                    if pending is None:
                        pending = self._pending[ev.line] = (st, [], [])
                    pending[1].append(
                        MeasurementInput(ev.characteristic, spec, ev.station, ev.value, ev.ts, ev.event_id,
                                         ev.subgroup, detected_at)
                    )
                    pending[2].append(topic)
                    continue  # counted when applied (_flush)
            elif self._pending:
                self._flush(ev.line)  # the line's earlier measurements first: order within a line
            ok = self._apply_event(topic, offset, st, ev, detected_at, verified)
            if ok:
                accepted += 1
            elif ok is not None:
                duplicates += 1
        if accepted:
            out.counts[(topic, "accepted")] += accepted
        if duplicates:
            out.counts[(topic, "duplicate")] += duplicates
        if foreign:
            self._forward(topic, foreign)
        self.applied[topic] = offset
        return None

    def _needs_spec(self, topic: str, offset: int, events: list[Event]) -> Hold | None:
        """The first owned measurement naming a characteristic without a spec, unless already verified
        missing at this registry version (so one missing spec holds once, not on every record)."""
        if self._missing_version != self.specs.version:
            self._missing.clear()
            self._missing_version = self.specs.version
        for ev in events:
            if not isinstance(ev, Measurement):
                continue
            wanted = (ev.line, ev.characteristic)
            if (
                self.specs.get(*wanted) is None
                and wanted not in self._missing
                and self.owner(ev.line) == self.partition
            ):
                return Hold(topic, offset, ev.line, ev.characteristic)
        return None

    def _line_state(self, line: str) -> LineState:
        st = self.lines.get(line)
        if st is None:
            st = self.lines[line] = LineState(line, self.options)
        return st

    def _apply_event(
        self, topic: str, offset: int, st: LineState, ev: Event, detected_at: float, verified: bool
    ) -> bool | None:
        """Apply one owned event: True if accepted, False for a duplicate, None if dead-lettered."""
        if isinstance(ev, Measurement):
            spec = self.specs.get(ev.line, ev.characteristic)
            if spec is None:
                if verified:
                    self._missing.add((ev.line, ev.characteristic))
                self._dead_letter(
                    topic,
                    offset,
                    f"no_spec: no specification for {ev.line}/{ev.characteristic}",
                    _measurement_payload(ev),
                )
                return None
            accepted, alerts = st.measurement(
                ev.characteristic, spec, ev.station, ev.value, ev.ts, ev.event_id, ev.subgroup, detected_at
            )
        elif isinstance(ev, Inspection):
            accepted, alerts = st.inspection(
                ev.station,
                ev.passed,
                ev.first_pass,
                ev.defects,
                ev.opportunities,
                ev.ts,
                ev.event_id,
                detected_at,
            )
        else:
            accepted, alerts = st.quality_cost(
                ev.internal_loss, ev.external_loss, ev.output_value, ev.ts, ev.event_id, detected_at
            )
        self._take(st)
        if accepted:
            self._dirty_status.add(st.line)
            self._dirty_checkpoint.add(st.line)
        if alerts:
            self._out.alerts.extend(alerts)
            if any(a.get("type") in _GRADE_ALERTS for a in alerts):
                self._grade_changed.add(st.line)
        return accepted

    def _forward(self, topic: str, foreign: dict[str, list[Event]]) -> None:
        """Re-key events that arrived on a partition that does not own their line (SPEC §2), once."""
        out = self._out
        for line, evs in foreign.items():
            docs = [_event_doc(ev) for ev in evs]
            payload = orjson.dumps(docs[0] if len(docs) == 1 else docs)
            out.forwards.append((topic, self.owner(line), line, payload))
            out.counts[(topic, "rekeyed")] += len(evs)

    def _dead_letter(self, topic: str, offset: int, reason: str, payload: Any) -> None:
        out = self._out
        out.dead_letters.append(
            {
                "topic": topic,
                "partition": self.partition,
                "offset": offset,
                "reason": reason,
                "payload": payload,
            }
        )
        out.counts[(topic, "dead_letter")] += 1
        out.rejected_reasons[(topic, _reason_class(reason))] += 1

    # ------------------------------------------------------------------------------------------- commands
    def _command(self, topic: str, offset: int, timestamp_ms: int, value: bytes | None) -> None:
        """One record of the commands topic: ``{"command": "rebaseline", "line", "characteristic", …}``."""
        try:
            doc = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError as exc:
            payload = (value or b"")[:65536].decode("utf-8", "replace")
            self._dead_letter(topic, offset, f"invalid_command: not JSON ({exc})", payload)
            return
        line = doc.get("line") if isinstance(doc, dict) else None
        char = doc.get("characteristic") if isinstance(doc, dict) else None
        if (
            not isinstance(doc, dict)
            or doc.get("command") != "rebaseline"
            or not isinstance(line, str)
            or not isinstance(char, str)
            or not IDENT_RE.fullmatch(line)
            or not IDENT_RE.fullmatch(char)
        ):
            self._dead_letter(
                topic, offset, "invalid_command: expected {command: rebaseline, line, characteristic}", doc
            )
            return
        owner = self.owner(line)
        if owner != self.partition:  # produced with another key or partitioner: re-key it once
            self._out.forwards.append((topic, owner, line, value or b""))
            self._out.counts[(topic, "rekeyed")] += 1
            return
        st = self.lines.get(line)
        if st is not None and offset <= st.applied.get(topic, -1):
            return  # the line's own checkpoint already holds it
        self._flush(line)  # a re-baseline reads the window: the line's earlier measurements first
        alerts = st.rebaseline(char, timestamp_ms / 1000.0) if st is not None else None
        if alerts is None:
            reason = f"rebaseline_failed: no data (or no within-subgroup variation yet) for {line}/{char}"
            self._dead_letter(topic, offset, reason, doc)
            return
        self._out.alerts.extend(alerts)
        if st is not None:
            self._take(st)
        self._dirty_status.add(line)
        self._dirty_checkpoint.add(line)
        self._out.counts[(topic, "accepted")] += 1

    def retire(self, line: str, characteristic: str) -> bool:
        """A spec was deleted: drop the characteristic from its line (``LineState.retire``), if held here."""
        st = self.lines.get(line)
        if st is None or not st.retire(characteristic):
            return False
        self._alarm_pending.extend(st.take_alarm_events())  # its control alarm's clear, if it was active
        self._audit_pending.extend(st.take_audit_records())
        self._dirty_status.add(line)
        self._dirty_checkpoint.add(line)
        return True

    # --------------------------------------------------------------------------------------------- output
    def status_due(self, now: float, interval: float, force: bool = False) -> list[tuple[str, bytes]]:
        """``(line, status JSON)`` of the changed lines whose status is due: ``interval`` seconds after the
        line's last one on the shell's clock ``now``, at once after a grade alert, or all with ``force``."""
        if not self._dirty_status:
            return []
        last = self._last_status
        due = [
            line
            for line in self._dirty_status
            if force or line in self._grade_changed or now - last.get(line, float("-inf")) >= interval
        ]
        docs = []
        for line in sorted(due):
            docs.append((line, orjson.dumps(self.lines[line].status())))
            last[line] = now
        self._dirty_status.difference_update(due)
        self._grade_changed.difference_update(due)
        return docs

    def checkpoint(self) -> list[tuple[bytes, bytes]]:
        """The checkpoint records to write to this partition of the checkpoint topic, in order: the state of
        every line changed since the last checkpoint (each stamped with ``applied``), then the partition
        record; empty when nothing was applied since. Any prefix is consistent (the partition record comes
        last), so the shell may write them and mark nothing: the machine counts them as written."""
        if not self.applied or (not self._dirty_checkpoint and self.applied == self.checkpointed):
            return []
        out: list[tuple[bytes, bytes]] = []
        for line in sorted(self._dirty_checkpoint):
            st = self.lines[line]
            st.applied = dict(self.applied)
            out.append((line.encode(), checkpoint.encode_line(st)))
        self._dirty_checkpoint.clear()
        out.append((checkpoint.PARTITION_KEY, checkpoint.encode_partition(self.applied, self.partitions)))
        self.checkpointed = dict(self.applied)
        return out


def _measurement_payload(ev: Measurement) -> dict[str, Any]:
    return {
        "event_id": ev.event_id,
        "line": ev.line,
        "station": ev.station,
        "characteristic": ev.characteristic,
        "value": ev.value,
        "subgroup": ev.subgroup,
        "ts": round(ev.ts * 1000),
    }


def _event_doc(ev: Event) -> dict[str, Any]:
    """A normalized event back as an input document, for re-keying (ts as epoch milliseconds)."""
    ts = round(ev.ts * 1000)
    if isinstance(ev, Measurement):
        doc = _measurement_payload(ev)
        if ev.station is None:
            del doc["station"]
        if ev.subgroup is None:
            del doc["subgroup"]
        elif ev.subgroup.startswith("#") and ev.subgroup[1:].lstrip("-").isdigit():
            doc["subgroup"] = int(ev.subgroup[1:])
        return doc
    if isinstance(ev, Inspection):
        out: dict[str, Any] = {
            "event_id": ev.event_id,
            "ts": ts,
            "line": ev.line,
            "station": ev.station,
            "passed": ev.passed,
            "first_pass": ev.first_pass,
        }
        if ev.defects is not None:
            out["defects"] = ev.defects
        if ev.opportunities is not None:
            out["opportunities"] = ev.opportunities
        return out
    return {
        "event_id": ev.event_id,
        "ts": ts,
        "line": ev.line,
        "internal_loss": ev.internal_loss,
        "external_loss": ev.external_loss,
        "output_value": ev.output_value,
    }


__all__ = [
    "Effects",
    "Hold",
    "PartitionMachine",
    "Record",
    "RecordLike",
    "Snapshot",
    "merge_topics",
    "owner_partition",
]
