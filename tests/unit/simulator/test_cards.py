from datetime import UTC, datetime

import pytest

from authorize_net_simulator import cards


class TestCardNumbers:
    @pytest.mark.parametrize("number", sorted(cards.TEST_CARDS - {"6262320002000067", "6284480000000008"}))
    def test_sandbox_test_cards_are_valid(self, number: str) -> None:
        assert cards.is_valid_card_number(number)

    @pytest.mark.parametrize("number", ["4111111111111112", "411111111111", "41111111111111111", "4111a11111111111"])
    def test_bad_luhn_length_or_characters_are_invalid(self, number: str) -> None:
        assert not cards.is_valid_card_number(number)

    @pytest.mark.parametrize(
        ("number", "brand"),
        [
            ("4111111111111111", "Visa"),
            ("5424000000000015", "MasterCard"),
            ("2223000010309703", "MasterCard"),
            ("370000000000002", "AmericanExpress"),
            ("6011000000000012", "Discover"),
            ("3088000000000017", "JCB"),
            ("38000000000006", "DinersClub"),
        ],
    )
    def test_brand_is_read_from_the_prefix(self, number: str, brand: str) -> None:
        assert cards.card_brand(number) == brand


class TestExpiry:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2035-12", (2035, 12)),
            ("1235", (2035, 12)),
            ("12/35", (2035, 12)),
            ("122035", (2035, 12)),
            ("12/2035", (2035, 12)),
        ],
    )
    def test_accepted_forms_parse(self, text: str, expected: tuple[int, int]) -> None:
        assert cards.parse_expiry(text) == expected

    @pytest.mark.parametrize("text", ["XXXX", "2035-13", "13/35", "abcd", "2035/12/01"])
    def test_unparseable_dates_are_none(self, text: str) -> None:
        assert cards.parse_expiry(text) is None

    def test_a_card_expires_after_its_month(self) -> None:
        now = datetime(2030, 5, 31, tzinfo=UTC)
        assert not cards.is_expired(2030, 5, now)
        assert cards.is_expired(2030, 4, now)


class TestTriggers:
    @pytest.mark.parametrize(
        ("zip_code", "brand", "expected"),
        [
            ("46201", "Visa", "A"),
            ("46203", "Visa", "E"),
            ("46204", "Visa", "G"),
            ("46204", "AmericanExpress", "Y"),
            ("46205", "Visa", "N"),
            ("46206", "Visa", "P"),
            ("46207", "Visa", "R"),
            ("46208", "Visa", "S"),
            ("46209", "Visa", "U"),
            ("46211", "MasterCard", "W"),
            ("46211", "AmericanExpress", "Y"),
            ("46214", "MasterCard", "X"),
            ("46214", "Visa", "Y"),
            ("46217", "Visa", "Z"),
            ("10001", "Visa", "Y"),
        ],
    )
    def test_avs_zip_table(self, zip_code: str, brand: str, expected: str) -> None:
        assert cards.avs_result(zip_code, brand, address_sent=True) == expected

    def test_avs_without_an_address_is_b(self) -> None:
        assert cards.avs_result(None, "Visa", address_sent=False) == "B"

    @pytest.mark.parametrize(
        ("code", "expected"),
        [("900", "M"), ("901", "N"), ("902", "S"), ("903", "U"), ("904", "P"), ("123", "M"), (None, "")],
    )
    def test_cvv_table(self, code: str | None, expected: str) -> None:
        assert cards.cvv_result(code) == expected
