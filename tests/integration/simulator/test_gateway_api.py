"""The simulator's API in-process (ASGI): envelopes, validation, credentials, card triggers."""

from typing import Any

import pytest

from authorize_net_simulator.app import API_PATH
from authorize_net_simulator.settings import SimulatorSettings
from tests.integration.simulator.conftest import AUTH, Gateway, make_charge

NS = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"


def first_message(answer: dict[str, Any]) -> tuple[str, str, str]:
    messages = answer["messages"]
    return messages["resultCode"], messages["message"][0]["code"], messages["message"][0]["text"]


def reason_of(answer: dict[str, Any]) -> tuple[str, str]:
    response = answer["transactionResponse"]
    entries = response.get("messages") or response.get("errors")
    first = entries[0]
    return response["responseCode"], first.get("code") or first["errorCode"]


class TestEnvelope:
    async def test_an_approved_json_charge_is_ok_with_the_reason_in_messages(self, gateway: Gateway) -> None:
        answer = await gateway.transact(make_charge())
        assert first_message(answer) == ("Ok", "I00001", "Successful.")
        response = answer["transactionResponse"]
        assert response["responseCode"] == "1"
        assert response["accountNumber"] == "XXXX1111"
        assert response["accountType"] == "Visa"
        assert response["messages"] == [{"code": "1", "description": "This transaction has been approved."}]
        assert len(response["authCode"]) == 6
        assert len(response["transHashSha2"]) == 128
        assert answer["refId"] == "r-1"

    async def test_an_xml_request_gets_a_namespaced_xml_answer_with_a_bom(self, gateway: Gateway) -> None:
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><authenticateTestRequest xmlns="{NS}"><merchantAuthentication>'
            f"<name>{AUTH['name']}</name><transactionKey>{AUTH['transactionKey']}</transactionKey></merchantAuthentication>"
            "<refId>x1</refId></authenticateTestRequest>"
        )
        response = await gateway.client.post(API_PATH, content=body, headers={"content-type": "application/xml"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/xml")
        text = response.content.decode("utf-8")
        assert text.startswith("\ufeff<?xml")
        assert f'xmlns="{NS}"' in text
        assert "<authenticateTestResponse " in text
        assert "<refId>x1</refId>" in text
        assert "<code>I00001</code>" in text

    async def test_an_xml_charge_answers_in_xml_with_nested_message_elements(self, gateway: Gateway) -> None:
        body = (
            f'<createTransactionRequest xmlns="{NS}"><merchantAuthentication><name>{AUTH["name"]}</name>'
            f"<transactionKey>{AUTH['transactionKey']}</transactionKey></merchantAuthentication><transactionRequest>"
            "<transactionType>authCaptureTransaction</transactionType><amount>5.00</amount><payment><creditCard>"
            "<cardNumber>4111111111111111</cardNumber><expirationDate>2035-12</expirationDate></creditCard></payment>"
            "</transactionRequest></createTransactionRequest>"
        )
        response = await gateway.client.post(API_PATH, content=body, headers={"content-type": "text/xml"})
        text = response.content.decode("utf-8-sig")
        assert (
            "<messages><message><code>1</code><description>This transaction has been approved.</description></message></messages>"
            in text
        )

    async def test_an_out_of_order_element_is_e00003_with_the_real_wording(self, gateway: Gateway) -> None:
        transaction = make_charge()
        transaction["order"] = transaction.pop("order")
        answer = await gateway.transact(transaction)
        result, code, text = first_message(answer)
        assert (result, code) == ("Error", "E00003")
        assert "transactionResponse" not in answer
        assert text.startswith(
            f"The element 'transactionRequest' in namespace '{NS}' has invalid child element 'order' in namespace '{NS}'. List of possible elements expected: '"
        )

    async def test_an_unknown_element_is_e00003(self, gateway: Gateway) -> None:
        transaction = {"transactionType": "authCaptureTransaction", "amount": "5.00", "bogus": "1"}
        _, code, text = first_message(await gateway.transact(transaction))
        assert code == "E00003"
        assert "invalid child element 'bogus'" in text

    async def test_wrong_credentials_are_e00007(self, gateway: Gateway) -> None:
        request = {
            "createTransactionRequest": {
                "merchantAuthentication": {"name": AUTH["name"], "transactionKey": "wrongKey00000000"},
                "transactionRequest": make_charge(),
            }
        }
        answer = await gateway.call(request)
        assert first_message(answer) == (
            "Error",
            "E00007",
            "User authentication failed due to invalid authentication values.",
        )
        assert await gateway.ledger() == []

    async def test_an_unknown_method_is_e00004(self, gateway: Gateway) -> None:
        answer = await gateway.call({"chargeEverythingRequest": {"merchantAuthentication": AUTH}})
        assert first_message(answer) == ("Error", "E00004", "The name of the requested API method is invalid.")

    async def test_an_unsupported_transaction_type_is_e00003(self, gateway: Gateway) -> None:
        _, code, text = first_message(await gateway.transact({"transactionType": "sellEverythingTransaction"}))
        assert code == "E00003"
        assert "transactionTypeEnum" in text

    async def test_malformed_json_is_e00003(self, gateway: Gateway) -> None:
        response = await gateway.client.post(
            API_PATH, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 200
        assert b'"E00003"' in response.content

    async def test_recorded_requests_mask_card_data_and_keys(self, gateway: Gateway) -> None:
        await gateway.transact(make_charge())
        recorded = (await gateway.client.get("/_sim/requests")).json()["requests"]
        assert len(recorded) == 1
        assert recorded[0]["contentType"] == "application/json"
        body = recorded[0]["body"]
        assert "4111111111111111" not in body
        assert AUTH["transactionKey"] not in body
        assert "XXXX1111" in body


class TestCardTriggers:
    @pytest.mark.parametrize(
        ("overrides", "response_code", "reason_code"),
        [
            ({}, "1", "1"),
            ({"card_number": "4111111111111112"}, "3", "6"),
            ({"expiration": "13/99"}, "3", "7"),
            ({"expiration": "2020-01"}, "3", "8"),
            ({"card_code": "12a"}, "3", "78"),
            ({"zip_code": "46282"}, "2", "2"),
            ({"zip_code": "46205"}, "2", "27"),
            ({"card_code": "901"}, "2", "65"),
            ({"zip_code": "46205", "card_code": "901"}, "2", "45"),
            ({"zip_code": "46201"}, "1", "1"),
            ({"zip_code": "46252"}, "4", "252"),
            ({"zip_code": "46253"}, "4", "253"),
            ({"card_number": "4222222222222", "amount": "19.00"}, "3", "19"),
            ({"card_number": "4222222222222", "amount": "4.00"}, "2", "4"),
            ({"amount": "0"}, "3", "5"),
        ],
    )
    async def test_trigger_table(
        self, gateway: Gateway, overrides: dict[str, Any], response_code: str, reason_code: str
    ) -> None:
        answer = await gateway.transact(make_charge(**overrides))
        assert reason_of(answer) == (response_code, reason_code)
        expected_result = "Ok" if response_code in ("1", "4") else "Error"
        assert first_message(answer)[:2] == (expected_result, "I00001" if expected_result == "Ok" else "E00027")

    @pytest.mark.parametrize(
        ("card_code", "cvv"), [("900", "M"), ("901", "N"), ("902", "S"), ("903", "U"), ("904", "P"), (None, "")]
    )
    async def test_cvv_results_follow_the_sandbox_table(
        self, gateway: Gateway, card_code: str | None, cvv: str
    ) -> None:
        answer = await gateway.transact(make_charge(card_code=card_code))
        assert answer["transactionResponse"]["cvvResultCode"] == cvv

    async def test_errors_store_nothing_and_declines_are_stored(self, gateway: Gateway) -> None:
        await gateway.transact(make_charge(card_number="4111111111111112"))
        declined = await gateway.transact(make_charge(zip_code="46282", invoice_number="INV-2"))
        ledger = await gateway.ledger()
        assert [entry["transId"] for entry in ledger] == [declined["transactionResponse"]["transId"]]
        assert ledger[0]["status"] == "declined"


class TestFilterSettings:
    @pytest.fixture
    def settings(self) -> SimulatorSettings:
        return SimulatorSettings(
            avs_reject_codes=frozenset(), cvv_reject_codes=frozenset(), cvv_processor_reject_codes=frozenset({"N"})
        )

    async def test_avs_mismatch_passes_when_the_merchant_does_not_filter_it(self, gateway: Gateway) -> None:
        assert reason_of(await gateway.transact(make_charge(zip_code="46205"))) == ("1", "1")

    async def test_processor_card_code_decline_is_44(self, gateway: Gateway) -> None:
        assert reason_of(await gateway.transact(make_charge(card_code="901"))) == ("2", "44")
