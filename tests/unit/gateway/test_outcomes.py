import pytest

from payment_service.domain.payments import ChargeOutcome, ChargeOutcomeKind, PaymentStatus
from payment_service.gateway import wire
from payment_service.gateway.outcomes import classify_transaction
from tests.unit.gateway import responses


def classify(body: bytes) -> ChargeOutcome:
    return classify_transaction(wire.read_create_transaction(wire.decode_body(body)))


class TestClassifyTransaction:
    def test_approval_carries_the_gateway_result(self) -> None:
        outcome = classify(responses.approved())

        assert outcome.kind is ChargeOutcomeKind.APPROVED
        assert outcome.payment_status is PaymentStatus.APPROVED
        result = outcome.result
        assert (result.transaction_id, result.auth_code, result.response_code) == ("80012345678", "QW7T2K", "1")
        assert (result.reason_code, result.message) == ("1", responses.APPROVED_TEXT)
        assert (result.avs_result, result.cvv_result) == ("Y", "M")
        assert (result.account_number, result.account_type) == ("XXXX1111", "Visa")

    @pytest.mark.parametrize("reason", ["252", "253"])
    def test_response_code_4_is_held_for_review_although_result_code_is_ok(self, reason: str) -> None:
        outcome = classify(responses.held(reason))

        assert outcome.kind is ChargeOutcomeKind.HELD_FOR_REVIEW
        assert outcome.result.reason_code == reason
        assert outcome.payment_status is PaymentStatus.HELD_FOR_REVIEW

    @pytest.mark.parametrize("reason", ["2", "4", "41", "250", "251", "254"])
    def test_hard_declines(self, reason: str) -> None:
        outcome = classify(responses.declined(reason))

        assert outcome.kind is ChargeOutcomeKind.DECLINED
        assert not outcome.soft_decline
        assert outcome.result.reason_code == reason
        assert outcome.result.message == "This transaction has been declined."

    @pytest.mark.parametrize("reason", ["3", "27", "44", "45", "65", "127"])
    def test_referrals_and_address_or_card_code_mismatches_are_soft_declines(self, reason: str) -> None:
        outcome = classify(responses.declined(reason))

        assert outcome.kind is ChargeOutcomeKind.DECLINED
        assert outcome.soft_decline

    @pytest.mark.parametrize("reason", ["5", "17", "33", "290"])
    def test_response_code_3_is_a_failure_that_charged_nothing(self, reason: str) -> None:
        outcome = classify(responses.unsuccessful("3", reason, "An error."))

        assert outcome.kind is ChargeOutcomeKind.FAILED
        assert outcome.payment_status is PaymentStatus.FAILED
        assert outcome.result.reason_code == reason

    @pytest.mark.parametrize("reason", ["6", "7", "8", "37", "78", "315", "316", "317"])
    def test_the_customers_own_card_data_is_a_soft_decline_not_a_gateway_fault(self, reason: str) -> None:
        outcome = classify(responses.unsuccessful("3", reason, "The credit card number is invalid."))

        assert outcome.kind is ChargeOutcomeKind.DECLINED
        assert outcome.soft_decline
        assert outcome.payment_status is PaymentStatus.DECLINED
        assert outcome.result.reason_code == reason

    def test_duplicate_returns_the_original_transaction_id_apart_from_the_result(self) -> None:
        outcome = classify(responses.duplicate("80099999999"))

        assert outcome.kind is ChargeOutcomeKind.DUPLICATE
        assert outcome.original_transaction_id == "80099999999"
        assert outcome.result.transaction_id is None
        assert outcome.result.auth_code == "QW7T2K"
        assert outcome.payment_status is PaymentStatus.UNKNOWN

    @pytest.mark.parametrize("trans_id", ["0", ""])
    def test_duplicate_without_a_real_transaction_id_has_no_original(self, trans_id: str) -> None:
        assert classify(responses.duplicate(trans_id)).original_transaction_id is None

    def test_reason_13_is_a_configuration_error(self) -> None:
        outcome = classify(responses.unsuccessful("3", "13", "The merchant login ID or password is invalid."))

        assert outcome.kind is ChargeOutcomeKind.CONFIGURATION_ERROR

    @pytest.mark.parametrize("reason", ["19", "120", "121", "122", "261"])
    def test_processor_time_outs_are_unknown(self, reason: str) -> None:
        outcome = classify(responses.unsuccessful("3", reason, "An error occurred during processing."))

        assert outcome.kind is ChargeOutcomeKind.UNKNOWN

    @pytest.mark.parametrize("code", ["E00005", "E00006", "E00007", "E00008", "E00009", "E00011"])
    def test_credential_and_set_up_codes_are_configuration_errors(self, code: str) -> None:
        outcome = classify(responses.api_error(code, "User authentication failed."))

        assert outcome.kind is ChargeOutcomeKind.CONFIGURATION_ERROR
        assert (outcome.result.reason_code, outcome.result.message) == (code, "User authentication failed.")

    @pytest.mark.parametrize("code", ["E00001", "E00049"])
    def test_internal_errors_and_gateway_time_outs_are_unknown(self, code: str) -> None:
        assert classify(responses.api_error(code)).kind is ChargeOutcomeKind.UNKNOWN

    @pytest.mark.parametrize("code", ["E00002", "E00004", "E00027", "E00040"])
    def test_other_api_errors_are_failures(self, code: str) -> None:
        assert classify(responses.api_error(code)).kind is ChargeOutcomeKind.FAILED

    @pytest.mark.parametrize("code", ["E00114", "E00115"])
    def test_unusable_opaque_data_is_a_soft_decline(self, code: str) -> None:
        outcome = classify(responses.api_error(code, "Invalid OTS Token."))

        assert outcome.kind is ChargeOutcomeKind.DECLINED
        assert outcome.soft_decline
        assert outcome.result.reason_code == code

    def test_schema_error_text_is_replaced_as_it_may_quote_card_data(self) -> None:
        text = "The 'cardCode' element is invalid - The value '12' is invalid according to its datatype"

        outcome = classify(responses.api_error("E00003", text))

        assert outcome.kind is ChargeOutcomeKind.FAILED
        assert outcome.result.reason_code == "E00003"
        assert "12" not in (outcome.result.message or "")

    def test_ok_without_a_transaction_layer_is_unknown(self) -> None:
        body = responses.encode({"messages": responses.ok_messages()})

        assert classify(body).kind is ChargeOutcomeKind.UNKNOWN

    def test_unexpected_response_code_is_unknown(self) -> None:
        body = responses.encode(
            {"transactionResponse": responses.transaction_response("9"), "messages": responses.ok_messages()}
        )

        assert classify(body).kind is ChargeOutcomeKind.UNKNOWN

    def test_empty_transaction_layer_falls_back_to_the_api_codes(self) -> None:
        body = responses.encode({"transactionResponse": {}, "messages": responses.error_messages("E00007")})

        assert classify(body).kind is ChargeOutcomeKind.CONFIGURATION_ERROR
