import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support.db_service import DbServiceHandle


@pytest.fixture
def order(db_service: DbServiceHandle) -> dict[str, Any]:
    customer = db_service.create_customer()
    mug = db_service.create_product("Mug", "19.99")
    return db_service.create_order(customer["id"], [(mug["id"], 3)])


def patch(client: httpx.Client, order_id: str, status: str, payment_id: str) -> httpx.Response:
    return client.patch(f"/orders/{order_id}", json={"payment_status": status, "payment_id": payment_id})


class TestCreateOrder:
    def test_unit_prices_are_copied_from_the_products(self, db_service: DbServiceHandle, client: httpx.Client) -> None:
        customer = db_service.create_customer()
        mug = db_service.create_product("Mug", "19.99")
        pen = db_service.create_product("Pen", "2.50")
        created = db_service.create_order(
            customer["id"], [(mug["id"], 3), (pen["id"], 2)], shipping_amount="5.00", tax_amount="1.25"
        )
        assert created["customer_id"] == customer["id"]
        assert created["status"] == "pending"
        assert created["payment_status"] == "unpaid"
        assert created["payment_id"] is None
        assert created["currency"] == "USD"
        assert created["items"] == [
            {"product_id": mug["id"], "quantity": 3, "unit_price": "19.99"},
            {"product_id": pen["id"], "quantity": 2, "unit_price": "2.50"},
        ]
        assert (created["shipping_amount"], created["tax_amount"]) == ("5.00", "1.25")
        assert datetime.fromisoformat(created["created_at"]).utcoffset() is not None
        assert client.get(f"/orders/{created['id']}").json() == created

    def test_shipping_and_tax_are_null_when_absent(self, order: dict[str, Any]) -> None:
        assert order["shipping_amount"] is None
        assert order["tax_amount"] is None

    def test_an_explicit_order_id_is_kept(self, db_service: DbServiceHandle) -> None:
        customer = db_service.create_customer()
        mug = db_service.create_product("Mug", "19.99")
        assert db_service.create_order(customer["id"], [(mug["id"], 1)], id="1001")["id"] == "1001"
        # The next order without an id follows the explicit one.
        assert db_service.create_order(customer["id"], [(mug["id"], 1)])["id"] == "1002"

    def test_unknown_customer_or_product_is_a_422_problem(
        self, db_service: DbServiceHandle, client: httpx.Client
    ) -> None:
        customer = db_service.create_customer()
        mug = db_service.create_product("Mug", "19.99")
        response = client.post(
            "/orders", json={"customer_id": "999", "items": [{"product_id": mug["id"], "quantity": 1}]}
        )
        assert (response.status_code, response.json()["code"]) == (422, "unknown_customer")
        response = client.post(
            "/orders", json={"customer_id": customer["id"], "items": [{"product_id": "998", "quantity": 1}]}
        )
        assert (response.status_code, response.json()["code"]) == (422, "unknown_product")
        assert "998" in response.json()["detail"]

    def test_a_bad_quantity_or_currency_is_a_422_problem(
        self, db_service: DbServiceHandle, client: httpx.Client
    ) -> None:
        customer = db_service.create_customer()
        mug = db_service.create_product("Mug", "19.99")
        extras: list[dict[str, Any]] = [
            {"items": [{"product_id": mug["id"], "quantity": 0}]},
            {"currency": "dollars"},
            {"items": []},
        ]
        for extra in extras:
            body = {"customer_id": customer["id"], "items": [{"product_id": mug["id"], "quantity": 1}]} | extra
            response = client.post("/orders", json=body)
            assert (response.status_code, response.json()["code"]) == (422, "validation_failed"), extra


class TestGetOrder:
    @pytest.mark.parametrize("order_id", ["999999", "abc", "0"])
    def test_an_unknown_order_is_a_404_problem(self, client: httpx.Client, order_id: str) -> None:
        response = client.get(f"/orders/{order_id}")
        assert (response.status_code, response.json()["code"]) == (404, "order_not_found")


class TestPatchOrder:
    def test_approval_marks_the_order_paid_and_is_idempotent(self, client: httpx.Client, order: dict[str, Any]) -> None:
        first = patch(client, order["id"], "approved", "pay_A")
        assert first.status_code == 200
        assert (first.json()["status"], first.json()["payment_status"], first.json()["payment_id"]) == (
            "paid",
            "approved",
            "pay_A",
        )
        again = patch(client, order["id"], "approved", "pay_A")
        assert again.status_code == 200
        assert again.json() == first.json()

    def test_a_decline_records_the_status_and_the_order_stays_payable(
        self, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        body = patch(client, order["id"], "declined", "pay_A").json()
        assert (body["status"], body["payment_status"], body["payment_id"]) == ("pending", "declined", "pay_A")

    def test_a_paid_order_does_not_regress_to_a_decline(self, client: httpx.Client, order: dict[str, Any]) -> None:
        paid = patch(client, order["id"], "approved", "pay_A").json()
        response = patch(client, order["id"], "declined", "pay_A")
        assert response.status_code == 200
        assert response.json() == paid

    def test_a_refund_keeps_the_order_paid_and_records_the_refund(
        self, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        patch(client, order["id"], "approved", "pay_A")
        body = patch(client, order["id"], "refunded", "pay_A").json()
        assert (body["status"], body["payment_status"]) == ("paid", "refunded")

    def test_approval_by_a_second_payment_is_a_409(self, client: httpx.Client, order: dict[str, Any]) -> None:
        patch(client, order["id"], "approved", "pay_A")
        response = patch(client, order["id"], "approved", "pay_B")
        assert (response.status_code, response.json()["code"]) == (409, "order_already_paid")
        assert client.get(f"/orders/{order['id']}").json()["payment_id"] == "pay_A"

    async def test_concurrent_approvals_by_different_payments_let_exactly_one_win(
        self, db_service: DbServiceHandle, order: dict[str, Any]
    ) -> None:
        async with httpx.AsyncClient(base_url=db_service.base_url, timeout=30) as http, asyncio.timeout(30):
            responses = await asyncio.gather(
                *(
                    http.patch(f"/orders/{order['id']}", json={"payment_status": "approved", "payment_id": f"pay_{n}"})
                    for n in range(20)
                )
            )

        winners = [r.json()["payment_id"] for r in responses if r.status_code == 200]
        assert len(winners) == 1
        assert {(r.status_code, r.json()["code"]) for r in responses if r.status_code != 200} == {
            (409, "order_already_paid")
        }
        assert db_service.get_order(order["id"])["payment_id"] == winners[0]  # type: ignore[index]

    def test_approval_of_a_cancelled_order_is_a_409(self, client: httpx.Client, order: dict[str, Any]) -> None:
        assert client.post(f"/orders/{order['id']}/cancel").json()["status"] == "cancelled"
        response = patch(client, order["id"], "approved", "pay_A")
        assert (response.status_code, response.json()["code"]) == (409, "order_cancelled")
        assert client.get(f"/orders/{order['id']}").json()["status"] == "cancelled"

    def test_an_unknown_order_is_a_404(self, client: httpx.Client) -> None:
        response = patch(client, "999999", "approved", "pay_A")
        assert (response.status_code, response.json()["code"]) == (404, "order_not_found")

    @pytest.mark.parametrize(
        "body",
        [
            {"payment_status": "paid", "payment_id": "pay_A"},
            {"payment_status": "unpaid", "payment_id": "pay_A"},
            {"payment_status": "approved"},
            {"payment_status": "approved", "payment_id": "pay A/1"},
            {"payment_status": "approved", "payment_id": "pay_A", "status": "paid"},
        ],
    )
    def test_bad_values_are_a_422(self, client: httpx.Client, order: dict[str, Any], body: dict[str, str]) -> None:
        response = client.patch(f"/orders/{order['id']}", json=body)
        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")


class TestCancelOrder:
    def test_cancelling_is_idempotent(self, client: httpx.Client, order: dict[str, Any]) -> None:
        first = client.post(f"/orders/{order['id']}/cancel")
        second = client.post(f"/orders/{order['id']}/cancel")
        assert (first.status_code, second.status_code) == (200, 200)
        assert second.json()["status"] == "cancelled"

    def test_a_paid_order_cannot_be_cancelled(self, client: httpx.Client, order: dict[str, Any]) -> None:
        patch(client, order["id"], "approved", "pay_A")
        response = client.post(f"/orders/{order['id']}/cancel")
        assert (response.status_code, response.json()["code"]) == (409, "order_already_paid")
