from decimal import Decimal

import pytest

from payment_service.domain.money import ensure_bounded


class TestEnsureBounded:
    @pytest.mark.parametrize("text", ["59.97", "59.970000000", "0", "-5.5", "999999999999.999999", "1E+5"])
    def test_real_amounts_pass_unchanged(self, text: str) -> None:
        value = Decimal(text)

        assert ensure_bounded(value) is value

    @pytest.mark.parametrize(
        "text", ["1E+1000000", "1E-1000000", "0E-1000000", "0.0000001", "1000000000000", "NaN", "Infinity"]
    )
    def test_out_of_bounds_or_not_finite_is_refused_without_arithmetic(self, text: str) -> None:
        with pytest.raises(ValueError, match="amount"):
            ensure_bounded(Decimal(text))
