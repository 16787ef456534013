from typing import Any

import orjson
import pytest

from authorize_net_simulator.content_model import ANET_NAMESPACE
from authorize_net_simulator.documents import Flavour, ForeignNamespace, UnreadableDocument, parse_document
from authorize_net_simulator.schema import REQUEST_TYPES
from authorize_net_simulator.validation import SchemaViolation, validate

NS = ANET_NAMESPACE


def make_charge(**transaction_overrides: Any) -> dict[str, Any]:
    transaction: dict[str, Any] = {
        "transactionType": "authCaptureTransaction",
        "amount": "24.99",
        "payment": {"creditCard": {"cardNumber": "4007000000027", "expirationDate": "2031-08", "cardCode": "900"}},
        "order": {"invoiceNumber": "ORD-7731", "description": "2 widgets"},
        "billTo": {"firstName": "Jo", "lastName": "Rivera", "zip": "46201"},
        "transactionSettings": {"setting": [{"settingName": "duplicateWindow", "settingValue": "600"}]},
    }
    transaction.update(transaction_overrides)
    return {
        "createTransactionRequest": {
            "merchantAuthentication": {"name": "L", "transactionKey": "K"},
            "refId": "r1",
            "transactionRequest": transaction,
        }
    }


def violation_of(request: dict[str, Any]) -> str | None:
    document = parse_document(orjson.dumps(request), Flavour.JSON)
    try:
        validate(document.root, REQUEST_TYPES[document.root.name])
    except SchemaViolation as exc:
        return exc.text
    return None


class TestValidate:
    def test_a_request_in_schema_order_is_valid(self) -> None:
        assert violation_of(make_charge()) is None

    def test_an_element_out_of_order_names_what_could_come_next(self) -> None:
        request = make_charge()
        transaction = request["createTransactionRequest"]["transactionRequest"]
        transaction["order"] = transaction.pop("order")  # now after transactionSettings
        assert violation_of(request) == (
            f"The element 'transactionRequest' in namespace '{NS}' has invalid child element 'order' in namespace '{NS}'. "
            "List of possible elements expected: 'userFields, surcharge, merchantDescriptor, subMerchant, tip, processingOptions, "
            f"subsequentAuthInformation, otherTax, shipFrom, authorizationIndicatorType' in namespace '{NS}'."
        )

    def test_an_unknown_element_is_an_invalid_child(self) -> None:
        request = make_charge()
        request["createTransactionRequest"]["transactionRequest"] = {
            "transactionType": "authCaptureTransaction",
            "duplicateWindow": "5",
            "amount": "1.00",
        }
        assert violation_of(request) == (
            f"The element 'transactionRequest' in namespace '{NS}' has invalid child element 'duplicateWindow' in namespace '{NS}'. "
            f"List of possible elements expected: 'amount, currencyCode, payment, profile, solution, callId, terminalNumber, authCode, refTransId, "
            "splitTenderId, order, lineItems, tax, duty, shipping, taxExempt, poNumber, customer, billTo, shipTo, customerIP, cardholderAuthentication, "
            "retail, employeeId, transactionSettings, userFields, surcharge, merchantDescriptor, subMerchant, tip, processingOptions, "
            f"subsequentAuthInformation, otherTax, shipFrom, authorizationIndicatorType' in namespace '{NS}'."
        )

    def test_ref_id_before_merchant_authentication_expects_merchant_authentication(self) -> None:
        request = {
            "createTransactionRequest": {"refId": "r1", "merchantAuthentication": {"name": "L", "transactionKey": "K"}}
        }
        assert violation_of(request) == (
            f"The element 'createTransactionRequest' in namespace '{NS}' has invalid child element 'refId' in namespace '{NS}'. "
            f"List of possible elements expected: 'merchantAuthentication' in namespace '{NS}'."
        )

    def test_a_missing_required_element_is_incomplete_content(self) -> None:
        request = {
            "createTransactionRequest": {"merchantAuthentication": {"name": "L", "transactionKey": "K"}, "refId": "r1"}
        }
        assert violation_of(request) == (
            f"The element 'createTransactionRequest' in namespace '{NS}' has incomplete content. List of possible elements expected: 'transactionRequest' in namespace '{NS}'."
        )

    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            (
                {"amount": "five"},
                f"The '{NS}:amount' element is invalid - The value 'five' is invalid according to its datatype 'http://www.w3.org/2001/XMLSchema:decimal' - The string 'five' is not a valid Decimal value.",
            ),
            (
                {"order": {"invoiceNumber": "X" * 21}},
                f"The '{NS}:invoiceNumber' element is invalid - The value '{'X' * 21}' is invalid according to its datatype 'String' - The actual length is greater than the MaxLength value.",
            ),
            (
                {"customer": {"type": "robot"}},
                f"The '{NS}:type' element is invalid - The value 'robot' is invalid according to its datatype '{NS}:customerTypeEnum' - The Enumeration constraint failed.",
            ),
            (
                {"tax": {"amount": "1.00001"}},
                f"The '{NS}:amount' element is invalid - The value '1.00001' is invalid according to its datatype 'Decimal' - The FractionDigits constraint failed.",
            ),
            (
                {"taxExempt": "maybe"},
                f"The '{NS}:taxExempt' element is invalid - The value 'maybe' is invalid according to its datatype 'Boolean' - The string 'maybe' is not a valid Boolean value.",
            ),
        ],
    )
    def test_facet_failures_use_the_dotnet_wording(self, overrides: dict[str, Any], expected: str) -> None:
        request = make_charge()
        transaction = request["createTransactionRequest"]["transactionRequest"]
        transaction.update(overrides)
        # Keep schema order: rebuild the dict in XSD order of the keys used here.
        order = [
            "transactionType",
            "amount",
            "payment",
            "order",
            "tax",
            "taxExempt",
            "customer",
            "billTo",
            "transactionSettings",
        ]
        request["createTransactionRequest"]["transactionRequest"] = {
            key: transaction[key] for key in order if key in transaction
        }
        assert violation_of(request) == expected

    def test_card_values_are_masked_in_violation_texts(self) -> None:
        request = make_charge(payment={"creditCard": {"cardNumber": "41111111111111119", "expirationDate": "2031-08"}})
        text = violation_of(request)
        assert text is not None
        assert "41111111111111119" not in text
        assert "'XXXX1119'" in text

    def test_xml_in_the_wrong_order_gets_the_same_text_as_json(self) -> None:
        body = (
            f'<createTransactionRequest xmlns="{NS}"><refId>r1</refId><merchantAuthentication><name>L</name>'
            "<transactionKey>K</transactionKey></merchantAuthentication></createTransactionRequest>"
        ).encode()
        document = parse_document(body, Flavour.XML)
        with pytest.raises(SchemaViolation, match="invalid child element 'refId'"):
            validate(document.root, REQUEST_TYPES["createTransactionRequest"])


class TestParseDocument:
    def test_a_json_body_with_a_bom_is_read(self) -> None:
        document = parse_document(b"\xef\xbb\xbf" + orjson.dumps(make_charge()), Flavour.JSON)
        assert document.root.name == "createTransactionRequest"

    def test_json_arrays_become_repeated_elements_and_numbers_become_text(self) -> None:
        document = parse_document(orjson.dumps(make_charge(amount=5)), Flavour.JSON)
        transaction = document.root.get("transactionRequest")
        assert transaction is not None
        assert transaction.get_text("amount") == "5"
        settings = transaction.get("transactionSettings")
        assert settings is not None
        assert len(settings.get_all("setting")) == 1

    def test_json_with_two_roots_is_unreadable(self) -> None:
        with pytest.raises(UnreadableDocument):
            parse_document(b'{"a": {}, "b": {}}', Flavour.JSON)

    def test_xml_outside_the_anet_namespace_is_refused(self) -> None:
        with pytest.raises(ForeignNamespace):
            parse_document(b"<createTransactionRequest/>", Flavour.XML)

    def test_xml_entities_are_refused(self) -> None:
        body = b'<!DOCTYPE x [<!ENTITY a "b">]><authenticateTestRequest xmlns="AnetApi/xml/v1/schema/AnetApiSchema.xsd">&a;</authenticateTestRequest>'
        with pytest.raises(UnreadableDocument):
            parse_document(body, Flavour.XML)
