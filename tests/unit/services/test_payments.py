from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from pydantic import SecretStr

from payment_service.domain.payments import CardDetails, OpaqueData
from payment_service.services.payments import PayCommand, invoice_number_for, new_payment_id

VISA = CardDetails.parse(number="4111111111111111", expiration="2030-12", cvv="123", today=date(2026, 1, 1))
SECRET = b"test-fingerprint-secret"


class TestPaymentIds:
    def test_ids_are_short_and_sort_by_time(self) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        ids = [new_payment_id(start + timedelta(milliseconds=n)) for n in range(0, 50, 5)]

        assert ids == sorted(ids)
        assert all(len(payment_id) == 20 and payment_id.startswith("pay_") for payment_id in ids)
        assert len(set(ids)) == len(ids)

    def test_ids_made_in_the_same_millisecond_differ(self) -> None:
        now = datetime(2026, 1, 1, tzinfo=UTC)

        assert len({new_payment_id(now) for _ in range(1000)}) == 1000


class TestInvoiceNumber:
    def test_short_order_ids_are_used_as_they_are(self) -> None:
        assert invoice_number_for("1001") == "1001"

    def test_long_order_ids_become_a_stable_20_character_digest(self) -> None:
        long_id = "order-" + "x" * 40

        assert invoice_number_for(long_id) == invoice_number_for(long_id)
        assert len(invoice_number_for(long_id)) == 20
        assert invoice_number_for(long_id) != invoice_number_for(long_id + "y")


class TestFingerprint:
    def test_same_request_same_fingerprint(self) -> None:
        one = PayCommand("1001", VISA, customer_id="42", amount=Decimal("59.97"))
        two = PayCommand("1001", VISA, customer_id="42", amount=Decimal("59.970"))

        assert one.fingerprint(SECRET) == two.fingerprint(SECRET)

    def test_any_difference_changes_it(self) -> None:
        base = PayCommand("1001", VISA)
        others = [
            PayCommand("1002", VISA),
            PayCommand("1001", VISA, amount=Decimal("1.00")),
            PayCommand("1001", OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", SecretStr("nonce"))),
        ]

        assert all(other.fingerprint(SECRET) != base.fingerprint(SECRET) for other in others)

    def test_another_card_with_the_same_brand_and_last_four_changes_it(self) -> None:
        # 4012888888881881 and 4000000000041881 are both Visa ending 1881; expiry differs too on its own.
        one = CardDetails.parse(number="4012888888881881", expiration="2030-12", cvv="123", today=date(2026, 1, 1))
        other_number = CardDetails.parse(
            number="4000000000041881", expiration="2030-12", cvv="123", today=date(2026, 1, 1)
        )
        other_expiry = CardDetails.parse(
            number="4012888888881881", expiration="2031-01", cvv="123", today=date(2026, 1, 1)
        )
        assert (one.brand, one.last4) == (other_number.brand, other_number.last4)

        base = PayCommand("1001", one).fingerprint(SECRET)

        assert PayCommand("1001", other_number).fingerprint(SECRET) != base
        assert PayCommand("1001", other_expiry).fingerprint(SECRET) != base

    def test_it_is_keyed_by_the_server_secret(self) -> None:
        # A plain digest of a card number can be reversed by trying numbers; a keyed one cannot without the key.
        assert PayCommand("1001", VISA).fingerprint(SECRET) != PayCommand("1001", VISA).fingerprint(b"another")

    def test_it_holds_no_card_data(self) -> None:
        fingerprint = PayCommand("1001", VISA).fingerprint(SECRET)

        assert len(fingerprint) == 64
        assert "4111" not in fingerprint
