"""Commands are inputs, not state (issue 10, finding 2): a re-baseline from the commands topic is applied once
by the partition that owns its line, under the same ``applied`` bookkeeping as the input topics, so a replay
or a restore never runs it again; and the specs topic's legacy command records change nothing."""

from __future__ import annotations

import random
from typing import Any

import orjson

from cpkmon.alerts.line import LineState
from cpkmon.settings import Settings, core_options
from cpkmon.stream.processor import Outputs, PartitionProcessor, owner_partition
from cpkmon.stream.specs import SpecRegistry

M, CMD = "cpkmon.measurements", "cpkmon.commands"
KINDS: Any = {M: "measurement"}
PARTS = 4
OPTIONS = core_options(Settings(min_subgroups=5, window_subgroups=8))


def processor(line: str, specs: SpecRegistry, out: Outputs) -> PartitionProcessor:
    return PartitionProcessor(owner_partition(line, PARTS), PARTS, OPTIONS, specs, KINDS, 1 << 20, out, CMD)


def subgroups(
    proc: PartitionProcessor, line: str, first: int, count: int, mean: float, rng: random.Random
) -> int:
    """``count`` subgroups of 5 values around ``mean`` at offsets from ``first``; returns the next offset."""
    off = first
    for sg in range(first, first + count):
        doc = [
            {
                "event_id": f"{line}-{sg}-{k}",
                "ts": 1_795_000_000_000 + sg * 1000 + k,
                "line": line,
                "characteristic": "bore",
                "value": round(rng.gauss(mean, 0.01), 5),
            }
            for k in range(5)
        ]
        proc.handle(M, off, 1_795_000_000_000 + off, line.encode(), orjson.dumps(doc))
        off += 1
    return off


def limits(proc: PartitionProcessor, line: str) -> Any:
    return proc.lines[line].status()["characteristics"][0]["control"]


def command(line: str, char: str = "bore") -> bytes:
    return orjson.dumps({"command": "rebaseline", "line": line, "characteristic": char, "requested_at": "x"})


def test_rebaseline_is_applied_once_and_survives_restore_without_running_again() -> None:
    rng = random.Random(4)
    specs = SpecRegistry()
    specs.set({"line": "L1", "characteristic": "bore", "lsl": 73.9, "usl": 74.1})
    out = Outputs()
    proc = processor("L1", specs, out)
    off = subgroups(proc, "L1", 0, 8, 74.0, rng)
    first = limits(proc, "L1")
    off = subgroups(proc, "L1", off, 8, 74.03, rng)  # the process moved: the window no longer matches
    assert limits(proc, "L1") == first  # limits stay frozen until a re-baseline
    proc.handle(CMD, 0, 0, b"L1", command("L1"))
    rebased = limits(proc, "L1")
    assert rebased != first and abs(rebased["center"] - 74.03) < 0.01
    assert proc.applied[CMD] == 0 and out.counts[(CMD, "accepted")] == 1
    off = subgroups(proc, "L1", off, 8, 74.06, rng)  # moves again after the re-baseline
    assert limits(proc, "L1") == rebased

    # a replay of the same command offset (a restart seeking to applied + 1, or a redelivery) is skipped
    proc.handle(CMD, 0, 0, b"L1", command("L1"))
    assert limits(proc, "L1") == rebased and out.counts[(CMD, "accepted")] == 1

    # a restore from a checkpoint carries the command offset: replaying the commands topic from the
    # beginning changes nothing (this is what re-reading the specs topic on restart used to get wrong)
    proc.mark_checkpointed({"L1"})
    state = LineState.from_dict(orjson.loads(orjson.dumps(proc.lines["L1"].to_dict())), OPTIONS)
    restored = processor("L1", specs, Outputs())
    restored.restore(dict(proc.applied), {"L1": state})
    assert restored.position(CMD) == 1
    restored.handle(CMD, 0, 0, b"L1", command("L1"))
    assert limits(restored, "L1") == rebased
    # a new command does run
    restored.handle(CMD, 1, 0, b"L1", command("L1"))
    assert abs(limits(restored, "L1")["center"] - 74.06) < 0.01


def test_commands_for_other_partitions_are_rekeyed_bad_ones_dead_lettered() -> None:
    specs = SpecRegistry()
    out = Outputs()
    proc = processor("L1", specs, out)
    other = next(f"L{i}" for i in range(2, 100) if owner_partition(f"L{i}", PARTS) != proc.partition)
    proc.handle(CMD, 0, 0, b"L1", command(other))
    assert out.forwards == [(CMD, owner_partition(other, PARTS), other, command(other))]
    for off, raw in enumerate(
        [
            b"{",
            b'{"command": "explode", "line": "L1", "characteristic": "bore"}',
            b'{"command": "rebaseline", "line": "L 1", "characteristic": "bore"}',
            command("L1", "unknown"),
        ],
        start=1,
    ):
        proc.handle(CMD, off, 0, b"L1", raw)
    reasons = [d["reason"].split(":")[0] for d in out.dead_letters]
    assert reasons == ["invalid_command", "invalid_command", "invalid_command", "rebaseline_failed"]
    assert proc.applied[CMD] == 4


def test_legacy_rebaseline_record_in_the_specs_topic_is_not_a_spec() -> None:
    specs = SpecRegistry()
    spec = {"line": "L1", "characteristic": "bore", "lsl": 1.0, "usl": 2.0}
    specs.apply_record(b"L1/bore", orjson.dumps(spec))
    change = specs.apply_record(
        b"L1/bore", orjson.dumps({"command": "rebaseline", "line": "L1", "characteristic": "bore"})
    )
    assert change.action == "rebaseline"  # reported, and the worker ignores it
    assert specs.get("L1", "bore") is not None
