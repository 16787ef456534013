"""The operator commands (`payment-service payments …`, `dlq …`) against a served API.

The API is served by uvicorn over a real simulator and reference db-service; each command runs as its own
process (the installed `payment-service` script) and speaks HTTP to it, as from an operator's shell.
"""

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from payment_service.api.app import create_app
from payment_service.domain.payments import PaymentStatus
from payment_service.messaging.client import Record
from payment_service.messaging.codec import encode_event
from payment_service.messaging.publisher import EventPublisher, create_producer
from payment_service.settings import Settings
from payment_service.worker.main import serve_worker
from tests.integration.conftest import Shop, card_body, store_rows
from tests.support.events import fresh_kafka_settings, make_payment_record, payment_event, wait_until
from tests.support.servers import serve_app
from tests.support.simulator import SimulatorHandle

pytestmark = pytest.mark.usefixtures("simulator")


@pytest.fixture
def settings(service_settings: Settings) -> Settings:
    # A short read time-out turns a stalled answer into an `unknown` payment quickly.
    gateway = service_settings.gateway.model_copy(update={"read_timeout_s": 0.5})
    return service_settings.model_copy(update={"gateway": gateway})


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    with serve_app(create_app(settings)) as base_url:
        yield base_url


CLI = str(Path(sys.executable).parent / "payment-service")


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    output: str  # stdout and stderr


def run_cli(api_url: str, shop: Shop, *args: str, operator: str = "alice", token: str | None = None) -> Result:
    token = token or shop.token(operator, roles=("admin",))
    done = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [CLI, *args, "--api-url", api_url, "--token", token], capture_output=True, text=True, timeout=60, check=False
    )
    return Result(done.returncode, done.stdout, done.stdout + done.stderr)


def pay(api_url: str, shop: Shop, *, price: str = "19.99", quantity: int = 3) -> tuple[str, dict[str, Any]]:
    customer = shop.customer()
    order_id = str(shop.order(customer, price=price, quantity=quantity)["id"])
    response = httpx.post(f"{api_url}/payments/pay", json=card_body(order_id), headers=shop.auth(customer), timeout=10)
    assert response.status_code in (201, 202), response.text
    body: dict[str, Any] = response.json()
    return order_id, body


def outbox_types(settings: Settings, order_id: str) -> list[str]:
    rows = store_rows(settings, "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq", order_id)
    return [row[0] for row in rows]


class TestPaymentsShowAndList:
    def test_show_prints_the_payment_as_a_table_and_as_the_apis_json(self, api_url: str, shop: Shop) -> None:
        _, body = pay(api_url, shop)

        table = run_cli(api_url, shop, "payments", "show", body["id"])
        as_json = run_cli(api_url, shop, "payments", "show", body["id"], "--json")

        assert table.exit_code == 0, table.output
        assert body["id"] in table.output
        assert "approved" in table.output
        assert body["gateway"]["transaction_id"] in table.output
        assert as_json.exit_code == 0, as_json.output
        assert orjson.loads(as_json.stdout) == body

    def test_show_of_a_missing_payment_says_so_and_exits_1(self, api_url: str, shop: Shop) -> None:
        result = run_cli(api_url, shop, "payments", "show", "pay_missing")

        assert result.exit_code == 1
        assert "404 payment_not_found" in result.output

    def test_list_shows_payments_of_the_status_unchanged_for_the_given_time(
        self, api_url: str, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        simulator.add_fault("stall_after_commit", stall_s=2)
        _, unknown = pay(api_url, shop)
        simulator.clear_faults()
        _, approved = pay(api_url, shop)

        listed = run_cli(api_url, shop, "payments", "list", "--status", "unknown", "--json")
        recent_only = run_cli(api_url, shop, "payments", "list", "--status", "unknown", "--older-than", "10m")
        table = run_cli(api_url, shop, "payments", "list", "--status", "unknown")

        assert unknown["status"] == "unknown"
        assert [p["id"] for p in orjson.loads(listed.stdout)] == [unknown["id"]]
        assert recent_only.exit_code == 0, recent_only.output
        assert unknown["id"] not in recent_only.output
        assert unknown["id"] in table.output
        assert approved["id"] not in table.output

    def test_a_customer_token_is_refused(self, api_url: str, shop: Shop) -> None:
        result = run_cli(api_url, shop, "payments", "list", "--status", "unknown", token=shop.token("42"))

        assert result.exit_code == 1
        assert "403 forbidden" in result.output


class TestPaymentsRefund:
    def test_a_settled_payment_is_refunded_in_part_and_never_beyond_what_was_taken(
        self, api_url: str, shop: Shop, simulator: SimulatorHandle, settings: Settings
    ) -> None:
        order_id, body = pay(api_url, shop, price="100.00", quantity=1)
        simulator.settle()

        partial = run_cli(
            api_url, shop, "payments", "refund", body["id"], "--amount", "40.00", "--reason", "damaged", "--json"
        )
        too_much = run_cli(api_url, shop, "payments", "refund", body["id"], "--amount", "80.00")
        table = run_cli(api_url, shop, "payments", "show", body["id"])

        assert partial.exit_code == 0, partial.output
        refund = orjson.loads(partial.stdout)
        assert (refund["kind"], refund["amount"], refund["payment_id"]) == ("refund", "40.00", body["id"])
        assert too_much.exit_code == 1
        assert "refund" in too_much.output
        assert "partially_refunded" in table.output
        refunded = [e for e in simulator.transactions() if e["type"] == "refundTransaction"]
        assert [e["amount"] for e in refunded] == ["40.00"]
        assert outbox_types(settings, order_id)[2:] == ["payment.refunded", "order.refunded"]

    def test_an_unsettled_payment_is_voided_whole_and_the_table_says_so(self, api_url: str, shop: Shop) -> None:
        _, body = pay(api_url, shop)

        result = run_cli(api_url, shop, "payments", "refund", body["id"], "--reason", "order cancelled")

        assert result.exit_code == 0, result.output
        assert "void" in result.output
        assert body["amount"] in result.output

    def test_an_amount_that_is_no_number_is_refused_before_any_call(self, api_url: str, shop: Shop) -> None:
        result = run_cli(api_url, shop, "payments", "refund", "pay_x", "--amount", "ten")

        assert result.exit_code == 2
        assert "amount must be a decimal number" in result.output


class TestPaymentsResolve:
    def test_approving_an_unknown_payment_needs_its_real_transaction_and_publishes_the_change(
        self, api_url: str, shop: Shop, simulator: SimulatorHandle, settings: Settings
    ) -> None:
        simulator.add_fault("stall_after_commit", stall_s=2)
        order_id, body = pay(api_url, shop)
        charged = simulator.transactions()[-1]["transId"]
        other_order, other = pay(api_url, shop)  # charged too, but another payment's transaction

        typo = run_cli(
            api_url, shop, "payments", "resolve", body["id"], "--status", "approved",
            "--transaction-id", other["gateway"]["transaction_id"], "--reason", "seen in the merchant interface",
        )  # fmt: skip
        missing = run_cli(
            api_url, shop, "payments", "resolve", body["id"], "--status", "approved",
            "--transaction-id", "99999999999", "--reason", "seen in the merchant interface",
        )  # fmt: skip
        still = run_cli(api_url, shop, "payments", "show", body["id"], "--json")
        resolved = run_cli(
            api_url, shop, "payments", "resolve", body["id"], "--status", "approved",
            "--transaction-id", charged, "--reason", "seen in the merchant interface", "--json",
        )  # fmt: skip

        assert typo.exit_code == 1
        assert "409 resolution_refused" in typo.output
        assert missing.exit_code == 1
        assert orjson.loads(still.stdout)["status"] == "unknown"
        assert resolved.exit_code == 0, resolved.output
        payment = orjson.loads(resolved.stdout)
        assert payment["status"] == "approved"
        assert payment["gateway"]["transaction_id"] == charged
        assert outbox_types(settings, order_id) == ["payment.approved", "order.paid"]
        assert shop.db.get_order(order_id)["status"] == "paid"  # type: ignore[index]
        record = store_rows(
            settings,
            "SELECT from_status, to_status, transaction_id, actor, reason FROM payment_resolutions WHERE payment_id = ?",
            body["id"],
        )
        assert record == [("unknown", "approved", charged, "alice", "seen in the merchant interface")]
        assert other_order != order_id

    def test_approving_without_a_transaction_id_is_refused_before_any_call(self, api_url: str, shop: Shop) -> None:
        result = run_cli(api_url, shop, "payments", "resolve", "pay_x", "--status", "approved", "--reason", "r")

        assert result.exit_code == 2
        assert "--transaction-id" in result.output

    def test_failing_a_payment_the_gateway_charged_is_refused(
        self, api_url: str, shop: Shop, simulator: SimulatorHandle, settings: Settings
    ) -> None:
        simulator.add_fault("stall_after_commit", stall_s=2)
        order_id, body = pay(api_url, shop)

        result = run_cli(
            api_url, shop, "payments", "resolve", body["id"], "--status", "failed", "--reason", "customer says no"
        )

        assert result.exit_code == 1
        assert "409 resolution_refused" in result.output
        assert outbox_types(settings, order_id) == []

    def test_failing_a_held_payment_the_gateway_declined_is_recorded_with_who_and_why(
        self, api_url: str, shop: Shop, simulator: SimulatorHandle, settings: Settings
    ) -> None:
        simulator.add_fault("held_for_review")
        order_id, body = pay(api_url, shop)
        held_refused = run_cli(
            api_url, shop, "payments", "resolve", body["id"], "--status", "failed", "--reason", "fraud team"
        )
        simulator.review(body["gateway"]["transaction_id"], approve=False)  # no webhook reaches this API

        result = run_cli(
            api_url, shop, "payments", "resolve", body["id"], "--status", "failed", "--reason", "fraud team",
            operator="bob",
        )  # fmt: skip

        assert held_refused.exit_code == 1
        assert result.exit_code == 0, result.output
        assert "failed" in result.output
        assert outbox_types(settings, order_id) == ["payment.held_for_review", "payment.failed"]
        record = store_rows(
            settings, "SELECT to_status, actor, reason FROM payment_resolutions WHERE payment_id = ?", body["id"]
        )
        assert record == [("failed", "bob", "fraud team")]
        transitions = store_rows(
            settings, "SELECT reason FROM payment_transitions WHERE payment_id = ? ORDER BY seq DESC", body["id"]
        )
        assert transitions[0] == ("manual_resolution",)


class TestDeadLetters:
    async def test_a_replayed_dead_letter_is_recorded_at_the_db_service(
        self, settings: Settings, shop: Shop, kafka_bootstrap: str
    ) -> None:
        kafka = await fresh_kafka_settings(kafka_bootstrap)
        with_kafka = settings.model_copy(update={"kafka": kafka})
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        lost = make_payment_record(order_id=order_id, customer_id=customer, amount="59.97")
        event = payment_event(lost)
        # As the consumer dead-letters a record the db-service refused; the payments topic itself stays empty.
        encoded = encode_event(event)
        original = Record(
            topic=kafka.payment_topic,
            partition=1,
            offset=7,
            key=encoded.key,
            value=encoded.value,
            headers=encoded.headers,
            timestamp_ms=0,
        )
        publisher = EventPublisher(create_producer(kafka), kafka)
        await publisher.start(require_broker=True)
        try:
            dead = await publisher.publish_dead_letter(original, reason="rejected", error="db-service answered 422")
        finally:
            await publisher.stop()
        position = f"{dead.partition}:{dead.offset}"

        with serve_app(create_app(with_kafka)) as api_url:
            listed = await asyncio.to_thread(run_cli, api_url, shop, "dlq", "list")
            listed_json = await asyncio.to_thread(run_cli, api_url, shop, "dlq", "list", "--json")
            nowhere = await asyncio.to_thread(run_cli, api_url, shop, "dlq", "replay", "--offset", "0:999999")
            replayed = await asyncio.to_thread(run_cli, api_url, shop, "dlq", "replay", "--offset", position)

        assert listed.exit_code == 0, listed.output
        assert position in listed.output
        assert "rejected" in listed.output
        (entry,) = orjson.loads(listed_json.stdout)
        assert entry["event_type"] == "payment.approved"
        assert (entry["original_partition"], entry["original_offset"]) == (1, 7)
        assert nowhere.exit_code == 1
        assert "no entry at: 0:999999" in nowhere.output
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1" in replayed.output

        # The worker's consumer reads the payments topic, where only the replayed event is.
        stop = asyncio.Event()
        worker_settings = with_kafka.model_copy(
            update={"worker": with_kafka.worker.model_copy(update={"metrics_port": None})}
        )
        worker = asyncio.create_task(serve_worker(worker_settings, stop=stop))
        try:

            async def recorded() -> bool:
                return shop.db.get_payment(lost.id) is not None

            await wait_until(recorded, timeout_s=60)
        finally:
            stop.set()
            await worker
        stored = shop.db.get_payment(lost.id)
        assert stored is not None
        assert stored["status"] == PaymentStatus.APPROVED.value
