"""The webhook relay: the journal is the outbox.

**Fan-out.** For each enabled endpoint behind its organisation's journal head, the entries
after the endpoint's cursor become deliveries (one per entry whose event the endpoint
subscribes to) and the cursor moves to the last entry read, in one transaction: exactly once,
whatever the number of relays (the endpoint's row is locked, ``SKIP LOCKED`` on PostgreSQL so
that another relay fans out other endpoints meanwhile; SQLite serialises writers; and the
cursor only moves from the value read). A relay that dies mid-fan-out rolls back: nothing
written, the cursor where it was.

**Sending**, after commit: due deliveries are claimed under a lease (as the e-mail relay's),
so two relays never send one at once; each endpoint's deliveries go in journal order, a few
at a time (``webhook_endpoint_concurrency``; receivers get no order guarantee, ``journalSeq``
orders), endpoints side by side. At least once: a delivery is marked delivered only after a
2xx, so a relay that dies in between leaves it to be sent again (same ``webhook-id``)
when its lease expires. Failures follow the Standard Webhooks schedule with jitter; 410
disables the endpoint; 429 and 503 ``Retry-After`` are honoured; an endpoint failing for
``webhook_disable_after_hours`` is disabled and its admins are e-mailed (through the outbox,
in the transaction that disables it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from standardwebhooks import Webhook

from interventions import __version__
from interventions.config import Settings
from interventions.db import Database, Executor, utcnow
from interventions.integrations.webhooks import repository as repo
from interventions.integrations.webhooks.addresses import AddressRefused, Target, resolve
from interventions.integrations.webhooks.events import event_type, message_id, payload
from interventions.notifications.relay import default_relay_id
from interventions.notifications.service import enqueue_email

logger = logging.getLogger(__name__)
# httpx logs every request at INFO: one line per delivery would drown the worker's log (the
# delivery log is in the database).
logging.getLogger("httpx").setLevel(logging.WARNING)

# The Standard Webhooks schedule: the first attempt at once, then after each failure these
# many seconds (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the eighth, failed.
SCHEDULE_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(SCHEDULE_SECONDS) + 1
JITTER = 0.2  # ±20 %
_MAX_ERROR_CHARS = 2000
_MAX_RESPONSE_BYTES = 4096
ENDPOINTS_PER_FAN_OUT = 20


class FanOutRace(Exception):
    """The cursor moved under this fan-out: its transaction is rolled back."""


# --- the schedule ------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def next_attempt(
    attempts: int,
    settings: Settings,
    now: dt.datetime,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> dt.datetime | None:
    """When to try again after ``attempts`` failed attempts, or ``None`` when the schedule is
    over: its delay (scaled by ``webhook_retry_scale``) with ±20 % jitter, and never before
    the receiver's ``Retry-After`` (capped)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = SCHEDULE_SECONDS[max(attempts, 1) - 1] * settings.webhook_retry_scale
    delay = base * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.webhook_retry_after_max_seconds))
    return now + dt.timedelta(seconds=delay)


# --- fan-out -----------------------------------------------------------------------------------


async def fan_out(db: Database, settings: Settings) -> int:
    """Turn the journal entries behind every enabled endpoint into deliveries; how many."""
    created = 0
    while True:
        async with db.transaction() as executor:
            endpoints = await repo.endpoints_behind(executor, ENDPOINTS_PER_FAN_OUT)
            for endpoint in endpoints:
                created += await _fan_out_endpoint(executor, settings, endpoint)
        if len(endpoints) < ENDPOINTS_PER_FAN_OUT:
            # Endpoints still behind (more entries than one batch) come back next round.
            return created


async def _fan_out_endpoint(executor: Executor, settings: Settings, endpoint: Any) -> int:
    entries = await repo.entries_after(
        executor,
        endpoint.organization_id,
        endpoint.journal_cursor,
        settings.webhook_fanout_batch_size,
    )
    if not entries:
        return 0
    wanted = set(endpoint.event_types)
    now = utcnow()
    rows = []
    for entry in entries:
        kind = event_type(entry.subject_type, entry.action, entry.changes)
        if kind is None or kind not in wanted:
            continue
        rows.append(
            {
                "organization_id": endpoint.organization_id,
                "endpoint_id": endpoint.id,
                "journal_seq": entry.seq,
                "event_type": str(kind),
                "message_id": message_id(entry.organization_id, entry.seq),
                "payload": payload(entry, kind),
                "now": now,
            }
        )
    await repo.insert_deliveries(executor, rows)
    moved = await repo.move_cursor(
        executor,
        endpoint.organization_id,
        endpoint.id,
        after=endpoint.journal_cursor,
        to=entries[-1].seq,
    )
    if moved != 1:
        raise FanOutRace(f"webhook {endpoint.id}: its cursor moved during the fan-out")
    return len(rows)


# --- sending -----------------------------------------------------------------------------------


@dataclass
class Claimed:
    id: int
    organization_id: int
    endpoint_id: int
    message_id: str
    payload: str
    attempts: int


@dataclass
class Outcome:
    """What became of one claimed delivery."""

    row: Claimed
    status: str  # repository's DELIVERED / PENDING (retry) / FAILED
    attempted_at: dt.datetime
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: dt.datetime | None = None


@dataclass
class _Endpoint:
    id: int
    organization_id: int
    url: str
    secret: str
    outcomes: list[Outcome] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    gone: bool = False


class _Stop(Exception):
    """The endpoint cannot take more now: the rest of its batch shares this outcome."""

    def __init__(self, error: str, status_code: int | None, retry_after: float | None) -> None:
        super().__init__(error)
        self.error = error
        self.status_code = status_code
        self.retry_after = retry_after


def open_client(settings: Settings) -> httpx.AsyncClient:
    """The relay's HTTP client: no redirects, no proxy from the environment (it would bypass
    the address checks), the operator's timeout."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        limits=httpx.Limits(
            max_connections=settings.webhook_concurrency * settings.webhook_endpoint_concurrency
        ),
        headers={"user-agent": f"interventions-webhooks/{__version__}"},
    )


async def send_due(
    db: Database, settings: Settings, client: httpx.AsyncClient, *, relay_id: str
) -> tuple[int, int]:
    """Claim a batch of due deliveries, send them, record the outcomes: (claimed, delivered)."""
    now = utcnow()
    until = now + dt.timedelta(seconds=settings.webhook_lease_seconds)
    async with db.transaction() as executor:
        found = await repo.claim_due(
            executor,
            relay_id=relay_id,
            now=now,
            until=until,
            batch_size=settings.webhook_batch_size,
        )
        endpoint_rows = (
            await repo.endpoints_by_id(executor, sorted({r.endpoint_id for r in found}))
            if found
            else []
        )
    if not found:
        return 0, 0
    endpoints = {e.id: _Endpoint(e.id, e.organization_id, e.url, e.secret) for e in endpoint_rows}
    groups: dict[int, list[Claimed]] = defaultdict(list)
    for r in sorted(found, key=lambda r: r.id):
        groups[r.endpoint_id].append(
            Claimed(r.id, r.organization_id, r.endpoint_id, r.message_id, r.payload, r.attempts)
        )
    # Not started so close to the lease's end that another relay could claim it meanwhile.
    deadline = until - dt.timedelta(
        seconds=min(settings.webhook_timeout_seconds + 1, settings.webhook_lease_seconds / 2)
    )
    gate = asyncio.Semaphore(settings.webhook_concurrency)

    async def one_endpoint(endpoint: _Endpoint) -> None:
        async with gate:
            try:
                await _send_group(client, settings, endpoint, groups[endpoint.id], deadline)
            except Exception:
                # A bug, not the receiver's doing: what was not recorded goes back, untouched.
                logger.exception("webhook relay: sending to webhook %s failed", endpoint.id)
                done = {o.row.id for o in endpoint.outcomes}
                endpoint.released.extend(r.id for r in groups[endpoint.id] if r.id not in done)

    await asyncio.gather(*(one_endpoint(endpoints[i]) for i in groups))
    delivered = await _record(db, settings, list(endpoints.values()), relay_id=relay_id)
    return len(found), delivered


async def _send_group(
    client: httpx.AsyncClient,
    settings: Settings,
    endpoint: _Endpoint,
    rows: list[Claimed],
    deadline: dt.datetime,
) -> None:
    """One endpoint's deliveries in journal order, ``webhook_endpoint_concurrency`` at a
    time (1: strictly one after another). Once the endpoint is unreachable or throttling,
    the rest share that outcome without being sent; once it is gone (410), they go back."""
    try:
        target = await resolve(endpoint.url, allow_private=settings.webhooks_allow_private_networks)
    except AddressRefused as exc:
        for row in rows:
            endpoint.outcomes.append(_failure(row, settings, str(exc), None, None))
        return
    signer = Webhook(endpoint.secret)
    size = settings.webhook_endpoint_concurrency
    for start in range(0, len(rows), size):
        if utcnow() >= deadline:
            endpoint.released.extend(r.id for r in rows[start:])
            logger.warning("webhook relay: lease running out, released the rest")
            return
        window = rows[start : start + size]
        results = await asyncio.gather(
            *(_post(client, settings, target, signer, row) for row in window),
            return_exceptions=True,
        )
        stop: _Stop | None = None
        for row, result in zip(window, results, strict=True):
            if isinstance(result, _Stop):
                stop = stop or result
                result = _failure(
                    row, settings, result.error, result.status_code, result.retry_after
                )
            elif isinstance(result, BaseException):
                raise result
            endpoint.outcomes.append(result)
            endpoint.gone = endpoint.gone or result.status_code == 410
        rest = rows[start + size :]
        if endpoint.gone:
            endpoint.released.extend(r.id for r in rest)
            return
        if stop is not None:
            for row in rest:
                error = f"Not sent: {stop.error}"
                endpoint.outcomes.append(
                    _failure(row, settings, error, stop.status_code, stop.retry_after)
                )
            return


def _failure(
    row: Claimed,
    settings: Settings,
    error: str,
    status_code: int | None,
    retry_after: float | None,
) -> Outcome:
    now = utcnow()
    attempts = row.attempts + 1
    when = next_attempt(attempts, settings, now, retry_after=retry_after)
    return Outcome(
        row=row,
        status=repo.PENDING if when is not None else repo.FAILED,
        attempted_at=now,
        status_code=status_code,
        error=error[:_MAX_ERROR_CHARS],
        next_attempt_at=when,
    )


async def _post(
    client: httpx.AsyncClient,
    settings: Settings,
    target: Target,
    signer: Webhook,
    row: Claimed,
) -> Outcome:
    """One attempt. Raises ``_Stop`` when the endpoint cannot take more now (no connection,
    429 or 503)."""
    body = row.payload.encode("utf-8")
    sent_at = utcnow()
    headers = {
        "host": target.host_header,
        "content-type": "application/json",
        "webhook-id": row.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signer.sign(row.message_id, sent_at, body),
    }
    extensions = {"sni_hostname": target.host} if target.url.lower().startswith("https") else {}
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            async with client.stream(
                "POST", target.pinned_url, content=body, headers=headers, extensions=extensions
            ) as response:
                received = b""
                async for chunk in response.aiter_bytes():
                    received += chunk
                    if len(received) >= _MAX_RESPONSE_BYTES:
                        break
    except (httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError) as exc:
        # No connection at all: the endpoint is unreachable for the rest of the batch too.
        raise _Stop(_describe(exc), None, None) from exc
    except (httpx.TransportError, TimeoutError, OSError) as exc:
        # This request timed out or broke: its own failure, the next one may go through.
        return _failure(row, settings, _describe(exc), None, None)
    except httpx.InvalidURL as exc:
        return _failure(row, settings, _describe(exc), None, None)
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(row=row, status=repo.DELIVERED, attempted_at=sent_at, status_code=code)
    text = received.decode("utf-8", "replace").strip()
    error = f"HTTP {code}" + (f": {text[:500]}" if text else "")
    if code == 410:
        return Outcome(
            row=row,
            status=repo.FAILED,
            attempted_at=sent_at,
            status_code=code,
            error=error + " (the receiver is gone: endpoint disabled)",
        )
    retry_after = parse_retry_after(response.headers.get("retry-after"), utcnow())
    if code in (429, 503):
        raise _Stop(error, code, retry_after)
    if 300 <= code < 400:
        error += " (redirects are not followed)"
    return _failure(row, settings, error, code, retry_after)


async def _record(
    db: Database, settings: Settings, endpoints: Sequence[_Endpoint], *, relay_id: str
) -> int:
    """Every outcome, the endpoints' health, and the disabling e-mails: one transaction."""
    outcomes = [o for e in endpoints for o in e.outcomes]
    by_status: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in outcomes:
        values = {
            "id": o.row.id,
            "relay_id": relay_id,
            "attempts": o.row.attempts + 1,
            "attempted_at": o.attempted_at,
            "status_code": o.status_code,
            "error": o.error,
        }
        if o.status == repo.PENDING:
            values["next_attempt_at"] = o.next_attempt_at
        by_status[o.status].append(values)
    succeeded = [e.id for e in endpoints if any(o.status == repo.DELIVERED for o in e.outcomes)]
    failing = [
        e.id
        for e in endpoints
        if e.outcomes and not any(o.status == repo.DELIVERED for o in e.outcomes)
    ]
    released = [i for e in endpoints for i in e.released]
    now = utcnow()
    async with db.transaction() as executor:
        for status, rows in by_status.items():
            await repo.record_outcomes(executor, status, rows)
        if released:
            await repo.release(executor, released, relay_id)
        if succeeded:
            await repo.endpoints_succeeded(executor, succeeded)
        disabled = []
        for endpoint in endpoints:
            if endpoint.gone:
                row = await repo.disable(
                    executor,
                    endpoint.id,
                    now=now,
                    reason="The receiver answered 410 Gone.",
                )
                if row is not None:
                    disabled.append(row)
        if failing:
            await repo.endpoints_failing(executor, failing, now)
            hours = settings.webhook_disable_after_hours
            disabled += await repo.disable_failing(
                executor,
                failing,
                since=now - dt.timedelta(hours=hours),
                now=now,
                reason=f"Every attempt failed for {hours:g} hours.",
            )
        for row in disabled:
            await _tell_admins(executor, row)
    return len(by_status.get(repo.DELIVERED, []))


async def _tell_admins(executor: Executor, endpoint: Any) -> None:
    logger.warning("webhook %s disabled (%s)", endpoint.id, endpoint.url)
    for address in await repo.admin_emails(executor, endpoint.organization_id):
        await enqueue_email(
            executor,
            organization_id=endpoint.organization_id,
            intervention_id=None,
            recipient=address,
            subject=f"Webhook {endpoint.id} disabled",
            body=(
                f"Hello,\n\nThe webhook endpoint {endpoint.id} ({endpoint.url}) has been "
                "disabled: its receiver answered 410 Gone, or every delivery to it has failed "
                "for days. Nothing is sent to it any more; its delivery log keeps every event.\n"
                "Once the receiver works again, re-enable it (PATCH "
                f'/integrations/v1/rs/webhooks/{endpoint.id} with {{"enabled": true}}): the '
                "events since it was disabled follow, and failed deliveries can be replayed.\n"
            ),
            kind="webhook.disabled",
        )


# --- the loop ----------------------------------------------------------------------------------


async def relay_once(
    db: Database, settings: Settings, client: httpx.AsyncClient, *, relay_id: str
) -> tuple[int, int, int]:
    """One round: fan out, then send one batch: (deliveries created, claimed, delivered)."""
    created = await fan_out(db, settings)
    claimed, delivered = await send_due(db, settings, client, relay_id=relay_id)
    return created, claimed, delivered


async def relay_forever(
    db: Database, settings: Settings, stop: asyncio.Event, *, relay_id: str | None = None
) -> None:
    """Fan out and send until ``stop`` is set; a failed round is logged and retried later."""
    relay_id = relay_id or default_relay_id()
    logger.info("webhook relay %s started", relay_id)
    async with open_client(settings) as client:
        while not stop.is_set():
            busy = False
            try:
                _created, claimed, _ = await relay_once(db, settings, client, relay_id=relay_id)
                busy = claimed >= settings.webhook_batch_size
            except Exception:
                logger.exception(
                    "webhook relay %s: round failed, next try in %ss",
                    relay_id,
                    settings.webhook_interval_seconds,
                )
            if busy:
                continue  # a full batch: more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.webhook_interval_seconds)
    logger.info("webhook relay %s stopped", relay_id)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
