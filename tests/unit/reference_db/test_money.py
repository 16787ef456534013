from decimal import Decimal

import pytest

from reference_db_service.money import format_cents, parse_amount, to_cents


class TestParseAmount:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("19.99", Decimal("19.99")), ("5", Decimal("5.00")), ("0.5", Decimal("0.50")), ("0", Decimal("0.00"))],
    )
    def test_decimal_strings_with_up_to_two_places_are_exact(self, text: str, expected: Decimal) -> None:
        assert parse_amount(text) == expected
        assert parse_amount(text).as_tuple().exponent == -2

    @pytest.mark.parametrize("text", ["19.999", "-1.00", "1e3", "", " 1.00", "01.00", "1,00", "NaN", "Infinity"])
    def test_anything_else_is_rejected(self, text: str) -> None:
        with pytest.raises(ValueError, match="decimal string"):
            parse_amount(text)


class TestCents:
    @pytest.mark.parametrize(("cents", "text"), [(1999, "19.99"), (0, "0.00"), (100, "1.00"), (5, "0.05")])
    def test_cents_render_with_two_places(self, cents: int, text: str) -> None:
        assert format_cents(cents) == text
        assert to_cents(Decimal(text)) == cents

    def test_large_amounts_round_trip_without_exponent(self) -> None:
        assert format_cents(to_cents(parse_amount("9999999999999.99"))) == "9999999999999.99"
