"""A payment through the API, its events on Kafka, and the worker recording it in the db-service."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson

from payment_service.api.app import create_app
from payment_service.domain.events import OrderRefunded, PaymentRecorded
from payment_service.messaging.client import Record
from payment_service.settings import KafkaSettings, RelaySettings, Settings
from payment_service.worker.main import serve_worker
from tests.integration.conftest import VISA, Shop, app_client, card_body, store_rows
from tests.integration.messaging.conftest import RestartableKafka
from tests.support.events import fresh_kafka_settings, header, read_topic, wait_until
from tests.support.simulator import SimulatorHandle

DEADLINE_S = 30
DECLINE_ZIP = "46282"  # the simulator declines charges billed to this ZIP


def with_kafka(settings: Settings, kafka: KafkaSettings) -> Settings:
    return settings.model_copy(update={"kafka": kafka, "relay": RelaySettings(sweep_interval_s=0.2, max_backoff_s=0.5)})


def unpublished(settings: Settings) -> int:
    return int(store_rows(settings, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0])


async def outbox_drained(settings: Settings) -> bool:
    return await asyncio.to_thread(unpublished, settings) == 0


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(serve_worker(settings, stop=stop))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE_S):
            await task


def assert_envelope(record: Record, *, event_type: str, subject: str, order_id: str) -> None:
    assert record.key == order_id.encode()
    assert header(record, "ce_specversion") == "1.0"
    assert uuid.UUID(header(record, "ce_id") or "").version == 4
    assert header(record, "ce_source") == "/payment-service"
    assert header(record, "ce_type") == event_type
    assert datetime.fromisoformat(header(record, "ce_time") or "").tzinfo is not None
    assert header(record, "ce_subject") == subject
    assert header(record, "content-type") == "application/json"
    assert (header(record, "traceparent") or "").startswith("00-")
    assert VISA.encode() not in (record.value or b"")


def data(record: Record) -> Any:
    return orjson.loads(record.value or b"")


class TestPaymentEventsEndToEnd:
    async def test_an_approved_payment_yields_one_payment_event_one_order_paid_and_the_db_service_records(
        self, service_settings: Settings, shop: Shop, kafka_bootstrap: str
    ) -> None:
        kafka = await fresh_kafka_settings(kafka_bootstrap)
        settings = with_kafka(service_settings, kafka)
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        async with app_client(create_app(settings)) as client, running_worker(settings):
            response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
            assert response.status_code == 201, response.text
            payment_id = response.json()["id"]

            async def recorded() -> bool:
                return await asyncio.to_thread(shop.db.get_payment, payment_id) is not None

            await wait_until(recorded, timeout_s=DEADLINE_S)
            await wait_until(lambda: outbox_drained(settings), timeout_s=DEADLINE_S)

        (payment,) = await read_topic(kafka_bootstrap, kafka.payment_topic, at_least=1)
        (paid,) = await read_topic(kafka_bootstrap, kafka.notification_topic, at_least=1)
        assert_envelope(payment, event_type="payment.approved", subject=f"payments/{payment_id}", order_id=order_id)
        assert_envelope(paid, event_type="order.paid", subject=f"orders/{order_id}", order_id=order_id)
        body = data(payment)
        assert (body["id"], body["order_id"], body["status"], body["amount"]) == (
            payment_id,
            order_id,
            "approved",
            "59.97",
        )
        assert body["version"] >= 1
        assert body["gateway"]["account_number"] == "XXXX1111"
        order_paid = data(paid)
        assert order_paid["order"]["id"] == order_id
        assert order_paid["order"]["total"] == "59.97"
        assert [line["name"] for line in order_paid["order"]["items"]] == ["Blue mug"]
        assert order_paid["customer"]["id"] == customer
        assert (order_paid["payment"]["id"], order_paid["payment"]["account_number"]) == (payment_id, "XXXX1111")
        stored = shop.db.get_payment(payment_id)
        assert stored is not None
        assert (stored["status"], stored["version"]) == ("approved", body["version"])
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["status"], order["payment_status"]) == ("paid", "approved")

    async def test_a_declined_payment_yields_a_payment_event_and_no_order_paid(
        self, service_settings: Settings, shop: Shop, kafka_bootstrap: str
    ) -> None:
        kafka = await fresh_kafka_settings(kafka_bootstrap)
        settings = with_kafka(service_settings, kafka)
        address = {"line1": "1 Test Street", "city": "Indianapolis", "state": "IN", "zip": DECLINE_ZIP, "country": "US"}
        customer = str(shop.db.create_customer(address=address)["id"])
        order_id = str(shop.order(customer)["id"])

        async with app_client(create_app(settings)) as client:
            response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
            assert response.status_code == 402, response.text
            await wait_until(lambda: outbox_drained(settings), timeout_s=DEADLINE_S)

        (payment,) = await read_topic(kafka_bootstrap, kafka.payment_topic, at_least=1)
        notifications = await read_topic(kafka_bootstrap, kafka.notification_topic)
        assert header(payment, "ce_type") == "payment.declined"
        assert data(payment)["status"] == "declined"
        assert notifications == []

    async def test_with_the_broker_down_the_api_still_answers_201_and_events_arrive_once_it_is_back(
        self, service_settings: Settings, shop: Shop, restartable_kafka: RestartableKafka
    ) -> None:
        kafka = await fresh_kafka_settings(restartable_kafka.bootstrap)
        settings = with_kafka(service_settings, kafka)
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        await restartable_kafka.stop()
        try:
            async with app_client(create_app(settings)) as client:
                response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
                left_while_down = await asyncio.to_thread(unpublished, settings)
                await restartable_kafka.start()
                await wait_until(lambda: outbox_drained(settings), timeout_s=DEADLINE_S)
        finally:
            await restartable_kafka.start()

        assert response.status_code == 201, response.text
        assert left_while_down == 2
        (payment,) = await read_topic(restartable_kafka.bootstrap, kafka.payment_topic, at_least=1)
        (paid,) = await read_topic(restartable_kafka.bootstrap, kafka.notification_topic, at_least=1)
        assert data(payment)["id"] == response.json()["id"]
        assert header(paid, "ce_type") == "order.paid"


class TestRefundEventsEndToEnd:
    async def test_a_partial_refund_then_the_rest_are_published_and_recorded_at_the_db_service(
        self, service_settings: Settings, shop: Shop, kafka_bootstrap: str, simulator: SimulatorHandle
    ) -> None:
        kafka = await fresh_kafka_settings(kafka_bootstrap)
        settings = with_kafka(service_settings, kafka)
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        admin = shop.auth("staff-1", roles=("admin",))

        async with app_client(create_app(settings)) as client, running_worker(settings):
            response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
            assert response.status_code == 201, response.text
            payment_id = response.json()["id"]
            simulator.settle()
            url = f"/payments/{payment_id}/refunds"
            partial = await client.post(url, json={"amount": "20.00", "reason": "damaged"}, headers=admin)
            rest = await client.post(url, headers=admin)
            assert (partial.status_code, rest.status_code) == (201, 201), rest.text

            async def refunded_at_db_service() -> bool:
                stored = await asyncio.to_thread(shop.db.get_payment, payment_id)
                return stored is not None and stored["status"] == "refunded"

            await wait_until(refunded_at_db_service, timeout_s=DEADLINE_S)
            await wait_until(lambda: outbox_drained(settings), timeout_s=DEADLINE_S)

        payments = await read_topic(kafka_bootstrap, kafka.payment_topic, at_least=3)
        notifications = await read_topic(kafka_bootstrap, kafka.notification_topic, at_least=3)
        assert [header(r, "ce_type") for r in payments] == ["payment.approved", "payment.refunded", "payment.refunded"]
        assert [PaymentRecorded.model_validate_json(r.value or b"").status for r in payments] == [
            "approved",
            "partially_refunded",
            "refunded",
        ]
        assert [data(r)["refunded_amount"] for r in payments] == [None, "20.00", "59.97"]
        assert [header(r, "ce_type") for r in notifications] == ["order.paid", "order.refunded", "order.refunded"]
        first, last = (OrderRefunded.model_validate_json(r.value or b"") for r in notifications[1:])
        assert (first.refund.amount, first.refund.total_refunded, first.refund.fully_refunded) == (
            "20.00",
            "20.00",
            False,
        )
        assert (first.refund.reason, first.items) == ("damaged", [])
        assert (last.refund.amount, last.refund.total_refunded, last.refund.fully_refunded) == ("39.97", "59.97", True)
        assert [line.name for line in last.items] == ["Blue mug"]
        for record in notifications[1:]:
            assert_envelope(record, event_type="order.refunded", subject=f"orders/{order_id}", order_id=order_id)
        stored = shop.db.get_payment(payment_id)
        assert stored is not None
        assert (stored["status"], stored["refunded_amount"]) == ("refunded", "59.97")
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["status"], order["payment_status"]) == ("paid", "refunded")
