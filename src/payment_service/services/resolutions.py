"""`ResolutionService`: an operator's decision on a payment the service could not settle itself.

Only `unknown` and `held_for_review` payments are decided by hand. `approved` needs the gateway's
transaction id and is accepted only when the reconciler confirms it (`Reconciler.confirm_charge`: a charge
of this payment's invoice, amount and card that no other payment records) and the gateway shows it
captured: a typo cannot mark an uncharged order paid. `failed` is refused while the gateway shows a charge
of the payment (or a hold a person may still approve), found as the reconciler finds one. The change is
stored like any other: version-guarded, with its transition, its outbox rows (`payment.*`, and
`order.paid` for an approval) and the resolution (who, when, why).
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

import structlog

from payment_service.db_service.client import DbServiceClient
from payment_service.domain.errors import InvalidRequest, PaymentNotFound, ResolutionRefused
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.gateway.client import AuthorizeNetGateway
from payment_service.services.order_updates import tell_order
from payment_service.services.orders import fetch_order_context
from payment_service.services.payment_events import OrderContext, payment_events
from payment_service.services.reconciliation import Reconciler, adopt_transaction
from payment_service.store import outbox, resolutions
from payment_service.store import payments as payment_rows
from payment_service.store.database import Database

log = structlog.get_logger(__name__)

_DECIDABLE = frozenset({PaymentStatus.UNKNOWN, PaymentStatus.HELD_FOR_REVIEW})
_CHARGED_OR_HELD = frozenset({PaymentStatus.APPROVED, PaymentStatus.HELD_FOR_REVIEW})


class Resolution(StrEnum):
    APPROVED = "approved"
    FAILED = "failed"


class ResolutionService:
    def __init__(
        self,
        *,
        database: Database,
        gateway: AuthorizeNetGateway,
        db_service: DbServiceClient,
        reconciler: Reconciler,
        outbox_written: Callable[[], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._reconciler = reconciler
        self._database = database
        self._gateway = gateway
        self._db_service = db_service
        self._outbox_written = outbox_written
        self._now = clock or (lambda: datetime.now(UTC))

    async def resolve(
        self, payment_id: str, *, status: Resolution, reason: str, actor: str, transaction_id: str | None = None
    ) -> Payment:
        """Decide `payment_id` as `status`; returns the payment as stored.

        Raises:
            PaymentNotFound: no such payment.
            InvalidRequest: `approved` without a transaction id.
            ResolutionRefused: the payment is not undecided, or the gateway's record contradicts the decision.
            GatewayUnavailable, GatewayError, DbServiceUnavailable: a check could not be made; nothing changed.
            PaymentVersionConflict: the payment changed meanwhile; nothing changed.
        """
        async with self._database.reading() as conn:
            payment = await payment_rows.fetch_payment(conn, payment_id)
        if payment is None:
            raise PaymentNotFound(payment_id)
        if payment.status not in _DECIDABLE:
            raise ResolutionRefused(f"only unknown or held payments are resolved by hand; this one is {payment.status}")
        match status:
            case Resolution.APPROVED:
                if transaction_id is None:
                    raise InvalidRequest("approving needs the gateway's transaction id")
                changed = await self._approved(payment, transaction_id)
            case Resolution.FAILED:
                changed = await self._failed(payment, reason)
        return await self._store(payment, changed, actor=actor, reason=reason)

    async def _approved(self, payment: Payment, transaction_id: str) -> Payment:
        details = await self._reconciler.confirm_charge(payment, transaction_id)
        if details is None:
            raise ResolutionRefused(
                f"the gateway has no charge {transaction_id} of this payment's invoice, amount and card "
                "that no other payment records"
            )
        if details.status.payment_status is not PaymentStatus.APPROVED:
            raise ResolutionRefused(f"the gateway reports transaction {transaction_id} as {details.gateway_status}")
        return adopt_transaction(payment, details, now=self._now())

    async def _failed(self, payment: Payment, reason: str) -> Payment:
        # Searched as the reconciler searches; a match that names no attempt may be this one's charge too.
        details = await self._reconciler.find_possible_charge(payment)
        if details is not None and details.status.payment_status in _CHARGED_OR_HELD:
            raise ResolutionRefused(
                f"the gateway reports transaction {details.transaction_id} as {details.gateway_status}; "
                "approve it with that transaction id, or decline or void it at the gateway first"
            )
        return replace(
            payment,
            status=PaymentStatus.FAILED,
            gateway=replace(payment.gateway or GatewayResult(), message=f"Resolved by an operator: {reason}"[:512]),
            version=payment.version + 1,
            updated_at=self._now(),
            captured_amount=Decimal(0),
        )

    async def _store(self, previous: Payment, changed: Payment, *, actor: str, reason: str) -> Payment:
        context: OrderContext | None = None
        if changed.status is PaymentStatus.APPROVED:
            context = await fetch_order_context(self._db_service, await self._db_service.fetch_order(changed.order_id))
        async with self._database.transaction() as conn:
            await payment_rows.update_payment(conn, changed, previous=previous, reason="manual_resolution")
            await resolutions.add_resolution(conn, changed, previous=previous, actor=actor, reason=reason)
            await outbox.add_events(conn, payment_events(changed, context))
        log.info(
            "payment.resolved",
            payment_id=changed.payment_id,
            order_id=changed.order_id,
            from_status=previous.status.value,
            status=changed.status.value,
            actor=actor,
        )
        if self._outbox_written is not None:
            self._outbox_written()
        # An order that refuses a manual approval has the charge given back by the order update sweep.
        await tell_order(self._database, self._db_service, None, changed)
        return changed

    async def list_by_status(self, status: PaymentStatus, *, updated_before: datetime, limit: int) -> list[Payment]:
        """Payments in `status` not changed since `updated_before`, oldest first."""
        async with self._database.reading() as conn:
            found = await payment_rows.fetch_payments_by_status(
                conn, {status}, updated_before=updated_before, limit=limit
            )
        return list(found)
