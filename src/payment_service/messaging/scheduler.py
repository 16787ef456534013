"""PartitionScheduler: one partition's records, concurrent across keys, one after another within a key.

Records are `add`ed in offset order, as Kafka delivers them. The scheduler guarantees:
- Records with the same key (an order id) are processed one at a time, in offset order: a record
  starts only once the previous record of its key has finished. Records without a key are ordered
  among themselves, like one more key.
- Records with different keys are processed concurrently, within a window of at most
  `max_in_flight` records: from the lowest unfinished record to the newest started one. A record
  that keeps failing holds its own key's later records at once, and every other key only once the
  window behind it is full.
- `committable_offset` is one past the longest run of finished records from the first one added:
  never beyond an unfinished record, even when later ones are done. After a crash or a rebalance, at
  most `max_in_flight` records that were already processed are therefore delivered again.
What is not here: fetching, decoding, retries, dead letters and commits (`consumer.py`). `process`
owns a record until it is finished (handled or dead-lettered), or raises `RecordAbandoned`.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from payment_service.messaging.client import Record, TopicPartition

log = structlog.get_logger(__name__)

# Called with the record and an event set when the scheduler stops; returns once the record is finished.
ProcessRecord = Callable[[Record, asyncio.Event], Awaitable[None]]


class RecordAbandoned(Exception):
    """Raised by `process`: the record is not finished, because the scheduler is stopping."""


@dataclass(slots=True)
class _Started:
    record: Record
    finished: bool = False


class PartitionScheduler:
    def __init__(self, partition: TopicPartition, process: ProcessRecord, *, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.partition = partition
        self._process = process
        self._max_in_flight = max_in_flight
        self._queue: deque[Record] = deque()  # added, not started yet
        self._window: deque[_Started] = deque()  # started, in offset order, from the lowest unfinished
        self._chains: dict[bytes | None, deque[_Started]] = {}  # per key: its started, unfinished records
        self._chain_tasks: set[asyncio.Task[None]] = set()
        self._committable_offset: int | None = None
        self._stopping = asyncio.Event()

    @property
    def committable_offset(self) -> int | None:
        """The offset to commit (one past the finished prefix); None until the first record finished."""
        return self._committable_offset

    @property
    def queued(self) -> int:
        """Records added and not started yet."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Records in the window: started, and not yet below the commit point."""
        return len(self._window)

    def add(self, record: Record) -> None:
        """Queue a record; it starts as soon as its key is free and the window has room."""
        if self._stopping.is_set():
            return  # revoked or stopping: the partition's next reader gets it from the committed offset
        self._queue.append(record)
        self._start_what_fits()

    async def stop(self, grace_s: float) -> None:
        """Start nothing more; let the records being processed finish, for up to `grace_s`.

        Records still unfinished then are cancelled. Queued records are dropped. Afterwards
        `committable_offset` is final: it covers only records finished without a gap.
        """
        self._stopping.set()
        self._queue.clear()
        tasks = set(self._chain_tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def _start_what_fits(self) -> None:
        while self._queue and len(self._window) < self._max_in_flight and not self._stopping.is_set():
            started = _Started(self._queue.popleft())
            self._window.append(started)
            key = started.record.key
            chain = self._chains.get(key)
            if chain is not None:
                chain.append(started)  # runs once the key's earlier records have finished
                continue
            self._chains[key] = chain = deque([started])
            task = asyncio.create_task(
                self._run_chain(key, chain), name=f"consume-{self.partition.topic}-{self.partition.partition}"
            )
            self._chain_tasks.add(task)
            task.add_done_callback(self._chain_tasks.discard)

    async def _run_chain(self, key: bytes | None, chain: deque[_Started]) -> None:
        """Process one key's records in order until none is left; the chain ends with its last record."""
        try:
            while chain and not self._stopping.is_set():
                started = chain[0]
                await self._process(started.record, self._stopping)
                chain.popleft()
                self._finish(started)
        except RecordAbandoned:
            return
        except Exception:
            # `process` handles every failure of a record, so this is a bug. The key stays blocked
            # (its chain is not removed), so later records of the key never overtake this one, and the
            # commit point stays below it until the consumer restarts.
            log.exception("consumer.chain_crashed", partition=self.partition.partition, offset=started.record.offset)
            return
        del self._chains[key]

    def _finish(self, started: _Started) -> None:
        started.finished = True
        while self._window and self._window[0].finished:
            self._committable_offset = self._window.popleft().record.offset + 1
        self._start_what_fits()
