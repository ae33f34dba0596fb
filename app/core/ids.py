"""Opaque, time-ordered, type-prefixed identifiers (`prod_01J…`).

The body is a Crockford base32 ULID (48-bit ms timestamp + 80 random bits), so
ids sort by creation time; cursor pagination orders by id.
"""
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def ulid() -> str:
    ms = int(time.time() * 1000)
    rnd = int.from_bytes(os.urandom(10), "big")
    return _b32(ms, 10) + _b32(rnd, 16)


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"
