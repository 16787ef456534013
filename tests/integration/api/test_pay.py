"""`POST /payments/pay` end to end: the app in-process, the simulator and the reference db-service over HTTP.

One test per row of the outcomes table (DESIGN §3), then the double-charge guards. Charges are
checked in the simulator's ledger, stored rows in the local SQLite store.
"""

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from payment_service.api.app import create_app
from payment_service.settings import Settings
from tests.integration.conftest import (
    MASTERCARD,
    VISA,
    Shop,
    app_client,
    build_settings,
    card_body,
    store_rows,
    stored_bytes,
)
from tests.support.db_service import DbServiceHandle, run_db_service
from tests.support.servers import bind_free_socket
from tests.support.simulator import SimulatorHandle

DECLINE_ZIP = "46282"  # the simulator declines charges billed to this ZIP (reason 2)
LEGACY_ERROR_CARD = "4222222222222"  # with an amount of N dollars, answers reason code N


def payment_statuses(settings: Settings, order_id: str) -> list[str]:
    return [row[0] for row in store_rows(settings, "SELECT status FROM payments WHERE order_id = ?", order_id)]


def outbox_types(settings: Settings, order_id: str) -> list[str]:
    rows = store_rows(settings, "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq", order_id)
    return [row[0] for row in rows]


async def wait_for_attempt(settings: Settings, order_id: str) -> None:
    """Until the pay request has persisted its `processing` attempt (an observable condition)."""
    async with asyncio.timeout(10):
        while "processing" not in payment_statuses(settings, order_id):  # noqa: ASYNC110 - a row in SQLite: nothing to await
            await asyncio.sleep(0.01)


def with_gateway(settings: Settings, **changes: Any) -> Settings:
    gateway = settings.gateway.model_copy(update=changes)
    return settings.model_copy(update={"gateway": gateway})


class TestPayOutcomes:
    async def test_approved_charge_answers_201_with_location_and_records_everything(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, amount="59.97", customer_id=customer), headers=shop.auth(customer)
        )

        assert response.status_code == 201
        payment = response.json()
        assert response.headers["location"] == f"/payments/{payment['id']}"
        assert payment["status"] == "approved"
        assert payment["amount"] == "59.97"
        assert payment["gateway"]["account_number"] == "XXXX1111"
        assert len(payment["id"]) <= 20
        ledger = simulator.transactions(invoice_number=order_id)
        assert [(t["amount"], t["transId"]) for t in ledger] == [("59.97", payment["gateway"]["transaction_id"])]
        assert shop.db.get_order(order_id)["payment_status"] == "approved"  # type: ignore[index]
        assert payment_statuses(service_settings, order_id) == ["approved"]
        assert outbox_types(service_settings, order_id) == ["payment.approved", "order.paid"]

    async def test_charge_held_for_review_answers_202(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        simulator.add_fault("held_for_review")

        response = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))

        assert response.status_code == 202
        assert response.json()["status"] == "held_for_review"
        assert outbox_types(service_settings, order_id) == ["payment.held_for_review"]

    async def test_stall_after_commit_answers_202_unknown_and_a_retry_does_not_charge_again(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        settings = with_gateway(service_settings, read_timeout_s=0.3)
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        simulator.add_fault("stall_after_commit", stall_s=5)

        async with app_client(create_app(settings)) as client:
            first = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="a"))
            retry = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="b"))

        assert first.status_code == 202
        assert first.json()["status"] == "unknown"
        assert retry.status_code == 409
        assert retry.json()["code"] == "payment_in_progress"
        assert len(simulator.transactions(invoice_number=order_id)) == 1
        assert outbox_types(settings, order_id) == []  # the reconciler publishes once it knows

    async def test_declined_card_answers_402_and_frees_the_order_for_another_card(
        self, api_client: httpx.AsyncClient, shop: Shop, service_settings: Settings
    ) -> None:
        customer = str(shop.db.create_customer(address=_address(DECLINE_ZIP))["id"])
        order_id = str(shop.order(customer)["id"])

        declined = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))

        assert declined.status_code == 402
        assert declined.headers["content-type"] == "application/problem+json"
        problem = declined.json()
        assert problem["code"] == "payment_declined"
        assert problem["reason_code"] == "2"
        assert problem["detail"].startswith("The card was declined")
        assert problem["payment"]["status"] == "declined"
        assert outbox_types(service_settings, order_id) == ["payment.declined"]
        assert shop.db.get_order(order_id)["payment_status"] == "unpaid"  # type: ignore[index]

        another = await api_client.post(
            "/payments/pay", json=card_body(order_id, number=MASTERCARD), headers=shop.auth(customer)
        )
        assert another.status_code == 402  # still the declining ZIP, but a new attempt was allowed
        assert payment_statuses(service_settings, order_id) == ["declined", "declined"]

    async def test_a_double_click_with_a_declined_card_is_declined_twice_never_pending(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        customer = str(shop.db.create_customer(address=_address(DECLINE_ZIP))["id"])
        order_id = str(shop.order(customer)["id"])

        first = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="c1"))
        # The same card again within the duplicate window: the gateway answers reason 11, naming the decline.
        second = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="c2"))

        assert (first.status_code, second.status_code) == (402, 402)
        assert second.json()["code"] == "payment_declined"
        assert second.json()["reason_code"] == "11"
        assert second.json()["payment"]["status"] == "declined"
        assert payment_statuses(service_settings, order_id) == ["declined", "declined"]
        assert outbox_types(service_settings, order_id) == ["payment.declined", "payment.declined"]
        assert [t["status"] for t in simulator.transactions(invoice_number=order_id)] == ["declined"]
        assert shop.db.get_order(order_id)["payment_status"] == "unpaid"  # type: ignore[index]

    async def test_gateway_error_answers_502_and_records_the_attempt_failed(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer, price="5.00", quantity=1)["id"])

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, number=LEGACY_ERROR_CARD), headers=shop.auth(customer)
        )

        assert response.status_code == 502
        assert response.json()["code"] == "gateway_error"
        assert response.json()["payment"]["status"] == "failed"
        assert payment_statuses(service_settings, order_id) == ["failed"]
        assert [t for t in simulator.transactions(invoice_number=order_id) if t["status"] != "declined"] == []

    async def test_rejected_gateway_credentials_answer_503_with_retry_after(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        settings = with_gateway(service_settings, transaction_key=SecretStr("wrongKey00000000"))
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        async with app_client(create_app(settings)) as client:
            response = await client.post(
                "/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="k")
            )
            retry = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="k"))

        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["code"] == "gateway_configuration_error"
        assert retry.status_code == 503  # the key was released: the retry was processed again
        assert payment_statuses(settings, order_id) == ["failed", "failed"]
        assert simulator.transactions(invoice_number=order_id) == []

    async def test_unreachable_gateway_answers_503_and_charges_nothing(
        self, service_settings: Settings, shop: Shop
    ) -> None:
        closed = bind_free_socket()
        port = closed.getsockname()[1]
        closed.close()
        settings = with_gateway(service_settings, endpoint=f"http://127.0.0.1:{port}/xml/v1/request.api")
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        async with app_client(create_app(settings)) as client:
            response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))

        assert response.status_code == 503
        assert response.json()["code"] == "gateway_unavailable"
        assert "retry-after" in response.headers
        assert payment_statuses(settings, order_id) == ["failed"]

    async def test_missing_token_answers_401(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post("/payments/pay", json=card_body(order_id))

        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthenticated"

    async def test_missing_order_answers_404(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()

        response = await api_client.post("/payments/pay", json=card_body("999999"), headers=shop.auth(customer))

        assert response.status_code == 404
        assert response.json()["code"] == "order_not_found"

    async def test_order_of_another_customer_answers_404_and_is_not_charged(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        owner, intruder = shop.customer(), shop.customer()
        order_id = str(shop.order(owner)["id"])

        response = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(intruder))

        assert response.status_code == 404
        assert response.json()["code"] == "order_not_found"
        assert simulator.transactions(invoice_number=order_id) == []

    async def test_paid_order_answers_409(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        paid = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
        assert paid.status_code == 201

        again = await api_client.post(
            "/payments/pay", json=card_body(order_id, number=MASTERCARD), headers=shop.auth(customer)
        )

        assert again.status_code == 409
        assert again.json()["code"] == "order_not_payable"

    async def test_cancelled_order_answers_409(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        with shop.db.client() as db:
            db.post(f"/orders/{order_id}/cancel").raise_for_status()

        response = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))

        assert response.status_code == 409
        assert response.json()["code"] == "order_not_payable"

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"number": "4111111111111112"}, "invalid_card"),
            ({"expiration": "2020-01"}, "invalid_card"),
            ({"cvv": "12a"}, "invalid_card"),
        ],
    )
    async def test_invalid_card_answers_422(
        self, api_client: httpx.AsyncClient, shop: Shop, change: dict[str, str], code: str
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        body = card_body(order_id)
        body["payment"]["card"].update(change)

        response = await api_client.post("/payments/pay", json=body, headers=shop.auth(customer))

        assert response.status_code == 422
        assert response.json()["code"] == code

    async def test_client_amount_below_the_total_answers_422_and_is_not_charged(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, amount="0.01"), headers=shop.auth(customer)
        )

        assert response.status_code == 422
        assert response.json()["code"] == "amount_mismatch"
        assert simulator.transactions(invoice_number=order_id) == []

    async def test_client_customer_id_of_someone_else_answers_422(
        self, api_client: httpx.AsyncClient, shop: Shop
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, customer_id="someone-else"), headers=shop.auth(customer)
        )

        assert response.status_code == 422
        assert response.json()["code"] == "customer_mismatch"

    async def test_unknown_body_field_answers_422_without_echoing_values(
        self, api_client: httpx.AsyncClient, shop: Shop
    ) -> None:
        customer = shop.customer()
        body = card_body("1", colour="blue")

        response = await api_client.post("/payments/pay", json=body, headers=shop.auth(customer))

        assert response.status_code == 422
        assert response.json()["code"] == "invalid_request"
        assert VISA not in response.text

    async def test_unreachable_db_service_before_charging_answers_503_and_charges_nothing(
        self, tmp_path: Path, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        # A fresh db-service numbers its orders from 1 again: compare the whole ledger, not one invoice.
        charges_before = len(simulator.transactions())
        with run_db_service(tmp_path / "down") as down:
            customer = str(down.create_customer()["id"])
            product = down.create_product("Mug", "19.99")
            order_id = str(down.create_order(customer, [(str(product["id"]), 3)])["id"])
            settings = _settings_for(tmp_path, simulator, down)
            down.stop()
            async with app_client(create_app(settings)) as client:
                response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))

        assert response.status_code == 503
        assert response.json()["code"] == "db_service_unavailable"
        assert response.headers["retry-after"] == "5"
        assert len(simulator.transactions()) == charges_before

    async def test_failing_order_update_after_approval_still_answers_201(
        self, tmp_path: Path, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        with run_db_service(tmp_path / "flaky") as flaky:
            customer = str(flaky.create_customer()["id"])
            product = flaky.create_product("Mug", "19.99")
            order_id = str(flaky.create_order(customer, [(str(product["id"]), 3)])["id"])
            settings = _settings_for(tmp_path, simulator, flaky)
            simulator.add_fault("latency", latency_ms=1500)
            async with app_client(create_app(settings)) as client:
                paying = asyncio.create_task(
                    client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
                )
                await wait_for_attempt(settings, order_id)
                await asyncio.to_thread(flaky.stop)  # down while the gateway is still answering
                response = await paying

        assert response.status_code == 201
        assert response.json()["status"] == "approved"
        assert payment_statuses(settings, order_id) == ["approved"]
        assert outbox_types(settings, order_id) == ["payment.approved", "order.paid"]


def _address(zip_code: str) -> dict[str, str]:
    return {"line1": "1 Test Street", "city": "Indianapolis", "state": "IN", "zip": zip_code, "country": "US"}


def _settings_for(tmp_path: Path, simulator: SimulatorHandle, db: DbServiceHandle) -> Settings:
    return build_settings(tmp_path, simulator, db)


class TestPayRequestShapes:
    async def test_flat_body_of_the_original_service_is_accepted(
        self, api_client: httpx.AsyncClient, shop: Shop
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        body = {
            "order_id": int(order_id),
            "customer_id": customer,
            "amount": "59.97",
            "card_number": VISA,
            "expiration_date": "12/31",
            "card_code": "123",
        }

        response = await api_client.post("/payments/pay", json=body, headers=shop.auth(customer))

        assert response.status_code == 201

    async def test_opaque_data_from_accept_js_is_charged(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        nonce = simulator.nonce(MASTERCARD, "2031-12", "123")
        body = {
            "order_id": order_id,
            "payment": {"opaque_data": {"descriptor": nonce["dataDescriptor"], "value": nonce["dataValue"]}},
        }

        response = await api_client.post("/payments/pay", json=body, headers=shop.auth(customer))

        assert response.status_code == 201
        assert response.json()["gateway"]["account_number"] == "XXXX0015"

    async def test_raw_card_is_refused_when_switched_off(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        api = service_settings.api.model_copy(update={"allow_raw_card": False})
        settings = service_settings.model_copy(update={"api": api})
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        async with app_client(create_app(settings)) as client:
            response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))

        assert response.status_code == 422
        assert response.json()["code"] == "raw_card_input_disabled"
        assert simulator.transactions(invoice_number=order_id) == []


class TestIdempotency:
    async def test_replay_with_the_same_key_answers_the_same_body_without_a_second_charge(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = shop.auth(customer, key="order-checkout-1")

        first = await api_client.post("/payments/pay", json=card_body(order_id), headers=headers)
        replay = await api_client.post("/payments/pay", json=card_body(order_id), headers=headers)

        assert first.status_code == replay.status_code == 201
        assert replay.content == first.content
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.headers["location"] == first.headers["location"]
        assert "idempotent-replayed" not in first.headers
        assert len(simulator.transactions(invoice_number=order_id)) == 1

    async def test_same_key_with_a_different_body_answers_422(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = shop.auth(customer, key="k-1")
        first = await api_client.post("/payments/pay", json=card_body(order_id), headers=headers)
        assert first.status_code == 201

        other = await api_client.post("/payments/pay", json=card_body(order_id, number=MASTERCARD), headers=headers)

        assert other.status_code == 422
        assert other.json()["code"] == "idempotency_key_reused"

    async def test_key_still_in_flight_answers_409(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = shop.auth(customer, key="slow")
        simulator.add_fault("latency", latency_ms=500)

        first = asyncio.create_task(api_client.post("/payments/pay", json=card_body(order_id), headers=headers))
        await wait_for_attempt(service_settings, order_id)
        second = await api_client.post("/payments/pay", json=card_body(order_id), headers=headers)

        assert second.status_code == 409
        assert second.json()["code"] == "idempotency_key_in_flight"
        assert (await first).status_code == 201

    async def test_keys_are_scoped_to_their_customer(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        alice, bob = shop.customer(), shop.customer()
        alice_order, bob_order = str(shop.order(alice)["id"]), str(shop.order(bob)["id"])

        first = await api_client.post(
            "/payments/pay", json=card_body(alice_order), headers=shop.auth(alice, key="same")
        )
        second = await api_client.post("/payments/pay", json=card_body(bob_order), headers=shop.auth(bob, key="same"))

        assert first.status_code == second.status_code == 201
        assert first.json()["id"] != second.json()["id"]


class TestConcurrentPayments:
    async def test_twenty_requests_with_one_key_charge_once_and_the_others_wait_or_replay(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = shop.auth(customer, key="one-key")

        responses = await asyncio.gather(
            *(api_client.post("/payments/pay", json=card_body(order_id), headers=headers) for _ in range(20))
        )

        # Each request either claimed the key (one), found it in flight (409), or replayed the stored answer.
        claimed = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
        others = [r for r in responses if r not in claimed]
        assert len(claimed) == 1
        for response in others:
            if response.status_code == 409:
                assert response.json()["code"] == "idempotency_key_in_flight"
            else:
                assert (response.status_code, response.content) == (201, claimed[0].content)
        assert len(simulator.transactions(invoice_number=order_id)) == 1

    async def test_fifty_requests_with_different_keys_charge_the_order_exactly_once(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        responses = await asyncio.gather(
            *(
                api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key=f"k{n}"))
                for n in range(50)
            )
        )

        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: 49}
        assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
            "payment_in_progress",
            "order_not_payable",
        }
        assert len(simulator.transactions(invoice_number=order_id)) == 1


class TestCardDataStaysOut:
    @pytest.fixture
    def captured_logs(self) -> Iterator[Any]:
        import io

        from payment_service.logging import configure_logging
        from payment_service.settings import LogSettings

        buffer = io.StringIO()
        configure_logging(LogSettings(level="DEBUG"), stream=buffer)
        yield buffer
        configure_logging(LogSettings(level="WARNING"))

    async def test_no_card_number_appears_in_logs_or_stored_rows(
        self, api_client: httpx.AsyncClient, shop: Shop, service_settings: Settings, captured_logs: Any
    ) -> None:
        customer = shop.customer()
        approved_order = str(shop.order(customer)["id"])
        declined_customer = str(shop.db.create_customer(address=_address(DECLINE_ZIP))["id"])
        declined_order = str(shop.order(declined_customer)["id"])

        approved = await api_client.post(
            "/payments/pay", json=card_body(approved_order), headers=shop.auth(customer, key="a")
        )
        declined = await api_client.post(
            "/payments/pay", json=card_body(declined_order, number=MASTERCARD), headers=shop.auth(declined_customer)
        )
        invalid = await api_client.post(
            "/payments/pay", json=card_body(approved_order, number="4111111111111112"), headers=shop.auth(customer)
        )

        assert (approved.status_code, declined.status_code, invalid.status_code) == (201, 402, 422)
        logs = captured_logs.getvalue()
        assert "payment.recorded" in logs
        stored = stored_bytes(service_settings)
        for number in (VISA, MASTERCARD, "4111111111111112"):
            assert number not in logs
            assert number.encode() not in stored
            assert number not in approved.text + declined.text + invalid.text
        assert b"2031-12" not in stored
