import io
import json
import logging

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

    @pytest.mark.parametrize(
        "text",
        [
            '{"payment": {"card": {"number": "4111111111111111", "cvv": "123"}}}',
            "card=4111111111111111&cvv=123",
            "number: 5424000000000015.",
            "ref_4111111111111111",
            "mistyped 4111 1111 1111 1112, still redacted",
        ],
    )
    def test_card_numbers_inside_json_after_an_equals_sign_or_punctuation_are_redacted(self, text: str) -> None:
        scrubbed = scrub_text(text)

        assert REDACTED in scrubbed
        assert not any(run in scrubbed for run in ("4111", "5424"))

    @pytest.mark.parametrize(
        "text",
        [
            "order 1001",
            "80012345678",
            "2026-01-15T12:00:00Z",
            "pay_01M8M91TMY2SKAYH",
            # Hex request ids and trace ids: their digit runs are part of a longer token.
            "b0a19c4111111111111111f3",
            "4111111111111111b0a19c",
            "00-5441bbe292be603007239f2c12e6e8a9-b86b0dd858489fa4-01",
        ],
    )
    def test_ordinary_values_are_left_alone(self, text: str) -> None:
        assert scrub_text(text) == text

    def test_a_hex_request_id_survives_in_a_log_line(self) -> None:
        request_id = "1654fe152ab9d4e6f4100f84b0a19c"

        event = scrub_card_data(None, "info", {"event": "x", "request_id": request_id, "note": f"id={request_id}"})

        assert event["request_id"] == request_id
        assert event["note"] == f"id={request_id}"

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


def _fail_with_card_in_locals(card_number: str, cvv: str) -> None:
    body = {"payment": {"card": {"number": card_number, "cvv": cvv}}}
    raise RuntimeError(f"cannot pay with {card_number} ({len(body)} fields)")


CVV = "9731"


class TestTracebacks:
    @pytest.mark.parametrize("json_output", [True, False], ids=["json", "console"])
    def test_a_traceback_shows_no_locals_and_no_card_number(self, json_output: bool) -> None:
        stream = io.StringIO()
        configure_logging(LogSettings(level="INFO", json=json_output), stream=stream)
        try:
            try:
                _fail_with_card_in_locals("4111111111111111", CVV)
            except RuntimeError:
                structlog.get_logger("t").exception("request.crashed")
            try:
                _fail_with_card_in_locals("5424 0000 0000 0015", CVV)
            except RuntimeError:
                # A standard-library record with a traceback, as asyncio logs an unretrieved task exception.
                logging.getLogger("asyncio").exception("Task exception was never retrieved")
        finally:
            configure_logging(LogSettings(level="WARNING"))

        output = stream.getvalue()
        assert output.count("RuntimeError: cannot pay with") == 2  # both tracebacks were rendered
        assert "_fail_with_card_in_locals" in output
        assert "4111" not in output
        assert "5424" not in output
        assert CVV not in output
