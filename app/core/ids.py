"""Opaque, time-ordered, type-prefixed identifiers (`prod_01J…`).

The body is a Crockford base32 ULID (48-bit ms timestamp + 80 random bits), so
ids sort by creation time; cursor pagination orders by id.
"""
import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


_lock = threading.Lock()
_last = (0, 0)


def ulid() -> str:
    """Monotonic within the process: ids made in the same millisecond count up from a random
    start, so the ledger and every id-ordered list keep creation order even at high rates."""
    global _last
    with _lock:
        ms = int(time.time() * 1000)
        last_ms, last_rnd = _last
        if ms <= last_ms:
            ms, rnd = last_ms, last_rnd + 1
            if rnd >> 80:  # 2^80 ids in one millisecond: move on to the next
                ms, rnd = ms + 1, int.from_bytes(os.urandom(10), "big") >> 1
        else:
            rnd = int.from_bytes(os.urandom(10), "big") >> 1  # room to count up
        _last = (ms, rnd)
    return _b32(ms, 10) + _b32(rnd, 16)


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"
