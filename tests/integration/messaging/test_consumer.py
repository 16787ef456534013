"""The payment consumer against a real broker and the real reference db-service."""

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
import prometheus_client
import structlog
import structlog.testing
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.db_service.client import DbServiceClient, build_http_client
from payment_service.domain.errors import DbServiceUnavailable
from payment_service.domain.events import PaymentRecorded
from payment_service.domain.payments import PaymentStatus
from payment_service.messaging.client import KafkaProducerClient
from payment_service.messaging.codec import CloudEvent, encode_event
from payment_service.messaging.consumer import EventConsumer, RetryPolicy, create_consumer_client
from payment_service.messaging.publisher import EventPublisher, create_producer
from payment_service.services.outbox_relay import OutboxRelay
from payment_service.services.recording import PaymentRecorder
from payment_service.settings import DbServiceSettings, KafkaSettings, RelaySettings
from payment_service.store.database import Database
from payment_service.store.outbox import add_events, claim_unpublished
from tests.integration.messaging.conftest import Order
from tests.support.db_service import DbServiceHandle
from tests.support.events import (
    committed_offsets,
    fresh_kafka_settings,
    header,
    make_payment_record,
    payment_event,
    read_topic,
    wait_until,
)

DEADLINE_S = 30


def payment_for(order: Order, **changes: Any) -> PaymentRecorded:
    return make_payment_record(order_id=order.order_id, customer_id=order.customer_id, **changes)


@contextlib.asynccontextmanager
async def publishing(settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    publisher = EventPublisher(create_producer(settings), settings)
    await publisher.start(require_broker=True)
    try:
        yield publisher
    finally:
        await publisher.stop()


@contextlib.asynccontextmanager
async def consuming(
    settings: KafkaSettings,
    db_service: DbServiceHandle,
    *,
    failing_event_id: str | None = None,
    max_in_flight: int = 64,
) -> AsyncIterator[EventConsumer]:
    """The worker's consumer wiring: consumer -> PaymentRecorder -> DbServiceClient -> the db-service.

    With `failing_event_id`, that event fails as a db-service answering 503 would, every time.
    """
    db_settings = DbServiceSettings(base_url=db_service.base_url, max_retries=1, backoff_ms=10, read_timeout_s=3.0)
    async with build_http_client(db_settings) as http, publishing(settings) as dead_letters:
        recorder = PaymentRecorder(DbServiceClient(http, db_settings))

        async def record(event: CloudEvent) -> None:
            if event.event_id == failing_event_id:
                raise DbServiceUnavailable("db-service answered 503")
            await recorder.record(event)

        consumer = EventConsumer(
            create_consumer_client(settings),
            record,
            dead_letters,
            retry=RetryPolicy(initial_backoff_s=0.05, max_backoff_s=0.3),
            max_in_flight=max_in_flight,
        )
        task = asyncio.create_task(consumer.run())
        try:
            yield consumer
        finally:
            consumer.stop()
            await task


async def wait_committed(settings: KafkaSettings, total: int) -> None:
    """Until the group's committed offsets add up to `total` records (every partition starts at 0)."""

    async def done() -> bool:
        return sum((await committed_offsets(settings.bootstrap_servers, settings.consumer_group)).values()) >= total

    await wait_until(done, timeout_s=DEADLINE_S, interval_s=0.1)


async def wait_for_logs(logs: list[MutableMapping[str, Any]], event: str, count: int) -> None:
    async def logged() -> bool:
        return sum(1 for entry in logs if entry["event"] == event) >= count

    await wait_until(logged, timeout_s=DEADLINE_S)


def make_orders(db_service: DbServiceHandle, count: int) -> list[Order]:
    customer = str(db_service.create_customer()["id"])
    product = str(db_service.create_product("Green mug", "12.50")["id"])
    return [Order(str(db_service.create_order(customer, [(product, 1)])["id"]), customer) for _ in range(count)]


def versions(payment: PaymentRecorded, count: int) -> list[PaymentRecorded]:
    """v1..v`count` of a payment: held for review until the last, which is approved."""
    return [
        payment.model_copy(
            update={"version": v, "status": PaymentStatus.APPROVED if v == count else PaymentStatus.HELD_FOR_REVIEW}
        )
        for v in range(1, count + 1)
    ]


def stored(db_service: DbServiceHandle, payment_id: str) -> dict[str, Any]:
    record = db_service.get_payment(payment_id)
    assert record is not None, f"payment {payment_id} not in the db-service"
    return record


class TestPaymentConsumer:
    async def test_the_same_event_delivered_twice_leaves_one_row(
        self, kafka_settings: KafkaSettings, db_service: DbServiceHandle, orders: list[Order]
    ) -> None:
        event = payment_event(payment_for(orders[0]))

        async with publishing(kafka_settings) as publisher, consuming(kafka_settings, db_service):
            await publisher.publish([event])
            await publisher.publish([event])
            await wait_committed(kafka_settings, 2)

        payments = db_service.list_payments(orders[0].order_id)
        assert [(p["id"], p["version"], p["status"]) for p in payments] == [
            (orjson.loads(event.data)["id"], 1, "approved")
        ]
        order = db_service.get_order(orders[0].order_id)
        assert order is not None
        assert (order["status"], order["payment_status"]) == ("paid", "approved")

    async def test_an_older_version_after_a_newer_one_does_not_regress_the_row(
        self, kafka_settings: KafkaSettings, db_service: DbServiceHandle, orders: list[Order]
    ) -> None:
        held = payment_for(orders[1], status=PaymentStatus.HELD_FOR_REVIEW, version=1)
        approved = held.model_copy(update={"status": PaymentStatus.APPROVED, "version": 2})

        async with publishing(kafka_settings) as publisher, consuming(kafka_settings, db_service):
            await publisher.publish([payment_event(approved), payment_event(held)])
            await wait_committed(kafka_settings, 2)

        record = stored(db_service, held.id)
        assert (record["status"], record["version"]) == ("approved", 2)

    async def test_poison_messages_go_to_the_dead_letter_topic_and_the_consumer_moves_on(
        self, kafka_settings: KafkaSettings, db_service: DbServiceHandle, orders: list[Order]
    ) -> None:
        order = orders[2]
        good = payment_event(payment_for(order))
        envelope = encode_event(good)
        off_schema = dataclasses.replace(
            payment_event(payment_for(order)), data=orjson.dumps({"id": "pay_x", "order_id": order.order_id})
        )
        # The db-service answers 4xx: the order belongs to another customer.
        wrong_customer = payment_event(payment_for(Order(order.order_id, "987654321")))
        topic = kafka_settings.payment_topic
        reasons = ("undecodable", "invalid_schema", "db_service_error")
        dlq_counts_before = [_dlq_count(reason) for reason in reasons]

        async with KafkaProducerClient(kafka_settings.bootstrap_servers) as raw:
            await raw.send(topic, key=envelope.key, value=b"\x00not json", headers=envelope.headers)
        async with publishing(kafka_settings) as publisher:
            await publisher.publish([off_schema])
        async with publishing(kafka_settings) as publisher, consuming(kafka_settings, db_service):
            await publisher.publish([wrong_customer, good])
            await wait_committed(kafka_settings, 4)

        dead = await read_topic(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, at_least=3)
        assert stored(db_service, orjson.loads(good.data)["id"])["status"] == "approved"
        assert [header(r, "dlq-reason") for r in dead] == ["undecodable", "invalid_schema", "db_service_error"]
        assert [header(r, "dlq-original-topic") for r in dead] == [topic] * 3
        originals = [
            (r.partition, r.offset) for r in await read_topic(kafka_settings.bootstrap_servers, topic, at_least=4)
        ]
        assert [
            (int(header(r, "dlq-original-partition") or -1), int(header(r, "dlq-original-offset") or -1)) for r in dead
        ] == originals[:3]
        assert dead[0].value == b"\x00not json"
        assert header(dead[0], "ce_id") == good.event_id  # original headers kept
        assert "version" in (header(dead[1], "dlq-error") or "")
        assert [_dlq_count(reason) - before for reason, before in zip(reasons, dlq_counts_before, strict=True)] == [
            1,
            1,
            1,
        ]

    async def test_while_the_db_service_is_down_nothing_is_committed_and_rows_appear_once_it_is_back(
        self, kafka_settings: KafkaSettings, db_service: DbServiceHandle, orders: list[Order]
    ) -> None:
        held = [payment_for(order, status=PaymentStatus.HELD_FOR_REVIEW) for order in orders]
        approved = [p.model_copy(update={"status": PaymentStatus.APPROVED, "version": 2}) for p in held]
        await asyncio.to_thread(db_service.stop)
        try:
            with structlog.testing.capture_logs() as logs:
                async with publishing(kafka_settings) as publisher, consuming(kafka_settings, db_service):
                    await publisher.publish([payment_event(p) for p in held + approved])
                    await wait_for_logs(logs, "consumer.retrying", 9)  # every partition retried, none gave up
                    committed_while_down = await committed_offsets(
                        kafka_settings.bootstrap_servers, kafka_settings.consumer_group
                    )
                    await asyncio.to_thread(db_service.start)
                    await wait_committed(kafka_settings, 6)
        finally:
            await asyncio.to_thread(db_service.start)

        assert committed_while_down == {}
        for order, payment in zip(orders, approved, strict=True):
            assert [(p["id"], p["status"], p["version"]) for p in db_service.list_payments(order.order_id)] == [
                (payment.id, "approved", 2)
            ]

    async def test_a_relay_killed_between_publish_and_mark_republishes_and_the_consumer_stays_idempotent(
        self, engine: AsyncEngine, kafka_settings: KafkaSettings, db_service: DbServiceHandle, orders: list[Order]
    ) -> None:
        payments = [payment_for(order) for order in orders]
        events = [payment_event(p) for p in payments]
        database = Database(engine)
        async with database.transaction() as conn:
            await add_events(conn, events)

        async with publishing(kafka_settings) as publisher:
            # The first relay claims and publishes, then dies before marking: its lease has run out.
            now = datetime.now(UTC)
            async with database.transaction() as conn:
                claimed = await claim_unpublished(conn, limit=10, now=now, lease_until=now)
            await publisher.publish([row.event for row in claimed])
            republished = await OutboxRelay(database, publisher, RelaySettings()).publish_pending()
        async with consuming(kafka_settings, db_service):
            await wait_committed(kafka_settings, 6)

        records = await read_topic(kafka_settings.bootstrap_servers, kafka_settings.payment_topic, at_least=6)
        assert republished == 3
        assert sorted(header(r, "ce_id") or "" for r in records) == sorted(e.event_id for e in events * 2)
        for order, payment in zip(orders, payments, strict=True):
            assert [(p["id"], p["version"]) for p in db_service.list_payments(order.order_id)] == [(payment.id, 1)]

    async def test_a_rebalance_loses_nothing_and_commits_every_record(
        self, kafka_settings: KafkaSettings, db_service: DbServiceHandle, orders: list[Order]
    ) -> None:
        declined = [payment_for(orders[n % 3], status=PaymentStatus.DECLINED) for n in range(90)]

        async with publishing(kafka_settings) as publisher, consuming(kafka_settings, db_service):
            await publisher.publish([payment_event(p) for p in declined[:45]])
            await wait_committed(kafka_settings, 1)
            async with consuming(kafka_settings, db_service):  # a second member joins: the group rebalances
                await publisher.publish([payment_event(p) for p in declined[45:]])
                await wait_committed(kafka_settings, 90)

        committed = await committed_offsets(kafka_settings.bootstrap_servers, kafka_settings.consumer_group)
        assert sum(committed.values()) == 90
        for n, order in enumerate(orders):
            stored_ids = sorted(p["id"] for p in db_service.list_payments(order.order_id))
            assert stored_ids == sorted(p.id for p in declined[n::3])

    async def test_many_orders_in_one_partition_are_all_recorded_each_at_its_last_version(
        self, kafka_bootstrap: str, db_service: DbServiceHandle
    ) -> None:
        settings = await fresh_kafka_settings(kafka_bootstrap, partitions=1)
        orders = make_orders(db_service, 30)
        payments = [versions(payment_for(order, status=PaymentStatus.HELD_FOR_REVIEW), 5) for order in orders]
        # Version by version, every order in turn: one order's records are spread along the partition.
        events = [payment_event(payment[v]) for v in range(5) for payment in payments]

        async with publishing(settings) as publisher, consuming(settings, db_service):
            await publisher.publish(events)
            await wait_committed(settings, len(events))

        assert await committed_offsets(settings.bootstrap_servers, settings.consumer_group) == {0: len(events)}
        for order, payment in zip(orders, payments, strict=True):
            assert [(p["id"], p["status"], p["version"]) for p in db_service.list_payments(order.order_id)] == [
                (payment[0].id, "approved", 5)
            ]
            paid = db_service.get_order(order.order_id)
            assert paid is not None
            assert paid["payment_status"] == "approved"

    async def test_a_failing_order_holds_its_later_records_and_the_commit_point_while_other_orders_flow(
        self, kafka_bootstrap: str, db_service: DbServiceHandle
    ) -> None:
        settings = await fresh_kafka_settings(kafka_bootstrap, partitions=1)
        failing, *others = make_orders(db_service, 9)
        held, approved = versions(payment_for(failing, status=PaymentStatus.HELD_FOR_REVIEW), 2)
        other_payments = [payment_for(order, status=PaymentStatus.DECLINED) for order in others]
        # Offsets: 0-1 other orders, 2 the failing v1, 3 another order, 4 the same order's v2 (which would
        # succeed), 5-10 the rest.
        failing_event = payment_event(held)
        events = [
            *(payment_event(p) for p in other_payments[:2]),
            failing_event,
            payment_event(other_payments[2]),
            payment_event(approved),
            *(payment_event(p) for p in other_payments[3:]),
        ]

        with structlog.testing.capture_logs() as logs:
            async with (
                publishing(settings) as publisher,
                consuming(settings, db_service, failing_event_id=failing_event.event_id),
            ):
                await publisher.publish(events)

                async def others_recorded() -> bool:
                    return all(db_service.get_payment(p.id) is not None for p in other_payments)

                await wait_until(others_recorded, timeout_s=DEADLINE_S)
                await wait_for_logs(logs, "consumer.retrying", 3)
                # v2 was never written ahead of v1, though the records after it were.
                assert db_service.get_payment(held.id) is None
            # The consumer stopped and committed what it finished: the prefix before the failing v1.
            assert await committed_offsets(settings.bootstrap_servers, settings.consumer_group) == {0: 2}

        # The next consumer of the group starts at the failing record: v1 and v2 are written in order.
        async with consuming(settings, db_service):
            await wait_committed(settings, len(events))
        record = stored(db_service, held.id)
        assert (record["status"], record["version"]) == ("approved", 2)
        assert await committed_offsets(settings.bootstrap_servers, settings.consumer_group) == {0: len(events)}

    async def test_a_rebalance_with_many_orders_in_flight_per_partition_loses_nothing(
        self, kafka_bootstrap: str, db_service: DbServiceHandle
    ) -> None:
        settings = await fresh_kafka_settings(kafka_bootstrap, partitions=2)
        orders = make_orders(db_service, 40)
        payments = [versions(payment_for(order, status=PaymentStatus.HELD_FOR_REVIEW), 3) for order in orders]
        events = [payment_event(payment[v]) for v in range(3) for payment in payments]

        async with publishing(settings) as publisher, consuming(settings, db_service, max_in_flight=8):
            await publisher.publish(events[:60])
            await wait_committed(settings, 1)
            async with consuming(settings, db_service, max_in_flight=8):  # the group rebalances
                await publisher.publish(events[60:])
                await wait_committed(settings, len(events))

        committed = await committed_offsets(settings.bootstrap_servers, settings.consumer_group)
        assert sum(committed.values()) == len(events)
        for order, payment in zip(orders, payments, strict=True):
            assert [(p["id"], p["status"], p["version"]) for p in db_service.list_payments(order.order_id)] == [
                (payment[0].id, "approved", 3)
            ]

    async def test_a_consumer_leaving_the_group_stops_reporting_the_lag_of_its_partitions(
        self, kafka_settings: KafkaSettings, db_service: DbServiceHandle, orders: list[Order]
    ) -> None:
        declined = [payment_for(orders[n % 3], status=PaymentStatus.DECLINED) for n in range(9)]

        async with publishing(kafka_settings) as publisher, consuming(kafka_settings, db_service):
            await publisher.publish([payment_event(p) for p in declined])
            await wait_committed(kafka_settings, 9)
            reported_while_consuming = _lag_partitions(kafka_settings.payment_topic)

        assert reported_while_consuming
        assert _lag_partitions(kafka_settings.payment_topic) == set()


def _lag_partitions(topic: str) -> set[str]:
    """Partitions of `topic` this process reports a consumer lag for."""
    return {
        sample.labels["partition"]
        for metric in prometheus_client.REGISTRY.collect()
        if metric.name == "payment_service_consumer_lag"
        for sample in metric.samples
        if sample.labels.get("topic") == topic
    }


def _dlq_count(reason: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value("payment_service_dlq_records_total", {"reason": reason}) or 0.0
