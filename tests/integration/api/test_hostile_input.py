"""Hostile input at the edge: ids that would steer a db-service call, unbounded decimals, non-ASCII digits.

Each is refused with a 422 problem before anything is read, charged or written: the reference
db-service's request log and the simulator's ledger show nothing happened.
"""

import json

import httpx
import pytest

from tests.integration.api.test_pay import LEGACY_ERROR_CARD
from tests.integration.conftest import VISA, Shop, card_body
from tests.support.db_service import DbServiceHandle
from tests.support.simulator import SimulatorHandle

HOSTILE_IDS = ["../customers/{customer}", "{order}/cancel", "{order}?x=1", "{order}#frag", "..", "\ud800", "%31"]


class TestHostileIds:
    @pytest.mark.parametrize("template", HOSTILE_IDS)
    async def test_an_id_that_could_change_the_url_is_refused_before_any_call(
        self, api_client: httpx.AsyncClient, shop: Shop, db_service: DbServiceHandle, template: str
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        hostile = template.format(customer=customer, order=order_id)
        db_service.requests.clear()

        # json.dumps writes a lone surrogate as its `\\ud800` escape, as a hostile client would.
        response = await api_client.post(
            "/payments/pay",
            content=json.dumps(card_body(hostile)),
            headers={**shop.auth(customer), "Content-Type": "application/json"},
        )

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert db_service.requests == []
        assert shop.db.get_order(order_id)["payment_status"] == "unpaid"  # type: ignore[index]

    @pytest.mark.parametrize("hostile", ["..%2Fcustomers%2F42", "1001%3Fx%3D1", "%2E%2E"])
    async def test_reads_refuse_such_ids_too(
        self, api_client: httpx.AsyncClient, shop: Shop, db_service: DbServiceHandle, hostile: str
    ) -> None:
        headers = shop.auth(shop.customer())
        db_service.requests.clear()

        by_id = await api_client.get(f"/payments/{hostile}", headers=headers)
        by_order = await api_client.get("/payments", params={"order_id": hostile.replace("%2F", "/")}, headers=headers)

        assert by_id.status_code in (404, 422)  # an encoded `/` splits the path: no route, so 404
        assert by_order.status_code == 422
        assert db_service.requests == []


class TestBoundedDecimals:
    @pytest.mark.parametrize("amount", ["1E+1000000", "1E-1000000", "0.0000001", "1234567890123", 1e308])
    async def test_an_amount_out_of_bounds_is_refused_with_422(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, amount: str | float
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, amount=amount), headers=shop.auth(customer, key="big-amount")
        )

        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "amount"]
        assert simulator.transactions(invoice_number=order_id) == []


class TestAsciiDigits:
    @pytest.mark.parametrize(
        ("number", "cvv"),
        [
            ("٤١١١١١١١١١١١١١١١", "123"),  # Arabic-Indic digits of 4111 1111 1111 1111
            ("4111111111111111", "١٢٣"),
            ("\uff14" + "\uff11" * 15, "123"),  # full-width 4111…
        ],
    )
    async def test_card_digits_of_another_script_are_refused_and_never_sent(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, number: str, cvv: str
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, number=number, cvv=cvv), headers=shop.auth(customer)
        )

        assert response.status_code == 422
        assert response.json()["code"] == "invalid_card"
        assert simulator.transactions(invoice_number=order_id) == []


def opaque_body(order_id: str, value: str, *, descriptor: str = "COMMON.ACCEPT.INAPP.PAYMENT") -> dict[str, object]:
    return {"order_id": order_id, "payment": {"opaque_data": {"descriptor": descriptor, "value": value}}}


class TestCustomerCausedGatewayAnswers:
    """What the customer can cure with another card answers 402, never 502 (the gateway is not at fault)."""

    async def test_an_invalid_card_number_reason_6_answers_402_with_a_safe_message(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer, price="6.00", quantity=1)["id"])  # $6 on this card: reason 6

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, number=LEGACY_ERROR_CARD), headers=shop.auth(customer)
        )

        assert response.status_code == 402
        problem = response.json()
        assert (problem["code"], problem["reason_code"]) == ("payment_declined", "6")
        assert problem["detail"] == "The card number is invalid."
        assert problem["payment"]["status"] == "declined"

    async def test_garbage_opaque_data_answers_402(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post(
            "/payments/pay", json=opaque_body(order_id, "bm90LWEtbm9uY2U="), headers=shop.auth(customer)
        )

        assert response.status_code == 402
        assert (response.json()["code"], response.json()["reason_code"]) == ("payment_declined", "E00114")

    async def test_spent_opaque_data_answers_402_and_the_order_can_still_be_paid(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        first, second = str(shop.order(customer)["id"]), str(shop.order(customer)["id"])
        nonce = simulator.nonce(VISA, "2031-12", "123")["dataValue"]
        paid = await api_client.post("/payments/pay", json=opaque_body(first, nonce), headers=shop.auth(customer))

        spent = await api_client.post("/payments/pay", json=opaque_body(second, nonce), headers=shop.auth(customer))
        fresh = simulator.nonce(VISA, "2031-12", "123")["dataValue"]
        retried = await api_client.post("/payments/pay", json=opaque_body(second, fresh), headers=shop.auth(customer))

        assert paid.status_code == 201
        assert spent.status_code == 402
        assert spent.json()["reason_code"] == "E00114"
        assert "enter the card again" in spent.json()["detail"]
        assert retried.status_code == 201
