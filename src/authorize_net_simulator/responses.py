"""Response trees in XSD element order: envelopes, transactionResponse, and reporting records."""

from datetime import datetime
from decimal import Decimal

from authorize_net_simulator.codes import API_MESSAGES, reason
from authorize_net_simulator.ledger import Batch, Transaction, TransactionStatus
from authorize_net_simulator.rendering import Flat, Tree
from authorize_net_simulator.transactions import TransactionOutcome


def envelope(code: str, *, ref_id: str | None = None, text: str | None = None) -> Tree:
    """RefId (when known) and messages; the caller adds the method's own elements after them."""
    tree: Tree = {}
    if ref_id is not None:
        tree["refId"] = ref_id
    result = "Ok" if code.startswith("I") else "Error"
    tree["messages"] = {"resultCode": result, "message": [{"code": code, "text": text or API_MESSAGES[code]}]}
    return tree


def transaction_response(outcome: TransactionOutcome, *, ref_id: str | None) -> Tree:
    """A whole createTransactionResponse body for an outcome (E00027 for declines and errors)."""
    if outcome.api_error is not None:
        return envelope(outcome.api_error, ref_id=ref_id)
    response_code, text = reason(outcome.reason_code)
    tree = envelope("I00001" if response_code in ("1", "4") else "E00027", ref_id=ref_id)
    body: Tree = {
        "responseCode": response_code,
        "authCode": outcome.auth_code,
        "avsResultCode": outcome.avs_result,
        "cvvResultCode": outcome.cvv_result,
        "cavvResultCode": "",
        "transId": outcome.trans_id,
        "refTransID": outcome.ref_trans_id,
        "transHash": "",
        "testRequest": "0",
        "accountNumber": outcome.account_number,
        "accountType": outcome.account_type,
    }
    code = str(outcome.reason_code)
    if response_code in ("1", "4"):
        body["messages"] = Flat("message", [{"code": code, "description": text}])
    else:
        body["errors"] = Flat("error", [{"errorCode": code, "errorText": text}])
    body["transHashSha2"] = outcome.trans_hash_sha2
    if outcome.network_trans_id:
        body["networkTransId"] = outcome.network_trans_id
    tree["transactionResponse"] = body
    return tree


def timestamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def local_timestamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}"


def money(amount: Decimal) -> str:
    # Two decimals at least; a three-decimal currency keeps its third (never rounded away).
    exponent = amount.as_tuple().exponent
    return f"{amount:f}" if isinstance(exponent, int) and exponent < -2 else f"{amount:.2f}"


def transaction_details(transaction: Transaction) -> Tree:
    """The transactionDetailsType record for getTransactionDetails, in XSD order."""
    details: Tree = {"transId": transaction.trans_id}
    _put(details, refTransId=transaction.ref_trans_id)
    details |= {
        "submitTimeUTC": timestamp(transaction.submitted_at),
        "submitTimeLocal": local_timestamp(transaction.submitted_at),
        "transactionType": transaction.transaction_type,
        "transactionStatus": transaction.status.value,
        "responseCode": transaction.response_code,
        "responseReasonCode": str(transaction.reason_code),
        "responseReasonDescription": reason(transaction.reason_code)[1],
    }
    _put(
        details,
        authCode=transaction.auth_code,
        AVSResponse=transaction.avs_result,
        cardCodeResponse=transaction.cvv_result,
    )
    if transaction.fds_filter is not None:
        action = "authAndHold" if transaction.reason_code == 253 else "hold"
        details["FDSFilterAction"] = action
        details["FDSFilters"] = Flat("FDSFilter", [{"name": transaction.fds_filter, "action": action}])
    if transaction.batch_id is not None and transaction.settled_at is not None:
        details["batch"] = {
            "batchId": transaction.batch_id,
            "settlementTimeUTC": timestamp(transaction.settled_at),
            "settlementTimeLocal": local_timestamp(transaction.settled_at),
            "settlementState": "settledSuccessfully",
        }
    _put(details, order=_present({"invoiceNumber": transaction.invoice_number, "description": transaction.description}))
    details |= {
        "requestedAmount": money(transaction.requested_amount),
        "authAmount": money(transaction.auth_amount),
        "settleAmount": money(transaction.settle_amount),
    }
    if transaction.line_items:
        details["lineItems"] = Flat("lineItem", [dict(item) for item in transaction.line_items])
    details["payment"] = {
        "creditCard": {
            "cardNumber": "XXXX" + transaction.last_four,
            "expirationDate": "XXXX",
            "cardType": transaction.account_type,
        }
    }
    _put(
        details,
        customer=_present({"id": transaction.customer_id, "email": transaction.customer_email}),
        billTo=dict(transaction.bill_to),
        shipTo=dict(transaction.ship_to),
    )
    details["recurringBilling"] = "false"
    _put(details, customerIP=transaction.customer_ip)
    details |= {"product": "Card Not Present", "marketType": "eCommerce"}
    _put(details, networkTransId=transaction.network_trans_id)
    return details


def _put(tree: Tree, **values: str | Tree | None) -> None:
    """Add the values that are present (not None, not empty), in the order given."""
    for name, value in values.items():
        if value:
            tree[name] = value


def transaction_summary(transaction: Transaction) -> Tree:
    """TransactionSummaryType for the transaction lists."""
    summary: Tree = {
        "transId": transaction.trans_id,
        "submitTimeUTC": timestamp(transaction.submitted_at),
        "submitTimeLocal": local_timestamp(transaction.submitted_at),
        "transactionStatus": transaction.status.value,
    }
    if transaction.invoice_number is not None:
        summary["invoiceNumber"] = transaction.invoice_number
    for source, target in (("firstName", "firstName"), ("lastName", "lastName")):
        if source in transaction.bill_to:
            summary[target] = transaction.bill_to[source]
    summary["accountType"] = transaction.account_type
    summary["accountNumber"] = "XXXX" + transaction.last_four
    summary["settleAmount"] = money(transaction.settle_amount)
    summary["marketType"] = "eCommerce"
    summary["product"] = "Card Not Present"
    if transaction.fds_filter is not None:
        filters: Tree = {"fraudFilter": transaction.fds_filter}
        summary["fraudInformation"] = {
            "fraudFilterList": filters,
            "fraudAction": "authAndHold" if transaction.reason_code == 253 else "hold",
        }
    return summary


# The required elements of batchStatisticType after accountType, in schema order.
_STATISTICS = ("chargeAmount", "chargeCount", "refundAmount", "refundCount", "voidCount", "declineCount", "errorCount")


def batch_details(batch: Batch, *, statistics: list[Transaction] | None = None) -> Tree:
    """A batchDetailsType; with `statistics` (the batch's transactions), its totals per card type."""
    details: Tree = {
        "batchId": batch.batch_id,
        "settlementTimeUTC": timestamp(batch.settled_at),
        "settlementTimeLocal": local_timestamp(batch.settled_at),
        "settlementState": "settledSuccessfully",
        "paymentMethod": "creditCard",
        "marketType": "eCommerce",
        "product": "Card Not Present",
    }
    if statistics is not None:
        details["statistics"] = Flat("statistic", batch_statistics(statistics))
    return details


def batch_statistics(transactions: list[Transaction]) -> list[Tree]:
    """The statistics of a batch, one per account type, with the schema's required elements in order."""
    totals: dict[str, dict[str, Decimal]] = {}
    for transaction in transactions:
        entry = totals.setdefault(transaction.account_type, dict.fromkeys(_STATISTICS, Decimal(0)))
        if transaction.status is TransactionStatus.SETTLED_SUCCESSFULLY:
            entry["chargeAmount"] += transaction.settle_amount
            entry["chargeCount"] += 1
        elif transaction.status is TransactionStatus.REFUND_SETTLED_SUCCESSFULLY:
            entry["refundAmount"] += transaction.settle_amount
            entry["refundCount"] += 1
        elif transaction.status is TransactionStatus.VOIDED:
            entry["voidCount"] += 1
        elif transaction.status is TransactionStatus.DECLINED:
            entry["errorCount" if transaction.response_code == "3" else "declineCount"] += 1
    statistics: list[Tree] = []
    for account_type, entry in sorted(totals.items()):
        statistic: Tree = {"accountType": account_type}
        for key, value in entry.items():
            statistic[key] = money(value) if key.endswith("Amount") else str(value)
        statistics.append(statistic)
    return statistics


def _present(fields: dict[str, str | None]) -> Tree:
    return {key: value for key, value in fields.items() if value is not None}
