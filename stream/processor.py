"""Applies raw input records of one partition number to the lines that partition owns.

Kafka-agnostic on purpose: the worker feeds it ``(topic, offset, timestamp, key, value)`` in offset order
and drains its outputs; tests and the benchmark drive it directly. A line is owned by partition
``murmur2(line) % partitions`` (the Java client's and kafka-python's default partitioner), for every input
topic alike, so one worker holds all of a line's inputs once the topics are co-partitioned (range assignor).

Exactly-once effect without broker transactions (SPEC §10): ``applied`` records, per input topic, the last
offset whose effect is in the state. A checkpoint stores the states together with ``applied``; after a
restore the worker seeks every input partition to ``applied + 1`` and replays, and a line whose own
checkpoint is newer than the partition's skips the offsets it already holds (``LineState.applied``).

Operator commands (``POST …/baseline``) arrive the same way: the commands topic is keyed by line and
co-partitioned with the input topics, so a command is one more input record of its line's partition, applied
once, in order, under the same ``applied`` bookkeeping — a restart never runs an old command again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from cpkmon.alerts.line import LineState
from cpkmon.capability.options import Options
from cpkmon.stream.events import (
    IDENT_RE,
    Inspection,
    Kind,
    Measurement,
    QualityCost,
    Rejected,
    decode,
)
from cpkmon.stream.specs import SpecRegistry


class SpecsBehind(Exception):
    """A measurement names a characteristic the registry does not know (yet).

    Raised before anything of the message is applied, so the worker can wait until it has read the specs topic
    to its current end and hand the same record in again; only a spec still unknown then is dead-lettered.
    Producers publish a spec before its first measurement, so this closes that race without holding events.
    """


def owner_partition(line: str, partitions: int) -> int:
    """The partition a line's records belong to: what Kafka's default partitioner picks for key = line."""
    h = int(murmur2(line.encode("utf-8")))
    return (h & 0x7FFFFFFF) % partitions


@dataclass
class Outputs:
    """What applying records produced; the worker drains it after every batch."""

    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    forwards: list[tuple[str, int, str, bytes]] = field(default_factory=list)  # topic, partition, key, value
    alerts: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, outcome) → events
    rejected_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)

    def clear(self) -> None:
        self.dead_letters.clear()
        self.forwards.clear()
        self.alerts.clear()
        self.counts.clear()
        self.rejected_reasons.clear()


def _reason_class(reason: str) -> str:
    """A bounded label for the dead-letter counter (the full reason goes into the dead-letter record)."""
    head = reason.split(":", 1)[0].strip()
    return head if len(head) <= 40 and IDENT_RE.fullmatch(head.replace(" ", "_")) else "invalid"


class PartitionProcessor:
    """The lines owned by one partition number and how far each input topic has been applied."""

    def __init__(
        self,
        partition: int,
        partitions: int,
        options: Options,
        specs: SpecRegistry,
        kinds: dict[str, Kind],
        max_message_bytes: int,
        outputs: Outputs,
        commands_topic: str | None = None,
    ) -> None:
        self.partition = partition
        self.commands_topic = commands_topic
        self.partitions = partitions
        self.options = options
        self.specs = specs
        self.kinds = kinds
        self.max_message_bytes = max_message_bytes
        self.out = outputs
        self.lines: dict[str, LineState] = {}
        self.applied: dict[str, int] = {}
        self.checkpointed: dict[str, int] = {}  # ``applied`` as of the last partition record written
        self.specs_verified = False  # True while re-handling records after the spec follower caught up
        self._missing: set[tuple[str, str]] = set()  # verified missing at registry version _missing_version
        self._missing_version = -1
        self.dirty_status: set[str] = set()
        self.dirty_checkpoint: set[str] = set()
        self.grade_changed: set[str] = set()
        self._owners: dict[str, int] = {}  # line → owner partition (murmur2 once per line, not per event)

    def owner(self, line: str) -> int:
        """:func:`owner_partition` of ``line``, memoized (bounded, like the decoder's identifier cache)."""
        p = self._owners.get(line)
        if p is None:
            p = owner_partition(line, self.partitions)
            if len(self._owners) < 100_000:
                self._owners[line] = p
        return p

    # ---------------------------------------------------------------------------------------------- state
    def line_state(self, line: str) -> LineState:
        st = self.lines.get(line)
        if st is None:
            st = self.lines[line] = LineState(line, self.options)
        return st

    def restore(self, applied: dict[str, int], lines: dict[str, LineState]) -> None:
        self.applied = dict(applied)
        self.checkpointed = dict(applied)
        self.lines = dict(lines)

    def position(self, topic: str) -> int:
        """The first offset of ``topic`` this partition still has to apply."""
        return self.applied.get(topic, -1) + 1

    # ---------------------------------------------------------------------------------------------- input
    def handle(
        self, topic: str, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None
    ) -> None:
        """Apply one record. Never raises for bad input: it is dead-lettered with a reason."""
        if offset <= self.applied.get(topic, -1):
            return  # replayed record whose effect the restored state already has
        if topic == self.commands_topic:
            self._command(topic, offset, timestamp_ms, value)
            self.applied[topic] = offset
            return
        kind = self.kinds[topic]
        detected_at = timestamp_ms / 1000.0
        events, rejected = decode(kind, value, self.max_message_bytes)
        if kind == "measurement" and not self.specs_verified:
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
                    raise SpecsBehind(*wanted)
        for bad in rejected:
            self._dead_letter(topic, offset, bad.reason, bad.payload)
        foreign: dict[str, list[Event]] = {}
        accepted = duplicates = 0
        line: str | None = None
        st: LineState | None = None  # the state of ``line`` when it is owned here (the events of a message
        # usually share their line: look it up once)
        for ev in events:
            if ev.line != line:
                line = ev.line
                st = self.line_state(line) if self.owner(line) == self.partition else None
            if st is None:
                foreign.setdefault(ev.line, []).append(ev)
                continue
            if offset <= st.applied.get(topic, -1):
                continue
            ok = self._apply(topic, offset, st, ev, detected_at)
            if ok:
                accepted += 1
            elif ok is not None:
                duplicates += 1
        if accepted:
            self.out.counts[(topic, "accepted")] += accepted
        if duplicates:
            self.out.counts[(topic, "duplicate")] += duplicates
        if foreign:
            self._forward(topic, foreign)
        self.applied[topic] = offset

    def _apply(self, topic: str, offset: int, st: LineState, ev: Event, detected_at: float) -> bool | None:
        """Apply one owned event: True if accepted, False for a duplicate, None if dead-lettered (counted
        there); the caller counts accepted and duplicate events per message."""
        if isinstance(ev, Measurement):
            spec = self.specs.get(ev.line, ev.characteristic)
            if spec is None:
                if self.specs_verified:
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
        if accepted:
            self.dirty_status.add(st.line)
            self.dirty_checkpoint.add(st.line)
        if alerts:
            self.out.alerts.extend(alerts)
            if any(a.get("type") in ("grade_degraded", "grade_recovered") for a in alerts):
                self.grade_changed.add(st.line)
        return accepted

    def _forward(self, topic: str, foreign: dict[str, list[Event]]) -> None:
        """Re-key events that arrived on a partition that does not own their line (SPEC §2), once."""
        for line, evs in foreign.items():
            docs = [_event_doc(ev) for ev in evs]
            payload = orjson.dumps(docs[0] if len(docs) == 1 else docs)
            self.out.forwards.append((topic, self.owner(line), line, payload))
            self.out.counts[(topic, "rekeyed")] += len(evs)

    def _dead_letter(self, topic: str, offset: int, reason: str, payload: Any) -> None:
        self.out.dead_letters.append(
            {
                "topic": topic,
                "partition": self.partition,
                "offset": offset,
                "reason": reason,
                "payload": payload,
            }
        )
        self.out.counts[(topic, "dead_letter")] += 1
        self.out.rejected_reasons[(topic, _reason_class(reason))] += 1

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
            self.out.forwards.append((topic, owner, line, value or b""))
            self.out.counts[(topic, "rekeyed")] += 1
            return
        st = self.lines.get(line)
        if st is not None and offset <= st.applied.get(topic, -1):
            return  # the line's own checkpoint already holds it
        if not self.rebaseline(line, char, timestamp_ms / 1000.0):
            reason = f"rebaseline_failed: no data (or no within-subgroup variation yet) for {line}/{char}"
            self._dead_letter(topic, offset, reason, doc)
            return
        self.out.counts[(topic, "accepted")] += 1

    def retire(self, line: str, characteristic: str) -> bool:
        """A spec was deleted: drop the characteristic from its line (``LineState.retire``), if held here."""
        st = self.lines.get(line)
        if st is None or not st.retire(characteristic):
            return False
        self.dirty_status.add(line)
        self.dirty_checkpoint.add(line)
        return True

    def rebaseline(self, line: str, characteristic: str, detected_at: float | None = None) -> bool:
        """Re-freeze a characteristic's control limits from its current window and judge that window against
        them; the alerts that raises go out like any other. False: no such data or no variation yet."""
        st = self.lines.get(line)
        alerts = st.rebaseline(characteristic, detected_at) if st is not None else None
        if alerts is None:
            return False
        self.out.alerts.extend(alerts)
        self.dirty_status.add(line)
        self.dirty_checkpoint.add(line)
        return True

    def mark_checkpointed(self, lines: set[str]) -> None:
        for line in lines:
            st = self.lines.get(line)
            if st is not None:
                st.applied = dict(self.applied)


Event = Measurement | Inspection | QualityCost


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


__all__ = ["Outputs", "PartitionProcessor", "Rejected", "SpecsBehind", "owner_partition"]
