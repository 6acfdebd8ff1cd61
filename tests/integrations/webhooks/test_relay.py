"""The webhook relay against a real HTTP receiver (``tests/webhook_receiver.py``), on both
databases: fan-out from the journal, signatures, order, retries, 410, 429 with Retry-After,
a receiver down then back, a fan-out rolled back, two relays at once, refused addresses, an
endpoint failing for days.

The databases are shared by the session: the relay also sees other tests' endpoints (each
test disables its own at the end), so assertions look only at this test's rows and messages.
Time is driven by moving ``next_attempt_at`` into the past and by a small retry scale.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from interventions.config import Settings
from interventions.db import Database, utcnow
from interventions.integrations.webhooks import relay
from interventions.integrations.webhooks import repository as repo
from interventions.integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from interventions.notifications.models import OutboxEmail
from interventions.register import journal
from interventions.register.journal import Entry, Subject, system_actor
from tests.factories import Factory, Org
from tests.helpers import MB, RS, SIGNATURE, check_in, ok, plan
from tests.webhook_receiver import Answer, Receiver

HOOKS = "/integrations/v1/rs/webhooks"
ALL_TYPES = [
    "intervention.created",
    "intervention.updated",
    "intervention.checked_in",
    "intervention.executed",
    "intervention.verified",
    "intervention.cancelled",
    "intervention.overdue",
    "anomaly.resolved",
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhooks_allow_private_networks": True,  # the receiver is on 127.0.0.1
            "webhook_retry_scale": 0.0001,  # 5 s → 0.5 ms … 10 h → 3.6 s
            "webhook_timeout_seconds": 5.0,
            # One request at a time per endpoint: journal order is observable (more at once
            # is the default, and below).
            "webhook_endpoint_concurrency": 1,
        }
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
async def org(factory: Factory, database: Database) -> AsyncIterator[Org]:
    created = await factory.org()
    yield created
    # Other tests share the database: this organisation's endpoints stop here.
    async with database.writer() as s, s.begin():
        await s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == created.id)
            .values(enabled=False)
        )


async def create_hook(
    client: httpx.AsyncClient, org: Org, url: str, types: list[str] | None = None
) -> dict[str, Any]:
    body = {"url": url, "eventTypes": types or ALL_TYPES, "description": "test receiver"}
    r = await client.post(HOOKS, json=body, headers=org.admin.headers)
    data: dict[str, Any] = ok(r, 201)
    return data


async def deliveries(client: httpx.AsyncClient, org: Org, hook_id: int) -> list[dict[str, Any]]:
    r = await client.get(
        f"{HOOKS}/{hook_id}/deliveries", params={"pageSize": 100}, headers=org.admin.headers
    )
    rows: list[dict[str, Any]] = ok(r)
    return sorted(rows, key=lambda d: d["journalSeq"])


async def drive(
    database: Database,
    settings: Settings,
    until: Callable[[], Any],
    *,
    seconds: float = 30,
    relay_id: str = "test-relay",
) -> None:
    """Relay rounds, due retries made due at once, until ``until()`` holds."""
    deadline = time.monotonic() + seconds
    async with relay.open_client(settings) as http:
        while True:
            await relay.relay_once(database, settings, http, relay_id=relay_id)
            if await _holds(until):
                return
            assert time.monotonic() < deadline, "the relay did not get there in time"
            await asyncio.sleep(0.05)


async def _holds(until: Callable[[], Any]) -> bool:
    value = until()
    if asyncio.iscoroutine(value):
        value = await value
    return bool(value)


async def make_due(database: Database, hook_id: int) -> None:
    async with database.writer() as s, s.begin():
        await s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == hook_id, WebhookDelivery.status == "pending")
            .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )


async def journal_entries(database: Database, org: Org, count: int) -> list[int]:
    """``count`` intervention creations appended to the journal in one transaction (the
    journal is the outbox: any change that writes an entry makes an event)."""
    async with database.transaction() as db:
        head = await journal.append(
            db,
            org.id,
            [
                Entry("create", Subject.INTERVENTION, 900_000 + n, {"n": n}, system_actor("test"))
                for n in range(count)
            ],
        )
    return list(range(head.seq - count + 1, head.seq + 1))


async def execute(client: httpx.AsyncClient, org: Org, iid: int) -> None:
    body = {
        "interventionId": iid,
        "firstName": "Tom",
        "lastName": "Tech",
        "signature": SIGNATURE,
        "attendeeCount": 12,
    }
    ok(await client.patch(f"{MB}/execute", json=body, headers=org.manager.headers))


async def test_the_lifecycle_arrives_in_journal_order_signed(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    """Created, checked in, executed, verified: in journal order, each signature valid,
    ``webhook-id`` the entry's ``msg_<org>_<seq>``; the delivery log says delivered."""
    hook = await create_hook(client, org, receiver.url)
    assert hook["secret"].startswith("whsec_")
    receiver.secret = hook["secret"]
    drill = await plan(client, org)
    ok(await check_in(client, org, drill["id"], drill["codePin"]))
    await execute(client, org, drill["id"])
    r = await client.patch(
        f"{RS}/{drill['id']}/verify",
        json={"decision": 1, "decisionComment": "Fine"},
        headers=org.admin.headers,
    )
    ok(r)
    await drive(database, settings, lambda: len(receiver.received) >= 4)
    await asyncio.sleep(0.2)
    got = receiver.received
    assert [r.event["type"] for r in got] == [
        "intervention.created",
        "intervention.checked_in",
        "intervention.executed",
        "intervention.verified",
    ]
    assert all(r.verified for r in got), [r.error for r in got]
    seqs = [r.event["data"]["journalSeq"] for r in got]
    assert seqs == sorted(seqs)
    assert [r.webhook_id for r in got] == [f"msg_{org.id}_{s}" for s in seqs]
    for r in got:
        data = r.event["data"]
        assert data["organizationId"] == org.id
        assert data["subject"] == {"type": "intervention", "id": str(drill["id"])}
        assert r.host == f"127.0.0.1:{receiver.port}"
    assert got[1].event["data"]["action"] == "check-in"
    assert got[3].event["data"]["actor"]["userId"] == org.admin.user_id
    async with database.transaction(write=False) as db:
        entries = await journal.entries_about(db, org.id, Subject.INTERVENTION, drill["id"])
    assert [e.seq for e in entries] == seqs
    log = await deliveries(client, org, hook["id"])
    assert [(d["status"], d["attempts"], d["lastStatusCode"]) for d in log] == [
        ("delivered", 1, 204)
    ] * 4
    assert [d["messageId"] for d in log] == [r.webhook_id for r in got]
    assert log[0]["payload"] == got[0].event
    assert all(d["nextAttemptAt"] is None for d in log)


async def test_only_subscribed_events_and_anomaly_resolved(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    """An accepted curative resolves its anomaly: ``anomaly.resolved``; an endpoint gets only
    the types it subscribed to; a new endpoint starts at the journal's head."""
    before = await plan(client, org)  # before the endpoint: never sent
    hook = await create_hook(
        client, org, receiver.url, ["anomaly.resolved", "intervention.cancelled"]
    )
    receiver.secret = hook["secret"]
    curative = await plan(client, org, kind="curative")
    ok(await check_in(client, org, curative["id"], curative["codePin"]))
    body = {
        "interventionId": curative["id"],
        "firstName": "A",
        "lastName": "B",
        "signature": SIGNATURE,
    }
    ok(await client.patch(f"{MB}/execute", json=body, headers=org.manager.headers))
    r = await client.patch(
        f"{RS}/{curative['id']}/verify",
        json={"decision": 1, "decisionComment": "Repaired"},
        headers=org.admin.headers,
    )
    ok(r)
    r = await client.request(
        "DELETE",
        f"{RS}/{before['id']}",
        json={"cancellationReason": "No"},
        headers=org.admin.headers,
    )
    assert r.status_code in (200, 204), r.text
    await drive(database, settings, lambda: len(receiver.received) >= 2)
    await asyncio.sleep(0.2)
    events = receiver.events()
    assert [e["type"] for e in events] == ["anomaly.resolved", "intervention.cancelled"]
    assert events[0]["data"]["subject"] == {"type": "anomaly", "id": str(org.anomaly_ids[0])}
    assert events[0]["data"]["changes"]["status"]["to"] == 2
    assert events[1]["data"]["subject"]["id"] == str(before["id"])
    assert all(r.verified for r in receiver.received)


async def test_receiver_down_then_back_loses_nothing(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    hook = await create_hook(client, org, receiver.url)
    receiver.secret = hook["secret"]
    receiver.stop()  # the port is closed
    seqs = await journal_entries(database, org, 5)
    async with relay.open_client(settings) as http:
        await relay.relay_once(database, settings, http, relay_id="down")
    log = await deliveries(client, org, hook["id"])
    assert [d["journalSeq"] for d in log] == seqs
    for d in log:
        assert d["status"] == "pending"
        assert d["attempts"] == 1
        assert d["lastStatusCode"] is None
        assert d["lastError"]
        assert d["nextAttemptAt"] is not None
    r = await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers)
    assert ok(r)["failingSince"] is not None
    # A few more failed rounds, then the receiver comes back on the same port.
    async with relay.open_client(settings) as http:
        for _ in range(2):
            await make_due(database, hook["id"])
            await relay.relay_once(database, settings, http, relay_id="down")
    receiver.start()
    await make_due(database, hook["id"])
    await drive(database, settings, lambda: len(receiver.received) >= 5)
    await asyncio.sleep(0.2)
    expected = [f"msg_{org.id}_{s}" for s in seqs]
    assert sorted(receiver.ids()) == sorted(expected)
    assert Counter(receiver.ids()).most_common(1)[0][1] == 1
    assert all(r.verified for r in receiver.received)
    log = await deliveries(client, org, hook["id"])
    assert {d["status"] for d in log} == {"delivered"}
    assert [d["attempts"] for d in log] == [4] * 5
    r = await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers)
    assert ok(r)["failingSince"] is None


async def test_410_disables_the_endpoint_and_emails_the_admins(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    receiver.default = Answer(410, body=b"gone")
    hook = await create_hook(client, org, receiver.url)
    seqs = await journal_entries(database, org, 3)
    await drive(database, settings, lambda: len(receiver.received) >= 1)
    r = await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers)
    data = ok(r)
    assert data["enabled"] is False
    assert "410" in data["disabledReason"]
    log = await deliveries(client, org, hook["id"])
    assert [d["status"] for d in log] == ["failed", "pending", "pending"]
    assert log[0]["lastStatusCode"] == 410
    assert log[1]["attempts"] == 0  # released, not sent
    async with database.reader() as s:
        emails = (
            await s.execute(
                select(OutboxEmail.recipient, OutboxEmail.subject).where(
                    OutboxEmail.organization_id == org.id, OutboxEmail.kind == "webhook.disabled"
                )
            )
        ).all()
    assert [e.recipient for e in emails] == [org.admin.email]
    assert str(hook["id"]) in emails[0].subject
    # Disabled: nothing more is sent, nothing more fans out.
    more = await journal_entries(database, org, 2)
    async with relay.open_client(settings) as http:
        await relay.relay_once(database, settings, http, relay_id="gone")
    assert len(receiver.received) == 1
    assert len(await deliveries(client, org, hook["id"])) == 3
    # Re-enabled: the two pending and what happened meanwhile follow.
    receiver.default = Answer(200)
    r = await client.patch(
        f"{HOOKS}/{hook['id']}", json={"enabled": True}, headers=org.admin.headers
    )
    assert ok(r)["disabledReason"] is None
    await drive(database, settings, lambda: len(receiver.received) >= 5)
    got = [r.event["data"]["journalSeq"] for r in receiver.received[1:]]
    assert sorted(got) == seqs[1:] + more


async def test_429_retry_after_is_honoured(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    receiver.answers = [Answer(429, {"retry-after": "120"})]
    hook = await create_hook(client, org, receiver.url)
    await journal_entries(database, org, 2)
    before = utcnow()
    await drive(database, settings, lambda: len(receiver.received) >= 1)
    log = await deliveries(client, org, hook["id"])
    assert [(d["status"], d["attempts"], d["lastStatusCode"]) for d in log] == [
        ("pending", 1, 429)
    ] * 2  # the second was not sent: the receiver asked to wait
    for d in log:
        wait = dt.datetime.fromisoformat(d["nextAttemptAt"].replace("Z", "+00:00")) - before
        assert dt.timedelta(seconds=119) <= wait <= dt.timedelta(seconds=125), wait
    assert len(receiver.received) == 1
    await make_due(database, hook["id"])
    await drive(database, settings, lambda: len(receiver.received) >= 3)
    assert {d["status"] for d in await deliveries(client, org, hook["id"])} == {"delivered"}


def test_retry_after_and_the_schedule(settings: Settings) -> None:
    now = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
    assert relay.parse_retry_after("30", now) == 30
    assert relay.parse_retry_after("Mon, 07 Dec 2026 12:02:00 GMT", now) == 120
    assert relay.parse_retry_after("Mon, 07 Dec 2026 11:00:00 GMT", now) == 0
    assert relay.parse_retry_after("soon", now) is None
    full = settings.model_copy(update={"webhook_retry_scale": 1.0})
    rng = random.Random(1)
    delays = []
    for attempts in range(1, relay.MAX_ATTEMPTS):
        when = relay.next_attempt(attempts, full, now, rng=rng)
        assert when is not None
        delays.append((when - now).total_seconds())
    for delay, base in zip(delays, relay.SCHEDULE_SECONDS, strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    assert relay.next_attempt(relay.MAX_ATTEMPTS, full, now) is None
    capped = relay.next_attempt(1, full, now, retry_after=10**9)
    assert capped == now + dt.timedelta(seconds=full.webhook_retry_after_max_seconds)


async def test_the_schedule_ends_in_failed(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    receiver.default = Answer(500, body=b"boom")
    hook = await create_hook(client, org, receiver.url)
    await journal_entries(database, org, 1)

    async def failed() -> bool:
        await make_due(database, hook["id"])
        return [d["status"] for d in await deliveries(client, org, hook["id"])] == ["failed"]

    await drive(database, settings, failed)
    (d,) = await deliveries(client, org, hook["id"])
    assert d["attempts"] == relay.MAX_ATTEMPTS == 8
    assert d["lastStatusCode"] == 500
    assert d["lastError"] == "HTTP 500: boom"
    assert len(receiver.received) == 8
    assert len(set(receiver.ids())) == 1


async def test_a_fan_out_rolled_back_loses_and_doubles_nothing(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker dies after writing the deliveries, before the cursor moves: the
    transaction rolls back, and the next fan-out writes each delivery once."""
    hook = await create_hook(client, org, receiver.url)
    seqs = await journal_entries(database, org, 7)

    async def dies(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("killed mid-fan-out")

    monkeypatch.setattr(repo, "move_cursor", dies)
    with pytest.raises(RuntimeError):
        await relay.fan_out(database, settings)
    monkeypatch.undo()
    assert await deliveries(client, org, hook["id"]) == []
    r = await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers)
    assert ok(r)["lastJournalSeq"] == seqs[0] - 1
    await relay.fan_out(database, settings)
    await relay.fan_out(database, settings)
    assert [d["journalSeq"] for d in await deliveries(client, org, hook["id"])] == seqs
    r = await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers)
    assert ok(r)["lastJournalSeq"] == seqs[-1]


async def test_two_relays_send_each_delivery_once(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    hooks = [await create_hook(client, org, receiver.url) for _ in range(2)]
    seqs = await journal_entries(database, org, 40)
    small = settings.model_copy(
        update={
            "webhook_batch_size": 7,
            "webhook_fanout_batch_size": 9,
            "webhook_endpoint_concurrency": 3,
        }
    )
    want = 2 * len(seqs)
    await asyncio.gather(
        *(
            drive(database, small, lambda: len(receiver.received) >= want, relay_id=f"r{n}")
            for n in range(2)
        )
    )
    await asyncio.sleep(0.3)
    per_hook = Counter(r.webhook_id for r in receiver.received)
    assert set(per_hook) == {f"msg_{org.id}_{s}" for s in seqs}
    assert set(per_hook.values()) == {2}  # once per endpoint
    async with database.reader() as s:
        counts = (
            await s.execute(
                select(WebhookDelivery.status, func.count(), func.max(WebhookDelivery.attempts))
                .where(WebhookDelivery.endpoint_id.in_([h["id"] for h in hooks]))
                .group_by(WebhookDelivery.status)
            )
        ).all()
    assert [tuple(c) for c in counts] == [("delivered", want, 1)]


async def test_private_addresses_are_refused_at_send_without_the_setting(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    """Created while allowed, then the operator refuses private networks: every send checks
    the address again (DNS rebinding), and nothing reaches the receiver."""
    hook = await create_hook(client, org, receiver.url)
    await journal_entries(database, org, 1)
    strict = settings.model_copy(update={"webhooks_allow_private_networks": False})
    async with relay.open_client(strict) as http:
        await relay.relay_once(database, strict, http, relay_id="strict")
    (d,) = await deliveries(client, org, hook["id"])
    assert d["status"] == "pending"
    assert d["lastError"].startswith("Address not allowed: 127.0.0.1")
    assert receiver.received == []


async def test_an_endpoint_failing_for_days_is_disabled_and_its_admins_emailed(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    hook = await create_hook(client, org, receiver.url)
    receiver.stop()
    await journal_entries(database, org, 1)
    async with relay.open_client(settings) as http:
        await relay.relay_once(database, settings, http, relay_id="days")
    r = await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers)
    assert ok(r)["enabled"] is True  # failing, not for long enough
    async with database.writer() as s, s.begin():
        await s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == hook["id"])
            .values(failing_since=utcnow() - dt.timedelta(hours=121))
        )
    await make_due(database, hook["id"])
    async with relay.open_client(settings) as http:
        await relay.relay_once(database, settings, http, relay_id="days")
    data = ok(await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers))
    assert data["enabled"] is False
    assert data["disabledReason"] == "Every attempt failed for 120 hours."
    async with database.reader() as s:
        recipients = (
            (
                await s.execute(
                    select(OutboxEmail.recipient).where(
                        OutboxEmail.organization_id == org.id,
                        OutboxEmail.kind == "webhook.disabled",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert recipients == [org.admin.email]
    (d,) = await deliveries(client, org, hook["id"])
    assert d["status"] == "pending"  # kept: nothing acknowledged is lost


async def test_replay_sends_the_same_message_again(
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    hook = await create_hook(client, org, receiver.url)
    receiver.secret = hook["secret"]
    await journal_entries(database, org, 1)
    await drive(database, settings, lambda: len(receiver.received) >= 1)
    (d,) = await deliveries(client, org, hook["id"])
    r = await client.post(
        f"{HOOKS}/{hook['id']}/deliveries/{d['id']}/replay", headers=org.admin.headers
    )
    replayed = ok(r, 202)
    assert (replayed["status"], replayed["attempts"], replayed["replays"]) == ("pending", 0, 1)
    # Rotated meanwhile: the replay is signed with the new secret.
    rotated = ok(await client.post(f"{HOOKS}/{hook['id']}/secret", headers=org.admin.headers))
    assert rotated["secret"] != hook["secret"]
    receiver.secret = rotated["secret"]
    await drive(database, settings, lambda: len(receiver.received) >= 2)
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id == d["messageId"]
    assert first.body == second.body
    assert second.verified
    # Being sent (claimed by a relay): 409.
    async with database.writer() as s, s.begin():
        await s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == d["id"])
            .values(claimed_by="other", claimed_until=utcnow() + dt.timedelta(minutes=1))
        )
    r = await client.post(
        f"{HOOKS}/{hook['id']}/deliveries/{d['id']}/replay", headers=org.admin.headers
    )
    assert r.status_code == 409, r.text
