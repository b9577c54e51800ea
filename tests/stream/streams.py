"""Random input streams of one partition for the broker-free machine tests (``test_machine*.py``).

A stream is a list of :class:`Item`: an input record of the partition (``Record``) or a spec record, which the
drivers apply to the registry at its position (as the spec follower would between two batches). The content
is built to exercise everything the machine does: subgroups of several characteristics in per-part
messages, a process that drifts (out-of-control *and* grade alerts), inspections, costs, producer resends
(duplicate event ids), Kafka redeliveries of an old offset, bad input, a characteristic without a spec (spec
hold, then ``no_spec``), a line owned by the other partition (forwarded), a spec change and a re-baseline.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from cpkmon.capability.options import Options
from cpkmon.stream.checkpoint import owner_partition
from cpkmon.stream.events import Kind
from cpkmon.stream.machine import Effects, PartitionMachine, Record
from cpkmon.stream.specs import SpecRegistry

M, INS, Q, CMD = "in.m", "in.i", "in.q", "in.cmd"
KINDS: dict[str, Kind] = {M: "measurement", INS: "inspection", Q: "quality_cost"}
PARTS = 2
OPTIONS = Options(window_subgroups=8, min_subgroups=5, min_units=20, confirm_evaluations=2, yield_window=200)
LSL, USL, TARGET = 9.0, 11.5, 10.0  # the recompute's spec (tests/capability/test_streaming_equals_batch.py)
BASE_MS = 1_795_000_000_000


def _owned(partition: int) -> list[str]:
    return [f"L{i}" for i in range(1, 60) if owner_partition(f"L{i}", PARTS) == partition]


P = owner_partition("L1", PARTS)
A, B = _owned(P)[:2]
FOREIGN = _owned(1 - P)[0]


@dataclass(frozen=True)
class Item:
    record: Record | None = None
    spec: tuple[bytes, bytes | None] | None = None  # a specs-topic record: key, value (None: deletion)


@dataclass
class Stream:
    items: list[Item] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    stable: set[tuple[str, str]] = field(default_factory=set)  # specs set once, before any value: recompute
    subgroups: dict[tuple[str, str], list[list[tuple[str, float]]]] = field(default_factory=dict)

    def record(self, topic: str, value: bytes | None, key: str | None = None) -> Record:
        off = self.offsets[topic] = self.offsets.get(topic, -1) + 1
        ts = BASE_MS + 1000 * len(self.items) + 7 * off
        rec = Record(topic, P, off, ts, None if key is None else key.encode(), value)
        self.items.append(Item(record=rec))
        return rec

    def spec(self, line: str, char: str, doc: dict[str, Any] | None) -> None:
        value = None if doc is None else orjson.dumps({"line": line, "characteristic": char, **doc})
        self.items.append(Item(spec=(f"{line}/{char}".encode(), value)))

    @property
    def records(self) -> list[Record]:
        return [it.record for it in self.items if it.record is not None]


def build(
    seed: int,
    *,
    subgroups: int = 40,
    dup_rate: float = 0.05,
    bad_rate: float = 0.03,
    redeliver_rate: float = 0.02,
    drift_at: int = 18,
    nospec_rate: float = 0.08,
) -> Stream:
    """A stream of ``subgroups`` rounds; see the module docstring. Deterministic in ``seed``."""
    rng = random.Random(seed)
    s = Stream()
    for line in (A, B):
        s.spec(line, "bore", {"lsl": LSL, "usl": USL, "target": TARGET, "subgroup_size": 5})
        s.stable.add((line, "bore"))
    s.spec(A, "depth", {"lsl": 4.0, "usl": 6.0, "subgroup_size": 3})
    sent: list[bytes] = []
    n_event = 0
    for g in range(subgroups):
        shift = 0.55 if g >= drift_at else 0.0  # Cpk ≈ 1.7 → ≈ 0.8: out of control, then grade alerts
        if g == drift_at + 10:
            s.spec(A, "depth", {"lsl": 3.9, "usl": 6.1, "subgroup_size": 3})  # a spec change restarts depth
        if g == drift_at + 6:
            s.record(CMD, orjson.dumps({"command": "rebaseline", "line": A, "characteristic": "bore"}), A)
        for line in (A, B):
            size = 5 if rng.random() > 0.1 else rng.choice([3, 4])
            values = []
            mean = 10.0 + (shift if line == A else 0.0) + rng.gauss(0, 0.03)
            for k in range(size):
                n_event += 1
                v = round(rng.gauss(mean, 0.1), 6)
                values.append((f"e{n_event}", v))
                doc: dict[str, Any] = {
                    "event_id": f"e{n_event}",
                    "ts": BASE_MS + g * 1000 + k,
                    "line": line,
                    "characteristic": "bore",
                    "value": v,
                    "subgroup": f"g{g}",
                }
                docs = [doc]
                if line == A and k < 3:
                    n_event += 1
                    docs.append({**doc, "event_id": f"e{n_event}", "characteristic": "depth",
                                 "value": round(rng.gauss(5.0, 0.2), 6)})
                raw = orjson.dumps(docs)
                sent.append(raw)
                s.record(M, raw, line)
            s.subgroups.setdefault((line, "bore"), []).append(values)
        if rng.random() < 0.5:  # inspections of one station
            for _ in range(rng.randint(1, 4)):
                n_event += 1
                passed = rng.random() > 0.03
                s.record(INS, orjson.dumps({"event_id": f"e{n_event}", "ts": BASE_MS + g * 1000, "line": A,
                                          "station": "S1", "passed": passed, "first_pass": passed,
                                          "defects": 0 if passed else 1, "opportunities": 40}), A)
        if g % 9 == 4:
            n_event += 1
            s.record(Q, orjson.dumps({"event_id": f"e{n_event}", "ts": BASE_MS + g * 1000, "line": B,
                                      "internal_loss": rng.uniform(0, 50), "external_loss": rng.uniform(0, 5),
                                      "output_value": 10_000.0}), B)
        if rng.random() < dup_rate * 5 and sent:  # a producer resend of a message still in its window
            s.record(M, sent[-rng.randint(1, min(3, len(sent)))])
        if rng.random() < bad_rate * 5:
            s.record(M, rng.choice([b"{", b'{"line": "A"}', None, b"[1, 2]", b'{"event_id": "x", "ts": -1}']))
        if rng.random() < nospec_rate:  # no spec: holds, then no_spec
            n_event += 1
            s.record(M, orjson.dumps({"event_id": f"e{n_event}", "ts": BASE_MS + g * 1000, "line": B,
                                      "characteristic": "nospec", "value": 1.0}), B)
        if rng.random() < 0.08:  # a line owned by the other partition: forwarded once
            n_event += 1
            s.record(M, orjson.dumps({"event_id": f"e{n_event}", "ts": BASE_MS + g * 1000, "line": FOREIGN,
                                      "characteristic": "bore", "value": 10.0}), FOREIGN)
        if rng.random() < redeliver_rate * 5 and s.records:  # Kafka redelivers an applied offset
            old = rng.choice(s.records)
            s.items.append(Item(record=old))
    return s


def machine(specs: SpecRegistry, options: Options = OPTIONS, batch: bool = True) -> PartitionMachine:
    return PartitionMachine(P, PARTS, options, specs, KINDS, 1 << 20, commands_topic=CMD, batch=batch)


def by_line(alerts: list[dict[str, Any]]) -> dict[str, list[bytes]]:
    """Alerts per line, in order: the order that is defined (the alerts topic is keyed by line, so alerts of
    different lines have no order between them; a batch applies a line's measurements together)."""
    out: dict[str, list[bytes]] = {}
    for a in alerts:
        out.setdefault(str(a["line"]), []).append(orjson.dumps(a))
    return out


def drive(
    m: PartitionMachine, specs: SpecRegistry, items: list[Item], cuts: set[int] | None = None
) -> Effects:
    """Apply ``items`` in batches cut before every index in ``cuts`` (None: one record at a time) and at
    every spec record; a hold is released at once (the specs of the stream are all the registry will get
    before that point). Returns every effect, in order."""
    total = Effects()
    batch: list[Record] = []

    def flush() -> None:
        if batch:
            eff = m.apply(list(batch))
            total.extend(eff)
            while eff.held is not None:
                eff = m.release()
                total.extend(eff)
            batch.clear()

    for i, it in enumerate(items):
        if it.spec is not None:
            flush()
            change = specs.apply_record(*it.spec)
            if change.action == "delete" and change.line and change.characteristic:
                m.retire(change.line, change.characteristic)
            continue
        if cuts is None or i in cuts:
            flush()
        assert it.record is not None
        batch.append(it.record)
    flush()
    total.alarm_events.extend(m.take_alarm_events())  # a retire's clear after the last record
    return total


def statuses(m: PartitionMachine) -> dict[str, bytes]:
    return {line: orjson.dumps(st.status()) for line, st in sorted(m.lines.items())}
