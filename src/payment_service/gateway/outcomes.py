"""What an Authorize.Net answer to a transaction means: one `ChargeOutcome` for every answer.

The three layers are read in order (NOTES §6): the transaction layer (`responseCode` and its reason
code) decides when present; without it the top-level message codes (E000xx) decide. A top-level
`resultCode` of "Ok" is never taken as "paid" by itself: responseCode 4 comes with "Ok" too.

Decisions, with the reason codes of NOTES §7:
* responseCode 1 → approved; 4 → held for review (252, 253).
* responseCode 2 → declined. *Soft* declines are the ones the customer can cure and retry: a
  referral (3: call the issuer) and address or card-code mismatches caught by the merchant's filters
  (27, 44, 45, 65, 127). Everything else (general decline, lost or stolen card, fraud score,
  declined after review) is *hard*.
* responseCode 3 → failed (not charged), except: reason 11/318 → duplicate (an earlier identical
  charge went through; its transId comes back when duplicateWindow was sent); reason 13 (login or
  key invalid) → configuration error; processor time-outs whose automatic void may have failed
  (19, 120, 121, 122, 261) → unknown; the customer's own card data (invalid number 6, 37, 315;
  invalid or past expiry 7, 8, 316, 317; invalid card code 78) → a soft decline, as the customer
  cures it with another card, and the gateway is not at fault.
* No transaction layer: E00005 to E00009 and E00011 (credentials, inactive account, test mode, access
  denied) → configuration error; E00001 (unexpected system error) and E00049 (operation timed out)
  → unknown, as the gateway may have processed the request; opaque data that is garbage, spent or
  expired (E00114, E00115) → a soft decline, for the same reason as a bad card number; any other
  error (E00003 schema …) → failed; an "Ok" without a transaction layer → unknown.
"""

from payment_service.domain.payments import ChargeOutcome, ChargeOutcomeKind, GatewayResult
from payment_service.gateway.wire import ApiResult, CreateTransactionResponse, TransactionResponse

CONFIGURATION_CODES = frozenset({"E00005", "E00006", "E00007", "E00008", "E00009", "E00011"})
TRY_AGAIN_CODES = frozenset({"E00001", "E00049"})
NOT_FOUND_CODE = "E00040"

SOFT_DECLINE_REASONS = frozenset({"3", "27", "44", "45", "65", "127"})
DUPLICATE_REASONS = frozenset({"11", "318"})
CONFIGURATION_REASONS = frozenset({"13"})
CARD_INPUT_REASONS = frozenset({"6", "7", "8", "37", "78", "315", "316", "317"})
OPAQUE_DATA_CODES = frozenset({"E00114", "E00115"})
UNKNOWN_REASONS = frozenset({"19", "120", "121", "122", "261"})
# Their texts may quote the offending input (a card code, say), so they are replaced by our own.
INPUT_ECHOING_CODES = frozenset({"E00003", "E00013", "E00014", "E00015"})
INPUT_REJECTED_TEXT = "The gateway rejected the request's content."

NO_ANSWER = GatewayResult(message="No answer was read from the gateway.")


def classify_transaction(response: CreateTransactionResponse) -> ChargeOutcome:
    transaction = response.transaction
    if transaction is None or transaction.response_code is None:
        return classify_api_result(response.result)
    result = _gateway_result(transaction)
    reason = result.reason_code or ""
    match transaction.response_code:
        case "1":
            return ChargeOutcome(ChargeOutcomeKind.APPROVED, result)
        case "4":
            return ChargeOutcome(ChargeOutcomeKind.HELD_FOR_REVIEW, result)
        case "2":
            return ChargeOutcome(ChargeOutcomeKind.DECLINED, result, soft_decline=reason in SOFT_DECLINE_REASONS)
        case "3" if reason in DUPLICATE_REASONS:
            # The transId (when present) is the original's: adopt it only after looking it up.
            original = _real_transaction_id(transaction.trans_id)
            return ChargeOutcome(
                ChargeOutcomeKind.DUPLICATE, _without_transaction_id(result), original_transaction_id=original
            )
        case "3" if reason in CARD_INPUT_REASONS:
            return ChargeOutcome(ChargeOutcomeKind.DECLINED, result, soft_decline=True)
        case "3" if reason in CONFIGURATION_REASONS:
            return ChargeOutcome(ChargeOutcomeKind.CONFIGURATION_ERROR, result)
        case "3" if reason in UNKNOWN_REASONS:
            return ChargeOutcome(ChargeOutcomeKind.UNKNOWN, result)
        case "3":
            return ChargeOutcome(ChargeOutcomeKind.FAILED, result)
        case _:
            return ChargeOutcome(ChargeOutcomeKind.UNKNOWN, result)


def classify_api_result(result: ApiResult) -> ChargeOutcome:
    """An answer without a transaction layer: the top-level message codes decide."""
    codes = result.codes
    first = result.messages[0] if result.messages else None
    text = first.text if first else None
    if first and first.code in INPUT_ECHOING_CODES:
        text = INPUT_REJECTED_TEXT
    gateway_result = GatewayResult(reason_code=first.code if first else None, message=text)
    if CONFIGURATION_CODES.intersection(codes):
        return ChargeOutcome(ChargeOutcomeKind.CONFIGURATION_ERROR, gateway_result)
    if TRY_AGAIN_CODES.intersection(codes) or result.is_ok:
        return ChargeOutcome(ChargeOutcomeKind.UNKNOWN, gateway_result)
    if OPAQUE_DATA_CODES.intersection(codes):
        return ChargeOutcome(ChargeOutcomeKind.DECLINED, gateway_result, soft_decline=True)
    return ChargeOutcome(ChargeOutcomeKind.FAILED, gateway_result)


def is_configuration_error(result: ApiResult) -> bool:
    return not CONFIGURATION_CODES.isdisjoint(result.codes)


def is_try_again(result: ApiResult) -> bool:
    return not TRY_AGAIN_CODES.isdisjoint(result.codes)


def _gateway_result(transaction: TransactionResponse) -> GatewayResult:
    # Declines and errors explain themselves in errors[], approvals and holds in messages[].
    reason = (transaction.errors or transaction.messages or (None,))[0]
    return GatewayResult(
        transaction_id=_real_transaction_id(transaction.trans_id),
        auth_code=transaction.auth_code,
        response_code=transaction.response_code,
        reason_code=reason.code if reason else None,
        message=reason.text if reason else None,
        avs_result=transaction.avs_result_code,
        cvv_result=transaction.cvv_result_code,
        account_number=transaction.account_number,
        account_type=transaction.account_type,
    )


def _real_transaction_id(trans_id: str | None) -> str | None:
    # "0" is what Test Mode returns: nothing was stored under it.
    return trans_id if trans_id and trans_id != "0" else None


def _without_transaction_id(result: GatewayResult) -> GatewayResult:
    return GatewayResult(
        response_code=result.response_code,
        reason_code=result.reason_code,
        message=result.message,
        auth_code=result.auth_code,
        avs_result=result.avs_result,
        cvv_result=result.cvv_result,
        account_number=result.account_number,
        account_type=result.account_type,
    )
