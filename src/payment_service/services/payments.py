"""`PaymentService`: pay for an order (DESIGN §4), and read payments back.

The order of `pay` is the contract: answer a replayed idempotency key from a read; read and check the
order; price it; then, in one transaction, claim the idempotency key and persist the attempt
(`processing`) — the store's per-order unique rule makes a concurrent second attempt fail here, before
anything is sent, and a key claimed meanwhile by a concurrent request is found here too; charge with no
transaction open; then, in one transaction, store the result, the idempotency response and the outbox
rows; then tell the db-service. The db-service reads come before the claim because they are idempotent:
a request that fails on them has written nothing, so it has no key to release. Once an attempt is
persisted, the rest runs to the end even if the request is cancelled, so no charge is left unrecorded.

What the HTTP answer looks like is the API's business: `pay` takes a `render` callable turning the
payment into the stored status and body, so a replay answers byte for byte what the first request did.
"""

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

import structlog

from payment_service.db_service.client import DbServiceClient
from payment_service.domain.charge_identity import describe_attempt
from payment_service.domain.errors import (
    AmountMismatch,
    ChargeRequestInvalid,
    CustomerMismatch,
    GatewayConfigurationError,
    GatewayError,
    GatewayUnavailable,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    OrderNotFound,
    PaymentNotFound,
    PaymentVersionConflict,
)
from payment_service.domain.events import OutboundEvent
from payment_service.domain.identifiers import time_ordered_id
from payment_service.domain.orders import amount_due, ensure_payable
from payment_service.domain.payments import (
    BillTo,
    CardDetails,
    ChargeOutcome,
    ChargeOutcomeKind,
    ChargeRequest,
    GatewayResult,
    LineItem,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from payment_service.domain.transactions import GatewayTransactionStatus
from payment_service.gateway.client import AuthorizeNetGateway
from payment_service.services import metrics
from payment_service.services.order_updates import tell_order
from payment_service.services.orders import fetch_order_context
from payment_service.services.payment_events import OrderContext, payment_events, product_name
from payment_service.services.refunds import RefundService
from payment_service.store import idempotency, order_updates_due, pay_writes
from payment_service.store import payments as payment_rows
from payment_service.store.database import Database
from payment_service.store.idempotency import ClaimState, IdempotencyKey, KeyClaim, StoredResponse
from payment_service.store.pay_writes import NewKey

log = structlog.get_logger(__name__)


# Statuses the order's payment status is set to right away; declines and failures leave the order unpaid.
ORDER_VISIBLE_STATUSES: Final = frozenset(
    {PaymentStatus.APPROVED, PaymentStatus.HELD_FOR_REVIEW, PaymentStatus.UNKNOWN}
)
MAX_INVOICE_NUMBER_LENGTH: Final = 20
CHARGE_NOT_BUILT_MESSAGE: Final = "The charge request could not be built; nothing was sent."

ResponseRenderer = Callable[[Payment], StoredResponse]


def new_payment_id(now: datetime) -> str:
    """`pay_` and 16 time-ordered characters; the part after `pay_` is the attempt's refId."""
    return time_ordered_id("pay_", now)


def invoice_number_for(order_id: str) -> str:
    """The order's invoiceNumber: its id when that fits in 20 characters, else a stable digest of it."""
    if len(order_id) <= MAX_INVOICE_NUMBER_LENGTH and order_id.isascii():
        return order_id
    return "H" + hashlib.sha256(order_id.encode()).hexdigest()[: MAX_INVOICE_NUMBER_LENGTH - 1].upper()


@dataclass(frozen=True, slots=True)
class PayCommand:
    """What the client asked for; `customer_id` and `amount` are only ever compared, never used."""

    order_id: str
    payment_method: PaymentMethod
    customer_id: str | None = None
    amount: Decimal | None = None

    def fingerprint(self, secret: bytes) -> str:
        """A keyed digest (HMAC-SHA256 under `secret`) identifying the request for its idempotency key.

        The card part is the card's number and expiry, so another card with the same brand and last four
        is another request (422 on a reused key). Keyed, never a plain hash: a card number's digest could
        be reversed by trying the few numbers that share its brand, last four and Luhn digit.
        """
        method = self.payment_method
        if isinstance(method, CardDetails):
            expiry = f"{method.expiration_year:04d}-{method.expiration_month:02d}"
            method_part = f"card:{method.number.get_secret_value()}:{expiry}"
        else:
            method_part = f"opaque:{method.descriptor}:{method.value.get_secret_value()}"
        amount = "" if self.amount is None else str(self.amount.normalize())
        text = "\x1f".join((self.order_id, self.customer_id or "", amount, method_part))
        return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class PayResult:
    """The answer to a pay request: the stored response, and the payment when this request made it."""

    response: StoredResponse
    payment_id: str | None
    payment: Payment | None = None  # None on a replay
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class _Checkout:
    context: OrderContext
    attempt: Payment
    request: ChargeRequest


class PaymentService:
    def __init__(
        self,
        *,
        database: Database,
        db_service: DbServiceClient,
        gateway: AuthorizeNetGateway,
        duplicate_window_s: int,
        idempotency_ttl_s: int,
        fingerprint_secret: bytes,
        accepted_currencies: frozenset[str] = frozenset({"USD"}),
        # Called after every commit that added outbox rows, to wake an in-process relay at once.
        outbox_written: Callable[[], None] | None = None,
        clock: Callable[[], datetime] | None = None,  # aware UTC now; tests pin it
        # Gives back an approved charge whose order refused it (cancelled meanwhile, paid by another attempt).
        refunds: RefundService | None = None,
    ) -> None:
        self._refunds = refunds
        self._database = database
        self._db_service = db_service
        self._gateway = gateway
        self._duplicate_window_s = duplicate_window_s
        self._fingerprint_secret = fingerprint_secret
        self._accepted_currencies = accepted_currencies
        self._idempotency_ttl = timedelta(seconds=idempotency_ttl_s)
        self._outbox_written = outbox_written
        self._now = clock or (lambda: datetime.now(UTC))
        self._finishing: set[asyncio.Task[PayResult]] = set()
        # Payments finishing together delete their order updates due in one statement.
        self._clearances = order_updates_due.Clearances(database)

    # ------------------------------------------------------------------ pay

    async def pay(
        self,
        command: PayCommand,
        *,
        customer_id: str,
        idempotency_key: str | None,
        render: ResponseRenderer,
    ) -> PayResult:
        """Charge the order of `command` for `customer_id`, at most once.

        Returns the payment's stored response (any outcome the gateway gave: approved, declined, held,
        failed, unknown), or the stored response of an earlier request with the same key.

        Raises:
            CustomerMismatch, AmountMismatch: the client's figures differ from the token's and the order's.
            OrderNotFound: no such order, or another customer's. OrderNotPayable: paid, cancelled, empty.
            PaymentInProgress: the order has an active attempt. IdempotencyKeyInFlight, IdempotencyKeyReused.
            DbServiceUnavailable, DbServiceError: before anything was charged.
            GatewayUnavailable, GatewayConfigurationError: the attempt is recorded failed; nothing was charged.
        """
        if command.customer_id is not None and command.customer_id != customer_id:
            raise CustomerMismatch("customer_id does not match the authenticated customer")
        key = IdempotencyKey(customer_id, idempotency_key) if idempotency_key else None
        fingerprint = command.fingerprint(self._fingerprint_secret) if key is not None else ""
        if key is not None:
            async with self._database.reading() as conn:
                found = await idempotency.find_key(conn, key, fingerprint=fingerprint, now=self._now())
            if found is not None:
                return await self._answer_taken_key(found, render)
        prepared = await self._prepare(command, customer_id=customer_id, key=key, fingerprint=fingerprint)
        if isinstance(prepared, KeyClaim):  # a concurrent request with this key took it first
            return await self._answer_taken_key(prepared, render)
        # The attempt is persisted: finish charging and recording even if this request is cancelled.
        task = asyncio.get_running_loop().create_task(self._charge_and_record(prepared, key, render))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Wait for charges already sent to be recorded (graceful shutdown)."""
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)

    async def _current(self, replay: PayResult, render: ResponseRenderer) -> PayResult:
        # A stored 202 (unknown, held) goes stale once the reconciler settles the payment: answer what it is now.
        if replay.response.status_code != 202 or replay.payment_id is None:
            return replay
        async with self._database.reading() as conn:
            payment = await payment_rows.fetch_payment(conn, replay.payment_id)
        if payment is None:
            return replay
        return replace(replay, response=render(payment))

    async def _answer_taken_key(self, claim: KeyClaim, render: ResponseRenderer) -> PayResult:
        """The answer when the key is not ours to claim: a replay, or why not. Raises for a key in flight or reused."""
        match claim.state:
            case ClaimState.COMPLETED if claim.response is not None:
                log.info("idempotency_key.replayed", payment_id=claim.payment_id)
                return await self._current(PayResult(claim.response, claim.payment_id, replayed=True), render)
            case ClaimState.IN_FLIGHT if claim.payment_id is not None:
                # The request that claimed the key died after sending, or lost its result to the reconciler:
                # once the attempt is settled, the payment itself is the answer.
                async with self._database.reading() as conn:
                    payment = await payment_rows.fetch_payment(conn, claim.payment_id)
                if payment is None or payment.status is PaymentStatus.PROCESSING:
                    raise IdempotencyKeyInFlight("a request with this Idempotency-Key is still being processed")
                log.info("idempotency_key.answered_from_payment", payment_id=payment.payment_id)
                return PayResult(render(payment), payment.payment_id, payment, replayed=True)
            case ClaimState.IN_FLIGHT | ClaimState.COMPLETED | ClaimState.CLAIMED:
                raise IdempotencyKeyInFlight("a request with this Idempotency-Key is still being processed")
            case ClaimState.MISMATCH:
                raise IdempotencyKeyReused("this Idempotency-Key was used with a different request")

    async def _prepare(
        self, command: PayCommand, *, customer_id: str, key: IdempotencyKey | None, fingerprint: str
    ) -> _Checkout | KeyClaim:
        """Read and price the order, then claim the key and persist the attempt in one transaction.

        Returns the checkout to charge, or what a concurrent request left on the key it took meanwhile.
        """
        order = await self._db_service.fetch_order(command.order_id)
        ensure_payable(order, customer_id=customer_id, accepted_currencies=self._accepted_currencies)
        due = amount_due(order)
        if command.amount is not None and command.amount != due.amount:
            raise AmountMismatch("amount does not match the order total")
        context = await fetch_order_context(self._db_service, order)
        now = self._now()
        payment_id = new_payment_id(now)
        method = command.payment_method
        card = method if isinstance(method, CardDetails) else None
        attempt = Payment(
            payment_id=payment_id,
            order_id=order.order_id,
            customer_id=customer_id,
            status=PaymentStatus.PROCESSING,
            amount=due,
            invoice_number=invoice_number_for(order.order_id),
            ref_id=payment_id.removeprefix("pay_"),
            card_last4=card.last4 if card is not None else None,
            card_brand=card.brand if card is not None else None,
            created_at=now,
            updated_at=now,
            sent_at=now,
        )
        request = self._charge_request(attempt, method, context)
        new_key = NewKey(key, fingerprint, now, now + self._idempotency_ttl) if key is not None else None
        taken = await pay_writes.record_attempt(self._database, attempt, claim=new_key)
        if taken is not None:
            return taken
        return _Checkout(context, attempt, request)

    def _charge_request(self, attempt: Payment, method: PaymentMethod, context: OrderContext) -> ChargeRequest:
        order, customer, products = context.order, context.customer, context.products
        address = customer.address
        street = address.line1 if not address.line2 else f"{address.line1}, {address.line2}"
        return ChargeRequest(
            amount=attempt.amount,
            payment_method=method,
            invoice_number=attempt.invoice_number,
            ref_id=attempt.ref_id,
            line_items=tuple(
                LineItem(
                    item_id=item.product_id,
                    name=product_name(products, item.product_id),
                    quantity=item.quantity,
                    unit_price=item.unit_price,
                )
                for item in order.items
            ),
            customer_id=customer.customer_id,
            customer_email=customer.email,
            bill_to=BillTo(
                first_name=customer.first_name,
                last_name=customer.last_name,
                address=street,
                city=address.city,
                state=address.state,
                zip=address.zip,
                country=address.country,
            ),
            # The attempt's own id, echoed by the transaction details: how the reconciler confirms a match.
            description=describe_attempt(attempt.ref_id, order.order_id),
            duplicate_window_s=self._duplicate_window_s,
            tax_amount=order.tax_amount,
            shipping_amount=order.shipping_amount,
        )

    async def _charge_and_record(
        self, checkout: _Checkout, key: IdempotencyKey | None, render: ResponseRenderer
    ) -> PayResult:
        attempt = checkout.attempt
        outcome = await self._charge(checkout)
        if outcome is not None and outcome.kind is ChargeOutcomeKind.DUPLICATE:
            outcome = await self._duplicate_of_a_decline(attempt, outcome)
        if outcome is None or outcome.kind is ChargeOutcomeKind.CONFIGURATION_ERROR:
            # Nothing was charged: record the attempt failed, free the key for a retry, answer 503.
            result = outcome.result if outcome is not None else GatewayResult(message="The gateway was unreachable.")
            failed = self._settled(attempt, PaymentStatus.FAILED, result)
            try:
                await self._record(checkout, failed, key=key, response=None)
            except PaymentVersionConflict:
                return await self._settled_elsewhere(attempt, key, render)
            if outcome is None:
                raise GatewayUnavailable("the payment gateway is unreachable; nothing was charged")
            raise GatewayConfigurationError("the payment gateway rejected our configuration; nothing was charged")
        payment = self._settled(attempt, outcome.payment_status, outcome.result)
        response = render(payment)
        try:
            payment = await self._record(checkout, payment, key=key, response=response)
        except PaymentVersionConflict:
            return await self._settled_elsewhere(attempt, key, render)
        after = await self._update_order(payment)
        if after is not payment:  # the order refused the charge and it was given back: answer what it is now
            payment, response = after, render(after)
            if key is not None:
                async with self._database.transaction() as conn:
                    await idempotency.complete_key(conn, key, payment_id=payment.payment_id, response=response)
        return PayResult(response, payment.payment_id, payment)

    async def _duplicate_of_a_decline(self, attempt: Payment, outcome: ChargeOutcome) -> ChargeOutcome:
        """A duplicate (reason 11) whose original is a decline of this order is declined itself, at once.

        A double click with a declined card: the first attempt's decline freed the order, and the gateway
        calls the second one a duplicate of it. Neither moved money, so the customer hears "declined" now
        rather than "pending" until the reconciler gives up. Any other original (an approval, one of
        another order, one the gateway cannot show) keeps the safe path: unknown, for the reconciler.
        """
        original = outcome.original_transaction_id
        if original is None:
            return outcome
        try:
            details = await self._gateway.fetch_transaction_details(original)
        except (GatewayUnavailable, GatewayConfigurationError, GatewayError) as exc:
            log.warning("payment.duplicate_original_unreadable", payment_id=attempt.payment_id, error=exc.code)
            return outcome
        if (
            details is None
            or details.invoice_number != attempt.invoice_number
            or details.status is not GatewayTransactionStatus.DECLINED
        ):
            return outcome
        log.info("payment.duplicate_of_decline", payment_id=attempt.payment_id, original_transaction_id=original)
        return ChargeOutcome(ChargeOutcomeKind.DECLINED, outcome.result)

    async def _settled_elsewhere(
        self, attempt: Payment, key: IdempotencyKey | None, render: ResponseRenderer
    ) -> PayResult:
        """The reconciler settled the attempt from the gateway before our answer was recorded: its record stands.

        Answer what it recorded, and complete the key with that answer so a retry replays it.
        """
        async with self._database.reading() as conn:
            current = await payment_rows.fetch_payment(conn, attempt.payment_id)
        if current is None:  # the attempt row cannot vanish; refuse to guess
            raise PaymentVersionConflict(f"payment {attempt.payment_id} changed while it was being recorded")
        response = render(current)
        if key is not None:
            async with self._database.transaction() as conn:
                await idempotency.complete_key(conn, key, payment_id=current.payment_id, response=response)
        log.warning("payment.settled_by_reconciler", payment_id=current.payment_id, status=current.status.value)
        return PayResult(response, current.payment_id, current)

    async def _charge(self, checkout: _Checkout) -> ChargeOutcome | None:
        """The gateway's outcome; None when nothing was sent (unreachable)."""
        attempt = checkout.attempt
        started = time.perf_counter()
        try:
            outcome = await self._gateway.charge(checkout.request)
        except GatewayUnavailable:
            metrics.GATEWAY_LATENCY_UNAVAILABLE.observe(time.perf_counter() - started)
            log.warning("payment.gateway_unavailable", payment_id=attempt.payment_id, order_id=attempt.order_id)
            return None
        except GatewayConfigurationError:
            log.error("payment.gateway_misconfigured", payment_id=attempt.payment_id)
            return ChargeOutcome(ChargeOutcomeKind.CONFIGURATION_ERROR, GatewayResult(message="Gateway set-up error."))
        except ChargeRequestInvalid as exc:  # refused while building: nothing was sent, so nothing was charged
            log.error("payment.charge_not_built", payment_id=attempt.payment_id, error=str(exc))
            return ChargeOutcome(ChargeOutcomeKind.FAILED, GatewayResult(message=CHARGE_NOT_BUILT_MESSAGE))
        except Exception:  # the charge may have been sent: record it as unknown, never lose it
            log.exception("payment.charge_crashed", payment_id=attempt.payment_id)
            return ChargeOutcome(
                ChargeOutcomeKind.UNKNOWN, GatewayResult(message="No answer was read from the gateway.")
            )
        metrics.GATEWAY_LATENCY_BY_OUTCOME[outcome.kind].observe(time.perf_counter() - started)
        return outcome

    def _settled(self, attempt: Payment, status: PaymentStatus, result: GatewayResult) -> Payment:
        last4 = attempt.card_last4
        if last4 is None and result.account_number:
            last4 = result.account_number[-4:]
        return replace(
            attempt,
            status=status,
            gateway=result,
            version=attempt.version + 1,
            updated_at=self._now(),
            card_last4=last4,
            card_brand=attempt.card_brand or result.account_type,
            captured_amount=attempt.amount.amount if status is PaymentStatus.APPROVED else Decimal(0),
        )

    async def _record(
        self, checkout: _Checkout, payment: Payment, *, key: IdempotencyKey | None, response: StoredResponse | None
    ) -> Payment:
        """One transaction: the result, the idempotency response (or the key's release) and the outbox rows."""
        events = self._events(checkout, payment)
        try:
            await pay_writes.record_answer(
                self._database,
                payment,
                previous=checkout.attempt,
                reason="gateway_answered",
                key=key,
                response=response,
                events=events,
            )
        except PaymentVersionConflict:
            # The reconciler settled it first; its record stands, from the gateway itself.
            log.warning("payment.recording_conflict", payment_id=payment.payment_id, status=payment.status.value)
            raise
        metrics.PAYMENTS_BY_STATUS[payment.status].inc()
        log.info(
            "payment.recorded",
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            status=payment.status.value,
            amount=str(payment.amount.amount),
            card_last4=payment.card_last4,
            transaction_id=payment.gateway.transaction_id if payment.gateway else None,
            reason_code=payment.gateway.reason_code if payment.gateway else None,
        )
        if events and self._outbox_written is not None:
            self._outbox_written()
        return payment

    def _events(self, checkout: _Checkout, payment: Payment) -> list[OutboundEvent]:
        return payment_events(payment, checkout.context)

    async def _update_order(self, payment: Payment) -> Payment:
        """Tell the db-service; the payment as it then stands.

        An approved charge the order refuses (cancelled meanwhile, or paid by another attempt) is given
        back at once (`services/refunds.py`): the payment returned is then voided or refunded. What is not
        done here (a crash before it, the db-service down, a reversal that failed) the order update sweep
        does (`services/order_updates.py`).
        """
        if payment.status not in ORDER_VISIBLE_STATUSES:
            return payment
        _, after = await tell_order(
            self._database, self._db_service, self._refunds, payment, clearances=self._clearances
        )
        return after

    # ------------------------------------------------------------------ reads

    async def get(self, payment_id: str, *, customer_id: str, is_admin: bool = False) -> Payment:
        """The payment, for its owner or an admin. Raises: PaymentNotFound (also for anyone else's)."""
        async with self._database.reading() as conn:
            payment = await payment_rows.fetch_payment(conn, payment_id)
        if payment is None or (not is_admin and payment.customer_id != customer_id):
            raise PaymentNotFound(payment_id)
        return payment

    async def list_for_order(self, order_id: str, *, customer_id: str, is_admin: bool = False) -> Sequence[Payment]:
        """Every attempt for the order, oldest first.

        Raises:
            OrderNotFound: the order's payments belong to someone else (reported like a missing order).
        """
        async with self._database.reading() as conn:
            found = await payment_rows.fetch_payments_for_order(conn, order_id)
        if not is_admin and any(p.customer_id != customer_id for p in found):
            raise OrderNotFound(order_id)
        return found
