"""Hand-written Authorize.Net JSON answers, shaped like the live gateway's (BOM first, NOTES §6)."""

from typing import Any

import orjson

BOM = b"\xef\xbb\xbf"
APPROVED_TEXT = "This transaction has been approved."


def encode(document: dict[str, Any], *, bom: bool = True) -> bytes:
    return (BOM if bom else b"") + orjson.dumps(document)


def ok_messages() -> dict[str, Any]:
    return {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]}


def error_messages(code: str = "E00027", text: str = "The transaction was unsuccessful.") -> dict[str, Any]:
    return {"resultCode": "Error", "message": [{"code": code, "text": text}]}


def transaction_response(response_code: str, **fields: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "responseCode": response_code,
        "authCode": "",
        "avsResultCode": "P",
        "cvvResultCode": "",
        "cavvResultCode": "",
        "transId": "80012345678",
        "refTransID": "",
        "transHash": "",
        "testRequest": "0",
        "accountNumber": "XXXX1111",
        "accountType": "Visa",
    }
    response.update(fields)
    return response


def approved(trans_id: str = "80012345678") -> bytes:
    response = transaction_response(
        "1",
        authCode="QW7T2K",
        avsResultCode="Y",
        cvvResultCode="M",
        transId=trans_id,
        messages=[{"code": "1", "description": APPROVED_TEXT}],
        transHashSha2="AB" * 64,
        SupplementalDataQualificationIndicator=0,  # not in the XSD: must be ignored
        networkTransId="123456789NNNH",
    )
    return encode({"transactionResponse": response, "refId": "att-7731-1", "messages": ok_messages()})


def held(reason: str = "252") -> bytes:
    text = "Your order has been received. Thank you for your business!"
    response = transaction_response("4", messages=[{"code": reason, "description": text}])
    return encode({"transactionResponse": response, "refId": "att-7731-1", "messages": ok_messages()})


def unsuccessful(response_code: str, reason: str, text: str, **fields: Any) -> bytes:
    response = transaction_response(response_code, errors=[{"errorCode": reason, "errorText": text}], **fields)
    return encode({"transactionResponse": response, "refId": "att-7731-1", "messages": error_messages()})


def declined(reason: str = "2") -> bytes:
    return unsuccessful("2", reason, "This transaction has been declined.")


def duplicate(trans_id: str = "80012345678") -> bytes:
    return unsuccessful("3", "11", "A duplicate transaction has been submitted.", transId=trans_id, authCode="QW7T2K")


def api_error(code: str, text: str = "An error occurred.") -> bytes:
    return encode({"messages": error_messages(code, text)})
