"""``Idempotency-Key`` on every authenticated POST and PATCH (draft-ietf-httpapi-idempotency-
key-header): a retry gets the first answer again, byte for byte, and changes nothing.

``IdempotencyKeys`` sits inside ``transactions.RequestTransactions``: it holds the answer
of a request that carries a key until the answer is whole, then, still in the request's
transaction (committed by ``RequestTransactions`` when the answer starts):

- a success (2xx) is stored under the caller's key — one upsert, in the transaction of the
  change it reports, so the key exists exactly when its change does (on PostgreSQL, inside
  the statement that appends the transaction's journal entries, appended then rather than
  at COMMIT: ``journal.flush_with_key``). If the caller's key is
  taken already (a retry), the request's own work is rolled back and the stored answer is
  sent instead (``Idempotent-Replayed: true``), or a 422 if the key came with another
  request (method, path, query or body differ);
- a refusal (4xx) is not stored, so that the client can correct the request and send it again
  under the same key; if the key already holds an answer, that answer is sent instead (a
  retry of a verification that went through is refused by the lifecycle, and must hear what
  the first one heard), or a 422 for another request.

A request without the header is passed through untouched. The key is claimed when the
caller is looked up, before any work (``claims``): the same key sent while its first request
is still in flight is a 409 (``KeyInFlight``), its transaction holding nothing; sent once the
first is over, it gets that one's answer (or, if the first one failed, is processed as a
first request).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interventions.auth.dependencies import CALLER_KEY
from interventions.db import Database, utcnow
from interventions.errors import BadRequest, Unprocessable, render
from interventions.idempotency import repository as repo
from interventions.idempotency.claims import CLAIM_SCOPE, KEY_SCOPE, KeyInFlight
from interventions.openapi import errors_for
from interventions.register import journal
from interventions.transactions import SCOPE_KEY, RequestDatabase

logger = logging.getLogger(__name__)

METHODS = frozenset({"POST", "PATCH"})
HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
# The headers of an answer that describe its body: kept with it and replayed.
KEPT_HEADERS = frozenset({b"content-type", b"etag", b"location"})
REPLAYED_HEADER = (b"idempotent-replayed", b"true")
# Printable ASCII, no space at either end (an HTTP server strips them): the OpenAPI pattern.
KEY_PATTERN = "^[!-~]([ -~]*[!-~])?$"
_KEY = re.compile(KEY_PATTERN)


class KeyReused(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used with another request (method, path or body); "
            "a key names one request: use a new key for a new request.",
            errors=[{"field": "Idempotency-Key", "message": "Already used for another request."}],
        )


def parse_key(values: list[bytes]) -> str:
    """The key of the header's value: 1 to 255 printable ASCII characters, taken as sent
    (a quoted structured-field string keeps its quotes); one header only."""
    if len(values) > 1:
        raise _bad_key("Send one Idempotency-Key header, not several.")
    key = values[0].decode("latin-1").strip(" \t")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise _bad_key(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters long.")
    if _KEY.fullmatch(key) is None:
        raise _bad_key("Idempotency-Key must be printable ASCII characters.")
    return key


def _bad_key(detail: str) -> BadRequest:
    return BadRequest(detail, errors=[{"field": "Idempotency-Key", "message": detail}])


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes a request the same request: its method, path, query and body."""
    digest = hashlib.sha256()
    digest.update(f"{method} {path}?".encode())
    digest.update(query)
    digest.update(b"\n")
    digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()


class IdempotencyKeys:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope["headers"] if k.lower() == HEADER]
        if not values:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(values)
        except BadRequest as error:
            await render(error, scope["path"])(scope, receive, send)
            return

        chunks: list[bytes] = []
        while True:  # BodyGuard has buffered it already: one message
            message = await receive()
            if message["type"] != "http.request":
                return  # the client is gone
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        given = False

        async def replay_body() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        request = _Keyed(
            scope,
            key,
            fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body),
        )
        start: Message | None = None
        out: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            out.append(message.get("body", b""))
            if not message.get("more_body", False):
                await request.answer(start, b"".join(out), receive, send)

        scope[KEY_SCOPE] = key
        try:
            await self.app(scope, replay_body, hold)
        finally:
            claim = scope.pop(CLAIM_SCOPE, None)
            if claim is not None:
                claim.release()


class _Keyed:
    """One request under a key, and what becomes of its answer."""

    def __init__(self, scope: Scope, key: str, fingerprint: str) -> None:
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint

    async def answer(self, start: Message, body: bytes, receive: Receive, send: Send) -> None:
        caller = self.scope.get(CALLER_KEY)
        ctx: RequestDatabase | None = self.scope.get(SCOPE_KEY)
        status: int = start["status"]
        # Unauthenticated (no caller), or a server error: nothing to keep, nothing to replay.
        if caller is None or ctx is None or not ctx.opened or status >= 500:
            await _send(send, start, body)
            return
        now = utcnow()
        ids = {"organization_id": caller.organization_id, "user_id": caller.user_id}
        db = await ctx.executor()
        if 200 <= status < 300:
            settings = self.scope["app"].state.settings
            # The journal is appended now rather than at COMMIT: on PostgreSQL its statement
            # stores the answer too.
            kept = await journal.flush_with_key(
                db,
                dict(
                    **ids,
                    key=self.key,
                    fingerprint=self.fingerprint,
                    status=status,
                    headers=[
                        [name.decode("latin-1"), value.decode("latin-1")]
                        for name, value in start.get("headers", [])
                        if name.lower() in KEPT_HEADERS
                    ],
                    body=body,
                    now=now,
                    expires_at=now + dt.timedelta(hours=settings.idempotency_ttl_hours),
                ),
            )
            if kept:
                await _send(send, start, body)
                return
            found = await repo.stored(db, **ids, key=self.key, now=now)
        else:
            try:
                found = await repo.stored(db, **ids, key=self.key, now=now)
            except Exception:
                found = None  # the request's transaction failed already: its own answer
            if found is None:
                await _send(send, start, body)
                return
        # The key is the first request's: nothing of this one is kept, but what a refusal
        # must keep (a wrong PIN counted by its rate limit, ``RecordedRefusal``).
        await ctx.finish(commit=ctx.keep)
        path = self.scope["path"]
        if found is None:
            response = render(KeyInFlight(), path)
        elif found.fingerprint != self.fingerprint:
            response = render(KeyReused(), path)
        else:
            headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in found.headers]
            headers += [(b"content-length", str(len(found.body)).encode()), REPLAYED_HEADER]
            start = {"type": "http.response.start", "status": found.status, "headers": headers}
            await _send(send, start, bytes(found.body))
            return

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await response(self.scope, nothing, send)


async def _send(send: Send, start: Message, body: bytes) -> None:
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def purge_expired(db: Database, now: dt.datetime | None = None) -> int:
    """Delete the keys whose time is up, every organisation's; how many."""
    async with db.transaction() as executor:
        return await repo.purge(executor, now or utcnow())


PURGE_INTERVAL_SECONDS = 3600.0


async def purge_forever(db: Database, stop: asyncio.Event) -> None:
    """Purge expired keys every hour until ``stop`` is set; never dies on an error. (An
    expired key is already ignored, and taken over by a new request under it: purging only
    keeps the table small.)"""
    while not stop.is_set():
        try:
            purged = await purge_expired(db)
            if purged:
                logger.info("purged %d expired idempotency key(s)", purged)
        except Exception:
            logger.exception("purging idempotency keys failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PURGE_INTERVAL_SECONDS)


KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the request safe to retry (draft-ietf-httpapi-idempotency-key-header): 1 to "
        f"{MAX_KEY_LENGTH} printable ASCII characters (a UUID, say), a new one per request. "
        "The first success under the key is kept with its change, for the caller in the "
        "organisation, for INTERVENTIONS_IDEMPOTENCY_TTL_HOURS (24); the same request with "
        "the same key gets it again, byte for byte, with `Idempotent-Replayed: true`, and "
        "changes nothing. The key with another request (method, path, query or body) is a "
        "422. A refusal is not kept: correct the request and send it under the same key. The "
        "key sent again while its first request is still being processed is a 409: send it "
        "again a moment later to get the first answer."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": KEY_PATTERN,
    },
}


def document_key(operation: dict[str, Any]) -> None:
    """The header, and its 400, 409 and 422, on an operation that takes a key."""
    operation.setdefault("parameters", []).append(KEY_PARAMETER)
    responses = operation.setdefault("responses", {})
    for status, response in errors_for(400, 409, 422).items():
        documented = responses.get(str(status), {}).get("content", {})
        if "application/problem+json" not in documented:  # absent, or FastAPI's default 422
            responses[str(status)] = response
