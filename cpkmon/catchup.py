"""Reading topics to their end — the one implementation, for the worker (restore, spec barrier) and the API.

Why not ``end_offsets()``: the embedded broker answers ListOffsets with wrong end offsets (SPEC §10), and the
high watermark it carries in fetch responses can lag behind its log when a response is cut by size (seen: 7 of
33 records). So a partition is read to its end when its position is at or past the fetch high watermark
**and** :data:`EMPTY_ROUNDS` consecutive fetch rounds brought nothing for it: with ``fetch_max_wait_ms`` ≤ 50
on the consumers cpkmon builds and 100 ms rounds, two empty rounds span a whole fetch that started after the
previous data was consumed.

Two shapes of the same rule:

* :func:`read_to_end` — a one-shot read from the beginning (checkpoint restore, the specs at start-up);
* :class:`EndRounds` — for a consumer that keeps following (the worker's spec follower, the API's view): feed
  it every fetch round with :meth:`EndRounds.round`; :meth:`EndRounds.wait` returns once
  :data:`EMPTY_ROUNDS` end rounds completed *after* the call, i.e. once everything produced before the call
  has been handed to the follower (the worker's spec barrier). The API's view can judge "caught up" with
  :func:`at_high_watermark` plus :attr:`EndRounds.streak` ≥ :data:`EMPTY_ROUNDS`.

Imports only aiokafka: usable from ``cpkmon.stream`` and ``cpkmon.api`` alike (the API may not import the
stream package).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)
EMPTY_ROUNDS = 2  # consecutive empty fetch rounds at the high watermark: a partition read to its end
FETCH_MAX_WAIT_MS = 50  # the most a reader's fetch may wait: the end rule above assumes it


def reader(
    bootstrap: str | list[str], security: Mapping[str, Any] | None = None, **overrides: Any
) -> AIOKafkaConsumer:
    """A group-less consumer for :func:`read_to_end` and :class:`EndRounds` followers: no group, no commits,
    from the earliest offset, fetches that wait at most :data:`FETCH_MAX_WAIT_MS` (what the end rule assumes).
    ``security``: the TLS/SASL arguments (``cpkmon.kafka_security.aiokafka_kwargs``); ``overrides``: the
    caller's own (client id, fetch sizes, timeouts, metadata age). One definition, so no reader can drift
    from the rule it is read with."""
    kwargs: dict[str, Any] = {
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        **(security or {}),
        **overrides,
    }
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, **kwargs)


async def at_high_watermark(consumer: AIOKafkaConsumer, tps: Iterable[TopicPartition]) -> bool:
    """Every partition's position is at or past its fetch high watermark (unknown high watermark: yes, as
    an empty partition never gets one)."""
    for tp in tps:
        hw = consumer.highwater(tp)
        if hw is not None and await consumer.position(tp) < hw:
            return False
    return True


async def read_to_end(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    *,
    max_records: int = 10_000,
    after: Mapping[int, int] | None = None,
    limit: int | None = None,
) -> list[Any]:
    """Every record of ``tps`` to their end (see the module docstring), in fetch order (offset order within a
    partition). Assigns ``tps`` to the (group-less) ``consumer`` unless they are its assignment already.
    ``after``: partition → the last offset already read (from the beginning where absent); ``limit``: stop
    once that many records are read (the caller pages; a fetch may bring a few more)."""
    if consumer.assignment() != set(tps):
        # Only on a change: ``assign`` starts every partition's state afresh, high watermark unknown, and an
        # unknown high watermark counts as "at the end" (an empty partition never gets one). A reused reader
        # (the API's audit pager) re-assigning on every call could then end a read after two slow rounds
        # with nothing — a page that had eight records came back empty. ``seek`` keeps the high watermark
        # last fetched, a lower bound of the end, so the read goes at least that far.
        consumer.assign(list(tps))
    for tp in tps:
        consumer.seek(tp, (after or {}).get(tp.partition, -1) + 1)
    out: list[Any] = []
    pending = set(tps)
    empty = dict.fromkeys(tps, 0)
    while pending and (limit is None or len(out) < limit):
        want = max_records if limit is None else min(max_records, limit - len(out))
        batch = await consumer.getmany(*pending, timeout_ms=100, max_records=want)
        for tp in list(pending):
            records = batch.get(tp)
            if records:
                out.extend(records)
                empty[tp] = 0
                continue
            empty[tp] += 1
            if empty[tp] >= EMPTY_ROUNDS and await at_high_watermark(consumer, (tp,)):
                pending.discard(tp)
            elif empty[tp] >= EMPTY_ROUNDS * 10:
                log.warning(
                    "%s: position below the high watermark %s after %d empty rounds",
                    tp,
                    consumer.highwater(tp),
                    empty[tp],
                )
                pending.discard(tp)
    return out


class EndRounds:
    """Counts the end rounds of a following consumer: fetch rounds that brought nothing, every partition at
    or past its high watermark. One instance per follower; see the module docstring."""

    def __init__(self) -> None:
        self.rounds = 0  # end rounds so far
        self.streak = 0  # consecutive end rounds up to the last round fed
        self._changed = asyncio.Condition()

    async def round(
        self, consumer: AIOKafkaConsumer, batch: Mapping[TopicPartition, Sequence[Any]]
    ) -> bool:
        """Feed one fetch round (``getmany``'s result); True when it was an end round."""
        end = not any(batch.values()) and await at_high_watermark(consumer, consumer.assignment())
        self.streak = self.streak + 1 if end else 0
        if end:
            async with self._changed:
                self.rounds += 1
                self._changed.notify_all()
        return end

    async def wait(self, timeout: float) -> bool:
        """Wait for :data:`EMPTY_ROUNDS` end rounds after this call; False when ``timeout`` s passed first."""
        target = self.rounds + EMPTY_ROUNDS
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.rounds >= target), timeout)
        except TimeoutError:
            return False
        return True


__all__ = ["EMPTY_ROUNDS", "FETCH_MAX_WAIT_MS", "EndRounds", "at_high_watermark", "read_to_end", "reader"]
