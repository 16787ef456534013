"""OutboxRelay against a real broker and a real store (SQLite, or PostgreSQL with PAYMENTS_TEST_POSTGRES_URL)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
import prometheus_client
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.domain.errors import MessagingUnavailable
from payment_service.domain.events import OutboundEvent
from payment_service.messaging.publisher import EventPublisher, create_producer
from payment_service.services.outbox_relay import OutboxRelay
from payment_service.settings import KafkaSettings, RelaySettings, StoreSettings
from payment_service.store.database import Database, create_engine
from payment_service.store.outbox import add_events, fetch_backlog, outbox
from tests.conftest import free_tcp_ports
from tests.integration.messaging.conftest import RestartableKafka
from tests.support.events import (
    by_key,
    fresh_kafka_settings,
    header,
    make_payment_record,
    payment_event,
    read_topic,
    wait_until,
)

DEADLINE_S = 30


def make_events(count: int, *, orders: int = 3) -> list[OutboundEvent]:
    return [payment_event(make_payment_record(order_id=f"order-{n % orders}", version=n + 1)) for n in range(count)]


async def add(engine: AsyncEngine, events: list[OutboundEvent]) -> None:
    async with engine.begin() as conn:
        await add_events(conn, events)


async def backlog(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count, _ = await fetch_backlog(conn)
    return count


async def has_attempts(engine: AsyncEngine, attempts: int) -> bool:
    async with engine.connect() as conn:
        fewest = (await conn.execute(select(outbox.c.attempts).order_by(outbox.c.attempts).limit(1))).scalar_one()
    return int(fewest) >= attempts


async def is_drained(engine: AsyncEngine) -> bool:
    return await backlog(engine) == 0


@contextlib.asynccontextmanager
async def publisher_for(settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    publisher = EventPublisher(create_producer(settings), settings)
    try:
        yield publisher
    finally:
        await publisher.stop()


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait({task})


async def backlog_gauge_is(count: int) -> bool:
    return prometheus_client.REGISTRY.get_sample_value("payment_service_outbox_backlog") == count


def assert_in_order_per_key(records: list[object], events: list[OutboundEvent]) -> None:
    expected: dict[str, list[str]] = {}
    for event in events:
        expected.setdefault(event.key, []).append(event.event_id)
    got = {key: [header(r, "ce_id") for r in rs] for key, rs in by_key(records).items()}  # type: ignore[arg-type]
    assert got == expected


class TestOutboxRelay:
    async def test_rows_are_published_in_seq_order_and_then_marked(
        self, engine: AsyncEngine, kafka_settings: KafkaSettings
    ) -> None:
        events = make_events(30)
        await add(engine, events)

        async with publisher_for(kafka_settings) as publisher:
            published = await OutboxRelay(Database(engine), publisher, RelaySettings(batch_size=7)).publish_pending()

        records = await read_topic(kafka_settings.bootstrap_servers, kafka_settings.payment_topic, at_least=30)
        assert published == 30
        assert len(records) == 30
        assert_in_order_per_key(records, events)  # type: ignore[arg-type]
        assert [orjson.loads(r.value or b"")["version"] for r in by_key(records)["order-0"]] == list(range(1, 31, 3))
        assert await backlog(engine) == 0

    async def test_two_relays_on_one_store_share_the_rows_and_publish_each_once(
        self, engine: AsyncEngine, kafka_settings: KafkaSettings
    ) -> None:
        # Two engines, as two processes would have (on PostgreSQL the claims skip each other's locked rows).
        other_engine = create_engine(StoreSettings(database_url=engine.url.render_as_string(hide_password=False)))
        events = make_events(120)
        await add(engine, events)

        try:
            async with publisher_for(kafka_settings) as first, publisher_for(kafka_settings) as second:
                counts = await asyncio.gather(
                    OutboxRelay(Database(engine), first, RelaySettings(batch_size=5), name="a").publish_pending(),
                    OutboxRelay(
                        Database(other_engine), second, RelaySettings(batch_size=5), name="b"
                    ).publish_pending(),
                )
        finally:
            await other_engine.dispose()

        records = await read_topic(kafka_settings.bootstrap_servers, kafka_settings.payment_topic, at_least=120)
        assert sum(counts) == 120
        assert min(counts) > 0
        assert sorted(str(header(r, "ce_id")) for r in records) == sorted(e.event_id for e in events)
        assert await backlog(engine) == 0

    async def test_rows_stay_unpublished_when_the_broker_does_not_acknowledge(
        self, engine: AsyncEngine, kafka_settings: KafkaSettings
    ) -> None:
        (dead_port,) = free_tcp_ports(1)
        unreachable = kafka_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{dead_port}"})
        events = make_events(5)
        await add(engine, events)

        async with publisher_for(unreachable) as publisher:
            with pytest.raises(MessagingUnavailable):
                await OutboxRelay(Database(engine), publisher, RelaySettings()).publish_pending()
        left_after_failure = await backlog(engine)
        # The failed pass gave its lease back: another relay publishes the rows at once.
        async with publisher_for(kafka_settings) as publisher:
            published = await OutboxRelay(Database(engine), publisher, RelaySettings()).publish_pending()

        assert left_after_failure == 5
        assert published == 5
        records = await read_topic(kafka_settings.bootstrap_servers, kafka_settings.payment_topic, at_least=5)
        assert_in_order_per_key(records, events)  # type: ignore[arg-type]

    async def test_relay_backs_off_while_the_broker_is_down_and_catches_up_when_it_returns(
        self, engine: AsyncEngine, restartable_kafka: RestartableKafka
    ) -> None:
        settings = await fresh_kafka_settings(restartable_kafka.bootstrap)
        await restartable_kafka.stop()
        relay_settings = RelaySettings(sweep_interval_s=0.2, max_backoff_s=0.5)
        events = make_events(40)
        try:
            async with publisher_for(settings) as publisher:
                relay = OutboxRelay(Database(engine), publisher, relay_settings)
                async with running(relay):
                    await add(engine, events[:20])
                    relay.wake()
                    # Three failed passes, each giving its rows back.
                    await wait_until(lambda: has_attempts(engine, 3), timeout_s=DEADLINE_S)
                    await add(engine, events[20:])
                    relay.wake()
                    assert await backlog(engine) == 40
                    await wait_until(lambda: backlog_gauge_is(40), timeout_s=DEADLINE_S)
                    await restartable_kafka.start()
                    await wait_until(lambda: is_drained(engine), timeout_s=DEADLINE_S)
                    await wait_until(lambda: backlog_gauge_is(0), timeout_s=DEADLINE_S)
        finally:
            await restartable_kafka.start()

        records = await read_topic(settings.bootstrap_servers, settings.payment_topic, at_least=40)
        assert len(records) == 40
        assert_in_order_per_key(records, events)  # type: ignore[arg-type]
