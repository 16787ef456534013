from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from payment_service.domain.money import Money
from payment_service.domain.payments import LineItem
from payment_service.gateway import wire
from tests.unit.gateway.anet_schema import validate
from tests.unit.gateway.factories import (
    make_bill_to,
    make_card,
    make_charge_request,
    make_line_items,
    make_opaque_data,
)

CREDENTIALS = wire.Credentials("login-1", SecretStr("Key0123456789abc"))


def charge_document(**overrides: Any) -> dict[str, Any]:
    request = make_charge_request(**overrides)
    transaction = wire.build_charge_transaction(request, transaction_type=wire.AUTH_CAPTURE)
    return wire.build_create_transaction(CREDENTIALS, transaction, ref_id=request.ref_id).document


def transaction_of(document: dict[str, Any]) -> dict[str, Any]:
    transaction: dict[str, Any] = document["createTransactionRequest"]["transactionRequest"]
    return transaction


class TestChargeRequest:
    def test_envelope_keys_follow_the_schema_sequence(self) -> None:
        document = charge_document()

        assert list(document) == ["createTransactionRequest"]
        assert list(document["createTransactionRequest"]) == ["merchantAuthentication", "refId", "transactionRequest"]
        assert document["createTransactionRequest"]["merchantAuthentication"] == {
            "name": "login-1",
            "transactionKey": "Key0123456789abc",
        }

    def test_transaction_keys_follow_the_schema_sequence(self) -> None:
        transaction = transaction_of(charge_document(tax_amount=Decimal("1.50"), shipping_amount=Decimal("4.00")))

        assert list(transaction) == [
            "transactionType",
            "amount",
            "currencyCode",
            "payment",
            "order",
            "lineItems",
            "tax",
            "shipping",
            "customer",
            "billTo",
            "transactionSettings",
        ]

    def test_card_payment_carries_number_expiry_as_year_month_and_code(self) -> None:
        transaction = transaction_of(charge_document(payment_method=make_card(year=2031, month=8, cvv="900")))

        assert transaction["payment"] == {
            "creditCard": {"cardNumber": "4111111111111111", "expirationDate": "2031-08", "cardCode": "900"}
        }

    def test_card_without_code_omits_card_code(self) -> None:
        transaction = transaction_of(charge_document(payment_method=make_card(cvv=None)))

        assert "cardCode" not in transaction["payment"]["creditCard"]

    def test_opaque_data_payment_carries_descriptor_and_value(self) -> None:
        transaction = transaction_of(charge_document(payment_method=make_opaque_data("nonce-1")))

        assert transaction["payment"] == {
            "opaqueData": {"dataDescriptor": "COMMON.ACCEPT.INAPP.PAYMENT", "dataValue": "nonce-1"}
        }

    @pytest.mark.parametrize(
        ("amount", "expected"),
        [("24.99", "24.99"), ("5", "5.00"), ("1000", "1000.00"), ("0.10", "0.10"), ("123456.7", "123456.70")],
    )
    def test_amounts_are_decimal_strings_with_two_places(self, amount: str, expected: str) -> None:
        assert transaction_of(charge_document(amount=Money.of(amount)))["amount"] == expected

    def test_the_orders_currency_is_sent_after_the_amount(self) -> None:
        transaction = transaction_of(charge_document(amount=Money.of("5000", "JPY"), line_items=(), tax_amount=None))

        assert list(transaction)[:4] == ["transactionType", "amount", "currencyCode", "payment"]
        assert (transaction["amount"], transaction["currencyCode"]) == ("5000", "JPY")

    @pytest.mark.parametrize(
        ("amount", "currency", "expected"),
        [("1.235", "KWD", "1.235"), ("1.2", "KWD", "1.200"), ("5000", "JPY", "5000"), ("59.97", "USD", "59.97")],
    )
    def test_amounts_have_their_currencys_minor_unit_digits(self, amount: str, currency: str, expected: str) -> None:
        assert wire.format_amount(Decimal(amount), currency) == expected

    @pytest.mark.parametrize(("amount", "currency"), [("59.97", "JPY"), ("1.2355", "KWD"), ("12.495", "USD")])
    def test_more_decimals_than_the_currency_has_are_refused_never_rounded(self, amount: str, currency: str) -> None:
        with pytest.raises(ValueError, match="more decimals"):
            wire.format_amount(Decimal(amount), currency)

    def test_amount_in_exponent_form_is_written_plainly(self) -> None:
        assert wire.format_amount(Decimal("1E+3")) == "1000.00"

    def test_negative_amount_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not negative"):
            wire.format_amount(Decimal("-1.00"))

    def test_duplicate_window_is_sent_explicitly_as_a_setting(self) -> None:
        transaction = transaction_of(charge_document(duplicate_window_s=900))

        assert transaction["transactionSettings"] == {
            "setting": [{"settingName": "duplicateWindow", "settingValue": "900"}]
        }

    def test_duplicate_window_is_capped_at_eight_hours(self) -> None:
        transaction = transaction_of(charge_document(duplicate_window_s=100_000))

        assert transaction["transactionSettings"]["setting"][0]["settingValue"] == "28800"

    def test_order_carries_invoice_number_and_description_clipped_to_255(self) -> None:
        transaction = transaction_of(charge_document(description="x" * 300))

        assert transaction["order"] == {"invoiceNumber": "ORD-7731", "description": "x" * 255}

    @pytest.mark.parametrize("field", ["invoice_number", "ref_id"])
    def test_identifiers_longer_than_20_are_refused_not_truncated(self, field: str) -> None:
        with pytest.raises(ValueError, match="1 to 20 characters"):
            charge_document(**{field: "X" * 21})

    def test_line_items_are_wrapped_and_clipped_to_schema_limits(self) -> None:
        items = (LineItem("i" * 40, "n" * 40, 3, Decimal("2.5")), LineItem("", "", 1, Decimal("1.00")))

        lines = transaction_of(charge_document(line_items=items))["lineItems"]["lineItem"]

        assert lines == [
            {"itemId": "i" * 31, "name": "n" * 31, "quantity": "3", "unitPrice": "2.50"},
            {"itemId": "2", "name": "2", "quantity": "1", "unitPrice": "1.00"},
        ]

    def test_thirty_line_items_are_sent_as_they_are(self) -> None:
        lines = wire.build_line_items(make_line_items(30))

        assert len(lines) == 30
        assert lines[-1]["name"] == "Widget 30"

    def test_more_than_thirty_line_items_fold_the_rest_into_one_line_with_their_total(self) -> None:
        items = (*make_line_items(29), *(LineItem(f"x{n}", "Extra", 2, Decimal("1.25")) for n in range(12)))

        lines = wire.build_line_items(items)

        assert len(lines) == 30
        assert lines[28]["name"] == "Widget 29"
        assert lines[29] == {"itemId": "more", "name": "12 more items", "quantity": "1", "unitPrice": "30.00"}

    def test_bill_to_fields_are_clipped_and_empty_ones_left_out(self) -> None:
        bill_to = make_bill_to(first_name="F" * 60, address="", zip="462011234567890123456789")

        assert wire.build_bill_to(bill_to) == {
            "firstName": "F" * 50,
            "lastName": "Rivera",
            "city": "Indianapolis",
            "state": "IN",
            "zip": "46201123456789012345",
            "country": "US",
        }

    def test_customer_id_is_clipped_to_20(self) -> None:
        transaction = transaction_of(charge_document(customer_id="c" * 25, customer_email=None))

        assert transaction["customer"] == {"id": "c" * 20}

    def test_serialised_json_keeps_the_key_order(self) -> None:
        transaction = wire.build_charge_transaction(make_charge_request(), transaction_type=wire.AUTH_CAPTURE)
        body = wire.build_create_transaction(CREDENTIALS, transaction, ref_id="r1").to_json()

        assert body.index(b'"transactionType"') < body.index(b'"amount"') < body.index(b'"payment"')
        assert body.index(b'"order"') < body.index(b'"lineItems"') < body.index(b'"billTo"')

    def test_repr_shows_neither_card_data_nor_the_transaction_key(self) -> None:
        transaction = wire.build_charge_transaction(make_charge_request(), transaction_type=wire.AUTH_CAPTURE)
        request = wire.build_create_transaction(CREDENTIALS, transaction, ref_id="r1")

        text = repr(request) + repr(CREDENTIALS) + repr(make_charge_request())

        for secret in ("4111111111111111", "Key0123456789abc", "2031", "123"):
            assert secret not in text


class TestOtherTransactionRequests:
    def test_capture_names_the_authorisation_and_the_amount(self) -> None:
        assert wire.build_capture_transaction("80012345680", Money.of("75")) == {
            "transactionType": "priorAuthCaptureTransaction",
            "amount": "75.00",
            "refTransId": "80012345680",
        }

    def test_capture_without_amount_captures_the_whole_authorisation(self) -> None:
        assert wire.build_capture_transaction("80012345680", None) == {
            "transactionType": "priorAuthCaptureTransaction",
            "refTransId": "80012345680",
        }

    def test_refund_names_the_card_by_masked_last_four_and_xxxx_expiry(self) -> None:
        transaction = wire.build_refund_transaction(
            "80012345678", Money.of("5"), card_last4="1111", invoice_number="ORD-7731-R1", duplicate_window_s=120
        )

        assert list(transaction) == [
            "transactionType",
            "amount",
            "payment",
            "refTransId",
            "order",
            "transactionSettings",
        ]
        assert transaction["payment"] == {"creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX"}}
        assert transaction["amount"] == "5.00"

    @pytest.mark.parametrize("last4", ["111", "4111111111111111", "abcd"])
    def test_refund_refuses_anything_but_four_digits(self, last4: str) -> None:
        with pytest.raises(ValueError, match="last four"):
            wire.build_refund_transaction(
                "1", Money.of("5"), card_last4=last4, invoice_number=None, duplicate_window_s=0
            )

    def test_void_names_only_the_transaction(self) -> None:
        assert wire.build_void_transaction("80012345680") == {
            "transactionType": "voidTransaction",
            "refTransId": "80012345680",
        }

    def test_transaction_ids_must_be_digits(self) -> None:
        with pytest.raises(ValueError, match="digits"):
            wire.build_void_transaction("abc")

    def test_unsettled_list_sorts_by_submit_time_and_pages(self) -> None:
        request = wire.build_unsettled_list_request(CREDENTIALS, limit=50, offset=2, newest_first=True)

        body = request.document["getUnsettledTransactionListRequest"]
        assert list(body) == ["merchantAuthentication", "sorting", "paging"]
        assert body["sorting"] == {"orderBy": "submitTimeUTC", "orderDescending": True}
        assert body["paging"] == {"limit": 50, "offset": 2}

    @pytest.mark.parametrize(("limit", "offset"), [(0, 1), (1001, 1), (10, 0)])
    def test_unsettled_list_refuses_paging_outside_the_schema(self, limit: int, offset: int) -> None:
        with pytest.raises(ValueError, match="paging"):
            wire.build_unsettled_list_request(CREDENTIALS, limit=limit, offset=offset, newest_first=False)


def every_request() -> list[tuple[str, dict[str, Any]]]:
    money = Money.of("10.00")

    def create(transaction: dict[str, Any], ref_id: str | None = "ref-1") -> dict[str, Any]:
        return wire.build_create_transaction(CREDENTIALS, transaction, ref_id=ref_id).document

    full = make_charge_request(
        tax_amount=Decimal("1.25"), shipping_amount=Decimal("3.00"), line_items=make_line_items(35)
    )
    long_texts = make_charge_request(
        description="d" * 400,
        customer_id="c" * 30,
        customer_email="e" * 300,
        bill_to=make_bill_to(first_name="f" * 80, city="c" * 80, country="C" * 80),
        line_items=(LineItem("i" * 50, "n" * 50, 1, Decimal("1.00")),),
    )
    minimal = make_charge_request(
        line_items=(),
        customer_id=None,
        customer_email=None,
        bill_to=None,
        description=None,
        payment_method=make_card(cvv=None),
    )
    return [
        ("charge", create(wire.build_charge_transaction(make_charge_request(), transaction_type=wire.AUTH_CAPTURE))),
        ("charge with everything", create(wire.build_charge_transaction(full, transaction_type=wire.AUTH_CAPTURE))),
        (
            "charge with long texts",
            create(wire.build_charge_transaction(long_texts, transaction_type=wire.AUTH_CAPTURE)),
        ),
        ("minimal charge", create(wire.build_charge_transaction(minimal, transaction_type=wire.AUTH_CAPTURE), None)),
        (
            "nonce charge",
            create(
                wire.build_charge_transaction(
                    make_charge_request(payment_method=make_opaque_data()), transaction_type=wire.AUTH_CAPTURE
                )
            ),
        ),
        (
            "authorization",
            create(wire.build_charge_transaction(make_charge_request(), transaction_type=wire.AUTH_ONLY)),
        ),
        ("capture", create(wire.build_capture_transaction("80012345680", money))),
        ("full capture", create(wire.build_capture_transaction("80012345680", None))),
        (
            "refund",
            create(
                wire.build_refund_transaction(
                    "80012345678", money, card_last4="0027", invoice_number="ORD-1-R1", duplicate_window_s=120
                )
            ),
        ),
        (
            "refund without invoice",
            create(
                wire.build_refund_transaction(
                    "80012345678", money, card_last4="0027", invoice_number=None, duplicate_window_s=120
                )
            ),
        ),
        ("void", create(wire.build_void_transaction("80012345680"))),
        ("details", wire.build_transaction_details_request(CREDENTIALS, "80012345678").document),
        (
            "unsettled list",
            wire.build_unsettled_list_request(CREDENTIALS, limit=1000, offset=3, newest_first=True).document,
        ),
        ("authenticate test", wire.build_authenticate_test_request(CREDENTIALS).document),
    ]


class TestRequestsAgainstTheOfficialSchema:
    @pytest.mark.parametrize(("name", "document"), every_request(), ids=[name for name, _ in every_request()])
    def test_request_is_valid_against_the_xsd(self, name: str, document: dict[str, Any]) -> None:
        validate(document)

    def test_the_validator_rejects_a_key_out_of_order(self) -> None:
        import xmlschema

        document = charge_document()
        transaction = transaction_of(document)
        transaction["order"] = transaction.pop("order")  # moved last

        with pytest.raises(xmlschema.XMLSchemaValidationError):
            validate(document)
