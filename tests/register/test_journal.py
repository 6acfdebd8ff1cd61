"""The journal (register/journal.py): every change is an entry, chained per organisation,
appended in the change's transaction, never rewritten; the history moves into it."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from interventions.db import Database, create_database
from interventions.migrate import upgrade
from interventions.register import journal
from tests.factories import Factory, Org
from tests.helpers import (
    CURATIVE,
    MB,
    POSTGRES_ADMIN_URL,
    PROFILES,
    RS,
    SIGNATURE,
    assert_chained,
    check_in,
    curative_body_on,
    ok,
    plan,
    run_sql,
    with_database,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(8)


async def curative(
    client: httpx.AsyncClient, org: Org, anomaly_ids: list[int], creation_status: int = 0
) -> dict[str, Any]:
    body = curative_body_on(org, anomaly_ids, creation_status)
    data: dict[str, Any] = ok(
        await client.post(CURATIVE, json=body, headers=org.admin.headers), 201
    )
    return data


def summary(entries: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.subject_type, e.subject_id, e.action) for e in entries]


async def test_every_change_is_an_entry_chained_to_the_one_before(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    a, b = org.anomaly_ids[:2]
    # Recorded after the fact (status 4), then accepted: its anomalies in repair, resolved.
    iid = str((await curative(client, org, [b, a], 2))["id"])
    body = {"decision": 1, "decisionComment": "Fixed"}
    ok(await client.patch(f"{RS}/{iid}/verify", json=body, headers=org.manager.headers))
    entries = await assert_chained(factory.db, org.id)
    assert summary(entries) == [
        ("intervention", iid, "create"),
        ("anomaly", str(a), "create"),
        ("anomaly", str(b), "create"),
        ("anomaly", str(a), "verify"),
        ("anomaly", str(b), "verify"),
        ("intervention", iid, "verify"),
    ]
    assert entries[0].prev_hash == journal.GENESIS
    assert entries[0].actor == {
        "type": "user",
        "userId": org.admin.user_id,
        "profileId": org.admin.profile_id,
    }
    assert entries[1].changes == {"status": {"from": 0, "to": 1}, "interventionId": int(iid)}
    assert entries[3].changes == {"status": {"from": 1, "to": 2}, "interventionId": int(iid)}
    assert entries[5].changes["status"] == {"from": 4, "to": 5}
    assert entries[5].actor["userId"] == org.manager.user_id
    # One transaction, one time: the entries of a request are appended together.
    assert entries[0].recorded_at == entries[2].recorded_at
    assert entries[3].recorded_at >= entries[0].recorded_at
    # The history of the intervention is the journal's entries about it.
    detail = ok(await client.get(f"{RS}/{iid}", headers=org.viewer.headers))
    assert [(h["id"], h["action"]) for h in detail["history"]] == [(1, "create"), (6, "verify")]
    assert detail["history"][1]["actor"]["userId"] == org.manager.user_id


async def test_organisations_have_journals_of_their_own(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    first, second = await factory.org(), await factory.org()
    await curative(client, first, [first.anomaly_ids[0]])
    await curative(client, second, [second.anomaly_ids[0]])
    await curative(client, first, [first.anomaly_ids[1]])
    assert [e.seq for e in await assert_chained(factory.db, first.id)] == [1, 2, 3, 4]
    assert [e.seq for e in await assert_chained(factory.db, second.id)] == [1, 2]


async def test_concurrent_writes_chain_in_commit_order(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    drills = [await plan(client, org) for _ in range(6)]
    answers = await asyncio.gather(*(check_in(client, org, d["id"], d["codePin"]) for d in drills))
    assert [r.status_code for r in answers] == [200] * 6
    entries = await assert_chained(factory.db, org.id)
    assert sorted(e.subject_id for e in entries if e.action == "check-in") == sorted(
        str(d["id"]) for d in drills
    )


async def test_a_refused_write_appends_nothing(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    ok(
        await client.post(
            CURATIVE, json=curative_body_on(org, [org.anomaly_ids[0]]), headers=org.admin.headers
        ),
        201,
    )
    before = [e.hash for e in await assert_chained(factory.db, org.id)]
    # The anomaly is in repair now: a second curative on it is refused, nothing appended.
    r = await client.post(
        CURATIVE, json=curative_body_on(org, [org.anomaly_ids[0]]), headers=org.admin.headers
    )
    assert r.status_code == 422
    assert [e.hash for e in await assert_chained(factory.db, org.id)] == before


async def test_anomalies_memberships_and_signatures_are_journaled(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    anomaly = ok(
        await client.post(
            "/anomalies/v1/rs",
            json={"siteId": org.site_ids[0], "title": "Porte coupe-feu", "risk": 2},
            headers=h,
        ),
        201,
    )
    ok(await client.patch(f"/anomalies/v1/rs/{anomaly['id']}", json={"risk": 3}, headers=h))
    ok(
        await client.patch(
            f"{PROFILES}/{org.viewer.profile_id}", json={"role": "manager"}, headers=h
        )
    )
    drill = await plan(client, org)
    ok(await check_in(client, org, drill["id"], drill["codePin"]))
    body = {
        "interventionId": drill["id"],
        "firstName": "Paul",
        "lastName": "Durand",
        "email": "paul@provider.example",
        "providerActionComment": "Done",
        "comment": "OK",
        "signature": SIGNATURE,
    }
    r = await client.patch(f"{MB}/execute", json=body, headers=org.manager.headers)
    assert r.status_code == 200, r.text
    executed = r.json()
    put = await client.put(
        executed["presignedUrl"], content=PNG, headers={"content-type": "image/png"}
    )
    assert put.status_code == 200, put.text
    entries = await assert_chained(factory.db, org.id)
    by = {(e.subject_type, e.action): e for e in entries}
    assert by[("anomaly", "create")].changes["title"] == "Porte coupe-feu"
    assert by[("anomaly", "update")].changes == {"risk": {"from": 2, "to": 3}}
    assert by[("profile", "update")].subject_id == str(org.viewer.profile_id)
    assert by[("profile", "update")].changes == {"role": {"from": "viewer", "to": "manager"}}
    file_id = executed["data"]["imgSignature"].rsplit("/", 1)[-1]
    assert by[("file", "announce")].subject_id == file_id
    assert by[("file", "announce")].changes == {
        "name": "sig.png",
        "mimeType": "image/png",
        "size": 16,
    }
    upload = by[("file", "upload")]
    assert upload.subject_id == file_id
    assert upload.changes["sha256"] == hashlib.sha256(PNG).hexdigest()
    execute = by[("intervention", "execute")]
    assert execute.actor == {
        "type": "provider",
        "name": "Paul Durand",
        "userId": org.manager.user_id,
        "profileId": org.manager.profile_id,
    }


async def test_the_database_refuses_to_rewrite_the_journal(
    client: httpx.AsyncClient, factory: Factory, database: Database, backend: str
) -> None:
    org: Org = await factory.org()
    ok(
        await client.post(
            CURATIVE, json=curative_body_on(org, [org.anomaly_ids[0]]), headers=org.admin.headers
        ),
        201,
    )
    before = [e.hash for e in await assert_chained(factory.db, org.id)]
    statements = [
        f"UPDATE journal_entries SET action = 'forged' WHERE organization_id = {org.id}",
        f"DELETE FROM journal_entries WHERE organization_id = {org.id}",
    ]
    if backend == "postgresql":
        statements.append("TRUNCATE journal_entries")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.writer() as s, s.begin():
                await s.execute(sa.text(statement))
    assert [e.hash for e in await assert_chained(factory.db, org.id)] == before


# --- the migration: the history moves into the journal ---------------------------------------


@pytest.fixture
def blank_url(backend: str, tmp_path: Any) -> Any:
    """A database of its own, empty, for a test that migrates it step by step."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'steps.db'}"
        return
    name = f"interventions_steps_{uuid.uuid4().hex[:12]}"
    asyncio.run(run_sql(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(POSTGRES_ADMIN_URL, name)
    finally:
        asyncio.run(run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_the_history_moves_into_the_journal_in_order(blank_url: str) -> None:
    upgrade(blank_url, "20261201_0003")
    asyncio.run(_history_then_head(blank_url))


async def _history_then_head(url: str) -> None:
    db = create_database(url, pool=False)
    at = dt.datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
    sqlite = db.sqlite

    def t(value: dt.datetime) -> Any:
        return value.replace(tzinfo=None) if sqlite else value

    async with db.engine.begin() as c:

        async def sql(statement: str, **params: Any) -> None:
            await c.execute(sa.text(statement), {"at": t(at), **params})

        for org in (1, 2):
            await sql(
                "INSERT INTO organizations (id, name, created_at) VALUES (:o, 'O', :at)", o=org
            )
        await sql(
            "INSERT INTO users (id, email, password_hash, first_name, last_name, created_at) "
            "VALUES (7, 'u@x.org', 'h', 'U', 'X', :at)"
        )
        await sql(
            "INSERT INTO profiles (id, user_id, organization_id, role, created_at) "
            "VALUES (70, 7, 1, 'admin', :at)"
        )
        for iid, org in ((10, 1), (20, 2), (11, 1)):
            await sql(
                "INSERT INTO interventions (id, organization_id, type, status, creation_status, "
                "code_pin, auto_created, created_at, updated_at) "
                "VALUES (:i, :o, 1, 2, 1, 123456, false, :at, :at)",
                i=iid,
                o=org,
            )
        replanned = {"scheduled_start": {"from": None, "to": "2025-03-02T08:00:00.000Z"}}
        history = [
            (1, 10, 7, "create", {"status": 2, "type": 1}),
            (1, 11, None, "auto-create", {"routineId": 3}),
            (2, 20, None, "create", {"status": 1}),
            (1, 10, 7, "update", replanned),
        ]
        for n, (org, iid, user, action, changes) in enumerate(history, start=1):
            await c.execute(
                sa.text(
                    "INSERT INTO intervention_history (id, organization_id, intervention_id, "
                    "user_id, action, changes, created_at) "
                    "VALUES (:id, :org, :iid, :user, :action, :changes, :at)"
                ),
                {
                    "id": n,
                    "org": org,
                    "iid": iid,
                    "user": user,
                    "action": action,
                    "changes": json.dumps(changes),
                    "at": t(at + dt.timedelta(seconds=n)),
                },
            )
    await db.dispose()
    await asyncio.to_thread(upgrade, url)
    db = create_database(url, pool=False)
    try:
        first = await assert_chained(db, 1)
        assert summary(first) == [
            ("intervention", "10", "create"),
            ("intervention", "11", "auto-create"),
            ("intervention", "10", "update"),
        ]
        assert first[0].actor == {"type": "user", "userId": 7, "profileId": 70}
        assert first[1].actor == {"type": "system", "name": "planner"}
        assert first[2].changes == {
            "scheduledStart": {"from": None, "to": "2025-03-02T08:00:00.000Z"}
        }
        assert first[0].recorded_at == (at + dt.timedelta(seconds=1)).replace(microsecond=123000)
        second = await assert_chained(db, 2)
        assert summary(second) == [("intervention", "20", "create")]
        async with db.reader() as s:
            tables = await s.run_sync(lambda sync: sa.inspect(sync.get_bind()).get_table_names())
            version = (
                await s.execute(sa.text("SELECT version FROM interventions WHERE id = 10"))
            ).scalar_one()
        assert "intervention_history" not in tables
        assert version == 1
    finally:
        await db.dispose()
