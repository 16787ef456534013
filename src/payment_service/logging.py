"""structlog set-up for every entrypoint, and the scrubber that keeps card data out of the logs.

JSON lines in production, a console renderer in development. Context (`request_id`, `trace_id`,
the consumer's `event_id` …) comes from structlog's contextvars. The last processor before the
renderer scrubs known secret keys and anything shaped like a card number from every field, nested
ones included; standard-library records (uvicorn, SQLAlchemy) go through the same chain. The rendered
line is scrubbed once more, as the console renderer formats tracebacks after every processor ran.
Tracebacks never show local variables (a request's locals hold its card data), in either format.
"""

import functools
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from payment_service.settings import LogSettings

REDACTED = "[REDACTED]"

# Keys whose values are never logged, whatever they hold (compared lower-cased, without separators).
_SECRET_KEYS = frozenset(
    {
        "cardnumber",
        "number",
        "cvv",
        "cvc",
        "cardcode",
        "expiration",
        "expirationdate",
        "expiry",
        "transactionkey",
        "signaturekey",
        "password",
        "secret",
        "token",
        "accesstoken",
        "authorization",
        "opaquedata",
        "datavalue",
    }
)
# 13 to 19 digits, optionally separated by single spaces or dashes, standing alone: not part of a longer
# run of letters and digits (a hex request id, a payment id), so a prefix `=`, a quote or a space is fine.
# No Luhn check: a mistyped card number is still nearly a card number.
_CARD_NUMBER = re.compile(r"(?<![^\W_])\d(?:[ -]?\d){12,18}(?![^\W_])")
_MIN_DIGITS = 13
_SMALLEST_CARD_SHAPED_INT = 10 ** (_MIN_DIGITS - 1)


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    return key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def scrub_text(text: str) -> str:
    # Most values are short, and most long ones hold no candidate: the search runs in C and is the filter.
    if len(text) < _MIN_DIGITS or _CARD_NUMBER.search(text) is None:
        return text
    return _CARD_NUMBER.sub(REDACTED, text)


def scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return REDACTED if abs(value) >= _SMALLEST_CARD_SHAPED_INT else value
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(k, str) and _is_secret_key(k) else scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub_value(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return scrub_text(value.decode("utf-8", "replace"))
    if value is None or isinstance(value, float | bool):
        return value
    return scrub_text(str(value))


def scrub_card_data(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Structlog processor: redact secret keys and card-number-shaped text in every field."""
    for key, value in event_dict.items():
        if _is_secret_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str:  # most fields: `scrub_text` inlined, as this runs for every field of every line
            if len(value) >= _MIN_DIGITS and _CARD_NUMBER.search(value) is not None:
                event_dict[key] = _CARD_NUMBER.sub(REDACTED, value)
        else:
            event_dict[key] = scrub_value(value)
    return event_dict


def _same_logger(logger: structlog.WriteLogger, *_args: Any) -> structlog.WriteLogger:
    return logger


def _render_json(event_dict: EventDict, **_kwargs: Any) -> str:
    return orjson.dumps(event_dict, default=str).decode()


def _scrubbing(renderer: Processor) -> Processor:
    """`renderer`, with card-number-shaped text scrubbed from the line it renders (tracebacks included)."""

    def render(logger: WrappedLogger, method: str, event_dict: EventDict) -> Any:
        line = renderer(logger, method, event_dict)
        return scrub_text(line) if isinstance(line, str) else line

    return render


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(settings: LogSettings, *, stream: TextIO | None = None) -> None:
    """Set up structlog and the standard library's root logger; call once per process.

    Args:
        settings: level and output format.
        stream: where lines go (standard output by default); tests pass a buffer to read them back.
    """
    output = stream if stream is not None else sys.stdout
    level = logging.getLevelNamesMapping().get(settings.level.upper(), logging.INFO)
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_render_json)
        if settings.json_output
        # The default formatter (rich's, when installed) prints every frame's locals.
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    tail: list[Processor] = [
        structlog.processors.format_exc_info if settings.json_output else structlog.dev.set_exc_info,
        scrub_card_data,
        _scrubbing(renderer),
    ]
    structlog.configure(
        processors=[*_shared_processors(), *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One writer for every logger: the factory is called on every log call (loggers are not cached, so
        # reconfiguring applies to module-level loggers too), and a new writer each time cost a lock look-up.
        logger_factory=functools.partial(_same_logger, structlog.WriteLogger(file=output)),
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(),
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Per-request access lines cost CPU on the hot path and repeat what metrics already count.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
