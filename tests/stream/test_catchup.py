"""``cpkmon.catchup.read_to_end`` with a reused reader (the API's audit pager keeps one consumer).

A scripted stand-in for aiokafka's consumer, with aiokafka's own rule that ``assign`` starts every
partition's state afresh (high watermark unknown) while ``seek`` keeps it. The first fetch rounds after a call
bring nothing (a slow broker); the reader must still return every record it could know is there: a page that
had eight records must not come back empty on the next call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from cpkmon.catchup import read_to_end

TP = TopicPartition("cpkmon.audit", 0)


@dataclass
class Rec:
    partition: int
    offset: int


class SlowReader:
    """Holds ``size`` records; every call's first ``slow_rounds`` fetch rounds return nothing."""

    def __init__(self, size: int, slow_rounds: int) -> None:
        self.size = size
        self.slow_rounds = slow_rounds
        self._assigned: set[TopicPartition] = set()
        self._pos = 0
        self._hw: int | None = None
        self._quiet = 0
        self.assigns = 0

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigns += 1
        self._assigned = set(tps)
        self._hw = None  # aiokafka: a fresh TopicPartitionState, highwater None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._pos = offset  # aiokafka: position only, the high watermark stays
        self._quiet = self.slow_rounds

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._hw

    async def position(self, tp: TopicPartition) -> int:
        return self._pos

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, list[Rec]]:
        await asyncio.sleep(0)
        if self._quiet > 0:
            self._quiet -= 1
            return {}
        self._hw = self.size
        batch = [Rec(0, o) for o in range(self._pos, min(self.size, self._pos + max_records))]
        self._pos += len(batch)
        return {TP: batch} if batch else {}


def test_a_reused_reader_keeps_what_it_knew_of_the_end() -> None:
    async def run() -> tuple[list[int], list[int], int]:
        reader = SlowReader(size=8, slow_rounds=0)
        first = await read_to_end(reader, [TP])  # type: ignore[arg-type]
        reader.slow_rounds = 3  # the broker is slow now: three empty rounds before the first records
        second = await read_to_end(reader, [TP])  # type: ignore[arg-type]
        return [r.offset for r in first], [r.offset for r in second], reader.assigns

    first, second, assigns = asyncio.run(run())
    assert first == list(range(8))
    assert second == list(range(8)), "the second read ended on an unknown high watermark"
    assert assigns == 1


def test_a_new_assignment_is_still_made() -> None:
    async def run() -> int:
        reader = SlowReader(size=3, slow_rounds=0)
        await read_to_end(reader, [TP])  # type: ignore[arg-type]
        await read_to_end(reader, [TP, TopicPartition("cpkmon.audit", 1)])  # type: ignore[arg-type]
        return reader.assigns

    assert asyncio.run(run()) == 2
