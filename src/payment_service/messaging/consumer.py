"""EventConsumer: poll, decode, hand each event to a handler, commit only what the handler finished.

Shape of the loop:
- One fetch loop calls `getmany` and hands each record to its partition's `PartitionScheduler`
  (`scheduler.py`): records of one key (an order id) run one after another in offset order, records
  of different keys concurrently, at most `max_in_flight` per partition between its commit point and
  its newest started record, and at most `max_in_flight_total` handler calls at once over every
  partition. A partition with `max_queued_per_partition` records waiting to start is paused (and
  resumed once it drained to half), so memory stays bounded while the group membership stays alive.
- A record whose handler fails with a `retriable` error (timeouts, 5xx, 429: `DependencyUnavailable`)
  is tried again with exponential backoff and full jitter, forever: its key's later records wait
  behind it and the commit point stays below it, so nothing is lost or reordered, while other keys go
  on within the window. A permanent failure (an undecodable or off-schema record, a 4xx) goes to the
  dead-letter topic with `dlq-reason`, `dlq-error`, `dlq-original-topic/partition/offset` and the
  original headers, and counts as finished.
- The fetch loop commits, per partition, one past the last record of the contiguous finished prefix
  (never past an unfinished record), at most every `commit_interval_s`, under a lock shared with the
  rebalance callback, and only when it advanced.
- On revocation (and on stop) the partition's scheduler starts nothing more and lets the records
  being handled finish (up to `revoke_grace_s`, then they are cancelled and count as not done); the
  finished prefix is committed and everything after it is left to the next owner, who reads it
  from the committed offset.
Delivery is at least once: handlers must be idempotent.
"""

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import structlog
from opentelemetry.trace import SpanKind

from payment_service import tracing
from payment_service.domain.errors import InvalidEvent, PaymentServiceError
from payment_service.messaging import metrics
from payment_service.messaging.client import KafkaConsumerClient, MessagingError, Record, TopicPartition
from payment_service.messaging.codec import CloudEvent, decode_event
from payment_service.messaging.publisher import EventPublisher
from payment_service.messaging.scheduler import PartitionScheduler, RecordAbandoned
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
        max_in_flight: int = 64,
        max_in_flight_total: int = 128,
        poll_timeout_ms: int = 200,
        max_queued_per_partition: int = 2000,
        commit_interval_s: float = 0.2,
        revoke_grace_s: float = 10.0,
    ) -> None:
        self._client = client
        self._handler = handler
        self._dead_letters = dead_letters
        self._retry = retry or RetryPolicy()
        self._max_in_flight = max_in_flight
        self._handler_slots = asyncio.Semaphore(max_in_flight_total)
        self._poll_timeout_ms = poll_timeout_ms
        self._max_queued = max_queued_per_partition
        self._commit_interval_s = commit_interval_s
        self._revoke_grace_s = revoke_grace_s
        self._schedulers: dict[TopicPartition, PartitionScheduler] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._commit_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._started = asyncio.Event()

    def stop(self) -> None:
        """Ask `run` to stop fetching, finish the records being handled, commit and leave the group."""
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
            # Shielded: a cancelled consumer task still finishes the records in hand and commits them.
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
                scheduler = self._schedulers.get(record.topic_partition)
                if scheduler is not None:  # else revoked meanwhile: the next owner reads it again
                    scheduler.add(record)
            self._apply_backpressure()
            if time.monotonic() - last_commit >= self._commit_interval_s:
                await self._commit()
                last_commit = time.monotonic()

    def _apply_backpressure(self) -> None:
        schedulers = self._schedulers.values()
        to_pause = [s.partition for s in schedulers if s.partition not in self._paused and s.queued >= self._max_queued]
        to_resume = [
            s.partition for s in schedulers if s.partition in self._paused and s.queued <= self._max_queued // 2
        ]
        if to_pause:
            self._client.pause(to_pause)
            self._paused.update(to_pause)
        if to_resume:
            self._client.resume(to_resume)
            self._paused.difference_update(to_resume)

    async def _shutdown(self) -> None:
        schedulers = list(self._schedulers.values())
        self._schedulers.clear()
        await asyncio.gather(*(scheduler.stop(self._revoke_grace_s) for scheduler in schedulers))
        await self._commit(schedulers)
        await self._client.stop()
        _forget_lag(scheduler.partition for scheduler in schedulers)
        log.info("consumer.stopped")

    async def _on_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        for partition in assigned:
            if partition not in self._schedulers:
                self._schedulers[partition] = PartitionScheduler(
                    partition, self._process, max_in_flight=self._max_in_flight
                )
        log.info("consumer.partitions_assigned", partitions=sorted(f"{p.topic}-{p.partition}" for p in assigned))

    async def _on_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        schedulers = [self._schedulers.pop(partition) for partition in revoked if partition in self._schedulers]
        await asyncio.gather(*(scheduler.stop(self._revoke_grace_s) for scheduler in schedulers))
        await self._commit(schedulers)
        for scheduler in schedulers:
            # A partition assigned again later starts from what the group committed, whoever did it.
            self._committed.pop(scheduler.partition, None)
            self._paused.discard(scheduler.partition)
        _forget_lag(revoked)
        log.info("consumer.partitions_revoked", partitions=sorted(f"{p.topic}-{p.partition}" for p in revoked))

    async def _commit(self, schedulers: list[PartitionScheduler] | None = None) -> None:
        """Commit each scheduler's finished prefix where it advanced; by default, the current partitions'.

        The default is read under the lock, so that a partition being revoked meanwhile is committed by
        the revocation alone.
        """
        async with self._commit_lock:
            if schedulers is None:
                schedulers = list(self._schedulers.values())
            offsets: dict[TopicPartition, int] = {}
            for scheduler in schedulers:
                offset = scheduler.committable_offset
                committed = self._committed.get(scheduler.partition)
                if offset is not None and (committed is None or offset > committed):
                    offsets[scheduler.partition] = offset
            if not offsets:
                return
            try:
                await self._client.commit(offsets)
            except MessagingError as exc:
                # Not committed: these records come again (to us or the partition's next owner).
                log.warning("consumer.commit_failed", error=str(exc), code=exc.code)
                return
            self._committed.update(offsets)

    async def _process(self, record: Record, stopping: asyncio.Event) -> None:
        """Handle one record to completion: done, or dead-lettered. Raises `RecordAbandoned` on stop."""
        async with self._handler_slots:
            if stopping.is_set():
                raise RecordAbandoned  # stopped while waiting for a slot: never started
            await self._process_now(record, stopping)

    async def _process_now(self, record: Record, stopping: asyncio.Event) -> None:
        # Bound once per record, as binding costs about as much as decoding: where it came from, what it is.
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        try:
            event = decode_event(key=record.key, value=record.value, headers=record.headers)
        except InvalidEvent as exc:
            with structlog.contextvars.bound_contextvars(**where):
                await self._dead_letter(record, exc.reason, exc.message, stopping)
            return
        with (
            _processing_span(record, event),
            structlog.contextvars.bound_contextvars(
                **where, event_id=event.event_id, traceparent=tracing.current_traceparent() or event.traceparent
            ),
        ):
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
                metrics.RECORDS_RECORDED.inc()
                self._observe_lag(record)
                return

    def _observe_lag(self, record: Record) -> None:
        highwater = self._client.highwater(record.topic_partition)
        if highwater is not None:
            lag = max(highwater - record.offset - 1, 0)
            metrics.CONSUMER_LAG.labels(topic=record.topic, partition=str(record.partition)).set(lag)

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
                metrics.RECORDS_DEAD_LETTERED.inc()
                metrics.DEAD_LETTERS.labels(reason=reason).inc()
                log.warning("consumer.dead_lettered", reason=reason, error=error)
                return


def _processing_span(record: Record, event: CloudEvent) -> AbstractContextManager[object]:
    """A consumer span continuing the trace in the record's `traceparent`; nothing is built with tracing off."""
    if not tracing.is_enabled():
        return contextlib.nullcontext()
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.message.id": event.event_id,
    }
    return tracing.span(
        f"{record.topic} process", kind=SpanKind.CONSUMER, parent=event.traceparent, attributes=attributes
    )


async def _pause_unless_stopping(delay_s: float, stopping: asyncio.Event) -> None:
    """Sleep `delay_s`; raise `RecordAbandoned` at once if the scheduler is told to stop meanwhile."""
    if stopping.is_set():
        raise RecordAbandoned
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay_s):
            await stopping.wait()
    if stopping.is_set():
        raise RecordAbandoned


def _forget_lag(partitions: Iterable[TopicPartition]) -> None:
    """Stop reporting the lag of partitions no longer ours (revoked, or the consumer stopped).

    Their new owner reports it now; a value left here would stay frozen, firing a false lag alert.
    """
    for partition in partitions:
        with contextlib.suppress(KeyError):
            metrics.CONSUMER_LAG.remove(partition.topic, str(partition.partition))
