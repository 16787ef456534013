"""The client over a fake session: what is sent, and how each kind of failure is translated."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

import aiohttp
import orjson
import pytest
import structlog
from aiohttp.client_reqrep import ConnectionKey

from payment_service.domain.errors import GatewayConfigurationError, GatewayError, GatewayUnavailable
from payment_service.domain.money import Money
from payment_service.domain.payments import ChargeOutcomeKind
from payment_service.domain.transactions import GatewayTransactionStatus
from payment_service.gateway.client import AuthorizeNetGateway, build_http_client
from payment_service.settings import GatewaySettings
from tests.unit.gateway import responses
from tests.unit.gateway.anet_schema import validate
from tests.unit.gateway.factories import make_card, make_charge_request, make_opaque_data, make_settings
from tests.unit.gateway.test_wire_responses import details_document, summary

SECRETS = ("4111111111111111", "Key0123456789abc", "2031", "9731", "nonce-secret-value")


def connect_error() -> aiohttp.ClientConnectorError:
    key = ConnectionKey("gateway.test", 80, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))


@dataclass(frozen=True)
class SentRequest:
    method: str
    url: str
    content: bytes


class FakeResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self._body = body
        self.headers: dict[str, str] = {}  # no `Date`: the gateway's clock stays unmeasured

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def read(self) -> bytes:
        return self._body


class Recorder:
    """A fake gateway session: answers with `body` (or raises `error`) and keeps what it received."""

    def __init__(self) -> None:
        self.body: bytes = responses.approved()
        self.status_code = 200
        self.error: Exception | None = None
        self.requests: list[SentRequest] = []
        # Answers by request, for tests that script a sequence; `body` when None.
        self.answer: Callable[[SentRequest], bytes] | None = None

    def post(self, url: str, *, data: bytes, **_options: Any) -> FakeResponse:
        request = SentRequest("POST", url, data)
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        body = self.answer(request) if self.answer is not None else self.body
        return FakeResponse(self.status_code, body)

    def documents(self) -> list[dict[str, Any]]:
        return [orjson.loads(request.content) for request in self.requests]


def gateway_over(recorder: Recorder, settings: GatewaySettings) -> AuthorizeNetGateway:
    return AuthorizeNetGateway(cast(aiohttp.ClientSession, recorder), settings)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> AuthorizeNetGateway:
    return gateway_over(recorder, make_settings())


class TestBuildHttpClient:
    async def test_timeouts_limits_and_headers_come_from_the_settings(self) -> None:
        settings = make_settings(connect_timeout_s=1.5, read_timeout_s=7.0, max_connections=17)

        async with build_http_client(settings) as client:
            assert client.timeout.connect == 1.5
            assert client.timeout.sock_connect == 1.5
            assert client.timeout.sock_read == 7.0
            assert client.timeout.total is None
            assert client.connector is not None
            assert client.connector.limit == 17
            assert client.headers["Content-Type"] == "application/json"

    def test_named_endpoints_resolve_to_authorize_net(self) -> None:
        assert make_settings(endpoint="sandbox").url == "https://apitest.authorize.net/xml/v1/request.api"
        assert make_settings(endpoint="production").url == "https://api.authorize.net/xml/v1/request.api"


class TestTransactions:
    async def test_charge_posts_json_to_the_endpoint_and_returns_the_outcome(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        outcome = await gateway.charge(make_charge_request())

        assert outcome.kind is ChargeOutcomeKind.APPROVED
        assert outcome.result.transaction_id == "80012345678"
        (request,) = recorder.requests
        assert request.method == "POST"
        assert request.url == "http://gateway.test/xml/v1/request.api"
        body = recorder.documents()[0]["createTransactionRequest"]
        assert body["refId"] == "att-7731-1"
        assert body["transactionRequest"]["transactionType"] == "authCaptureTransaction"

    async def test_every_request_the_client_sends_is_valid_against_the_xsd(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        await gateway.charge(make_charge_request())
        await gateway.authorize(make_charge_request())
        await gateway.capture("80012345678", Money.of("10"), ref_id="cap-1")
        await gateway.refund("80012345678", Money.of("5"), card_last4="1111", ref_id="rf-1", invoice_number="ORD-1-R1")
        await gateway.void("80012345678")
        recorder.body = responses.encode(details_document())
        await gateway.fetch_transaction_details("80012345678")
        recorder.body = responses.encode({"messages": responses.ok_messages()})
        await gateway.fetch_unsettled_transactions(limit=10, offset=2)
        await gateway.authenticate_test()

        methods = [next(iter(document)) for document in recorder.documents()]
        assert methods == ["createTransactionRequest"] * 5 + [
            "getTransactionDetailsRequest",
            "getUnsettledTransactionListRequest",
            "authenticateTestRequest",
        ]
        for document in recorder.documents():
            validate(document)

    async def test_authorize_sends_an_auth_only_transaction(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        await gateway.authorize(make_charge_request())

        transaction = recorder.documents()[0]["createTransactionRequest"]["transactionRequest"]
        assert transaction["transactionType"] == "authOnlyTransaction"

    async def test_refund_uses_the_settings_duplicate_window(self, recorder: Recorder) -> None:
        gateway = gateway_over(recorder, make_settings(duplicate_window_s=900))
        await gateway.refund("80012345678", Money.of("5"), card_last4="1111")

        transaction = recorder.documents()[0]["createTransactionRequest"]["transactionRequest"]
        assert transaction["transactionSettings"]["setting"] == [
            {"settingName": "duplicateWindow", "settingValue": "900"}
        ]

    async def test_configuration_error_is_an_outcome_of_a_charge(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.body = responses.api_error(
            "E00007", "User authentication failed due to invalid authentication values."
        )

        outcome = await gateway.charge(make_charge_request())

        assert outcome.kind is ChargeOutcomeKind.CONFIGURATION_ERROR

    @pytest.mark.parametrize(
        "error",
        [connect_error(), aiohttp.ConnectionTimeoutError("slow connect or no free pooled connection")],
        ids=["connect-error", "connect-or-pool-timeout"],
    )
    async def test_nothing_sent_raises_gateway_unavailable(
        self, gateway: AuthorizeNetGateway, recorder: Recorder, error: Exception
    ) -> None:
        recorder.error = error

        with pytest.raises(GatewayUnavailable) as raised:
            await gateway.charge(make_charge_request())

        assert raised.value.retriable

    @pytest.mark.parametrize(
        "error",
        [
            aiohttp.SocketTimeoutError("slow"),
            aiohttp.ClientConnectionResetError("reset"),
            aiohttp.ClientOSError(32, "broken pipe"),
            aiohttp.ServerDisconnectedError(),
            aiohttp.ClientPayloadError("truncated body"),
        ],
        ids=["read-timeout", "reset", "broken-pipe", "server-disconnected", "truncated-body"],
    )
    async def test_sent_without_an_answer_is_unknown_and_not_retried(
        self, gateway: AuthorizeNetGateway, recorder: Recorder, error: Exception
    ) -> None:
        recorder.error = error

        outcome = await gateway.charge(make_charge_request())

        assert outcome.kind is ChargeOutcomeKind.UNKNOWN
        assert len(recorder.requests) == 1

    @pytest.mark.parametrize(
        ("status_code", "body"), [(500, b"oops"), (503, b""), (200, b"<html/>"), (200, b"\xef\xbb\xbf")]
    )
    async def test_non_200_or_undecodable_answer_is_unknown(
        self, gateway: AuthorizeNetGateway, recorder: Recorder, status_code: int, body: bytes
    ) -> None:
        recorder.status_code, recorder.body = status_code, body

        outcome = await gateway.void("80012345678")

        assert outcome.kind is ChargeOutcomeKind.UNKNOWN

    async def test_unusable_endpoint_raises_a_configuration_error(self, recorder: Recorder) -> None:
        gateway = gateway_over(recorder, make_settings(endpoint="ftp://gateway.test/"))
        recorder.error = aiohttp.NonHttpUrlClientError("ftp://gateway.test/")

        with pytest.raises(GatewayConfigurationError):
            await gateway.charge(make_charge_request())

    async def test_no_secret_reaches_logs_or_errors(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        answers: list[Exception | bytes] = [
            responses.approved(),
            responses.declined(),
            responses.api_error("E00007"),
            responses.api_error("E00003", "The value '123' is invalid"),
            aiohttp.SocketTimeoutError("slow"),
        ]
        texts: list[str] = []
        with structlog.testing.capture_logs() as logs:
            for answer in answers:
                recorder.error = answer if isinstance(answer, Exception) else None
                recorder.body = answer if isinstance(answer, bytes) else b""
                outcome = await gateway.charge(make_charge_request(payment_method=make_card(cvv="9731")))
                texts.append(repr(outcome))
                outcome = await gateway.charge(
                    make_charge_request(payment_method=make_opaque_data("nonce-secret-value"))
                )
                texts.append(repr(outcome))
            recorder.error = connect_error()
            with pytest.raises(GatewayUnavailable) as raised:
                await gateway.charge(make_charge_request())
            texts.append(str(raised.value))

        assert any(entry["event"] == "gateway.outcome_unknown" for entry in logs)
        everything = " ".join(texts) + repr(logs)
        for secret in SECRETS:
            assert secret not in everything
        assert any(entry.get("card_last4") == "1111" for entry in logs)


class TestLookups:
    async def test_transaction_details_are_returned_as_a_domain_record(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.body = responses.encode(details_document())

        details = await gateway.fetch_transaction_details("80012345678")

        assert details is not None
        assert details.ref_id == "att-7731-1"
        assert details.status is GatewayTransactionStatus.CAPTURED
        assert recorder.documents()[0]["getTransactionDetailsRequest"]["transId"] == "80012345678"

    async def test_unknown_transaction_is_none(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        recorder.body = responses.api_error("E00040", "The record cannot be found.")

        assert await gateway.fetch_transaction_details("1") is None

    async def test_unsettled_page_is_returned(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        recorder.body = responses.encode(
            {
                "transactions": [summary("2"), summary("1")],
                "totalNumInResultSet": 2,
                "messages": responses.ok_messages(),
            }
        )

        page = await gateway.fetch_unsettled_transactions(limit=2, offset=1, newest_first=False)

        assert [row.transaction_id for row in page.transactions] == ["2", "1"]
        sent = recorder.documents()[0]["getUnsettledTransactionListRequest"]
        assert sent["sorting"] == {"orderBy": "submitTimeUTC", "orderDescending": False}

    async def test_search_by_ref_id_stops_at_rows_older_than_the_attempt(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.body = responses.encode(
            {
                "transactions": [summary("2"), summary("1")],
                "totalNumInResultSet": 500,
                "messages": responses.ok_messages(),
            }
        )

        found = await gateway.fetch_unsettled_transaction_by_ref_id(
            "att-7731-1", submitted_after=datetime(2026, 1, 1, tzinfo=UTC)
        )

        assert found is None
        assert len(recorder.requests) == 1

    async def test_search_by_ref_id_confirms_candidates_of_the_invoice_by_their_details(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        page = responses.encode(
            {
                "transactions": [summary("3", invoiceNumber="OTHER"), summary("2")],
                "totalNumInResultSet": 2,
                "messages": responses.ok_messages(),
            }
        )
        details = responses.encode(details_document(transId="2"))
        answers = iter([page, details])
        recorder.answer = lambda _request: next(answers)

        found = await gateway.fetch_unsettled_transaction_by_ref_id("att-7731-1", invoice_number="ORD-7731")

        assert found is not None
        assert found.transaction_id == "2"
        assert [next(iter(document)) for document in recorder.documents()] == [
            "getUnsettledTransactionListRequest",
            "getTransactionDetailsRequest",
        ]

    @pytest.mark.parametrize("code", ["E00007", "E00011"])
    async def test_rejected_credentials_or_disabled_api_raise_configuration_error(
        self, gateway: AuthorizeNetGateway, recorder: Recorder, code: str
    ) -> None:
        recorder.body = responses.api_error(code)

        with pytest.raises(GatewayConfigurationError):
            await gateway.fetch_transaction_details("1")

    @pytest.mark.parametrize(
        ("body", "error"),
        [
            (responses.api_error("E00001"), None),
            (b"garbage", None),
            (b"", aiohttp.SocketTimeoutError("slow")),
            (b"", connect_error()),
        ],
        ids=["E00001", "undecodable", "read-timeout", "connect-error"],
    )
    async def test_lookups_without_an_answer_raise_gateway_unavailable(
        self, gateway: AuthorizeNetGateway, recorder: Recorder, body: bytes, error: Exception | None
    ) -> None:
        recorder.body, recorder.error = body, error

        with pytest.raises(GatewayUnavailable):
            await gateway.fetch_unsettled_transactions()

    async def test_other_error_answers_raise_gateway_error_without_their_text(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.body = responses.api_error("E00003", "The value '4111111111111111' is invalid")

        with pytest.raises(GatewayError) as raised:
            await gateway.fetch_unsettled_transactions()

        assert "E00003" in str(raised.value)
        assert "4111" not in str(raised.value)

    async def test_malformed_details_raise_gateway_error(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.body = responses.encode({"messages": responses.ok_messages(), "transaction": {"transId": "1"}})

        with pytest.raises(GatewayError):
            await gateway.fetch_transaction_details("1")


class TestAuthenticateTest:
    async def test_accepted_credentials_are_true(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        recorder.body = responses.encode({"messages": responses.ok_messages()})

        assert await gateway.authenticate_test() is True

    async def test_rejected_credentials_are_false(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        recorder.body = responses.api_error("E00007")

        assert await gateway.authenticate_test() is False

    async def test_unreachable_gateway_raises(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        recorder.error = connect_error()

        with pytest.raises(GatewayUnavailable):
            await gateway.authenticate_test()
