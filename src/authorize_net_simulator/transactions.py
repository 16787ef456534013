"""createTransactionRequest: charges, authorisations, captures, voids and refunds against the ledger.

Order of checks for a charge follows the gateway: amount (5), payment present (33), card number (6),
expiry (7, 8), card code format (78), duplicate window (11), then the decision: the legacy error
card, the decline ZIP (2), AVS/card-code filters (27, 44, 45, 65), fraud holds (252, 253).
Errors with responseCode 3 store nothing and answer transId "0"; declines and approvals are stored.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final, TypedDict

from authorize_net_simulator import cards
from authorize_net_simulator.codes import REASONS, reason
from authorize_net_simulator.documents import Node
from authorize_net_simulator.duplicates import DEFAULT_WINDOW_S, MAX_WINDOW_S, DuplicateKey, OriginalSubmission
from authorize_net_simulator.ledger import HELD_STATUSES, Transaction, TransactionStatus
from authorize_net_simulator.nonces import NONCE_DESCRIPTOR
from authorize_net_simulator.state import SimulatorState

CHARGE_TYPES: Final = frozenset({"authCaptureTransaction", "authOnlyTransaction", "captureOnlyTransaction"})
SUPPORTED_TYPES: Final = CHARGE_TYPES | {"priorAuthCaptureTransaction", "refundTransaction", "voidTransaction"}
REFUND_PERIOD: Final = timedelta(days=120)
_WEBHOOK_EVENTS: Final = {
    "authCaptureTransaction": "net.authorize.payment.authcapture.created",
    "authOnlyTransaction": "net.authorize.payment.authorization.created",
    "captureOnlyTransaction": "net.authorize.payment.capture.created",
    "priorAuthCaptureTransaction": "net.authorize.payment.priorAuthCapture.created",
    "refundTransaction": "net.authorize.payment.refund.created",
    "voidTransaction": "net.authorize.payment.void.created",
}


@dataclass(slots=True)
class TransactionOutcome:
    """What createTransactionResponse reports. `api_error` replaces the transaction answer entirely."""

    reason_code: int
    trans_id: str = "0"
    auth_code: str = ""
    avs_result: str = ""
    cvv_result: str = ""
    ref_trans_id: str = ""
    account_number: str = ""
    account_type: str = ""
    trans_hash_sha2: str = ""
    network_trans_id: str = ""
    api_error: str | None = None

    @property
    def response_code(self) -> str:
        return reason(self.reason_code)[0]


@dataclass(frozen=True, slots=True)
class _Card:
    number: str
    expiration: str
    code: str | None
    from_nonce: Node | None = None

    @property
    def last_four(self) -> str:
        return self.number[-4:]


class TransactionProcessor:
    def __init__(self, state: SimulatorState) -> None:
        self._state = state

    def process(
        self, request: Node, *, login_id: str, ref_id: str | None, hold_reason: int | None
    ) -> TransactionOutcome:
        transaction_type = request.get_text("transactionType") or ""
        now = self._state.clock()
        if transaction_type in CHARGE_TYPES:
            return self._charge(
                request, transaction_type, login_id=login_id, ref_id=ref_id, hold_reason=hold_reason, now=now
            )
        if transaction_type == "priorAuthCaptureTransaction":
            return self._capture(request, login_id=login_id, now=now)
        if transaction_type == "voidTransaction":
            return self._void(request, login_id=login_id)
        return self._refund(request, login_id=login_id, ref_id=ref_id, now=now)

    # Charges --------------------------------------------------------------------------------

    def _charge(
        self,
        request: Node,
        transaction_type: str,
        *,
        login_id: str,
        ref_id: str | None,
        hold_reason: int | None,
        now: datetime,
    ) -> TransactionOutcome:
        amount = _amount(request)
        if amount is None:
            return TransactionOutcome(5)
        if (request.get_text("currencyCode") or "USD") not in self._state.settings.accepted_currencies:
            return TransactionOutcome(39)
        if transaction_type == "captureOnlyTransaction" and not request.get_text("authCode"):
            return TransactionOutcome(12)
        card_or_error = self._card(request)
        if isinstance(card_or_error, TransactionOutcome):
            return card_or_error
        card = card_or_error
        brand = cards.card_brand(card.number)
        problem = _card_problem(card, brand, now)
        if problem is not None:
            return TransactionOutcome(problem, account_number="XXXX" + card.last_four, account_type=brand)
        window_s, window_sent = _duplicate_window(request)
        key = _duplicate_key(request, login_id, card.number, card.expiration, transaction_type, amount, window_s)
        duplicate = self._duplicate_outcome(key, window_sent, now)
        if duplicate is not None:
            return duplicate
        if card.from_nonce is not None:
            nonce = self._state.nonces.look_up(card.from_nonce.get_text("dataValue") or "", now)
            if nonce is None or nonce.spent:
                return TransactionOutcome(0, api_error="E00114")
            nonce.spent = True
        return self._decide_charge(
            request,
            transaction_type,
            card,
            brand,
            amount,
            key,
            window_s,
            login_id=login_id,
            ref_id=ref_id,
            hold_reason=hold_reason,
            now=now,
        )

    def _card(self, request: Node) -> "_Card | TransactionOutcome":
        payment = request.get("payment")
        credit_card = payment.get("creditCard") if payment is not None else None
        if credit_card is not None:
            return _Card(
                credit_card.get_text("cardNumber") or "",
                credit_card.get_text("expirationDate") or "",
                credit_card.get_text("cardCode"),
            )
        opaque = payment.get("opaqueData") if payment is not None else None
        if opaque is not None:
            if opaque.get_text("dataDescriptor") != NONCE_DESCRIPTOR:
                return TransactionOutcome(0, api_error="E00114")
            value = opaque.get_text("dataValue") or ""
            nonce = self._state.nonces.look_up(value, self._state.clock())
            if nonce is None:
                expired = self._state.nonces.find_expired(value, self._state.clock())
                return TransactionOutcome(0, api_error="E00115" if expired else "E00114")
            return _Card(nonce.card_number, nonce.expiration, nonce.card_code, from_nonce=opaque)
        if payment is not None:
            return TransactionOutcome(17)  # bank accounts, track data, PayPal, EMV: not accepted here
        return TransactionOutcome(33)

    def _duplicate_outcome(self, key: DuplicateKey, window_sent: bool, now: datetime) -> TransactionOutcome | None:
        original = self._state.duplicates.find(key, now)
        if original is None:
            return None
        if not window_sent:
            return TransactionOutcome(11)
        return TransactionOutcome(
            11,
            trans_id=original.trans_id,
            auth_code=original.auth_code if original.response_code == "1" else "",
            avs_result=original.avs_result,
            cvv_result=original.cvv_result,
            account_number=original.account_number,
            account_type=original.account_type,
        )

    def _decide_charge(
        self,
        request: Node,
        transaction_type: str,
        card: _Card,
        brand: str,
        amount: Decimal,
        key: DuplicateKey,
        window_s: int,
        *,
        login_id: str,
        ref_id: str | None,
        hold_reason: int | None,
        now: datetime,
    ) -> TransactionOutcome:
        settings = self._state.settings
        bill_to = request.get("billTo")
        zip_code = bill_to.get_text("zip") if bill_to is not None else None
        address_sent = bill_to is not None and bool(bill_to.get_text("address") or zip_code)
        avs = cards.avs_result(zip_code, brand, address_sent=address_sent)
        cvv = cards.cvv_result(card.code)
        code = 1
        if card.number == cards.LEGACY_ERROR_CARD and amount == amount.to_integral_value() and int(amount) in REASONS:
            code = int(amount)
            if reason(code)[0] == "3":
                return TransactionOutcome(
                    code, avs_result=avs, cvv_result=cvv, account_number="XXXX" + card.last_four, account_type=brand
                )
        elif zip_code == cards.DECLINE_ZIP:
            code = 2
        elif avs in settings.avs_reject_codes and cvv in settings.cvv_reject_codes:
            code = 45
        elif avs in settings.avs_reject_codes:
            code = 27
        elif cvv in settings.cvv_processor_reject_codes:
            code = 44
        elif cvv in settings.cvv_reject_codes:
            code = 65
        elif transaction_type != "captureOnlyTransaction":
            code = self._hold_reason(zip_code, amount, hold_reason) or 1
        status = _charge_status(transaction_type, code)
        trans_id = self._state.ledger.new_trans_id()
        approved_or_held = code == 1 or code == 253
        auth_code = (request.get_text("authCode") if transaction_type == "captureOnlyTransaction" else None) or (
            _auth_code() if approved_or_held else ""
        )
        settle_amount = (
            amount
            if status
            in (TransactionStatus.CAPTURED_PENDING_SETTLEMENT, TransactionStatus.FDS_AUTHORIZED_PENDING_REVIEW)
            and transaction_type != "authOnlyTransaction"
            else Decimal("0")
        )
        transaction = Transaction(
            trans_id=trans_id,
            transaction_type=transaction_type,
            status=status,
            response_code=reason(code)[0],
            reason_code=code,
            submitted_at=now,
            requested_amount=amount,
            auth_amount=amount if approved_or_held else Decimal("0"),
            settle_amount=settle_amount,
            last_four=card.last_four,
            account_type=brand,
            auth_code=auth_code,
            avs_result=avs,
            cvv_result=cvv,
            ref_id=ref_id,
            network_trans_id=_network_trans_id() if approved_or_held else "",
            fds_filter="Amount Filter" if code in (252, 253) else None,
            **_descriptive_fields(request),
        )
        self._state.ledger.add(transaction)
        self._state.duplicates.remember(
            key,
            OriginalSubmission(
                trans_id, now, window_s, transaction.response_code, auth_code, avs, cvv, "XXXX" + card.last_four, brand
            ),
        )
        self._notify(transaction, transaction_type)
        return self._outcome(transaction, login_id=login_id)

    def _hold_reason(self, zip_code: str | None, amount: Decimal, fault_hold: int | None) -> int | None:
        if fault_hold is not None:
            return fault_hold
        if zip_code in cards.HOLD_ZIP_TRIGGERS:
            return cards.HOLD_ZIP_TRIGGERS[zip_code]
        threshold = self._state.settings.hold_amount_over
        if threshold is not None and amount > threshold:
            return 253
        return None

    # Follow-ups -----------------------------------------------------------------------------

    def _capture(self, request: Node, *, login_id: str, now: datetime) -> TransactionOutcome:
        original = self._referenced(request)
        if original is None:
            return TransactionOutcome(16)
        if original.status is TransactionStatus.CAPTURED_PENDING_SETTLEMENT or (
            original.is_settled and original.transaction_type == "authOnlyTransaction"
        ):
            return TransactionOutcome(311, ref_trans_id=original.trans_id)
        if (
            original.transaction_type != "authOnlyTransaction"
            or original.status is not TransactionStatus.AUTHORIZED_PENDING_CAPTURE
        ):
            return TransactionOutcome(16, ref_trans_id=original.trans_id)
        amount = _amount(request) if request.get("amount") is not None else original.auth_amount
        if amount is None:
            return TransactionOutcome(5)
        if amount > original.auth_amount:
            return TransactionOutcome(47, ref_trans_id=original.trans_id)
        original.status = TransactionStatus.CAPTURED_PENDING_SETTLEMENT
        original.settle_amount = amount
        self._notify(original, "priorAuthCaptureTransaction", amount=amount)
        return self._outcome(
            original, login_id=login_id, ref_trans_id=original.trans_id, amount=amount, avs="P", cvv=""
        )

    def _void(self, request: Node, *, login_id: str) -> TransactionOutcome:
        original = self._referenced(request)
        if original is None:
            return TransactionOutcome(16)
        if original.status is TransactionStatus.VOIDED:
            return TransactionOutcome(
                310,
                trans_id=original.trans_id,
                ref_trans_id=original.trans_id,
                auth_code=original.auth_code,
                avs_result="P",
                account_number="XXXX" + original.last_four,
                account_type=original.account_type,
            )
        if original.is_settled:
            return TransactionOutcome(311, ref_trans_id=original.trans_id)
        if original.status in (TransactionStatus.DECLINED, TransactionStatus.EXPIRED):
            return TransactionOutcome(16, ref_trans_id=original.trans_id)
        original.status = TransactionStatus.VOIDED
        original.settle_amount = Decimal("0")
        if original.transaction_type == "refundTransaction" and original.ref_trans_id is not None:
            refunded = self._state.ledger.get(original.ref_trans_id)
            if refunded is not None:
                refunded.refunded_amount -= original.requested_amount
        self._notify(original, "voidTransaction")
        return self._outcome(
            original, login_id=login_id, ref_trans_id=original.trans_id, amount=original.auth_amount, avs="P", cvv=""
        )

    def _refund(self, request: Node, *, login_id: str, ref_id: str | None, now: datetime) -> TransactionOutcome:
        original = self._referenced(request)
        if original is None:
            return TransactionOutcome(54)
        amount = _amount(request)
        if amount is None:
            return TransactionOutcome(5)
        if (request.get_text("currencyCode") or "USD") not in self._state.settings.accepted_currencies:
            return TransactionOutcome(39)
        payment = request.get("payment")
        credit_card = payment.get("creditCard") if payment is not None else None
        if credit_card is None:
            return TransactionOutcome(33)
        card_number = credit_card.get_text("cardNumber") or ""
        refundable = (
            original.status is TransactionStatus.SETTLED_SUCCESSFULLY
            and original.transaction_type != "refundTransaction"
        )
        if not refundable or now - original.submitted_at > REFUND_PERIOD or card_number[-4:] != original.last_four:
            return TransactionOutcome(54, ref_trans_id=original.trans_id)
        if amount > original.settle_amount - original.refunded_amount:
            return TransactionOutcome(55, ref_trans_id=original.trans_id)
        window_s, window_sent = _duplicate_window(request)
        key = _duplicate_key(
            request,
            login_id,
            original.last_four,
            credit_card.get_text("expirationDate"),
            "refundTransaction",
            amount,
            window_s,
        )
        duplicate = self._duplicate_outcome(key, window_sent, now)
        if duplicate is not None:
            return duplicate
        refund = Transaction(
            trans_id=self._state.ledger.new_trans_id(),
            transaction_type="refundTransaction",
            status=TransactionStatus.REFUND_PENDING_SETTLEMENT,
            response_code="1",
            reason_code=1,
            submitted_at=now,
            requested_amount=amount,
            auth_amount=amount,
            settle_amount=amount,
            last_four=original.last_four,
            account_type=original.account_type,
            avs_result="P",
            ref_id=ref_id,
            ref_trans_id=original.trans_id,
            **_descriptive_fields(request),
        )
        self._state.ledger.add(refund)
        original.refunded_amount += amount
        self._state.duplicates.remember(
            key,
            OriginalSubmission(
                refund.trans_id, now, window_s, "1", "", "P", "", "XXXX" + refund.last_four, refund.account_type
            ),
        )
        self._notify(refund, "refundTransaction")
        return self._outcome(refund, login_id=login_id, ref_trans_id=original.trans_id)

    def _referenced(self, request: Node) -> Transaction | None:
        ref_trans_id = request.get_text("refTransId")
        return self._state.ledger.get(ref_trans_id) if ref_trans_id else None

    # Held transactions ----------------------------------------------------------------------

    def review(self, trans_id: str, *, approve: bool, login_id: str) -> TransactionOutcome:
        """Approve or decline a transaction held by the fraud filters (updateHeldTransaction)."""
        held = self._state.ledger.get(trans_id)
        if held is None or held.status not in HELD_STATUSES:
            return TransactionOutcome(16)
        if approve:
            if held.auth_code == "":
                held.auth_code = _auth_code()
            held.auth_amount = held.requested_amount
            held.status = (
                TransactionStatus.AUTHORIZED_PENDING_CAPTURE
                if held.transaction_type == "authOnlyTransaction"
                else TransactionStatus.CAPTURED_PENDING_SETTLEMENT
            )
            held.settle_amount = (
                Decimal("0") if held.transaction_type == "authOnlyTransaction" else held.requested_amount
            )
            held.reason_code, held.response_code = 1, "1"
            event = "net.authorize.payment.fraud.approved"
        else:
            held.status = (
                TransactionStatus.VOIDED
                if held.status is TransactionStatus.FDS_AUTHORIZED_PENDING_REVIEW
                else TransactionStatus.DECLINED
            )
            held.settle_amount = Decimal("0")
            held.reason_code, held.response_code = 254, "2"
            event = "net.authorize.payment.fraud.declined"
        self._state.webhooks.emit(
            event,
            trans_id=held.trans_id,
            response_code=held.response_code,
            auth_code=held.auth_code,
            avs_result=held.avs_result,
            amount=held.requested_amount,
            invoice_number=held.invoice_number,
        )
        return self._outcome(held, login_id=login_id)

    # Shared ---------------------------------------------------------------------------------

    def _notify(self, transaction: Transaction, transaction_type: str, *, amount: Decimal | None = None) -> None:
        if transaction.status in HELD_STATUSES:
            event, action = (
                "net.authorize.payment.fraud.held",
                "authAndHold" if transaction.reason_code == 253 else "hold",
            )
        elif transaction.response_code == "1":
            event, action = _WEBHOOK_EVENTS[transaction_type], None
        else:
            return
        self._state.webhooks.emit(
            event,
            trans_id=transaction.trans_id,
            response_code=transaction.response_code,
            auth_code=transaction.auth_code,
            avs_result=transaction.avs_result,
            amount=amount if amount is not None else transaction.requested_amount,
            invoice_number=transaction.invoice_number,
            fraud_action=action,
        )

    def _outcome(
        self,
        transaction: Transaction,
        *,
        login_id: str,
        ref_trans_id: str = "",
        amount: Decimal | None = None,
        avs: str | None = None,
        cvv: str | None = None,
    ) -> TransactionOutcome:
        hashed_amount = amount if amount is not None else transaction.requested_amount
        return TransactionOutcome(
            transaction.reason_code,
            trans_id=transaction.trans_id,
            auth_code=transaction.auth_code,
            avs_result=transaction.avs_result if avs is None else avs,
            cvv_result=transaction.cvv_result if cvv is None else cvv,
            ref_trans_id=ref_trans_id,
            account_number="XXXX" + transaction.last_four,
            account_type=transaction.account_type,
            trans_hash_sha2=self.trans_hash_sha2(login_id, transaction.trans_id, hashed_amount),
            network_trans_id=transaction.network_trans_id,
        )

    def trans_hash_sha2(self, login_id: str, trans_id: str, amount: Decimal) -> str:
        """HMAC-SHA512 over ^login^transId^amount^ keyed with the hex-decoded signature key (NOTES §6)."""
        try:
            key = bytes.fromhex(self._state.settings.signature_key.get_secret_value())
        except ValueError:
            return ""
        message = f"^{login_id}^{trans_id}^{amount:.2f}^".encode()
        return hmac.new(key, message, hashlib.sha512).hexdigest().upper()


def _card_problem(card: _Card, brand: str, now: datetime) -> int | None:
    if not cards.is_valid_card_number(card.number):
        return 6
    expiry = cards.parse_expiry(card.expiration)
    if expiry is None:
        return 7
    if cards.is_expired(*expiry, now):
        return 8
    if card.code is not None and not cards.is_valid_card_code(card.code, brand):
        return 78
    return None


def _amount(request: Node) -> Decimal | None:
    text = request.get_text("amount")
    if text is None:
        return None
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None


def _duplicate_window(request: Node) -> tuple[int, bool]:
    settings = request.get("transactionSettings")
    for setting in settings.get_all("setting") if settings is not None else ():
        if setting.get_text("settingName") == "duplicateWindow":
            try:
                return min(max(int(setting.get_text("settingValue") or "0"), 0), MAX_WINDOW_S), True
            except ValueError:
                return DEFAULT_WINDOW_S, True
    return DEFAULT_WINDOW_S, False


def _duplicate_key(
    request: Node,
    login_id: str,
    card_number: str,
    expiration: str | None,
    transaction_type: str,
    amount: Decimal,
    window_s: int,
) -> DuplicateKey:
    order = request.get("order")
    customer = request.get("customer")
    bill_to = request.get("billTo")
    # The card enters the key as a digest: the window store must not hold card numbers.
    card_digest = hashlib.sha256(card_number.encode()).hexdigest()
    return (
        login_id,
        card_digest,
        expiration,
        transaction_type,
        request.get_text("poNumber"),
        str(amount.normalize()),
        order.get_text("invoiceNumber") if order is not None else None,
        customer.get_text("id") if customer is not None else None,
        *(
            bill_to.get_text(name) if bill_to is not None else None
            for name in ("firstName", "lastName", "company", "address", "city", "state", "zip", "country")
        ),
        str(window_s),
    )


class _Descriptive(TypedDict):
    invoice_number: str | None
    description: str | None
    po_number: str | None
    customer_id: str | None
    customer_email: str | None
    customer_ip: str | None
    bill_to: dict[str, str]
    ship_to: dict[str, str]
    line_items: list[dict[str, str]]


def _descriptive_fields(request: Node) -> _Descriptive:
    order = request.get("order")
    customer = request.get("customer")
    line_items = request.get("lineItems")
    return {
        "invoice_number": order.get_text("invoiceNumber") if order is not None else None,
        "description": order.get_text("description") if order is not None else None,
        "po_number": request.get_text("poNumber"),
        "customer_id": customer.get_text("id") if customer is not None else None,
        "customer_email": customer.get_text("email") if customer is not None else None,
        "customer_ip": request.get_text("customerIP"),
        "bill_to": _flat_fields(request.get("billTo")),
        "ship_to": _flat_fields(request.get("shipTo")),
        "line_items": [_flat_fields(item) for item in line_items.get_all("lineItem")] if line_items is not None else [],
    }


def _flat_fields(node: Node | None) -> dict[str, str]:
    if node is None:
        return {}
    return {child.name: child.text for child in node.iter_children() if child.text is not None}


def _charge_status(transaction_type: str, code: int) -> TransactionStatus:
    if code == 252:
        return TransactionStatus.FDS_PENDING_REVIEW
    if code == 253:
        return TransactionStatus.FDS_AUTHORIZED_PENDING_REVIEW
    if code != 1:
        return TransactionStatus.DECLINED
    if transaction_type == "authOnlyTransaction":
        return TransactionStatus.AUTHORIZED_PENDING_CAPTURE
    return TransactionStatus.CAPTURED_PENDING_SETTLEMENT


def _auth_code() -> str:
    return secrets.token_hex(3).upper()


def _network_trans_id() -> str:
    return secrets.token_hex(12).upper()[:23]
