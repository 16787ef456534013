"""The edge before any parsing or authentication: size limits, JSON nesting, no event-loop stall, headers.

Stalls are measured by the event loop itself: asyncio's debug mode reports every callback or task step
that held the loop longer than `slow_callback_duration`, so a request that parses for seconds (or even
a quarter of a second) in one step is seen, without timing anything from outside.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from payment_service.api.app import create_app
from payment_service.api.auth import mint_token
from payment_service.api.middleware import SECURITY_HEADERS
from tests.integration.conftest import Shop, app_client, build_settings, card_body
from tests.support.db_service import DbServiceHandle
from tests.support.simulator import SimulatorHandle

PAY = "/payments/pay"
JSON = {"Content-Type": "application/json"}
# Far above a few milliseconds of parsing, far below the seconds a 20 MB or deeply nested body used to
# hold the loop, and clear of what a loaded 2-core machine adds to one step of a request.
STALL_S = 0.25


@contextmanager
def loop_stalls(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The loop's own reports of steps longer than `STALL_S`, collected while the block runs."""
    loop = asyncio.get_running_loop()
    stalls: list[str] = []
    previous = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = STALL_S
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        try:
            yield stalls
        finally:
            loop.set_debug(previous[0])
            loop.slow_callback_duration = previous[1]
            stalls += [r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.getMessage()]


def deep_json(depth: int) -> bytes:
    return b'{"order_id": "1001", "payment": ' + b"[" * depth + b"]" * depth + b"}"


async def endless_array(sent: list[int], *, total_bytes: int) -> AsyncIterator[bytes]:
    chunk = b"0," * 4096
    yield b"["
    while sent[0] < total_bytes:
        sent[0] += len(chunk)
        yield chunk
    yield b"0]"


class TestSizeLimits:
    async def test_a_declared_oversized_body_is_refused_with_413_before_authentication(
        self, api_client: httpx.AsyncClient
    ) -> None:
        body = b"[" + b"0," * (40 * 1024) + b"0]"  # 80 KiB, over the default 64 KiB

        response = await api_client.post(PAY, content=body, headers=JSON)

        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "request_too_large"

    async def test_a_streamed_body_is_cut_off_at_the_limit_not_read_whole(
        self, api_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        sent = [0]
        with loop_stalls(caplog) as stalls:
            response = await api_client.post(PAY, content=endless_array(sent, total_bytes=20_000_000), headers=JSON)

        assert response.status_code == 413
        assert response.json()["code"] == "request_too_large"
        assert sent[0] < 100 * 1024  # the 20 MB were never asked for
        assert stalls == []

    async def test_oversized_headers_are_refused_with_431_even_with_a_valid_token(
        self, api_client: httpx.AsyncClient, shop: Shop
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = {**shop.auth(customer), "X-Padding": "x" * (32 * 1024)}

        response = await api_client.post(PAY, json=card_body(order_id), headers=headers)

        assert response.status_code == 431
        assert response.json()["code"] == "headers_too_large"
        assert shop.db.get_order(order_id)["payment_status"] == "unpaid"  # type: ignore[index]

    async def test_limits_are_settings(
        self, tmp_path: Path, simulator: SimulatorHandle, db_service: DbServiceHandle, shop: Shop
    ) -> None:
        settings = build_settings(tmp_path, simulator, db_service, max_body_bytes=1024, max_header_bytes=2048)
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = {"Authorization": f"Bearer {mint_token(settings.auth, customer_id=customer, roles=(), ttl_s=60)}"}

        async with app_client(create_app(settings)) as client:
            long_body = await client.post(PAY, json=card_body(order_id, note="z" * 1024), headers=headers)
            long_headers = await client.post(PAY, json=card_body(order_id), headers={**headers, "X-Pad": "y" * 2048})
            paid = await client.post(PAY, json=card_body(order_id), headers=headers)

        assert [long_body.status_code, long_headers.status_code, paid.status_code] == [413, 431, 201]


class TestJsonNesting:
    @pytest.mark.parametrize("depth", [250, 1_000, 30_000])
    async def test_deep_nesting_without_a_token_answers_422_without_stalling_the_loop(
        self, api_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, depth: int
    ) -> None:
        with loop_stalls(caplog) as stalls:
            deep = asyncio.create_task(api_client.post(PAY, content=deep_json(depth), headers=JSON))
            health = asyncio.create_task(api_client.get("/healthz"))
            response, healthz = await asyncio.gather(deep, health)

        assert response.status_code == 422
        assert response.json()["errors"][0]["type"] == "json_invalid"
        assert healthz.status_code == 200
        assert stalls == []

    async def test_a_body_that_is_not_utf8_answers_422_with_a_reason(self, api_client: httpx.AsyncClient) -> None:
        response = await api_client.post(PAY, content=b'{"order_id": "\xff\xfe"}', headers=JSON)

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["type"] == "json_invalid"


class TestSecurityHeaders:
    async def test_every_answer_carries_them_errors_included(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        answers = [
            await api_client.get("/healthz"),
            await api_client.get("/openapi.json"),
            await api_client.post(PAY, json=card_body(order_id), headers=shop.auth(customer)),  # 201
            await api_client.post(PAY, json=card_body(order_id)),  # 401
            await api_client.post(PAY, content=b"{", headers=JSON),  # 422
            await api_client.get("/payments/pay_NOPE", headers=shop.auth(customer)),  # 404
            await api_client.get("/nowhere"),  # 404 from routing
            await api_client.post(PAY, content=b"[" + b"0," * 40_000 + b"0]", headers=JSON),  # 413
        ]

        assert [a.status_code for a in answers] == [200, 200, 201, 401, 422, 404, 404, 413]
        for answer in answers:
            for name, value in SECURITY_HEADERS:
                assert answer.headers[name.decode()] == value.decode(), (answer.request.url, name)


class TestBodiesFastApiReads:
    """Routes whose body FastAPI decodes (the admin API) refuse the same bodies the same way."""

    @pytest.mark.parametrize(
        "body", [b'{"x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", b'{"limit": "\xff\xfe"}'], ids=["deep", "not-utf8"]
    )
    async def test_a_deep_or_undecodable_body_answers_422(
        self, api_client: httpx.AsyncClient, shop: Shop, caplog: pytest.LogCaptureFixture, body: bytes
    ) -> None:
        headers = {**shop.auth("ops", roles=("admin",)), **JSON}

        with loop_stalls(caplog) as stalls:
            response = await api_client.post("/admin/dlq/replay", content=body, headers=headers)

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["type"] == "json_invalid"
        assert stalls == []
