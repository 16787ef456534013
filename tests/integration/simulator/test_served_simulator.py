"""The simulator served for real (uvicorn on 127.0.0.1): faults on the wire and signed webhooks."""

import hashlib
import hmac
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.integration.simulator.conftest import make_charge
from tests.support.servers import serve_app
from tests.support.simulator import ManualClock, SimulatorHandle, run_simulator


def charge_body(sim: SimulatorHandle, **overrides: Any) -> bytes:
    request = {
        "createTransactionRequest": {
            "merchantAuthentication": {"name": sim.login_id, "transactionKey": sim.transaction_key},
            "refId": "try-1",
            "transactionRequest": make_charge(**overrides),
        }
    }
    return orjson.dumps(request)


def anet_signature_ok(raw: bytes, header: str, signature_key: str) -> bool:
    # The documented verification (NOTES §10), verbatim in spirit.
    algo, _, got = header.partition("=")
    want = hmac.new(signature_key.encode("ascii"), raw, hashlib.sha512).hexdigest().upper()
    return algo.lower() == "sha512" and hmac.compare_digest(want, got.strip().upper())


class TestServedFaults:
    def test_a_stall_after_commit_times_the_client_out_and_leaves_exactly_one_charge(self) -> None:
        with run_simulator() as sim:
            sim.add_fault("stall_after_commit", stall_s=30)
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(
                    sim.api_url,
                    content=charge_body(sim),
                    headers={"content-type": "application/json"},
                    timeout=httpx.Timeout(5.0, read=0.5),
                )
            (entry,) = sim.transactions()
            assert (entry["status"], entry["invoiceNumber"], entry["refId"], entry["lastFour"]) == (
                "capturedPendingSettlement",
                "INV-1",
                "try-1",
                "1111",
            )

    def test_a_reset_after_commit_drops_the_connection_without_an_answer(self) -> None:
        with run_simulator() as sim:
            sim.add_fault("reset_after_commit")
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                httpx.post(
                    sim.api_url, content=charge_body(sim), headers={"content-type": "application/json"}, timeout=5.0
                )
            assert len(sim.transactions()) == 1
            # The next call is answered normally, and the duplicate window recognises the resend.
            resend = httpx.post(
                sim.api_url,
                content=charge_body(sim, duplicate_window=600),
                headers={"content-type": "application/json"},
                timeout=5.0,
            )
            assert orjson.loads(resend.content[3:])["transactionResponse"]["responseCode"] == "1"

    def test_scripted_error_codes_answer_without_charging(self) -> None:
        with run_simulator() as sim:
            codes = []
            for fault in ("system_error", "server_busy", None):
                if fault is not None:
                    sim.add_fault(fault)
                answer = orjson.loads(
                    httpx.post(
                        sim.api_url, content=charge_body(sim), headers={"content-type": "application/json"}
                    ).content[3:]
                )
                codes.append(answer["messages"]["message"][0]["code"])
            assert codes == ["E00001", "E00053", "I00001"]
            assert len(sim.transactions()) == 1


class TestServedClock:
    def test_every_answer_carries_one_date_header_from_the_simulator_s_own_clock(self) -> None:
        behind = datetime.now(UTC) - timedelta(minutes=40)
        with run_simulator(clock=ManualClock(behind)) as sim:
            response = httpx.post(sim.api_url, content=charge_body(sim), headers={"content-type": "application/json"})

        assert response.status_code == 200
        assert response.headers.get_list("date") == [format_datetime(behind, usegmt=True)]


class TestWebhooks:
    def test_a_charge_is_notified_with_a_verifiable_signature_after_a_failed_attempt(self) -> None:
        received: list[tuple[bytes, str]] = []
        delivered = threading.Event()
        attempts = 0

        async def receive(request: Request) -> Response:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                return Response(status_code=503)  # the simulator must retry
            received.append((await request.body(), request.headers["x-anet-signature"]))
            delivered.set()
            return Response(status_code=200)

        receiver = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
        with (
            serve_app(receiver) as receiver_url,
            run_simulator(webhook_url=f"{receiver_url}/hook", webhook_backoff_ms=10) as sim,
        ):
            answer = orjson.loads(
                httpx.post(sim.api_url, content=charge_body(sim), headers={"content-type": "application/json"}).content[
                    3:
                ]
            )
            assert delivered.wait(timeout=10), "no webhook delivered within 10 s"
            ((raw, header),) = received
            assert header.startswith("sha512=")
            assert header[7:] == header[7:].upper()
            assert anet_signature_ok(raw, header, sim.signature_key)
            notification = orjson.loads(raw)
            assert notification["eventType"] == "net.authorize.payment.authcapture.created"
            payload = notification["payload"]
            assert payload["id"] == answer["transactionResponse"]["transId"]
            assert payload["invoiceNumber"] == "INV-1"
            assert payload["responseCode"] == 1
            assert payload["authAmount"] == 24.99
            assert b'"authAmount":24.99' in raw
            assert sim.webhook_deliveries()[0]["attempts"] == 2

    def test_the_handle_exposes_nonces_settlement_and_reset(self) -> None:
        with run_simulator() as sim:
            opaque = sim.nonce("4111111111111111", "2035-12", "123")
            transaction = make_charge()
            transaction["payment"] = {"opaqueData": opaque}
            body = orjson.dumps(
                {
                    "createTransactionRequest": {
                        "merchantAuthentication": {"name": sim.login_id, "transactionKey": sim.transaction_key},
                        "transactionRequest": transaction,
                    }
                }
            )
            httpx.post(sim.api_url, content=body, headers={"content-type": "application/json"})
            assert sim.settle()["settled"] == [sim.transactions()[0]["transId"]]
            assert sim.requests(limit=1)[0]["contentType"] == "application/json"
            sim.reset()
            assert sim.transactions() == []
            assert sim.requests() == []
