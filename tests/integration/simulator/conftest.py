from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from authorize_net_simulator.app import API_PATH, create_app
from authorize_net_simulator.settings import DEFAULT_LOGIN_ID, DEFAULT_TRANSACTION_KEY, SimulatorSettings
from tests.support.simulator import ManualClock

AUTH = {"name": DEFAULT_LOGIN_ID, "transactionKey": DEFAULT_TRANSACTION_KEY}


class Gateway:
    """Posts API requests to an in-process simulator and decodes the BOM-prefixed answers."""

    def __init__(self, client: httpx.AsyncClient, clock: ManualClock) -> None:
        self.client = client
        self.clock = clock

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(
            API_PATH, content=orjson.dumps(request), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200
        assert response.content.startswith(b"\xef\xbb\xbf")
        decoded: dict[str, Any] = orjson.loads(response.content[3:])
        return decoded

    async def transact(self, transaction: dict[str, Any], *, ref_id: str = "r-1") -> dict[str, Any]:
        return await self.call(
            {
                "createTransactionRequest": {
                    "merchantAuthentication": AUTH,
                    "refId": ref_id,
                    "transactionRequest": transaction,
                }
            }
        )

    async def ledger(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = (await self.client.get("/_sim/transactions")).json()["transactions"]
        return entries


def make_charge(
    *,
    transaction_type: str = "authCaptureTransaction",
    amount: str = "24.99",
    card_number: str = "4111111111111111",
    expiration: str = "2035-12",
    card_code: str | None = "123",
    invoice_number: str = "INV-1",
    zip_code: str = "10001",
    duplicate_window: int | None = None,
) -> dict[str, Any]:
    credit_card = {"cardNumber": card_number, "expirationDate": expiration}
    if card_code is not None:
        credit_card["cardCode"] = card_code
    transaction: dict[str, Any] = {
        "transactionType": transaction_type,
        "amount": amount,
        "payment": {"creditCard": credit_card},
        "order": {"invoiceNumber": invoice_number, "description": "widgets"},
        "lineItems": {"lineItem": [{"itemId": "1", "name": "Widget", "quantity": "2", "unitPrice": "12.495"}]},
        "customer": {"id": "42", "email": "jo@example.test"},
        "billTo": {"firstName": "Jo", "lastName": "Rivera", "address": "1 Main St", "zip": zip_code, "country": "US"},
        "customerIP": "203.0.113.7",
    }
    if duplicate_window is not None:
        transaction["transactionSettings"] = {
            "setting": [{"settingName": "duplicateWindow", "settingValue": str(duplicate_window)}]
        }
    return transaction


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2030, 1, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
def settings() -> SimulatorSettings:
    return SimulatorSettings()


@pytest.fixture
async def gateway(clock: ManualClock, settings: SimulatorSettings) -> AsyncIterator[Gateway]:
    app = create_app(settings, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://simulator") as client:
        yield Gateway(client, clock)
