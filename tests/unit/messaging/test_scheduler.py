import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import pytest
import structlog.testing

from payment_service.messaging.client import Record, TopicPartition
from payment_service.messaging.scheduler import PartitionScheduler, RecordAbandoned

PARTITION = TopicPartition("payments", 0)
DEADLINE_S = 5


def make_record(offset: int, key: str | None) -> Record:
    return Record(
        topic=PARTITION.topic,
        partition=PARTITION.partition,
        offset=offset,
        key=None if key is None else key.encode(),
        value=b"{}",
        headers=(),
        timestamp_ms=0,
    )


def make_records(keys: Iterable[str | None]) -> list[Record]:
    return [make_record(offset, key) for offset, key in enumerate(keys)]


@dataclass
class RecordingProcess:
    """A `process` double: notes what starts and finishes, in which order, and overlaps per key.

    Offsets in `held` wait for `release`, or for the scheduler to stop; then, by `on_stop`, they are
    abandoned (as the consumer's retry backoff is), finish (a call that completes), or keep waiting
    (until cancelled). Offsets in `crashing` raise a bug; the rest finish after `yields[offset]` turns
    of the event loop, so that other records interleave with them.
    """

    held: set[int] = field(default_factory=set)
    on_stop: Literal["abandon", "finish", "ignore"] = "abandon"
    crashing: set[int] = field(default_factory=set)
    yields: dict[int, int] = field(default_factory=dict)
    started: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    overlaps: list[tuple[int, int]] = field(default_factory=list)
    max_running: int = 0
    _running: dict[bytes | None, int] = field(default_factory=dict)
    _gates: dict[int, asyncio.Event] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, record: Record, stopping: asyncio.Event) -> None:
        if record.key in self._running:
            self.overlaps.append((self._running[record.key], record.offset))
        self._running[record.key] = record.offset
        self.max_running = max(self.max_running, len(self._running))
        self.started.append(record.offset)
        await self._notify()
        try:
            if record.offset in self.crashing:
                raise RuntimeError("a bug below process")
            if record.offset in self.held:
                await self._wait_for_release(record.offset, stopping)
            for _ in range(self.yields.get(record.offset, 0)):
                await asyncio.sleep(0)  # a turn of the loop for other records, not a synchronisation
        except asyncio.CancelledError:
            self.cancelled.append(record.offset)
            raise
        finally:
            del self._running[record.key]
        self.finished.append(record.offset)
        await self._notify()

    def release(self, *offsets: int) -> None:
        for offset in offsets:
            self._gate(offset).set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(DEADLINE_S), self._changed:
            await self._changed.wait_for(predicate)

    def started_by_key(self, records: list[Record]) -> dict[bytes | None, list[int]]:
        by_key: dict[bytes | None, list[int]] = {}
        for offset in self.started:
            by_key.setdefault(records[offset].key, []).append(offset)
        return by_key

    async def _wait_for_release(self, offset: int, stopping: asyncio.Event) -> None:
        gate = self._gate(offset)
        if self.on_stop == "ignore":
            await gate.wait()
            return
        waiters = {asyncio.create_task(gate.wait()), asyncio.create_task(stopping.wait())}
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        await asyncio.wait(waiters)
        if not gate.is_set() and self.on_stop == "abandon":
            self.abandoned.append(offset)
            await self._notify()
            raise RecordAbandoned

    def _gate(self, offset: int) -> asyncio.Event:
        return self._gates.setdefault(offset, asyncio.Event())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def schedule(records: list[Record], process: RecordingProcess, *, max_in_flight: int = 64) -> PartitionScheduler:
    scheduler = PartitionScheduler(PARTITION, process, max_in_flight=max_in_flight)
    for record in records:
        scheduler.add(record)
    return scheduler


class TestPartitionScheduler:
    async def test_records_of_one_key_run_one_at_a_time_in_offset_order_while_keys_interleave(self) -> None:
        rng = random.Random(7)  # noqa: S311 - a reproducible interleaving, not a secret
        records = make_records(f"order-{rng.randrange(12)}" for _ in range(300))
        process = RecordingProcess(yields={r.offset: rng.randrange(4) for r in records})

        scheduler = schedule(records, process, max_in_flight=16)
        await process.until(lambda: len(process.finished) == len(records))

        assert process.overlaps == []
        for key, offsets in process.started_by_key(records).items():
            assert offsets == [r.offset for r in records if r.key == key]
        assert process.max_running > 1  # keys really ran side by side
        assert scheduler.committable_offset == len(records)
        assert (scheduler.in_flight, scheduler.queued) == (0, 0)

    async def test_versions_of_one_payment_arrive_in_order_whatever_order_they_would_finish_in(self) -> None:
        # v1..v5 of one order's payment, between other orders' records; each version is released before
        # the one below it, so that a scheduler running the key's records concurrently would finish v5 first.
        records = make_records(["A", "B", "A", "C", "A", "D", "A", "E", "A"])
        versions = [0, 2, 4, 6, 8]
        process = RecordingProcess(held=set(versions))

        scheduler = schedule(records, process)
        await process.until(lambda: len(process.finished) == 4)  # B, C, D, E
        assert process.started_by_key(records)[b"A"] == [0]
        for offset in reversed(versions):
            process.release(offset)
        await process.until(lambda: len(process.finished) == len(records))

        assert process.started_by_key(records)[b"A"] == versions
        assert [offset for offset in process.finished if offset in versions] == versions
        assert scheduler.committable_offset == len(records)

    async def test_records_without_a_key_are_ordered_among_themselves(self) -> None:
        records = make_records([None, "A", None, None])
        process = RecordingProcess(held={0})

        schedule(records, process)
        await process.until(lambda: process.finished == [1])
        process.release(0)
        await process.until(lambda: len(process.finished) == len(records))

        assert process.started_by_key(records)[None] == [0, 2, 3]
        assert process.overlaps == []

    async def test_at_most_max_in_flight_records_are_started_beyond_the_commit_point(self) -> None:
        records = make_records(f"order-{n}" for n in range(10))
        process = RecordingProcess(held=set(range(10)))

        scheduler = schedule(records, process, max_in_flight=4)
        await process.until(lambda: len(process.started) == 4)

        assert process.started == [0, 1, 2, 3]
        assert (scheduler.in_flight, scheduler.queued) == (4, 6)
        process.release(0)
        await process.until(lambda: len(process.started) == 5)
        assert process.started[4] == 4
        assert (scheduler.in_flight, scheduler.queued) == (4, 5)

    async def test_the_commit_point_stays_below_the_lowest_unfinished_record(self) -> None:
        records = make_records(f"order-{n}" for n in range(6))
        process = RecordingProcess(held={2})

        scheduler = schedule(records, process)
        await process.until(lambda: len(process.finished) == 5)
        assert scheduler.committable_offset == 2

        process.release(2)
        await process.until(lambda: len(process.finished) == 6)
        assert scheduler.committable_offset == 6

    async def test_nothing_is_committable_before_the_first_record_finished(self) -> None:
        records = make_records(["A", "B", "C"])
        process = RecordingProcess(held={0})

        scheduler = schedule(records, process)
        await process.until(lambda: len(process.finished) == 2)

        assert scheduler.committable_offset is None

    async def test_an_unfinished_record_holds_its_key_at_once_and_other_keys_once_the_window_is_full(self) -> None:
        # Offset 0 keeps failing (its retries are the consumer's business: here it simply does not finish).
        records = make_records(["A", "B", "A", "C", "D", "E", "F", "G"])
        process = RecordingProcess(held={0})

        scheduler = schedule(records, process, max_in_flight=5)
        await process.until(lambda: len(process.finished) == 3)

        assert sorted(process.started) == [0, 1, 3, 4]  # A's offset 2 waits behind offset 0
        assert sorted(process.finished) == [1, 3, 4]
        assert (scheduler.committable_offset, scheduler.in_flight, scheduler.queued) == (None, 5, 3)

        process.release(0)
        await process.until(lambda: len(process.finished) == len(records))
        assert process.started_by_key(records)[b"A"] == [0, 2]
        assert scheduler.committable_offset == len(records)

    async def test_stop_lets_records_in_hand_finish_starts_nothing_more_and_keeps_the_prefix(self) -> None:
        records = make_records(["A", "A", "B", "C"])
        process = RecordingProcess(held={0, 2}, on_stop="finish")

        scheduler = schedule(records, process)
        await process.until(lambda: process.finished == [3])
        await scheduler.stop(grace_s=DEADLINE_S)

        assert sorted(process.finished) == [0, 2, 3]
        assert 1 not in process.started  # A's next record is not started once stopping
        assert scheduler.committable_offset == 1

    async def test_stop_cancels_records_that_do_not_finish_within_the_grace_period(self) -> None:
        records = make_records(["A", "B", "C"])
        process = RecordingProcess(held={1}, on_stop="ignore")

        scheduler = schedule(records, process)
        await process.until(lambda: sorted(process.finished) == [0, 2])
        await scheduler.stop(grace_s=0.05)

        assert process.cancelled == [1]
        assert scheduler.committable_offset == 1

    async def test_stop_abandons_records_waiting_to_be_retried(self) -> None:
        records = make_records(["A", "B", "A"])
        process = RecordingProcess(held={0})

        scheduler = schedule(records, process)
        await process.until(lambda: process.finished == [1])
        await scheduler.stop(grace_s=DEADLINE_S)

        assert process.abandoned == [0]
        assert process.started == [0, 1]
        assert scheduler.committable_offset is None
        scheduler.add(make_record(3, "C"))
        assert (scheduler.queued, process.started) == (0, [0, 1])

    async def test_a_crash_below_process_keeps_its_key_blocked_and_the_commit_point_below_it(self) -> None:
        records = make_records(["A", "A", "B", "C"])
        process = RecordingProcess(crashing={0})

        with structlog.testing.capture_logs() as logs:
            scheduler = schedule(records, process)
            await process.until(lambda: sorted(process.finished) == [2, 3])

        assert process.started == [0, 2, 3]
        assert scheduler.committable_offset is None
        assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["consumer.chain_crashed"]
        await scheduler.stop(grace_s=DEADLINE_S)
        assert 1 not in process.started

    def test_max_in_flight_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="max_in_flight"):
            PartitionScheduler(PARTITION, RecordingProcess(), max_in_flight=0)
