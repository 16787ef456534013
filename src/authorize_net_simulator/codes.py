"""Message codes and response reason codes with the real gateway's texts (responseCodes.json).

A reason code maps to the `responseCode` it travels with: 1 approved, 2 declined, 3 error, 4 held.
"""

from typing import Final

API_MESSAGES: Final = {
    "I00001": "Successful.",
    "E00001": "An error occurred during processing. Please try again.",
    "E00002": "The content-type specified is not supported.",
    "E00003": "An error occurred while parsing the XML request.",
    "E00004": "The name of the requested API method is invalid.",
    "E00007": "User authentication failed due to invalid authentication values.",
    "E00011": "Access denied. You do not have permissions to call the Transaction Details API.",
    "E00013": "The field is invalid.",
    "E00027": "The transaction was unsuccessful.",
    "E00040": "The record cannot be found.",
    "E00045": "The root node does not reference a valid XML namespace.",
    "E00053": "The server is currently too busy, please try again later.",
    "E00114": "Invalid OTS Token.",
    "E00115": "OTS Token has expired.",
}

# reason code -> (responseCode, text)
REASONS: Final[dict[int, tuple[str, str]]] = {
    1: ("1", "This transaction has been approved."),
    2: ("2", "This transaction has been declined."),
    3: ("2", "This transaction has been declined."),
    4: ("2", "This transaction has been declined."),
    5: ("3", "A valid amount is required."),
    6: ("3", "The credit card number is invalid."),
    7: ("3", "Credit card expiration date is invalid."),
    8: ("3", "The credit card has expired."),
    11: ("3", "A duplicate transaction has been submitted."),
    12: ("3", "An authorization code is required but not present."),
    13: ("3", "The merchant login ID or password is invalid or the account is inactive."),
    15: ("3", "The transaction ID is invalid or not present."),
    16: ("3", "The transaction cannot be found."),
    17: ("3", "The merchant does not accept this type of credit card."),
    19: ("3", "An error occurred during processing. Please try again in 5 minutes."),
    39: (
        "3",
        "The supplied currency code is either invalid, not supported, not allowed for this merchant "
        "or doesn't have an exchange rate.",
    ),
    27: (
        "2",
        "The transaction has been declined because of an AVS mismatch. The address provided does not match billing address of cardholder.",
    ),
    33: ("3", "Credit card number is required."),
    35: ("3", "An error occurred during processing. Call Merchant Service Provider."),
    44: ("2", "This transaction has been declined."),
    45: ("2", "This transaction has been declined."),
    47: ("3", "The amount requested for settlement cannot be greater than the original amount authorized."),
    54: ("3", "The referenced transaction does not meet the criteria for issuing a credit."),
    55: ("3", "The sum of credits against the referenced transaction would exceed original debit amount."),
    65: ("2", "This transaction has been declined."),
    78: ("3", "The Card Code (CVV2/CVC2/CID) is invalid."),
    252: ("4", "Your order has been received. Thank you for your business!"),
    253: ("4", "Your order has been received. Thank you for your business!"),
    254: ("2", "This transaction has been declined."),
    310: ("1", "This transaction has already been voided."),
    311: ("3", "This transaction has already been captured."),
}


def reason(code: int) -> tuple[str, str]:
    """The responseCode and text of a reason code; unknown codes read as a general error."""
    return REASONS.get(code, ("3", "An error occurred during processing."))
