"""Run a real Authorize.Net simulator for a test: a fresh app served by uvicorn on 127.0.0.1.

with run_simulator(webhook_url=receiver_url) as sim:
    gateway = make_gateway(sim.api_url, sim.login_id, sim.transaction_key)
    sim.add_fault("stall_after_commit", stall_s=5)
    ...
    assert len(sim.transactions()) == 1
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from authorize_net_simulator.app import API_PATH, create_app
from authorize_net_simulator.clock import Clock
from authorize_net_simulator.settings import SimulatorSettings
from tests.support.servers import serve_app


@dataclass(frozen=True)
class SimulatorHandle:
    base_url: str
    api_url: str
    login_id: str
    transaction_key: str
    signature_key: str

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(method, f"{self.base_url}{path}", timeout=10.0, **kwargs)
        response.raise_for_status()
        return response

    def transactions(self, *, invoice_number: str | None = None) -> list[dict[str, Any]]:
        """The ledger (see `GET /_sim/transactions`), oldest first."""
        params = {"invoiceNumber": invoice_number} if invoice_number is not None else None
        entries: list[dict[str, Any]] = self._call("GET", "/_sim/transactions", params=params).json()["transactions"]
        return entries

    def requests(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The last API requests as received (masked): `{"receivedAt", "contentType", "body"}`."""
        params = {"limit": limit} if limit is not None else None
        recorded: list[dict[str, Any]] = self._call("GET", "/_sim/requests", params=params).json()["requests"]
        return recorded

    def add_fault(self, kind: str, **options: Any) -> dict[str, Any]:
        """Script a fault (`POST /_sim/faults`): kind plus count, probability, seed, method, latency_ms, stall_s, reason_code."""
        fault: dict[str, Any] = self._call("POST", "/_sim/faults", json={"kind": kind, **options}).json()
        return fault

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sim/faults")

    def settle(self) -> dict[str, Any]:
        """Close the batch now: `{"batchId": str | None, "settled": [transId, ...]}`."""
        result: dict[str, Any] = self._call("POST", "/_sim/settle").json()
        return result

    def review(self, trans_id: str, *, approve: bool) -> dict[str, Any]:
        """Approve or decline a transaction held for review; returns its ledger entry."""
        entry: dict[str, Any] = self._call(
            "POST", "/_sim/review", json={"transId": trans_id, "action": "approve" if approve else "decline"}
        ).json()
        return entry

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        deliveries: list[dict[str, Any]] = self._call("GET", "/_sim/webhooks").json()
        return deliveries

    def reset(self) -> None:
        self._call("POST", "/_sim/reset")

    def nonce(self, card_number: str, expiration: str, cvv: str | None = None) -> dict[str, str]:
        """An Accept.js-style opaque data dict: `{"dataDescriptor", "dataValue"}`, usable once."""
        body = {"cardNumber": card_number, "expirationDate": expiration}
        if cvv is not None:
            body["cardCode"] = cvv
        opaque: dict[str, str] = self._call("POST", "/_sim/nonces", json=body).json()
        return opaque


@contextmanager
def run_simulator(*, clock: Clock | None = None, **settings_overrides: Any) -> Iterator[SimulatorHandle]:
    """Serve a fresh simulator; keyword arguments override `SimulatorSettings` fields."""
    settings = SimulatorSettings(**settings_overrides)
    with serve_app(create_app(settings, clock=clock), date_header=False) as base_url:
        yield SimulatorHandle(
            base_url=base_url,
            api_url=f"{base_url}{API_PATH}",
            login_id=settings.login_id,
            transaction_key=settings.transaction_key.get_secret_value(),
            signature_key=settings.signature_key.get_secret_value(),
        )


class ManualClock:
    """A clock tests move by hand (aware UTC)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
