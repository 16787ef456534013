from datetime import UTC, datetime
from decimal import Decimal

import pytest

from payment_service.domain.transactions import GatewayTransactionStatus, TransactionKind
from payment_service.gateway import wire
from tests.unit.gateway import responses


class TestDecodeBody:
    def test_leading_bom_is_dropped(self) -> None:
        assert wire.decode_body(responses.api_error("E00007"))["messages"]["resultCode"] == "Error"

    def test_body_without_bom_is_read_too(self) -> None:
        body = responses.encode({"messages": responses.ok_messages()}, bom=False)

        assert wire.decode_body(body)["messages"]["resultCode"] == "Ok"

    def test_answer_wrapped_in_its_method_name_is_unwrapped(self) -> None:
        body = responses.encode({"authenticateTestResponse": {"messages": responses.ok_messages()}})

        assert wire.read_result(wire.decode_body(body)).is_ok

    @pytest.mark.parametrize("body", [b"", b"<html>502</html>", b"\xef\xbb\xbf[1, 2]", b'"text"'])
    def test_anything_but_a_json_object_is_a_wire_format_error(self, body: bytes) -> None:
        with pytest.raises(wire.WireFormatError):
            wire.decode_body(body)

    def test_answer_without_messages_is_a_wire_format_error(self) -> None:
        with pytest.raises(wire.WireFormatError, match="no messages"):
            wire.read_result({"refId": "x", "other": 1})


class TestReadCreateTransaction:
    def test_all_three_layers_are_read(self) -> None:
        response = wire.read_create_transaction(wire.decode_body(responses.approved()))

        assert response.result == wire.ApiResult("Ok", (wire.ApiMessage("I00001", "Successful."),), "att-7731-1")
        assert response.transaction is not None
        assert response.transaction.response_code == "1"
        assert response.transaction.messages == (wire.ApiMessage("1", responses.APPROVED_TEXT),)
        assert response.transaction.errors == ()

    def test_errors_are_read_from_the_flattened_array(self) -> None:
        response = wire.read_create_transaction(wire.decode_body(responses.declined("2")))

        assert response.transaction is not None
        assert response.transaction.errors == (wire.ApiMessage("2", "This transaction has been declined."),)

    def test_errors_in_xml_shape_and_numeric_scalars_are_read_too(self) -> None:
        body = responses.encode(
            {
                "messages": responses.error_messages(),
                "transactionResponse": {"responseCode": 2, "errors": {"error": {"errorCode": 2, "errorText": "No."}}},
            }
        )

        response = wire.read_create_transaction(wire.decode_body(body))

        assert response.transaction is not None
        assert response.transaction.response_code == "2"
        assert response.transaction.errors == (wire.ApiMessage("2", "No."),)

    def test_empty_strings_read_as_absent(self) -> None:
        response = wire.read_create_transaction(wire.decode_body(responses.held()))

        assert response.transaction is not None
        assert response.transaction.auth_code is None
        assert response.transaction.ref_trans_id is None


def details_document(**transaction: object) -> dict[str, object]:
    record: dict[str, object] = {
        "transId": "80012345678",
        "submitTimeUTC": "2025-03-01T18:22:41.123Z",
        "submitTimeLocal": "2025-03-01T12:22:41.123",
        "transactionType": "authCaptureTransaction",
        "transactionStatus": "capturedPendingSettlement",
        "responseCode": 1,
        "responseReasonCode": 1,
        "responseReasonDescription": "Approval",
        "authCode": "QW7T2K",
        "AVSResponse": "Y",
        "cardCodeResponse": "M",
        "order": {"invoiceNumber": "ORD-7731", "description": "2 widgets"},
        "requestedAmount": 24.99,
        "authAmount": 24.99,
        "settleAmount": "24.99",
        "payment": {"creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX", "cardType": "Visa"}},
        "unknownFutureField": {"x": 1},
    }
    record.update(transaction)
    return {"transaction": record, "transrefId": "att-7731-1", "messages": responses.ok_messages()}


class TestReadTransactionDetails:
    def test_details_become_a_domain_record(self) -> None:
        details = wire.read_transaction_details(details_document())

        assert details.transaction_id == "80012345678"
        assert details.kind is TransactionKind.CHARGE
        assert details.status is GatewayTransactionStatus.CAPTURED
        assert details.gateway_status == "capturedPendingSettlement"
        assert details.submitted_at == datetime(2025, 3, 1, 18, 22, 41, 123000, tzinfo=UTC)
        assert (details.response_code, details.reason_code) == ("1", "1")
        assert details.ref_id == "att-7731-1"
        assert details.invoice_number == "ORD-7731"
        assert (details.auth_amount, details.settle_amount, details.requested_amount) == (
            Decimal("24.99"),
            Decimal("24.99"),
            Decimal("24.99"),
        )
        assert (details.avs_result, details.cvv_result) == ("Y", "M")
        assert (details.account_number, details.card_last4, details.account_type) == ("XXXX1111", "1111", "Visa")

    def test_submit_time_without_offset_is_utc(self) -> None:
        details = wire.read_transaction_details(details_document(submitTimeUTC="2025-03-01T18:22:41.1234567"))

        assert details.submitted_at.tzinfo is UTC

    def test_settled_batch_is_read(self) -> None:
        batch = {
            "batchId": "12345",
            "settlementTimeUTC": "2025-03-02T02:00:00Z",
            "settlementState": "settledSuccessfully",
        }

        details = wire.read_transaction_details(details_document(batch=batch, transactionStatus="settledSuccessfully"))

        assert details.batch_id == "12345"
        assert details.settled_at == datetime(2025, 3, 2, 2, tzinfo=UTC)
        assert details.status.can_refund

    def test_unknown_status_reads_as_unrecognized(self) -> None:
        details = wire.read_transaction_details(details_document(transactionStatus="somethingNew"))

        assert details.status is GatewayTransactionStatus.UNRECOGNIZED
        assert details.gateway_status == "somethingNew"

    def test_missing_transaction_is_a_wire_format_error(self) -> None:
        with pytest.raises(wire.WireFormatError):
            wire.read_transaction_details({"messages": responses.ok_messages()})


def summary(trans_id: str, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "transId": trans_id,
        "submitTimeUTC": "2025-03-01T18:22:41Z",
        "submitTimeLocal": "2025-03-01T12:22:41",
        "transactionStatus": "capturedPendingSettlement",
        "invoiceNumber": "ORD-7731",
        "firstName": "Jo",
        "lastName": "Rivera",
        "accountType": "Visa",
        "accountNumber": "XXXX1111",
        "settleAmount": 24.99,
        "marketType": "eCommerce",
        "product": "Card Not Present",
    }
    row.update(fields)
    return row


class TestReadUnsettledList:
    def test_rows_become_domain_records(self) -> None:
        document = {
            "transactions": [summary("2", transactionStatus="FDSPendingReview"), summary("1")],
            "totalNumInResultSet": 7,
            "messages": responses.ok_messages(),
        }

        page = wire.read_unsettled_list(document)

        assert page.total_count == 7
        assert [row.transaction_id for row in page.transactions] == ["2", "1"]
        first = page.transactions[0]
        assert first.status is GatewayTransactionStatus.HELD_FOR_REVIEW
        assert (first.invoice_number, first.settle_amount, first.card_last4) == ("ORD-7731", Decimal("24.99"), "1111")
        assert first.submitted_at == datetime(2025, 3, 1, 18, 22, 41, tzinfo=UTC)

    def test_xml_shaped_list_is_read_too(self) -> None:
        document = {"transactions": {"transaction": [summary("5")]}, "messages": responses.ok_messages()}

        page = wire.read_unsettled_list(document)

        assert [row.transaction_id for row in page.transactions] == ["5"]
        assert page.total_count is None  # not sent: never guessed from the page

    def test_no_records_is_an_empty_page(self) -> None:
        document = {"messages": {"resultCode": "Ok", "message": [{"code": "I00004", "text": "No records found."}]}}

        page = wire.read_unsettled_list(document)

        assert page.transactions == ()
        assert page.total_count is None
