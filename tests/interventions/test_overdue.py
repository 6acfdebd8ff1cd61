"""Overdue interventions (issue 12, item 5): the flag and the filter, the worker's round that
marks each newly overdue intervention once (a journal entry, one e-mail to each of its
assignee and the organisation's admins and managers), re-planning that clears the mark, and the
automatic acceptance of executed interventions after an organisation's number of days."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from sqlalchemy import select

from interventions.config import Settings
from interventions.db import Database, create_database, utcnow
from interventions.interventions import overdue
from interventions.interventions.models import Intervention
from interventions.notifications.models import OutboxEmail
from interventions.references.models import Anomaly
from interventions.wire import format_datetime
from interventions.worker import background_work
from tests.factories import Org
from tests.helpers import (
    MB,
    RS,
    SIGNATURE,
    TRAINING,
    assert_problem,
    check_in,
    intervention_history,
    journal_of,
    ok,
    unplanned_body,
)

CURRENT = "/organizations/v1/rs/current"


def at(delta: dt.timedelta) -> str:
    return format_datetime(utcnow() + delta)


async def drill(
    client: httpx.AsyncClient, org: Org, start: dt.timedelta, end: dt.timedelta, **extra: Any
) -> dict[str, Any]:
    """A scheduled drill from now + ``start`` to now + ``end``, assigned to the manager."""
    body = {
        "scheduledStart": at(start),
        "scheduledEnd": at(end),
        "ruleId": org.training_rule_id,
        "siteIds": [org.site_ids[0]],
        "creationStatus": 1,
        "assignedProfileId": org.manager.profile_id,
        **extra,
    }
    return dict(ok(await client.post(TRAINING, json=body, headers=org.admin.headers), 201))


async def listed(client: httpx.AsyncClient, org: Org, query: str) -> list[int]:
    data = ok(await client.get(f"{RS}?pageSize=100&{query}", headers=org.viewer.headers))
    return sorted(i["id"] for i in data)


async def overdue_entries(database: Database, intervention_id: int) -> list[Any]:
    return [
        h for h in await intervention_history(database, intervention_id) if h.action == "overdue"
    ]


async def overdue_emails(database: Database, intervention_id: int) -> list[Any]:
    async with database.reader() as s:
        rows = await s.execute(
            select(OutboxEmail).where(
                OutboxEmail.intervention_id == intervention_id,
                OutboxEmail.kind == "intervention.overdue",
            )
        )
        return list(rows.scalars())


async def mark_of(database: Database, intervention_id: int) -> dt.datetime | None:
    async with database.reader() as s:
        value: dt.datetime | None = (
            await s.execute(
                select(Intervention.overdue_notified_at).where(Intervention.id == intervention_id)
            )
        ).scalar_one()
        return value


# --- the flag and the filter ----------------------------------------------------------------


async def test_overdue_flag_and_filter(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    late = await drill(client, org, -dt.timedelta(days=2), -dt.timedelta(days=1))
    coming = await drill(client, org, dt.timedelta(days=1), dt.timedelta(days=2))
    executed = ok(
        await client.post(
            f"{MB}/preventive/unplanned", json=unplanned_body(org), headers=org.admin.headers
        ),
        201,
    )
    in_progress = await drill(client, org, -dt.timedelta(hours=3), -dt.timedelta(hours=1))
    assert (
        await check_in(client, org, in_progress["id"], in_progress["codePin"])
    ).status_code == 200
    cancelled = await drill(client, org, -dt.timedelta(days=3), -dt.timedelta(days=2))
    r = await client.delete(f"{RS}/{cancelled['id']}", headers=org.admin.headers)
    assert r.status_code == 204

    assert late["overdue"] is True
    assert coming["overdue"] is False
    assert executed["overdue"] is False  # executed: never overdue, whatever its dates
    detail = ok(await client.get(f"{RS}/{in_progress['id']}", headers=org.viewer.headers))
    assert detail["overdue"] is True  # in progress past its end
    assert (
        ok(await client.get(f"{RS}/{cancelled['id']}", headers=org.viewer.headers))["overdue"]
        is False
    )

    assert await listed(client, org, "overdue=true") == sorted([late["id"], in_progress["id"]])
    assert await listed(client, org, "overdue=false") == sorted([coming["id"], executed["id"]])
    assert await listed(client, org, "overdue=false&status=7") == [cancelled["id"]]
    assert await listed(client, org, "overdue=true&status=3") == [in_progress["id"]]
    everything = await listed(client, org, "")
    assert everything == sorted([late["id"], coming["id"], executed["id"], in_progress["id"]])
    for item in ok(await client.get(f"{RS}?overdue=true", headers=org.viewer.headers)):
        assert item["overdue"] is True
    # Another organisation's overdue interventions are not listed.
    other: Org = await factory.org()
    await drill(client, other, -dt.timedelta(days=2), -dt.timedelta(days=1))
    assert await listed(client, org, "overdue=true") == sorted([late["id"], in_progress["id"]])


async def test_the_filter_refuses_what_is_not_a_boolean(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    r = await client.get(f"{RS}?overdue=maybe", headers=org.viewer.headers)
    assert_problem(r, 400, "overdue")


# --- the round: once ------------------------------------------------------------------------


async def test_the_round_marks_once(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    late = await drill(client, org, -dt.timedelta(days=2), -dt.timedelta(days=1))
    coming = await drill(client, org, dt.timedelta(days=1), dt.timedelta(days=2))
    assert await overdue.mark_overdue(database) >= 1
    assert await overdue.mark_overdue(database) == 0  # nothing new: nothing marked again

    entries = await overdue_entries(database, late["id"])
    assert len(entries) == 1
    assert entries[0].actor == {"type": "system", "name": "overdue"}
    assert entries[0].changes == {"scheduledEnd": late["scheduledEnd"]}
    assert await mark_of(database, late["id"]) is not None
    assert await overdue_entries(database, coming["id"]) == []
    assert await mark_of(database, coming["id"]) is None

    emails = await overdue_emails(database, late["id"])
    # The assignee (the manager, also one of the managers) and the admin, once each; not the
    # viewer.
    assert sorted(e.recipient for e in emails) == sorted([org.admin.email, org.manager.email])
    for email in emails:
        assert email.subject == f"Intervention {late['id']} is overdue"
        assert str(late["codePin"]) not in email.body
        assert late["scheduledEnd"] in email.body
    assert await overdue_emails(database, coming["id"]) == []
    # The answer does not change: the mark is not a member of the wire form.
    data = ok(await client.get(f"{RS}/{late['id']}", headers=org.admin.headers))
    assert data["overdue"] is True
    assert [h["action"] for h in data["history"]] == ["create", "overdue"]


async def test_an_assignee_outside_the_writers_is_told_too(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    late = await drill(
        client,
        org,
        -dt.timedelta(days=2),
        -dt.timedelta(days=1),
        assignedProfileId=org.viewer.profile_id,
    )
    await overdue.mark_overdue(database)
    emails = await overdue_emails(database, late["id"])
    assert sorted(e.recipient for e in emails) == sorted(
        [org.admin.email, org.manager.email, org.viewer.email]
    )


async def test_concurrent_rounds_still_mark_once(
    client: httpx.AsyncClient, factory: Any, database: Database, database_url: str
) -> None:
    org: Org = await factory.org()
    late = [
        await drill(client, org, -dt.timedelta(days=2), -dt.timedelta(days=1)) for _ in range(3)
    ]
    others = [create_database(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(overdue.mark_overdue(db) for db in [database, *others]))
    finally:
        for db in others:
            await db.dispose()
    for intervention in late:
        assert len(await overdue_entries(database, intervention["id"])) == 1
        assert len(await overdue_emails(database, intervention["id"])) == 2


async def test_replanning_clears_the_mark(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    late = await drill(client, org, -dt.timedelta(days=2), -dt.timedelta(days=1))
    await overdue.mark_overdue(database)
    assert await mark_of(database, late["id"]) is not None

    # Another date that has passed: still overdue, still marked, not said again.
    body = {"scheduledEnd": at(-dt.timedelta(hours=30))}
    r = await client.patch(f"{TRAINING}/{late['id']}", json=body, headers=org.admin.headers)
    assert ok(r)["overdue"] is True
    await overdue.mark_overdue(database)
    assert len(await overdue_entries(database, late["id"])) == 1
    assert await mark_of(database, late["id"]) is not None

    # Later: no longer overdue, the mark goes…
    new_end = utcnow() + dt.timedelta(days=3)
    body = {"scheduledEnd": format_datetime(new_end)}
    r = await client.patch(f"{TRAINING}/{late['id']}", json=body, headers=org.admin.headers)
    assert ok(r)["overdue"] is False
    assert await mark_of(database, late["id"]) is None
    await overdue.mark_overdue(database)
    assert len(await overdue_entries(database, late["id"])) == 1
    # … and when that end has passed too, it is overdue again, and said so once more.
    assert await overdue.mark_overdue(database, new_end + dt.timedelta(minutes=1)) >= 1
    entries = await overdue_entries(database, late["id"])
    assert len(entries) == 2
    assert entries[1].changes == {"scheduledEnd": format_datetime(new_end)}
    assert len(await overdue_emails(database, late["id"])) == 4


# --- automatic acceptance -------------------------------------------------------------------


async def executed_curative(client: httpx.AsyncClient, org: Org) -> dict[str, Any]:
    """A curative on the first anomaly, checked in and executed now (status 4)."""
    body = {
        "scheduledStart": at(-dt.timedelta(hours=2)),
        "scheduledEnd": at(dt.timedelta(hours=2)),
        "anomalyIds": [org.anomaly_ids[0]],
        "creationStatus": 1,
    }
    planned = ok(await client.post(f"{RS}/curative", json=body, headers=org.admin.headers), 201)
    assert (await check_in(client, org, planned["id"], planned["codePin"])).status_code == 200
    execution = {
        "interventionId": planned["id"],
        "firstName": "Paul",
        "lastName": "Durand",
        "email": "auto-paul@provider.example",
        "signature": SIGNATURE,
    }
    r = await client.patch(f"{MB}/execute", json=execution, headers=org.manager.headers)
    return dict(ok(r))


async def anomaly_status(database: Database, anomaly_id: int) -> tuple[int, Any, Any]:
    async with database.reader() as s:
        row = (
            await s.execute(
                select(Anomaly.status, Anomaly.resolved_at, Anomaly.resolved_by_user_id).where(
                    Anomaly.id == anomaly_id
                )
            )
        ).one()
        return row.status, row.resolved_at, row.resolved_by_user_id


async def test_the_organisation_setting(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    data = ok(await client.get(CURRENT, headers=org.viewer.headers))
    assert data["id"] == org.id
    assert data["autoAcceptAfterDays"] is None
    r = await client.patch(CURRENT, json={"autoAcceptAfterDays": 3}, headers=org.manager.headers)
    assert_problem(r, 403)
    for bad in (0, 366, "3", 2.5, True):
        r = await client.patch(
            CURRENT, json={"autoAcceptAfterDays": bad}, headers=org.admin.headers
        )
        assert_problem(r, 400, "autoAcceptAfterDays")
    r = await client.patch(CURRENT, json={"name": "x"}, headers=org.admin.headers)
    assert_problem(r, 400, "name")
    assert ok(await client.get(CURRENT, headers=org.admin.headers))["autoAcceptAfterDays"] is None
    data = ok(
        await client.patch(CURRENT, json={"autoAcceptAfterDays": 3}, headers=org.admin.headers)
    )
    assert data["autoAcceptAfterDays"] == 3
    assert ok(await client.get(CURRENT, headers=org.viewer.headers))["autoAcceptAfterDays"] == 3
    other: Org = await factory.org()
    assert ok(await client.get(CURRENT, headers=other.admin.headers))["autoAcceptAfterDays"] is None
    data = ok(
        await client.patch(CURRENT, json={"autoAcceptAfterDays": None}, headers=org.admin.headers)
    )
    assert data["autoAcceptAfterDays"] is None
    assert (await client.get(CURRENT)).status_code == 401


async def test_auto_accept_after_n_days(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    ok(await client.patch(CURRENT, json={"autoAcceptAfterDays": 3}, headers=org.admin.headers))
    executed = await executed_curative(client, org)
    assert executed["status"] == 4
    assert (await anomaly_status(database, org.anomaly_ids[0]))[0] == 1  # in repair
    now = utcnow()

    await overdue.auto_accept(database, now + dt.timedelta(days=2))  # not yet
    assert ok(await client.get(f"{RS}/{executed['id']}", headers=org.admin.headers))["status"] == 4

    assert await overdue.auto_accept(database, now + dt.timedelta(days=3, minutes=1)) >= 1
    data = ok(await client.get(f"{RS}/{executed['id']}", headers=org.admin.headers))
    assert data["status"] == 5
    assert data["decisionComment"] == "Accepted automatically after 3 days"
    assert data["verifiedByUserId"] is None
    assert data["verifiedById"] is None
    assert data["verifiedAt"] is not None
    verify = [h for h in data["history"] if h["action"] == "verify"]
    assert len(verify) == 1
    assert verify[0]["actor"] == {"type": "system", "name": "auto-accept"}
    assert verify[0]["changes"] == {
        "status": {"from": 4, "to": 5},
        "decision": 1,
        "decisionComment": "Accepted automatically after 3 days",
    }
    # As a manual acceptance: the anomaly resolved (by nobody: the service), the provider told.
    status, resolved_at, resolved_by = await anomaly_status(database, org.anomaly_ids[0])
    assert (status, resolved_by) == (2, None)
    assert resolved_at is not None
    anomaly_entries = [
        (e.subject_id, e.actor, e.changes["status"])
        for e in await journal_of(database, org.id)
        if e.subject_type == "anomaly" and e.action == "verify"
    ]
    assert anomaly_entries == [
        (str(org.anomaly_ids[0]), {"type": "system", "name": "auto-accept"}, {"from": 1, "to": 2})
    ]
    async with database.reader() as s:
        decided = (
            await s.execute(
                select(OutboxEmail.recipient).where(
                    OutboxEmail.intervention_id == executed["id"],
                    OutboxEmail.kind == "intervention.accepted",
                )
            )
        ).all()
    assert [r.recipient for r in decided] == ["auto-paul@provider.example"]
    # Once: a later round finds nothing to accept.
    await overdue.auto_accept(database, now + dt.timedelta(days=30))
    history = await intervention_history(database, executed["id"])
    assert [h.action for h in history].count("verify") == 1


async def test_no_auto_accept_without_the_setting(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    executed = await executed_curative(client, org)
    await overdue.auto_accept(database, utcnow() + dt.timedelta(days=400))
    assert ok(await client.get(f"{RS}/{executed['id']}", headers=org.admin.headers))["status"] == 4


async def test_a_manual_verification_wins_over_auto_accept(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    ok(await client.patch(CURRENT, json={"autoAcceptAfterDays": 1}, headers=org.admin.headers))
    executed = await executed_curative(client, org)
    body = {"decision": 2, "decisionComment": "Not done"}
    r = await client.patch(f"{RS}/{executed['id']}/verify", json=body, headers=org.admin.headers)
    assert ok(r)["status"] == 6
    await overdue.auto_accept(database, utcnow() + dt.timedelta(days=5))
    data = ok(await client.get(f"{RS}/{executed['id']}", headers=org.admin.headers))
    assert (data["status"], data["decisionComment"]) == (6, "Not done")


async def test_the_background_work_runs_the_round(
    client: httpx.AsyncClient, factory: Any, database: Database, settings: Settings
) -> None:
    org: Org = await factory.org()
    late = await drill(client, org, -dt.timedelta(days=2), -dt.timedelta(days=1))
    fast = settings.model_copy(update={"overdue_interval_seconds": 0.05})
    async with background_work(database, fast):
        for _ in range(200):
            if await overdue_entries(database, late["id"]):
                break
            await asyncio.sleep(0.05)
    assert len(await overdue_entries(database, late["id"])) == 1
