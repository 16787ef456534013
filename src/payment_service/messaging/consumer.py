"""EventConsumer: poll, decode, hand each event to a handler, commit only what the handler finished.

Shape of the loop:
- One fetch loop calls `getmany` and appends each record to its partition's queue. Every assigned
  partition has a worker task that takes records one at a time, so partitions progress
  concurrently and one partition's order is kept. A partition whose queue is full is paused (and
  resumed once it drained to half), so memory stays bounded while the group membership stays alive.
- A worker retries a `retriable` failure (timeouts, 5xx, 429: `DependencyUnavailable`) of the same
  record with exponential backoff and full jitter, forever: it never skips ahead, so nothing is lost
  or reordered. A permanent failure (an undecodable or off-schema record, a 4xx) goes to the
  dead-letter topic with `dlq-reason`, `dlq-error`, `dlq-original-topic/partition/offset` and the
  original headers, and the worker moves on.
- The fetch loop commits, per partition, one past the last finished record, at most every
  `commit_interval_s`, under a lock shared with the rebalance callback, and only when it advanced.
- On revocation (and on stop) the partition's worker finishes its in-flight record (up to
  `revoke_grace_s`, then it is cancelled and the record counts as not done), its progress is
  committed, and queued records are dropped: the next owner reads them from the committed offset.
Delivery is at least once: handlers must be idempotent.
"""

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from payment_service.domain.errors import InvalidEvent, PaymentServiceError
from payment_service.messaging.client import KafkaConsumerClient, MessagingError, Record, TopicPartition
from payment_service.messaging.codec import CloudEvent, decode_event
from payment_service.messaging.publisher import EventPublisher
from payment_service.settings import KafkaSettings

log = structlog.get_logger(__name__)

EventHandler = Callable[[CloudEvent], Awaitable[None]]

UNEXPECTED_ERROR = "unexpected_error"


def create_consumer_client(settings: KafkaSettings, *, client_id: str = "payment-service") -> KafkaConsumerClient:
    """The payment consumer's group member: the payments topic, the configured group, manual commits."""
    return KafkaConsumerClient(
        settings.bootstrap_servers,
        topics=[settings.payment_topic],
        group_id=settings.consumer_group,
        client_id=client_id,
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 10.0

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**(attempt-1))], at least 10 ms."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2.0 ** max(attempt - 1, 0))
        return max(0.01, ceiling * random.random())  # noqa: S311 - jitter, not a secret


class _Abandoned(Exception):
    """The record was not finished: the partition is being revoked or the consumer stops."""


class _PartitionWorker:
    """Processes one partition's records in order; `done_offset` is what may be committed."""

    def __init__(self, partition: TopicPartition, process: Callable[[Record, asyncio.Event], Awaitable[None]]) -> None:
        self.partition = partition
        self.queue: deque[Record] = deque()
        self.done_offset: int | None = None
        self.committed_offset: int | None = None
        self.paused = False
        self._process = process
        self._arrived = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"consume-{partition.topic}-{partition.partition}")

    def add(self, record: Record) -> None:
        self.queue.append(record)
        self._arrived.set()

    async def stop(self, grace_s: float) -> None:
        """Finish the record in hand (up to `grace_s`), then end; queued records are dropped."""
        self._stopping.set()
        self._arrived.set()
        _, pending = await asyncio.wait({self._task}, timeout=grace_s)
        if pending:
            self._task.cancel()
            await asyncio.wait({self._task})
        if not self._task.cancelled() and (exc := self._task.exception()) is not None:
            log.error("consumer.worker_crashed", partition=self.partition.partition, error=repr(exc))

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if not self.queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            record = self.queue[0]
            try:
                await self._process(record, self._stopping)
            except _Abandoned:
                return
            self.queue.popleft()
            self.done_offset = record.offset + 1


class EventConsumer:
    """Consumes the client's topics into `handler` until `stop()` or cancellation.

    `handler` raises a `PaymentServiceError` whose `retriable` says whether to try again; anything
    else it raises is a bug, logged as an error, and the record goes to the dead-letter topic.
    """

    def __init__(
        self,
        client: KafkaConsumerClient,
        handler: EventHandler,
        dead_letters: EventPublisher,
        *,
        retry: RetryPolicy | None = None,
        poll_timeout_ms: int = 200,
        max_queued_per_partition: int = 2000,
        commit_interval_s: float = 0.2,
        revoke_grace_s: float = 10.0,
    ) -> None:
        self._client = client
        self._handler = handler
        self._dead_letters = dead_letters
        self._retry = retry or RetryPolicy()
        self._poll_timeout_ms = poll_timeout_ms
        self._max_queued = max_queued_per_partition
        self._commit_interval_s = commit_interval_s
        self._revoke_grace_s = revoke_grace_s
        self._workers: dict[TopicPartition, _PartitionWorker] = {}
        self._commit_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._started = asyncio.Event()

    def stop(self) -> None:
        """Ask `run` to stop fetching, finish in-flight records, commit and leave the group."""
        self._stopping.set()

    async def wait_started(self) -> None:
        """Until the client is connected (the group join may still be under way)."""
        await self._started.wait()

    async def run(self) -> None:
        """Start the client, consume until stopped, then commit what is done and close.

        Raises:
            MessagingError: the broker could not be reached at start-up.
        """
        self._client.set_rebalance_callbacks(on_assigned=self._on_assigned, on_revoked=self._on_revoked)
        await self._client.start()
        self._started.set()
        try:
            await self._fetch_loop()
        finally:
            # Shielded: a cancelled worker task still finishes in-flight work and commits it.
            await asyncio.shield(self._shutdown())

    async def _fetch_loop(self) -> None:
        last_commit = time.monotonic()
        while not self._stopping.is_set():
            try:
                records = await self._client.getmany(timeout_ms=self._poll_timeout_ms)
            except MessagingError as exc:
                log.warning("consumer.fetch_failed", error=str(exc))
                continue
            for record in records:
                worker = self._workers.get(record.topic_partition)
                if worker is not None:  # else revoked meanwhile: the next owner reads it again
                    worker.add(record)
            self._apply_backpressure()
            if time.monotonic() - last_commit >= self._commit_interval_s:
                await self._commit(list(self._workers.values()))
                last_commit = time.monotonic()

    def _apply_backpressure(self) -> None:
        to_pause = [w for w in self._workers.values() if not w.paused and len(w.queue) >= self._max_queued]
        to_resume = [w for w in self._workers.values() if w.paused and len(w.queue) <= self._max_queued // 2]
        if to_pause:
            self._client.pause(w.partition for w in to_pause)
            for worker in to_pause:
                worker.paused = True
        if to_resume:
            self._client.resume(w.partition for w in to_resume)
            for worker in to_resume:
                worker.paused = False

    async def _shutdown(self) -> None:
        workers = list(self._workers.values())
        self._workers.clear()
        await asyncio.gather(*(worker.stop(self._revoke_grace_s) for worker in workers))
        await self._commit(workers)
        await self._client.stop()
        log.info("consumer.stopped")

    async def _on_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        for partition in assigned:
            if partition not in self._workers:
                self._workers[partition] = _PartitionWorker(partition, self._process)
        log.info("consumer.partitions_assigned", partitions=sorted(f"{p.topic}-{p.partition}" for p in assigned))

    async def _on_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        workers = [self._workers.pop(partition) for partition in revoked if partition in self._workers]
        await asyncio.gather(*(worker.stop(self._revoke_grace_s) for worker in workers))
        await self._commit(workers)
        log.info("consumer.partitions_revoked", partitions=sorted(f"{p.topic}-{p.partition}" for p in revoked))

    async def _commit(self, workers: list[_PartitionWorker]) -> None:
        async with self._commit_lock:
            offsets = {
                worker.partition: worker.done_offset
                for worker in workers
                if worker.done_offset is not None
                and (worker.committed_offset is None or worker.done_offset > worker.committed_offset)
            }
            if not offsets:
                return
            try:
                await self._client.commit(offsets)
            except MessagingError as exc:
                # Not committed: these records come again (to us or the partition's next owner).
                log.warning("consumer.commit_failed", error=str(exc), code=exc.code)
                return
            for worker in workers:
                if worker.partition in offsets:
                    worker.committed_offset = offsets[worker.partition]

    async def _process(self, record: Record, stopping: asyncio.Event) -> None:
        """Handle one record to completion: done, or dead-lettered. Raises `_Abandoned` on stop."""
        with structlog.contextvars.bound_contextvars(
            topic=record.topic, partition=record.partition, offset=record.offset
        ):
            try:
                event = decode_event(key=record.key, value=record.value, headers=record.headers)
            except InvalidEvent as exc:
                await self._dead_letter(record, exc.reason, exc.message, stopping)
                return
            with structlog.contextvars.bound_contextvars(event_id=event.event_id, traceparent=event.traceparent):
                await self._handle(record, event, stopping)

    async def _handle(self, record: Record, event: CloudEvent, stopping: asyncio.Event) -> None:
        attempt = 0
        while True:
            try:
                await self._handler(event)
            except InvalidEvent as exc:
                await self._dead_letter(record, exc.reason, exc.message, stopping)
                return
            except PaymentServiceError as exc:
                if not exc.retriable:
                    await self._dead_letter(record, exc.code, exc.message, stopping)
                    return
                attempt += 1
                delay_s = self._retry.backoff_s(attempt)
                log.warning("consumer.retrying", code=exc.code, error=exc.message, attempt=attempt)
                await _pause_unless_stopping(delay_s, stopping)
            except Exception as exc:  # a handler bug must not stop every partition
                log.exception("consumer.handler_crashed")
                await self._dead_letter(record, UNEXPECTED_ERROR, f"{type(exc).__name__}", stopping)
                return
            else:
                return

    async def _dead_letter(self, record: Record, reason: str, error: str, stopping: asyncio.Event) -> None:
        attempt = 0
        while True:
            try:
                await self._dead_letters.publish_dead_letter(record, reason=reason, error=error)
            except PaymentServiceError as exc:
                attempt += 1
                log.warning("consumer.dead_letter_failed", error=exc.message, attempt=attempt)
                await _pause_unless_stopping(self._retry.backoff_s(attempt), stopping)
            else:
                log.warning("consumer.dead_lettered", reason=reason, error=error)
                return


async def _pause_unless_stopping(delay_s: float, stopping: asyncio.Event) -> None:
    """Sleep `delay_s`; raise `_Abandoned` at once if the worker is told to stop meanwhile."""
    if stopping.is_set():
        raise _Abandoned
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay_s):
            await stopping.wait()
    if stopping.is_set():
        raise _Abandoned
