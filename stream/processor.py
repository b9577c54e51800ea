"""Record-at-a-time adapter over :class:`cpkmon.stream.machine.PartitionMachine`.

The worker drives the machine directly (batches in, :class:`~cpkmon.stream.machine.Effects` out). This adapter
keeps the older one-record interface for tools and tests that apply records one by one into one shared
:class:`Outputs` with a spec registry that is already complete: a spec hold is released at once (there is
no spec follower to wait for), so a measurement without a spec is dead-lettered ``no_spec`` as the worker
would do after its barrier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cpkmon.alerts.line import LineState
from cpkmon.capability.options import Options
from cpkmon.stream.checkpoint import owner_partition
from cpkmon.stream.events import Kind, Rejected
from cpkmon.stream.machine import Effects, PartitionMachine, Record
from cpkmon.stream.specs import SpecRegistry

#: The effects container; the name older callers (and ``bench/pipeline.py``) use.
Outputs = Effects


class PartitionProcessor:
    """One partition's :class:`PartitionMachine`, fed one record at a time; effects accumulate in ``out``."""

    def __init__(
        self,
        partition: int,
        partitions: int,
        options: Options,
        specs: SpecRegistry,
        kinds: Mapping[str, Kind],
        max_message_bytes: int,
        outputs: Outputs,
        commands_topic: str | None = None,
    ) -> None:
        self.machine = PartitionMachine(
            partition, partitions, options, specs, kinds, max_message_bytes, commands_topic
        )
        self.out = outputs

    @property
    def partition(self) -> int:
        return self.machine.partition

    @property
    def lines(self) -> dict[str, LineState]:
        return self.machine.lines

    @property
    def applied(self) -> dict[str, int]:
        return self.machine.applied

    def position(self, topic: str) -> int:
        return self.machine.position(topic)

    def restore(self, applied: Mapping[str, int], lines: Mapping[str, LineState]) -> None:
        self.machine.restore(applied, lines)

    def handle(
        self, topic: str, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None
    ) -> None:
        """Apply one record. Never raises for bad input: it is dead-lettered with a reason."""
        effects = self.machine.apply([Record(topic, self.partition, offset, timestamp_ms, key, value)])
        while effects.held is not None:
            effects.extend(self.machine.release())
        self.out.extend(effects)

    def mark_checkpointed(self, lines: Iterable[str]) -> None:
        """Stamp ``lines`` with the partition's ``applied``, as a checkpoint of them does."""
        for line in lines:
            st = self.machine.lines.get(line)
            if st is not None:
                st.applied = dict(self.machine.applied)


__all__ = ["Outputs", "PartitionProcessor", "Rejected", "owner_partition"]
