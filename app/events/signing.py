"""Webhook signatures and secrets.

    Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=<…>]

`body` is the exact bytes of the request body. While a rotated secret's overlap lasts, the
header carries one `v1=` per secret (the new one first): a receiver accepts the request when
any of them matches the secret it knows. `verify` is the receiver's side, for tests and as the
reference implementation the README shows.

Secrets (`whsec_` + 32 random bytes, url-safe base64) are stored as they are. Unlike an API
key, which we only ever need to *check* (so a hash suffices), a signing secret must be *used*:
the worker needs the secret itself for every HMAC, so a one-way hash cannot work. Encrypting it
at rest would only help with a key kept apart from the database (a KMS); with the key in the
same process environment it adds a dependency (the pinned dependencies have no vetted
cipher) without protecting against anyone who can read both. What we do guarantee: the
secret is answered exactly once (on creation and on each rotation), never by a GET, never in
an idempotent replay (`mark_secret`), never in an event or a log.
"""
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header(secrets_: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}" for s in secrets_])


def verify(secret: str, header_value: str, body: bytes, *, now: int | None = None, tolerance: int = 300) -> bool:
    """True when one of the header's v1 signatures is the secret's for this body, and (when `now`
    is given) the timestamp is within `tolerance` seconds of it."""
    parts = [p.split("=", 1) for p in header_value.split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        return False
    t = int(stamps[0])
    if now is not None and abs(now - t) > tolerance:
        return False
    expected = signature(secret, t, body)
    return any(hmac.compare_digest(expected, v.strip()) for k, v in parts if k.strip() == "v1")
