"""Authorize.Net's JSON wire format: request builders and response readers.

Requests are plain dicts built in **XSD sequence order**: the gateway maps JSON onto its XML schema
and answers E00003 when keys are out of order, so every builder adds keys in the order of the
schema (AnetApiSchema.xsd), and orjson keeps insertion order. Text fields are clipped to the
schema's length limits; identifiers whose truncation could merge two charges (invoiceNumber, refId)
are refused instead.

Responses are read leniently: a leading UTF-8 BOM is dropped, unknown keys are ignored, scalars may
be strings or numbers. They are read by hand from orjson's output rather than through Pydantic
models, as this runs once per charge and a few dict look-ups cost far less CPU.

Nothing here logs. `ApiRequest`'s repr names the method and refId only: the body carries the
transaction key and card data.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from pydantic import SecretStr

from payment_service.domain.money import Money, ensure_bounded, fits_minor_unit, minor_unit_digits
from payment_service.domain.payments import BillTo, CardDetails, ChargeRequest, LineItem, OpaqueData, is_ascii_digits
from payment_service.domain.transactions import (
    BatchTransactionsPage,
    SettledBatch,
    TransactionDetails,
    UnsettledTransaction,
    UnsettledTransactionsPage,
)
from payment_service.gateway.statuses import get_transaction_kind, get_transaction_status

JsonObject = dict[str, Any]

CREATE_TRANSACTION = "createTransactionRequest"
GET_TRANSACTION_DETAILS = "getTransactionDetailsRequest"
GET_UNSETTLED_TRANSACTION_LIST = "getUnsettledTransactionListRequest"
AUTHENTICATE_TEST = "authenticateTestRequest"

AUTH_CAPTURE = "authCaptureTransaction"
AUTH_ONLY = "authOnlyTransaction"
PRIOR_AUTH_CAPTURE = "priorAuthCaptureTransaction"
REFUND = "refundTransaction"
VOID = "voidTransaction"

# Length limits of the XSD (AnetApiSchema.xsd), in characters.
MAX_REF_ID = 20
MAX_INVOICE_NUMBER = 20
MAX_ORDER_DESCRIPTION = 255
MAX_LINE_ITEMS = 30  # the gateway's documented cap; the XSD itself says unbounded
MAX_LINE_ITEM_ID = 31
MAX_LINE_ITEM_NAME = 31
MAX_CUSTOMER_ID = 20
MAX_EMAIL = 255
MAX_DUPLICATE_WINDOW_S = 28800
_BILL_TO_LIMITS = (
    ("firstName", "first_name", 50),
    ("lastName", "last_name", 50),
    ("address", "address", 60),
    ("city", "city", 40),
    ("state", "state", 40),
    ("zip", "zip", 20),
    ("country", "country", 60),
)

_BOM = b"\xef\xbb\xbf"


class WireFormatError(ValueError):
    """A response body that is not a JSON object. The message never quotes the body."""


@dataclass(frozen=True, slots=True)
class Credentials:
    login_id: str
    transaction_key: SecretStr

    def to_wire(self) -> JsonObject:
        return {"name": self.login_id, "transactionKey": self.transaction_key.get_secret_value()}


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """A request document ready to send: `{method: body}`."""

    method: str
    ref_id: str | None
    document: JsonObject = field(repr=False)  # holds the transaction key and card data

    def to_json(self) -> bytes:
        return orjson.dumps(self.document)


# ---------------------------------------------------------------- formatting


def format_amount(amount: Decimal, currency: str = "USD") -> str:
    """The currency's minor-unit decimals, plain notation ("1000.00", "5000" in JPY, "1.235" in KWD).

    Never rounded: the amount the gateway records must be the one the reconciler matches.

    Raises:
        ValueError: a negative or non-finite amount, or one with more decimals than the currency has.
    """
    if not amount.is_finite() or amount < 0:
        raise ValueError("gateway amounts are finite and not negative")
    if not fits_minor_unit(amount, currency):
        raise ValueError(f"amount has more decimals than {currency} has")
    return f"{amount.quantize(Decimal(1).scaleb(-minor_unit_digits(currency))):f}"


def clip(text: str, limit: int) -> str:
    return text.strip()[:limit]


def mask_card_number(card_last4: str) -> str:
    if len(card_last4) != 4 or not is_ascii_digits(card_last4):
        raise ValueError("card_last4 must be the last four digits")
    return f"XXXX{card_last4}"


def _require_length(value: str, limit: int, name: str) -> str:
    # Truncating these could make two charges look alike to the duplicate check or the reconciler.
    if not 0 < len(value) <= limit:
        raise ValueError(f"{name} must have 1 to {limit} characters, has {len(value)}")
    return value


# ---------------------------------------------------------------- requests


def _envelope(method: str, credentials: Credentials, ref_id: str | None, body: JsonObject) -> ApiRequest:
    # ANetApiRequest: merchantAuthentication, clientId, refId, then the method's own elements.
    document: JsonObject = {"merchantAuthentication": credentials.to_wire()}
    if ref_id is not None:
        document["refId"] = _require_length(ref_id, MAX_REF_ID, "refId")
    document.update(body)
    return ApiRequest(method, ref_id, {method: document})


def build_create_transaction(credentials: Credentials, transaction: JsonObject, *, ref_id: str | None) -> ApiRequest:
    return _envelope(CREATE_TRANSACTION, credentials, ref_id, {"transactionRequest": transaction})


def build_charge_transaction(request: ChargeRequest, *, transaction_type: str) -> JsonObject:
    """The transactionRequest of an authCapture or authOnly, children in transactionRequestType order."""
    currency = request.amount.currency
    # currencyCode always: without it the gateway charges the amount in the account's own currency.
    transaction: JsonObject = {
        "transactionType": transaction_type,
        "amount": format_amount(request.amount.amount, currency),
        "currencyCode": currency,
        "payment": build_payment(request.payment_method),
    }
    order: JsonObject = {"invoiceNumber": _require_length(request.invoice_number, MAX_INVOICE_NUMBER, "invoiceNumber")}
    if request.description:
        order["description"] = clip(request.description, MAX_ORDER_DESCRIPTION)
    transaction["order"] = order
    if request.line_items:
        transaction["lineItems"] = {"lineItem": build_line_items(request.line_items, currency)}
    if request.tax_amount is not None:
        transaction["tax"] = {"amount": format_amount(request.tax_amount, currency)}
    if request.shipping_amount is not None:
        transaction["shipping"] = {"amount": format_amount(request.shipping_amount, currency)}
    customer: JsonObject = {}
    if request.customer_id:
        customer["id"] = clip(request.customer_id, MAX_CUSTOMER_ID)
    if request.customer_email:
        customer["email"] = clip(request.customer_email, MAX_EMAIL)
    if customer:
        transaction["customer"] = customer
    if request.bill_to is not None:
        transaction["billTo"] = build_bill_to(request.bill_to)
    transaction["transactionSettings"] = build_settings(request.duplicate_window_s)
    return transaction


def build_payment(method: CardDetails | OpaqueData) -> JsonObject:
    if isinstance(method, OpaqueData):
        return {"opaqueData": {"dataDescriptor": method.descriptor, "dataValue": method.value.get_secret_value()}}
    card: JsonObject = {
        "cardNumber": method.number.get_secret_value(),
        "expirationDate": f"{method.expiration_year:04d}-{method.expiration_month:02d}",
    }
    if method.cvv is not None:
        card["cardCode"] = method.cvv.get_secret_value()
    return {"creditCard": card}


def build_line_items(items: Sequence[LineItem], currency: str = "USD") -> list[JsonObject]:
    """Line items within the gateway's limits; beyond 30, the rest fold into one summary line.

    The folded line has quantity 1 and the rest's total as its price, so the lines still add up.
    """
    if len(items) <= MAX_LINE_ITEMS:
        return [_line_item(index, item, currency) for index, item in enumerate(items, start=1)]
    kept, rest = items[: MAX_LINE_ITEMS - 1], items[MAX_LINE_ITEMS - 1 :]
    lines = [_line_item(index, item, currency) for index, item in enumerate(kept, start=1)]
    rest_total = sum((item.unit_price * item.quantity for item in rest), Decimal(0))
    lines.append(
        {
            "itemId": "more",
            "name": clip(f"{len(rest)} more items", MAX_LINE_ITEM_NAME),
            "quantity": "1",
            "unitPrice": format_amount(rest_total, currency),
        }
    )
    return lines


def _line_item(index: int, item: LineItem, currency: str) -> JsonObject:
    # itemId and name need at least one character.
    item_id = clip(item.item_id, MAX_LINE_ITEM_ID) or str(index)
    return {
        "itemId": item_id,
        "name": clip(item.name, MAX_LINE_ITEM_NAME) or item_id,
        "quantity": str(item.quantity),
        "unitPrice": format_amount(item.unit_price, currency),
    }


def build_bill_to(bill_to: BillTo) -> JsonObject:
    address: JsonObject = {}
    for wire_name, attribute, limit in _BILL_TO_LIMITS:
        if value := clip(getattr(bill_to, attribute), limit):
            address[wire_name] = value
    return address


def build_settings(duplicate_window_s: int) -> JsonObject:
    # An explicit window: the gateway then returns the original transId with reason 11 (NOTES §8).
    window_s = min(max(duplicate_window_s, 0), MAX_DUPLICATE_WINDOW_S)
    return {"setting": [{"settingName": "duplicateWindow", "settingValue": str(window_s)}]}


def build_capture_transaction(transaction_id: str, amount: Money | None) -> JsonObject:
    transaction: JsonObject = {"transactionType": PRIOR_AUTH_CAPTURE}
    if amount is not None:
        transaction["amount"] = format_amount(amount.amount, amount.currency)
    transaction["refTransId"] = _transaction_id(transaction_id)
    return transaction


def build_refund_transaction(
    transaction_id: str,
    amount: Money,
    *,
    card_last4: str,
    invoice_number: str | None,
    duplicate_window_s: int,
) -> JsonObject:
    # A refund names the card by its last four digits and "XXXX" as expiry, never the full card.
    transaction: JsonObject = {
        "transactionType": REFUND,
        "amount": format_amount(amount.amount, amount.currency),
        "payment": {"creditCard": {"cardNumber": mask_card_number(card_last4), "expirationDate": "XXXX"}},
        "refTransId": _transaction_id(transaction_id),
    }
    if invoice_number is not None:
        transaction["order"] = {"invoiceNumber": _require_length(invoice_number, MAX_INVOICE_NUMBER, "invoiceNumber")}
    transaction["transactionSettings"] = build_settings(duplicate_window_s)
    return transaction


def build_void_transaction(transaction_id: str) -> JsonObject:
    return {"transactionType": VOID, "refTransId": _transaction_id(transaction_id)}


def build_transaction_details_request(credentials: Credentials, transaction_id: str) -> ApiRequest:
    return _envelope(GET_TRANSACTION_DETAILS, credentials, None, {"transId": _transaction_id(transaction_id)})


def build_unsettled_list_request(
    credentials: Credentials, *, limit: int, offset: int, newest_first: bool
) -> ApiRequest:
    if not 1 <= limit <= 1000 or not 1 <= offset <= 100000:
        raise ValueError("paging limit must be 1 to 1000 and offset (a page number) 1 to 100000")
    body: JsonObject = {
        "sorting": {"orderBy": "submitTimeUTC", "orderDescending": newest_first},
        "paging": {"limit": limit, "offset": offset},
    }
    return _envelope(GET_UNSETTLED_TRANSACTION_LIST, credentials, None, body)


def build_authenticate_test_request(credentials: Credentials) -> ApiRequest:
    return _envelope(AUTHENTICATE_TEST, credentials, None, {})


def _transaction_id(transaction_id: str) -> str:
    if not is_ascii_digits(transaction_id):
        raise ValueError("gateway transaction ids are digits")
    return transaction_id


# ---------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class ApiMessage:
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class ApiResult:
    """The top-level `messages` of every answer, and the echoed refId."""

    result_code: str  # "Ok" or "Error"
    messages: tuple[ApiMessage, ...]
    ref_id: str | None = None

    @property
    def is_ok(self) -> bool:
        return self.result_code == "Ok"

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(message.code for message in self.messages)


@dataclass(frozen=True, slots=True)
class TransactionResponse:
    """`transactionResponse`: no card data beyond the masked account number."""

    response_code: str | None = None
    auth_code: str | None = None
    avs_result_code: str | None = None
    cvv_result_code: str | None = None
    trans_id: str | None = None
    ref_trans_id: str | None = None
    account_number: str | None = None
    account_type: str | None = None
    messages: tuple[ApiMessage, ...] = ()  # approvals and holds: code + description
    errors: tuple[ApiMessage, ...] = ()  # declines and errors: errorCode + errorText


@dataclass(frozen=True, slots=True)
class CreateTransactionResponse:
    result: ApiResult
    transaction: TransactionResponse | None


def decode_body(content: bytes) -> JsonObject:
    """Parse an answer; the gateway prefixes its JSON with a UTF-8 BOM.

    Raises:
        WireFormatError: not a JSON object.
    """
    if content.startswith(_BOM):
        content = content[3:]
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise WireFormatError("response body is not JSON") from exc
    if not isinstance(document, dict):
        raise WireFormatError("response body is not a JSON object")
    # Answers are unwrapped (`{"messages": …}`); accept `{"xResponse": {…}}` too.
    if "messages" not in document and len(document) == 1:
        (inner,) = document.values()
        if isinstance(inner, dict):
            return inner
    return document


def read_result(document: Mapping[str, Any]) -> ApiResult:
    messages = document.get("messages")
    if not isinstance(messages, dict):
        raise WireFormatError("response has no messages")
    entries = tuple(
        ApiMessage(_text(entry, "code") or "", _text(entry, "text") or "")
        for entry in _objects(messages.get("message"))
    )
    return ApiResult(_text(messages, "resultCode") or "", entries, _text(document, "refId"))


def read_create_transaction(document: Mapping[str, Any]) -> CreateTransactionResponse:
    result = read_result(document)
    raw = document.get("transactionResponse")
    if not isinstance(raw, dict):
        return CreateTransactionResponse(result, None)
    transaction = TransactionResponse(
        response_code=_text(raw, "responseCode"),
        auth_code=_text(raw, "authCode"),
        avs_result_code=_text(raw, "avsResultCode"),
        cvv_result_code=_text(raw, "cvvResultCode"),
        trans_id=_text(raw, "transId"),
        ref_trans_id=_text(raw, "refTransID"),
        account_number=_text(raw, "accountNumber"),
        account_type=_text(raw, "accountType"),
        messages=_messages(raw.get("messages"), "message", "code", "description"),
        errors=_messages(raw.get("errors"), "error", "errorCode", "errorText"),
    )
    return CreateTransactionResponse(result, transaction)


def read_transaction_details(document: Mapping[str, Any]) -> TransactionDetails:
    raw = document.get("transaction")
    if not isinstance(raw, dict):
        raise WireFormatError("transaction details answer has no transaction")
    gateway_status = _text(raw, "transactionStatus") or ""
    order = raw.get("order")
    payment = raw.get("payment")
    card = payment.get("creditCard") if isinstance(payment, dict) else None
    batch = raw.get("batch")
    customer = raw.get("customer")
    return TransactionDetails(
        transaction_id=_required(raw, "transId"),
        kind=get_transaction_kind(_text(raw, "transactionType") or ""),
        status=get_transaction_status(gateway_status),
        gateway_status=gateway_status,
        submitted_at=_timestamp(_required(raw, "submitTimeUTC")),
        response_code=_text(raw, "responseCode") or "",
        reason_code=_text(raw, "responseReasonCode") or "",
        reason_description=_text(raw, "responseReasonDescription") or "",
        auth_amount=_decimal(raw, "authAmount") or Decimal(0),
        settle_amount=_decimal(raw, "settleAmount") or Decimal(0),
        ref_id=_text(document, "transrefId"),
        ref_transaction_id=_text(raw, "refTransId"),
        requested_amount=_decimal(raw, "requestedAmount"),
        invoice_number=_text(order, "invoiceNumber") if isinstance(order, dict) else None,
        auth_code=_text(raw, "authCode"),
        avs_result=_text(raw, "AVSResponse"),
        cvv_result=_text(raw, "cardCodeResponse"),
        account_number=_text(card, "cardNumber") if isinstance(card, dict) else None,
        account_type=_text(card, "cardType") if isinstance(card, dict) else None,
        batch_id=_text(batch, "batchId") if isinstance(batch, dict) else None,
        settled_at=_optional_timestamp(batch, "settlementTimeUTC") if isinstance(batch, dict) else None,
        customer_id=_text(customer, "id") if isinstance(customer, dict) else None,
        description=_text(order, "description") if isinstance(order, dict) else None,
    )


def read_unsettled_list(document: Mapping[str, Any]) -> UnsettledTransactionsPage:
    rows = tuple(_unsettled(raw) for raw in _objects(document.get("transactions"), "transaction"))
    return UnsettledTransactionsPage(rows, _total(document))


def _unsettled(raw: Mapping[str, Any]) -> UnsettledTransaction:
    gateway_status = _text(raw, "transactionStatus") or ""
    return UnsettledTransaction(
        transaction_id=_required(raw, "transId"),
        status=get_transaction_status(gateway_status),
        gateway_status=gateway_status,
        submitted_at=_timestamp(_required(raw, "submitTimeUTC")),
        settle_amount=_decimal(raw, "settleAmount") or Decimal(0),
        account_number=_text(raw, "accountNumber") or "",
        account_type=_text(raw, "accountType") or "",
        invoice_number=_text(raw, "invoiceNumber"),
        first_name=_text(raw, "firstName"),
        last_name=_text(raw, "lastName"),
    )


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    """A scalar as text; JSON answers use strings, but numbers and booleans occur too. "" reads as None."""
    value = obj.get(key)
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _required(obj: Mapping[str, Any], key: str) -> str:
    value = _text(obj, key)
    if value is None:
        raise WireFormatError(f"answer lacks {key}")
    return value


def _decimal(obj: Mapping[str, Any], key: str) -> Decimal | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        # Numbers go through str so that a float never becomes a binary-fraction Decimal.
        return ensure_bounded(Decimal(value if isinstance(value, str) else str(value)))
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise WireFormatError(f"{key} is not a bounded decimal") from exc


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WireFormatError("timestamp is not ISO 8601") from exc
    # The *UTC fields come without an offset from the live gateway.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _optional_timestamp(obj: Mapping[str, Any], key: str) -> datetime | None:
    text = _text(obj, key)
    return _timestamp(text) if text else None


def _objects(value: Any, wrapper: str | None = None) -> list[Mapping[str, Any]]:
    """The objects of a repeated element: a list, a single object, or (XML-shaped) `{wrapper: […]}`."""
    if wrapper is not None and isinstance(value, dict) and wrapper in value:
        value = value[wrapper]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [entry for entry in value if isinstance(entry, dict)]
    return []


def _messages(value: Any, wrapper: str, code_key: str, text_key: str) -> tuple[ApiMessage, ...]:
    # JSON flattens these arrays (`"errors": [{…}]`), XML-shaped JSON keeps `{"error": […]}`.
    return tuple(
        ApiMessage(_text(entry, code_key) or "", _text(entry, text_key) or "") for entry in _objects(value, wrapper)
    )


# ---------------------------------------------------------------- settled history
# getSettledBatchList lists the batches settled in a date range, getTransactionList the transactions
# of one batch (the same summary rows as the unsettled list). Appended as its own section; the
# helpers above (`_envelope`, `_unsettled`, `_objects` …) serve it unchanged.

GET_SETTLED_BATCH_LIST = "getSettledBatchListRequest"
GET_TRANSACTION_LIST = "getTransactionListRequest"
MAX_SETTLEMENT_RANGE = timedelta(days=31)  # the gateway refuses wider firstSettlementDate..lastSettlementDate


def build_settled_batch_list_request(
    credentials: Credentials, *, first_settlement: datetime, last_settlement: datetime
) -> ApiRequest:
    """Batches settled from `first_settlement` to `last_settlement` (aware), without statistics.

    Both dates are always sent, in UTC with an explicit `Z`: the gateway refuses one without the
    other, and without either it lists only the last 24 hours.

    Raises:
        ValueError: a naive date, a reversed range, or a range over 31 days.
    """
    first = _whole_second(first_settlement, "first_settlement")
    last = _whole_second(last_settlement, "last_settlement", round_up=True)
    if last < first:
        raise ValueError("last_settlement is before first_settlement")
    if last - first > MAX_SETTLEMENT_RANGE:
        raise ValueError("the gateway lists settled batches for at most 31 days at a time")
    body: JsonObject = {
        "includeStatistics": False,
        "firstSettlementDate": _format_timestamp(first),
        "lastSettlementDate": _format_timestamp(last),
    }
    return _envelope(GET_SETTLED_BATCH_LIST, credentials, None, body)


def build_transaction_list_request(
    credentials: Credentials, batch_id: str, *, limit: int, offset: int, newest_first: bool
) -> ApiRequest:
    """One page of a settled batch's transactions, sorted by submit time (batchId, sorting, paging)."""
    if not 1 <= limit <= 1000 or not 1 <= offset <= 100000:
        raise ValueError("paging limit must be 1 to 1000 and offset (a page number) 1 to 100000")
    if not is_ascii_digits(batch_id):
        raise ValueError("gateway batch ids are digits")
    body: JsonObject = {
        "batchId": batch_id,
        "sorting": {"orderBy": "submitTimeUTC", "orderDescending": newest_first},
        "paging": {"limit": limit, "offset": offset},
    }
    return _envelope(GET_TRANSACTION_LIST, credentials, None, body)


def read_settled_batch_list(document: Mapping[str, Any]) -> list[SettledBatch]:
    """The batches of an answer; none (I00004 "No records found.") is an empty list."""
    return [_settled_batch(raw) for raw in _objects(document.get("batchList"), "batch")]


def read_transaction_list(document: Mapping[str, Any], *, batch_id: str) -> BatchTransactionsPage:
    rows = tuple(_unsettled(raw) for raw in _objects(document.get("transactions"), "transaction"))
    return BatchTransactionsPage(batch_id, rows, _total(document))


def _total(document: Mapping[str, Any]) -> int | None:
    # Optional in the XSD: None when absent, never guessed from the page (paging stops at a short page).
    total = _text(document, "totalNumInResultSet")
    return int(total) if total and total.isdigit() else None


def _settled_batch(raw: Mapping[str, Any]) -> SettledBatch:
    return SettledBatch(
        batch_id=_required(raw, "batchId"),
        settled_at=_optional_timestamp(raw, "settlementTimeUTC"),
        settlement_state=_text(raw, "settlementState") or "",
        payment_method=_text(raw, "paymentMethod"),
    )


def _whole_second(moment: datetime, name: str, *, round_up: bool = False) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    moment = moment.astimezone(UTC)
    whole = moment.replace(microsecond=0)
    # Rounded outwards, so the range sent still covers the one asked for.
    return whole + timedelta(seconds=1) if round_up and whole != moment else whole


def _format_timestamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"
