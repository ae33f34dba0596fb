"""A fake Stripe API on loopback, for driving the real `stripe` library in tests.

    fake = FakeStripe().start()              # http://127.0.0.1:<free port>, a background thread
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url},
                                 http_client=stripe.HTTPXClient(), max_network_retries=0)
    pi = await client.v1.payment_intents.create_async(params={"amount": 1000, "currency": "eur",
                                                              "capture_method": "manual"})
    fake.pay(pi.id)                          # the shopper pays: requires_capture
    fake.fail_next("/v1/payment_intents/*/capture", status=500)   # the next capture answers 500
    fake.stop()

Endpoints: POST /v1/payment_intents, GET|POST /v1/payment_intents/{id}, POST
/v1/payment_intents/{id}/confirm|capture|cancel, POST /v1/refunds, GET /v1/refunds/{id},
GET /v1/charges/{id}. Requests are form-encoded as the library sends them; unknown parameters
are refused (400 parameter_unknown) like Stripe does, using the library's own parameter lists.
Every POST honours its Idempotency-Key (same key + same endpoint + same params -> the stored
answer, with `Idempotent-Replayed: true`; otherwise 400 idempotency_error). Stripe semantics of
the objects live in fake_stripe_state.py, their JSON in fake_stripe_objects.py.
"""
from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.payments.fake_stripe_objects import (
    ALLOWED,
    API_VERSION,
    DECLINES,
    StripeError,
    check_known,
    event_object,
    invalid,
    new_id,
    parse_form,
    sign,
)
from tests.payments.fake_stripe_state import Ledger

_ID = r"([^/]+)"
ROUTES: list[tuple[str, re.Pattern, str]] = [
    (method, re.compile(f"^{path}$"), name) for method, path, name in (
        ("POST", "/v1/payment_intents", "create_payment_intent"),
        ("GET", f"/v1/payment_intents/{_ID}", "retrieve_payment_intent"),
        ("POST", f"/v1/payment_intents/{_ID}", "update_payment_intent"),
        ("POST", f"/v1/payment_intents/{_ID}/confirm", "confirm_payment_intent"),
        ("POST", f"/v1/payment_intents/{_ID}/capture", "capture_payment_intent"),
        ("POST", f"/v1/payment_intents/{_ID}/cancel", "cancel_payment_intent"),
        ("POST", "/v1/refunds", "create_refund"),
        ("GET", f"/v1/refunds/{_ID}", "retrieve_refund"),
        ("GET", f"/v1/charges/{_ID}", "retrieve_charge"),
    )
]


@dataclass
class LoggedRequest:
    """One request as the fake saw it. `reached=False`: the fake was down (or told to drop it
    unprocessed), nothing happened. `answered=False`: the client got no answer. `status` is what
    was (or would have been) answered; `replayed`: an idempotent replay of a stored answer."""
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int | None = None
    reached: bool = True
    answered: bool = True
    replayed: bool = False


@dataclass
class _Rule:
    path: str | None
    method: str | None
    error: StripeError | None = None  # fail_next: this answer; drop_next: None
    execute: bool = False  # drop_next: run the request before dropping the answer

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.path is None:
            return True
        return fnmatch.fnmatchcase(path, self.path) if "*" in self.path else path.startswith(self.path)


@dataclass
class _Saved:
    method: str
    path: str
    params: dict
    status: int
    body: dict = field(repr=False)


_DEFAULT_ERRORS = {  # status -> (type, code, message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", None, "Invalid API Key provided: sk_test_****"),
    402: ("card_error", "card_declined", "Your card was declined."),
    403: ("invalid_request_error", None, "The provided key does not have the required permissions."),
    404: ("invalid_request_error", "resource_missing", "No such object."),
    409: ("invalid_request_error", "lock_timeout", "This object cannot be accessed right now "
          "because another API request or Stripe process is currently accessing it."),
    429: ("invalid_request_error", "rate_limit", "Too many requests hit the API too quickly."),
}


class FakeStripe:
    def __init__(self, api_key: str | None = None):
        """`api_key`: when set, only this secret key is accepted (else any `sk_…`/`rk_…`)."""
        self.api_key = api_key
        self.url = ""
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-stripe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Forgets every object, stored idempotent answer, logged request and pending failure;
        back up, clock back to real time."""
        with self._lock:
            self._offset = 0
            self.ledger = Ledger(self.now)
            self.requests: list[LoggedRequest] = []
            self.events: list[dict] = []
            self.errors: list[Exception] = []  # exceptions inside the fake (answered 500)
            self._rules: list[_Rule] = []
            self._idempotency: dict[str, _Saved] = {}
            self._down = False

    # --- time ------------------------------------------------------------------------------------

    def now(self) -> int:
        return int(time.time()) + self._offset

    def advance(self, seconds: int) -> None:
        """Moves the fake's clock on: e.g. `advance(8 * 86400)` and an uncaptured authorization has
        expired (the PaymentIntent is `canceled`, cancellation_reason `expired`)."""
        with self._lock:
            self._offset += int(seconds)

    # --- test helpers: the shopper, failures ----------------------------------------------------

    def pay(self, pi_id: str, *, decline: str | None = None,
            payment_method: str = "pm_card_visa") -> dict:
        """The shopper confirms the PaymentIntent with a card. Success: `requires_capture` (manual
        capture) or `succeeded`. `decline` (a decline code such as "generic_decline",
        "insufficient_funds", "expired_card"; "card_declined" means generic_decline): the card is
        declined, the PaymentIntent is back to `requires_payment_method` with `last_payment_error`.
        Returns the PaymentIntent; raises StripeError when it cannot be confirmed."""
        decline = "generic_decline" if decline == "card_declined" else decline
        if decline is not None and decline not in DECLINES:
            raise ValueError(f"unknown decline code {decline!r}; one of {sorted(DECLINES)}")
        with self._lock:
            try:
                self.ledger.confirm_payment_intent({"payment_method": payment_method}, pi_id,
                                                  decline=decline)
            except StripeError as exc:
                if exc.status != 402:
                    raise
            return copy.deepcopy(self.ledger.pi(pi_id))

    def fail_next(self, path_prefix: str | None = None, status: int = 500, code: str | None = None,
                  *, method: str | None = None, message: str | None = None,
                  type: str | None = None, decline_code: str | None = None,
                  param: str | None = None) -> None:
        """The next request matching `path_prefix` (a prefix such as "/v1/refunds", or a glob such
        as "/v1/payment_intents/*/capture"; None: any) and `method` answers this Stripe error
        without doing anything (and without saving it under the idempotency key, so a retry runs).
        Several calls queue up, first match first."""
        etype, dcode, dmessage = _DEFAULT_ERRORS.get(
            status, ("api_error", None, "An unknown error occurred") if status >= 500
            else ("invalid_request_error", None, "Invalid request."))
        code = code or dcode
        if status == 402 and code == "card_declined":
            decline_code = decline_code or "generic_decline"
        error = StripeError(status, type or etype, message or dmessage, code=code, param=param,
                            decline_code=decline_code, stored=False)
        with self._lock:
            self._rules.append(_Rule(path_prefix, method, error))

    def drop_next(self, path_prefix: str | None = None, *, method: str | None = None,
                  execute: bool = False) -> None:
        """The next matching request gets no answer (connection closed: APIConnectionError).
        `execute=True`: it is carried out first (and its answer stored under its idempotency key)
        - Stripe did it, the answer was lost - so a retry with the same key replays it."""
        with self._lock:
            self._rules.append(_Rule(path_prefix, method, None, execute))

    def down(self) -> None:
        """Until up(): every connection is closed without an answer (APIConnectionError)."""
        with self._lock:
            self._down = True

    def up(self) -> None:
        with self._lock:
            self._down = False

    # --- inspection ------------------------------------------------------------------------------

    def calls(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests that reached the fake, filtered like fail_next (prefix or glob)."""
        rule = _Rule(path, method)
        with self._lock:
            return [r for r in self.requests if r.reached and rule.matches(r.method, r.path)]

    def payment_intent(self, pi_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self.ledger.pi(pi_id))

    def charge(self, ch_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self.ledger.retrieve_charge({}, ch_id))

    def refund(self, re_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self.ledger.retrieve_refund({}, re_id))

    def captures(self, pi_id: str) -> list[dict]:
        """[{amount, final_capture, created}] in order (an automatic capture counts as one)."""
        with self._lock:
            self.ledger.pi(pi_id)
            return copy.deepcopy(self.ledger.captures[pi_id])

    def refunds_for(self, pi_id: str) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(r) for r in self.ledger.refunds.values()
                    if r["payment_intent"] == pi_id]

    # --- webhooks --------------------------------------------------------------------------------

    sign = staticmethod(sign)

    def event(self, type: str, obj: dict, *, previous_attributes: dict | None = None) -> dict:
        """A Stripe Event `{id: evt_…, object: "event", type, created, livemode, api_version,
        data: {object}}` carrying a copy of `obj` (also appended to `self.events`)."""
        with self._lock:
            ev = event_object(type, obj, self.now(), previous_attributes)
            self.events.append(ev)
            return copy.deepcopy(ev)

    def webhook_for(self, pi_id: str, type: str) -> dict:
        """The event Stripe would send now for this PaymentIntent: `payment_intent.*` carries the
        PaymentIntent, `charge.*` its latest charge."""
        with self._lock:
            pi = self.ledger.pi(pi_id)
            if type.startswith("charge."):
                if not pi["latest_charge"]:
                    raise ValueError(f"{pi_id} has no charge yet")
                return self.event(type, self.ledger.charges[pi["latest_charge"]])
            return self.event(type, pi)

    def signed(self, event: dict, secret: str | None = None,
               timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """(body, headers) for POSTing `event` to the app's webhook endpoint, signed with `secret`
        (default: $STRIPE_WEBHOOK_SECRET, else whsec_test_fake)."""
        secret = secret or os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_test_fake")
        body = json.dumps(event).encode("utf-8")
        return body, {"Stripe-Signature": sign(body, secret, timestamp),
                      "Content-Type": "application/json"}

    # --- the HTTP side ---------------------------------------------------------------------------

    def _dispatch(self, method: str, target: str, headers: Any, body: bytes
                  ) -> tuple[int | None, Any, dict[str, str]]:
        """(status, JSON body, headers) to answer, or status None: close without an answer."""
        url = urlsplit(target)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        if method == "POST":
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = parse_form(pairs)
        entry = LoggedRequest(method, url.path, params, headers.get("Idempotency-Key"))
        with self._lock:
            self.requests.append(entry)
            rule = None if self._down else self._take_rule(method, url.path)
            if self._down or (rule and rule.error is None and not rule.execute):
                entry.reached = entry.answered = False
                return None, None, {}
            if rule and rule.error is not None:
                entry.status = rule.error.status
                return rule.error.status, rule.error.body(), self._headers(entry)
            status, payload = self._answer(entry, headers.get("Authorization", ""))
            entry.status = status
            if rule:  # drop_next(execute=True)
                entry.answered = False
                return None, None, {}
            return status, payload, self._headers(entry)

    def _take_rule(self, method: str, path: str) -> _Rule | None:
        for i, rule in enumerate(self._rules):
            if rule.matches(method, path):
                return self._rules.pop(i)
        return None

    def _headers(self, entry: LoggedRequest) -> dict[str, str]:
        out = {"Request-Id": new_id("req", 14), "Stripe-Version": API_VERSION}
        if entry.idempotency_key and entry.method == "POST":
            out["Idempotency-Key"] = entry.idempotency_key
        if entry.replayed:
            out["Idempotent-Replayed"] = "true"
        return out

    def _answer(self, entry: LoggedRequest, authorization: str) -> tuple[int, Any]:
        key = entry.idempotency_key if entry.method == "POST" else None
        try:
            self._authenticate(authorization)
            name, ids = self._route(entry.method, entry.path)
            if key and key in self._idempotency:
                return self._replay(entry, self._idempotency[key])
            check_known(entry.params, ALLOWED[name])
            obj = getattr(self.ledger, name)(entry.params, *ids)
            status, payload, stored = 200, self.ledger.expand(obj, entry.params), True
        except StripeError as exc:
            status, payload, stored = exc.status, exc.body(), exc.stored
        except Exception as exc:  # a bug in the fake: a visible 500, kept in self.errors
            self.errors.append(exc)
            status, payload, stored = 500, {"error": {"type": "api_error", "message": repr(exc)}}, False
        if key and stored:
            self._idempotency[key] = _Saved(entry.method, entry.path, copy.deepcopy(entry.params),
                                            status, copy.deepcopy(payload))
        return status, payload

    def _authenticate(self, authorization: str) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise invalid("You did not provide an API key. You need to provide your API key in the "
                          "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                          "YOUR_SECRET_KEY').", status=401, stored=False)
        if not token.startswith(("sk_", "rk_")) or (self.api_key and token != self.api_key):
            raise invalid(f"Invalid API Key provided: {token[:8]}****{token[-4:]}", status=401,
                          stored=False)

    @staticmethod
    def _route(method: str, path: str) -> tuple[str, tuple[str, ...]]:
        for m, pattern, name in ROUTES:
            match = pattern.match(path)
            if m == method and match:
                return name, match.groups()
        raise invalid(f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                      "or we can help at https://support.stripe.com/.", status=404, stored=False)

    def _replay(self, entry: LoggedRequest, saved: _Saved) -> tuple[int, Any]:
        key = entry.idempotency_key
        if (saved.method, saved.path) != (entry.method, entry.path):
            raise StripeError(400, "idempotency_error", "Keys for idempotent requests can only be "
                              "used for the same endpoint they were first used for ('"
                              f"{saved.method} {saved.path}' vs '{entry.method} {entry.path}'). Try "
                              f"using a key other than '{key}' if you meant to execute a different "
                              "request.", stored=False)
        if saved.params != entry.params:
            raise StripeError(400, "idempotency_error", "Keys for idempotent requests can only be "
                              "used with the same parameters they were first used with. Try using a "
                              f"key other than '{key}' if you meant to execute a different request.",
                              stored=False)
        entry.replayed = True
        return saved.status, copy.deepcopy(saved.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing stale in client pools
    server_version = "FakeStripe/1.0"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.server.fake._dispatch(  # type: ignore[attr-defined]
            self.command, self.path, self.headers, body)
        if status is None:
            self.close_connection = True
            return
        data = json.dumps(payload, indent=2).encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


__all__ = ["FakeStripe", "LoggedRequest", "StripeError", "sign"]
