"""The errors the payment service raises on purpose.

```
PaymentServiceError
├── AuthenticationFailed              missing, invalid or expired token
│   └── WebhookSignatureInvalid       a gateway notification without a valid signature
├── PermissionDenied                  authenticated, but not allowed (admin-only action)
├── NotFound
│   ├── OrderNotFound                 missing, or owned by someone else
│   └── PaymentNotFound
├── Conflict
│   ├── OrderNotPayable               paid, cancelled, nothing to pay
│   │   ├── CurrencyNotAccepted       the order's currency is not one the merchant account takes
│   │   └── AmountPrecisionExceeded   an amount has more decimals than its currency's minor unit
│   ├── OrderRefusedPayment           the db-service refused an approved payment (cancelled, paid by another)
│   ├── PaymentInProgress             another attempt for the order is active
│   ├── PaymentVersionConflict        the payment changed since it was read (a concurrent update)
│   ├── IdempotencyKeyInFlight        the same key is being processed
│   ├── PaymentNotRefundable          nothing captured to give back (declined, voided …)
│   │   └── NothingLeftToRefund       all that was captured is given back, or being given back
│   ├── PartialVoidNotAllowed         part of an unsettled payment: void it whole, or wait for settlement
│   └── ResolutionRefused             a manual decision the payment or the gateway contradicts
├── InvalidRequest
│   ├── AmountMismatch                client amount differs from the order total
│   ├── CustomerMismatch              client customer id differs from the token's
│   ├── InvalidCard                   Luhn, expiry, CVV
│   ├── RawCardInputDisabled          card numbers are not accepted by configuration
│   ├── IdempotencyKeyReused          same key, different request
│   ├── RefundNotAllowed              more than captured, wrong state
│   └── RequestTooLarge               a body above the configured bound
├── DependencyUnavailable             retriable: nothing was changed
│   ├── DbServiceUnavailable
│   ├── GatewayUnavailable            the request never reached the gateway
│   └── MessagingUnavailable
├── DbServiceError                    the db-service answered with an unexpected error
│   └── DbServiceDataInvalid          an order the db-service sent cannot be priced (a negative amount)
├── InvalidEvent                      a consumed event that can never be processed (undecodable, off schema)
├── GatewayError                      the gateway answered a read with an unexpected error
│   └── ChargeRequestInvalid          a charge request that cannot be built: nothing was sent
└── GatewayConfigurationError         credentials or merchant set-up rejected (E00007 …)
```
Errors carry a stable `code` and `retriable`, never an HTTP status: `api/errors.py` owns that table.
Messages never contain card data or secrets.
"""

from typing import ClassVar


class PaymentServiceError(Exception):
    """Base of every error the service raises on purpose."""

    code: ClassVar[str] = "internal_error"
    retriable: ClassVar[bool] = False  # True only when repeating the same call is safe

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message())

    @property
    def message(self) -> str:
        return str(self.args[0])

    @classmethod
    def default_message(cls) -> str:
        return cls.code.replace("_", " ")


class AuthenticationFailed(PaymentServiceError):
    code = "unauthenticated"


class WebhookSignatureInvalid(AuthenticationFailed):
    code = "webhook_signature_invalid"


class PermissionDenied(PaymentServiceError):
    code = "forbidden"


class NotFound(PaymentServiceError):
    code = "not_found"


class OrderNotFound(NotFound):
    code = "order_not_found"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class PaymentNotFound(NotFound):
    code = "payment_not_found"

    def __init__(self, payment_id: str) -> None:
        super().__init__(f"payment {payment_id} not found")
        self.payment_id = payment_id


class Conflict(PaymentServiceError):
    code = "conflict"


class OrderNotPayable(Conflict):
    code = "order_not_payable"

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id} cannot be paid: {reason}")
        self.order_id = order_id


class CurrencyNotAccepted(OrderNotPayable):
    code = "currency_not_accepted"


class AmountPrecisionExceeded(OrderNotPayable):
    # Never rounded: charging 60 for a JPY order priced 59.97 misstates the charge.
    code = "amount_precision_exceeds_currency"


class OrderRefusedPayment(Conflict):
    # The db-service answered 409 to an approved payment: the order was cancelled meanwhile
    # (`order_cancelled`) or another attempt paid it (`order_already_paid`). The charge stands.
    code = "order_refused_payment"

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id} refused the payment: {reason}")
        self.order_id = order_id
        self.reason = reason


class PaymentInProgress(Conflict):
    code = "payment_in_progress"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"a payment for order {order_id} is already in progress or done")
        self.order_id = order_id


class PaymentVersionConflict(Conflict):
    code = "payment_version_conflict"

    def __init__(self, payment_id: str) -> None:
        super().__init__(f"payment {payment_id} was changed concurrently")
        self.payment_id = payment_id


class IdempotencyKeyInFlight(Conflict):
    # The first request with this key has not finished; the client should retry later with the same key.
    code = "idempotency_key_in_flight"


class PaymentNotRefundable(Conflict):
    code = "payment_not_refundable"


class NothingLeftToRefund(PaymentNotRefundable):
    # Whatever amount is asked, "all that is left" included: the payment's state, not the amount, refuses it.
    code = "nothing_left_to_refund"


class PartialVoidNotAllowed(Conflict):
    # Before settlement the gateway can only void a transaction whole.
    code = "partial_refund_before_settlement"


class InvalidRequest(PaymentServiceError):
    code = "invalid_request"


class AmountMismatch(InvalidRequest):
    code = "amount_mismatch"


class CustomerMismatch(InvalidRequest):
    code = "customer_mismatch"


class InvalidCard(InvalidRequest):
    code = "invalid_card"


class RawCardInputDisabled(InvalidRequest):
    code = "raw_card_input_disabled"


class IdempotencyKeyReused(InvalidRequest):
    code = "idempotency_key_reused"


class RefundNotAllowed(InvalidRequest):
    code = "refund_not_allowed"


class RequestTooLarge(InvalidRequest):
    code = "request_too_large"


class ResolutionRefused(Conflict):
    # An operator's decision the stored payment or the gateway's record contradicts; nothing changed.
    code = "resolution_refused"


class DependencyUnavailable(PaymentServiceError):
    code = "dependency_unavailable"
    retriable = True


class DbServiceUnavailable(DependencyUnavailable):
    code = "db_service_unavailable"


class GatewayUnavailable(DependencyUnavailable):
    # Nothing reached the gateway (connect failed), so the card was certainly not charged.
    code = "gateway_unavailable"


class MessagingUnavailable(DependencyUnavailable):
    code = "messaging_unavailable"


class DbServiceError(PaymentServiceError):
    code = "db_service_error"


class DbServiceDataInvalid(DbServiceError):
    # The db-service's own data breaks a rule it should keep (a negative tax or shipping amount).
    code = "db_service_data_invalid"


class GatewayError(PaymentServiceError):
    # A lookup (reporting API) got an error answer we cannot act on, e.g. a schema error: a bug or an outage.
    code = "gateway_error"


class ChargeRequestInvalid(GatewayError):
    # Refused while building the request, before anything was sent: the attempt is `failed`, not `unknown`.
    code = "charge_request_invalid"


class GatewayConfigurationError(PaymentServiceError):
    code = "gateway_configuration_error"


class InvalidEvent(PaymentServiceError):
    # Redelivering it changes nothing: the consumer sends it to the dead-letter topic and moves on.
    code = "invalid_event"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # a short, stable word: undecodable, invalid_schema, unsupported_type
