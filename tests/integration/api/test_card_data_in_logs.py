"""No card number or CVV reaches a log line, on any error path the edge can reach, in either log format.

One Amex test card and a four-digit card code (distinctive enough to search for) are pushed through
refusals (size, nesting, syntax, validation, ids, authentication), gateway faults, declines, an
unreachable db-service and a crash with a traceback, with logging at DEBUG in JSON and in console form.
"""

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from payment_service.api.app import create_app
from payment_service.logging import configure_logging
from payment_service.settings import LogSettings, Settings
from payment_service.store.database import create_engine
from tests.integration.conftest import Shop, app_client, build_settings
from tests.support.db_service import run_db_service
from tests.support.simulator import SimulatorHandle

AMEX = "378282246310005"
CVV = "8317"
EXPIRATION = "2031-12"
DECLINE_ZIP = "46282"  # the simulator declines charges billed to this ZIP
ADDRESS = {"line1": "1 Test Street", "city": "Indianapolis", "state": "IN", "country": "US"}
PAY = "/payments/pay"
JSON = {"Content-Type": "application/json"}
_CARD_SEARCH = re.compile(rf"(?<![0-9A-Za-z])({AMEX}|{CVV}|3782 8224 6310 005|3782-8224-6310-005)(?![0-9A-Za-z])")


def card(order_id: object, **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "payment": {"card": {"number": AMEX, "expiration": EXPIRATION, "cvv": CVV}}, **extra}


def flat(order_id: object, **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "card_number": AMEX, "expiration_date": EXPIRATION, "card_code": CVV, **extra}


@pytest.fixture(params=[True, False], ids=["json", "console"])
def log_output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(LogSettings(level="DEBUG", json=request.param), stream=stream)
    try:
        yield stream
    finally:
        configure_logging(LogSettings(level="WARNING"))


class TestCardDataInLogs:
    async def test_no_error_path_logs_a_card_number_or_cvv(
        self,
        log_output: io.StringIO,
        service_settings: Settings,
        shop: Shop,
        simulator: SimulatorHandle,
        tmp_path: Path,
    ) -> None:
        customer = shop.customer()
        auth = shop.auth(customer)
        orders = [str(shop.order(customer, price="15.00", quantity=1)["id"]) for _ in range(6)]
        answers: list[int] = []
        async with app_client(create_app(service_settings)) as client:
            refusals: list[dict[str, Any]] = [
                {"content": json.dumps(card(orders[0]))[:-7], "headers": {**auth, **JSON}},  # broken JSON
                # Card fields first, then deep nesting: a traceback's locals would show the body's start.
                {
                    "content": json.dumps(flat(1))[:-1].encode() + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                    "headers": JSON,
                },
                {"content": json.dumps([card(n) for n in range(2000)]), "headers": JSON},  # 413
                {"json": card(orders[0]), "headers": {**auth, "X-Card": AMEX * 1200}},  # 431
                {"json": card(orders[0])},  # no token
                {"json": card(f"../customers/{customer}"), "headers": auth},
                {"json": card(orders[0], amount="1E+1000000"), "headers": auth},
                {"json": {**card(orders[0]), **flat(orders[0])}, "headers": auth},  # both shapes
                {"json": card(orders[0], surprise=AMEX), "headers": auth},
                {"json": flat(orders[0], expiration_date="13/99"), "headers": auth},
                {"json": {**flat(orders[0]), "card_number": AMEX[:-1] + "9"}, "headers": auth},  # Luhn
            ]
            answers += [(await client.post(PAY, **request)).status_code for request in refusals]
            for order_id, fault in zip(orders[1:4], ["system_error", "server_busy", "reset_after_commit"], strict=True):
                simulator.add_fault(fault)
                answers.append((await client.post(PAY, json=flat(order_id), headers=auth)).status_code)
                simulator.clear_faults()
            declining = str(shop.db.create_customer(address={**ADDRESS, "zip": DECLINE_ZIP})["id"])
            declined = str(shop.order(declining)["id"])
            answers.append((await client.post(PAY, json=flat(declined), headers=shop.auth(declining))).status_code)
            answers.append((await client.post(PAY, json=flat(orders[4]), headers=auth)).status_code)  # approved
        answers.append(await self._pay_with_the_db_service_down(service_settings, shop, simulator, tmp_path))
        answers.append(await self._pay_into_a_broken_store(service_settings, shop, orders[5], auth))

        output = log_output.getvalue()
        assert _CARD_SEARCH.findall(output) == []
        assert 500 in answers  # the crash happened, and was logged with its traceback
        assert "Traceback" in output
        assert {401, 402, 413, 422, 431}.issubset(answers)

    @staticmethod
    async def _pay_with_the_db_service_down(
        settings: Settings, shop: Shop, simulator: SimulatorHandle, tmp_path: Path
    ) -> int:
        with run_db_service(tmp_path / "down") as down:
            settings = build_settings(tmp_path / "api", simulator, down)
            async with app_client(create_app(settings)) as client:
                down.stop()
                response = await client.post(PAY, json=flat("1001"), headers=shop.auth("42"))
        return response.status_code

    @staticmethod
    async def _pay_into_a_broken_store(settings: Settings, shop: Shop, order_id: str, auth: dict[str, str]) -> int:
        async with app_client(create_app(settings)) as client:
            # A table gone under the running service: its next write fails with an unexpected error.
            engine = create_engine(settings.store)  # SQLite or PostgreSQL, whichever the test store is
            try:
                async with engine.begin() as conn:
                    await conn.exec_driver_sql("DROP TABLE idempotency_keys")
            finally:
                await engine.dispose()
            response = await client.post(PAY, json=flat(order_id), headers={**auth, "Idempotency-Key": "crash"})
        return response.status_code
