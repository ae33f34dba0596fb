"""The one clock. Tests move it with `clock.advance()` / `clock.set_offset()`.

Every rule that depends on time (reservation TTL, pickup expiry, promotion
validity, return windows) reads `clock.now()`, never `datetime.now()`.
"""
from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    return datetime.now(UTC) + _offset


def advance(delta: timedelta) -> None:
    global _offset
    _offset += delta


def set_offset(delta: timedelta) -> None:
    global _offset
    _offset = delta


def reset() -> None:
    set_offset(timedelta(0))
