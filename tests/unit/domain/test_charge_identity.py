from decimal import Decimal
from typing import Any

import pytest

from payment_service.domain.charge_identity import (
    Identity,
    describe_attempt,
    described_ref_id,
    identify,
    is_candidate,
)
from payment_service.domain.money import Money
from payment_service.domain.transactions import TransactionKind
from tests.unit.services.factories import make_details, make_payment

REF_ID = "01ABCDEFGHJKMNPQ"  # the factories' attempt


class TestIsCandidate:
    def test_a_charge_of_the_same_invoice_customer_amount_and_card_is_one(self) -> None:
        assert is_candidate(make_payment(), make_details(customer_id="42"))

    @pytest.mark.parametrize(
        "changes",
        [
            {"invoice_number": "1002"},
            {"requested_amount": Decimal("59.98"), "auth_amount": Decimal("59.98"), "settle_amount": Decimal("59.98")},
            {"account_number": "XXXX0015"},
            {"kind": TransactionKind.REFUND},
            {"customer_id": "43"},
        ],
        ids=["other-invoice", "other-amount", "other-card", "a-refund", "other-customer"],
    )
    def test_any_difference_is_another_transaction(self, changes: dict[str, Any]) -> None:
        assert not is_candidate(make_payment(), make_details(**changes))

    def test_an_unknown_card_of_ours_matches_on_invoice_and_amount(self) -> None:
        assert is_candidate(make_payment(card_last4=None), make_details(account_number="XXXX0015"))

    def test_a_held_transaction_without_requested_amount_matches_on_its_auth_amount(self) -> None:
        # A real held transaction's details omit requestedAmount; settleAmount may still be 0.
        held = make_details(requested_amount=None, settle_amount=Decimal(0), auth_amount=Decimal("59.97"))

        assert is_candidate(make_payment(), held)

    def test_a_transaction_with_only_a_settle_amount_matches_on_it(self) -> None:
        settled = make_details(requested_amount=None, auth_amount=Decimal(0), settle_amount=Decimal("59.97"))

        assert is_candidate(make_payment(), settled)

    def test_a_partial_authorisation_matches_on_the_requested_amount(self) -> None:
        partial = make_details(auth_amount=Decimal("20.00"), settle_amount=Decimal("20.00"))

        assert is_candidate(make_payment(), partial)

    def test_a_three_decimal_amount_matches_exactly(self) -> None:
        payment = make_payment(amount=Money(Decimal("1.235"), "KWD"))

        assert is_candidate(payment, make_details(requested_amount=Decimal("1.235"), auth_amount=Decimal("1.235")))
        assert not is_candidate(payment, make_details(requested_amount=Decimal("1.24"), auth_amount=Decimal("1.24")))

    def test_a_long_customer_id_matches_as_the_gateway_clipped_it(self) -> None:
        payment = make_payment(customer_id="c" * 30)

        assert is_candidate(payment, make_details(customer_id="c" * 20))


class TestIdentify:
    def test_the_attempt_id_in_the_description_confirms_without_transref_id(self) -> None:
        details = make_details(ref_id=None, description=describe_attempt(REF_ID, "1001"))

        assert identify(make_payment(), details) is Identity.OURS

    def test_transref_id_alone_confirms(self) -> None:
        assert identify(make_payment(), make_details(ref_id=REF_ID, description=None)) is Identity.OURS

    def test_another_attempts_id_is_another_attempt(self) -> None:
        details = make_details(ref_id=None, description=describe_attempt("01OTHERATTEMPT0000", "1001"))

        assert identify(make_payment(), details) is Identity.OTHER_ATTEMPT

    def test_nothing_echoed_is_unconfirmed_never_someone_elses(self) -> None:
        details = make_details(ref_id=None, description=None)

        assert identify(make_payment(), details) is Identity.UNCONFIRMED

    def test_a_foreign_description_names_no_attempt(self) -> None:
        # A charge made outside this service (virtual terminal) with a description of its own.
        assert identify(make_payment(), make_details(ref_id=None, description="Order 1001")) is Identity.UNCONFIRMED


class TestDescribeAttempt:
    def test_the_attempt_id_comes_first_and_reads_back(self) -> None:
        description = describe_attempt(REF_ID, "order-" + "x" * 300)

        assert described_ref_id(description[:255]) == REF_ID
