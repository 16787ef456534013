"""The gateway's clock read from an answer's `Date` header."""

from datetime import UTC, datetime

import pytest

from payment_service.gateway.client import read_clock_skew

RECEIVED_AT = datetime(2026, 12, 6, 3, 40, 30, 250_000, tzinfo=UTC)


class TestReadClockSkew:
    def test_a_gateway_forty_minutes_behind_reads_negative_including_the_lost_fraction_of_a_second(self) -> None:
        reading = read_clock_skew("Sun, 06 Dec 2026 03:00:30 GMT", received_at=RECEIVED_AT)

        assert reading is not None
        assert (reading.skew_s, reading.measured_at) == (-2400.25, RECEIVED_AT)

    def test_a_gateway_ahead_reads_positive(self) -> None:
        reading = read_clock_skew("Sun, 06 Dec 2026 03:42:31 GMT", received_at=RECEIVED_AT)

        assert reading is not None
        assert reading.skew_s == 120.75

    @pytest.mark.parametrize("header", [None, "", "yesterday", "Sun, 99 Dec 2026 03:00:30 GMT"])
    def test_an_absent_or_unreadable_date_measures_nothing(self, header: str | None) -> None:
        assert read_clock_skew(header, received_at=RECEIVED_AT) is None
