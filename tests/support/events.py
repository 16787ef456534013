"""Test helpers for the messaging half: per-test topics, outbox rows, and reading a topic to its end."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from payment_service.domain.events import EventStream, GatewayDetails, OutboundEvent, PaymentRecorded
from payment_service.domain.payments import PaymentStatus
from payment_service.messaging.client import Record, ensure_topics
from payment_service.messaging.publisher import topics_of
from payment_service.settings import KafkaSettings


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def fresh_kafka_settings(bootstrap: str, *, partitions: int = 3) -> KafkaSettings:
    """Settings naming topics and a consumer group of this test's own; the topics exist on return."""
    suffix = uuid.uuid4().hex[:12]
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        payment_topic=f"payments-{suffix}",
        notification_topic=f"notifications-{suffix}",
        dlq_topic=f"payments-{suffix}.dlq",
        consumer_group=f"payment-consumer-{suffix}",
        topic_partitions=partitions,
        request_timeout_ms=3000,
        linger_ms=2,
    )
    await ensure_topics(bootstrap, topics_of(settings))
    return settings


def make_payment_record(
    *,
    payment_id: str | None = None,
    order_id: str = "1001",
    customer_id: str = "42",
    status: PaymentStatus = PaymentStatus.APPROVED,
    amount: str = "59.97",
    version: int = 1,
) -> PaymentRecorded:
    now = datetime.now(UTC)
    return PaymentRecorded(
        id=payment_id or unique("pay"),
        order_id=order_id,
        customer_id=customer_id,
        status=status,
        amount=amount,
        currency="USD",
        gateway=GatewayDetails(transaction_id="80012345678", account_number="XXXX1111", account_type="Visa"),
        created_at=now,
        updated_at=now,
        version=version,
    )


def payment_event(payment: PaymentRecorded) -> OutboundEvent:
    return OutboundEvent(
        event_id=str(uuid.uuid4()),
        stream=EventStream.PAYMENTS,
        event_type=f"payment.{payment.status.value}",
        subject=f"payments/{payment.id}",
        key=payment.order_id,
        data=payment.model_dump_json().encode(),
        occurred_at=datetime.now(UTC),
    )


async def read_topic(bootstrap: str, topic: str, *, at_least: int = 0, partitions: int = 3) -> list[Record]:
    """Every record on `topic` from the beginning to its current end, once `at_least` have arrived.

    Call it after the records were acknowledged (the relay marked them): what it returns is then
    exactly what the topic holds, so tests can assert "exactly one".
    """
    consumer: Any = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Record] = []
        ends: dict[Any, int] = {}
        while True:
            if len(records) >= at_least:
                ends = await consumer.end_offsets(assigned)
                positions = [await _position(consumer, tp) for tp in assigned]
                if all(position >= ends[tp] for position, tp in zip(positions, assigned, strict=True)):
                    return records
            batches = await consumer.getmany(timeout_ms=200)
            records += [_record(m) for messages in batches.values() for m in messages]
    finally:
        await consumer.stop()


async def _position(consumer: Any, tp: Any) -> int:
    return int(await consumer.position(tp))


def _record(message: Any) -> Record:
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((name, bytes(value)) for name, value in message.headers),
        timestamp_ms=message.timestamp,
    )


def header(record: Record, name: str) -> str | None:
    return next((value.decode() for key, value in record.headers if key == name), None)


def by_key(records: Sequence[Record]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {}
    for record in records:
        grouped.setdefault((record.key or b"").decode(), []).append(record)
    return grouped


async def committed_offsets(bootstrap: str, group_id: str) -> dict[int, int]:
    """partition -> committed offset of `group_id` (partitions without a commit are absent)."""
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    except KafkaError as exc:
        if not exc.retriable:
            raise
        return {}  # the group's coordinator is still being set up: nothing committed yet
    finally:
        await admin.close()
    return {int(tp.partition): int(meta.offset) for tp, meta in offsets.items() if meta.offset >= 0}


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout_s: float = 30, interval_s: float = 0.05) -> None:
    """Poll `check` until it holds, under a deadline (TimeoutError when it never does).

    For state outside the test's process or event loop (a broker, a database, another server),
    which cannot notify the test; the interval only paces the polling, it never stands for progress.
    """
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(interval_s)
