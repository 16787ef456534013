"""`RefundService`: give money back for a payment — a void before settlement, a refund after — never more than taken.

The order of `refund` is the contract, as for a charge: answer a replayed idempotency key from a read;
read the payment and ask the gateway how its transaction stands (unsettled: void, whole amount only;
settled: refund, partial allowed); read the order for the events; then in one transaction claim the key,
lock the payment (`store/refunds.py`), check the amount against what its refunds already take (those in
flight included) and write the refund `processing`; send it with no transaction open; then in one
transaction store the answer, the payment's new status and amounts, the outbox rows and the key's
response. An answer lost after sending leaves the refund `unknown` for `RefundReconciler`; nothing here
ever sends a refund twice.

Also here: `reverse_charge`, which gives back an approved charge the order could no longer take (the
db-service refused it: cancelled meanwhile, or paid by another attempt), and `record_external_refund`,
which records a refund or void made outside the service (in the merchant interface) from the gateway's
details of that transaction, once per gateway transaction.
"""

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.db_service.client import DbServiceClient
from payment_service.domain.errors import (
    GatewayError,
    GatewayUnavailable,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    NothingLeftToRefund,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentVersionConflict,
)
from payment_service.domain.events import OutboundEvent
from payment_service.domain.identifiers import time_ordered_id
from payment_service.domain.money import Money
from payment_service.domain.payments import ChargeOutcome, ChargeOutcomeKind, GatewayResult, Payment
from payment_service.domain.refunds import (
    Refund,
    RefundKind,
    RefundOrigin,
    RefundStatus,
    check_refund,
    payment_after_refunds,
    taken_amount,
)
from payment_service.domain.transactions import GatewayTransactionStatus, TransactionDetails, TransactionKind
from payment_service.gateway.client import AuthorizeNetGateway
from payment_service.services import metrics
from payment_service.services.orders import fetch_order_context, update_order_payment_status
from payment_service.services.payment_events import OrderContext, refund_events
from payment_service.store import idempotency, outbox
from payment_service.store import payments as payment_rows
from payment_service.store import refunds as refund_rows
from payment_service.store.database import Database
from payment_service.store.idempotency import ClaimState, IdempotencyKey, KeyClaim, StoredResponse

log = structlog.get_logger(__name__)

_OUTCOME_STATUS: Final = {
    ChargeOutcomeKind.APPROVED: RefundStatus.SUCCEEDED,
    ChargeOutcomeKind.DECLINED: RefundStatus.FAILED,
    ChargeOutcomeKind.FAILED: RefundStatus.FAILED,
    ChargeOutcomeKind.CONFIGURATION_ERROR: RefundStatus.FAILED,
    # Reason 11 on a refund: one like it went through within the window; the reconciler looks it up.
    ChargeOutcomeKind.DUPLICATE: RefundStatus.UNKNOWN,
    ChargeOutcomeKind.HELD_FOR_REVIEW: RefundStatus.UNKNOWN,
    ChargeOutcomeKind.UNKNOWN: RefundStatus.UNKNOWN,
}

RefundRenderer = Callable[[Refund], StoredResponse]


def new_refund_id(now: datetime) -> str:
    """`ref_` and 16 time-ordered characters; the part after `ref_` is the refund's refId."""
    return time_ordered_id("ref_", now)


def gateway_result_of(details: TransactionDetails) -> GatewayResult:
    """The `gateway` object of a refund, from the gateway's details of its transaction."""
    return GatewayResult(
        transaction_id=details.transaction_id,
        response_code=details.response_code or None,
        reason_code=details.reason_code or None,
        message=details.reason_description or None,
        account_number=details.account_number,
        account_type=details.account_type,
    )


@dataclass(frozen=True, slots=True)
class RefundCommand:
    payment_id: str
    amount: Decimal | None = None  # None: all that is left
    reason: str | None = None

    def fingerprint(self) -> str:
        amount = "" if self.amount is None else str(self.amount.normalize())
        text = "\x1f".join(("refund", self.payment_id, amount, self.reason or ""))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RefundResult:
    response: StoredResponse
    refund: Refund | None  # None on a replay answered from the stored response
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class _Opened:
    refund: Refund
    payment: Payment
    context: OrderContext


class RefundService:
    def __init__(
        self,
        *,
        database: Database,
        db_service: DbServiceClient,
        gateway: AuthorizeNetGateway,
        idempotency_ttl_s: int,
        outbox_written: Callable[[], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._database = database
        self._db_service = db_service
        self._gateway = gateway
        self._idempotency_ttl = timedelta(seconds=idempotency_ttl_s)
        self._outbox_written = outbox_written
        self._now = clock or (lambda: datetime.now(UTC))
        self._finishing: set[asyncio.Task[tuple[Refund, bool]]] = set()

    # ------------------------------------------------------------------ refund on request

    async def refund(
        self, command: RefundCommand, *, requested_by: str, idempotency_key: str | None, render: RefundRenderer
    ) -> RefundResult:
        """Void or refund the payment of `command`, never beyond what it captured.

        Returns the refund's stored response (succeeded, failed, or unknown), or the stored response of
        an earlier request with the same key.

        Raises:
            PaymentNotFound. PaymentNotRefundable: nothing captured. NothingLeftToRefund: all of it
            refunded or being refunded, whatever the amount. RefundNotAllowed: the amount is not
            positive, too precise, or more than what is left. PartialVoidNotAllowed: part of an unsettled
            payment. IdempotencyKeyInFlight, IdempotencyKeyReused. GatewayUnavailable: nothing was sent
            (the refund is recorded failed). DbServiceUnavailable, GatewayError: before anything was written.
        """
        key = IdempotencyKey(requested_by, idempotency_key) if idempotency_key else None
        fingerprint = command.fingerprint()
        if key is not None:
            async with self._database.reading() as conn:
                found = await idempotency.find_key(conn, key, fingerprint=fingerprint, now=self._now())
            if found is not None:
                return await self._answer_taken_key(found, render)
        payment = await self._read_payment(command.payment_id)
        amount = command.amount
        if amount is None:
            async with self._database.reading() as conn:
                taken = taken_amount(await refund_rows.fetch_refunds_for_payment(conn, payment.payment_id))
            amount = payment.captured_amount - taken
            if amount <= 0 and payment.captured_amount > 0:
                raise NothingLeftToRefund("nothing is left to refund (refunds in progress included)")
        kind = await self._choose_kind(payment)
        context = await self._order_context(payment)
        opened = await self._open(
            payment,
            kind=kind,
            amount=amount,
            reason=command.reason,
            origin=RefundOrigin.API,
            key=key,
            fingerprint=fingerprint,
            context=context,
        )
        if isinstance(opened, KeyClaim):
            return await self._answer_taken_key(opened, render)
        refund, sent = await self._finish_detached(opened, key, render)
        if not sent:
            raise GatewayUnavailable("the payment gateway is unreachable; nothing was refunded")
        return RefundResult(render(refund), refund)

    async def list_for_payment(self, payment_id: str) -> list[Refund]:
        """Every refund of the payment, oldest first. Raises: PaymentNotFound."""
        async with self._database.reading() as conn:
            if await payment_rows.fetch_payment(conn, payment_id) is None:
                raise PaymentNotFound(payment_id)
            return await refund_rows.fetch_refunds_for_payment(conn, payment_id)

    async def current_payment(self, payment_id: str) -> Payment:
        """The payment as stored now. Raises: PaymentNotFound."""
        return await self._read_payment(payment_id)

    async def drain(self) -> None:
        """Wait for refunds already sent to be recorded (graceful shutdown)."""
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)

    # ------------------------------------------------------------------ automatic reversal

    async def reverse_charge(self, payment: Payment, *, reason: str) -> Refund | None:
        """Give back all that is left of an approved charge whose order refused it (`reason`: the db-service's code).

        Voids it when unsettled, refunds it once settled; recorded and published like any refund. None
        when nothing is left to give back. Raises as `refund` (the caller logs; the next look retries).
        """
        log.warning("payment.charge_reversing", payment_id=payment.payment_id, order_id=payment.order_id, reason=reason)
        async with self._database.reading() as conn:
            current = await payment_rows.fetch_payment(conn, payment.payment_id)
            taken = taken_amount(await refund_rows.fetch_refunds_for_payment(conn, payment.payment_id))
        if current is None:
            raise PaymentNotFound(payment.payment_id)
        left = current.captured_amount - taken
        if left <= 0:
            return None
        kind = await self._choose_kind(current)
        context = await self._order_context(current)
        opened = await self._open(
            current,
            kind=kind,
            amount=left,
            reason=reason,
            origin=RefundOrigin.AUTOMATIC,
            key=None,
            fingerprint="",
            context=context,
        )
        assert isinstance(opened, _Opened)  # no key, so never a claim  # noqa: S101
        refund, _ = await self._finish_detached(opened, None, None)
        return refund

    # ------------------------------------------------------------------ made outside the service

    async def record_external_refund(self, details: TransactionDetails) -> Refund | None:
        """Record a refund or void made outside the service, from the gateway's details of that transaction.

        `details` is what `getTransactionDetails` answers for the refund transaction (its
        `ref_transaction_id` names the refunded charge) or for a voided charge (status voided). Applied
        once per gateway transaction: a second call, or one for a refund this service sent itself,
        answers the refund already recorded (settling ours when its answer was lost). Returns None when
        the transaction is not a refund or void of a payment of ours (logged).

        Raises:
            DbServiceUnavailable, DbServiceError: the order could not be read for the events; retry later.
        """
        kind, charge_id = _external_kind(details)
        if kind is None or charge_id is None:
            log.info(
                "refund.external_ignored", transaction_id=details.transaction_id, gateway_status=details.gateway_status
            )
            return None
        async with self._database.reading() as conn:
            payment_ids = await payment_rows.fetch_payment_ids_by_transaction_id(conn, charge_id)
            payment = await payment_rows.fetch_payment(conn, payment_ids[0]) if len(payment_ids) == 1 else None
        if payment is None:
            log.warning("refund.external_unmatched", transaction_id=details.transaction_id, charge_id=charge_id)
            return None
        context = await self._order_context(payment)
        now = self._now()
        amount = details.settle_amount or details.requested_amount or details.auth_amount
        result = gateway_result_of(details)
        async with self._database.transaction() as conn:
            locked = await refund_rows.lock_payment(conn, payment.payment_id)
            assert locked is not None  # noqa: S101 - payments are never deleted
            refunds = await refund_rows.fetch_refunds_for_payment(conn, payment.payment_id)
            ours = _same_transaction(refunds, kind=kind, details=details)
            if ours is not None and ours.is_settled:
                return ours
            if ours is not None:
                refund = replace(
                    ours, status=RefundStatus.SUCCEEDED, gateway=result, version=ours.version + 1, updated_at=now
                )
                await refund_rows.update_refund(conn, refund, previous=ours)
            else:
                refund = Refund(
                    refund_id=new_refund_id(now),
                    payment_id=payment.payment_id,
                    kind=kind,
                    amount=Money(
                        amount if kind is RefundKind.REFUND else locked.captured_amount, locked.amount.currency
                    ),
                    status=RefundStatus.SUCCEEDED,
                    origin=RefundOrigin.GATEWAY,
                    ref_id=new_refund_id(now).removeprefix("ref_"),
                    created_at=now,
                    updated_at=now,
                    reason="made at the gateway",
                    gateway=result,
                )
                await refund_rows.insert_refund(conn, refund)
                if taken_amount([*refunds, refund]) > locked.captured_amount:
                    # It happened at the gateway, so it is recorded; a person must look at how.
                    log.error(
                        "refund.external_exceeds_capture", payment_id=payment.payment_id, refund_id=refund.refund_id
                    )
            changed = await self._apply(
                conn, locked, [r for r in refunds if r.refund_id != refund.refund_id] + [refund], refund, context
            )
        metrics.REFUNDS.labels(kind=refund.kind.value, origin=refund.origin.value, status=refund.status.value).inc()
        log.info(
            "refund.recorded_from_gateway",
            refund_id=refund.refund_id,
            payment_id=payment.payment_id,
            kind=refund.kind.value,
            amount=str(refund.amount.amount),
            transaction_id=details.transaction_id,
        )
        self._after_commit(changed)
        return refund

    # ------------------------------------------------------------------ steps

    async def _read_payment(self, payment_id: str) -> Payment:
        async with self._database.reading() as conn:
            payment = await payment_rows.fetch_payment(conn, payment_id)
        if payment is None:
            raise PaymentNotFound(payment_id)
        return payment

    async def _choose_kind(self, payment: Payment) -> RefundKind:
        """Void or refund, from how the gateway reports the charge now (DESIGN §3)."""
        check_refund(payment, [], kind=RefundKind.REFUND, amount=payment.captured_amount)  # something was captured
        transaction_id = payment.gateway.transaction_id if payment.gateway is not None else None
        if transaction_id is None:
            raise PaymentNotRefundable(f"payment {payment.payment_id} has no gateway transaction to refund")
        details = await self._gateway.fetch_transaction_details(transaction_id)
        if details is None:
            raise GatewayError(f"the gateway does not know transaction {transaction_id}")
        if details.status.can_refund:
            return RefundKind.REFUND
        if details.status.can_void:
            return RefundKind.VOID
        raise PaymentNotRefundable(
            f"the gateway reports the transaction of payment {payment.payment_id} as {details.gateway_status}"
        )

    async def _order_context(self, payment: Payment) -> OrderContext:
        return await fetch_order_context(self._db_service, await self._db_service.fetch_order(payment.order_id))

    async def _open(
        self,
        payment: Payment,
        *,
        kind: RefundKind,
        amount: Decimal,
        reason: str | None,
        origin: RefundOrigin,
        key: IdempotencyKey | None,
        fingerprint: str,
        context: OrderContext,
    ) -> _Opened | KeyClaim:
        """Claim the key, lock the payment, check the amount and write the refund `processing`, in one transaction."""
        now = self._now()
        refund_id = new_refund_id(now)
        async with self._database.transaction() as conn:
            if key is not None:
                claim = await idempotency.claim_key(
                    conn,
                    key,
                    fingerprint=fingerprint,
                    now=now,
                    expires_at=now + self._idempotency_ttl,
                    payment_id=refund_id,  # the key's record names the refund it was claimed for
                )
                if claim.state is not ClaimState.CLAIMED:
                    return claim
            locked = await refund_rows.lock_payment(conn, payment.payment_id)
            if locked is None:
                raise PaymentNotFound(payment.payment_id)
            refunds = await refund_rows.fetch_refunds_for_payment(conn, payment.payment_id)
            check_refund(locked, refunds, kind=kind, amount=amount)
            refund = Refund(
                refund_id=refund_id,
                payment_id=locked.payment_id,
                kind=kind,
                amount=Money(amount, locked.amount.currency),
                status=RefundStatus.PROCESSING,
                origin=origin,
                ref_id=refund_id.removeprefix("ref_"),
                created_at=now,
                updated_at=now,
                reason=reason,
            )
            await refund_rows.insert_refund(conn, refund)
        log.info(
            "refund.opened",
            refund_id=refund.refund_id,
            payment_id=locked.payment_id,
            kind=kind.value,
            amount=str(refund.amount.amount),
            origin=origin.value,
        )
        return _Opened(refund, locked, context)

    async def _finish_detached(
        self, opened: _Opened, key: IdempotencyKey | None, render: RefundRenderer | None
    ) -> tuple[Refund, bool]:
        """The refund as recorded, and whether it was sent. Runs to the end even if the caller is cancelled."""
        task = asyncio.get_running_loop().create_task(self._send_and_record(opened, key, render))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        return await asyncio.shield(task)

    async def _send_and_record(
        self, opened: _Opened, key: IdempotencyKey | None, render: RefundRenderer | None
    ) -> tuple[Refund, bool]:
        outcome = await self._send(opened)
        if outcome is None:
            status, result = (
                RefundStatus.FAILED,
                GatewayResult(message="The gateway was unreachable; nothing was sent."),
            )
        else:
            status, result = _OUTCOME_STATUS[outcome.kind], outcome.result
        try:
            settled = await self.settle(
                opened.refund, status=status, result=result, context=opened.context, key=key, render=render
            )
        except PaymentVersionConflict:
            # Settled first from the gateway's own record (a webhook, the reconciler): that record stands.
            current = await self._fetch_refund(opened.refund.refund_id)
            if current is None:
                raise
            log.warning("refund.settled_elsewhere", refund_id=current.refund_id, status=current.status.value)
            if key is not None and render is not None:
                async with self._database.transaction() as conn:
                    await idempotency.complete_key(conn, key, payment_id=current.refund_id, response=render(current))
            return current, True
        return settled, outcome is not None

    async def _send(self, opened: _Opened) -> ChargeOutcome | None:
        """The gateway's answer; None when nothing was sent."""
        refund, payment = opened.refund, opened.payment
        transaction_id = payment.gateway.transaction_id if payment.gateway is not None else None
        assert transaction_id is not None  # checked by _choose_kind  # noqa: S101
        try:
            if refund.kind is RefundKind.VOID:
                return await self._gateway.void(transaction_id, ref_id=refund.ref_id)
            return await self._gateway.refund(
                transaction_id,
                refund.amount,
                card_last4=payment.card_last4 or "",
                ref_id=refund.ref_id,
                # Its own invoice number: two equal partial refunds are not duplicates, and the reconciler finds it.
                invoice_number=refund.ref_id,
            )
        except GatewayUnavailable:
            log.warning("refund.gateway_unavailable", refund_id=refund.refund_id)
            return None
        except Exception:  # it may have been sent: unknown, for the reconciler; never lost, never re-sent
            log.exception("refund.send_crashed", refund_id=refund.refund_id)
            return ChargeOutcome(
                ChargeOutcomeKind.UNKNOWN, GatewayResult(message="No answer was read from the gateway.")
            )

    async def settle(
        self,
        refund: Refund,
        *,
        status: RefundStatus,
        result: GatewayResult,
        context: OrderContext | None,
        key: IdempotencyKey | None = None,
        render: RefundRenderer | None = None,
    ) -> Refund:
        """Store what became of `refund`, with the payment's new status and amounts and the events, in one transaction.

        `context` is needed when the refund succeeded (the events describe the order).

        Raises:
            PaymentVersionConflict: the refund was settled meanwhile (the reconciler, or a webhook): theirs stands.
        """
        if status is not RefundStatus.SUCCEEDED:
            # Only a refund that happened owns a gateway transaction id (ids are unique here); error answers
            # carry "0" or the refunded charge's id.
            result = replace(result, transaction_id=None)
        settled = replace(refund, status=status, gateway=result, version=refund.version + 1, updated_at=self._now())
        async with self._database.transaction() as conn:
            # The payment first, as every refund writer locks it: one lock order, no deadlock.
            locked = await refund_rows.lock_payment(conn, refund.payment_id)
            assert locked is not None  # noqa: S101 - payments are never deleted
            await refund_rows.update_refund(conn, settled, previous=refund)
            refunds = await refund_rows.fetch_refunds_for_payment(conn, refund.payment_id)
            changed = await self._apply(conn, locked, refunds, settled, context)
            if key is not None and render is not None:
                if status is RefundStatus.FAILED and result.transaction_id is None and result.response_code is None:
                    await idempotency.release_key(conn, key)  # nothing was sent: a retry is processed afresh
                else:
                    await idempotency.complete_key(conn, key, payment_id=settled.refund_id, response=render(settled))
        metrics.REFUNDS.labels(kind=settled.kind.value, origin=settled.origin.value, status=status.value).inc()
        if settled.origin is RefundOrigin.AUTOMATIC and settled.is_settled:
            _count_reversal(settled)
        log.info(
            "refund.recorded",
            refund_id=settled.refund_id,
            payment_id=settled.payment_id,
            kind=settled.kind.value,
            status=status.value,
            amount=str(settled.amount.amount),
            transaction_id=result.transaction_id,
            reason_code=result.reason_code,
        )
        self._after_commit(changed)
        if changed is not None:
            await update_order_payment_status(self._db_service, changed)
        return settled

    async def _apply(
        self,
        conn: AsyncConnection,
        payment: Payment,
        refunds: list[Refund],
        refund: Refund,
        context: OrderContext | None,
    ) -> Payment | None:
        """Update the payment from its refunds and add the events; the payment as stored when it changed."""
        changed = payment_after_refunds(payment, refunds, now=self._now())
        if changed is payment or refund.status is not RefundStatus.SUCCEEDED:
            return None
        if context is None:
            raise ValueError("a succeeded refund needs its order to build order.refunded")
        events: list[OutboundEvent] = refund_events(changed, refund, context)
        await payment_rows.update_payment(conn, changed, previous=payment, reason=f"{refund.kind.value}_succeeded")
        await outbox.add_events(conn, events)
        return changed

    def _after_commit(self, changed: Payment | None) -> None:
        if changed is not None:
            metrics.PAYMENTS_BY_STATUS[changed.status].inc()
            if self._outbox_written is not None:
                self._outbox_written()

    async def _answer_taken_key(self, claim: KeyClaim, render: RefundRenderer) -> RefundResult:
        match claim.state:
            case ClaimState.COMPLETED if claim.response is not None:
                if claim.response.status_code == 202 and claim.payment_id is not None:
                    current = await self._fetch_refund(claim.payment_id)
                    if current is not None:  # an unknown refund settled since: answer what it is now
                        return RefundResult(render(current), current, replayed=True)
                return RefundResult(claim.response, None, replayed=True)
            case ClaimState.IN_FLIGHT if claim.payment_id is not None:
                current = await self._fetch_refund(claim.payment_id)
                if current is None or current.status is RefundStatus.PROCESSING:
                    raise IdempotencyKeyInFlight("a request with this Idempotency-Key is still being processed")
                return RefundResult(render(current), current, replayed=True)
            case ClaimState.IN_FLIGHT | ClaimState.COMPLETED | ClaimState.CLAIMED:
                raise IdempotencyKeyInFlight("a request with this Idempotency-Key is still being processed")
            case ClaimState.MISMATCH:
                raise IdempotencyKeyReused("this Idempotency-Key was used with a different request")

    async def _fetch_refund(self, refund_id: str) -> Refund | None:
        async with self._database.reading() as conn:
            return await refund_rows.fetch_refund(conn, refund_id)


def _external_kind(details: TransactionDetails) -> tuple[RefundKind | None, str | None]:
    """What a gateway transaction made outside the service is to us, and the id of the charge it gives back."""
    if details.kind is TransactionKind.REFUND and details.status is not GatewayTransactionStatus.VOIDED:
        return RefundKind.REFUND, details.ref_transaction_id
    if (
        details.kind in (TransactionKind.CHARGE, TransactionKind.AUTHORIZATION)
        and details.status is GatewayTransactionStatus.VOIDED
    ):
        return RefundKind.VOID, details.transaction_id
    return None, None


def _same_transaction(refunds: list[Refund], *, kind: RefundKind, details: TransactionDetails) -> Refund | None:
    """The refund of ours that `details` records: by its gateway transaction id, else by our refId (a lost answer)."""
    for refund in refunds:
        if (
            refund.gateway is not None
            and refund.gateway.transaction_id == details.transaction_id
            and refund.kind is kind
        ):
            return refund
    for refund in refunds:
        if refund.kind is not kind or refund.status is RefundStatus.FAILED:
            continue
        if kind is RefundKind.VOID or (details.ref_id is not None and details.ref_id == refund.ref_id):
            return refund
    return None


async def reverse_refused_charge(refunds: RefundService | None, payment: Payment, *, reason: str) -> Payment:
    """Give back an approved charge the db-service refused for its order; the payment as it then stands.

    Called when the order update after an approval answers 409 (`OrderUpdate.ORDER_CANCELLED`,
    `ORDER_ALREADY_PAID`; `reason` is its value): by the pay flow and the reconciler right after the
    approval, and by the order update sweep (`services/order_updates.py`) until it is done. A reversal that
    cannot be made now, or that the gateway refused or never made, is logged and the payment returned
    unchanged: the sweep tries again, and after its last attempt leaves it for a person (counted then,
    `payment_service_charge_reversals` with `result="left_for_a_person"`; `given_back` once the money is back).
    """
    if refunds is None:
        log.warning("payment.charge_reversal_deferred", payment_id=payment.payment_id, reason=reason)
        return payment
    try:
        reversal = await refunds.reverse_charge(payment, reason=reason)
    except Exception:  # the charge stands approved; the sweep tries again
        log.exception("payment.charge_reversal_failed", payment_id=payment.payment_id, reason=reason)
        return payment
    if reversal is None:  # refunds already give all of it back
        metrics.CHARGE_REVERSALS.labels(reason=reason, result="given_back").inc()
    # Otherwise counted when the reversal is settled (`RefundService.settle`), now or by the reconciler.
    return await refunds.current_payment(payment.payment_id)


def _count_reversal(reversal: Refund) -> None:
    """Count a settled automatic reversal once given back; one that failed is tried again by the order update sweep."""
    reason = reversal.reason or "unknown"
    if reversal.status is RefundStatus.SUCCEEDED:
        metrics.CHARGE_REVERSALS.labels(reason=reason, result="given_back").inc()
        return
    log.warning(
        "payment.charge_reversal_refused",
        payment_id=reversal.payment_id,
        refund_id=reversal.refund_id,
        reason=reason,
        gateway_message=reversal.gateway.message if reversal.gateway is not None else None,
    )
