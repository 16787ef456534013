"""Typed wrapper over aiokafka: a producer, a manually committing consumer, and topic creation.

This is the only module that imports aiokafka. It speaks bytes: keys, values and headers are
encoded by the codec above it, and it knows nothing of CloudEvents, the outbox or retries. What
aiokafka raises leaves this module as `MessagingError` or one of its subclasses, chained with
``from exc``.

Clients are built outside an event loop and connect in `start()`; both are async context managers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as _AioTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from payment_service.domain import errors
from payment_service.domain.errors import PaymentServiceError

__all__ = [
    "Delivery",
    "KafkaConsumerClient",
    "KafkaProducerClient",
    "MessagingError",
    "MessagingUnavailable",
    "OffsetCommitRejected",
    "OutgoingRecord",
    "RebalanceCallback",
    "Record",
    "TopicNotFound",
    "TopicPartition",
    "ensure_topics",
    "next_offsets",
    "read_topic_to_end",
]

Headers = tuple[tuple[str, bytes], ...]
# Called with the partitions concerned; awaited inside the rebalance, before it goes on.
RebalanceCallback = Callable[[frozenset["TopicPartition"]], Awaitable[None]]


class MessagingError(PaymentServiceError):
    """Base of the errors this module raises; a Kafka failure that repeating the call will not fix."""

    code = "messaging_error"


class MessagingUnavailable(MessagingError, errors.MessagingUnavailable):
    # Broker unreachable, timed out, or not ready (leader moving, not enough replicas): aiokafka
    # marks these retriable, and so do we. A send may still have been written: publish at least once.
    # Also the domain's MessagingUnavailable, so layers above need not know this module.
    code = "messaging_unavailable"
    retriable = True


class TopicNotFound(MessagingError):
    # Topics are never auto-created: a missing one is a deployment error, not a transient state.
    code = "topic_not_found"


class OffsetCommitRejected(MessagingError):
    # The group rebalanced and the partition has a new owner, who will get the records again.
    code = "offset_commit_rejected"


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed record. ``timestamp_ms`` is milliseconds since the epoch (producer's create time)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the broker stored a record, after every in-sync replica has it (acks=all).

    ``timestamp_ms`` is the record's timestamp, or -1 when the broker did not report one.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


def next_offsets(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """The offsets to commit once `records` are processed: one past the last record per partition."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = record.topic_partition
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except UnknownTopicOrPartitionError as exc:
        raise TopicNotFound(f"{action}: topic does not exist ({exc})") from exc
    except KafkaError as exc:
        error = MessagingUnavailable if exc.retriable else MessagingError
        raise error(f"{action}: {exc}") from exc
    except TimeoutError as exc:
        # aiokafka's admin client waits for a node under its own timeout, outside KafkaError.
        raise MessagingUnavailable(f"{action}: timed out") from exc


class KafkaProducerClient:
    """An idempotent producer (acks=all): per partition, records are stored once and in send order.

    ``linger_ms`` trades a little latency for batching when many records are sent at once.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "payment-service",
        linger_ms: int = 5,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "request_timeout_ms": request_timeout_ms,
        }
        self._producer: Any = None

    async def start(self) -> None:
        """Connect to the cluster. Raises `MessagingUnavailable` when no broker answers."""
        producer = AIOKafkaProducer(**self._options)
        try:
            with _translated("starting the producer"):
                await producer.start()
        except MessagingError:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Wait for records already sent, then disconnect. Safe to call twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> Delivery:
        """Send one record and wait until the broker has it. ``value=None`` is a tombstone."""
        (delivery,) = await self.send_many([OutgoingRecord(topic, key, value, tuple(headers))])
        return delivery

    async def send_many(self, records: Sequence[OutgoingRecord]) -> list[Delivery]:
        """Send records in order and wait for all of them; deliveries come back in the same order.

        Records for one partition are stored in the order given. If any fails, the first error is
        raised once every enqueued record has settled; others may have been stored, so re-sending is
        at least once. A topic that does not exist raises `TopicNotFound` after ``request_timeout_ms``.
        """
        producer = self._started()
        futures: list[Any] = []
        first_error: MessagingError | None = None
        # Enqueued one by one (not gathered) so that the accumulator sees the caller's order.
        for record in records:
            try:
                with _translated("sending"):
                    futures.append(
                        await producer.send(
                            record.topic, key=record.key, value=record.value, headers=list(record.headers)
                        )
                    )
            except MessagingError as exc:
                first_error = exc
                break
        deliveries: list[Delivery] = []
        for future in futures:
            try:
                with _translated("sending"):
                    metadata = await future
            except MessagingError as exc:
                first_error = first_error or exc
                continue
            deliveries.append(
                Delivery(
                    topic=str(metadata.topic),
                    partition=int(metadata.partition),
                    offset=int(metadata.offset),
                    timestamp_ms=-1 if metadata.timestamp is None else int(metadata.timestamp),
                )
            )
        if first_error is not None:
            raise first_error
        return deliveries

    def _started(self) -> Any:
        if self._producer is None:
            raise RuntimeError("KafkaProducerClient is not started")
        return self._producer


class KafkaConsumerClient:
    """A group member that commits only when told to (``enable_auto_commit=False``).

    A group with no committed offset starts at ``auto_offset_reset`` (default: the earliest record).
    Commit after the records' side effects, with `next_offsets`; records after the last commit are
    delivered again after a restart or rebalance, so processing must be idempotent.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topics: Sequence[str],
        group_id: str,
        client_id: str = "payment-service",
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        isolation_level: Literal["read_uncommitted", "read_committed"] = "read_committed",
        max_poll_records: int = 500,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self._topics = tuple(topics)
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "isolation_level": isolation_level,
            "max_poll_records": max_poll_records,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            "request_timeout_ms": request_timeout_ms,
        }
        self._consumer: Any = None
        self._on_assigned: RebalanceCallback | None = None
        self._on_revoked: RebalanceCallback | None = None

    def set_rebalance_callbacks(
        self, *, on_assigned: RebalanceCallback | None = None, on_revoked: RebalanceCallback | None = None
    ) -> None:
        """Before `start`: be told of partitions gained and lost.

        ``on_revoked`` runs before the partitions move, while a commit for them is still accepted;
        ``on_assigned`` once the new assignment holds. aiokafka does not revoke on `stop`. An
        exception in either is logged by aiokafka and otherwise ignored.
        """
        if self._consumer is not None:
            raise RuntimeError("set_rebalance_callbacks must be called before start")
        self._on_assigned, self._on_revoked = on_assigned, on_revoked

    async def start(self) -> None:
        """Connect and subscribe. Raises `MessagingUnavailable` when no broker answers.

        The group is joined in the background: until partitions are assigned, `getmany` returns nothing.
        """
        consumer = AIOKafkaConsumer(**self._options)
        consumer.subscribe(list(self._topics), listener=_RebalanceListener(self._on_assigned, self._on_revoked))
        try:
            with _translated("starting the consumer"):
                await consumer.start()
        except MessagingError:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        """Leave the group without committing anything. Safe to call twice."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def getmany(self, *, timeout_ms: int, max_records: int | None = None) -> list[Record]:
        """Wait up to ``timeout_ms`` for records; each partition's records come in offset order."""
        consumer = self._started()
        with _translated("fetching"):
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [_record(message) for messages in batches.values() for message in messages]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the next record to read (last processed + 1).

        Raises `OffsetCommitRejected` when a partition is no longer assigned to this member.
        """
        consumer = self._started()
        native = {_AioTopicPartition(tp.topic, tp.partition): offset for tp, offset in offsets.items()}
        try:
            with _translated("committing offsets"):
                await consumer.commit(native)
        except MessagingError as exc:
            if isinstance(exc.__cause__, CommitFailedError | IllegalStateError):
                raise OffsetCommitRejected(str(exc)) from exc.__cause__
            raise

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` at the next `getmany` (e.g. to retry an unprocessed record)."""
        self._started().seek(_AioTopicPartition(partition.topic, partition.partition), offset)

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching ``partitions`` (membership stays alive) until `resume`."""
        self._started().pause(*(_AioTopicPartition(tp.topic, tp.partition) for tp in partitions))

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._started().resume(*(_AioTopicPartition(tp.topic, tp.partition) for tp in partitions))

    def assignment(self) -> frozenset[TopicPartition]:
        return _partitions(self._started().assignment())

    def highwater(self, partition: TopicPartition) -> int | None:
        """The partition's end offset as of the last fetch (None before one): the lag is this minus our position."""
        if self._consumer is None:
            return None
        value = self._consumer.highwater(_AioTopicPartition(partition.topic, partition.partition))
        return int(value) if value is not None else None

    def _started(self) -> Any:
        if self._consumer is None:
            raise RuntimeError("KafkaConsumerClient is not started")
        return self._consumer


def _partitions(native: Iterable[Any]) -> frozenset[TopicPartition]:
    return frozenset(TopicPartition(str(tp.topic), int(tp.partition)) for tp in native)


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, on_assigned: RebalanceCallback | None, on_revoked: RebalanceCallback | None) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        if self._on_revoked is not None:
            await self._on_revoked(_partitions(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        if self._on_assigned is not None:
            await self._on_assigned(_partitions(assigned))


def _record(message: Any) -> Record:
    return Record(
        topic=str(message.topic),
        partition=int(message.partition),
        offset=int(message.offset),
        key=message.key,
        value=message.value,
        headers=tuple((str(name), bytes(value)) for name, value in message.headers),
        timestamp_ms=int(message.timestamp),
    )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    request_timeout_ms: int = 30_000,
) -> None:
    """Create each topic (name -> partition count) unless it exists. Idempotent.

    An existing topic is left as it is, even when its partition count differs.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=request_timeout_ms)
    try:
        with _translated("creating topics"):
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(name, partitions, replication_factor) for name, partitions in topics.items()]
            )
    finally:
        await admin.close()
    # Per-topic failures come back in the response rather than raised.
    for topic_error in response.topic_errors:
        topic, code = topic_error[0], topic_error[1]
        error_class = for_code(code)
        if code == 0 or error_class is TopicAlreadyExistsError:
            continue
        with _translated(f"creating topic {topic!r}"):
            raise error_class(topic_error[2] if len(topic_error) > 2 else topic)


async def read_topic_to_end(
    bootstrap_servers: str, topic: str, *, request_timeout_ms: int = 30_000, fetch_timeout_ms: int = 500
) -> list[Record]:
    """Every record `topic` holds now, partition by partition in offset order; [] when it does not exist.

    Reads without a consumer group and commits nothing: no consumer is disturbed.
    """
    found = await _partitions_of(bootstrap_servers, topic, request_timeout_ms=request_timeout_ms)
    if not found:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=request_timeout_ms,
        isolation_level="read_committed",
    )
    with _translated("reading a topic"):
        await consumer.start()
    try:
        with _translated("reading a topic"):
            assigned = [_AioTopicPartition(topic, partition) for partition in found]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
            records: list[Record] = []
            pending = {tp for tp in assigned if ends[tp] > 0}
            for tp in assigned:
                if tp not in pending:
                    consumer.pause(tp)
            while pending:
                batches = await consumer.getmany(timeout_ms=fetch_timeout_ms)
                for tp, messages in batches.items():
                    records += [_record(m) for m in messages if m.offset < ends[tp]]
                    if messages and messages[-1].offset + 1 >= ends[tp]:
                        pending.discard(tp)
                        consumer.pause(tp)
            return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def _partitions_of(bootstrap_servers: str, topic: str, *, request_timeout_ms: int) -> list[int]:
    """The partition numbers of `topic`, [] when it does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=request_timeout_ms)
    try:
        with _translated("describing a topic"):
            await admin.start()
            described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry.get("topic") == topic and entry.get("error_code", 0) == 0:
            return sorted(int(partition["partition"]) for partition in entry.get("partitions", ()))
    return []
