"""The async Authorize.Net client: charges, captures, refunds, voids, and the reporting look-ups.

Failure semantics, the contract the pay flow and the reconciler rely on:
* Nothing sent (connect error, connect or pool time-out): `GatewayUnavailable`, retriable.
* Sent, but no answer read (read time-out, reset, protocol error, non-200, undecodable body):
  a transaction call returns a `ChargeOutcome` of kind `UNKNOWN`; a read-only call raises
  `GatewayUnavailable`, as repeating a look-up is safe.
* Every answer to a transaction is a `ChargeOutcome` (see `outcomes.py`), including credentials
  the gateway rejects (`CONFIGURATION_ERROR`). Read-only calls raise `GatewayConfigurationError`
  for those, and `GatewayError` for other error answers.
* Nothing is retried here: after a request may have reached the gateway, only reconciliation may
  decide (a second send could charge twice).

Bodies are never logged, as they carry the transaction key and card data; log fields name the
operation, refId, invoiceNumber, amount, card last four and the gateway's codes.

The HTTP client is aiohttp, not the httpx STYLE.md names: measured on this project's 2-core machine,
a request cost about 0.65-0.70 ms of CPU through httpx and 0.10-0.15 ms through aiohttp, and the pay
flow makes five of them (`bench/pay_flow.py`). What aiohttp raises is translated in `_exchange` only.
"""

import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final, TypeVar, assert_never

import aiohttp
import structlog
from opentelemetry.trace import SpanKind

from payment_service import tracing
from payment_service.domain.charge_identity import echoed_ref_ids
from payment_service.domain.errors import (
    ChargeRequestInvalid,
    GatewayConfigurationError,
    GatewayError,
    GatewayUnavailable,
)
from payment_service.domain.money import Money
from payment_service.domain.payments import CardDetails, ChargeOutcome, ChargeOutcomeKind, ChargeRequest
from payment_service.domain.transactions import (
    BatchTransactionsPage,
    SettledBatch,
    TransactionDetails,
    TransactionSummary,
    UnsettledTransactionsPage,
)
from payment_service.gateway import wire
from payment_service.gateway.outcomes import (
    NO_ANSWER,
    NOT_FOUND_CODE,
    classify_transaction,
    is_configuration_error,
    is_try_again,
)
from payment_service.settings import GatewaySettings

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}
# Shorter than common server idle time-outs (uvicorn: 5 s), so a pooled connection is not reused
# just as the server closes it: that race would turn a request that never arrived into UNKNOWN.
_KEEPALIVE_EXPIRY_S: Final = 4.0
# Settled batches are listed 29 days a call (the gateway allows 31, and the dates are rounded outwards).
# Whether the gateway reads the dates as UTC or merchant-local, with a merchant-local daily cut-off, is
# not documented: each side of the range is widened by a day, which covers any time zone and the
# gateway's clock running ahead of ours; rows are still filtered by their own submitTimeUTC.
_SETTLEMENT_WINDOW: Final = timedelta(days=29)
_SETTLEMENT_DATE_SLACK: Final = timedelta(days=1)


def is_last_page(rows: Sequence[object], page_size: int) -> bool:
    """Whether a page of a list ends it: a short page.

    `totalNumInResultSet` is optional in the XSD and moves while transactions arrive, so only a page
    shorter than asked for ends the paging (at worst one extra, empty page is read).
    """
    return len(rows) < page_size


def build_http_client(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The process's HTTP session for the gateway; the caller owns it and closes it (`close`).

    Call from a running event loop. `connect` bounds the wait for a pooled connection plus the
    connect itself (nothing sent yet); `sock_read` bounds each wait for the answer.
    """
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=settings.connect_timeout_s,
        sock_connect=settings.connect_timeout_s,
        sock_read=settings.read_timeout_s,
    )
    connector = aiohttp.TCPConnector(limit=settings.max_connections, keepalive_timeout=_KEEPALIVE_EXPIRY_S)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=_HEADERS, raise_for_status=False)


class _NoAnswer(Exception):
    """The request may have reached the gateway, but no usable answer was read."""


@dataclass(frozen=True, slots=True)
class ClockSkew:
    """The gateway's clock minus ours, from the HTTP `Date` header of one of its answers.

    `Date` has whole seconds and is stamped before the answer travels back, so `skew_s` reads up to a
    second plus the network's delay behind the truth: a lagging gateway is never underestimated.
    """

    skew_s: float
    measured_at: datetime  # our clock, aware UTC, when the answer was read


def read_clock_skew(date_header: str | None, *, received_at: datetime) -> ClockSkew | None:
    """The skew a `Date` header gives against `received_at`; None when absent or unreadable."""
    if not date_header:
        return None
    try:
        gateway_now = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if gateway_now.tzinfo is None:  # "-0000": UTC by RFC 5322, though its offset is unknown
        gateway_now = gateway_now.replace(tzinfo=UTC)
    return ClockSkew((gateway_now - received_at).total_seconds(), received_at)


class AuthorizeNetGateway:
    def __init__(self, client: aiohttp.ClientSession, settings: GatewaySettings) -> None:
        self._client = client
        self._url = settings.url
        self._credentials = wire.Credentials(settings.login_id, settings.transaction_key)
        self._duplicate_window_s = settings.duplicate_window_s
        # The most recent reading of the gateway's clock (every answer's `Date` header, as the live API's web
        # servers send it); None until one carried it. The reconcilers widen their searches by it.
        self.clock_skew: ClockSkew | None = None

    # ------------------------------------------------------------ transactions

    async def charge(self, request: ChargeRequest) -> ChargeOutcome:
        """Authorise and capture (`authCaptureTransaction`). Never retried; see the module docstring.

        Raises:
            GatewayUnavailable: nothing was sent.
            GatewayConfigurationError: the endpoint is not a usable URL (nothing was sent).
            ChargeRequestInvalid: the request cannot be built (nothing was sent): an empty or over-long
                invoice_number or ref_id, a negative amount, more decimals than the currency has.
        """
        return await self._charge(request, wire.AUTH_CAPTURE, "charge")

    async def authorize(self, request: ChargeRequest) -> ChargeOutcome:
        """Authorise only (`authOnlyTransaction`); `capture` it later. Raises as `charge`."""
        return await self._charge(request, wire.AUTH_ONLY, "authorize")

    async def capture(
        self, transaction_id: str, amount: Money | None = None, *, ref_id: str | None = None
    ) -> ChargeOutcome:
        """Capture an authorisation (`priorAuthCaptureTransaction`); no amount captures all of it."""
        transaction = wire.build_capture_transaction(transaction_id, amount)
        fields = {"operation": "capture", "ref_transaction_id": transaction_id, "ref_id": ref_id}
        if amount is not None:
            fields["amount"] = str(amount.amount)
        return await self._transact(
            wire.build_create_transaction(self._credentials, transaction, ref_id=ref_id), fields
        )

    async def refund(
        self,
        transaction_id: str,
        amount: Money,
        *,
        card_last4: str,
        ref_id: str | None = None,
        invoice_number: str | None = None,
    ) -> ChargeOutcome:
        """Refund a **settled** transaction (`refundTransaction`); unsettled ones are voided instead.

        The card is named by its last four digits only. Refunds fall under the duplicate check
        too: two equal partial refunds within the window need different invoice numbers.
        """
        transaction = wire.build_refund_transaction(
            transaction_id,
            amount,
            card_last4=card_last4,
            invoice_number=invoice_number,
            duplicate_window_s=self._duplicate_window_s,
        )
        fields = {
            "operation": "refund",
            "ref_transaction_id": transaction_id,
            "amount": str(amount.amount),
            "card_last4": card_last4,
            "ref_id": ref_id,
            "invoice_number": invoice_number,
        }
        return await self._transact(
            wire.build_create_transaction(self._credentials, transaction, ref_id=ref_id), fields
        )

    async def void(self, transaction_id: str, *, ref_id: str | None = None) -> ChargeOutcome:
        """Void an unsettled transaction (`voidTransaction`)."""
        transaction = wire.build_void_transaction(transaction_id)
        fields = {"operation": "void", "ref_transaction_id": transaction_id, "ref_id": ref_id}
        return await self._transact(
            wire.build_create_transaction(self._credentials, transaction, ref_id=ref_id), fields
        )

    async def _charge(self, request: ChargeRequest, transaction_type: str, operation: str) -> ChargeOutcome:
        try:
            transaction = wire.build_charge_transaction(request, transaction_type=transaction_type)
            api_request = wire.build_create_transaction(self._credentials, transaction, ref_id=request.ref_id)
        except ValueError as exc:  # before any I/O: nothing was sent
            raise ChargeRequestInvalid(f"the charge request cannot be built: {exc}") from exc
        method = request.payment_method
        fields = {
            "operation": operation,
            "ref_id": request.ref_id,
            "invoice_number": request.invoice_number,
            "amount": str(request.amount.amount),
            "card_last4": method.last4 if isinstance(method, CardDetails) else None,
        }
        return await self._transact(api_request, fields)

    async def _transact(self, api_request: wire.ApiRequest, fields: dict[str, Any]) -> ChargeOutcome:
        started = time.perf_counter()
        with tracing.span(f"authorize.net {fields['operation']}", kind=SpanKind.CLIENT) as span:
            try:
                document = await self._exchange(api_request)
                outcome = classify_transaction(wire.read_create_transaction(document))
            except (_NoAnswer, wire.WireFormatError) as exc:
                log.warning("gateway.outcome_unknown", reason=str(exc), elapsed_ms=_elapsed_ms(started), **fields)
                tracing.annotate(span, {"payment.gateway.outcome": ChargeOutcomeKind.UNKNOWN.value})
                return ChargeOutcome(ChargeOutcomeKind.UNKNOWN, NO_ANSWER)
            _log_outcome(outcome, elapsed_ms=_elapsed_ms(started), **fields)
            if span is not None:  # tracing on: the attributes are built only then
                tracing.annotate(span, _span_attributes(outcome))
        return outcome

    # ------------------------------------------------------------ look-ups

    async def fetch_transaction_details(self, transaction_id: str) -> TransactionDetails | None:
        """The gateway's record of one transaction, or None when it has none (E00040).

        Its `ref_id` is the refId sent with the transaction (`transrefId`, optional: see `charge_identity`).

        Raises:
            GatewayUnavailable: no answer (retriable).
            GatewayConfigurationError: credentials rejected, or the Transaction Details API is off (E00011).
            GatewayError: any other error answer.
        """
        result, document = await self._query(
            wire.build_transaction_details_request(self._credentials, transaction_id), tolerated=NOT_FOUND_CODE
        )
        if not result.is_ok:
            return None
        return self._read(wire.read_transaction_details, document)

    async def fetch_unsettled_transactions(
        self, limit: int = 100, offset: int = 1, *, newest_first: bool = True
    ) -> UnsettledTransactionsPage:
        """One page of unsettled transactions, sorted by submit time.

        `offset` is a page number (1-based, as the gateway counts it), `limit` the page size (1 to 1000).
        Raises as `fetch_transaction_details`.
        """
        request = wire.build_unsettled_list_request(
            self._credentials, limit=limit, offset=offset, newest_first=newest_first
        )
        _, document = await self._query(request)
        return self._read(wire.read_unsettled_list, document)

    async def fetch_unsettled_transaction_by_ref_id(
        self,
        ref_id: str,
        *,
        invoice_number: str | None = None,
        submitted_after: datetime | None = None,
        page_size: int = 100,
    ) -> TransactionDetails | None:
        """The unsettled transaction sent with `ref_id`, or None.

        The gateway has no look-up by refId, so this pages the unsettled list newest first, stops
        at rows submitted before `submitted_after`, keeps rows of `invoice_number` (when given),
        and confirms each candidate through its details (`order.description` or `transrefId`). Give the invoice number:
        without it every row costs a details call. Raises as `fetch_transaction_details`.
        """
        for offset in range(1, 100_001):
            page = await self.fetch_unsettled_transactions(page_size, offset, newest_first=True)
            for row in page.transactions:
                if submitted_after is not None and row.submitted_at < submitted_after:
                    return None
                if invoice_number is not None and row.invoice_number != invoice_number:
                    continue
                details = await self.fetch_transaction_details(row.transaction_id)
                if details is not None and ref_id in echoed_ref_ids(details):
                    return details
            if is_last_page(page.transactions, page_size):
                return None
        return None

    # ------------------------------------------------------------ settled history

    async def fetch_settled_batches(
        self, *, first_settlement: datetime, last_settlement: datetime
    ) -> list[SettledBatch]:
        """The batches settled from `first_settlement` to `last_settlement` (`getSettledBatchList`).

        None settled is an empty list. Raises as `fetch_transaction_details`, and:

        Raises:
            ValueError: a naive datetime, a reversed range, or one over 31 days (nothing is sent).
        """
        request = wire.build_settled_batch_list_request(
            self._credentials, first_settlement=first_settlement, last_settlement=last_settlement
        )
        _, document = await self._query(request)
        return self._read(wire.read_settled_batch_list, document)

    async def fetch_batch_transactions(
        self, batch_id: str, *, limit: int = 100, offset: int = 1, newest_first: bool = True
    ) -> BatchTransactionsPage:
        """One page of a settled batch's transactions (`getTransactionList`), sorted by submit time.

        `offset` is a page number (1-based), `limit` the page size (1 to 1000). A batch the gateway
        does not know (E00040) is an empty page. Raises as `fetch_transaction_details`.
        """
        request = wire.build_transaction_list_request(
            self._credentials, batch_id, limit=limit, offset=offset, newest_first=newest_first
        )
        result, document = await self._query(request, tolerated=NOT_FOUND_CODE)
        if not result.is_ok:
            return BatchTransactionsPage(batch_id, (), 0)
        return self._read(lambda found: wire.read_transaction_list(found, batch_id=batch_id), document)

    async def fetch_settled_transactions(
        self, *, submitted_after: datetime, settled_before: datetime | None = None, page_size: int = 100
    ) -> AsyncGenerator[TransactionSummary, None]:
        """The rows submitted after `submitted_after` in batches settled since then, lazily.

        A charge settles in the first batch closed after it was sent (a later one when it was held),
        so batches come oldest first, listed 29 days a call from a day before `submitted_after` to a
        day after `settled_before` (default: now). Each batch is paged newest first and left at its first row
        submitted before `submitted_after`. Close the iterator when leaving early
        (`contextlib.aclosing`). Raises as `fetch_transaction_details`.
        """
        end = (settled_before if settled_before is not None else datetime.now(UTC)) + _SETTLEMENT_DATE_SLACK
        start = submitted_after - _SETTLEMENT_DATE_SLACK
        seen: set[str] = set()  # window edges are inclusive: a batch on one is listed twice
        while True:
            window_end = min(start + _SETTLEMENT_WINDOW, max(end, start))
            batches = await self.fetch_settled_batches(first_settlement=start, last_settlement=window_end)
            for batch in sorted(batches, key=lambda found: found.settled_at or window_end):
                if batch.batch_id in seen:
                    continue
                seen.add(batch.batch_id)
                async with aclosing(self._batch_rows(batch.batch_id, submitted_after, page_size)) as rows:
                    async for row in rows:
                        yield row
            if window_end >= end:
                return
            start = window_end

    async def fetch_settled_transaction_by_ref_id(
        self,
        ref_id: str,
        *,
        invoice_number: str | None = None,
        submitted_after: datetime,
        settled_before: datetime | None = None,
        page_size: int = 100,
    ) -> TransactionDetails | None:
        """The settled transaction sent with `ref_id` after `submitted_after`, or None.

        Searches the batches settled since `submitted_after` (see `fetch_settled_transactions`),
        keeps rows of `invoice_number` (when given), and confirms each candidate through its
        details (`order.description` or `transrefId`). Give the invoice number: without it every row costs a details call.
        Raises as `fetch_transaction_details`.
        """
        rows = self.fetch_settled_transactions(
            submitted_after=submitted_after, settled_before=settled_before, page_size=page_size
        )
        async with aclosing(rows):
            async for row in rows:
                if invoice_number is not None and row.invoice_number != invoice_number:
                    continue
                details = await self.fetch_transaction_details(row.transaction_id)
                if details is not None and ref_id in echoed_ref_ids(details):
                    return details
        return None

    async def _batch_rows(
        self, batch_id: str, submitted_after: datetime, page_size: int
    ) -> AsyncGenerator[TransactionSummary, None]:
        for offset in range(1, 100_001):
            page = await self.fetch_batch_transactions(batch_id, limit=page_size, offset=offset, newest_first=True)
            for row in page.transactions:
                if row.submitted_at < submitted_after:
                    return
                yield row
            if is_last_page(page.transactions, page_size):
                return

    async def authenticate_test(self) -> bool:
        """Whether the gateway accepts our credentials (`authenticateTestRequest`), for readiness.

        Raises:
            GatewayUnavailable: no answer (retriable).
            GatewayError: an error answer other than a credentials or set-up rejection.
        """
        try:
            await self._query(wire.build_authenticate_test_request(self._credentials))
        except GatewayConfigurationError:
            return False
        return True

    async def _query(
        self, api_request: wire.ApiRequest, *, tolerated: str | None = None
    ) -> tuple[wire.ApiResult, wire.JsonObject]:
        with tracing.span(f"authorize.net {api_request.method}", kind=SpanKind.CLIENT) as span:
            try:
                document = await self._exchange(api_request)
                result = wire.read_result(document)
            except (_NoAnswer, wire.WireFormatError) as exc:
                log.warning("gateway.query_unanswered", method=api_request.method, reason=str(exc))
                raise GatewayUnavailable(f"no usable answer from the gateway to {api_request.method}") from exc
            tracing.annotate(span, {"payment.gateway.result_codes": ",".join(result.codes)})
        if result.is_ok or (tolerated is not None and tolerated in result.codes):
            return result, document
        codes = ",".join(result.codes)
        if is_configuration_error(result):
            log.error("gateway.configuration_rejected", method=api_request.method, codes=codes)
            raise GatewayConfigurationError(f"the gateway rejected our credentials or set-up ({codes})")
        if is_try_again(result):
            log.warning("gateway.query_failed", method=api_request.method, codes=codes)
            raise GatewayUnavailable(f"the gateway could not answer {api_request.method} ({codes})")
        log.error("gateway.query_failed", method=api_request.method, codes=codes)
        # Codes only: some error texts quote the offending input.
        raise GatewayError(f"the gateway answered {api_request.method} with {codes or 'an error'}")

    @staticmethod
    def _read(reader: Callable[[wire.JsonObject], _T], document: wire.JsonObject) -> _T:
        try:
            return reader(document)
        except wire.WireFormatError as exc:
            raise GatewayError(f"unexpected answer from the gateway: {exc}") from exc

    # ------------------------------------------------------------ transport

    async def _exchange(self, api_request: wire.ApiRequest) -> wire.JsonObject:
        """POST one request and decode the answer.

        Raises:
            GatewayUnavailable: the connection could not be made: nothing was sent.
            GatewayConfigurationError: the endpoint is not a usable URL.
            _NoAnswer: the request may have been sent, but no usable answer came back.
        """
        body = api_request.to_json()
        try:
            async with self._client.post(self._url, data=body, allow_redirects=False) as response:
                status = response.status
                content = await response.read()
                self._measure_clock(response.headers.get("Date"))
        except aiohttp.InvalidURL as exc:
            raise GatewayConfigurationError("the gateway endpoint is not a usable URL") from exc
        except aiohttp.NonHttpUrlClientError as exc:
            raise GatewayConfigurationError("the gateway endpoint is not a usable URL") from exc
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Refused, unresolvable, or no connection within the connect time-out: nothing was sent.
            log.warning("gateway.unreachable", method=api_request.method, error=type(exc).__name__)
            raise GatewayUnavailable("could not connect to the gateway") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Read time-out, disconnect, reset, protocol error: the gateway may have acted on it.
            raise _NoAnswer(type(exc).__name__) from exc
        if status != HTTPStatus.OK:
            raise _NoAnswer(f"HTTP {status}")
        try:
            return wire.decode_body(content)
        except wire.WireFormatError as exc:
            raise _NoAnswer(str(exc)) from exc

    def _measure_clock(self, date_header: str | None) -> None:
        reading = read_clock_skew(date_header, received_at=datetime.now(UTC))
        if reading is None:
            return
        self.clock_skew = reading


def _log_outcome(outcome: ChargeOutcome, **fields: Any) -> None:
    result = outcome.result
    fields.update(
        kind=outcome.kind.value,
        transaction_id=result.transaction_id,
        response_code=result.response_code,
        reason_code=result.reason_code,
    )
    match outcome.kind:
        case ChargeOutcomeKind.CONFIGURATION_ERROR:
            log.error("gateway.configuration_rejected", **fields)
        case ChargeOutcomeKind.UNKNOWN:
            log.warning("gateway.outcome_unknown", **fields)
        case ChargeOutcomeKind.FAILED:
            log.warning("gateway.transaction_failed", **fields)
        case ChargeOutcomeKind.DUPLICATE:
            log.warning("gateway.duplicate_reported", original_transaction_id=outcome.original_transaction_id, **fields)
        case ChargeOutcomeKind.APPROVED | ChargeOutcomeKind.DECLINED | ChargeOutcomeKind.HELD_FOR_REVIEW:
            log.info("gateway.transaction_answered", soft_decline=outcome.soft_decline, **fields)
        case _ as unreachable:
            assert_never(unreachable)


def _span_attributes(outcome: ChargeOutcome) -> dict[str, str]:
    # Identifiers and codes only: never the request, which holds card data.
    result = outcome.result
    codes = {
        "payment.gateway.transaction_id": result.transaction_id,
        "payment.gateway.response_code": result.response_code,
        "payment.gateway.reason_code": result.reason_code,
    }
    return {"payment.gateway.outcome": outcome.kind.value} | {name: value for name, value in codes.items() if value}


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
