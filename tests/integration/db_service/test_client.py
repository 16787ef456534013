"""`DbServiceClient` against the real reference db-service over HTTP."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from payment_service.db_service.client import DbServiceClient, build_http_client
from payment_service.domain.errors import DbServiceError, DbServiceUnavailable, OrderNotFound
from payment_service.domain.events import GatewayDetails, PaymentRecorded
from payment_service.domain.payments import PaymentStatus
from payment_service.settings import DbServiceSettings
from tests.support.db_service import DbServiceHandle, run_db_service
from tests.support.servers import bind_free_socket, serve_app

TOKEN = "service-token-0123456789"


@pytest.fixture(scope="module")
def db_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbServiceHandle]:
    with run_db_service(tmp_path_factory.mktemp("db"), token=TOKEN) as handle:
        yield handle


def _settings(base_url: str, *, token: str | None = TOKEN) -> DbServiceSettings:
    return DbServiceSettings(
        base_url=base_url, token=SecretStr(token) if token else None, max_retries=2, backoff_ms=5, connect_timeout_s=1
    )


@pytest.fixture
async def client(db_service: DbServiceHandle) -> AsyncIterator[DbServiceClient]:
    settings = _settings(db_service.base_url)
    async with build_http_client(settings) as http:
        yield DbServiceClient(http, settings)


def _record(
    payment_id: str, order_id: str, customer_id: str, *, version: int, status: PaymentStatus
) -> PaymentRecorded:
    now = datetime.now(UTC)
    return PaymentRecorded(
        id=payment_id,
        order_id=order_id,
        customer_id=customer_id,
        status=status,
        amount="59.97",
        currency="USD",
        gateway=GatewayDetails(transaction_id="80000000001", account_number="XXXX1111", account_type="Visa"),
        created_at=now,
        updated_at=now,
        version=version,
    )


class TestDbServiceClient:
    async def test_fetches_an_order_with_its_lines(self, client: DbServiceClient, db_service: DbServiceHandle) -> None:
        customer = db_service.create_customer()
        product = db_service.create_product("Mug", "19.99")
        created = db_service.create_order(customer["id"], [(product["id"], 3)], shipping_amount="4.50")

        order = await client.fetch_order(str(created["id"]))

        assert order.customer_id == str(customer["id"])
        assert order.items[0].unit_price == Decimal("19.99")
        assert order.items[0].quantity == 3
        assert order.shipping_amount == Decimal("4.50")
        assert order.payment_status == "unpaid"

    async def test_missing_order_raises_order_not_found(self, client: DbServiceClient) -> None:
        with pytest.raises(OrderNotFound):
            await client.fetch_order("404404")

    async def test_fetches_customer_and_products(self, client: DbServiceClient, db_service: DbServiceHandle) -> None:
        customer = db_service.create_customer()
        mug = db_service.create_product("Mug", "19.99")
        pen = db_service.create_product("Pen", "1.50")

        fetched = await client.fetch_customer(str(customer["id"]))
        products = await client.fetch_products([str(mug["id"]), str(pen["id"]), "999999"])

        assert fetched.email == customer["email"]
        assert fetched.address.zip == customer["address"]["zip"]
        assert {p.name for p in products.values()} == {"Mug", "Pen"}

    async def test_updates_the_order_payment_status(self, client: DbServiceClient, db_service: DbServiceHandle) -> None:
        customer = db_service.create_customer()
        product = db_service.create_product("Mug", "19.99")
        order_id = str(db_service.create_order(customer["id"], [(product["id"], 1)])["id"])

        await client.update_order_payment(order_id, status="held_for_review", payment_id="pay_X")

        assert db_service.get_order(order_id)["payment_status"] == "held_for_review"  # type: ignore[index]

    async def test_put_payment_creates_then_ignores_a_stale_version(
        self, client: DbServiceClient, db_service: DbServiceHandle
    ) -> None:
        customer = db_service.create_customer()
        product = db_service.create_product("Mug", "19.99")
        order_id = str(db_service.create_order(customer["id"], [(product["id"], 3)])["id"])
        newer = _record("pay_PUT1", order_id, str(customer["id"]), version=2, status=PaymentStatus.APPROVED)
        older = _record("pay_PUT1", order_id, str(customer["id"]), version=1, status=PaymentStatus.PROCESSING)

        assert await client.put_payment(newer) is True
        assert await client.put_payment(older) is False
        fetched = await client.fetch_payment("pay_PUT1")

        assert fetched is not None
        assert (fetched.status, fetched.version) == (PaymentStatus.APPROVED, 2)
        assert await client.fetch_payment("pay_NONE") is None

    async def test_unreachable_db_service_raises_unavailable_after_retries(self) -> None:
        closed = bind_free_socket()
        port = closed.getsockname()[1]
        closed.close()
        settings = _settings(f"http://127.0.0.1:{port}")
        async with build_http_client(settings) as http:
            client = DbServiceClient(http, settings)
            with pytest.raises(DbServiceUnavailable):
                await client.fetch_order("1")
            with pytest.raises(DbServiceUnavailable):
                await client.check()

    async def test_missing_token_is_refused(self, db_service: DbServiceHandle) -> None:
        settings = _settings(db_service.base_url, token=None)
        async with build_http_client(settings) as http:
            client = DbServiceClient(http, settings)
            with pytest.raises(DbServiceError, match="401"):
                await client.fetch_customer("1")

    async def test_a_payment_refused_for_its_content_is_a_permanent_error(
        self, client: DbServiceClient, db_service: DbServiceHandle
    ) -> None:
        customer = db_service.create_customer()
        unknown_order = _record("pay_PUT2", "404404", str(customer["id"]), version=1, status=PaymentStatus.APPROVED)

        with pytest.raises(DbServiceError, match="422"):
            await client.put_payment(unknown_order)

    async def test_a_payment_refused_for_a_bad_token_is_retried_not_dropped(self, db_service: DbServiceHandle) -> None:
        # A rotated service token says nothing about the record: the consumer must retry, not dead-letter it.
        customer = db_service.create_customer()
        product = db_service.create_product("Mug", "19.99")
        order_id = str(db_service.create_order(customer["id"], [(product["id"], 1)])["id"])
        settings = _settings(db_service.base_url, token="rotated-token-0000000000")
        async with build_http_client(settings) as http:
            client = DbServiceClient(http, settings)
            with pytest.raises(DbServiceUnavailable, match="401"):
                await client.put_payment(
                    _record("pay_PUT3", order_id, str(customer["id"]), version=1, status=PaymentStatus.APPROVED)
                )
        assert db_service.get_payment("pay_PUT3") is None


class TestPutPaymentAnswers:
    """What a proxy in front of the db-service may answer instead of it: none of these recorded the payment."""

    @pytest.mark.parametrize("status", [202, 204, 307, 308])
    async def test_an_answer_other_than_200_or_201_is_retried_not_taken_as_recorded(self, status: int) -> None:
        async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            headers = [(b"location", b"/elsewhere")] if status >= 300 else []
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})

        with serve_app(proxy, lifespan="off") as base_url:
            settings = _settings(base_url)
            async with build_http_client(settings) as http:
                client = DbServiceClient(http, settings)
                with pytest.raises(DbServiceUnavailable, match=str(status)):
                    await client.put_payment(_record("pay_P1", "1", "1", version=1, status=PaymentStatus.APPROVED))


# Ids that would name another endpoint, add a query or fragment, or vanish, if put into a URL as sent.
HOSTILE_IDS = {
    "../customers/{customer}": "%2E%2E%2Fcustomers%2F{customer}",
    "{order}/cancel": "{order}%2Fcancel",
    "{order}?x=1": "{order}%3Fx%3D1",
    "{order}#frag": "{order}%23frag",
    "..": "%2E%2E",
    "\ud800": "%ED%A0%80",
}


def _hostile_case(db_service: DbServiceHandle, template: str) -> tuple[dict[str, Any], str, str]:
    """A fresh order, the hostile id `template` names for it, its encoded form; the request log cleared."""
    customer = db_service.create_customer()
    product = db_service.create_product("Mug", "19.99")
    order = db_service.create_order(customer["id"], [(product["id"], 1)])
    names = {"customer": customer["id"], "order": order["id"]}
    db_service.requests.clear()
    return order, template.format(**names), HOSTILE_IDS[template].format(**names)


class TestPathSegments:
    @pytest.mark.parametrize("template", HOSTILE_IDS)
    async def test_every_call_sends_the_id_as_one_encoded_segment(
        self, client: DbServiceClient, db_service: DbServiceHandle, template: str
    ) -> None:
        order, hostile, encoded = _hostile_case(db_service, template)

        with pytest.raises(OrderNotFound):
            await client.fetch_order(hostile)
        with pytest.raises(OrderNotFound):
            await client.update_order_payment(hostile, status="approved", payment_id="pay_1")
        with pytest.raises(DbServiceError):
            await client.fetch_customer(hostile)
        assert await client.fetch_payment(hostile) is None

        assert db_service.requests == [
            ("GET", f"/orders/{encoded}"),
            ("PATCH", f"/orders/{encoded}"),
            ("GET", f"/customers/{encoded}"),
            ("GET", f"/payments/{encoded}"),
        ]
        assert db_service.get_order(str(order["id"]))["payment_status"] == "unpaid"  # type: ignore[index]

    # Payment ids are minted here; a lone surrogate could not even travel in the JSON body.
    @pytest.mark.parametrize("template", [t for t in HOSTILE_IDS if t != "\ud800"])
    async def test_a_payment_record_goes_to_its_own_encoded_path(
        self, client: DbServiceClient, db_service: DbServiceHandle, template: str
    ) -> None:
        order, hostile, encoded = _hostile_case(db_service, template)

        with pytest.raises(DbServiceError):  # the path's id is not the body's: refused, nothing written
            await client.put_payment(
                _record(hostile, str(order["id"]), str(order["customer_id"]), version=1, status=PaymentStatus.APPROVED)
            )

        assert db_service.requests == [("PUT", f"/payments/{encoded}")]
        assert db_service.list_payments(str(order["id"])) == []
