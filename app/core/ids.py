"""Opaque, time-ordered, type-prefixed identifiers (`prod_01J…`).

The body is a Crockford base32 ULID (48-bit ms timestamp + 80 random bits), so
ids sort by creation time; cursor pagination orders by id.
"""
import os
import threading
import time
from datetime import datetime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> 2 characters
_lock = threading.Lock()
_last = (0, 0)  # (ms, 80-bit value) of the last id handed out


def _random() -> int:
    return int.from_bytes(os.urandom(10), "big") >> 1  # 79 bits: room to count up


def _reserve(n: int, *, aligned: bool = False) -> tuple[int, int]:
    """`n` consecutive 80-bit values after the last id (same millisecond) or from a random start;
    `aligned`: the first one's low 20 bits are zero (bulk ids count in those bits)."""
    global _last
    with _lock:
        ms = int(time.time() * 1000)
        last_ms, last = _last
        start = last + 1 if ms <= last_ms else _random()
        ms = max(ms, last_ms)
        if aligned and start & 0xFFFFF:
            start = ((start >> 20) + 1) << 20
        if (start + n) >> 80:  # this millisecond is used up: move on to the next
            ms, start = ms + 1, (_random() >> 20) << 20
        _last = (ms, start + n - 1)
    return ms, start


def ulid() -> str:
    """Monotonic within the process: ids made in the same millisecond count up from a random
    start, so the ledger and every id-ordered list keep creation order even at high rates."""
    ms, value = _reserve(1)
    return _b32(ms, 10) + _b32(value, 16)


def new_ids(prefix: str, n: int) -> list[str]:
    """`n` ids at once, in order and after every id made before (bulk import: ids follow the
    file). At most 2^20 per call."""
    if n > 1 << 20:
        raise ValueError("at most 2**20 ids per call")
    ms, start = _reserve(n, aligned=True)
    head = f"{prefix}_{_b32(ms, 10)}{_b32(start >> 20, 12)}"
    return [head + _PAIRS[i >> 10] + _PAIRS[i & 1023] for i in range(n)]


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def id_floor(prefix: str, at: datetime) -> str:
    """The lowest id of `prefix` made at `at`: every id made before that moment sorts below it
    (a bound for an index range over ids by age)."""
    return f"{prefix}_{_b32(max(0, int(at.timestamp() * 1000)), 10)}{'0' * 16}"
