"""`AuthorizeNetGateway` over real HTTP against the Authorize.Net simulator (uvicorn on 127.0.0.1).

Every test charges its own invoice numbers, so tests sharing the module's simulator never meet in
its duplicate window or its ledger.
"""

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from payment_service.domain.errors import GatewayConfigurationError, GatewayUnavailable
from payment_service.domain.money import Money
from payment_service.domain.payments import CardDetails, ChargeOutcomeKind, ChargeRequest, OpaqueData
from payment_service.domain.transactions import GatewayTransactionStatus, TransactionKind
from payment_service.gateway.client import AuthorizeNetGateway, build_http_client
from payment_service.settings import GatewaySettings
from tests.support.simulator import SimulatorHandle, run_simulator
from tests.unit.gateway.factories import make_bill_to, make_card, make_charge_request


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def charge_request(**overrides: Any) -> ChargeRequest:
    return make_charge_request(invoice_number=unique("INV"), ref_id=unique("REF"), **overrides)


def gateway_settings(simulator: SimulatorHandle, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "endpoint": simulator.api_url,
        "login_id": simulator.login_id,
        "transaction_key": SecretStr(simulator.transaction_key),
        "connect_timeout_s": 2.0,
        "read_timeout_s": 2.0,
        "duplicate_window_s": 600,
    }
    values.update(overrides)
    return GatewaySettings(**values)


@asynccontextmanager
async def open_gateway(settings: GatewaySettings) -> AsyncIterator[AuthorizeNetGateway]:
    async with build_http_client(settings) as client:
        yield AuthorizeNetGateway(client, settings)


@pytest.fixture
async def gateway(simulator: SimulatorHandle) -> AsyncIterator[AuthorizeNetGateway]:
    async with open_gateway(gateway_settings(simulator)) as opened:
        yield opened


@pytest.fixture
def own_simulator() -> Iterator[SimulatorHandle]:
    """A simulator for one test, when it needs an empty ledger."""
    with run_simulator() as handle:
        yield handle


def ledger(simulator: SimulatorHandle, request: ChargeRequest) -> list[dict[str, Any]]:
    return simulator.transactions(invoice_number=request.invoice_number)


class TestChargeOutcomes:
    @pytest.mark.parametrize(
        ("number", "cvv", "account_type"),
        [
            ("4111111111111111", "123", "Visa"),
            ("4007000000027", "123", "Visa"),
            ("4012888818888", "123", "Visa"),
            ("5424000000000015", "123", "MasterCard"),
            ("2223000010309703", "123", "MasterCard"),
            ("370000000000002", "1234", "AmericanExpress"),
            ("6011000000000012", "123", "Discover"),
            ("3088000000000017", "123", "JCB"),
            ("38000000000006", "123", "DinersClub"),
        ],
    )
    async def test_sandbox_test_cards_are_approved_and_recorded_once(
        self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle, number: str, cvv: str, account_type: str
    ) -> None:
        request = charge_request(payment_method=make_card(number, cvv=cvv))

        outcome = await gateway.charge(request)

        assert outcome.kind is ChargeOutcomeKind.APPROVED
        assert outcome.result.transaction_id is not None
        assert outcome.result.auth_code
        assert outcome.result.account_number == f"XXXX{number[-4:]}"
        assert outcome.result.account_type == account_type
        (entry,) = ledger(simulator, request)
        assert entry["transId"] == outcome.result.transaction_id
        assert Decimal(entry["amount"]) == Decimal("24.99")
        assert entry["refId"] == request.ref_id

    @pytest.mark.parametrize(
        ("overrides", "kind", "reason_code", "soft"),
        [
            ({"bill_to": make_bill_to(zip="46282")}, ChargeOutcomeKind.DECLINED, "2", False),
            ({"bill_to": make_bill_to(zip="46205")}, ChargeOutcomeKind.DECLINED, "27", True),
            ({"payment_method": make_card(cvv="901")}, ChargeOutcomeKind.DECLINED, "65", True),
            ({"bill_to": make_bill_to(zip="46252")}, ChargeOutcomeKind.HELD_FOR_REVIEW, "252", False),
            ({"bill_to": make_bill_to(zip="46253")}, ChargeOutcomeKind.HELD_FOR_REVIEW, "253", False),
            # The customer's own card data: declined (cured with another card), not the gateway's fault.
            ({"payment_method": make_card(year=2020, month=1)}, ChargeOutcomeKind.DECLINED, "8", True),
            ({"payment_method": make_card("4111111111111112")}, ChargeOutcomeKind.DECLINED, "6", True),
        ],
        ids=["zip-46282", "avs-n", "cvv-901", "hold-252", "hold-253", "expired", "bad-luhn"],
    )
    async def test_sandbox_triggers_give_their_outcome(
        self,
        gateway: AuthorizeNetGateway,
        overrides: dict[str, Any],
        kind: ChargeOutcomeKind,
        reason_code: str,
        soft: bool,
    ) -> None:
        outcome = await gateway.charge(charge_request(**overrides))

        assert (outcome.kind, outcome.result.reason_code, outcome.soft_decline) == (kind, reason_code, soft)

    @pytest.mark.parametrize(("cvv", "cvv_result"), [("900", "M"), ("902", "S"), ("903", "U"), ("904", "P")])
    async def test_card_code_triggers_are_reported_on_approvals(
        self, gateway: AuthorizeNetGateway, cvv: str, cvv_result: str
    ) -> None:
        outcome = await gateway.charge(charge_request(payment_method=make_card(cvv=cvv)))

        assert outcome.kind is ChargeOutcomeKind.APPROVED
        assert outcome.result.cvv_result == cvv_result

    async def test_held_for_review_fault_holds_an_approvable_charge(
        self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle
    ) -> None:
        simulator.add_fault("held_for_review", reason_code=253)

        outcome = await gateway.charge(charge_request())

        assert outcome.kind is ChargeOutcomeKind.HELD_FOR_REVIEW

    async def test_same_charge_again_within_the_window_is_a_duplicate_naming_the_original(
        self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle
    ) -> None:
        request = charge_request()
        first = await gateway.charge(request)

        second = await gateway.charge(replace(request, ref_id=unique("REF")))

        assert first.kind is ChargeOutcomeKind.APPROVED
        assert second.kind is ChargeOutcomeKind.DUPLICATE
        assert second.original_transaction_id == first.result.transaction_id
        assert len(ledger(simulator, request)) == 1

    async def test_nonce_pays_once(self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle) -> None:
        opaque = simulator.nonce("4111111111111111", "2031-08", "123")
        payment = OpaqueData(opaque["dataDescriptor"], SecretStr(opaque["dataValue"]))
        request = charge_request(payment_method=payment)

        first = await gateway.charge(request)
        reused = await gateway.charge(replace(request, invoice_number=unique("INV")))

        assert first.kind is ChargeOutcomeKind.APPROVED
        assert first.result.account_number == "XXXX1111"
        assert (reused.kind, reused.result.reason_code, reused.soft_decline) == (
            ChargeOutcomeKind.DECLINED,
            "E00114",
            True,
        )

    async def test_wrong_credentials_are_a_configuration_error(self, simulator: SimulatorHandle) -> None:
        settings = gateway_settings(simulator, transaction_key=SecretStr("wrongKey00000000"))
        request = charge_request()
        async with open_gateway(settings) as gateway:
            outcome = await gateway.charge(request)
            accepted = await gateway.authenticate_test()
            with pytest.raises(GatewayConfigurationError):
                await gateway.fetch_unsettled_transactions()

        assert outcome.kind is ChargeOutcomeKind.CONFIGURATION_ERROR
        assert outcome.result.reason_code == "E00007"
        assert accepted is False
        assert ledger(simulator, request) == []

    async def test_right_credentials_pass_the_authentication_test(self, gateway: AuthorizeNetGateway) -> None:
        assert await gateway.authenticate_test() is True


class TestAmbiguousFailures:
    async def test_stall_after_commit_is_unknown_with_exactly_one_charge(self, simulator: SimulatorHandle) -> None:
        simulator.add_fault("stall_after_commit", stall_s=30)
        request = charge_request()
        async with open_gateway(gateway_settings(simulator, read_timeout_s=0.3)) as gateway:
            outcome = await gateway.charge(request)

            assert outcome.kind is ChargeOutcomeKind.UNKNOWN
            (entry,) = ledger(simulator, request)
            # What the reconciler does: find it in the unsettled list, confirm it by refId.
            page = await gateway.fetch_unsettled_transactions(limit=1000, offset=1)
            found = [row for row in page.transactions if row.invoice_number == request.invoice_number]
            assert [row.transaction_id for row in found] == [entry["transId"]]
            details = await gateway.fetch_transaction_details(entry["transId"])
            by_ref_id = await gateway.fetch_unsettled_transaction_by_ref_id(
                request.ref_id, invoice_number=request.invoice_number
            )

        assert details is not None
        assert details.ref_id == request.ref_id
        assert by_ref_id == details
        assert details.status is GatewayTransactionStatus.CAPTURED
        assert details.status.payment_status.value == "approved"

    async def test_connection_reset_after_commit_is_unknown_with_exactly_one_charge(
        self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle
    ) -> None:
        simulator.add_fault("reset_after_commit")
        request = charge_request()

        outcome = await gateway.charge(request)

        assert outcome.kind is ChargeOutcomeKind.UNKNOWN
        assert len(ledger(simulator, request)) == 1

    async def test_system_error_is_unknown(self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle) -> None:
        simulator.add_fault("system_error")

        outcome = await gateway.charge(charge_request())

        assert outcome.kind is ChargeOutcomeKind.UNKNOWN
        assert outcome.result.reason_code == "E00001"

    async def test_server_busy_is_a_failure_that_charged_nothing(
        self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle
    ) -> None:
        simulator.add_fault("server_busy")
        request = charge_request()

        outcome = await gateway.charge(request)

        assert outcome.kind is ChargeOutcomeKind.FAILED
        assert ledger(simulator, request) == []

    async def test_nothing_listening_raises_gateway_unavailable(self) -> None:
        with socket.socket() as sock:  # bound, never listening: connections are refused
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            settings = GatewaySettings(endpoint=f"http://127.0.0.1:{port}/xml/v1/request.api", connect_timeout_s=1.0)
            async with open_gateway(settings) as gateway:
                with pytest.raises(GatewayUnavailable):
                    await gateway.charge(charge_request())


class TestFollowUpTransactions:
    async def test_authorize_then_capture(self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle) -> None:
        request = charge_request()
        authorized = await gateway.authorize(request)
        assert authorized.kind is ChargeOutcomeKind.APPROVED
        assert authorized.result.transaction_id is not None
        details = await gateway.fetch_transaction_details(authorized.result.transaction_id)
        assert details is not None
        assert details.status is GatewayTransactionStatus.AUTHORIZED

        captured = await gateway.capture(authorized.result.transaction_id, Money.of("20.00"))
        too_much = await gateway.capture(authorized.result.transaction_id, Money.of("99.00"))

        assert captured.kind is ChargeOutcomeKind.APPROVED
        (entry,) = ledger(simulator, request)
        assert entry["status"] == "capturedPendingSettlement"
        assert Decimal(entry["settleAmount"]) == Decimal("20.00")
        assert too_much.kind is ChargeOutcomeKind.FAILED

    async def test_void_of_an_unsettled_charge(self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle) -> None:
        request = charge_request()
        charged = await gateway.charge(request)
        assert charged.result.transaction_id is not None

        voided = await gateway.void(charged.result.transaction_id)
        details = await gateway.fetch_transaction_details(charged.result.transaction_id)

        assert voided.kind is ChargeOutcomeKind.APPROVED
        assert details is not None
        assert details.status is GatewayTransactionStatus.VOIDED

    async def test_refund_needs_a_settled_charge_and_names_the_card_by_last_four(
        self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle
    ) -> None:
        request = charge_request()
        charged = await gateway.charge(request)
        transaction_id = charged.result.transaction_id
        assert transaction_id is not None

        unsettled = await gateway.refund(transaction_id, Money.of("5.00"), card_last4="1111")
        simulator.settle()
        refunded = await gateway.refund(transaction_id, Money.of("5.00"), card_last4="1111", ref_id=unique("RF"))
        too_much = await gateway.refund(
            transaction_id, Money.of("24.00"), card_last4="1111", invoice_number=unique("R")
        )

        assert (unsettled.kind, unsettled.result.reason_code) == (ChargeOutcomeKind.FAILED, "54")
        assert refunded.kind is ChargeOutcomeKind.APPROVED
        assert refunded.result.transaction_id is not None
        assert (too_much.kind, too_much.result.reason_code) == (ChargeOutcomeKind.FAILED, "55")
        details = await gateway.fetch_transaction_details(refunded.result.transaction_id)
        assert details is not None
        assert details.kind is TransactionKind.REFUND
        assert details.status is GatewayTransactionStatus.REFUND_PENDING
        refund_body = orjson.loads(simulator.requests(limit=3)[0]["body"])
        card = refund_body["createTransactionRequest"]["transactionRequest"]["payment"]["creditCard"]
        assert card == {"cardNumber": "XXXX1111", "expirationDate": "XXXX"}

    async def test_details_of_an_unknown_transaction_are_none(self, gateway: AuthorizeNetGateway) -> None:
        assert await gateway.fetch_transaction_details("999999999") is None


class TestUnsettledList:
    async def test_pages_newest_first_through_every_unsettled_charge(self, own_simulator: SimulatorHandle) -> None:
        async with open_gateway(gateway_settings(own_simulator)) as gateway:
            requests = [charge_request(amount=Money.of(f"{10 + n}.00")) for n in range(5)]
            charged = [(await gateway.charge(request)).result.transaction_id for request in requests]
            pages = [await gateway.fetch_unsettled_transactions(limit=2, offset=page) for page in (1, 2, 3, 4)]
            oldest_first = await gateway.fetch_unsettled_transactions(limit=5, offset=1, newest_first=False)
            # Without an invoice number every row is confirmed through its details, two rows a page.
            found = await gateway.fetch_unsettled_transaction_by_ref_id(requests[1].ref_id, page_size=2)
            missing = await gateway.fetch_unsettled_transaction_by_ref_id("no-such-ref", page_size=2)

        seen = [row.transaction_id for page in pages for row in page.transactions]
        assert seen == list(reversed(charged))
        assert [len(page.transactions) for page in pages] == [2, 2, 1, 0]
        assert {page.total_count for page in pages[:3]} == {5}
        assert [row.transaction_id for row in oldest_first.transactions] == charged
        assert found is not None
        assert found.transaction_id == charged[1]
        assert missing is None
        first = pages[0].transactions[0]
        assert (first.settle_amount, first.card_last4, first.status) == (
            Decimal("14.00"),
            "1111",
            GatewayTransactionStatus.CAPTURED,
        )

    async def test_settled_charges_leave_the_list(self, own_simulator: SimulatorHandle) -> None:
        async with open_gateway(gateway_settings(own_simulator)) as gateway:
            await gateway.charge(charge_request())
            own_simulator.settle()
            page = await gateway.fetch_unsettled_transactions()

        assert page.transactions == ()
        assert page.total_count == 0


class TestWireContract:
    async def test_the_simulator_receives_json_in_schema_order(
        self, gateway: AuthorizeNetGateway, simulator: SimulatorHandle
    ) -> None:
        await gateway.charge(charge_request(payment_method=CardDetails(SecretStr("4111111111111111"), 2031, 8)))

        (received,) = simulator.requests(limit=1)
        assert received["contentType"].startswith("application/json")
        body = orjson.loads(received["body"])["createTransactionRequest"]
        assert list(body) == ["merchantAuthentication", "refId", "transactionRequest"]
        assert "4111111111111111" not in received["body"]  # the simulator masks what it keeps
