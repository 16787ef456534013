"""`RefundReconciler`: settles refunds and voids whose answer was lost, from the gateway itself; never re-sends.

It looks at refunds in `unknown`, and at those left `processing` longer than `processing_grace_s` (the
process died between writing the refund and recording the gateway's answer, perhaps before sending).
* A void: the charge's own details say whether it is voided now.
* A refund: it carries its own refId, sent as the invoice number too, so it is found among the unsettled
  transactions (paged newest first, back to when it was written, minus the skew margin and how far the
  gateway's clock is behind ours, by the refunded charge's submit time or the `Date` of the gateway's answers,
  whichever lags most) and then among the settled batches,
  and confirmed through its details (refId, or the refunded charge's id with the amount).
Found: succeeded, recorded with its events as `RefundService.settle` does for an answer read at once.
Not found `not_found_grace_s` after it was written: failed, which gives its amount back to what may still
be refunded. Otherwise wait for the next round. A refund settled meanwhile by someone else (a webhook)
is skipped: the version guard fails for whoever writes second.

This lives apart from `reconciliation.py` (charges) on purpose: the two share the worker, not their rules.
"""

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from sqlalchemy.exc import SQLAlchemyError

from payment_service.db_service.client import DbServiceClient
from payment_service.domain.errors import (
    DbServiceError,
    DbServiceUnavailable,
    GatewayConfigurationError,
    GatewayError,
    GatewayUnavailable,
    OrderNotFound,
    PaymentVersionConflict,
)
from payment_service.domain.payments import GatewayResult, Payment
from payment_service.domain.refunds import Refund, RefundKind, RefundStatus
from payment_service.domain.transactions import (
    GatewayTransactionStatus,
    TransactionDetails,
    TransactionKind,
    TransactionSummary,
)
from payment_service.gateway.client import AuthorizeNetGateway, is_last_page
from payment_service.services import metrics
from payment_service.services.orders import fetch_order_context
from payment_service.services.payment_events import OrderContext
from payment_service.services.refunds import RefundService, gateway_result_of
from payment_service.settings import ReconcilerSettings
from payment_service.store import payments as payment_rows
from payment_service.store import refunds as refund_rows
from payment_service.store.database import Database

log = structlog.get_logger(__name__)

NOT_FOUND_MESSAGE: Final = "No such refund or void was found at the gateway; no money was moved."
_MAX_PAGES: Final = 100_000


class RefundReconciler:
    def __init__(
        self,
        *,
        database: Database,
        gateway: AuthorizeNetGateway,
        db_service: DbServiceClient,
        refunds: RefundService,
        settings: ReconcilerSettings,
        clock: Callable[[], datetime] | None = None,  # aware UTC now; tests pin it
    ) -> None:
        self._database = database
        self._gateway = gateway
        self._db_service = db_service
        self._refunds = refunds
        self._settings = settings
        self._now = clock or (lambda: datetime.now(UTC))

    async def run(self) -> None:
        """Reconcile every `interval_s` until cancelled; a failed round is logged and retried next time."""
        while True:
            try:
                await self.reconcile_once()
            except (GatewayUnavailable, GatewayConfigurationError, SQLAlchemyError) as exc:
                log.warning("refund_reconciler.round_failed", error=type(exc).__name__)
            except Exception:  # the loop must outlive any one bad round
                log.exception("refund_reconciler.round_crashed")
            await asyncio.sleep(self._settings.interval_s)

    async def reconcile_once(self) -> dict[str, RefundStatus]:
        """Look at every unsettled refund once; the refunds settled in this round, by id, with their new status.

        Raises:
            GatewayUnavailable, GatewayConfigurationError: the round stopped; the rest waits for the next.
        """
        now = self._now()
        cutoff = now - timedelta(seconds=self._settings.processing_grace_s)
        async with self._database.reading() as conn:
            found = await refund_rows.fetch_unsettled_refunds(conn, limit=self._settings.batch_size)
        settled: dict[str, RefundStatus] = {}
        for refund in found:
            if refund.status is RefundStatus.PROCESSING and refund.updated_at > cutoff:
                continue  # its request may still be waiting for the gateway's answer
            try:
                status = await self._settle(refund, now=now)
            except GatewayError as exc:
                log.warning("refund_reconciler.lookup_failed", refund_id=refund.refund_id, error=str(exc))
                continue
            if status is not None:
                settled[refund.refund_id] = status
        async with self._database.reading() as conn:
            remaining = await refund_rows.fetch_unsettled_refunds(conn, limit=self._settings.batch_size)
        metrics.UNSETTLED_REFUNDS.set(sum(1 for r in remaining if r.status is RefundStatus.UNKNOWN))
        return settled

    async def _settle(self, refund: Refund, *, now: datetime) -> RefundStatus | None:
        async with self._database.reading() as conn:
            payment = await payment_rows.fetch_payment(conn, refund.payment_id)
        charge_id = payment.gateway.transaction_id if payment is not None and payment.gateway is not None else None
        if payment is None or charge_id is None:
            log.error("refund_reconciler.payment_missing", refund_id=refund.refund_id)
            return None
        if refund.kind is RefundKind.VOID:
            details = await self._find_void(refund, charge_id)
        else:
            details = await self._find_refund(refund, charge_id, await self._gateway_lag(payment, charge_id))
        if details is not None:
            result = gateway_result_of(details)
            context = await self._order_context(payment)
            if context is None:
                return None
            return await self._store(refund, RefundStatus.SUCCEEDED, result, context)
        if now - refund.created_at < timedelta(seconds=self._settings.not_found_grace_s):
            return None
        return await self._store(refund, RefundStatus.FAILED, GatewayResult(message=NOT_FOUND_MESSAGE), None)

    async def _find_void(self, refund: Refund, charge_id: str) -> TransactionDetails | None:
        details = await self._gateway.fetch_transaction_details(charge_id)
        return details if details is not None and details.status is GatewayTransactionStatus.VOIDED else None

    async def _gateway_lag(self, payment: Payment, charge_id: str) -> timedelta:
        """How far the gateway's clock is behind ours (zero if ahead), by whichever measure says it lags most.

        Measured on the refunded charge's submit time and on the `Date` header of the gateway's answers.

        The refund's row carries the gateway's time; our margin alone would stop the search short of it
        when the gateway lags more than the margin, and a refund that happened would be called failed.
        """
        details = await self._gateway.fetch_transaction_details(charge_id)
        # That answer's `Date` measured the gateway's clock too: the larger lag of the two wins.
        answered = self._gateway.clock_skew
        lag = max(-answered.skew_s, 0.0) if answered is not None else 0.0
        if details is not None and payment.sent_at is not None:
            lag = max(lag, (payment.sent_at - details.submitted_at).total_seconds())
        return timedelta(seconds=lag)

    async def _find_refund(self, refund: Refund, charge_id: str, gateway_lag: timedelta) -> TransactionDetails | None:
        submitted_after = refund.created_at - timedelta(seconds=self._settings.lookback_margin_s) - gateway_lag
        page_size = self._settings.page_size
        for offset in range(1, _MAX_PAGES + 1):
            page = await self._gateway.fetch_unsettled_transactions(page_size, offset, newest_first=True)
            for row in page.transactions:
                if row.submitted_at < submitted_after:
                    break
                details = await self._confirm(refund, charge_id, row)
                if details is not None:
                    return details
            else:
                if not is_last_page(page.transactions, page_size):
                    continue
            break
        rows = self._gateway.fetch_settled_transactions(submitted_after=submitted_after, page_size=page_size)
        async with aclosing(rows):
            async for row in rows:
                details = await self._confirm(refund, charge_id, row)
                if details is not None:
                    return details
        return None

    async def _confirm(self, refund: Refund, charge_id: str, row: TransactionSummary) -> TransactionDetails | None:
        if row.invoice_number != refund.ref_id:
            return None
        details = await self._gateway.fetch_transaction_details(row.transaction_id)
        if details is None or details.kind is not TransactionKind.REFUND:
            return None
        if details.ref_id == refund.ref_id or (
            details.ref_transaction_id == charge_id and details.settle_amount == refund.amount.amount
        ):
            return details
        return None

    async def _order_context(self, payment: Payment) -> OrderContext | None:
        try:
            order = await self._db_service.fetch_order(payment.order_id)
            return await fetch_order_context(self._db_service, order)
        except (DbServiceUnavailable, DbServiceError, OrderNotFound) as exc:
            # order.refunded cannot be built without the order: settle it next round.
            log.warning("refund_reconciler.order_unreadable", payment_id=payment.payment_id, error=exc.code)
            return None

    async def _store(
        self, refund: Refund, status: RefundStatus, result: GatewayResult, context: OrderContext | None
    ) -> RefundStatus | None:
        try:
            await self._refunds.settle(refund, status=status, result=result, context=context)
        except PaymentVersionConflict:
            log.info("refund_reconciler.refund_changed_meanwhile", refund_id=refund.refund_id)
            return None
        log.info(
            "refund.reconciled", refund_id=refund.refund_id, status=status.value, transaction_id=result.transaction_id
        )
        return status
