"""EventPublisher: our events to their topics, as CloudEvents, through the idempotent producer.

Topic names come from `KafkaSettings` (one per `EventStream`, plus the dead-letter topic). The
producer is idempotent with `acks=all` and lingers `linger_ms` so a relay batch goes out in a few
requests. The broker may be down when the service starts: `start` then only logs, and the first
`publish` connects; until the broker answers, every publish raises `MessagingUnavailable` and the
outbox keeps the events. What is not here: choosing which events to send (the relay) and retries
(the relay's and the consumer's loops).
"""

import asyncio
from collections.abc import Sequence

import structlog

from payment_service import tracing
from payment_service.domain.errors import MessagingUnavailable
from payment_service.domain.events import EventStream, OutboundEvent
from payment_service.messaging import client
from payment_service.messaging.client import Delivery, KafkaProducerClient, OutgoingRecord, Record
from payment_service.messaging.codec import encode_event
from payment_service.settings import KafkaSettings

log = structlog.get_logger(__name__)

# Headers the consumer adds to a dead letter, beside the original ones.
DLQ_REASON = "dlq-reason"
DLQ_ERROR = "dlq-error"
DLQ_ORIGINAL_TOPIC = "dlq-original-topic"
DLQ_ORIGINAL_PARTITION = "dlq-original-partition"
DLQ_ORIGINAL_OFFSET = "dlq-original-offset"
DLQ_HEADERS = frozenset({DLQ_REASON, DLQ_ERROR, DLQ_ORIGINAL_TOPIC, DLQ_ORIGINAL_PARTITION, DLQ_ORIGINAL_OFFSET})


def create_producer(settings: KafkaSettings, *, client_id: str = "payment-service") -> KafkaProducerClient:
    return KafkaProducerClient(
        settings.bootstrap_servers,
        client_id=client_id,
        linger_ms=settings.linger_ms,
        request_timeout_ms=settings.request_timeout_ms,
    )


def topics_of(settings: KafkaSettings) -> dict[str, int]:
    """Every topic the service writes, with the partition count to create it with."""
    return dict.fromkeys(
        (settings.payment_topic, settings.notification_topic, settings.dlq_topic), settings.topic_partitions
    )


class EventPublisher:
    """Sends events and dead letters; owns the producer's lifecycle (start, lazy reconnect, stop)."""

    def __init__(self, producer: KafkaProducerClient, settings: KafkaSettings) -> None:
        self._producer = producer
        self._settings = settings
        self._started = False
        self._topics_ready = False
        self._lock = asyncio.Lock()

    @property
    def is_connected(self) -> bool:
        return self._started

    def topic_for(self, stream: EventStream) -> str:
        match stream:
            case EventStream.PAYMENTS:
                return self._settings.payment_topic
            case EventStream.NOTIFICATIONS:
                return self._settings.notification_topic

    async def start(self, *, require_broker: bool = False) -> None:
        """Connect and create missing topics.

        Raises:
            MessagingUnavailable: only with `require_broker`; otherwise a broker that is down is
                logged and connected to at the first publish.
        """
        try:
            await self._connect()
        except MessagingUnavailable as exc:
            if require_broker:
                raise
            log.warning("publisher.start_deferred", error=str(exc))

    async def check(self) -> None:
        """For readiness: connect if not connected yet. Raises `MessagingUnavailable`."""
        if not self._started:
            await self._connect()

    async def stop(self) -> None:
        """Wait for records in flight, then disconnect."""
        async with self._lock:
            self._started = False
            await self._producer.stop()

    async def publish(self, events: Sequence[OutboundEvent]) -> list[Delivery]:
        """Send `events` in order and wait until the broker acknowledged every one (acks=all).

        Events with the same key keep their order on their topic. Idempotent on the broker for one
        producer session; a retry after a failure may store some events twice (consumers dedupe).

        Raises:
            MessagingUnavailable: the broker is unreachable, timed out, or refused a record; none of
                the events should be taken as sent.
        """
        topics = [self.topic_for(event.stream) for event in events]
        messages = [(topic, event.event_id, event.traceparent) for topic, event in zip(topics, events, strict=True)]
        with tracing.producer_spans(messages) as traceparents:
            records = []
            for topic, event, traceparent in zip(topics, events, traceparents, strict=True):
                encoded = encode_event(event, traceparent=traceparent)
                records.append(OutgoingRecord(topic, key=encoded.key, value=encoded.value, headers=encoded.headers))
            return await self._send(records)

    async def publish_dead_letter(self, record: Record, *, reason: str, error: str) -> Delivery:
        """Copy a consumed record to the dead-letter topic with why and where it came from.

        Raises:
            MessagingUnavailable: as `publish`.
        """
        headers = (
            *((name, value) for name, value in record.headers if name not in DLQ_HEADERS),
            (DLQ_REASON, reason.encode()),
            (DLQ_ERROR, error[:1000].encode()),
            (DLQ_ORIGINAL_TOPIC, record.topic.encode()),
            (DLQ_ORIGINAL_PARTITION, str(record.partition).encode()),
            (DLQ_ORIGINAL_OFFSET, str(record.offset).encode()),
        )
        (delivery,) = await self._send(
            [OutgoingRecord(self._settings.dlq_topic, key=record.key, value=record.value, headers=headers)]
        )
        return delivery

    async def send_records(self, records: Sequence[OutgoingRecord]) -> list[Delivery]:
        """Send records as they are (a dead-letter replay), in order. Raises: as `publish`."""
        return await self._send(records)

    async def _send(self, records: Sequence[OutgoingRecord]) -> list[Delivery]:
        if not records:
            return []
        if not self._started:
            await self._connect()
        try:
            return await self._producer.send_many(records)
        except (client.MessagingError, RuntimeError) as exc:
            # RuntimeError: another task reset the producer under this send after its own failure.
            # After a failed batch the idempotent producer's sequence state is suspect: start a new
            # session at the next call rather than risk an out-of-order-sequence loop.
            await self._reset()
            raise MessagingUnavailable(f"publishing failed: {exc}") from exc

    async def _connect(self) -> None:
        async with self._lock:
            if self._started:
                return
            try:
                if not self._topics_ready:
                    await client.ensure_topics(
                        self._settings.bootstrap_servers,
                        topics_of(self._settings),
                        replication_factor=self._settings.replication_factor,
                        request_timeout_ms=self._settings.request_timeout_ms,
                    )
                    self._topics_ready = True
                await self._producer.start()
            except client.MessagingError as exc:
                raise MessagingUnavailable(f"connecting to Kafka failed: {exc}") from exc
            self._started = True
            log.info("publisher.connected", bootstrap_servers=self._settings.bootstrap_servers)

    async def _reset(self) -> None:
        async with self._lock:
            self._started = False
            await self._producer.stop()
