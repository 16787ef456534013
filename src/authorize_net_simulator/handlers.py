"""One handler per supported API method: a validated, authenticated request in, a response tree out."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from authorize_net_simulator.documents import Node
from authorize_net_simulator.ledger import HELD_STATUSES, Batch, Transaction
from authorize_net_simulator.rendering import Flat, Tree
from authorize_net_simulator.responses import (
    batch_details,
    envelope,
    transaction_details,
    transaction_response,
    transaction_summary,
)
from authorize_net_simulator.state import SimulatorState
from authorize_net_simulator.transactions import SUPPORTED_TYPES, TransactionProcessor

Handler = Callable[[SimulatorState, Node, "CallContext"], Tree]

_ANET_NS: Final = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"
MAX_SETTLEMENT_RANGE: Final = timedelta(days=31)


class CallContext:
    __slots__ = ("hold_reason", "login_id", "ref_id")

    def __init__(self, *, login_id: str, ref_id: str | None, hold_reason: int | None) -> None:
        self.login_id = login_id
        self.ref_id = ref_id
        self.hold_reason = hold_reason


def authenticate_test(state: SimulatorState, request: Node, context: CallContext) -> Tree:
    return envelope("I00001", ref_id=context.ref_id)


def create_transaction(state: SimulatorState, request: Node, context: CallContext) -> Tree:
    transaction_request = _required(request, "transactionRequest")
    transaction_type = transaction_request.get_text("transactionType") or ""
    if transaction_type not in SUPPORTED_TYPES:
        # The XSD types transactionType as a plain string; the server checks it against its enum itself.
        text = (
            f"The '{_ANET_NS}:transactionType' element is invalid - The value '{transaction_type}' is invalid according to its datatype "
            f"'{_ANET_NS}:transactionTypeEnum' - The Enumeration constraint failed."
        )
        return envelope("E00003", ref_id=context.ref_id, text=text)
    outcome = TransactionProcessor(state).process(
        transaction_request, login_id=context.login_id, ref_id=context.ref_id, hold_reason=context.hold_reason
    )
    return transaction_response(outcome, ref_id=context.ref_id)


def update_held_transaction(state: SimulatorState, request: Node, context: CallContext) -> Tree:
    held = _required(request, "heldTransactionRequest")
    outcome = TransactionProcessor(state).review(
        held.get_text("refTransId") or "", approve=held.get_text("action") == "approve", login_id=context.login_id
    )
    return transaction_response(outcome, ref_id=context.ref_id)


def get_transaction_details(state: SimulatorState, request: Node, context: CallContext) -> Tree:
    if not state.settings.transaction_details_api_enabled:
        return envelope("E00011", ref_id=context.ref_id)
    transaction = state.ledger.get(request.get_text("transId") or "")
    if transaction is None:
        return envelope("E00040", ref_id=context.ref_id)
    tree = envelope("I00001", ref_id=context.ref_id)
    details = transaction_details(transaction)
    if not state.settings.send_requested_amount:
        details.pop("requestedAmount", None)
    tree["transaction"] = details
    if transaction.ref_id is not None and state.settings.send_transref_id:
        tree["transrefId"] = transaction.ref_id
    return tree


def get_unsettled_transaction_list(state: SimulatorState, request: Node, context: CallContext) -> Tree:
    if not state.settings.transaction_details_api_enabled:
        return envelope("E00011", ref_id=context.ref_id)
    state.ledger.expire_authorizations(state.clock())
    transactions = state.ledger.unsettled()
    if request.get_text("status") == "pendingApproval":
        transactions = [t for t in transactions if t.status in HELD_STATUSES]
    return _transaction_list(transactions, request, context, with_total=state.settings.send_total_num_in_result_set)


def get_transaction_list(state: SimulatorState, request: Node, context: CallContext) -> Tree:
    if not state.settings.transaction_details_api_enabled:
        return envelope("E00011", ref_id=context.ref_id)
    batch_id = request.get_text("batchId")
    batch = next((b for b in state.ledger.batches() if b.batch_id == batch_id), None)
    if batch is None:
        return envelope("E00040", ref_id=context.ref_id)
    return _transaction_list(
        _members(state, batch), request, context, with_total=state.settings.send_total_num_in_result_set
    )


def get_settled_batch_list(state: SimulatorState, request: Node, context: CallContext) -> Tree:
    if not state.settings.transaction_details_api_enabled:
        return envelope("E00011", ref_id=context.ref_id)
    window = _settlement_window(request, now=state.clock(), offset_h=state.settings.settlement_date_offset_h)
    if isinstance(window, str):
        return envelope("E00013", ref_id=context.ref_id, text=window)
    first, last = window
    batches = [batch for batch in state.ledger.batches() if first <= batch.settled_at <= last]
    if not batches:
        # The real API answers "no records" as I00004 with no batchList.
        return envelope("I00004", ref_id=context.ref_id, text="No records found.")
    tree = envelope("I00001", ref_id=context.ref_id)
    with_statistics = (request.get_text("includeStatistics") or "").strip() in ("true", "1")
    tree["batchList"] = Flat(
        "batch",
        [batch_details(batch, statistics=_members(state, batch) if with_statistics else None) for batch in batches],
    )
    return tree


def _members(state: SimulatorState, batch: Batch) -> list[Transaction]:
    return [t for t in (state.ledger.get(trans_id) for trans_id in batch.trans_ids) if t is not None]


def _settlement_window(request: Node, *, now: datetime, offset_h: int | None) -> tuple[datetime, datetime] | str:
    """The settlement range asked for, or the E00013 text explaining why it cannot be served.

    As the live API: no dates means the 24 hours ending now; the dates come together (one alone is
    refused, AuthorizeNet/sample-code-php#169); the range spans at most 31 days. A date without an
    offset is read as UTC (the live API's reading of it is undocumented); with `offset_h`, every date
    is read as wall time at that offset (a merchant-local reading), whatever offset it carries.
    """
    first_text = request.get_text("firstSettlementDate")
    last_text = request.get_text("lastSettlementDate")
    if first_text is None and last_text is None:
        return now - timedelta(hours=24), now
    if first_text is None or last_text is None:
        return "firstSettlementDate and lastSettlementDate must be given together."
    first, last = _utc(first_text, offset_h), _utc(last_text, offset_h)
    if last < first:
        return "lastSettlementDate is before firstSettlementDate."
    if last - first > MAX_SETTLEMENT_RANGE:
        return "The date range between firstSettlementDate and lastSettlementDate cannot exceed 31 days."
    return first, last


def _utc(text: str, offset_h: int | None) -> datetime:
    # The schema check already accepted it as an xs:dateTime.
    moment = datetime.fromisoformat(text.strip())
    if offset_h is not None:
        return moment.replace(tzinfo=timezone(timedelta(hours=offset_h))).astimezone(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _required(request: Node, name: str) -> Node:
    child = request.get(name)
    if child is None:  # the schema requires it; validation ran before any handler
        raise LookupError(name)
    return child


def _transaction_list(
    transactions: list[Transaction], request: Node, context: CallContext, *, with_total: bool
) -> Tree:
    sorting = request.get("sorting")
    if sorting is not None:
        descending = (sorting.get_text("orderDescending") or "").strip() in ("true", "1")
        if sorting.get_text("orderBy") == "id":
            transactions = sorted(transactions, key=lambda t: int(t.trans_id), reverse=descending)
        else:
            transactions = sorted(transactions, key=lambda t: (t.submitted_at, int(t.trans_id)), reverse=descending)
    total = len(transactions)
    paging = request.get("paging")
    if paging is not None:
        limit = int(float(paging.get_text("limit") or "1000"))
        page = int(float(paging.get_text("offset") or "1"))
        transactions = transactions[(page - 1) * limit : page * limit]
    tree = envelope("I00001", ref_id=context.ref_id)
    if transactions:
        tree["transactions"] = Flat("transaction", [transaction_summary(t) for t in transactions])
    if with_total:  # optional in the XSD
        tree["totalNumInResultSet"] = str(total)
    return tree


HANDLERS: Final[dict[str, Handler]] = {
    "authenticateTestRequest": authenticate_test,
    "createTransactionRequest": create_transaction,
    "getTransactionDetailsRequest": get_transaction_details,
    "getUnsettledTransactionListRequest": get_unsettled_transaction_list,
    "updateHeldTransactionRequest": update_held_transaction,
    "getSettledBatchListRequest": get_settled_batch_list,
    "getTransactionListRequest": get_transaction_list,
}
