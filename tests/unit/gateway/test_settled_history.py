"""Settled history: `getSettledBatchList` and `getTransactionList` requests, answers, and the searches over them."""

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from payment_service.domain.errors import GatewayConfigurationError, GatewayError, GatewayUnavailable
from payment_service.domain.transactions import GatewayTransactionStatus
from payment_service.gateway import wire
from payment_service.gateway.client import AuthorizeNetGateway
from tests.unit.gateway import responses
from tests.unit.gateway.anet_schema import validate
from tests.unit.gateway.factories import make_settings
from tests.unit.gateway.test_client import Recorder, SentRequest, gateway_over
from tests.unit.gateway.test_wire_responses import details_document, summary

CREDENTIALS = wire.Credentials("login-1", SecretStr("Key0123456789abc"))
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def batch_list_body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"first_settlement": NOW - timedelta(days=2), "last_settlement": NOW}
    values.update(overrides)
    body: dict[str, Any] = wire.build_settled_batch_list_request(CREDENTIALS, **values).document[
        wire.GET_SETTLED_BATCH_LIST
    ]
    return body


def batch(batch_id: str, settled: str = "2026-03-09T02:00:00Z", **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "batchId": batch_id,
        "settlementTimeUTC": settled,
        "settlementTimeLocal": settled.removesuffix("Z"),
        "settlementState": "settledSuccessfully",
        "paymentMethod": "creditCard",
        "marketType": "eCommerce",
        "product": "Card Not Present",
    }
    row.update(fields)
    return row


def answer(**document: Any) -> bytes:
    return responses.encode({**document, "messages": responses.ok_messages()})


def no_records() -> bytes:
    return responses.encode(
        {"messages": {"resultCode": "Ok", "message": [{"code": "I00004", "text": "No records found."}]}}
    )


def method_of(request: SentRequest) -> str:
    document: dict[str, Any] = orjson.loads(request.content)
    return next(iter(document))


def body_of(request: SentRequest) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(request.content)
    body: dict[str, Any] = next(iter(document.values()))
    return body


class FakeSettledGateway:
    """Answers by method: a batch list, pages of batch transactions, and details, like the gateway would."""

    def __init__(
        self,
        batches: list[dict[str, Any]],
        rows_by_batch: dict[str, list[dict[str, Any]]],
        details: Callable[[str], bytes] | None = None,
    ) -> None:
        self.batches = batches
        self.rows_by_batch = rows_by_batch
        self.details = details or (lambda trans_id: responses.encode(details_document(transId=trans_id)))

    def __call__(self, request: SentRequest) -> bytes:
        method, body = method_of(request), body_of(request)
        if method == wire.GET_SETTLED_BATCH_LIST:
            return answer(batchList=self.batches) if self.batches else no_records()
        if method == wire.GET_TRANSACTION_LIST:
            rows = self.rows_by_batch[body["batchId"]]
            limit, page = body["paging"]["limit"], body["paging"]["offset"]
            return answer(transactions=rows[(page - 1) * limit : page * limit], totalNumInResultSet=len(rows))
        assert method == wire.GET_TRANSACTION_DETAILS
        return self.details(body["transId"])


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> AuthorizeNetGateway:
    return gateway_over(recorder, make_settings())


class TestSettledBatchListRequest:
    def test_keys_follow_the_schema_and_statistics_are_not_asked_for(self) -> None:
        body = batch_list_body()

        assert list(body) == [
            "merchantAuthentication",
            "includeStatistics",
            "firstSettlementDate",
            "lastSettlementDate",
        ]
        assert body["includeStatistics"] is False

    def test_dates_are_sent_in_utc_with_an_explicit_zone(self) -> None:
        eastern = timezone(timedelta(hours=-5))

        body = batch_list_body(
            first_settlement=datetime(2026, 3, 1, 7, 30, tzinfo=eastern),
            last_settlement=datetime(2026, 3, 2, tzinfo=UTC),
        )

        assert (body["firstSettlementDate"], body["lastSettlementDate"]) == (
            "2026-03-01T12:30:00Z",
            "2026-03-02T00:00:00Z",
        )

    def test_fractions_of_a_second_round_outwards(self) -> None:
        body = batch_list_body(
            first_settlement=datetime(2026, 3, 1, 0, 0, 5, 900_000, tzinfo=UTC),
            last_settlement=datetime(2026, 3, 1, 0, 0, 9, 100_000, tzinfo=UTC),
        )

        assert (body["firstSettlementDate"], body["lastSettlementDate"]) == (
            "2026-03-01T00:00:05Z",
            "2026-03-01T00:00:10Z",
        )

    def test_a_range_of_exactly_31_days_is_accepted(self) -> None:
        body = batch_list_body(first_settlement=NOW - timedelta(days=31), last_settlement=NOW)

        assert body["firstSettlementDate"] == "2026-02-07T12:00:00Z"

    @pytest.mark.parametrize(
        ("first", "last", "message"),
        [
            (NOW - timedelta(days=31, seconds=1), NOW, "31 days"),
            (NOW, NOW - timedelta(seconds=1), "before"),
            (datetime(2026, 3, 1), NOW, "aware"),  # noqa: DTZ001 - the naive datetime under test
        ],
        ids=["over-31-days", "reversed", "naive"],
    )
    def test_a_range_the_gateway_would_refuse_is_refused_before_sending(
        self, first: datetime, last: datetime, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            wire.build_settled_batch_list_request(CREDENTIALS, first_settlement=first, last_settlement=last)


class TestTransactionListRequest:
    def test_keys_follow_the_schema_with_sorting_and_paging(self) -> None:
        request = wire.build_transaction_list_request(CREDENTIALS, "1000001", limit=50, offset=3, newest_first=True)

        body = request.document["getTransactionListRequest"]
        assert list(body) == ["merchantAuthentication", "batchId", "sorting", "paging"]
        assert body["batchId"] == "1000001"
        assert body["sorting"] == {"orderBy": "submitTimeUTC", "orderDescending": True}
        assert body["paging"] == {"limit": 50, "offset": 3}

    @pytest.mark.parametrize(("limit", "offset"), [(0, 1), (1001, 1), (10, 0), (10, 100_001)])
    def test_paging_outside_the_schema_is_refused(self, limit: int, offset: int) -> None:
        with pytest.raises(ValueError, match="paging"):
            wire.build_transaction_list_request(CREDENTIALS, "1", limit=limit, offset=offset, newest_first=False)

    def test_a_batch_id_must_be_digits(self) -> None:
        with pytest.raises(ValueError, match="digits"):
            wire.build_transaction_list_request(CREDENTIALS, "b-1", limit=10, offset=1, newest_first=False)


class TestSettledRequestsAgainstTheOfficialSchema:
    @pytest.mark.parametrize(
        "document",
        [
            wire.build_settled_batch_list_request(
                CREDENTIALS, first_settlement=NOW - timedelta(days=31), last_settlement=NOW
            ).document,
            wire.build_transaction_list_request(
                CREDENTIALS, "1000001", limit=1000, offset=1, newest_first=True
            ).document,
            wire.build_transaction_list_request(
                CREDENTIALS, "42", limit=1, offset=100_000, newest_first=False
            ).document,
        ],
        ids=["settled-batch-list", "transaction-list-newest-first", "transaction-list-oldest-first"],
    )
    def test_request_is_valid_against_the_xsd(self, document: dict[str, Any]) -> None:
        validate(document)

    def test_the_validator_rejects_the_dates_out_of_order(self) -> None:
        import xmlschema

        document = wire.build_settled_batch_list_request(
            CREDENTIALS, first_settlement=NOW - timedelta(days=1), last_settlement=NOW
        ).document
        body = document["getSettledBatchListRequest"]
        body["includeStatistics"] = body.pop("includeStatistics")  # moved last

        with pytest.raises(xmlschema.XMLSchemaValidationError):
            validate(document)


class TestReadSettledHistory:
    def test_batches_become_domain_records(self) -> None:
        batches = wire.read_settled_batch_list(
            {"batchList": [batch("7", "2026-03-09T02:00:00Z"), batch("8", "2026-03-10T02:00:00.5", paymentMethod=None)]}
        )

        assert [(b.batch_id, b.settled_at, b.settlement_state) for b in batches] == [
            ("7", datetime(2026, 3, 9, 2, tzinfo=UTC), "settledSuccessfully"),
            ("8", datetime(2026, 3, 10, 2, 0, 0, 500_000, tzinfo=UTC), "settledSuccessfully"),
        ]
        assert (batches[0].payment_method, batches[1].payment_method) == ("creditCard", None)

    def test_xml_shaped_and_numeric_batch_lists_are_read_too(self) -> None:
        (only,) = wire.read_settled_batch_list({"batchList": {"batch": {"batchId": 12345, "settlementState": "x"}}})

        assert (only.batch_id, only.settled_at) == ("12345", None)

    def test_no_records_is_no_batches(self) -> None:
        assert wire.read_settled_batch_list(wire.decode_body(no_records())) == []

    def test_a_batch_without_an_id_is_a_wire_format_error(self) -> None:
        with pytest.raises(wire.WireFormatError):
            wire.read_settled_batch_list({"batchList": [{"settlementState": "settledSuccessfully"}]})

    def test_transaction_rows_become_summaries_of_the_batch(self) -> None:
        document = {
            "transactions": [summary("9", transactionStatus="settledSuccessfully"), summary("8")],
            "totalNumInResultSet": "12",
        }

        page = wire.read_transaction_list(document, batch_id="7")

        assert (page.batch_id, page.total_count) == ("7", 12)
        assert [row.transaction_id for row in page.transactions] == ["9", "8"]
        first = page.transactions[0]
        assert (first.status, first.settle_amount, first.card_last4) == (
            GatewayTransactionStatus.SETTLED,
            Decimal("24.99"),
            "1111",
        )

    def test_a_page_without_a_total_has_none_not_a_guess(self) -> None:
        # totalNumInResultSet is optional: guessing it from the page stopped paging after one full page.
        page = wire.read_transaction_list({"transactions": {"transaction": [summary("1")]}}, batch_id="7")

        assert page.total_count is None


class TestSettledLookups:
    async def test_settled_batches_are_fetched_for_the_range_asked(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.body = answer(batchList=[batch("7")])

        batches = await gateway.fetch_settled_batches(first_settlement=NOW - timedelta(days=1), last_settlement=NOW)

        assert [b.batch_id for b in batches] == ["7"]
        sent = recorder.documents()[0]
        validate(sent)
        assert sent["getSettledBatchListRequest"]["firstSettlementDate"] == "2026-03-09T12:00:00Z"

    async def test_a_range_over_31_days_sends_nothing(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        with pytest.raises(ValueError, match="31 days"):
            await gateway.fetch_settled_batches(first_settlement=NOW - timedelta(days=32), last_settlement=NOW)

        assert recorder.requests == []

    async def test_batch_transactions_are_one_page(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        recorder.body = answer(transactions=[summary("3"), summary("2")], totalNumInResultSet=5)

        page = await gateway.fetch_batch_transactions("7", limit=2, offset=1, newest_first=False)

        assert ([row.transaction_id for row in page.transactions], page.total_count) == (["3", "2"], 5)
        sent = recorder.documents()[0]
        validate(sent)
        assert sent["getTransactionListRequest"]["sorting"] == {"orderBy": "submitTimeUTC", "orderDescending": False}

    async def test_an_unknown_batch_is_an_empty_page(self, gateway: AuthorizeNetGateway, recorder: Recorder) -> None:
        recorder.body = responses.api_error("E00040", "The record cannot be found.")

        page = await gateway.fetch_batch_transactions("7")

        assert (page.transactions, page.total_count) == ((), 0)

    @pytest.mark.parametrize(
        ("code", "error"),
        [
            ("E00007", GatewayConfigurationError),
            ("E00011", GatewayConfigurationError),
            ("E00001", GatewayUnavailable),
            ("E00013", GatewayError),
        ],
    )
    async def test_error_answers_raise_like_the_other_look_ups(
        self, gateway: AuthorizeNetGateway, recorder: Recorder, code: str, error: type[Exception]
    ) -> None:
        recorder.body = responses.api_error(code)

        with pytest.raises(error):
            await gateway.fetch_settled_batches(first_settlement=NOW - timedelta(days=1), last_settlement=NOW)
        with pytest.raises(error):
            await gateway.fetch_batch_transactions("7")

    async def test_a_long_search_lists_batches_in_windows_the_gateway_accepts_widened_by_a_day(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.answer = FakeSettledGateway([], {})
        start = NOW - timedelta(days=70)

        found = [row async for row in gateway.fetch_settled_transactions(submitted_after=start, settled_before=NOW)]

        assert found == []
        windows = [
            (datetime.fromisoformat(body["firstSettlementDate"]), datetime.fromisoformat(body["lastSettlementDate"]))
            for body in map(body_of, recorder.requests)
        ]
        # Widened by a day each side: the gateway may read the dates as merchant-local time.
        assert windows[0][0] == start - timedelta(days=1)
        assert windows[-1][1] == NOW + timedelta(days=1)
        assert all(first < last <= first + timedelta(days=31) for first, last in windows)
        assert all(previous[1] == following[0] for previous, following in itertools.pairwise(windows))
        for document in recorder.documents():
            validate(document)

    async def test_batches_are_searched_oldest_first_once_each_and_newest_rows_first(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        newer, older = batch("8", "2026-03-10T02:00:00Z"), batch("7", "2026-03-09T02:00:00Z")
        rows = {
            "7": [summary(str(n), submitTimeUTC=f"2026-03-08T1{n}:00:00Z") for n in (5, 4, 3)],
            "8": [summary("9", submitTimeUTC="2026-03-09T10:00:00Z")],
        }
        recorder.answer = FakeSettledGateway([newer, older, newer], rows)

        found = [
            row.transaction_id
            async for row in gateway.fetch_settled_transactions(
                submitted_after=datetime(2026, 3, 8, 13, 30, tzinfo=UTC), settled_before=NOW, page_size=2
            )
        ]

        # Row 3 was submitted before the search start: the batch's paging stops there.
        assert found == ["5", "4", "9"]
        pages = [(body["batchId"], body["paging"]["offset"]) for body in map(body_of, recorder.requests[1:])]
        assert pages == [("7", 1), ("7", 2), ("8", 1)]

    async def test_search_by_ref_id_confirms_candidates_of_the_invoice_by_their_details(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        rows = {"7": [summary("3", invoiceNumber="OTHER"), summary("2"), summary("1")]}

        def details(trans_id: str) -> bytes:
            document = details_document(transId=trans_id, transactionStatus="settledSuccessfully")
            document["transrefId"] = "att-7731-1" if trans_id == "1" else "att-7731-0"
            return responses.encode(document)

        recorder.answer = FakeSettledGateway([batch("7")], rows, details)

        found = await gateway.fetch_settled_transaction_by_ref_id(
            "att-7731-1",
            invoice_number="ORD-7731",
            submitted_after=datetime(2025, 3, 1, tzinfo=UTC),
            settled_before=NOW,
        )

        assert found is not None
        assert (found.transaction_id, found.status) == ("1", GatewayTransactionStatus.SETTLED)
        confirmed = [body_of(r)["transId"] for r in recorder.requests if method_of(r) == wire.GET_TRANSACTION_DETAILS]
        assert confirmed == ["2", "1"]

    async def test_search_by_ref_id_without_a_match_is_none(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.answer = FakeSettledGateway([batch("7")], {"7": [summary("2")]})

        found = await gateway.fetch_settled_transaction_by_ref_id(
            "no-such-ref", submitted_after=datetime(2025, 3, 1, tzinfo=UTC), settled_before=NOW
        )

        assert found is None

    async def test_search_without_an_end_looks_up_to_now(
        self, gateway: AuthorizeNetGateway, recorder: Recorder
    ) -> None:
        recorder.answer = FakeSettledGateway([], {})
        before = datetime.now(UTC)

        await gateway.fetch_settled_transaction_by_ref_id("r", submitted_after=before - timedelta(hours=1))

        (body,) = map(body_of, recorder.requests)
        assert datetime.fromisoformat(body["lastSettlementDate"]) >= before
