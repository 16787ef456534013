import io
import json

import pytest
import structlog

from payment_service.logging import REDACTED, configure_logging, scrub_card_data, scrub_text
from payment_service.settings import LogSettings


class TestScrubber:
    @pytest.mark.parametrize(
        "text",
        [
            "4111111111111111",
            "card 4111 1111 1111 1111 was used",
            "4111-1111-1111-1111",
            "amex 378282246310005!",
            "19 digits 6011000990139424123",
        ],
    )
    def test_card_shaped_digit_runs_are_redacted(self, text: str) -> None:
        scrubbed = scrub_text(text)

        assert REDACTED in scrubbed
        assert not any(run in scrubbed for run in ("4111", "3782", "60110"))

    @pytest.mark.parametrize("text", ["order 1001", "80012345678", "2026-01-15T12:00:00Z", "pay_01M8M91TMY2SKAYH"])
    def test_ordinary_values_are_left_alone(self, text: str) -> None:
        assert scrub_text(text) == text

    def test_known_keys_and_nested_values_are_redacted(self) -> None:
        event = scrub_card_data(
            None,
            "info",
            {
                "event": "x",
                "card_number": "whatever",
                "cvv": "123",
                "transactionKey": "k",
                "body": {"payment": {"card": {"number": "4111111111111111"}}, "note": ["4111111111111111"]},
                "amount": 4111111111111111,
            },
        )

        assert event["card_number"] == event["cvv"] == event["transactionKey"] == REDACTED
        assert event["body"] == {"payment": {"card": {"number": REDACTED}}, "note": [REDACTED]}
        assert event["amount"] == REDACTED


class TestConfigureLogging:
    def test_json_lines_carry_context_and_no_card_number(self) -> None:
        stream = io.StringIO()
        configure_logging(LogSettings(level="INFO"), stream=stream)
        try:
            with structlog.contextvars.bound_contextvars(request_id="r-1"):
                structlog.get_logger("t").info("payment.charged", note="card 4111111111111111", card_last4="1111")
                try:
                    raise ValueError("bad card 4111111111111111")
                except ValueError:
                    structlog.get_logger("t").exception("payment.crashed")
        finally:
            configure_logging(LogSettings(level="WARNING"))

        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert lines[0]["event"] == "payment.charged"
        assert lines[0]["request_id"] == "r-1"
        assert lines[0]["card_last4"] == "1111"
        assert "4111111111111111" not in stream.getvalue()
        assert "ValueError" in lines[1]["exception"]
