"""Delivery of the e-mail outbox: claim due rows under a lease, send them, record the outcome.

At least once, with a stable ``Message-ID``: a row is marked sent only after the mail server
(or the ``.eml`` folder) has accepted it, so a relay that dies in between leaves the row to be
sent again once its lease has expired, carrying the same ``Message-ID``.

Several relays can share one outbox: a row is claimed by a conditional ``UPDATE`` that only
takes rows whose lease is free or expired (with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and
under SQLite's write lock), and each outcome is written only while the row is still claimed
by the relay that sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import hashlib
import logging
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib

from interventions.config import Settings
from interventions.db import Database, utcnow
from interventions.notifications import repository as repo

logger = logging.getLogger(__name__)

# First retry after this long, then twice as long each time, up to relay_max_backoff_seconds.
RETRY_BASE_SECONDS = 30
_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class ClaimedEmail:
    """An outbox row this relay holds the lease on, with what is needed to send it."""

    id: int
    recipient: str
    subject: str
    body: str
    message_id: str
    attempts: int
    created_at: dt.datetime
    claimed_until: dt.datetime


class PermanentFailure(Exception):
    """The message can never be delivered as it is: retrying would not help."""


class ServerUnreachable(Exception):
    """No connection to the mail server: nothing in this batch can be sent now."""


class Transport(Protocol):
    async def deliver(self, message: EmailMessage, recipient: str) -> None: ...

    async def aclose(self) -> None: ...

    def abort(self) -> None: ...


def default_relay_id() -> str:
    """Who holds a lease: host, process and a random part (two relays in one process differ)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def retry_delay(attempts: int, settings: Settings) -> dt.timedelta:
    """Exponential back-off after ``attempts`` failed attempts, capped."""
    exponent = min(max(attempts - 1, 0), 32)
    seconds = min(RETRY_BASE_SECONDS * 2**exponent, settings.relay_max_backoff_seconds)
    return dt.timedelta(seconds=seconds)


def sender_address(settings: Settings) -> Address:
    """The configured From address; a configuration error, not a message's fault."""
    try:
        return Address(addr_spec=settings.smtp_from)
    except (ValueError, MessageError) as exc:
        raise ValueError(f"invalid smtp_from {settings.smtp_from!r}: {exc}") from exc


def build_message(row: ClaimedEmail, sender: Address) -> EmailMessage:
    """The e-mail for one outbox row; the same bytes on every delivery attempt.

    Raises ``PermanentFailure`` when the row cannot make a valid message (bad recipient
    address, a line break in the subject).
    """
    try:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = Address(addr_spec=row.recipient)
        message["Subject"] = row.subject
        message["Date"] = email.utils.format_datetime(row.created_at.astimezone(dt.UTC))
        message["Message-ID"] = row.message_id
        message.set_content(row.body, subtype="plain", charset="utf-8")
    except (ValueError, TypeError, MessageError) as exc:
        raise PermanentFailure(f"cannot build the message: {exc}") from exc
    return message


def eml_file_name(message_id: str) -> str:
    """A file name derived from the Message-ID only, so that a re-delivery overwrites."""
    core = message_id.strip().strip("<>")
    safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", core)[:180].lstrip(".")
    if safe != core or not safe:
        # Two ids that differ only in replaced characters must not share a file.
        safe = f"{safe}-{hashlib.sha256(message_id.encode()).hexdigest()[:16]}"
    return f"{safe}.eml"


class EmlFolderTransport:
    """No SMTP configured: each message becomes ``<message id>.eml`` in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def deliver(self, message: EmailMessage, recipient: str) -> None:
        await asyncio.to_thread(
            self._write, eml_file_name(str(message["Message-ID"])), bytes(message)
        )

    def _write(self, name: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Written aside then renamed: a reader never sees half a message, and a crash leaves
        # at worst a stray temporary file, never a truncated .eml.
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if os.name == "posix":
            # Make the rename itself durable before the row is marked sent.
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    async def aclose(self) -> None:
        return None

    def abort(self) -> None:
        return None


class SmtpTransport:
    """One SMTP connection per batch, opened on first use and reopened after it drops."""

    def __init__(self, settings: Settings, sender: Address) -> None:
        self.settings = settings
        self.sender = sender.addr_spec
        self._client: aiosmtplib.SMTP | None = None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        self.abort()
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_seconds,
        )
        try:
            await client.connect()
        except Exception as exc:
            client.close()
            raise ServerUnreachable(
                f"cannot connect to {s.smtp_host}:{s.smtp_port}: {_describe(exc)}"
            ) from exc
        self._client = client
        return client

    async def deliver(self, message: EmailMessage, recipient: str) -> None:
        client = await self._connected()
        try:
            await client.send_message(message, sender=self.sender, recipients=[recipient])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(500 <= refusal.code < 600 for refusal in exc.recipients):
                raise PermanentFailure(_describe(exc)) from exc
            raise
        except aiosmtplib.SMTPDataError as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(_describe(exc)) from exc
            raise
        except (aiosmtplib.SMTPNotSupported, ValueError) as exc:
            # An address the server cannot take (non-ASCII without SMTPUTF8, unsafe
            # characters): the same message would be refused forever.
            raise PermanentFailure(_describe(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the server is closing the connection
                self.abort()
            raise
        except Exception:
            # Timeout or connection lost mid-message: the connection's state is unknown.
            self.abort()
            raise

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except Exception:
            client.close()

    def abort(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def open_transport(settings: Settings, sender: Address) -> Transport:
    if settings.smtp_host:
        return SmtpTransport(settings, sender)
    return EmlFolderTransport(settings.outbox_dir)


async def relay_once(db: Database, settings: Settings, *, relay_id: str) -> int:
    """Claim a batch of due e-mails, deliver them, record each outcome; how many were sent."""
    return (await _relay_batch(db, settings, relay_id=relay_id))[1]


async def relay_forever(
    db: Database, settings: Settings, stop: asyncio.Event, *, relay_id: str | None = None
) -> None:
    """Relay the outbox until ``stop`` is set; a failed round is logged and retried later."""
    relay_id = relay_id or default_relay_id()
    logger.info("outbox relay %s started", relay_id)
    while not stop.is_set():
        claimed = 0
        try:
            claimed, _ = await _relay_batch(db, settings, relay_id=relay_id)
        except Exception:
            logger.exception(
                "outbox relay %s: round failed, next try in %ss",
                relay_id,
                settings.relay_interval_seconds,
            )
        if claimed >= settings.relay_batch_size:
            continue  # a full batch: more may be due right now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.relay_interval_seconds)
    logger.info("outbox relay %s stopped", relay_id)


async def _relay_batch(db: Database, settings: Settings, *, relay_id: str) -> tuple[int, int]:
    """(rows claimed, messages delivered) for one round."""
    sender = sender_address(settings)
    claimed = await claim_due(db, settings, relay_id=relay_id)
    if not claimed:
        return 0, 0
    # Do not start a message so close to the end of the lease that another relay could
    # claim the row while it is still being sent.
    margin = dt.timedelta(
        seconds=min(settings.smtp_timeout_seconds, settings.relay_lease_seconds / 2)
    )
    transport = open_transport(settings, sender)
    sent = 0
    try:
        for index, row in enumerate(claimed):
            if utcnow() >= row.claimed_until - margin:
                await _release(db, claimed[index:], relay_id=relay_id)
                logger.warning("outbox relay %s: lease running out, released the rest", relay_id)
                break
            try:
                await transport.deliver(build_message(row, sender), row.recipient)
            except PermanentFailure as exc:
                await _mark_failed(db, row, relay_id=relay_id, error=_describe(exc))
            except ServerUnreachable as exc:
                logger.warning("outbox relay %s: %s", relay_id, exc)
                for rest in claimed[index:]:
                    await _schedule_retry(db, settings, rest, relay_id=relay_id, error=str(exc))
                break
            except Exception as exc:
                logger.warning(
                    "outbox relay %s: e-mail %s not delivered, will retry: %s",
                    relay_id,
                    row.id,
                    _describe(exc),
                )
                await _schedule_retry(db, settings, row, relay_id=relay_id, error=_describe(exc))
            else:
                sent += 1
                await _mark_sent(db, row, relay_id=relay_id)
    except BaseException:
        # Killed or failed mid-batch: drop the connection at once. Rows not marked stay
        # claimed and come back to any relay when their lease expires.
        transport.abort()
        raise
    await transport.aclose()
    if sent:
        logger.info("outbox relay %s: %d e-mail(s) delivered", relay_id, sent)
    return len(claimed), sent


async def claim_due(db: Database, settings: Settings, *, relay_id: str) -> list[ClaimedEmail]:
    """Take the lease on up to ``relay_batch_size`` due rows, oldest first, in one
    transaction (the due rows locked, then leased: ``repository.claim_due``).

    The ``UPDATE`` only touches rows whose lease is free or expired, so of two relays racing
    for a row exactly one gets it: on PostgreSQL the candidates are locked with ``SKIP
    LOCKED`` (a competitor takes other rows instead of waiting), on SQLite the writer's
    ``BEGIN IMMEDIATE`` serialises the claims.
    """
    now = utcnow()
    until = now + dt.timedelta(seconds=settings.relay_lease_seconds)
    async with db.transaction() as executor:
        found = await repo.claim_due(
            executor, relay_id=relay_id, now=now, until=until, batch_size=settings.relay_batch_size
        )
    rows = sorted(found, key=lambda r: (r.next_attempt_at, r.id))
    return [
        ClaimedEmail(
            id=r.id,
            recipient=r.recipient,
            subject=r.subject,
            body=r.body,
            message_id=r.message_id,
            attempts=r.attempts,
            created_at=r.created_at,
            claimed_until=until,
        )
        for r in rows
    ]


async def _finish(
    db: Database,
    row: ClaimedEmail,
    outcome: Callable[..., Awaitable[int]],
    *,
    relay_id: str,
    **values: Any,
) -> None:
    """Write an outcome and free the lease, only if this relay still holds it."""
    async with db.transaction() as executor:
        written = await outcome(executor, email_id=row.id, relay_id=relay_id, **values)
    if written == 0:
        # The lease expired and another relay took the row: it will send it again (same
        # Message-ID), which at-least-once delivery allows.
        logger.warning("outbox relay %s: lost the lease on e-mail %s", relay_id, row.id)


async def _mark_sent(db: Database, row: ClaimedEmail, *, relay_id: str) -> None:
    await _finish(db, row, repo.mark_sent, relay_id=relay_id, sent_at=utcnow())


async def _mark_failed(db: Database, row: ClaimedEmail, *, relay_id: str, error: str) -> None:
    logger.error("outbox relay %s: e-mail %s refused for good: %s", relay_id, row.id, error)
    await _finish(
        db,
        row,
        repo.mark_failed,
        relay_id=relay_id,
        attempts=row.attempts + 1,
        last_error=error[:_MAX_ERROR_CHARS],
    )


async def _schedule_retry(
    db: Database, settings: Settings, row: ClaimedEmail, *, relay_id: str, error: str
) -> None:
    attempts = row.attempts + 1
    await _finish(
        db,
        row,
        repo.retry_later,
        relay_id=relay_id,
        attempts=attempts,
        next_attempt_at=utcnow() + retry_delay(attempts, settings),
        last_error=error[:_MAX_ERROR_CHARS],
    )


async def _release(db: Database, rows: Sequence[ClaimedEmail], *, relay_id: str) -> None:
    """Give rows back untouched, for any relay to take at once."""
    async with db.transaction() as executor:
        await repo.release(executor, email_ids=[row.id for row in rows], relay_id=relay_id)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
