import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.reference_db.factories import payment_body
from tests.support.databases import execute_sql, on_postgres
from tests.support.db_service import DbServiceHandle


@pytest.fixture
def order(db_service: DbServiceHandle) -> dict[str, Any]:
    customer = db_service.create_customer()
    mug = db_service.create_product("Mug", "19.99")
    return db_service.create_order(customer["id"], [(mug["id"], 3)])


def put(client: httpx.Client, payment_id: str, body: dict[str, Any]) -> httpx.Response:
    return client.put(f"/payments/{payment_id}", json=body)


def refuse_paid_orders(db_service: DbServiceHandle, *, order_id: int | None = None) -> None:
    """Make the database itself refuse to mark an order (any, or `order_id`) paid, with a trigger."""
    only = "" if order_id is None else f" AND NEW.id = {int(order_id)}"
    if on_postgres():
        execute_sql(
            db_service.settings.database_url,
            "CREATE FUNCTION refuse_paid() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by test'; END $$",
            "CREATE TRIGGER refuse_paid BEFORE UPDATE OF status ON orders FOR EACH ROW "
            f"WHEN (NEW.status = 'paid'{only}) EXECUTE FUNCTION refuse_paid()",
        )
        return
    execute_sql(
        db_service.settings.database_url,
        "CREATE TRIGGER refuse_paid BEFORE UPDATE OF status ON orders "
        f"WHEN NEW.status = 'paid'{only} BEGIN SELECT RAISE(ABORT, 'refused by test'); END",
    )


class TestPutPayment:
    def test_a_new_payment_is_created_and_reads_back(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        body = payment_body(order["id"], order["customer_id"], status="declined")
        response = put(client, "pay_01JABC", body)
        assert response.status_code == 201
        assert response.headers["location"] == "/payments/pay_01JABC"
        record = response.json()
        assert record == {
            "id": "pay_01JABC",
            "order_id": order["id"],
            "customer_id": order["customer_id"],
            "status": "declined",
            "amount": "59.97",
            "currency": "USD",
            "gateway": body["gateway"],
            "created_at": "2025-01-02T03:04:05.123456Z",
            "updated_at": "2025-01-02T03:04:06Z",
            "version": 1,
            "refunded_amount": None,
        }
        assert db_service.get_payment("pay_01JABC") == record
        assert db_service.list_payments(order["id"]) == [record]

    def test_an_approved_payment_marks_its_order_paid(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        assert put(client, "pay_A", payment_body(order["id"], order["customer_id"])).status_code == 201
        paid = db_service.get_order(order["id"])
        assert paid is not None
        assert (paid["status"], paid["payment_status"], paid["payment_id"]) == ("paid", "approved", "pay_A")

    def test_refunds_record_the_refunded_amount_and_move_the_paid_order_s_payment_status_forward(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        ids = (order["id"], order["customer_id"])
        put(client, "pay_R", payment_body(*ids, status="approved", version=2))
        partial = put(
            client, "pay_R", payment_body(*ids, status="partially_refunded", refunded_amount="20.00", version=3)
        )
        middle = db_service.get_order(order["id"])
        put(client, "pay_R", payment_body(*ids, status="refunded", refunded_amount="59.97", version=4))
        stale = put(
            client, "pay_R", payment_body(*ids, status="partially_refunded", refunded_amount="20.00", version=3)
        )

        assert partial.status_code == 200
        assert partial.json()["refunded_amount"] == "20.00"
        assert middle is not None
        assert (middle["status"], middle["payment_status"]) == ("paid", "partially_refunded")
        assert stale.json()["refunded_amount"] == "59.97"
        stored = db_service.get_payment("pay_R")
        assert stored is not None
        assert (stored["status"], stored["refunded_amount"]) == ("refunded", "59.97")
        final = db_service.get_order(order["id"])
        assert final is not None
        assert (final["status"], final["payment_status"]) == ("paid", "refunded")

    def test_the_order_follows_the_payment_through_its_versions(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        ids = (order["id"], order["customer_id"])
        put(client, "pay_A", payment_body(*ids, status="processing", version=1))
        assert db_service.get_order(order["id"]) == order | {
            "payment_status": "processing",
            "payment_id": "pay_A",
            "updated_at": db_service.get_order(order["id"])["updated_at"],  # type: ignore[index]
        }
        put(client, "pay_A", payment_body(*ids, status="held_for_review", version=2))
        assert db_service.get_order(order["id"])["payment_status"] == "held_for_review"  # type: ignore[index]
        put(client, "pay_A", payment_body(*ids, status="approved", version=3))
        put(client, "pay_A", payment_body(*ids, status="refunded", version=4))
        final = db_service.get_order(order["id"])
        assert final is not None
        assert (final["status"], final["payment_status"]) == ("paid", "refunded")

    def test_the_same_version_twice_leaves_one_unchanged_row(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        body = payment_body(order["id"], order["customer_id"], version=5)
        first = put(client, "pay_A", body)
        again = put(client, "pay_A", body | {"status": "declined"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        assert db_service.list_payments(order["id"]) == [first.json()]

    def test_an_older_version_after_a_newer_one_does_not_regress(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        ids = (order["id"], order["customer_id"])
        put(client, "pay_A", payment_body(*ids, status="approved", version=3))
        stale = put(client, "pay_A", payment_body(*ids, status="processing", version=2))
        assert stale.status_code == 200
        assert (stale.json()["status"], stale.json()["version"]) == ("approved", 3)
        assert db_service.get_payment("pay_A")["status"] == "approved"  # type: ignore[index]
        assert db_service.get_order(order["id"])["payment_status"] == "approved"  # type: ignore[index]

    def test_a_newer_version_updates_with_200(self, client: httpx.Client, order: dict[str, Any]) -> None:
        ids = (order["id"], order["customer_id"])
        put(client, "pay_A", payment_body(*ids, status="unknown", version=1))
        response = put(client, "pay_A", payment_body(*ids, status="failed", version=2))
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["version"]) == ("failed", 2)

    def test_a_second_approval_is_recorded_but_the_order_keeps_its_first_payment(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        ids = (order["id"], order["customer_id"])
        put(client, "pay_A", payment_body(*ids))
        response = put(client, "pay_B", payment_body(*ids, created_at="2025-01-03T00:00:00Z"))
        assert response.status_code == 201
        assert db_service.get_order(order["id"])["payment_id"] == "pay_A"  # type: ignore[index]
        assert [p["id"] for p in db_service.list_payments(order["id"])] == ["pay_A", "pay_B"]

    def test_an_approval_for_a_cancelled_order_is_recorded_and_the_order_stays_cancelled(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        client.post(f"/orders/{order['id']}/cancel")
        assert put(client, "pay_A", payment_body(order["id"], order["customer_id"])).status_code == 201
        assert db_service.get_order(order["id"])["status"] == "cancelled"  # type: ignore[index]

    def test_a_paid_order_is_not_regressed_by_another_payments_decline(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        ids = (order["id"], order["customer_id"])
        put(client, "pay_A", payment_body(*ids))
        put(client, "pay_B", payment_body(*ids, status="declined", created_at="2025-01-03T00:00:00Z"))
        after = db_service.get_order(order["id"])
        assert after is not None
        assert (after["status"], after["payment_status"], after["payment_id"]) == ("paid", "approved", "pay_A")

    def test_an_older_attempt_does_not_replace_a_newer_one_on_the_order(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        ids = (order["id"], order["customer_id"])
        put(client, "pay_new", payment_body(*ids, status="processing", created_at="2025-01-03T00:00:00Z"))
        put(client, "pay_old", payment_body(*ids, status="declined", created_at="2025-01-02T00:00:00Z"))
        assert db_service.get_order(order["id"])["payment_id"] == "pay_new"  # type: ignore[index]

    def test_a_payment_for_an_unknown_order_is_a_422_with_a_clear_code(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        response = put(client, "pay_A", payment_body("999999", order["customer_id"]))
        assert response.status_code == 422
        assert response.json()["code"] == "unknown_order"
        assert db_service.get_payment("pay_A") is None

    def test_a_payment_whose_customer_does_not_own_the_order_is_a_422(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        other = db_service.create_customer()
        response = put(client, "pay_A", payment_body(order["id"], other["id"]))
        assert (response.status_code, response.json()["code"]) == (422, "customer_mismatch")

    def test_a_payment_id_cannot_move_to_another_order(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        second = db_service.create_order(order["customer_id"], [(order["items"][0]["product_id"], 1)])
        put(client, "pay_A", payment_body(order["id"], order["customer_id"], status="declined"))
        response = put(client, "pay_A", payment_body(second["id"], order["customer_id"], version=2))
        assert (response.status_code, response.json()["code"]) == (422, "payment_order_mismatch")

    @pytest.mark.parametrize(
        "overrides",
        [
            {"amount": 59.97},
            {"amount": "59.975"},
            {"status": "paid"},
            {"version": "2"},
            {"created_at": "2025-01-02T03:04:05"},
            {"gateway": {"account_number": "4111111111111111"}},
            {"id": "pay_other"},
        ],
    )
    def test_bad_bodies_are_422_problems_that_do_not_echo_the_input(
        self, client: httpx.Client, order: dict[str, Any], overrides: dict[str, Any]
    ) -> None:
        response = put(client, "pay_A", payment_body(order["id"], order["customer_id"]) | overrides)
        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")
        assert "4111111111111111" not in response.text

    @pytest.mark.parametrize(
        ("currency", "amount", "refunded_amount", "stored"),
        [
            ("KWD", "1.24", "0.617", ("1.240", "0.617")),
            ("JPY", "5000.00", "1999", ("5000", "1999")),
            ("USD", "59.9", "0.5", ("59.90", "0.50")),
        ],
    )
    def test_amounts_are_kept_exactly_in_the_currency_s_minor_unit(
        self,
        client: httpx.Client,
        order: dict[str, Any],
        currency: str,
        amount: str,
        refunded_amount: str,
        stored: tuple[str, str],
    ) -> None:
        body = payment_body(order["id"], order["customer_id"], status="partially_refunded", currency=currency)
        response = put(client, "pay_minor", body | {"amount": amount, "refunded_amount": refunded_amount})
        read = client.get("/payments/pay_minor").json()

        assert response.status_code == 201, response.text
        assert (response.json()["amount"], response.json()["refunded_amount"]) == stored
        assert (read["amount"], read["refunded_amount"], read["currency"]) == (*stored, currency)

    @pytest.mark.parametrize(
        ("currency", "field", "amount"),
        [
            ("JPY", "amount", "5000.50"),
            ("JPY", "refunded_amount", "0.5"),
            ("KWD", "refunded_amount", "0.6175"),
            ("USD", "amount", "59.975"),
        ],
    )
    def test_more_places_than_the_currency_has_are_a_422_and_record_nothing(
        self,
        db_service: DbServiceHandle,
        client: httpx.Client,
        order: dict[str, Any],
        currency: str,
        field: str,
        amount: str,
    ) -> None:
        body = payment_body(order["id"], order["customer_id"], currency=currency, amount="1") | {field: amount}
        response = put(client, "pay_precise", body)

        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")
        assert response.headers["content-type"] == "application/problem+json"
        assert db_service.get_payment("pay_precise") is None

    def test_a_jpy_order_with_sen_of_tax_is_a_422(self, client: httpx.Client, order: dict[str, Any]) -> None:
        body = {"customer_id": order["customer_id"], "currency": "JPY", "tax_amount": "0.50"}
        response = client.post(
            "/orders", json=body | {"items": [{"product_id": order["items"][0]["product_id"], "quantity": 1}]}
        )
        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")

    def test_a_bad_payment_id_in_the_path_is_a_422(self, client: httpx.Client, order: dict[str, Any]) -> None:
        response = put(client, "pay%20A", payment_body(order["id"], order["customer_id"]))
        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")

    def test_payment_and_order_change_in_one_transaction(
        self, db_service: DbServiceHandle, client: httpx.Client, order: dict[str, Any]
    ) -> None:
        # Make the order update fail inside the database: the payment insert must roll back with it.
        refuse_paid_orders(db_service)
        response = put(client, "pay_A", payment_body(order["id"], order["customer_id"]))
        assert (response.status_code, response.json()["code"]) == (500, "internal_error")
        assert db_service.get_payment("pay_A") is None
        assert db_service.get_order(order["id"])["status"] == "pending"  # type: ignore[index]


class TestReadPayments:
    def test_an_unknown_payment_is_a_404(self, client: httpx.Client) -> None:
        for payment_id in ("pay_missing", "bad%20id"):
            response = client.get(f"/payments/{payment_id}")
            assert (response.status_code, response.json()["code"]) == (404, "payment_not_found")

    def test_listing_an_order_without_payments_is_empty(self, client: httpx.Client, order: dict[str, Any]) -> None:
        assert client.get("/payments", params={"order_id": order["id"]}).json() == []
        assert client.get("/payments", params={"order_id": "999999"}).json() == []

    def test_listing_needs_a_valid_order_id(self, client: httpx.Client) -> None:
        assert client.get("/payments").status_code == 422
        assert client.get("/payments", params={"order_id": "x"}).json()["code"] == "validation_failed"


class TestConcurrentPuts:
    async def test_concurrent_puts_of_one_payment_end_with_the_highest_version(
        self, db_service: DbServiceHandle, order: dict[str, Any]
    ) -> None:
        ids = (order["id"], order["customer_id"])
        versions = [(n * 37) % 50 + 1 for n in range(50)]  # 1..50, shuffled
        assert sorted(versions) == list(range(1, 51))
        async with httpx.AsyncClient(base_url=db_service.base_url, timeout=30) as http, asyncio.timeout(30):
            responses = await asyncio.gather(
                *(
                    http.put(
                        "/payments/pay_race",
                        json=payment_body(*ids, version=v, status="approved" if v == 50 else "processing"),
                    )
                    for v in versions
                )
            )
        codes = [response.status_code for response in responses]
        assert codes.count(201) == 1
        assert codes.count(200) == 49
        stored = db_service.list_payments(order["id"])
        assert [(p["id"], p["version"], p["status"]) for p in stored] == [("pay_race", 50, "approved")]
        assert db_service.get_order(order["id"])["status"] == "paid"  # type: ignore[index]

    async def test_concurrent_puts_of_many_payments_are_all_recorded(
        self, db_service: DbServiceHandle, order: dict[str, Any]
    ) -> None:
        ids = (order["id"], order["customer_id"])
        async with httpx.AsyncClient(base_url=db_service.base_url, timeout=30) as http, asyncio.timeout(30):
            responses = await asyncio.gather(
                *(http.put(f"/payments/pay_{n}", json=payment_body(*ids, status="declined")) for n in range(40))
            )
        assert {response.status_code for response in responses} == {201}
        assert len(db_service.list_payments(order["id"])) == 40


class TestBatchedWrites:
    async def test_a_failing_write_among_concurrent_ones_rolls_back_alone(
        self, db_service: DbServiceHandle, order: dict[str, Any]
    ) -> None:
        protected = db_service.create_order(order["customer_id"], [(order["items"][0]["product_id"], 1)])
        refuse_paid_orders(db_service, order_id=int(protected["id"]))
        failing = payment_body(protected["id"], order["customer_id"])
        others = [payment_body(order["id"], order["customer_id"], status="declined") for _ in range(30)]
        async with httpx.AsyncClient(base_url=db_service.base_url, timeout=30) as http, asyncio.timeout(30):
            puts = [http.put(f"/payments/pay_ok_{n}", json=body) for n, body in enumerate(others[:15])]
            puts.append(http.put("/payments/pay_refused", json=failing))
            puts += [http.put(f"/payments/pay_ok_{n}", json=body) for n, body in enumerate(others[15:], start=15)]
            responses = await asyncio.gather(*puts)
        assert [response.status_code for response in responses].count(500) == 1
        assert responses[15].status_code == 500
        assert db_service.get_payment("pay_refused") is None
        assert len(db_service.list_payments(order["id"])) == 30
        assert db_service.get_order(protected["id"])["status"] == "pending"  # type: ignore[index]
