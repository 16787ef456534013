"""The simulator's notion of now: a callable returning an aware UTC datetime, injectable in tests."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)
