"""The webhook delivery worker (`python -m app.cli worker`; in the API process only with
INLINE_WORKER=true). Never inside a request: a slow or dead receiver costs requests nothing.

Each round (`run`):

1. **Fan-out.** Events not yet fanned out (`events.delivered` false) are taken in id order,
   with `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers split them; for every
   active endpoint that subscribes to the type, may read the event (scope.py, as its owner
   key) and existed when it happened, a `webhook_deliveries` row (pending, due now); the
   events are marked fanned out in the same transaction.
2. **Delivery.** Due deliveries are *claimed* in a short transaction of their own:
   `WITH picked AS (SELECT id … LIMIT n FOR UPDATE SKIP LOCKED) UPDATE … SET status =
   'delivering', attempts = attempts + 1, next_attempt_at = <lease end> FROM picked …` on
   PostgreSQL (SQLite runs one writer at a time, so a plain `UPDATE … WHERE id IN (SELECT …
   LIMIT n)` is atomic there; one worker per SQLite database). The POST happens
   after that commit, outside any transaction, with httpx and a total timeout of
   WEBHOOK_TIMEOUT_SECONDS; the lease runs 30 s beyond it, so a live worker always reports
   first. The result is written only if the row is still in the attempt this worker claimed
   (`status = 'delivering' AND attempts = <ours>`): a worker that died is taken over when its
   lease ends, as a new attempt, and a late report of a taken-over attempt changes nothing. So
   two workers never send one delivery in one attempt; a receiver may still see a delivery
   again in a later attempt (at-least-once: deduplicate by `Webhook-Id`). Outcomes are written
   in batches (one transaction for whatever finished together).
3. **Outcome.** 2xx: delivered (and a failing endpoint is active again). Anything else
   (status, timeout, refused connection, redirect): retried after an exponential backoff with
   full jitter, `random() * min(8 h, 30 s * 4^(attempt-1))` (at least 1 s); when the attempt
   was the delivery's last (`max_attempts`, WEBHOOK_MAX_ATTEMPTS when written) it is `failed`
   and its endpoint turns `failing` (event `webhook_endpoint.failing`, once per spell). A URL
   whose host resolves to an address that may not be called (urls.py: link-local, or loopback
   and private ones unless WEBHOOK_ALLOW_PRIVATE_URLS) is not called at all: the delivery is
   `failed` at once, its `last_error` saying which address and why.

The request: `POST <url>` with the event `{id, type, created_at, data}` (data as the owner key
may see it) and headers `Content-Type: application/json`, `Webhook-Id` (the delivery's id, the
same on every retry), `Webhook-Timestamp` (unix seconds) and `Webhook-Signature` (signing.py).
Up to CONCURRENCY requests are in flight per worker; deliveries carry no order guarantee.
"""
import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiKey
from app.core import clock
from app.core.db import is_postgres, unit_of_work
from app.core.sql import insert_ignore
from app.core.ids import new_id
from app.core.responses import dumps
from app.core.settings import get_settings
from app.events import endpoints, signing, urls
from app.events.models import Event, WebhookDelivery, WebhookEndpoint
from app.events.scope import Scope, may_read, render, scope_of
from app.events.service import emit
from app.events.types import WILDCARD
from app.worker import periodic

log = logging.getLogger("app.events.delivery")
E = Event.__table__
W = WebhookEndpoint.__table__
D = WebhookDelivery.__table__
K = ApiKey.__table__

FANOUT_BATCH = 500
CONCURRENCY = 32
MAX_RESPONSE_BYTES = 64 * 1024  # of a receiver's answer body read (the rest is dropped with the connection)
LEASE_MARGIN = timedelta(seconds=30)
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_FACTOR = 4.0
BACKOFF_CAP_SECONDS = 8 * 3600.0
ROUND_SECONDS = 20.0  # a round stops claiming after this long (the periodic loop starts the next)
# the jitter's source: a float in [0, 1) (tests set a fixed one to see the schedule itself)
RANDOM: Callable[[], float] = random.random


def backoff(attempt: int) -> timedelta:
    """The wait after failed attempt `attempt` (1-based): full jitter over an exponential cap."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * BACKOFF_FACTOR ** max(0, attempt - 1))
    return timedelta(seconds=max(1.0, RANDOM() * ceiling))


# --------------------------------------------------------------------------- fan-out

@dataclass(slots=True)
class Target:
    id: str
    events: tuple[str, ...]
    created_at: Any
    scope: Scope

    def takes(self, type_: str, channels: str | None, location: str | None, created_at: Any) -> bool:
        return (created_at >= self.created_at and (WILDCARD in self.events or type_ in self.events)
                and may_read(self.scope, type_, channels, location))


def _live_endpoints():
    """Endpoints that receive: switched on, and their owner key not revoked."""
    return (select(W.c.id).join(K, K.c.id == W.c.api_key_id)
            .where(W.c.active.is_(True), K.c.revoked_at.is_(None)))


async def _targets(session: AsyncSession) -> list[Target]:
    rows = (await session.execute(
        select(W.c.id, W.c.events, W.c.created_at, K.c.role, K.c.channel_code, K.c.location_code)
        .join(K, K.c.id == W.c.api_key_id).where(W.c.active.is_(True), K.c.revoked_at.is_(None)))).all()
    return [Target(r.id, tuple(r.events or ()), r.created_at,
                   await scope_of(session, r.role, r.channel_code, r.location_code)) for r in rows]


async def fan_out(batch: int = FANOUT_BATCH) -> int:
    """One batch of events fanned out to deliveries; returns how many events were taken."""
    async with unit_of_work() as session:
        stmt = (select(E.c.id, E.c.type, E.c.channels, E.c.location, E.c.created_at)
                .where(~E.c.delivered).order_by(E.c.id).limit(batch))
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        events = (await session.execute(stmt)).all()
        if not events:
            return 0
        targets = await _targets(session)
        now = clock.now()
        max_attempts = max(1, get_settings().webhook_max_attempts)
        rows = [{"id": new_id("whd"), "endpoint_id": t.id, "event_id": ev.id, "event_type": ev.type,
                 "status": "pending", "attempts": 0, "max_attempts": max_attempts, "next_attempt_at": now,
                 "created_at": now, "updated_at": now}
                for ev in events for t in targets if t.takes(ev.type, ev.channels, ev.location, ev.created_at)]
        if rows:
            await session.execute(insert_ignore(session, D, ["endpoint_id", "event_id"]), rows)
        await session.execute(update(E).where(E.c.id.in_([ev.id for ev in events])).values(delivered=True))
    return len(events)


# --------------------------------------------------------------------------- claims

@dataclass(slots=True)
class Job:
    id: str
    endpoint_id: str
    attempts: int
    max_attempts: int
    url: str
    secrets: list[str]
    body: bytes


async def claim(n: int, endpoint_ids: Sequence[str] | None = None) -> list[Job]:
    """Claim up to `n` due deliveries for one attempt each (see the module doc)."""
    now = clock.now()
    lease_end = now + timedelta(seconds=get_settings().webhook_timeout_seconds) + LEASE_MARGIN
    async with unit_of_work() as session:
        due = select(D.c.id).where(D.c.status.in_(("pending", "delivering")), D.c.next_attempt_at <= now,
                                   D.c.endpoint_id.in_(_live_endpoints()))
        if endpoint_ids is not None:
            due = due.where(D.c.endpoint_id.in_(list(endpoint_ids)))
        due = due.order_by(D.c.next_attempt_at).limit(n)
        if is_postgres(session):
            # a locking CTE runs once; as `id IN (subquery)` PostgreSQL may rescan the subquery, and
            # with SKIP LOCKED each rescan finds other rows: more than `n` would be claimed
            picked = due.with_for_update(of=D, skip_locked=True).cte("picked")
            stmt = update(D).where(D.c.id == picked.c.id)
        else:  # one writer at a time: the statement is atomic as it is
            stmt = update(D).where(D.c.id.in_(due.scalar_subquery()))
        claimed = (await session.execute(
            stmt.where(D.c.status.in_(("pending", "delivering")), D.c.next_attempt_at <= now)
            .values(status="delivering", attempts=D.c.attempts + 1, next_attempt_at=lease_end,
                    last_attempt_at=now, updated_at=now)
            .returning(D.c.id, D.c.endpoint_id, D.c.event_id, D.c.attempts, D.c.max_attempts))).all()
        if not claimed:
            return []
        events = {r.id: r for r in (await session.execute(
            select(E.c.id, E.c.type, E.c.data, E.c.created_at)
            .where(E.c.id.in_(sorted({c.event_id for c in claimed}))))).all()}
        eps = {r.id: r for r in (await session.execute(
            select(W, K.c.role).join(K, K.c.id == W.c.api_key_id)
            .where(W.c.id.in_(sorted({c.endpoint_id for c in claimed}))))).all()}
    jobs = []
    for c in claimed:
        ev, ep = events.get(c.event_id), eps.get(c.endpoint_id)
        if ev is None or ep is None:  # the event row is gone (never expected): give up on it
            await record([Outcome(c, None, "the event no longer exists", 0, final=True)])
            continue
        body = dumps(render(Scope(ep.role), ev))
        jobs.append(Job(c.id, c.endpoint_id, c.attempts, c.max_attempts, ep.url, endpoints.signing_secrets(ep), body))
    return jobs


# --------------------------------------------------------------------------- one attempt

async def send(client: httpx.AsyncClient, job: Job) -> tuple[int | None, str | None, int, bool]:
    """POST one delivery: (status code or None, error or None, latency in ms, whether the failure
    is final: an address that may not be called). No database."""
    timestamp = int(clock.now().timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": "unified-commerce-webhooks/1",
               "Webhook-Id": job.id, "Webhook-Timestamp": str(timestamp),
               "Webhook-Signature": signing.header(job.secrets, timestamp, job.body)}
    started = time.perf_counter()
    status, error, final = None, None, False
    try:
        async with asyncio.timeout(get_settings().webhook_timeout_seconds):
            async with client.stream("POST", job.url, content=job.body, headers=headers) as response:
                status = response.status_code  # only the status counts; a short body is read so the
                read = 0                         # connection can serve the next delivery
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_RESPONSE_BYTES:
                        break
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except urls.Refused as exc:
        error, final = f"not called: {exc}"[:500], True
    except (TimeoutError, httpx.TimeoutException):
        error = f"timed out after {get_settings().webhook_timeout_seconds:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - an odd URL or a broken receiver is the delivery's failure
        error = f"{type(exc).__name__}: {exc}"[:500]
    return status, error, int((time.perf_counter() - started) * 1000), final


@dataclass(slots=True)
class Outcome:
    job: Any  # a Job, or a claimed row (id, endpoint_id, attempts, max_attempts)
    status: int | None
    error: str | None
    latency_ms: int
    final: bool = False

    @property
    def kind(self) -> str:
        if self.error is None:
            return "delivered"
        return "failed" if self.final or self.job.attempts >= self.job.max_attempts else "pending"


_DELIVERED = (update(D).where(D.c.id == bindparam("b_id"), D.c.status == "delivering",
                              D.c.attempts == bindparam("b_attempts"))
              .values(status="delivered", delivered_at=bindparam("b_now"), next_attempt_at=None,
                      last_status_code=bindparam("b_code"), last_error=None, last_latency_ms=bindparam("b_ms"),
                      updated_at=bindparam("b_now")))
_RETRY = (update(D).where(D.c.id == bindparam("b_id"), D.c.status == "delivering",
                          D.c.attempts == bindparam("b_attempts"))
          .values(status="pending", next_attempt_at=bindparam("b_next"), last_status_code=bindparam("b_code"),
                  last_error=bindparam("b_error"), last_latency_ms=bindparam("b_ms"), updated_at=bindparam("b_now")))


async def record(outcomes: Sequence[Outcome]) -> None:
    """The attempts' outcomes in one transaction, each written only if its row is still in the
    attempt this worker claimed (`status = 'delivering' AND attempts = <ours>`)."""
    if not outcomes:
        return
    now = clock.now()
    ok = [o for o in outcomes if o.kind == "delivered"]
    retry = [o for o in outcomes if o.kind == "pending"]
    failed = [o for o in outcomes if o.kind == "failed"]
    async with unit_of_work() as session:
        if ok:
            await session.execute(_DELIVERED, [{"b_id": o.job.id, "b_attempts": o.job.attempts, "b_now": now,
                                                "b_code": o.status, "b_ms": o.latency_ms} for o in ok])
            await session.execute(update(W).where(W.c.id.in_(sorted({o.job.endpoint_id for o in ok})),
                                                  W.c.status == "failing")
                                  .values(status="active", failing_since=None, updated_at=now))
        if retry:
            await session.execute(_RETRY, [{"b_id": o.job.id, "b_attempts": o.job.attempts, "b_now": now,
                                            "b_next": now + backoff(o.job.attempts), "b_code": o.status,
                                            "b_error": o.error, "b_ms": o.latency_ms} for o in retry])
        for o in failed:  # rare: one at a time, the endpoint turns failing once per spell
            done = (await session.execute(
                update(D).where(D.c.id == o.job.id, D.c.status == "delivering", D.c.attempts == o.job.attempts)
                .values(status="failed", next_attempt_at=None, last_status_code=o.status, last_error=o.error,
                        last_latency_ms=o.latency_ms, updated_at=now).returning(D.c.id))).first()
            if done is None:
                continue
            flipped = (await session.execute(
                update(W).where(W.c.id == o.job.endpoint_id, W.c.status == "active")
                .values(status="failing", failing_since=now, updated_at=now).returning(*W.c))).first()
            if flipped is not None:
                await emit(session, "webhook_endpoint.failing",
                           {**endpoints.render(flipped), "delivery": o.job.id, "last_error": o.error})


async def attempt(client: httpx.AsyncClient, job: Job) -> Outcome:
    return Outcome(job, *await send(client, job))


# --------------------------------------------------------------------------- rounds

def new_client(connections: int = CONCURRENCY) -> httpx.AsyncClient:
    """httpx with every connection's address checked first (urls.GuardedBackend)."""
    transport = urls.guard(httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections), trust_env=False))
    return httpx.AsyncClient(timeout=httpx.Timeout(get_settings().webhook_timeout_seconds), transport=transport,
                             follow_redirects=False, trust_env=False)


async def deliver_due(endpoint_ids: Sequence[str] | None = None, *, concurrency: int = CONCURRENCY,
                      budget_seconds: float = ROUND_SECONDS) -> dict[str, int]:
    """Claim and send due deliveries, up to `concurrency` at once, until none is due (or the
    budget is spent; what is in flight then still finishes). Outcomes are recorded as they
    come in, in one transaction per batch. Returns them counted."""
    counts: dict[str, int] = {}
    deadline = time.monotonic() + budget_seconds
    inflight: set[asyncio.Task] = set()
    async with new_client(concurrency) as client:
        exhausted = False
        while True:
            free = concurrency - len(inflight)
            if not exhausted and free >= max(1, concurrency // 2) and time.monotonic() < deadline:
                jobs = await claim(free, endpoint_ids)
                inflight.update(asyncio.create_task(attempt(client, j)) for j in jobs)
                exhausted = not jobs
            if not inflight:
                break
            finished, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            outcomes = [t.result() for t in finished]
            try:
                await record(outcomes)
            except Exception:  # noqa: BLE001 - unrecorded: their leases end and they are tried again
                log.exception("recording %d webhook deliveries failed", len(outcomes))
                counts["unrecorded"] = counts.get("unrecorded", 0) + len(outcomes)
            else:
                for o in outcomes:
                    counts[o.kind] = counts.get(o.kind, 0) + 1
            exhausted = exhausted and bool(inflight)  # once all in flight are done, look again
    return counts


async def run(endpoint_ids: Sequence[str] | None = None, *, budget_seconds: float = ROUND_SECONDS,
              concurrency: int = CONCURRENCY) -> dict[str, int]:
    """One round: fan out every pending event, then deliver what is due."""
    fanned = 0
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        n = await fan_out()
        fanned += n
        if n < FANOUT_BATCH:
            break
    outcomes = await deliver_due(endpoint_ids, concurrency=concurrency,
                                 budget_seconds=max(1.0, deadline - time.monotonic()))
    return {"fanned_out": fanned, **outcomes}


@periodic(1)
async def deliver_webhooks() -> int:
    done = await run()
    return sum(v for k, v in done.items() if k != "fanned_out")


