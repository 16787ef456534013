"""The test surface under `/_sim/`: ledger, received requests, nonces, faults, settlement, reset.

Not part of Authorize.Net; it lets tests script the gateway and observe what it saw. Nothing here
returns card numbers, card codes or keys: the ledger holds last four digits only and the request
buffer is masked.
"""

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from authorize_net_simulator import cards
from authorize_net_simulator.faults import Fault, FaultRequest
from authorize_net_simulator.ledger import Transaction
from authorize_net_simulator.nonces import NONCE_DESCRIPTOR
from authorize_net_simulator.responses import timestamp
from authorize_net_simulator.state import SimulatorState
from authorize_net_simulator.transactions import TransactionProcessor

router = APIRouter(prefix="/_sim", tags=["simulator test surface"])


def get_state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


State = Annotated[SimulatorState, Depends(get_state)]


class LedgerEntry(BaseModel):
    transId: str  # noqa: N815 - the gateway's field names
    type: str
    status: str
    responseCode: str  # noqa: N815
    reasonCode: int  # noqa: N815
    amount: Decimal
    authAmount: Decimal  # noqa: N815
    settleAmount: Decimal  # noqa: N815
    refundedAmount: Decimal  # noqa: N815
    invoiceNumber: str | None  # noqa: N815
    description: str | None
    poNumber: str | None  # noqa: N815
    refId: str | None  # noqa: N815
    refTransId: str | None  # noqa: N815
    customerId: str | None  # noqa: N815
    lastFour: str  # noqa: N815
    accountType: str  # noqa: N815
    authCode: str  # noqa: N815
    avsResultCode: str  # noqa: N815
    cvvResultCode: str  # noqa: N815
    submitTimeUTC: str  # noqa: N815
    batchId: str | None  # noqa: N815

    @classmethod
    def of(cls, transaction: Transaction) -> "LedgerEntry":
        return cls(
            transId=transaction.trans_id,
            type=transaction.transaction_type,
            status=transaction.status.value,
            responseCode=transaction.response_code,
            reasonCode=transaction.reason_code,
            amount=transaction.requested_amount,
            authAmount=transaction.auth_amount,
            settleAmount=transaction.settle_amount,
            refundedAmount=transaction.refunded_amount,
            invoiceNumber=transaction.invoice_number,
            description=transaction.description,
            poNumber=transaction.po_number,
            refId=transaction.ref_id,
            refTransId=transaction.ref_trans_id,
            customerId=transaction.customer_id,
            lastFour=transaction.last_four,
            accountType=transaction.account_type,
            authCode=transaction.auth_code,
            avsResultCode=transaction.avs_result,
            cvvResultCode=transaction.cvv_result,
            submitTimeUTC=timestamp(transaction.submitted_at),
            batchId=transaction.batch_id,
        )


class LedgerResponse(BaseModel):
    transactions: list[LedgerEntry]


class RecordedRequestResponse(BaseModel):
    receivedAt: str  # noqa: N815
    contentType: str  # noqa: N815
    body: str


class RequestsResponse(BaseModel):
    requests: list[RecordedRequestResponse]


class NonceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cardNumber: str = Field(repr=False)  # noqa: N815 - Accept.js field names
    expirationDate: str = Field(repr=False)  # noqa: N815
    cardCode: str | None = Field(default=None, repr=False)  # noqa: N815

    def __repr__(self) -> str:
        return "NonceRequest(***)"


class NonceResponse(BaseModel):
    dataDescriptor: str  # noqa: N815
    dataValue: str  # noqa: N815


class SettleResponse(BaseModel):
    batchId: str | None  # noqa: N815
    settled: list[str]


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transId: str  # noqa: N815
    action: Literal["approve", "decline"]


class DeliveryResponse(BaseModel):
    notificationId: str  # noqa: N815
    eventType: str  # noqa: N815
    transId: str  # noqa: N815
    attempts: int
    delivered: bool
    lastStatus: int | None  # noqa: N815


class FaultsResponse(BaseModel):
    faults: list[Fault]


@router.get("/transactions")
async def list_transactions(
    state: State, invoice_number: Annotated[str | None, Query(alias="invoiceNumber")] = None
) -> LedgerResponse:
    entries = [
        LedgerEntry.of(t) for t in state.ledger.all() if invoice_number is None or t.invoice_number == invoice_number
    ]
    return LedgerResponse(transactions=entries)


@router.get("/requests")
async def list_requests(state: State, limit: Annotated[int | None, Query(ge=1)] = None) -> RequestsResponse:
    recorded = list(state.requests)
    if limit is not None:
        recorded = recorded[-limit:]
    return RequestsResponse(
        requests=[
            RecordedRequestResponse(receivedAt=timestamp(r.received_at), contentType=r.content_type, body=r.body)
            for r in recorded
        ]
    )


@router.post("/nonces", status_code=201, response_model=NonceResponse)
async def mint_nonce(state: State, card: NonceRequest) -> NonceResponse | JSONResponse:
    # Accept.js validates the card in the browser before it asks for a nonce; mirror its codes.
    problem = _accept_js_problem(card)
    if problem is not None:
        code, text = problem
        return JSONResponse(
            {"messages": {"resultCode": "Error", "message": [{"code": code, "text": text}]}}, status_code=422
        )
    value = state.nonces.mint(
        card_number=card.cardNumber, expiration=card.expirationDate, card_code=card.cardCode, now=state.clock()
    )
    return NonceResponse(dataDescriptor=NONCE_DESCRIPTOR, dataValue=value)


def _accept_js_problem(card: NonceRequest) -> tuple[str, str] | None:
    if not cards.is_valid_card_number(card.cardNumber):
        return "E_WC_05", "Please provide valid credit card number."
    if cards.parse_expiry(card.expirationDate) is None:
        return "E_WC_06", "Please provide valid expiration month."
    if card.cardCode is not None and not card.cardCode.isdigit():
        return "E_WC_15", "Please provide valid CVV."
    return None


@router.get("/faults")
async def list_faults(state: State) -> FaultsResponse:
    return FaultsResponse(faults=state.faults.list())


@router.post("/faults", status_code=201)
async def add_fault(state: State, fault: FaultRequest) -> Fault:
    return state.faults.add(fault)


@router.delete("/faults", status_code=204)
async def clear_faults(state: State) -> Response:
    state.faults.clear()
    return Response(status_code=204)


@router.post("/settle")
async def settle(state: State) -> SettleResponse:
    batch = state.ledger.settle(state.clock())
    if batch is None:
        return SettleResponse(batchId=None, settled=[])
    return SettleResponse(batchId=batch.batch_id, settled=list(batch.trans_ids))


@router.post("/review", response_model=LedgerEntry)
async def review(state: State, decision: ReviewRequest) -> LedgerEntry | JSONResponse:
    outcome = TransactionProcessor(state).review(
        decision.transId, approve=decision.action == "approve", login_id=state.settings.login_id
    )
    transaction = state.ledger.get(decision.transId)
    if outcome.reason_code == 16 or transaction is None:
        return JSONResponse({"detail": "no transaction held for review with that transId"}, status_code=404)
    return LedgerEntry.of(transaction)


@router.get("/webhooks")
async def list_webhook_deliveries(state: State) -> list[DeliveryResponse]:
    return [
        DeliveryResponse(
            notificationId=d.notification_id,
            eventType=d.event_type,
            transId=d.trans_id,
            attempts=d.attempts,
            delivered=d.delivered,
            lastStatus=d.last_status,
        )
        for d in state.webhooks.deliveries
    ]


@router.post("/reset", status_code=204)
async def reset(state: State) -> Response:
    state.reset()
    return Response(status_code=204)


@router.get("/healthz")
async def sim_health() -> dict[str, str]:
    return {"status": "ok"}
