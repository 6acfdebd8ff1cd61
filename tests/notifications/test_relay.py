"""The outbox relay against a real SMTP server (aiosmtpd), on both databases.

Both databases are shared by the whole session, so the outbox may hold other tests' rows: the
relay delivers them too, and every assertion here looks only at this test's own rows and
Message-IDs. Time is driven by moving ``next_attempt_at`` and ``claimed_until`` into the past
rather than by sleeping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import logging
import threading
import time
import uuid
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from interventions.config import Settings
from interventions.db import Database, create_database, utcnow
from interventions.notifications import service
from interventions.notifications.models import OutboxEmail
from interventions.notifications.relay import (
    RETRY_BASE_SECONDS,
    claim_due,
    eml_file_name,
    relay_forever,
    relay_once,
    retry_delay,
)
from tests.factories import Factory, Org
from tests.smtp_server import SmtpServer, free_port

SENDER = "registre@interventions.example"


# --- a real SMTP server ---------------------------------------------------------------------


def smtp_settings(settings: Settings, tmp_path: Path, port: int, **more: Any) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_timeout_seconds": 5.0,
            "smtp_from": SENDER,
            "outbox_dir": tmp_path / "outbox",
            "relay_batch_size": 500,
            **more,
        }
    )


# --- outbox helpers ---------------------------------------------------------------------------


def address(tag: str, n: int | str) -> str:
    return f"person{n}-{tag}@example.org"


async def queue(
    database: Database, org: Org, recipients: list[str], *, subject: str = "Intervention n°{n}"
) -> list[str]:
    """Queue one e-mail per recipient in one transaction, as a service would; their Message-IDs."""
    async with database.transaction() as db:
        rows = [
            await service.enqueue_email(
                db,
                organization_id=org.id,
                intervention_id=None,
                recipient=recipient,
                subject=subject.format(n=n),
                body=f"Bonjour,\n\nL'intervention n°{n} est planifiée — à bientôt ✓\n",
                kind="test.relay",
            )
            for n, recipient in enumerate(recipients)
        ]
        return [row.message_id for row in rows]


async def outbox(database: Database, message_ids: list[str]) -> dict[str, OutboxEmail]:
    async with database.reader() as session, session.begin():
        rows = (
            await session.execute(
                select(OutboxEmail).where(OutboxEmail.message_id.in_(message_ids))
            )
        ).scalars()
        return {row.message_id: row for row in rows}


async def make_due(database: Database, message_ids: list[str]) -> None:
    """As if the back-off had elapsed."""
    async with database.writer() as session, session.begin():
        await session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.message_id.in_(message_ids), OutboxEmail.status == "pending")
            .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )


async def expire_leases(database: Database, relay_id: str) -> None:
    """As if the relay's lease time had elapsed."""
    async with database.writer() as session, session.begin():
        await session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.claimed_by == relay_id)
            .values(claimed_until=utcnow() - dt.timedelta(seconds=1))
        )


async def relay_until_settled(
    database: Database, settings: Settings, message_ids: list[str], *, relay_id: str
) -> int:
    """Run rounds until none of these rows is pending and due (the outbox may hold others')."""
    total = 0
    for _ in range(200):
        total += await relay_once(database, settings, relay_id=relay_id)
        rows = await outbox(database, message_ids)
        now = utcnow()
        if not any(r.status == "pending" and r.next_attempt_at <= now for r in rows.values()):
            return total
    raise AssertionError("the relay did not settle these rows")


def relay_name(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}"


# --- delivery ---------------------------------------------------------------------------------


async def test_a_batch_is_delivered_once_with_its_headers_and_body(
    database: Database, settings: Settings, factory: Factory, smtp: SmtpServer, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    recipients = [address(tag, n) for n in range(5)]
    ids = await queue(database, org, recipients, subject="Intervention n°{n} — mise à jour")
    s = smtp_settings(settings, tmp_path, smtp.port)

    sent = await relay_until_settled(database, s, ids, relay_id=relay_name("relay"))

    assert sent >= 5
    assert smtp.mailbox.counts(ids) == dict.fromkeys(ids, 1)
    rows = await outbox(database, ids)
    for n, (message_id, recipient) in enumerate(zip(ids, recipients, strict=True)):
        [got] = smtp.mailbox.by_id(message_id)
        assert got.mail_from == SENDER
        assert got.rcpt_tos == [recipient]
        message = got.message
        assert message["From"] == SENDER
        assert message["To"] == recipient
        assert message["Subject"] == f"Intervention n°{n} — mise à jour"
        assert message["Message-ID"] == message_id
        assert message["Date"].datetime == rows[message_id].created_at.replace(microsecond=0)
        assert message.get_content_type() == "text/plain"
        assert message.get_content_charset() == "utf-8"
        # CRLF on the wire.
        assert message.get_content().replace("\r\n", "\n") == (
            f"Bonjour,\n\nL'intervention n°{n} est planifiée — à bientôt ✓\n"
        )
        row = rows[message_id]
        assert row.status == "sent"
        assert row.sent_at is not None
        assert row.attempts == 0
        assert (row.claimed_by, row.claimed_until) == (None, None)

    # Sent rows are never sent again.
    await relay_once(database, s, relay_id=relay_name("relay"))
    assert smtp.mailbox.counts(ids) == dict.fromkeys(ids, 1)


async def test_server_down_then_back_retries_with_growing_backoff_and_loses_nothing(
    database: Database, settings: Settings, factory: Factory, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    ids = await queue(database, org, [address(tag, n) for n in range(4)])
    server = SmtpServer(free_port())  # nothing listens on the port yet
    s = smtp_settings(settings, tmp_path, server.port)
    relay_id = relay_name("relay")

    delays: list[float] = []
    for attempt in (1, 2, 3):
        await make_due(database, ids)
        before = utcnow()
        assert await relay_until_settled(database, s, ids, relay_id=relay_id) == 0
        rows = await outbox(database, ids)
        assert {r.status for r in rows.values()} == {"pending"}
        assert {r.attempts for r in rows.values()} == {attempt}
        for row in rows.values():
            assert row.last_error is not None
            assert "cannot connect" in row.last_error
            assert row.claimed_by is None
            assert row.next_attempt_at > utcnow()
        delays.append(min((r.next_attempt_at - before).total_seconds() for r in rows.values()))
    assert delays[0] >= RETRY_BASE_SECONDS
    assert delays[0] < delays[1] < delays[2] <= s.relay_max_backoff_seconds

    # Not due yet: the relay leaves them alone even once the server is back.
    server.start()
    try:
        await relay_once(database, s, relay_id=relay_id)
        assert smtp_counts(server, ids) == {}
        await make_due(database, ids)
        await relay_until_settled(database, s, ids, relay_id=relay_id)
        assert smtp_counts(server, ids) == dict.fromkeys(ids, 1)
    finally:
        server.stop()
    rows = await outbox(database, ids)
    assert {r.status for r in rows.values()} == {"sent"}
    assert {r.attempts for r in rows.values()} == {3}


def smtp_counts(server: SmtpServer, ids: list[str]) -> dict[str, int]:
    return dict(server.mailbox.counts(ids))


async def test_a_relay_killed_mid_batch_leaves_the_rest_to_another_after_its_lease(
    database: Database, settings: Settings, factory: Factory, smtp: SmtpServer, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    recipients = [address(tag, n) for n in range(5)]
    ids = await queue(database, org, recipients)
    s = smtp_settings(settings, tmp_path, smtp.port)
    # The server receives the second message, then the relay dies before the "250".
    smtp.mailbox.hold_recipient = recipients[1]
    first, second = relay_name("first"), relay_name("second")

    killed = asyncio.create_task(relay_once(database, s, relay_id=first))
    assert await asyncio.to_thread(smtp.mailbox.holding.wait, 20)
    killed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await killed
    smtp.mailbox.release.set()

    rows = await outbox(database, ids)
    assert rows[ids[0]].status == "sent"
    for message_id in ids[1:]:
        assert rows[message_id].status == "pending"
        assert rows[message_id].claimed_by == first
    assert smtp.mailbox.counts(ids) == {ids[0]: 1, ids[1]: 1}

    # While the lease holds, another relay does not touch those rows.
    await relay_once(database, s, relay_id=second)
    assert smtp.mailbox.counts(ids) == {ids[0]: 1, ids[1]: 1}
    assert (await outbox(database, ids))[ids[2]].claimed_by == first

    await expire_leases(database, first)
    await relay_until_settled(database, s, ids, relay_id=second)

    # Nothing lost; the one in flight arrives twice, with the same Message-ID both times.
    assert smtp.mailbox.counts(ids) == {ids[0]: 1, ids[1]: 2, ids[2]: 1, ids[3]: 1, ids[4]: 1}
    copies = smtp.mailbox.by_id(ids[1])
    assert copies[0].message.as_bytes() == copies[1].message.as_bytes()
    rows = await outbox(database, ids)
    assert {r.status for r in rows.values()} == {"sent"}
    assert {r.claimed_by for r in rows.values()} == {None}


async def test_a_relay_gives_back_what_it_cannot_send_before_its_lease_ends(
    database: Database, settings: Settings, factory: Factory, smtp: SmtpServer, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    recipients = [address(tag, n) for n in range(3)]
    ids = await queue(database, org, recipients)
    # A one-second lease and a first message that takes longer than half of it.
    s = smtp_settings(settings, tmp_path, smtp.port, relay_lease_seconds=1)
    smtp.mailbox.hold_recipient = recipients[0]
    timer = threading.Timer(1.2, smtp.mailbox.release.set)
    timer.start()
    try:
        await relay_once(database, s, relay_id=relay_name("slow"))
    finally:
        timer.cancel()
    rows = await outbox(database, ids)
    assert rows[ids[0]].status == "sent"
    for message_id in ids[1:]:  # not sent, not counted as an attempt, free for anyone
        assert rows[message_id].status == "pending"
        assert rows[message_id].attempts == 0
        assert rows[message_id].claimed_by is None
    assert smtp.mailbox.counts(ids) == {ids[0]: 1}

    s = smtp_settings(settings, tmp_path, smtp.port)
    await relay_until_settled(database, s, ids, relay_id=relay_name("next"))
    assert smtp.mailbox.counts(ids) == dict.fromkeys(ids, 1)


async def test_two_relays_on_one_outbox_send_each_message_exactly_once(
    database: Database, settings: Settings, factory: Factory, smtp: SmtpServer, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    ids = await queue(database, org, [address(tag, n) for n in range(24)])
    s = smtp_settings(settings, tmp_path, smtp.port, relay_batch_size=5)
    other = create_database(settings.database_url)  # a second worker: its own connections
    try:
        for _ in range(200):
            await asyncio.gather(
                relay_once(database, s, relay_id="worker-a-" + tag),
                relay_once(other, s, relay_id="worker-b-" + tag),
            )
            if {r.status for r in (await outbox(database, ids)).values()} == {"sent"}:
                break
    finally:
        await other.dispose()

    assert smtp.mailbox.counts(ids) == dict.fromkeys(ids, 1)
    rows = await outbox(database, ids)
    assert {r.status for r in rows.values()} == {"sent"}


async def test_two_relays_claiming_at_once_never_share_a_row(
    database: Database, settings: Settings, factory: Factory, smtp: SmtpServer, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    ids = await queue(database, org, [address(tag, n) for n in range(10)])
    # Each relay asks for the whole outbox in the same instant.
    s = smtp_settings(settings, tmp_path, smtp.port, relay_batch_size=10_000)
    others = [create_database(settings.database_url) for _ in range(3)]
    try:
        await asyncio.gather(
            relay_once(database, s, relay_id=f"w0-{tag}"),
            *(relay_once(db, s, relay_id=f"w{n + 1}-{tag}") for n, db in enumerate(others)),
        )
    finally:
        for db in others:
            await db.dispose()
    assert smtp.mailbox.counts(ids) == dict.fromkeys(ids, 1)


# --- refusals -------------------------------------------------------------------------------


async def test_a_refused_recipient_fails_for_good_and_the_others_are_delivered(
    database: Database, settings: Settings, factory: Factory, smtp: SmtpServer, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    unknown, rejected_data, busy, fine = (address(tag, x) for x in ("u", "d", "b", "f"))
    ids = await queue(database, org, [unknown, rejected_data, busy, fine, "not an address"])
    smtp.mailbox.refuse_rcpt[unknown] = "550 5.1.1 No such user here"
    smtp.mailbox.refuse_data[rejected_data] = "554 5.6.0 Message refused"
    smtp.mailbox.refuse_rcpt[busy] = "451 4.3.0 Mailbox busy, try again later"
    s = smtp_settings(settings, tmp_path, smtp.port)
    relay_id = relay_name("relay")
    id_unknown, id_data, id_busy, id_fine, id_invalid = ids

    await relay_until_settled(database, s, ids, relay_id=relay_id)

    rows = await outbox(database, ids)
    assert rows[id_fine].status == "sent"
    for message_id, reason in ((id_unknown, "550"), (id_data, "554"), (id_invalid, "")):
        row = rows[message_id]
        assert row.status == "failed"
        assert row.last_error is not None
        assert reason in row.last_error
        assert row.attempts == 1
        assert row.claimed_by is None
    assert rows[id_busy].status == "pending"
    assert rows[id_busy].attempts == 1
    assert rows[id_busy].last_error is not None
    assert "451" in rows[id_busy].last_error
    assert rows[id_busy].next_attempt_at > utcnow()

    # Later rounds: the failures are kept and never retried; the 4xx one is, and gets through.
    del smtp.mailbox.refuse_rcpt[busy]
    await make_due(database, ids)
    await relay_until_settled(database, s, ids, relay_id=relay_id)
    rows = await outbox(database, ids)
    assert rows[id_busy].status == "sent"
    assert rows[id_busy].attempts == 1
    for message_id in (id_unknown, id_data, id_invalid):
        assert rows[message_id].status == "failed"
        assert rows[message_id].attempts == 1
    assert smtp.mailbox.counts(ids) == {id_fine: 1, id_busy: 1}


# --- no SMTP configured: .eml files -------------------------------------------------------


async def test_without_smtp_the_messages_are_written_as_eml_files(
    database: Database, settings: Settings, factory: Factory, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    recipients = [address(tag, n) for n in range(3)]
    ids = await queue(database, org, recipients)
    folder = tmp_path / "outbox"
    s = settings.model_copy(update={"smtp_host": "", "outbox_dir": folder, "smtp_from": SENDER})

    await relay_until_settled(database, s, ids, relay_id=relay_name("relay"))

    def mine() -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for path in folder.iterdir():
            assert path.suffix == ".eml", f"stray file {path.name}"
            message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            if message["Message-ID"] in ids:
                found.setdefault(str(message["Message-ID"]), []).append(path)
        return found

    files = mine()
    assert sorted(files) == sorted(ids)
    for n, (message_id, recipient) in enumerate(zip(ids, recipients, strict=True)):
        [path] = files[message_id]
        assert path.name == eml_file_name(message_id)
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        assert message["To"] == recipient
        assert message["From"] == SENDER
        assert message["Subject"] == f"Intervention n°{n}"
        assert "n°" in message.get_content()
    assert {r.status for r in (await outbox(database, ids)).values()} == {"sent"}

    # A re-delivery (the row sent again after a crash) overwrites the same file.
    before = files[ids[0]][0].read_bytes()
    async with database.writer() as session, session.begin():
        await session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.message_id == ids[0])
            .values(status="pending", sent_at=None)
        )
    await make_due(database, ids[:1])
    await relay_until_settled(database, s, ids, relay_id=relay_name("relay"))
    files = mine()
    assert sorted(files) == sorted(ids)
    assert [len(paths) for paths in files.values()] == [1, 1, 1]
    assert files[ids[0]][0].read_bytes() == before


def test_eml_file_names_are_safe_and_stable() -> None:
    assert eml_file_name("<abc123@interventions.local>") == "abc123@interventions.local.eml"
    weird = eml_file_name("<../../etc/passwd@x>")
    assert "/" not in weird
    assert weird.endswith(".eml")
    assert not weird.startswith(".")
    assert weird == eml_file_name("<../../etc/passwd@x>")
    assert eml_file_name("<a/b@x>") != eml_file_name("<a_b@x>")


# --- back-off and the long-running relay ------------------------------------------------------


def test_retry_delay_doubles_up_to_the_cap() -> None:
    s = Settings(relay_max_backoff_seconds=3600)
    delays = [retry_delay(n, s).total_seconds() for n in range(1, 12)]
    assert delays[:4] == [RETRY_BASE_SECONDS * 2**k for k in range(4)]
    assert delays == sorted(delays)
    assert delays[-1] == 3600
    assert retry_delay(10_000, s).total_seconds() == 3600


async def test_relay_forever_delivers_and_stops_promptly(
    database: Database, settings: Settings, factory: Factory, smtp: SmtpServer, tmp_path: Path
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    ids = await queue(database, org, [address(tag, n) for n in range(3)])
    s = smtp_settings(settings, tmp_path, smtp.port, relay_interval_seconds=60.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay_forever(database, s, stop, relay_id=relay_name("forever")))
    try:
        deadline = time.monotonic() + 20
        while smtp.mailbox.counts(ids) != dict.fromkeys(ids, 1):
            assert time.monotonic() < deadline, "relay_forever did not deliver"
            assert not task.done()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # let it reach its sleep between rounds
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        assert time.monotonic() - started < 1.0  # not the 60 s interval
    finally:
        task.cancel()
    assert {r.status for r in (await outbox(database, ids)).values()} == {"sent"}


async def test_relay_forever_survives_failing_rounds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that cannot be opened: every round fails.
    broken = create_database(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    s = Settings(
        database_url="sqlite://", relay_interval_seconds=0.02, outbox_dir=tmp_path / "outbox"
    )
    stop = asyncio.Event()
    caplog.set_level(logging.ERROR, logger="interventions.notifications.relay")
    task = asyncio.create_task(relay_forever(broken, s, stop, relay_id="broken"))
    try:
        deadline = time.monotonic() + 10
        while sum("round failed" in r.getMessage() for r in caplog.records) < 3:
            assert time.monotonic() < deadline, "relay_forever did not keep trying"
            assert not task.done()
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    finally:
        task.cancel()
        await broken.dispose()


async def test_a_claim_takes_no_more_than_the_batch(
    database: Database, settings: Settings, factory: Factory, smtp: SmtpServer, tmp_path: Path
) -> None:
    """``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`` can claim far more
    than ``n`` rows on PostgreSQL (the sub-select run again as the update goes): a claim of 5
    among 200 due messages takes 5, the oldest."""
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    ids = await queue(database, org, [address(tag, n) for n in range(200)])
    s = smtp_settings(settings, tmp_path, smtp.port, relay_batch_size=5)
    claimed = await claim_due(database, s, relay_id=relay_name("batch"))
    assert len(claimed) == 5
    rows = await outbox(database, ids)
    assert sum(r.claimed_by is not None for r in rows.values()) <= 5
